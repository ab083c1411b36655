"""Run directories: `runs/<name>/` with config.yaml, metrics.jsonl, checkpoints/, metrics.json.

Optional Weights & Biases mirroring: off unless asked; offline mode when no API key is set.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, Field

from rar.atomic_files import (
    CheckpointError,
    atomic_write_text,
    load_torch_file,
    previous_of,
    remove_stale_temporaries,
    storage_errors,
)
from rar.config import ConfigModel, save_config
from rar.errors import InputError, MissingPathError, PathExistsError
from rar.run_guard import (
    RunLock,
    check_not_in_use,
    check_replaceable,
    check_run_name,
    clear_run,
)

__all__ = ["Run", "TrackingConfig", "check_run_target", "is_finished"]

log = logging.getLogger("rar.tracking")


class TrackingConfig(ConfigModel):
    """Where runs go and whether to mirror them to Weights & Biases."""

    runs_dir: str = Field("runs", description="Parent directory of run directories.")
    wandb: bool = Field(False, description="Mirror metrics to Weights & Biases.")
    wandb_project: str = Field("rar", description="W&B project name.")
    log_every: int = Field(10, ge=1, description="Log training metrics every N steps.")


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy/torch scalars and arrays unwrapped, NaN/inf as null."""
    if hasattr(value, "tolist") and callable(value.tolist):
        value = value.tolist()  # numpy/torch scalar -> number, array -> (nested) list
    elif hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


LAST = "last.pt"
FINAL_METRICS = "metrics.json"


def is_finished(run_dir: Path) -> bool:
    """Whether a run (pretraining or post-training) completed: :meth:`Run.finish` writes its
    final metrics last and atomically, so their presence is the one sign a run is done."""
    return (Path(run_dir) / FINAL_METRICS).is_file()


def check_run_target(path: Path, resume: bool, overwrite: bool) -> None:
    """Refuse, before anything is loaded or written, what cannot be done with `path`:
    resuming a run that does not exist or has no checkpoint, reusing a run without saying how,
    replacing a directory that is not a run of ours, or a run another process is writing."""
    if resume and overwrite:
        raise InputError("pass either --resume (continue the run) or --overwrite (start it again)")
    if overwrite:
        check_replaceable(path)
    if path.is_dir():
        check_not_in_use(path)
    if resume:
        last = path / "checkpoints" / LAST
        if not path.is_dir():
            raise MissingPathError(
                f"cannot resume {path}: no such run directory; drop --resume to start it"
            )
        if not last.is_file():
            previous = previous_of(last)
            hint = (
                f"{previous} exists: rename it to {LAST} to resume from it, or pass --overwrite"
                if previous.is_file()
                else "it was stopped before its first checkpoint; pass --overwrite to start again"
            )
            raise MissingPathError(f"cannot resume {path}: {last} does not exist ({hint})")
    elif path.exists() and not path.is_dir():
        raise PathExistsError(
            f"{path} exists and is not a directory: pass another --name (or tracking.runs_dir)"
        )
    elif not overwrite and path.exists() and any(path.iterdir()):
        raise PathExistsError(
            f"run directory {path} already exists; pass --resume to continue it "
            "or --overwrite to start again"
        )


class Run:
    """One experiment's directory. Create with :meth:`create`; reopen to resume with `resume=True`."""

    def __init__(
        self,
        path: Path,
        config: BaseModel | None = None,
        wandb_run: Any = None,
        created: bool = False,
    ):
        self.path = path
        self.config = config
        self._wandb = wandb_run
        self.created = created  # this process made the directory (so may remove it on failure)
        self.lock: RunLock | None = None  # held from create() to finish() / a failure

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics_jsonl(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def last_checkpoint(self) -> Path:
        """The checkpoint `--resume` continues from (its previous version is `prev.pt`)."""
        return self.checkpoints / LAST

    @classmethod
    def create(
        cls,
        name: str,
        config: BaseModel,
        runs_dir: str | Path = "runs",
        resume: bool = False,
        overwrite: bool = False,
        wandb: bool = False,
        wandb_project: str = "rar",
    ) -> Run:
        """Make (or, with resume, reopen) `runs_dir/name`, saving the resolved config. The run
        directory is locked against other processes until :meth:`finish` (or a failure)."""
        path = Path(runs_dir) / check_run_name(name)
        check_run_target(path, resume, overwrite)
        created = overwrite or not path.exists()
        with storage_errors(path, "set tracking.runs_dir to a writable directory"):
            path.mkdir(parents=True, exist_ok=True)
        run = cls(path, config, created=created)
        run.lock = RunLock.acquire(path)
        try:
            run._prepare(config, overwrite)
            if wandb:
                run._wandb = _start_wandb(path, name, config, wandb_project)
        except BaseException:
            run.close()
            raise
        return run

    def _prepare(self, config: BaseModel, overwrite: bool) -> None:
        """Under the lock: empty the directory for --overwrite, clean up temporaries of killed
        writes, save config.yaml (its paths absolute, so a moved run still finds them)."""
        path = self.path
        with storage_errors(path, "set tracking.runs_dir to a writable directory"):
            if overwrite:
                clear_run(path)
            (path / "checkpoints").mkdir(exist_ok=True)
            for directory in (path, path / "checkpoints"):
                for stale in remove_stale_temporaries(directory):
                    log.warning("removed %s, left by a write that was killed", stale)
            save_config(anchored(config), path / "config.yaml")

    def close(self) -> None:
        """Release the run's lock (another process may then resume or replace it)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def load_last_checkpoint(self, weights_only: bool = False) -> Any:
        """The `--resume` state. A damaged last.pt is one error naming it and the way out."""
        last = self.last_checkpoint
        try:
            return load_torch_file(last, weights_only=weights_only)
        except CheckpointError as exc:
            previous = previous_of(last)
            try:
                step = load_torch_file(previous, weights_only=weights_only).get("step", "?")
                way_out = (
                    f"the previous checkpoint {previous} (step {step}) is intact: "
                    f"rename it to {LAST} and resume again, or pass --overwrite to start again"
                )
            except (CheckpointError, FileNotFoundError, AttributeError):
                way_out = "there is no intact previous checkpoint; pass --overwrite to start again"
            raise CheckpointError(f"cannot resume: {exc}; {way_out}") from None

    def has_progress(self) -> bool:
        """Whether anything worth keeping was recorded: a checkpoint or a row past step 0."""
        if self.last_checkpoint.is_file() or previous_of(self.last_checkpoint).is_file():
            return True
        try:
            return any(row.get("step", 0) > 0 for row in self.history())
        except (OSError, ValueError):
            return True  # unreadable history: keep it for inspection

    def discard_if_unstarted(self) -> bool:
        """After a failure: remove the run directory if this process created it and it holds
        no progress (so the corrected command can be rerun as is). Returns whether it did.
        Either way the run's lock is released."""
        self.close()
        if not self.created or self.has_progress():
            return False
        if self._wandb is not None:
            self._wandb.finish(exit_code=1)
            self._wandb = None
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)
        log.info("removed %s: the run failed before recording any progress", self.path)
        return True

    def log(self, step: int, **metrics: Any) -> None:
        """Append one JSON object (with `step` and wall time) to metrics.jsonl."""
        record = {"step": step, "time": round(time.time(), 3)}
        record.update({k: _jsonable(v) for k, v in metrics.items()})
        line = json.dumps(record, sort_keys=True) + "\n"
        with storage_errors(self.metrics_jsonl), self.metrics_jsonl.open("ab") as handle:
            if handle.tell() and _last_byte(self.metrics_jsonl) != b"\n":
                line = "\n" + line  # after a row cut short: never glue onto it
            handle.write(line.encode("utf-8"))
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if k != "time"}, step=step)

    def history(self) -> list[dict[str, Any]]:
        """The logged rows. A row cut short (a kill or a full disk in the middle of an append)
        is skipped with a warning naming its line; the step is logged again after a resume."""
        if not self.metrics_jsonl.exists():
            return []
        rows = []
        text = self.metrics_jsonl.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                log.warning("%s:%d: skipped a row cut short", self.metrics_jsonl, number)
        return rows

    def truncate_history(self, after_step: int) -> None:
        """Drop logged rows past a checkpoint's step, so a resumed run does not log them twice.
        Event rows (e.g. a step the ranker's server interrupted) stay: they happened."""
        rows = [r for r in self.history() if r.get("step", 0) <= after_step or "event" in r]
        atomic_write_text(
            self.metrics_jsonl, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        )

    def finish(self, metrics: dict[str, Any]) -> Path:
        """Write the final metrics.json (atomically) and close W&B."""
        out = self.path / FINAL_METRICS
        atomic_write_text(
            out, json.dumps({k: _jsonable(v) for k, v in metrics.items()}, indent=2, sort_keys=True)
        )
        if self._wandb is not None:
            self._wandb.summary.update(metrics)
            self._wandb.finish()
        self.close()
        return out


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)


# config keys that name a directory: stored absolute, so a moved or copied run still finds them
PATH_KEYS = ("corpus", "pretrained_run")


def anchored(config: BaseModel) -> BaseModel:
    """`config` with its relative PATH_KEYS made absolute (resolved from the working directory,
    which is what they are relative to while the run trains)."""
    updates = {}
    for key in PATH_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            updates[key] = str(Path(value).resolve())
    return config.model_copy(update=updates) if updates else config


def _start_wandb(path: Path, name: str, config: BaseModel, project: str) -> Any:
    try:
        import wandb
    except ImportError as exc:  # pragma: no cover - depends on extras
        raise RuntimeError(
            "W&B logging asked for but wandb is not installed: pip install 'rar[wandb]'"
        ) from exc
    mode = os.environ.get("WANDB_MODE") or (
        "online" if os.environ.get("WANDB_API_KEY") else "offline"
    )
    return wandb.init(
        project=project,
        name=name,
        dir=str(path),
        config=config.model_dump(mode="json"),
        mode=cast("Literal['online', 'offline', 'disabled', 'shared']", mode),  # wandb checks it
    )
