"""The prompt ranker: every LLM backend's shared half. It builds the Figure 5 prompt within the
token budget, sends it through the response cache and its `RankerCalls` (rate limits, adaptive
concurrency, growing timeouts, a retry budget and the circuit breaker: `ranker_calls.py`),
parses the reply into a ranking, and offers the LLM-only mode. A backend (`openai_ranker.py`,
`gemini_ranker.py`, `local_ranker.py`, `llamacpp_ranker.py`) implements `_complete` and raises
`CallError`."""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from rar.data.types import Turn
from rar.rankers.base import Ranker, run_sync
from rar.rankers.budget import FittedPrompt, PromptTooLongError, fit_prompt
from rar.rankers.cache import CachedReply, ResponseCache, cache_key
from rar.rankers.llm_only import (
    CorpusTitles,
    LLMOnlyResult,
    llm_only_prompt,
    needs_free_generation,
)
from rar.rankers.parser import parse_ranking
from rar.rankers.prompt import Candidate, CandidateLines, prompt_order
from rar.rankers.ranker_calls import CallError, Completion, RankerCalls, classify
from rar.rankers.ranker_config import PromptConfig, RankerConfig
from rar.rankers.replies import ModelReply, StoredReply, storable
from rar.rankers.tokens import TokenCounter, build_counter
from rar.rankers.types import RankRequest, RankResult

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.rankers.limits import AsyncRateLimiter

log = logging.getLogger("rar.rankers")
R = TypeVar("R")

__all__ = ["CallError", "Completion", "PromptRanker"]  # backends import all three from here


class PromptRanker(Ranker):
    """A ranker that sends the Figure 5 prompt to a text model and parses the reply."""

    def __init__(self, config: RankerConfig, corpus: Corpus):
        super().__init__(config, corpus)
        self.cache = ResponseCache(config.cache.path) if config.cache.enabled else None
        # limiters, learned capacity, retry budget, breaker, timeout: across every batch
        self.calls = RankerCalls(
            config.limits,
            self.max_in_flight(),
            self._stats,
            self._classify,
            self._scrub,
            self.server_url,
        )
        self._secret: str | None = None  # a backend's API key, scrubbed from messages
        self._lines = CandidateLines(corpus)  # metadata and prompt lines, formatted once
        self._counter: TokenCounter | None = None
        self._titles: CorpusTitles | None = None  # every corpus title (LLM-only mode)

    # --- backend hooks -------------------------------------------------------------------
    @abstractmethod
    async def _complete(self, prompt: str) -> Completion:
        """One call to the model; raise on failure."""

    async def _complete_request(self, prompt: str, candidates: list[Candidate]) -> Completion:
        """One call for a request; backends that need the candidates themselves override this."""
        return await self._complete(prompt)

    def _classify(self, exc: BaseException) -> CallError:
        """Map a backend exception to retryable or not (timeouts and connection errors retry)."""
        return classify(exc, self.config.limits.timeout_s)

    def generation_params(self) -> dict[str, Any]:
        """Everything besides model and prompt that changes the reply (part of the cache key)."""
        c = self.config
        return {"temperature": c.temperature, "max_tokens": c.max_tokens}

    @property
    def model_name(self) -> str:
        return self.config.model

    async def _prepare(self) -> None:
        """Work before the first real call that must not count against its timeout (model load)."""

    async def _open(self) -> None:
        """Create per-event-loop clients (SDK HTTP clients must not outlive their loop)."""

    async def _aclose(self) -> None:
        """Close what :meth:`_open` created."""

    def generates_text(self) -> bool:
        """The model writes its reply (in-process backends in `loglik` mode score titles)."""
        return True

    def max_in_flight(self) -> int:
        """The ceiling on concurrent calls (in-process backends override it with 1)."""
        return self.config.limits.max_in_flight

    def server_url(self) -> str:
        """Where calls go (named when the circuit breaker stops a run)."""
        return self.config.base_url or f"the {self.backend} API"

    def concurrency(self) -> int:
        """Calls allowed in flight now (the adaptive limit, or the fixed ceiling)."""
        return self.calls.controller.allowed

    @property
    def timeout_s(self) -> float:
        """The current per-call timeout (grows on timeouts, back to `limits.timeout_s`)."""
        return self.calls.timeout_s

    @property
    def _rpm(self) -> AsyncRateLimiter | None:  # the shared request-rate limiter (tests read it)
        return self.calls.rpm

    # --- driving -------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "***")
        return text

    def token_counter(self) -> TokenCounter:
        """How prompt tokens are counted (`prompt.tokenizer`; backends with a tokenizer override)."""
        if self._counter is None:
            p = self.config.prompt
            self._counter = build_counter(p.tokenizer, p.chat_overhead_tokens)
        return self._counter

    def context_window(self) -> int | None:
        """The model's context window: configured, else what the tokenizer or backend knows."""
        return self.config.context_window or self.token_counter().context_window

    def build(self, request: RankRequest) -> tuple[list[Candidate], str]:
        """Candidates (retriever order) and the prompt (candidates in configured prompt order)."""
        cands, fitted = self.build_fitted(request)
        return cands, fitted.text

    def build_fitted(self, request: RankRequest) -> tuple[list[Candidate], FittedPrompt]:
        """Like :meth:`build`, with the prompt trimmed to the token budget and window, and
        counted; raises PromptTooLongError past the window."""
        cands = self._lines.candidates(request.candidate_ids)
        order = prompt_order(request.sample_id, len(cands), self.config.prompt)
        ordered = [cands[i] for i in order]

        def render(level: int, cfg: PromptConfig) -> str:
            return self._lines.prompt(request.context, ordered, level, cfg)

        counter = self.token_counter()
        try:
            fitted = fit_prompt(
                render,
                counter.count,
                self.config.prompt,
                self.context_window(),
                self.config.max_tokens,
            )
        except PromptTooLongError:
            self._stats.prompts_too_long += 1
            raise
        self._stats.prompts_built += 1
        self._stats.prompt_tokens_counted += fitted.tokens
        self._stats.prompts_trimmed += fitted.level > 0
        self._stats.prompts_over_budget += fitted.over_budget
        return cands, fitted

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        p = self.config.price
        return (prompt_tokens * p.prompt_per_1m + completion_tokens * p.completion_per_1m) / 1e6

    async def cached_completion(
        self, key_text: str, prompt: str, cands: list[Candidate]
    ) -> ModelReply:
        """One model reply through the cache (keyed by `key_text`), the concurrency gate, rate
        limits and retries, with token, cost, latency and hit/miss accounting. Raises CallError
        (counted as a failure) when every attempt failed, and RankerUnavailable when the
        server is down."""
        key = cache_key(self.backend, self.model_name, key_text, self.generation_params())
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            self._stats.cache_hits += 1  # redacted and capped again: the entry may predate both
            text = self._storable(cached.reply).text
            return ModelReply(text, dict(cached.usage), cached.latency_s, cached=True)
        if self.cache is not None:
            self._stats.cache_misses += 1
        start = time.perf_counter()
        estimate = len(prompt) / 4 + (self.config.max_tokens or 512)
        try:
            await self._prepare()  # e.g. a model load, before the first call's timeout starts
            completion, attempts = await self.calls.call_with_retries(
                lambda: self._complete_request(prompt, cands), estimate
            )
        except CallError:
            self._stats.failures += 1
            raise
        latency = time.perf_counter() - start
        reply = self._storable(completion.text)
        usage: dict[str, Any] = {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "cost_usd": self.cost(completion.prompt_tokens, completion.completion_tokens),
            "attempts": attempts,
        }
        if reply.truncated:
            usage["reply_chars"] = reply.original_chars  # as received, before the cut
        self._stats.answered += 1
        self._stats.prompt_tokens += completion.prompt_tokens
        self._stats.completion_tokens += completion.completion_tokens
        self._stats.cost_usd += usage["cost_usd"]
        self._stats.latency_s += latency
        if self.cache is not None:
            self.cache.put(
                key, self.backend, self.model_name, CachedReply(reply.text, usage, latency)
            )
        return ModelReply(reply.text, usage, latency, cached=False)

    def _storable(self, text: str) -> StoredReply:
        """The reply as it may be parsed and stored (`rar.rankers.replies`); cuts are counted."""
        reply = storable(text, self._secret, self.config.max_reply_chars)
        self._stats.replies_truncated += reply.truncated
        return reply

    async def _rank_one(self, request: RankRequest) -> RankResult:
        """One request: its prompt, the model's reply and the ranking parsed from it (a request
        that cannot be built, or whose call failed, is a failed RankResult)."""
        try:
            cands, fitted = self.build_fitted(request)
        except (KeyError, ValueError) as exc:
            self._stats.failures += 1
            return RankResult(request.sample_id, [], error=f"bad request: {exc}", n_model_ranked=0)
        start = time.perf_counter()
        try:
            reply = await self.cached_completion(fitted.text, fitted.text, cands)
        except CallError as err:
            return self._failed_call(request, err, time.perf_counter() - start)
        return self._ranking(request, cands, fitted, reply)

    def _failed_call(self, request: RankRequest, err: CallError, latency_s: float) -> RankResult:
        """A call that failed after its attempts: the fallback order, scored as a miss."""
        message = self._scrub(str(err))
        sid = request.sample_id
        log.warning("ranker call for %s failed after %s attempt(s): %s", sid, err.attempts, message)
        return RankResult(
            sid,
            self._fallback_ids(request),
            latency_s=latency_s,
            error=message,
            usage={"attempts": err.attempts},
            n_model_ranked=0,
            score_appended=self.config.parser.score_appended,
        )

    def _ranking(
        self, request: RankRequest, cands: list[Candidate], fitted: FittedPrompt, reply: ModelReply
    ) -> RankResult:
        """The reply parsed into a ranking of the candidates, counted in the stats and usage."""
        titles, years = [c.title for c in cands], [c.year for c in cands]
        p = self.config.parser
        parsed = parse_ranking(
            reply.text, titles, years, threshold=p.threshold, append_missing=p.append_missing
        )
        st = self._stats
        st.hallucinations += len(parsed.hallucinations)
        st.items_parsed += parsed.n_items
        st.non_title_lines += len(parsed.non_titles)
        st.candidates += len(cands)
        st.model_ranked += parsed.n_matched
        st.appended += parsed.n_appended
        reply.usage.update(
            prompt_tokens_counted=fitted.tokens,
            trim_level=fitted.level,
            n_items=parsed.n_items,
            n_matched=parsed.n_matched,
            n_appended=parsed.n_appended,
            n_duplicates=parsed.n_duplicates,
            n_non_titles=len(parsed.non_titles),
        )
        return RankResult(
            sample_id=request.sample_id,
            ranked_ids=[cands[i].corpus_id for i in parsed.indices],
            raw_reply=reply.text,
            hallucinations=parsed.hallucinations,
            non_titles=parsed.non_titles,
            usage=reply.usage,
            latency_s=reply.latency_s,
            cached=reply.cached,
            n_model_ranked=parsed.n_matched,
            score_appended=p.score_appended,
        )

    async def _rank_many(self, requests: Sequence[RankRequest], progress: bool) -> list[RankResult]:
        return await self.drive(
            [self._rank_one(r) for r in requests], f"rank ({self.backend})", progress
        )

    async def drive(
        self, coroutines: Sequence[Coroutine[Any, Any, R]], desc: str, progress: bool
    ) -> list[R]:
        """Run one batch of calls (opening and closing the backend's clients); results in order.

        The progress bar shows the current concurrency limit and the server's measured
        throughput. When the circuit breaker trips, the remaining calls are cancelled and
        RankerUnavailable propagates (replies received so far are already cached)."""
        await self._open()
        tasks = [asyncio.ensure_future(c) for c in coroutines]
        self.calls.meter.start()
        try:
            if progress and tasks:
                from rar.progress import progress_bar

                with progress_bar(len(tasks), desc, "sample") as bar:
                    for fut in asyncio.as_completed(tasks):
                        await fut
                        bar.update(1)
                        bar.set_postfix_str(self.progress_postfix(), refresh=False)
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._aclose()

    # --- LLM-only mode ---------------------------------------------------------------------
    def recommend(
        self,
        requests: Sequence[tuple[str, list[Turn]]],
        n_items: int = 20,
        threshold: float = 0.85,
        progress: bool = False,
    ) -> list[LLMOnlyResult]:
        """LLM-only mode: no candidates; the model names `n_items` movies per (sample_id,
        context), matched to every corpus title (`rar.rankers.llm_only`). One result per
        request, in order; failed calls carry `error`. The calls share this ranker's cache,
        rate limiters, concurrency gate, retry budget and accounting with :meth:`rank`."""
        if not self.generates_text():
            raise needs_free_generation(self.backend)
        if self._titles is None or self._titles.threshold != threshold:
            self._titles = CorpusTitles(self.corpus, threshold)
        titles = self._titles
        results = run_sync(
            lambda: self.drive(
                [self._recommend_one(sid, ctx, n_items) for sid, ctx in requests],
                f"llm-only ({self.backend})",
                progress,
            )
        )
        st = self._stats
        st.requests += len(results)
        for res in results:
            if res.error is None:
                titles.parse(res)
                st.items_parsed += len(res.predicted)
                st.hallucinations += len(res.hallucinations)
                st.non_title_lines += len(res.non_titles)
        return results

    async def _recommend_one(
        self, sample_id: str, context: list[Turn], n_items: int
    ) -> LLMOnlyResult:
        prompt = llm_only_prompt(context, n_items, self.config.prompt)
        try:
            reply = await self.cached_completion("llm-only\n" + prompt, prompt, [])
        except CallError as err:
            return LLMOnlyResult(sample_id, [], error=self._scrub(str(err)))
        return LLMOnlyResult(
            sample_id, [], raw_reply=reply.text, usage=reply.usage, cached=reply.cached
        )

    def progress_postfix(self) -> str:
        """E.g. "in flight 2/16, 7.5 calls/min, 290 tok/s": the adaptive limit, throughput."""
        per_min, tok_s = self.calls.meter.rates()
        return (
            f"in flight {self.concurrency()}/{self.calls.controller.ceiling}, "
            f"{per_min:.1f} calls/min, {tok_s:.0f} tok/s"
        )

    def info(self) -> dict[str, Any]:
        return super().info() | {"model": self.model_name, "concurrency": self.concurrency()}

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
