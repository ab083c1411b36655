"""Shared CLI plumbing: the one error boundary that turns the project's own errors into one line.

Only :class:`rar.errors.RarError` is shown without a traceback; any other exception is a bug
and propagates with its traceback, so a KeyError in our code is never mistaken for bad input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
