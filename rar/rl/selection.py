"""Model selection for `rar train`: the best validation value so far, and early stopping.

Kept apart from the loop so its state is one small object the checkpoint stores and restores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rar.errors import InputError


@dataclass
class ModelSelection:
    """Tracks `metric` over validations: the best value, its step and metrics, and how many
    validations since it (`patience` of them without improvement stop the run)."""

    metric: str
    patience: int | None
    best: dict[str, Any] = field(default_factory=lambda: {"value": None, "step": None})
    bad_evals: int = 0
    stopped_early: bool = False

    def update(self, metrics: dict[str, float], step: int) -> bool:
        """Record one validation; returns whether it is the new best (save the model then)."""
        if self.metric not in metrics:
            raise InputError(
                f"select_metric '{self.metric}' is not reported; choose one of {sorted(metrics)}"
            )
        value = metrics[self.metric]
        improved = self.best["value"] is None or value > self.best["value"]
        if improved:
            self.best = {"value": value, "step": step, "metrics": dict(metrics)}
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        if self.patience is not None and self.bad_evals >= self.patience:
            self.stopped_early = True
        return improved

    def row(self) -> dict[str, Any]:
        """The selection state logged with every validation row."""
        return {
            "val/best": self.best["value"],
            "val/best_step": self.best["step"],
            "val/evals_without_improvement": self.bad_evals,
        }

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores (its `best` and `early_stopping` entries)."""
        return {
            "best": dict(self.best),
            "early_stopping": {"bad_evals": self.bad_evals, "stopped_early": self.stopped_early},
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.best = dict(state["best"])
        early = state.get("early_stopping", {})
        self.bad_evals = int(early.get("bad_evals", 0))
        self.stopped_early = bool(early.get("stopped_early", False))
