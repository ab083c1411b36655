"""The Ranker base every backend shares: `rank` / `rank_batch` over batches of `RankRequest`s,
the per-ranker counters (`RankerStats`), and the event-loop bridge (`run_sync`). A failed call
is recorded in its RankResult and never stops the run. The LLM backends' shared half (prompt,
cache, limits, retries, circuit breaker, the LLM-only mode) is
`rar.rankers.prompt_ranker.PromptRanker`."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

from rar.rankers.ranker_config import RankerConfig
from rar.rankers.types import RankRequest, RankResult

if TYPE_CHECKING:
    from rar.corpus import Corpus

T = TypeVar("T")


@dataclass
class RankerStats:
    """Per-ranker counters (since construction), the one type every report of them goes
    through: `after - before` is what an evaluation or a training step spent, `a + b` adds up
    a run's processes, and :meth:`as_dict` is the ranker block of evaluation.json and of an RL
    run's metrics.json, so a new counter is a new field here and nothing else."""

    requests: int = 0
    calls: int = 0  # backend calls actually made (network requests / model runs), incl. retries
    retries: int = 0
    retries_denied: int = 0  # retries the retry budget refused (the request failed instead)
    outage_retries: int = 0  # calls refused while the server was down, tried again after a probe
    cache_hits: int = 0
    cache_misses: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    hallucinations: int = 0  # title attempts matching no candidate
    items_parsed: int = 0  # title attempts (list items) in replies
    non_title_lines: int = 0  # reply lines that are not titles (chatter, headers, commentary)
    candidates: int = 0  # candidates in answered requests
    model_ranked: int = 0  # of those, candidates the model itself placed
    appended: int = 0  # of those, candidates the model left out (appended in retriever order)
    latency_s: float = 0.0  # summed latency of successful backend calls
    answered: int = 0  # successful backend replies (the calls prompt/completion_tokens cover)
    prompts_built: int = 0
    prompt_tokens_counted: int = 0  # our own count of the prompts built (see rankers/tokens.py)
    prompts_trimmed: int = 0  # metadata trimmed to fit the budget or the window
    prompts_over_budget: int = 0  # sent with titles only, still above max_prompt_tokens
    prompts_too_long: int = 0  # not sent: past the context window even with titles only
    replies_truncated: int = 0  # replies cut to max_reply_chars before parsing and storing

    @property
    def hallucination_rate(self) -> float:
        """Share of title attempts that match no candidate (chatter lines do not count)."""
        return self.hallucinations / self.items_parsed if self.items_parsed else 0.0

    @property
    def non_title_rate(self) -> float:
        """Share of parsed reply lines that were not title attempts."""
        lines = self.items_parsed + self.non_title_lines
        return self.non_title_lines / lines if lines else 0.0

    @property
    def appended_share(self) -> float:
        """Share of candidates the model left out (appended, not ranked by the model)."""
        return self.appended / self.candidates if self.candidates else 0.0

    def __add__(self, other: RankerStats) -> RankerStats:
        return RankerStats(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def __sub__(self, other: RankerStats) -> RankerStats:
        return RankerStats(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )

    @classmethod
    def from_dict(cls, counters: Mapping[str, Any] | None) -> RankerStats:
        """Counters saved as a dict (a checkpoint); a counter an older one lacks starts at 0."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (counters or {}).items() if k in names})

    def rates(self) -> dict[str, float]:
        """Every rate property, computed from these counters (never averaged across reports)."""
        kinds = vars(type(self)).items()
        return {name: getattr(self, name) for name, kind in kinds if isinstance(kind, property)}

    def as_dict(self) -> dict[str, Any]:
        """Every counter, rate and per-call figure (cost rounded to a millionth of a dollar)."""
        out: dict[str, Any] = asdict(self)
        out["cost_usd"] = round(self.cost_usd, 6)
        return out | self.rates() | self.per_call()

    def per_call(self) -> dict[str, float]:
        """Tokens per answered call (as the backend reported them) and per built prompt."""
        return {
            "prompt_tokens_per_call": self.prompt_tokens / self.answered if self.answered else 0.0,
            "completion_tokens_per_call": (
                self.completion_tokens / self.answered if self.answered else 0.0
            ),
            "counted_tokens_per_prompt": (
                self.prompt_tokens_counted / self.prompts_built if self.prompts_built else 0.0
            ),
        }


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also when an event loop is already running
    (then in a worker thread with its own loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    out: list[T] = []
    err: list[BaseException] = []

    def worker() -> None:
        try:
            out.append(asyncio.run(make()))
        except BaseException as exc:  # re-raised in the caller's thread
            err.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    if err:
        raise err[0]
    return out[0]


class Ranker(ABC):
    """Ranks candidate corpus ids for conversations. Subclasses implement :meth:`_rank_many`."""

    backend = "base"

    def __init__(self, config: RankerConfig, corpus: Corpus):
        self.config = config
        self.corpus = corpus
        self._stats = RankerStats()

    @abstractmethod
    async def _rank_many(self, requests: Sequence[RankRequest], progress: bool) -> list[RankResult]:
        """Rank every request, in order."""

    async def rank_batch(
        self, requests: Sequence[RankRequest], progress: bool = False
    ) -> list[RankResult]:
        """Rank a batch concurrently; results are in request order, failures carry `error`."""
        results = await self._rank_many(list(requests), progress)
        self._stats.requests += len(results)
        return results

    def rank(self, requests: Sequence[RankRequest], progress: bool = False) -> list[RankResult]:
        """Synchronous wrapper (also works when an event loop is already running)."""
        return run_sync(lambda: self.rank_batch(requests, progress))

    def stats(self) -> RankerStats:
        """A snapshot of the counters since construction (subtract two for what lay between)."""
        return replace(self._stats)

    def info(self) -> dict[str, Any]:
        """What the ranker is, reported beside its counters: the backend (an LLM adds its model)."""
        return {"backend": self.backend}

    def close(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Release resources (cache connections, models)."""

    def _fallback_ids(self, request: RankRequest) -> list[str]:
        return list(request.candidate_ids) if self.config.parser.append_missing else []
