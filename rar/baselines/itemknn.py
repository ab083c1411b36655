"""ItemKNN: item-to-item co-occurrence with recency weighting, plus a small popularity term.

    score(c) = Σ over history items h of decay^age(h) · count(h → c)  +  pop_weight · pop(c)

count(h → c) is how often c was a recommendation target of a training sample whose history held
h (so each ordered pair counts once per dialogue); age(h) is 0 for the latest mention, 1 for the
one before, ...; pop(c) is c's training-target count divided by the largest one. Counts are kept
sparse (corpus × corpus), so the model fits any corpus size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field
from scipy import sparse

from rar.baselines.base import Baseline, BaselineConfig, TrainingRows


class ItemKNNConfig(BaselineConfig):
    decay: float = Field(
        0.8, gt=0, le=1, description="Weight per step of age: the latest history item gets 1."
    )
    normalise: Literal["none", "source", "cosine"] = Field(
        "none",
        description="count(h→c) as is, divided by h's total (P(c | h)), or by sqrt(out(h)·in(c)).",
    )
    pop_weight: float = Field(
        0.1, ge=0, description="Weight of popularity (max-normalised) added to every score."
    )


class ItemKNN(Baseline):
    name = "itemknn"
    label = "ItemKNN"
    config_class = ItemKNNConfig
    grid = {
        "decay": [0.3, 0.5, 0.8, 1.0],
        "normalise": ["none", "source"],
        "pop_weight": [0.01, 0.1],
    }
    config: ItemKNNConfig

    def _fit(self, rows: TrainingRows) -> None:
        sources, dests = [], []
        for history, targets in zip(rows.histories, rows.targets, strict=True):
            if len(history) and len(targets):
                sources.append(np.repeat(history, len(targets)))
                dests.append(np.tile(targets, len(history)))
        n = rows.num_items
        src = np.concatenate(sources) if sources else np.zeros(0, dtype=np.int64)
        dst = np.concatenate(dests) if dests else np.zeros(0, dtype=np.int64)
        # duplicates are summed: entry (h, c) is count(h → c)
        self.counts = sparse.csr_matrix(
            (np.ones(len(src), dtype=np.float64), (src, dst)), shape=(n, n)
        )
        self.counts.sum_duplicates()
        self.weights = self._normalised()

    def _normalised(self) -> sparse.csr_matrix:
        """count(h → c) under `config.normalise` (fixed at fit time)."""
        counts = self.counts
        if self.config.normalise == "none":
            return counts
        out_deg = np.asarray(counts.sum(axis=1)).ravel()
        if self.config.normalise == "source":
            scale = np.divide(1.0, out_deg, out=np.zeros_like(out_deg), where=out_deg > 0)
            return sparse.diags(scale) @ counts
        in_deg = np.asarray(counts.sum(axis=0)).ravel()
        left = np.divide(1.0, np.sqrt(out_deg), out=np.zeros_like(out_deg), where=out_deg > 0)
        right = np.divide(1.0, np.sqrt(in_deg), out=np.zeros_like(in_deg), where=in_deg > 0)
        return sparse.diags(left) @ counts @ sparse.diags(right)

    def score_histories(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        popularity = self._require_fitted()
        indptr = np.zeros(len(histories) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(h) for h in histories])
        cols = np.concatenate(histories) if histories else np.zeros(0, dtype=np.int64)
        positions: list[np.ndarray] = [np.arange(len(h))[::-1] for h in histories]
        ages = np.concatenate(positions or [np.zeros(0)])
        recency = sparse.csr_matrix(
            (self.config.decay ** ages.astype(np.float64), cols, indptr),
            shape=(len(histories), self.num_items),
        )  # duplicate columns (never produced by linking) would be summed
        scores = (recency @ self.weights).toarray()
        top = popularity.max()
        if top > 0 and self.config.pop_weight > 0:
            scores += self.config.pop_weight * (popularity / top)
        return scores
