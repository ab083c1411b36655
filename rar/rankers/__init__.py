"""Rankers: the frozen f_llm that reads a conversation and k candidates and returns a ranking.

One prompt builder, one parser and one title matcher shared by swappable backends
(`rar.rankers.registry.RANKERS`: OpenAI-compatible, Gemini, local transformers LM, in-process
llama.cpp, offline semantic, trained), selected by config.

The names below are imported on first use (PEP 562), so that reading the backend table
(`rar --help`, config validation) does not load numpy, rapidfuzz and the HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rar.rankers.base import Ranker
    from rar.rankers.ranker_config import RankerConfig
    from rar.rankers.registry import build_ranker
    from rar.rankers.types import RankRequest, RankResult

_HOMES = {
    "Ranker": "rar.rankers.base",
    "RankerConfig": "rar.rankers.ranker_config",
    "build_ranker": "rar.rankers.registry",
    "RankRequest": "rar.rankers.types",
    "RankResult": "rar.rankers.types",
}

__all__ = ["RankRequest", "RankResult", "Ranker", "RankerConfig", "build_ranker"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
