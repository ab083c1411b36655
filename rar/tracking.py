"""Run directories: `runs/<name>/` with config.yaml, metrics.jsonl, checkpoints/, metrics.json.

Optional Weights & Biases mirroring: off unless asked; offline mode when no API key is set.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from rar.config import ConfigModel, save_config


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


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Run:
    """One experiment's directory. Create with :meth:`create`; reopen to resume with `resume=True`."""

    def __init__(self, path: Path, config: BaseModel | None = None, wandb_run: Any = None):
        self.path = path
        self.config = config
        self._wandb = wandb_run

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics_jsonl(self) -> Path:
        return self.path / "metrics.jsonl"

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
        """Make (or, with resume, reopen) `runs_dir/name`, saving the resolved config."""
        path = Path(runs_dir) / name
        if path.exists() and any(path.iterdir()) and not (resume or overwrite):
            raise FileExistsError(
                f"run directory {path} already exists; pass --resume to continue it "
                "or --overwrite to start again"
            )
        if overwrite and path.exists():
            import shutil

            shutil.rmtree(path)
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
        save_config(config, path / "config.yaml")
        wandb_run = None
        if wandb:
            wandb_run = _start_wandb(path, name, config, wandb_project)
        return cls(path, config, wandb_run)

    def log(self, step: int, **metrics: Any) -> None:
        """Append one JSON object (with `step` and wall time) to metrics.jsonl."""
        record = {"step": step, "time": round(time.time(), 3)}
        record.update({k: _jsonable(v) for k, v in metrics.items()})
        with self.metrics_jsonl.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if k != "time"}, step=step)

    def history(self) -> list[dict[str, Any]]:
        if not self.metrics_jsonl.exists():
            return []
        return [json.loads(line) for line in self.metrics_jsonl.read_text().splitlines() if line]

    def truncate_history(self, after_step: int) -> None:
        """Drop logged rows past a checkpoint's step, so a resumed run does not log them twice."""
        rows = [r for r in self.history() if r.get("step", 0) <= after_step]
        atomic_write_text(
            self.metrics_jsonl, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        )

    def finish(self, metrics: dict[str, Any]) -> Path:
        """Write the final metrics.json (atomically) and close W&B."""
        out = self.path / "metrics.json"
        atomic_write_text(
            out, json.dumps({k: _jsonable(v) for k, v in metrics.items()}, indent=2, sort_keys=True)
        )
        if self._wandb is not None:
            self._wandb.summary.update(metrics)
            self._wandb.finish()
        return out


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
        project=project, name=name, dir=str(path), config=config.model_dump(mode="json"), mode=mode
    )
