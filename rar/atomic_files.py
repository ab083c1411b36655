"""Files that are never seen half-written: write to a temporary, fsync, rename.

Checkpoints also keep their previous version (`last.pt` -> `prev.pt`), so a damaged latest
checkpoint is never the only copy, and a reader of a damaged one gets one line naming it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import torch

from rar.errors import InputError

# `.<name>.tmp<pid>`: the only names `temporary_for` makes, and the only ones cleaned up
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")


class CheckpointError(InputError):
    """A checkpoint file exists but cannot be read (truncated, corrupt, not ours)."""


def temporary_for(path: Path) -> Path:
    """The temporary a write of `path` goes through; the pid keeps concurrent writers apart."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(
    path: Path, write: Callable[[BinaryIO], None], keep_previous: bool = False
) -> Path:
    """Write `path` by `write(handle)` into a temporary, fsync, rename: the one way RAR writes a
    file that a reader (or a resume after kill -9) may open. With `keep_previous` the current
    file first becomes :func:`previous_of` it, by hard link + rename, so `path` exists throughout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_for(path)
    with open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    if keep_previous and path.is_file():
        previous = previous_of(path)
        staged = temporary_for(previous)
        staged.unlink(missing_ok=True)
        try:
            os.link(path, staged)
        except OSError:  # no hard links on this file system: copy instead
            shutil.copyfile(path, staged)
        os.replace(staged, previous)
    os.replace(tmp, path)
    _fsync_directory(path.parent)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """UTF-8 text through :func:`atomic_write`, so readers never see half a file."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def previous_of(path: Path) -> Path:
    """Where the version before `path` is kept: `last.pt` -> `prev.pt`, `x.pt` -> `x.prev.pt`."""
    name = "prev.pt" if path.name == "last.pt" else f"{path.stem}.prev{path.suffix}"
    return path.with_name(name)


def atomic_torch_save(payload: Any, path: Path, keep_previous: bool = False) -> Path:
    """`torch.save` through :func:`atomic_write` (optionally keeping the previous version)."""
    return atomic_write(path, lambda handle: torch.save(payload, handle), keep_previous)


@contextmanager
def atomic_directory(path: Path, replace: bool = True) -> Iterator[Path]:
    """Yield a staging sibling to fill; on success it becomes `path` by rename, so readers see
    the old directory or the new one, never half of one. With `replace=False` an existing `path`
    wins (another process got there first) and the staged copy is dropped. On an error the
    staged directory is removed and `path` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = temporary_for(path)
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir()
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if not replace:
        try:
            os.replace(staged, path)
        except OSError:  # `path` exists and is not empty: keep it
            shutil.rmtree(staged, ignore_errors=True)
        return
    old = path.with_name(f".{path.name}.old{os.getpid()}")
    if path.exists():
        os.replace(path, old)
    os.replace(staged, path)
    _fsync_directory(path.parent)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def load_torch_file(path: Path, weights_only: bool = True, map_location: str = "cpu") -> Any:
    """`torch.load`, with a damaged file reported as one :class:`CheckpointError` naming it."""
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        text = str(exc).strip()
        reason = text.splitlines()[0].split(". ")[0][:100] if text else type(exc).__name__
        size = path.stat().st_size if path.exists() else 0
        raise CheckpointError(
            f"{path} is unreadable ({size} bytes, truncated or corrupt: {reason})"
        ) from exc


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete `.<name>.tmp<pid>` files left in `directory` by processes no longer running
    (a kill during a write); returns what was removed. Other files are never touched."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        match = TEMPORARY.match(entry.name)
        if not match or not entry.is_file() or _is_running(int(match["pid"])):
            continue
        entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _is_running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own writes are never in flight while we start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True
