"""The ranking prompt: the paper's Figure 5 (instructions, candidates with metadata, conversation
history), or the same parts with the conversation before the candidates (`layout: prefix_cache`),
so that the candidate sets of one conversation share a prefix an engine's KV cache can reuse."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from rar.corpus import Corpus
from rar.data.types import Turn
from rar.errors import UnknownKeyError
from rar.rankers.ranker_config import PromptConfig

INSTRUCTIONS = (
    "You are an expert in movie recommendations. Analyze the provided conversation history to "
    "identify the user's preferences, such as genres and actors. Then, rank the candidate movies "
    "by how well they match these preferences. Return your answer as a numbered list with each "
    "movie on a new line in the format: '<rank>. <movie name>'. Do not include any additional "
    "commentary, formatting or chattiness."
)

FIELD_LABELS = {
    "year": "Year",
    "genres": "Genre",
    "directors": "Director",
    "cast": "Cast",
    "writers": "Writer",
    "plot": "Plot",
    "runtime": "Runtime",
    "rating": "Rating",
}


@dataclass
class Candidate:
    corpus_id: str
    title: str
    year: int | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def display(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title


def load_candidates(corpus: Corpus, candidate_ids: list[str]) -> list[Candidate]:
    """Look up each corpus id's metadata; an unknown id is a clear error (not a silent drop)."""
    out = []
    for cid in candidate_ids:
        try:
            movie = corpus.movie(corpus.index_of(cid))
        except (KeyError, IndexError) as exc:
            raise UnknownKeyError(f"candidate id {cid!r} is not in the corpus") from exc
        out.append(Candidate(cid, movie.title, movie.year, movie.to_dict()))
    return out


class CandidateLines:
    """Each corpus movie's metadata and prompt line, loaded and formatted once (prompts reuse
    movies): lines are kept per trim level, the level's config being the same every time."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus
        self._candidates: dict[str, Candidate] = {}  # corpus id -> metadata
        self._lines: dict[tuple[int, str], str] = {}  # (trim level, corpus id) -> prompt line

    def candidates(self, candidate_ids: list[str]) -> list[Candidate]:
        """The candidates of `candidate_ids`, in order (see :func:`load_candidates`)."""
        missing = [cid for cid in dict.fromkeys(candidate_ids) if cid not in self._candidates]
        for cand in load_candidates(self.corpus, missing) if missing else []:
            self._candidates[cand.corpus_id] = cand
        return [self._candidates[cid] for cid in candidate_ids]

    def prompt(
        self, context: list[Turn], ordered: list[Candidate], level: int, config: PromptConfig
    ) -> str:
        """:func:`build_prompt` for candidates in prompt order, at trim `level` (`config`)."""
        lines = []
        for cand in ordered:
            key = (level, cand.corpus_id)
            if key not in self._lines:
                self._lines[key] = format_candidate(cand, config)
            lines.append(self._lines[key])
        return build_prompt(context, ordered, config, lines)


def prompt_order(sample_id: str, n: int, config: PromptConfig) -> list[int]:
    """Positions of candidates in the prompt: retriever order, or a shuffle seeded per sample."""
    order = list(range(n))
    if config.candidate_order == "shuffled":
        digest = hashlib.sha256(f"{config.seed}:{sample_id}".encode()).digest()
        random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def _format_value(name: str, value: Any, config: PromptConfig) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value if v is not None and str(v).strip()]
        if not items:
            return None
        return ", ".join(items[: config.max_list_items])
    text = str(value).strip()
    if not text or text.lower() in {"nan", "none", "<na>"}:
        return None
    if name == "plot":
        if config.plot_max_chars <= 0:
            return None
        if len(text) > config.plot_max_chars:
            text = text[: config.plot_max_chars].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return text


def format_candidate(c: Candidate, config: PromptConfig) -> str:
    """One candidate line: `Title (Year) | Genre: ... | Director: ... | Plot: ...`."""
    parts = [c.display if "year" in config.fields else c.title]
    for name in config.fields:
        if name in ("title", "year"):
            continue
        value = _format_value(name, c.meta.get(name), config)
        if value:
            parts.append(f"{FIELD_LABELS.get(name, name.capitalize())}: {value}")
    return " | ".join(parts)


def format_context(context: list[Turn], config: PromptConfig) -> str:
    turns = context[-config.max_context_turns :] if config.max_context_turns else context
    lines = []
    for turn in turns:
        role = "User" if turn.role == "seeker" else "Recommender"
        lines.append(f"{role}: {turn.text.strip()}")
    return "\n".join(lines) if lines else "(empty)"


def build_prompt(
    context: list[Turn],
    candidates: list[Candidate],
    config: PromptConfig,
    lines: list[str] | None = None,
) -> str:
    """The full prompt text (candidates must already be in prompt order; `lines` are their
    pre-formatted lines, when the caller memoises them)."""
    n = config.num_items or len(candidates)
    count = (
        f"Rank all {len(candidates)} candidate movies."
        if n >= len(candidates)
        else f"Return the top {n} of the {len(candidates)} candidate movies."
    )
    cand_lines = lines if lines is not None else [format_candidate(c, config) for c in candidates]
    candidate_block = "Candidate movies:\n" + "\n".join(f"- {line}" for line in cand_lines)
    history_block = "Conversation history:\n" + format_context(context, config)
    if config.layout == "prefix_cache":
        # everything that is the same for every set of this conversation comes first
        return f"{INSTRUCTIONS} {count}\n\n{history_block}\n\n{candidate_block}"
    return f"{INSTRUCTIONS} {count}\n\n{candidate_block}\n\n{history_block}"
