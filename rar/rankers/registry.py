"""Ranker backends by name: the one table that building, config validation, CLI help and error
messages all derive from, and `build_ranker(config, corpus)`.

Each backend names its class as "module:Class", imported only when built, so reading the table
(`rar --help`, config validation) never loads torch, transformers or an HTTP client.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rar.errors import InputError

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.rankers.base import Ranker
    from rar.rankers.ranker_config import RankerConfig


@dataclass(frozen=True)
class Backend:
    """One ranker backend: where its class lives and whether a language model reads the prompt."""

    name: str
    target: str  # "module:Class"
    llm: bool  # a language model: it has a model name and can recommend without candidates


RANKERS: dict[str, Backend] = {
    backend.name: backend
    for backend in (
        Backend("openai", "rar.rankers.openai_ranker:OpenAIRanker", llm=True),
        Backend("gemini", "rar.rankers.gemini_ranker:GeminiRanker", llm=True),
        Backend("local", "rar.rankers.local_ranker:LocalRanker", llm=True),
        Backend("llamacpp", "rar.rankers.llamacpp_ranker:LlamaCppRanker", llm=True),
        Backend("semantic", "rar.rankers.semantic_ranker:SemanticRanker", llm=False),
        Backend("trained", "rar.rankers.trained_ranker:TrainedRanker", llm=False),
    )
}
RANKER_NAMES: tuple[str, ...] = tuple(RANKERS)
LLM_RANKER_NAMES: tuple[str, ...] = tuple(name for name, b in RANKERS.items() if b.llm)


def ranker_choices(names: tuple[str, ...] = RANKER_NAMES) -> str:
    """`semantic | openai | ...` for help texts and error messages."""
    return " | ".join(names)


def ranker_class(name: str) -> type[Ranker]:
    """The class registered as `name` (imported now); an unknown name lists the known ones."""
    if name not in RANKERS:
        raise InputError(f"unknown ranker backend {name!r}; expected {ranker_choices()}")
    module, _, attr = RANKERS[name].target.partition(":")
    return cast("type[Ranker]", getattr(importlib.import_module(module), attr))


def build_ranker(config: RankerConfig, corpus: Corpus) -> Ranker:
    """A ranker for `config.backend` over `corpus`."""
    return ranker_class(config.backend)(config, corpus)
