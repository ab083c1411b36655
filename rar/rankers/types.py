"""The records a ranker consumes and produces (the contract every caller relies on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rar.data.types import Turn


@dataclass
class RankRequest:
    """Rank `candidate_ids` (corpus ids, in retriever order) for the conversation `context`.

    `history_ids` are the corpus ids of the movies mentioned so far (oldest first) when the
    caller has linked them (the pipeline and RL do); a ranker that reads the mention history
    (the trained ranker's co-occurrence term) links the context's mentions itself when None."""

    sample_id: str
    context: list[Turn]
    candidate_ids: list[str]
    history_ids: list[str] | None = None


@dataclass
class RankResult:
    """A ranking of corpus ids plus everything needed to audit it (reply, hallucinations, cost).

    `ranked_ids` is complete when the config appends missing candidates: the model's own
    ranking first, then the candidates it left out in retriever order (for a failed call,
    `error` is set and it is the retriever order). `n_model_ranked` says how many leading ids
    came from the model (None: the ranker ranks every candidate itself, e.g. semantic).
    Metrics and rewards score :attr:`scored_ids`: a label the model did not output is a
    miss, unless `score_appended` (config `parser.score_appended`) says the tail counts.
    """

    sample_id: str
    ranked_ids: list[str]
    raw_reply: str = ""
    hallucinations: list[str] = field(default_factory=list)  # title attempts matching nothing
    non_titles: list[str] = field(default_factory=list)  # reply lines that are not titles
    usage: dict[str, Any] = field(default_factory=dict)
    latency_s: float = 0.0
    error: str | None = None
    cached: bool = False
    n_model_ranked: int | None = None
    score_appended: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def n_appended(self) -> int:
        """Ids in `ranked_ids` the model did not place itself."""
        if self.n_model_ranked is None:
            return 0
        return max(0, len(self.ranked_ids) - self.n_model_ranked)

    @property
    def scored_ids(self) -> list[str]:
        """The ranking metrics and rewards score: the model's own output by default."""
        if self.n_model_ranked is None or self.score_appended:
            return list(self.ranked_ids)
        return list(self.ranked_ids[: self.n_model_ranked])
