"""Run directories (rar.tracking): layout, metrics files, resume/overwrite, history truncation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import Field

from rar.config import ConfigModel, load_config
from rar.tracking import Run, TrackingConfig


class TinyConfig(ConfigModel):
    """Test-only config stored in run directories."""

    lr: float = Field(0.01, description="Learning rate.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Tracking.")


def test_layout_and_config_round_trip(tmp_path: Path) -> None:
    config = load_config(TinyConfig, None, ["lr=0.5", "tracking.log_every=3"])
    run = Run.create("exp1", config, runs_dir=tmp_path)
    assert run.path == tmp_path / "exp1"
    assert run.checkpoints == run.path / "checkpoints" and run.checkpoints.is_dir()
    saved = run.path / "config.yaml"
    assert saved.is_file()
    assert load_config(TinyConfig, saved) == config  # the resolved config reloads as-is
    assert run.history() == []


def test_log_writes_one_json_object_per_line(tmp_path: Path) -> None:
    run = Run.create("exp", TinyConfig(), runs_dir=tmp_path)
    run.log(1, loss=0.5, acc=np.float32(0.25))
    run.log(2, loss=float("nan"), note="warmup", count=np.int64(7))
    lines = run.metrics_jsonl.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    assert rows[0]["step"] == 1 and rows[0]["loss"] == 0.5 and rows[0]["acc"] == 0.25
    assert isinstance(rows[0]["time"], float)
    # NaN is not valid JSON: stored as null; numpy scalars become plain numbers
    assert rows[1]["loss"] is None and rows[1]["note"] == "warmup" and rows[1]["count"] == 7
    assert run.history() == rows
    # arrays and nested values become JSON lists/objects (NaN inside as null)
    run.log(3, per_k=np.array([0.5, np.nan]), parts={"a": np.float32(1.5)})
    last = run.history()[-1]
    assert last["per_k"] == [0.5, None] and last["parts"] == {"a": 1.5}


def test_finish_writes_final_metrics(tmp_path: Path) -> None:
    run = Run.create("exp", TinyConfig(), runs_dir=tmp_path)
    out = run.finish({"ndcg@10": np.float64(0.125), "bad": math.inf, "n": 10})
    assert out == run.path / "metrics.json"
    assert json.loads(out.read_text()) == {"bad": None, "n": 10, "ndcg@10": 0.125}
    assert not list(run.path.glob(".*tmp*"))  # atomic write left no temporary file


def test_refuses_to_clobber_without_resume_or_overwrite(tmp_path: Path) -> None:
    first = Run.create("exp", TinyConfig(lr=0.1), runs_dir=tmp_path)
    first.log(1, loss=1.0)
    (first.checkpoints / "last.pt").write_bytes(b"weights")
    with pytest.raises(
        FileExistsError, match=r"exp already exists; pass --resume .* or --overwrite"
    ):
        Run.create("exp", TinyConfig(), runs_dir=tmp_path)
    # resume keeps history and checkpoints, and appends
    resumed = Run.create("exp", TinyConfig(lr=0.1), runs_dir=tmp_path, resume=True)
    resumed.log(2, loss=0.5)
    assert [r["step"] for r in resumed.history()] == [1, 2]
    assert (resumed.checkpoints / "last.pt").read_bytes() == b"weights"
    # overwrite starts again from an empty directory
    fresh = Run.create("exp", TinyConfig(lr=0.3), runs_dir=tmp_path, overwrite=True)
    assert fresh.history() == []
    assert not (fresh.checkpoints / "last.pt").exists()
    assert load_config(TinyConfig, fresh.path / "config.yaml").lr == 0.3
    # an existing but empty directory is not a previous run
    (tmp_path / "empty").mkdir()
    assert Run.create("empty", TinyConfig(), runs_dir=tmp_path).path.is_dir()


def test_truncate_history_for_resume(tmp_path: Path) -> None:
    run = Run.create("exp", TinyConfig(), runs_dir=tmp_path)
    for step in range(1, 6):
        run.log(step, loss=1.0 / step)
    run.truncate_history(after_step=3)
    assert [r["step"] for r in run.history()] == [1, 2, 3]
    run.log(4, loss=0.1)  # resumed training logs step 4 again, once
    assert [r["step"] for r in run.history()] == [1, 2, 3, 4]
    assert len(run.metrics_jsonl.read_text().splitlines()) == 4


def test_tracking_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="log_every"):
        TrackingConfig(log_every=0)


@pytest.mark.slow  # importing wandb alone takes ~1-2 s
def test_wandb_disabled_mode_mirrors_without_network(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = Run.create("exp", TinyConfig(), runs_dir=tmp_path, wandb=True)
    run.log(1, loss=0.5)
    run.finish({"loss": 0.5})
    assert len(run.history()) == 1 and (run.path / "metrics.json").exists()


@pytest.mark.slow
def test_wandb_offline_when_no_api_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = Run.create("exp", TinyConfig(), runs_dir=tmp_path, wandb=True)
    run.log(1, loss=0.5)
    run.finish({"loss": 0.5})
    offline = list((run.path / "wandb").glob("offline-run-*"))
    assert offline, "expected an offline W&B run inside the run directory"


# ---------------------------------------------------------------- resume and checkpoints


def test_resume_needs_a_run_and_its_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cannot resume .*ghost: no such run directory"):
        Run.create("ghost", TinyConfig(), runs_dir=tmp_path, resume=True)
    assert not (tmp_path / "ghost").exists()
    run = Run.create("exp", TinyConfig(), runs_dir=tmp_path)
    run.log(1, loss=1.0)
    with pytest.raises(FileNotFoundError, match=r"last\.pt does not exist .*--overwrite"):
        Run.create("exp", TinyConfig(), runs_dir=tmp_path, resume=True)
    assert [r["step"] for r in run.history()] == [1]  # nothing appended, nothing removed
    with pytest.raises(ValueError, match="either --resume .* or --overwrite"):
        Run.create("exp", TinyConfig(), runs_dir=tmp_path, resume=True, overwrite=True)


def test_checkpoint_writes_keep_the_previous_version(tmp_path: Path) -> None:
    from rar.atomic_files import atomic_torch_save, load_torch_file

    last = tmp_path / "checkpoints" / "last.pt"
    for step in (1, 2, 3):
        atomic_torch_save({"step": step}, last, keep_previous=True)
    assert load_torch_file(last)["step"] == 3
    assert load_torch_file(last.with_name("prev.pt"))["step"] == 2
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt", "prev.pt"]


def test_damaged_last_checkpoint_is_one_line_naming_it_and_the_way_out(tmp_path: Path) -> None:
    from rar.atomic_files import CheckpointError, atomic_torch_save

    run = Run.create("exp", TinyConfig(), runs_dir=tmp_path)
    atomic_torch_save({"step": 5}, run.last_checkpoint, keep_previous=True)
    atomic_torch_save({"step": 10, "w": list(range(1000))}, run.last_checkpoint, True)
    data = run.last_checkpoint.read_bytes()
    run.last_checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        run.load_last_checkpoint()
    message = str(err.value)
    assert "\n" not in message and str(run.last_checkpoint) in message
    assert "prev.pt (step 5) is intact" in message and "--overwrite" in message
    run.checkpoints.joinpath("prev.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="no intact previous checkpoint; pass --overwrite"):
        run.load_last_checkpoint()


def test_stale_temporaries_of_dead_writers_are_removed_and_nothing_else(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from rar.atomic_files import remove_stale_temporaries

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".last.pt.tmp{dead_pid}"
    live = tmp_path / f".best.pt.tmp{os.getppid()}"  # a running process may still be writing it
    others = [tmp_path / "notes.tmp1", tmp_path / "last.pt", tmp_path / f"last.pt.tmp{dead_pid}"]
    for path in [stale, live, *others]:
        path.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and all(p.exists() for p in others)


def test_a_failed_run_removes_only_a_directory_it_created(tmp_path: Path) -> None:
    fresh = Run.create("fresh", TinyConfig(), runs_dir=tmp_path)
    fresh.log(0, val=0.1)  # a step-0 validation is not progress
    assert fresh.discard_if_unstarted() and not fresh.path.exists()
    stepped = Run.create("stepped", TinyConfig(), runs_dir=tmp_path)
    stepped.log(1, loss=1.0)
    assert not stepped.discard_if_unstarted() and stepped.path.is_dir()
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("keep")
    (tmp_path / "theirs" / "checkpoints" / "last.pt").parent.mkdir()
    (tmp_path / "theirs" / "checkpoints" / "last.pt").write_bytes(b"x")
    resumed = Run.create("theirs", TinyConfig(), runs_dir=tmp_path, resume=True)
    assert not resumed.discard_if_unstarted()
    assert (tmp_path / "theirs" / "notes.txt").read_text() == "keep"


def test_atomic_directory_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    from rar.atomic_files import atomic_directory

    out = tmp_path / "corpus"
    with atomic_directory(out) as staged:
        (staged / "a.txt").write_text("one")
        assert not out.exists()  # nothing visible until the block ends
    assert (out / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError), atomic_directory(out) as staged:
        (staged / "a.txt").write_text("half")
        raise RuntimeError("killed mid-build")
    assert (out / "a.txt").read_text() == "one"  # a failed write leaves the old directory
    with atomic_directory(out, replace=False) as staged:
        (staged / "a.txt").write_text("late")
    assert (out / "a.txt").read_text() == "one"  # the first writer wins
    with atomic_directory(out) as staged:
        (staged / "b.txt").write_text("two")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]


def test_a_run_is_finished_once_its_final_metrics_are_written(tmp_path: Path) -> None:
    from rar.tracking import is_finished

    run = Run.create("exp", TinyConfig(), runs_dir=tmp_path)
    run.log(1, loss=1.0)
    assert not is_finished(run.path)
    run.finish({"loss": 1.0})
    assert is_finished(run.path)
