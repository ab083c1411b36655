"""Shared CLI plumbing: the one error boundary that turns the project's own errors into one line.

Only :class:`rar.errors.RarError` is shown without a traceback; any other exception is a bug
and propagates with its traceback, so a KeyError in our code is never mistaken for bad input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from rar.errors import InputError, RarError

if TYPE_CHECKING:
    from rar.evaluation.evaluate_config import EvaluateConfig
    from rar.rankers.ranker_config import RankerConfig

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print a RarError as `error: ...` and exit with its status: 2 for bad input, 3 when the
    ranker failed (its server is down and the run stopped, a rerun resumes from the response
    cache; or too many of its calls failed for the results to mean anything)."""
    try:
        yield
    except RarError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(exc.exit_code) from None


def flag_overrides(overrides: Sequence[str], flags: Mapping[str, object]) -> list[str]:
    """The `--set` overrides, then `key=value` for each convenience flag that was given (None
    and False mean not given), so a flag such as `--corpus` is one more `--set corpus=...`:
    validated, reported and stored like any other override, and it wins over a `--set`."""
    extra = list(overrides)
    for key, value in flags.items():
        if value is None or value is False:
            continue
        extra.append(f"{key}={'true' if value is True else value}")
    return extra


def ranker_config_from_flags(
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    backend: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    base: RankerConfig | None = None,
) -> RankerConfig:
    """The one way a command turns its ranker flags into a `RankerConfig`: a ranker YAML (or an
    experiment YAML's `ranker:` section; a path or a packaged name) or else `base` (e.g. the
    evaluation config's ranker), then `--ranker BACKEND`, `--model`, `--base-url` and `--set`."""
    from rar.config import KeyOrigins, apply_overrides, read_yaml, validate_config
    from rar.rankers.ranker_config import RankerConfig
    from rar.rankers.registry import RANKER_NAMES

    origins = KeyOrigins()
    data: dict[str, Any] = {}
    if config is not None:
        data = read_yaml(config, origins)
    elif base is not None:
        data = base.model_dump()
    if isinstance(data.get("ranker"), dict) and "backend" not in data:
        data = data["ranker"]
        origins.prefix = ("ranker",)
    if backend is not None:
        if backend not in RANKER_NAMES:
            raise InputError(f"--ranker must be one of {', '.join(RANKER_NAMES)} (got {backend!r})")
        data["backend"] = backend
    if model is not None:
        data["model"] = model
    if base_url is not None:
        data["base_url"] = base_url
    data = apply_overrides(data, list(overrides), RankerConfig, origins)
    source = str(config) if config is not None else f"--ranker {backend}" if backend else "flags"
    return validate_config(RankerConfig, data, source, origins)


def ranker_spec_config(
    spec: str, model: str | None, base_url: str | None, cfg: EvaluateConfig
) -> RankerConfig:
    """`--ranker SPEC` of `rar evaluate` and `rar report`: a ranker YAML (path or packaged name
    ending in .yaml), or a backend name on top of the evaluation config's `ranker:` section."""
    if spec.endswith((".yaml", ".yml")) or Path(spec).is_file():
        return ranker_config_from_flags(spec, model=model, base_url=base_url)
    return ranker_config_from_flags(backend=spec, model=model, base_url=base_url, base=cfg.ranker)
