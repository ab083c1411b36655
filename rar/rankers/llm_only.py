"""The LLM-only mode of a prompt ranker (`PromptRanker.recommend`): no retrieval, the LLM
names movies from its own knowledge. :class:`LLMOnlyRanker` is what a caller needs of it, and
:func:`llm_only_ranker` turns a ranker into one or refuses (the `Ranker` base knows nothing of
this mode).

Its titles are matched against *every* corpus title (threshold 0.85); a title that matches no
corpus movie is a hallucination. This is the paper's "LLM-only Qwen" comparison point for the
popularity and hallucination analysis. The mode is the ranker's own (one backend, response
cache, rate limiters, concurrency gate, retries and cost accounting for both modes), so its
numbers are comparable with the RAR runs and the configured limits hold across every batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rar.data.types import Turn
from rar.errors import InputError
from rar.rankers.parser import TITLE, reply_lines
from rar.rankers.prompt import format_context
from rar.rankers.ranker_config import PromptConfig
from rar.rankers.registry import LLM_RANKER_NAMES

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.rankers.base import Ranker

LLM_ONLY_INSTRUCTIONS = (
    "You are an expert in movie recommendations. Analyze the provided conversation history to "
    "identify the user's preferences, such as genres and actors. Then, recommend {n} movies that "
    "best match these preferences, best first. Return your answer as a numbered list with each "
    "movie on a new line in the format: '<rank>. <movie name> (<year>)'. Do not include any "
    "additional commentary, formatting or chattiness."
)


def llm_only_prompt(context: list[Turn], n_items: int, config: PromptConfig) -> str:
    return (
        LLM_ONLY_INSTRUCTIONS.format(n=n_items)
        + "\n\nConversation history:\n"
        + format_context(context, config)
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

    @property
    def scored_ids(self) -> list[str]:
        """What metrics score: every corpus movie the model named, in its order."""
        return list(self.ranked_ids)


@runtime_checkable
class LLMOnlyRanker(Protocol):
    """A ranker that names movies without candidates (`PromptRanker`, an LLM backend)."""

    def recommend(
        self,
        requests: Sequence[tuple[str, list[Turn]]],
        n_items: int = 20,
        threshold: float = 0.85,
        progress: bool = False,
    ) -> list[LLMOnlyResult]:
        """One result per (sample_id, context), in order; failed calls carry `error`."""
        ...


def llm_only_ranker(ranker: Ranker) -> LLMOnlyRanker:
    """`ranker` in its LLM-only mode; a ranker that cannot name movies itself refuses."""
    if not isinstance(ranker, LLMOnlyRanker):
        raise not_an_llm(ranker.backend)
    return ranker


def not_an_llm(backend: str) -> InputError:
    """The error for a ranker that cannot name movies itself (no free generation)."""
    return InputError(
        f"LLM-only evaluation needs an LLM backend ({', '.join(LLM_RANKER_NAMES)}); "
        f"'{backend}' cannot name movies itself"
    )


def needs_free_generation(backend: str) -> InputError:
    """The error for an in-process backend (local, llamacpp) set to score titles (`loglik`)
    instead of writing them."""
    return InputError(
        f"LLM-only evaluation needs free generation; set ranker.{backend}.mode=generate"
    )


class CorpusTitles:
    """Every corpus title, to match the titles an LLM named on its own."""

    def __init__(self, corpus: Corpus, threshold: float = 0.85):
        from rar.matching import TitleMatcher

        self.corpus = corpus
        self.threshold = threshold
        movies = corpus.movies
        self.matcher = TitleMatcher(
            movies["title"].tolist(), movies["year"].tolist(), threshold=threshold
        )

    def parse(self, result: LLMOnlyResult) -> None:
        """Fill a reply's ranked corpus ids, predicted titles, hallucinated titles and
        non-title lines; which lines are title attempts is the ranker parser's structural rule."""
        lines = reply_lines(result.raw_reply)
        items = [text for text, tag in lines if tag == TITLE]
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
        result.ranked_ids, result.predicted, result.hallucinations = ranked, items, hallucinations
        result.non_titles = [text for text, tag in lines if tag != TITLE]
        result.usage.update(n_items=len(items), n_matched=len(items) - len(hallucinations))
