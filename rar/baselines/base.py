"""What every non-neural baseline shares: fitting on linked training samples, a record of what
it was fitted on, and retriever-style top-k serving over corpus rows.

A baseline is a `CandidateSource` like every retriever (`top_rows(RetrievalBatch, k)` over
left-padded tokens, corpus row + 1, 0 = pad; items already in the history masked; the
conversation text is not read), so `rar.evaluation.evaluator` runs it through the same
retrieve → optional ranker → metrics path as a trained LRURec. Ties are broken
by training popularity, then by corpus row, so rankings are deterministic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch
from pydantic import Field

from rar.config import ConfigModel
from rar.errors import InputError
from rar.retrievers.ranking_eval import ranked_rows
from rar.retrievers.retrieval_batch import RetrievalBatch

if TYPE_CHECKING:  # a type only: baselines sit below evaluation in the layering
    from rar.corpus import Corpus
    from rar.data.linking import LinkedSample


class BaselineConfig(ConfigModel):
    """Settings every baseline has; subclasses add their hyperparameters."""

    max_len: int = Field(
        200, ge=1, description="Most recent history items read per sample (like a retriever)."
    )


class FitLeakError(InputError):
    """A baseline is asked to score samples from dialogues it was fitted on."""


class NotFittedError(RuntimeError):
    """A baseline is used before `fit`."""


@dataclass(frozen=True)
class TrainingRows:
    """Linked training samples as corpus rows (what the subclasses fit on)."""

    histories: list[np.ndarray]  # per sample, oldest first
    targets: list[np.ndarray]  # per sample
    dialogue_items: list[np.ndarray]  # per dialogue: every row it mentions (history ∪ targets)
    num_items: int


BaselineT = TypeVar("BaselineT", bound="Baseline")


class Baseline:
    """Base class: subclasses implement :meth:`_fit` and :meth:`score_histories`."""

    #: registry name (`rar evaluate --baseline NAME`) and table label
    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    config_class: ClassVar[type[BaselineConfig]] = BaselineConfig
    #: the small validation grid searched by `rar.baselines.selection` (field -> values)
    grid: ClassVar[dict[str, Sequence[Any]]] = {}

    def __init__(self, config: BaselineConfig | None = None):
        self.config = config if config is not None else self.config_class()
        self.fit_dialogues: frozenset[tuple[str, str]] = frozenset()
        self.fit_sample_ids: frozenset[str] = frozenset()
        self.fit_split = ""
        self.popularity: np.ndarray | None = None  # [N] target counts in the training samples
        self.num_items = 0

    @property
    def max_history(self) -> int:
        return self.config.max_len

    # ---- fitting ------------------------------------------------------------------------
    def fit(
        self: BaselineT, samples: Sequence[LinkedSample], corpus: Corpus, split: str = "train"
    ) -> BaselineT:
        """Fit on linked training samples over `corpus`; records the dialogues fitted on so
        evaluation can refuse samples from them (:meth:`check_unseen`)."""
        if not samples:
            raise InputError(f"{self.label}: no training samples to fit on")
        num_items = len(corpus)
        histories, targets = [], []
        per_dialogue: dict[tuple[str, str], set[int]] = {}
        for item in samples:
            h = np.asarray([corpus.index_of(c) for c in item.history_ids], dtype=np.int64)
            t = np.asarray([corpus.index_of(c) for c in item.target_ids], dtype=np.int64)
            histories.append(h)
            targets.append(t)
            key = (item.sample.dataset, item.sample.dialogue_id)
            per_dialogue.setdefault(key, set()).update(h.tolist(), t.tolist())
        rows = TrainingRows(
            histories,
            targets,
            [np.asarray(sorted(v), dtype=np.int64) for v in per_dialogue.values()],
            num_items,
        )
        counts = Counter(int(r) for t in targets for r in t)
        popularity = np.zeros(num_items, dtype=np.float64)
        if counts:
            popularity[list(counts)] = list(counts.values())
        self.popularity = popularity
        self.num_items = num_items
        self.fit_dialogues = frozenset(per_dialogue)
        self.fit_sample_ids = frozenset(item.sample.sample_id for item in samples)
        self.fit_split = split
        self._fit(rows)
        return self

    def _fit(self, rows: TrainingRows) -> None:
        raise NotImplementedError

    # ---- scoring ------------------------------------------------------------------------
    def score_histories(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """[B, N] float scores over every corpus row for histories of rows (oldest first);
        higher is better; history items need not be masked here."""
        raise NotImplementedError

    def _require_fitted(self) -> np.ndarray:
        if self.popularity is None:
            raise NotFittedError(f"{self.label} is not fitted; call fit() on the training split")
        return self.popularity

    def check_unseen(self, linked: Sequence[LinkedSample]) -> None:
        """Refuse to score samples whose dialogue was in the fit set (test data must be unseen)."""
        self._require_fitted()
        leaked = [
            item.sample.sample_id
            for item in linked
            if (item.sample.dataset, item.sample.dialogue_id) in self.fit_dialogues
        ]
        if leaked:
            raise FitLeakError(
                f"{self.label} was fitted on {len(self.fit_dialogues):,} dialogues "
                f"(split '{self.fit_split}'); {len(leaked):,} of the {len(linked):,} samples to "
                f"evaluate come from them (e.g. {', '.join(leaked[:3])}); evaluate on a split "
                f"it was not fitted on"
            )

    @staticmethod
    def histories_from_tokens(tokens: np.ndarray, max_len: int) -> list[np.ndarray]:
        """Left-padded tokens (row + 1, 0 = pad) -> each row's history rows, oldest first."""
        return [row[row > 0][-max_len:] - 1 for row in tokens]

    def top_rows(self, batch: RetrievalBatch, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The `CandidateSource` entry point: :meth:`topk` of the batch's histories."""
        return self.topk(batch.history, k)

    @torch.no_grad()
    def topk(self, history: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k corpus rows [B, k] and their scores, history items excluded. Rows are -1
        (score -inf) when fewer than k unmasked items remain."""
        popularity = self._require_fitted()
        tokens = np.asarray(history.cpu().numpy())
        if tokens.ndim != 2:
            raise ValueError(f"history must be a [B, L] array, got shape {tokens.shape}")
        if tokens.size and (tokens.min() < 0 or tokens.max() > self.num_items):
            raise ValueError(
                f"history tokens must be in [0, {self.num_items}] (corpus row + 1, 0 = pad); the "
                f"baseline was fitted on a corpus of {self.num_items:,} movies"
            )
        histories = self.histories_from_tokens(tokens.astype(np.int64), self.config.max_len)
        scores = np.asarray(self.score_histories(histories), dtype=np.float64)
        k = min(int(k), self.num_items)
        rows_out = np.full((len(histories), k), -1, dtype=np.int64)
        values_out = np.full((len(histories), k), -np.inf, dtype=np.float64)
        for b, rows in enumerate(histories):
            row_scores = scores[b]
            row_scores[rows] = -np.inf
            top = _top_rows(row_scores, popularity, k)
            rows_out[b, : len(top)] = top
            values_out[b, : len(top)] = row_scores[top]
        return torch.from_numpy(rows_out), torch.from_numpy(values_out.astype(np.float32))

    def recommend(
        self, linked: Sequence[LinkedSample], corpus: Corpus, k: int, batch_size: int = 256
    ) -> list[list[str]]:
        """Each sample's top-k corpus ids, through :meth:`topk` exactly as the evaluator serves
        it (the fit-set guard included)."""
        self.check_unseen(linked)
        tokens = [[corpus.index_of(c) + 1 for c in item.history_ids] for item in linked]
        rows = ranked_rows(self.topk, tokens, k, batch_size)
        return [[corpus.ids[i] for i in r] for r in rows]

    def describe(self) -> str:
        """The fitted hyperparameters, for the evaluation's `source` column."""
        params = self.config.model_dump(exclude={"max_len"})
        return ", ".join(f"{k}={v}" for k, v in params.items())


def _top_rows(scores: np.ndarray, popularity: np.ndarray, k: int) -> np.ndarray:
    """The k best finite-score rows: score descending, then popularity, then row ascending."""
    finite = np.isfinite(scores)
    available = int(finite.sum())
    k = min(k, available)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    filled = np.where(finite, scores, -np.inf)
    kth = np.partition(filled, len(filled) - k)[len(filled) - k]  # the k-th largest score
    pool = np.flatnonzero(finite & (filled >= kth))  # every row tied with the k-th, too
    order = np.lexsort((pool, -popularity[pool], -filled[pool]))
    return pool[order[:k]]
