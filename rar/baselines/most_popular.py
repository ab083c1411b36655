"""Most-popular: every history gets the same ranking, the training targets by count.

The floor every conversational recommender must clear: it reads nothing of the conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from rar.baselines.base import Baseline, BaselineConfig, TrainingRows


class MostPopularConfig(BaselineConfig):
    """No hyperparameters: popularity is the count of each movie as a training target."""


class MostPopular(Baseline):
    name = "most-popular"
    label = "most-popular"
    config_class = MostPopularConfig
    grid: ClassVar[dict[str, Sequence[Any]]] = {}

    def _fit(self, rows: TrainingRows) -> None:
        """Nothing beyond the popularity counts the base class keeps."""

    def score_histories(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        popularity = self._require_fitted()
        return np.tile(popularity, (len(histories), 1))
