"""Shared CLI plumbing: turning expected errors into one clear line instead of a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from rar.rankers.concurrency import RankerUnavailable

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

# Errors that mean "the user gave us something wrong", shown without a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    KeyError,
)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print expected errors as `error: ...` and exit with status 2 (3: the ranker failed — its
    server is down and the run stopped, a rerun resumes from the response cache; or too many
    of its calls failed for the results to mean anything)."""
    from rar.evaluation.failed_calls import FailedCallsError

    try:
        yield
    except RankerUnavailable as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(3) from None
    except FailedCallsError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except USER_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
        raise typer.Exit(2) from None
