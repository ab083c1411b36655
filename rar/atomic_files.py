"""Files that are never seen half-written: write to a temporary, fsync, rename.

Checkpoints also keep their previous version (`last.pt` -> `prev.pt`), so a damaged latest
checkpoint is never the only copy, and a reader of a damaged one gets one line naming it.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

import torch

from rar.errors import InputError, StorageError

# `.<name>.tmp<pid>`: the only names `temporary_for` makes, and the only ones cleaned up
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")
# what `atomic_directory` stages a directory in (`tmp`) and moves the replaced one to (`old`)
STAGING = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)(?P<pid>\d+)$")


class CheckpointError(InputError):
    """A checkpoint file exists but cannot be read (truncated, corrupt, not ours)."""


# OSErrors that say where a file goes is the problem (not our code): reported as StorageError
STORAGE_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EIO,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
    errno.EFBIG,
    errno.ENAMETOOLONG,
}


def storage_cause(exc: BaseException) -> OSError | None:
    """The OSError of a storage fault behind `exc` (torch wraps a failed write of its zip
    writer in a RuntimeError whose context is the OSError), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            return current
        current = current.__cause__ or current.__context__
    return None


def storage_error(path: Path, cause: OSError, way_out: str | None = None) -> StorageError:
    """One line naming the file, what the system said, and the way out."""
    reason = cause.strerror or str(cause)
    if way_out is None:
        if cause.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            way_out = (
                "free some space on that disk and run the command again "
                "(a training run continues from its last checkpoint with --resume)"
            )
        elif cause.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            way_out = "make it writable, or write somewhere else"
        else:
            way_out = "fix that path, or write somewhere else"
    error = StorageError(f"cannot write {path}: {reason}; {way_out}")
    error.errno = cause.errno  # str() stays the message alone (no "[Errno 28]" prefix)
    return error


@contextmanager
def storage_errors(path: Path, way_out: str | None = None) -> Iterator[None]:
    """Turn a storage fault (disk full, read-only, not a directory) while writing `path` into
    one :class:`StorageError`; any other exception passes through."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        cause = storage_cause(exc)
        if cause is None:
            raise
        raise storage_error(path, cause, way_out) from exc


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
    path: Path,
    write: Callable[[BinaryIO], object],
    keep_previous: bool = False,
    way_out: str | None = None,
) -> Path:
    """Write `path` by `write(handle)` into a temporary, fsync, rename: the one way RAR writes a
    file that a reader (or a resume after kill -9) may open. With `keep_previous` the current
    file first becomes :func:`previous_of` it, by hard link + rename, so `path` exists throughout.
    A storage fault (disk full, ...) removes the temporary and is one :class:`StorageError`
    (ending with `way_out` when given)."""
    tmp = temporary_for(path)
    try:
        with storage_errors(path, way_out):
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_file(tmp, write)
            _replace(path, tmp, keep_previous)
    except BaseException:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return path


def _write_file(tmp: Path, write: Callable[[BinaryIO], object]) -> None:
    with open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def _replace(path: Path, tmp: Path, keep_previous: bool) -> None:
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


def atomic_write_text(path: Path, text: str, way_out: str | None = None) -> Path:
    """UTF-8 text through :func:`atomic_write`, so readers never see half a file."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), way_out=way_out)


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
    staged directory is removed and `path` is untouched. Staging directories of `path` left by
    killed processes are removed first (:func:`remove_stale_staging`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(path)
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
    """`torch.load`, refusing a damaged file with one :class:`CheckpointError` naming it: one
    that does not parse, whose bytes fail the CRC-32 checksums torch's zip format stores with
    every entry (:func:`verify_checksums`), or that holds NaN or inf in a tensor."""
    try:
        verify_checksums(path)
        payload = torch.load(path, map_location=map_location, weights_only=weights_only)
    except (FileNotFoundError, CheckpointError):
        raise
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        text = str(exc).strip()
        reason = text.splitlines()[0].split(". ")[0][:100] if text else type(exc).__name__
        size = path.stat().st_size if path.exists() else 0
        raise CheckpointError(
            f"{path} is unreadable ({size} bytes, truncated or corrupt: {reason})"
        ) from exc
    bad = first_non_finite(payload)
    if bad is not None:
        raise CheckpointError(
            f"{path} holds NaN or inf in `{bad}` (the file was damaged, or the training diverged)"
        )
    return payload


def verify_checksums(path: Path) -> None:
    """Check every entry of a torch checkpoint against the CRC-32 stored with it (torch's zip
    format writes one per entry; a checkpoint of the legacy non-zip format has none and passes)."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise CheckpointError(
            f"{path} is unreadable ({path.stat().st_size} bytes, truncated or corrupt: {exc})"
        ) from exc
    if bad is not None:
        raise CheckpointError(
            f"{path} is corrupt: entry {bad} does not match its stored checksum (the file was "
            "damaged after it was written)"
        )


def first_non_finite(value: Any, where: str = "") -> str | None:
    """The key path of the first floating tensor holding NaN or inf in `value`, or None."""
    if isinstance(value, torch.Tensor):
        if (value.is_floating_point() or value.is_complex()) and not bool(
            torch.isfinite(value).all()
        ):
            return where or "<tensor>"
        return None
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, child in items:
        found = first_non_finite(child, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


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


def remove_stale_staging(path: Path) -> list[Path]:
    """Delete the staging directories of `path` (`.<name>.tmp<pid>`, and `.<name>.old<pid>` once
    `path` exists again) that processes no longer running left behind (a kill during a build).
    Nothing else, and nothing of a live process, is touched; returns what was removed."""
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    for entry in path.parent.iterdir():
        match = STAGING.match(entry.name)
        if not match or match["name"] != path.name or not entry.is_dir() or entry.is_symlink():
            continue
        if _is_running(int(match["pid"])):
            continue
        if match["kind"] == "old" and not path.exists():
            continue  # a kill between the two renames: the old copy is all there is
        shutil.rmtree(entry, ignore_errors=True)
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
