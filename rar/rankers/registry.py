"""`build_ranker(config, corpus)`: the one switch between backends."""

from __future__ import annotations

from typing import Any

from rar.errors import InputError
from rar.rankers.base import Ranker
from rar.rankers.ranker_config import RankerConfig


def build_ranker(config: RankerConfig, corpus: Any) -> Ranker:
    """A ranker for `config.backend` over `corpus` (a corpus_builder Corpus or look-alike)."""
    if config.backend == "semantic":
        from rar.rankers.semantic_ranker import SemanticRanker

        return SemanticRanker(config, corpus)
    if config.backend == "openai":
        from rar.rankers.openai_ranker import OpenAIRanker

        return OpenAIRanker(config, corpus)
    if config.backend == "gemini":
        from rar.rankers.gemini_ranker import GeminiRanker

        return GeminiRanker(config, corpus)
    if config.backend == "local":
        from rar.rankers.local_ranker import LocalRanker

        return LocalRanker(config, corpus)
    if config.backend == "llamacpp":
        from rar.rankers.llamacpp_ranker import LlamaCppRanker

        return LlamaCppRanker(config, corpus)
    if config.backend == "trained":
        from rar.rankers.trained_ranker import TrainedRanker

        return TrainedRanker(config, corpus)
    raise InputError(
        f"unknown ranker backend {config.backend!r}; "
        "expected openai|gemini|local|llamacpp|semantic|trained"
    )
