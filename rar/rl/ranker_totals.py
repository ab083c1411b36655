"""A run's ranker counters (calls, cache hits, failures, tokens, cost, ...) across resumes.

A ranker counts since it was built, so a resumed process alone would report only its own
share. The trainer stores the run's totals in every checkpoint and adds them up on resume.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from rar.rankers.base import RankerStats

COUNTERS: tuple[str, ...] = tuple(f.name for f in fields(RankerStats))
RATES: tuple[str, ...] = tuple(
    name for name, value in vars(RankerStats).items() if isinstance(value, property)
)


# what each logged step row reports as `ranker_<name>`: its increase over the step
STEP_COUNTERS: tuple[str, ...] = (
    "calls",
    "retries",
    "outage_retries",  # calls refused while the server was down (a restart), then retried
    "cache_hits",
    "failures",
    "requests",
)


def step_counters(ranker: Any) -> dict[str, float]:
    """The ranker's :data:`STEP_COUNTERS` now (empty without a ranker, as in SFT)."""
    if ranker is None:
        return {}
    stats = ranker.stats()
    return {k: float(stats.get(k, 0)) for k in STEP_COUNTERS}


def step_increase(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """`ranker_<name>`: how much each counter grew between two :func:`step_counters`."""
    return {f"ranker_{k}": after[k] - before.get(k, 0.0) for k in STEP_COUNTERS if k in after}


def counters_of(stats: dict[str, Any]) -> dict[str, float]:
    """The additive counters of a `ranker.stats()` dict (labels and rates left out)."""
    return {k: stats[k] for k in COUNTERS if isinstance(stats.get(k), (int, float))}


class RankerTotals:
    """Counters of one training run: what earlier processes carried in plus this process's share
    (measured from when the run started using the ranker, so a shared ranker is not
    double-counted)."""

    def __init__(self, ranker: Any):
        self.ranker = ranker
        self.start = counters_of(ranker.stats()) if ranker is not None else {}
        self.carried: dict[str, float] = {}

    def resume_from(self, saved: dict[str, float] | None) -> None:
        """Take over the totals a checkpoint stored (none in checkpoints older than this)."""
        self.carried = dict(saved or {})

    def totals(self) -> dict[str, float]:
        """The run's counters so far, for the next checkpoint."""
        if self.ranker is None:
            return dict(self.carried)
        now = counters_of(self.ranker.stats())
        keys = set(now) | set(self.carried)
        return {
            k: self.carried.get(k, 0) + now.get(k, 0) - self.start.get(k, 0) for k in sorted(keys)
        }

    def report(self) -> dict[str, Any]:
        """`ranker.stats()` with the counters replaced by the run's totals."""
        stats = dict(self.ranker.stats()) if self.ranker is not None else {}
        totals = self.totals()
        stats.update(totals)
        summed = RankerStats(**{k: v for k, v in totals.items() if k in COUNTERS})
        for name in RATES:  # rates from the summed counters, not from this process's
            if name in stats:
                stats[name] = getattr(summed, name)
        return stats
