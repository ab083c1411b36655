"""Baselines by name, as `rar evaluate --baseline NAME` and the configs spell them."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rar.baselines.base import Baseline
from rar.baselines.ease import EASE
from rar.baselines.itemknn import ItemKNN
from rar.baselines.most_popular import MostPopular
from rar.config import ConfigError, format_validation_error

BASELINES: dict[str, type[Baseline]] = {cls.name: cls for cls in (MostPopular, ItemKNN, EASE)}


def baseline_class(name: str) -> type[Baseline]:
    """The class registered as `name` (case and `_`/`-` insensitive)."""
    key = name.strip().lower().replace("_", "-")
    key = {"popular": "most-popular", "popularity": "most-popular", "pop": "most-popular"}.get(
        key, key
    )
    if key not in BASELINES:
        raise ValueError(f"unknown baseline '{name}'; choose from {', '.join(BASELINES)}")
    return BASELINES[key]


def build_baseline(name: str, params: dict[str, Any] | None = None) -> Baseline:
    """An unfitted baseline with `params` over its defaults (validated like any config)."""
    cls = baseline_class(name)
    try:
        config = cls.config_class.model_validate(dict(params or {}))
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(cls.config_class, exc, f"baseline {cls.name}")
        ) from None
    return cls(config)
