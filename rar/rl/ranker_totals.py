"""A run's ranker counters (calls, cache hits, failures, tokens, cost, ...) across resumes.

A ranker counts since it was built, so a resumed process alone would report only its own
share. The trainer stores the run's totals in every checkpoint and adds them up on resume.
Every counter is a field of :class:`RankerStats`; nothing here lists them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rar.rankers.base import Ranker, RankerStats

# what each logged step row reports as `ranker_<name>`: its increase over the step (a choice of
# columns for the step rows; the run's metrics.json reports every counter)
STEP_COUNTERS: tuple[str, ...] = (
    "calls",
    "retries",
    "outage_retries",  # calls refused while the server was down (a restart), then retried
    "cache_hits",
    "failures",
    "requests",
)


def step_counters(ranker: Ranker | None) -> dict[str, float]:
    """The ranker's :data:`STEP_COUNTERS` now (empty without a ranker, as in SFT)."""
    if ranker is None:
        return {}
    stats = ranker.stats()
    return {k: float(getattr(stats, k)) for k in STEP_COUNTERS}


def step_increase(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """`ranker_<name>`: how much each counter grew between two :func:`step_counters`."""
    return {f"ranker_{k}": after[k] - before.get(k, 0.0) for k in STEP_COUNTERS if k in after}


class RankerTotals:
    """Counters of one training run: what earlier processes carried in plus this process's share
    (measured from when the run started using the ranker, so a shared ranker is not
    double-counted)."""

    def __init__(self, ranker: Ranker | None):
        self.ranker = ranker
        self.start = ranker.stats() if ranker is not None else RankerStats()
        self.carried = RankerStats()

    def resume_from(self, saved: dict[str, float] | None) -> None:
        """Take over the totals a checkpoint stored (none in checkpoints older than this)."""
        self.carried = RankerStats.from_dict(saved)

    def stats(self) -> RankerStats:
        """The run's counters so far."""
        if self.ranker is None:
            return self.carried
        return self.carried + (self.ranker.stats() - self.start)

    def totals(self) -> dict[str, float]:
        """The run's counters so far, as the next checkpoint stores them."""
        return asdict(self.stats())

    def report(self) -> dict[str, Any]:
        """The ranker block of metrics.json: what the ranker is, and the run's counters with
        rates computed from them (not from this process's share)."""
        if self.ranker is None:  # SFT without validation: no ranker was ever asked
            return {}
        return self.ranker.info() | self.stats().as_dict()
