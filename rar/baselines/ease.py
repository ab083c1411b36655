"""EASE (Steck, 2019): a closed-form linear item-to-item model.

With X the binary dialogue × item matrix of the training split (one row per training dialogue:
every movie it mentions) over the items seen in training,

    P = (XᵀX + λI)⁻¹,   B = I − P · diag(1 / diag(P))   (so diag(B) = 0),

and a history x scores the items by x · B. Movies never seen in training score below every seen
one (ties there fall back to popularity, which is 0 for them, then to corpus order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from rar.baselines.base import Baseline, BaselineConfig, TrainingRows
from rar.retrievers.cooc_prior import ease_weights

UNSEEN_SCORE = -1e30  # below any real score, above the -inf of masked history items


class EASEConfig(BaselineConfig):
    l2: float = Field(100.0, gt=0, description="λ, the L2 penalty on B (Steck: 100-1000s).")


class EASE(Baseline):
    name = "ease"
    label = "EASE"
    config_class = EASEConfig
    grid = {"l2": [10.0, 50.0, 200.0, 1000.0]}
    config: EASEConfig

    def _fit(self, rows: TrainingRows) -> None:
        dialogues = rows.dialogue_items
        seen = np.unique(np.concatenate(dialogues)) if dialogues else np.zeros(0, dtype=np.int64)
        self.seen_rows = np.asarray(seen, dtype=np.int64)
        column = np.full(rows.num_items, -1, dtype=np.int64)
        column[self.seen_rows] = np.arange(len(self.seen_rows))
        self.column_of = column
        x = np.zeros((len(rows.dialogue_items), len(self.seen_rows)), dtype=np.float64)
        for i, items in enumerate(rows.dialogue_items):
            x[i, column[items]] = 1.0
        self.weights = ease_weights(x, self.config.l2)

    def score_histories(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        self._require_fitted()
        x = np.zeros((len(histories), len(self.seen_rows)), dtype=np.float64)
        for b, rows in enumerate(histories):
            cols = self.column_of[rows]
            x[b, cols[cols >= 0]] = 1.0
        scores = np.full((len(histories), self.num_items), UNSEEN_SCORE, dtype=np.float64)
        scores[:, self.seen_rows] = x @ self.weights
        return scores
