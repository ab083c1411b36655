"""What a run directory may be, and who may write it.

- A run name is one plain directory name under `tracking.runs_dir`: never empty, `.`, `..`,
  absolute, or holding a path separator (so `--name "$UNSET" --overwrite` cannot reach `runs/`
  itself or anything outside it).
- `--overwrite` replaces only a directory that is empty or provably a run this tool wrote: a
  `config.yaml` holding a mapping of config keys, a `checkpoints/` directory, and
  nothing a run does not write. Anything else is refused and left untouched.
- A live run holds an exclusive lock (`flock` on `run.lock` inside it); a second process on the
  same run is refused. The kernel drops the lock when its process dies, so a killed run never
  blocks its own `--resume`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import IO, Annotated

import yaml
from pydantic import AfterValidator

from rar.atomic_files import TEMPORARY
from rar.errors import InputError, PathExistsError

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LOCK_FILE",
    "RunLock",
    "RunName",
    "check_not_in_use",
    "check_replaceable",
    "check_run_name",
    "clear_run",
]

LOCK_FILE = "run.lock"
# every top-level entry our commands write into a run directory
RUN_ENTRIES = {
    "config.yaml",
    "metrics.jsonl",
    "metrics.json",
    "checkpoints",
    "test_per_sample.json",
    "eval",
    "reports",
    "wandb",
    LOCK_FILE,
}


def check_run_name(name: object) -> str:
    """`name` when it is one plain directory name; else an InputError saying what to pass."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(
            f"the run name is empty ({name!r}): pass --name NAME, a directory name under "
            "tracking.runs_dir"
        )
    separators = {"/", "\\", os.sep, os.altsep or "/"}
    if name in (".", "..") or any(s in name for s in separators) or Path(name).is_absolute():
        raise InputError(
            f"run name {name!r} is not a plain directory name (no '.', '..', '/' or absolute "
            "paths): pass --name NAME, and set tracking.runs_dir to choose where runs go"
        )
    if "\0" in name:
        raise InputError(f"run name {name!r} contains a NUL byte")
    return name


# the type of a config's `name` key: validated when the config is loaded (before any work)
RunName = Annotated[str, AfterValidator(check_run_name)]


def _is_run_config(file: Path) -> bool:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict)


def not_a_run_reason(path: Path) -> str | None:
    """Why `path` is not provably a run directory of ours (None when it is one, or is empty)."""
    if not path.is_dir():
        return "it is not a directory"
    entries = {entry.name for entry in path.iterdir()}
    if not entries:
        return None
    if not (path / "config.yaml").is_file():
        return "it has no config.yaml"
    if not _is_run_config(path / "config.yaml"):
        return "its config.yaml is not a YAML mapping of config keys"
    if not (path / "checkpoints").is_dir():
        return "it has no checkpoints/ directory"
    foreign = sorted(name for name in entries - RUN_ENTRIES if not TEMPORARY.match(name))
    if foreign:
        return "it holds files a run does not write: " + ", ".join(foreign[:5])
    return None


def check_replaceable(path: Path) -> None:
    """Refuse `--overwrite` of anything but an empty directory or a run this tool wrote."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink():
        reason: str | None = "it is a symbolic link"
    else:
        reason = not_a_run_reason(path)
    if reason:
        raise PathExistsError(
            f"{path} exists and is not a run directory ({reason}); refusing to replace it: "
            "pass another --name (or tracking.runs_dir), or move it away yourself"
        )


def clear_run(path: Path) -> None:
    """Empty a run directory for `--overwrite`, keeping its lock file (held by this process)."""
    for entry in path.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _in_use_error(path: Path, holder: str) -> InputError:
    pid = f" (pid {holder})" if holder else ""
    return InputError(
        f"run directory {path} is in use by another process{pid}: wait for it to finish or "
        "stop it first, or pass another --name"
    )


class RunLock:
    """The exclusive lock of one live run directory (one per directory per process)."""

    _held: dict[str, RunLock] = {}

    def __init__(self, key: str, handle: IO[str] | None):
        self.key = key
        self.handle = handle

    @classmethod
    def acquire(cls, run_dir: Path) -> RunLock:
        """Lock `run_dir` (which exists) or raise an InputError naming the holder."""
        key = str(run_dir.resolve())
        if key in cls._held:
            return cls._held[key]
        handle = None
        if fcntl is not None:
            handle = open(run_dir / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise _in_use_error(run_dir, _holder(run_dir)) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        lock = cls._held[key] = cls(key, handle)
        return lock

    def release(self) -> None:
        if self._held.get(self.key) is self:
            del self._held[self.key]
        if self.handle is not None:
            self.handle.close()  # closing the file drops the flock
            self.handle = None


def _holder(run_dir: Path) -> str:
    try:
        return (run_dir / LOCK_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def check_not_in_use(run_dir: Path) -> None:
    """Refuse early (before inputs are loaded) when another process holds `run_dir`'s lock."""
    lock_file = run_dir / LOCK_FILE
    if fcntl is None or not lock_file.is_file() or str(run_dir.resolve()) in RunLock._held:
        return
    try:
        with open(lock_file, encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _in_use_error(run_dir, _holder(run_dir)) from None
    except OSError:
        return  # unreadable lock file: Run.create's own attempt decides
