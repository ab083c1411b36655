"""Trained offline ranker: a conversation-to-movie map learned once on a training split.

Why: the semantic ranker compares a conversation embedding with movie embeddings as they
are, so it cannot learn that "something scary for tonight" points at horror films people
actually recommend. This ranker keeps MiniLM frozen and embeds the conversation exactly as
the semantic ranker does, then scores a candidate i by

    scale * (c W) . v_i  +  pop_weight * log(1 + training count of i)
        +  cooc_weight * (h B)_i  -  retriever_weight * log(position)

`rar.evaluation.ranker_fit` fits W (384x384) in closed form by ridge regression from conversation
vectors to the vectors of the movies recommended next, shrunk towards the identity (W = I is
the semantic ranker), then scale and pop_weight by a softmax over the whole corpus, on
training targets only. h B is a co-occurrence score: h is the binary vector of the movies
mentioned so far and B an EASE item-item matrix (Steck 2019) fitted on the training dialogues'
mentions, scaled to unit spread, so the ranker also knows which movies are recommended after
which (the conversation text alone re-orders a converged retriever's top-25 little). The
ridge strength is chosen on validation by likelihood; retriever_weight and cooc_weight
jointly by validation N@10 on a retriever's top-k. With retriever_weight > 0 the result
depends on the order the candidates are handed over (config it to 0 for order-free scores).

The artefact is a directory: `weights.npz` (W, the popularity table), `config.json`
(everything else) and `metrics.json` (what fitting measured).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rar.errors import InputError, MissingPathError
from rar.rankers.ranker_config import RankerConfig
from rar.rankers.semantic_ranker import SemanticRanker

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.data.linking import MentionLinker
    from rar.rankers.types import RankRequest

FORMAT = "rar-trained-ranker-1"
WEIGHTS, CONFIG, METRICS = "weights.npz", "config.json", "metrics.json"


@dataclass
class TrainedModel:
    """Fitted parameters; everything needed to score (context vector, candidates)."""

    W: np.ndarray  # [d, d]
    scale: float
    pop_weight: float
    retriever_weight: float
    popularity: dict[str, float]  # corpus id -> log(1 + count of training targets)
    cooc_weight: float = 0.0
    cooc_ids: list[str] = field(default_factory=list)  # the movies B covers (seen in training)
    cooc: np.ndarray | None = None  # [len(cooc_ids)]^2 item-item matrix B, scaled
    meta: dict[str, Any] = field(default_factory=dict)  # semantic weighting, data, seed
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cooc_col = {cid: i for i, cid in enumerate(self.cooc_ids)}

    def cooc_scores(self, history_ids: Sequence[str], ids: Sequence[str]) -> np.ndarray:
        """(h B) for each candidate: 0 for a candidate or history movie B does not cover."""
        out = np.zeros(len(ids), dtype=np.float32)
        if self.cooc is None or not history_ids:
            return out
        col = self.cooc_col
        hist = [col[h] for h in dict.fromkeys(history_ids) if h in col]
        if not hist:
            return out
        cols = np.array([col.get(cid, -1) for cid in ids], dtype=np.int64)
        covered = cols >= 0
        out[covered] = self.cooc[hist][:, cols[covered]].sum(axis=0)
        return out

    def scores(
        self,
        conv: np.ndarray | None,
        vectors: np.ndarray,
        ids: Sequence[str],
        weight: float,
        history_ids: Sequence[str] = (),
        cooc_weight: float | None = None,
    ) -> np.ndarray:
        """Score candidates given in order (`vectors[j]` is candidate j's corpus vector)."""
        n = len(ids)
        pop = np.array([self.popularity.get(cid, 0.0) for cid in ids], dtype=np.float32)
        out = self.pop_weight * pop - weight * np.log(np.arange(1, n + 1, dtype=np.float32))
        if conv is not None:
            out = out + self.scale * (vectors @ (conv @ self.W))
        a = self.cooc_weight if cooc_weight is None else cooc_weight
        if a:
            out = out + a * self.cooc_scores(history_ids, ids)
        return out.astype(np.float32)

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        ids = sorted(self.popularity)
        arrays = {
            "W": self.W.astype(np.float32),
            "pop_ids": np.array(ids, dtype=str),
            "pop_values": np.array([self.popularity[i] for i in ids], dtype=np.float32),
        }
        if self.cooc is not None:
            arrays["cooc_ids"] = np.array(self.cooc_ids, dtype=str)
            arrays["cooc"] = self.cooc.astype(np.float32)
        # numpy's stub: mypy lets `**arrays` fill the keyword-only `allow_pickle: bool`
        np.savez(out / WEIGHTS, **arrays)  # type: ignore[arg-type]
        config = {
            "format": FORMAT,
            "scale": self.scale,
            "pop_weight": self.pop_weight,
            "retriever_weight": self.retriever_weight,
            "cooc_weight": self.cooc_weight,
            **self.meta,
        }
        (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (out / METRICS).write_text(json.dumps(self.metrics, indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | Path) -> TrainedModel:
        root = Path(path)
        for name in (WEIGHTS, CONFIG):
            if not (root / name).is_file():
                raise MissingPathError(
                    f"{root / name} not found: ranker.trained.path must be a directory written "
                    "by `rar fit-ranker`"
                )
        config = json.loads((root / CONFIG).read_text(encoding="utf-8"))
        if config.get("format") != FORMAT:
            raise InputError(f"{root / CONFIG}: format {config.get('format')!r}, expected {FORMAT}")
        with np.load(root / WEIGHTS) as data:
            W = np.asarray(data["W"], dtype=np.float32)
            popularity = dict(
                zip(
                    data["pop_ids"].tolist(), data["pop_values"].astype(float).tolist(), strict=True
                )
            )
            has_cooc = "cooc" in data.files
            cooc = np.asarray(data["cooc"], dtype=np.float32) if has_cooc else None
            cooc_ids = data["cooc_ids"].tolist() if has_cooc else []
        metrics_file = root / METRICS
        metrics = (
            json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
        )
        meta = {
            k: v
            for k, v in config.items()
            if k not in ("format", "scale", "pop_weight", "retriever_weight", "cooc_weight")
        }
        return cls(
            W=W,
            scale=float(config["scale"]),
            pop_weight=float(config["pop_weight"]),
            retriever_weight=float(config["retriever_weight"]),
            popularity=popularity,
            cooc_weight=float(config.get("cooc_weight", 0.0)),
            cooc_ids=cooc_ids,
            cooc=cooc,
            meta=meta,
            metrics=metrics,
        )


class TrainedRanker(SemanticRanker):
    """`ranker.backend: trained`: ranks with a `TrainedModel` over the corpus vectors."""

    backend = "trained"

    def __init__(
        self,
        config: RankerConfig,
        corpus: Corpus,
        model: TrainedModel | None = None,
        max_cached_texts: int = 100_000,
    ):
        if model is None:
            if not config.trained.path:
                raise InputError(
                    "ranker.backend 'trained' needs ranker.trained.path (a `rar fit-ranker` output)"
                )
            model = TrainedModel.load(config.trained.path)
        # conversation weighting as fitted: the map W was learned on vectors made this way
        semantic = model.meta.get("semantic")
        if semantic:
            config = config.model_copy(
                update={"semantic": config.semantic.model_copy(update=semantic)}
            )
        super().__init__(config, corpus, max_cached_texts)
        if model.W.shape != (self._vectors.shape[1],) * 2:
            raise InputError(
                f"trained ranker W is {model.W.shape}, the corpus vectors have dimension "
                f"{self._vectors.shape[1]} (fitted with another embedder?)"
            )
        self.trained = model
        weight = config.trained.retriever_weight
        self.retriever_weight = model.retriever_weight if weight is None else float(weight)
        cooc = config.trained.cooc_weight
        self.cooc_weight = model.cooc_weight if cooc is None else float(cooc)
        self._linker: MentionLinker | None = None

    def order(self, conv: np.ndarray | None, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError("TrainedRanker scores by corpus id; use order_candidates")

    def history_of(self, request: RankRequest) -> list[str]:
        """The request's linked mention history, or its context's mentions linked here."""
        if request.history_ids is not None:
            return list(request.history_ids)
        if self._linker is None:
            from rar.data.linking import MentionLinker

            self._linker = MentionLinker(self.corpus)
        dataset = request.sample_id.split(":", 1)[0]
        out: list[str] = []
        for turn in request.context:
            for mention in turn.mentions:
                cid, _ = self._linker.link(dataset, mention)
                if cid is not None and cid not in out:
                    out.append(cid)
        return out

    def order_candidates(
        self, conv: np.ndarray | None, rows: np.ndarray, request: RankRequest
    ) -> tuple[np.ndarray, np.ndarray]:
        history = self.history_of(request) if self.cooc_weight else []
        scores = self.trained.scores(
            conv,
            self._vectors[rows],
            request.candidate_ids,
            self.retriever_weight,
            history,
            self.cooc_weight,
        )
        return np.argsort(-scores, kind="stable"), scores
