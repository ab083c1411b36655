"""Rankers: the frozen f_llm that reads a conversation and k candidates and returns a ranking.

One prompt builder, one parser and one title matcher shared by four swappable backends
(OpenAI-compatible, Gemini, local transformers LM, offline semantic), selected by config.
"""

from rar.rankers.base import Ranker
from rar.rankers.ranker_config import RankerConfig
from rar.rankers.registry import build_ranker
from rar.rankers.types import RankRequest, RankResult

__all__ = ["RankRequest", "RankResult", "Ranker", "RankerConfig", "build_ranker"]
