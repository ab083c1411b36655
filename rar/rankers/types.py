"""The records a ranker consumes and produces (the contract every caller relies on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rar.data.types import Turn


@dataclass
class RankRequest:
    """Rank `candidate_ids` (corpus ids, in retriever order) for the conversation `context`."""

    sample_id: str
    context: list[Turn]
    candidate_ids: list[str]


@dataclass
class RankResult:
    """A ranking of corpus ids plus everything needed to audit it (reply, hallucinations, cost).

    `error` is set when the call finally failed; `ranked_ids` is then the retriever order when
    the config appends missing candidates (so metrics stay defined), else empty.
    """

    sample_id: str
    ranked_ids: list[str]
    raw_reply: str = ""
    hallucinations: list[str] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    latency_s: float = 0.0
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None
