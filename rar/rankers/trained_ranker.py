"""Trained offline ranker: a conversation-to-movie map learned once on a training split.

Why: the semantic ranker compares a conversation embedding with movie embeddings as they
are, so it cannot learn that "something scary for tonight" points at horror films people
actually recommend. This ranker keeps MiniLM frozen and embeds the conversation exactly as
the semantic ranker does, then scores a candidate i by

    scale * (c W) . v_i  +  pop_weight * log(1 + training count of i)  -  retriever_weight * log(position)

`rar.rankers.fit_ranker` fits W (384x384) in closed form by ridge regression from conversation
vectors to the vectors of the movies recommended next, shrunk towards the identity (W = I is
the semantic ranker), then scale and pop_weight by a softmax over the whole corpus, on
training targets only; the ridge strength and retriever_weight are chosen on validation. With retriever_weight > 0 the result
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
    meta: dict[str, Any] = field(default_factory=dict)  # semantic weighting, data, seed
    metrics: dict[str, Any] = field(default_factory=dict)

    def scores(
        self, conv: np.ndarray | None, vectors: np.ndarray, ids: Sequence[str], weight: float
    ) -> np.ndarray:
        """Score candidates given in order (`vectors[j]` is candidate j's corpus vector)."""
        n = len(ids)
        pop = np.array([self.popularity.get(cid, 0.0) for cid in ids], dtype=np.float32)
        out = self.pop_weight * pop - weight * np.log(np.arange(1, n + 1, dtype=np.float32))
        if conv is not None:
            out = out + self.scale * (vectors @ (conv @ self.W))
        return out.astype(np.float32)

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        ids = sorted(self.popularity)
        np.savez(
            out / WEIGHTS,
            W=self.W.astype(np.float32),
            pop_ids=np.array(ids, dtype=str),
            pop_values=np.array([self.popularity[i] for i in ids], dtype=np.float32),
        )
        config = {
            "format": FORMAT,
            "scale": self.scale,
            "pop_weight": self.pop_weight,
            "retriever_weight": self.retriever_weight,
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
        metrics_file = root / METRICS
        metrics = (
            json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
        )
        meta = {
            k: v
            for k, v in config.items()
            if k not in ("format", "scale", "pop_weight", "retriever_weight")
        }
        return cls(
            W=W,
            scale=float(config["scale"]),
            pop_weight=float(config["pop_weight"]),
            retriever_weight=float(config["retriever_weight"]),
            popularity=popularity,
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

    def order(self, conv: np.ndarray | None, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError("TrainedRanker scores by corpus id; use order_candidates")

    def order_candidates(
        self, conv: np.ndarray | None, rows: np.ndarray, candidate_ids: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = self.trained.scores(
            conv, self._vectors[rows], candidate_ids, self.retriever_weight
        )
        return np.argsort(-scores, kind="stable"), scores
