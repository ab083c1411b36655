"""Baselines by name, as `rar evaluate --baseline NAME` and the configs spell them."""

from __future__ import annotations

from typing import Any

from rar.baselines.base import Baseline
from rar.baselines.ease import EASE
from rar.baselines.itemknn import ItemKNN
from rar.baselines.most_popular import MostPopular
from rar.config import validate_config
from rar.errors import InputError

BASELINES: dict[str, type[Baseline]] = {cls.name: cls for cls in (MostPopular, ItemKNN, EASE)}


def baseline_class(name: str) -> type[Baseline]:
    """The class registered as `name` (case and `_`/`-` insensitive)."""
    key = name.strip().lower().replace("_", "-")
    key = {"popular": "most-popular", "popularity": "most-popular", "pop": "most-popular"}.get(
        key, key
    )
    if key not in BASELINES:
        raise InputError(f"unknown baseline '{name}'; choose from {', '.join(BASELINES)}")
    return BASELINES[key]


def build_baseline(name: str, params: dict[str, Any] | None = None) -> Baseline:
    """An unfitted baseline with `params` over its defaults (validated like any config)."""
    cls = baseline_class(name)
    return cls(validate_config(cls.config_class, dict(params or {}), f"baseline {cls.name}"))
