"""Shared CLI plumbing: the one error boundary that turns the project's own errors into one line.

Only :class:`rar.errors.RarError` is shown without a traceback; any other exception is a bug
and propagates with its traceback, so a KeyError in our code is never mistaken for bad input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

import typer
from rich.console import Console
from rich.markup import escape

from rar.errors import RarError

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
