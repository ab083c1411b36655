"""The LLM-only baseline: no retrieval, the LLM names movies from its own knowledge.

Its titles are matched against *every* corpus title (threshold 0.85); a title that matches no
corpus movie is a hallucination. This is the paper's "LLM-only Qwen" comparison point for the
popularity and hallucination analysis. It reuses the ranker's backend, response cache,
concurrency, retries and cost accounting, so numbers are comparable with the RAR runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rar.data.types import Turn
from rar.errors import InputError
from rar.rankers.base import CallError, PromptRanker
from rar.rankers.parser import TITLE, reply_lines
from rar.rankers.prompt import format_context
from rar.rankers.registry import LLM_RANKER_NAMES

if TYPE_CHECKING:
    from rar.corpus import Corpus

LLM_ONLY_INSTRUCTIONS = (
    "You are an expert in movie recommendations. Analyze the provided conversation history to "
    "identify the user's preferences, such as genres and actors. Then, recommend {n} movies that "
    "best match these preferences, best first. Return your answer as a numbered list with each "
    "movie on a new line in the format: '<rank>. <movie name> (<year>)'. Do not include any "
    "additional commentary, formatting or chattiness."
)


def llm_only_prompt(context: list[Turn], n_items: int, ranker: PromptRanker) -> str:
    return (
        LLM_ONLY_INSTRUCTIONS.format(n=n_items)
        + "\n\nConversation history:\n"
        + format_context(context, ranker.config.prompt)
    )


@dataclass
class LLMOnlyResult:
    sample_id: str
    ranked_ids: list[str]
    predicted: list[str] = field(default_factory=list)  # titles as the model wrote them
    hallucinations: list[str] = field(default_factory=list)
    non_titles: list[str] = field(default_factory=list)  # reply lines that are not titles
    raw_reply: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cached: bool = False


class LLMOnlyRecommender:
    """Ask an LLM ranker backend for movies without candidates; match its titles to the corpus."""

    def __init__(self, ranker: Any, corpus: Corpus, n_items: int = 20, threshold: float = 0.85):
        if not isinstance(ranker, PromptRanker):
            raise InputError(
                f"LLM-only evaluation needs an LLM backend ({', '.join(LLM_RANKER_NAMES)}); "
                f"'{getattr(ranker, 'backend', type(ranker).__name__)}' cannot name movies itself"
            )
        # in-process backends (local, llamacpp) may score titles instead of writing them
        section = getattr(ranker.config, ranker.backend, None)
        if getattr(section, "mode", None) == "loglik":
            raise InputError(
                f"LLM-only evaluation needs free generation; set ranker.{ranker.backend}.mode=generate"
            )
        self.ranker = ranker
        self.corpus = corpus
        self.n_items = n_items
        self.threshold = threshold
        self._matcher = None

    @property
    def matcher(self):
        if self._matcher is None:
            from rar.matching import TitleMatcher

            movies = self.corpus.movies
            self._matcher = TitleMatcher(
                movies["title"].tolist(), movies["year"].tolist(), threshold=self.threshold
            )
        return self._matcher

    def parse(self, reply: str) -> tuple[list[str], list[str], list[str], list[str]]:
        """(ranked corpus ids, predicted titles, hallucinated titles, non-title lines) from a
        reply; which lines are title attempts is the ranker parser's structural rule."""
        lines = reply_lines(reply)
        items = [text for text, tag in lines if tag == TITLE]
        non_titles = [text for text, tag in lines if tag != TITLE]
        matches = self.matcher.match_many(items) if items else []
        ranked: list[str] = []
        hallucinations: list[str] = []
        for text, match in zip(items, matches, strict=True):
            if match is None:
                hallucinations.append(text)
                continue
            cid = self.corpus.ids[match.index]
            if cid not in ranked:
                ranked.append(cid)
        return ranked, items, hallucinations, non_titles

    async def _one(self, sample_id: str, context: list[Turn]) -> LLMOnlyResult:
        r = self.ranker
        prompt = llm_only_prompt(context, self.n_items, r)
        try:
            reply, usage, _, from_cache = await r.cached_completion(
                "llm-only\n" + prompt, prompt, []
            )
        except CallError as err:
            return LLMOnlyResult(sample_id, [], error=r._scrub(str(err)))
        return LLMOnlyResult(sample_id, [], raw_reply=reply, usage=usage, cached=from_cache)

    async def _run(self, requests: Sequence[tuple[str, list[Turn]]], progress: bool):
        r = self.ranker
        coroutines = [self._one(sid, ctx) for sid, ctx in requests]
        return await r.drive(coroutines, f"llm-only ({r.backend})", progress)

    def recommend(
        self, requests: Sequence[tuple[str, list[Turn]]], progress: bool = False
    ) -> list[LLMOnlyResult]:
        """One result per (sample_id, context), in order; failed calls carry `error`."""
        results = asyncio.run(self._run(list(requests), progress))
        self.ranker._stats.requests += len(results)
        for res in results:
            if res.error is None:
                res.ranked_ids, res.predicted, res.hallucinations, res.non_titles = self.parse(
                    res.raw_reply
                )
                res.usage.update(
                    n_items=len(res.predicted),
                    n_matched=len(res.predicted) - len(res.hallucinations),
                )
                self.ranker._stats.items_parsed += len(res.predicted)
                self.ranker._stats.hallucinations += len(res.hallucinations)
                self.ranker._stats.non_title_lines += len(res.non_titles)
        return results
