"""The project's own error types: something the user gave or set up is wrong, not a bug.

The `rar` command prints a :class:`RarError` as one line and exits with its `exit_code`; every
other exception is a bug and keeps its traceback. Raise one of these only where the message
tells the user what to fix (a config key, a file and line, a missing run, an unknown name).

Each concrete class also derives from the builtin it replaces (ValueError, FileNotFoundError,
FileExistsError, KeyError), so library callers and tests that catch the builtin still work.
A leaf module: imports nothing of ours, so every layer may raise these.
"""

from __future__ import annotations


class RarError(Exception):
    """An input or usage error the CLI reports as `error: <message>` without a traceback."""

    exit_code: int = 2


class InputError(RarError, ValueError):
    """A value the user gave is invalid: a config key, a flag, a file's contents, a name."""


class MissingPathError(RarError, FileNotFoundError):
    """A file, directory, run or checkpoint the user pointed at does not exist."""


class PathExistsError(RarError, FileExistsError):
    """Refusing to replace something that already exists (the message says how to proceed)."""


class UnknownKeyError(RarError, KeyError):
    """A lookup by a user-given name or id found nothing (a movie, a system, a dataset link)."""

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; the message is meant to be read
        return str(self.args[0]) if self.args else ""


class StorageError(RarError, OSError):
    """A file could not be written where it goes: the disk is full, the place is read-only or
    not a directory. The message names the file and the way out."""
