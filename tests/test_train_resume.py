"""Resume and checkpoint promises of `rar train` / `rar pretrain`, with real processes:
--resume resumes or refuses, a damaged checkpoint is one line with the way out, a kill during a
checkpoint write leaves the previous checkpoint intact and its temporary is cleaned up, a failed
run leaves no directory behind, and ranker counters add up across a resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_rl_trainer import _train_overrides
from test_rl_trainer import dpo_run as dpo_run  # noqa: F401 (module fixtures, reused)

from rar.config import load_config
from rar.rl.train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def _env(data_dir: Path) -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", RAR_DATA_DIR=str(data_dir), WANDB_MODE="disabled")


def _train_config(tmp_path: Path, overrides: list[str], extra: list[str] = ()) -> Path:
    """A config file as `rar train` reads it (all the tiny-run overrides resolved)."""
    path = tmp_path / f"train-{len(list(tmp_path.glob('train-*.yaml')))}.yaml"
    cfg = load_config(TrainConfig, None, [*overrides, *extra])
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return path


def _rar(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rar", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    """The command failed as a user error: exit 2 and a single `error:` line, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def _curve(run: Path) -> list[tuple[int, float, float | None]]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r.get("reward_mean")) for r in rows if "loss" in r]


# ---------------------------------------------------------------- --resume resumes or refuses


def test_resume_of_a_run_that_never_existed_is_refused(tmp_path, data_dir):
    env = _env(data_dir)
    train = _rar(
        ["train", "--resume", "--name", "ghost", "--set", f"tracking.runs_dir={tmp_path}"], env
    )
    assert f"cannot resume {tmp_path / 'ghost'}: no such run directory" in _one_line_error(train)
    pretrain = _rar(
        [
            "pretrain",
            "--resume",
            "--name",
            "ghost",
            "--config",
            str(ROOT / "rar" / "configs" / "pretrain_quickstart.yaml"),
            "--set",
            f"tracking.runs_dir={tmp_path}",
        ],
        env,
    )
    assert "no such run directory" in _one_line_error(pretrain)
    assert not (tmp_path / "ghost").exists()


@pytest.mark.slow
def test_resume_without_a_checkpoint_is_refused_and_overwrite_starts_again(
    small_corpus, pretrained_run, data_dir, tmp_path
):
    overrides = _train_overrides(small_corpus, pretrained_run, data_dir, tmp_path, "dpo", "early")
    config = _train_config(tmp_path, overrides, ["checkpoint_every=100"])  # only at the last step
    env = _env(data_dir)
    cmd = [sys.executable, "-m", "rar", "train", "--quiet", "--config", str(config)]
    run = tmp_path / "early"
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline:  # SIGKILL once step 1 is logged
        if (run / "metrics.jsonl").exists() and _curve(run):
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run / "checkpoints" / "last.pt").exists(), "killed too late: a checkpoint exists"
    history = (run / "metrics.jsonl").read_bytes()

    refused = _rar(["train", "--quiet", "--config", str(config), "--resume"], env)
    message = _one_line_error(refused)
    assert str(run / "checkpoints" / "last.pt") in message and "--overwrite" in message
    assert (run / "metrics.jsonl").read_bytes() == history  # nothing appended or lost

    fresh = _rar(["train", "--quiet", "--config", str(config), "--overwrite"], env)
    assert fresh.returncode == 0, fresh.stderr
    assert [step for step, _, _ in _curve(run)] == [1, 2, 3, 4]  # each step once


# ---------------------------------------------------------------- kill -9, then --resume, is exact


def _pretrain_args(
    small_corpus: Path, data_dir: Path, runs: Path, name: str, budget: list[str]
) -> list[str]:
    """`rar pretrain` arguments of a tiny LRURec over the small corpus, with `budget` overrides."""
    sets = [f"tracking.runs_dir={runs}", "threads=1", *budget, "data.max_eval_sessions=200"]
    return [
        "pretrain",
        "--config",
        str(ROOT / "rar" / "configs" / "pretrain_quickstart.yaml"),
        "--data-dir",
        str(data_dir),
        "--corpus",
        str(small_corpus),
        "--name",
        name,
        *[arg for value in sets for arg in ("--set", value)],
    ]


def _pretrain_cmd(small_corpus: Path, data_dir: Path, runs: Path, name: str) -> list[str]:
    """3 epochs of 10 steps, a checkpoint after each."""
    budget = ["epochs=3", "max_steps_per_epoch=10", "patience=5"]
    args = _pretrain_args(small_corpus, data_dir, runs, name, budget)
    return [sys.executable, "-m", "rar", *args]


def _pretrain_rows(run: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock entries (the only ones a resume may change)."""
    clock = {"time", "train_seconds", "sequences_per_s"}
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in clock} for row in rows]


def _same_tensors(a: object, b: object) -> bool:
    """Exact equality of two checkpoint payloads (nested dicts/lists of tensors and values)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_same_tensors(a[k], b[k]) for k in a)
        )
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_tensors(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.slow
def test_killed_pretraining_resumes_bit_identically(small_corpus, data_dir, tmp_path):
    env = _env(data_dir)
    full = subprocess.run(
        _pretrain_cmd(small_corpus, data_dir, tmp_path, "full"), env=env, cwd=ROOT, timeout=300
    )
    assert full.returncode == 0
    # SIGKILL as soon as the first checkpoint exists (after epoch 0 of 3), then resume
    cmd = _pretrain_cmd(small_corpus, data_dir, tmp_path, "killed")
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    run = tmp_path / "killed"
    last = run / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run / "metrics.json").exists()
    assert torch.load(last, weights_only=False)["data"]["epoch"] < 3
    resumed = subprocess.run([*cmd, "--resume"], env=env, cwd=ROOT, timeout=300)
    assert resumed.returncode == 0

    # the same losses and validation figures, each epoch once, and the same final metrics
    assert [r.get("epoch") for r in _pretrain_rows(run)] == [None, 0, 1, 2]
    assert _pretrain_rows(run) == _pretrain_rows(tmp_path / "full")
    assert json.loads((run / "metrics.json").read_text()) | {"run_dir": None} == json.loads(
        (tmp_path / "full" / "metrics.json").read_text()
    ) | {"run_dir": None}
    # identical best and last weights (and optimiser, RNG and data-order state in last.pt),
    # down to the bytes (rar.checkpoints.canonical: pickle's memo does not see which objects a
    # resumed process loaded from the checkpoint)
    for name in ("best.pt", "last.pt"):
        a = torch.load(run / "checkpoints" / name, weights_only=False)
        b = torch.load(tmp_path / "full" / "checkpoints" / name, weights_only=False)
        assert _same_tensors(a, b), name
        resumed_bytes = (run / "checkpoints" / name).read_bytes()
        assert resumed_bytes == (tmp_path / "full" / "checkpoints" / name).read_bytes(), name


# ---------------------------------------------------------------- damaged and half-written checkpoints

STALLED_WRITER = """
import sys, time
from pathlib import Path
from rar.atomic_files import atomic_torch_save

class Stall:  # pickling blocks, so the kill lands in the middle of the write
    def __reduce__(self):
        print("writing", flush=True)
        time.sleep(600)
        return (int, (0,))

atomic_torch_save({"step": 99, "stall": Stall()}, Path(sys.argv[1]), keep_previous=True)
"""


def _kill_during_checkpoint_write(last: Path, env: dict[str, str]) -> Path:
    """SIGKILL a real process while it writes `last` with the trainer's writer; returns the
    temporary it left behind."""
    proc = subprocess.Popen(
        [sys.executable, "-c", STALLED_WRITER, str(last)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    temporary = last.with_name(f".{last.name}.tmp{proc.pid}")
    assert temporary.exists()
    return temporary


@pytest.mark.slow
def test_damaged_checkpoint_names_itself_and_resume_from_the_previous_one_is_exact(
    small_corpus, pretrained_run, data_dir, dpo_run, tmp_path
):
    run = tmp_path / "damaged"
    shutil.copytree(dpo_run, run)  # a finished 4-step run, checkpoints every 2 steps
    (run / "metrics.json").unlink()
    last, prev = run / "checkpoints" / "last.pt", run / "checkpoints" / "prev.pt"
    assert torch.load(last, weights_only=False)["step"] == 4
    assert torch.load(prev, weights_only=False)["step"] == 2  # the previous one is kept
    env = _env(data_dir)

    # a kill in the middle of a checkpoint write leaves last.pt as it was, plus a temporary
    before = last.read_bytes()
    temporary = _kill_during_checkpoint_write(last, env)
    assert last.read_bytes() == before

    # a truncated last.pt: one line naming it, the intact previous checkpoint and --overwrite
    last.write_bytes(before[: len(before) // 2])
    overrides = _train_overrides(small_corpus, pretrained_run, data_dir, tmp_path, "dpo", "damaged")
    config = _train_config(tmp_path, overrides)
    refused = _rar(["train", "--quiet", "--config", str(config), "--resume"], env)
    message = _one_line_error(refused)
    assert str(last) in message and f"{prev} (step 2) is intact" in message
    assert "--overwrite" in message
    assert not temporary.exists(), "the killed writer's temporary was not cleaned up"
    assert f"removed {temporary}" in refused.stderr

    # the way out the message gives: the previous checkpoint, resumed exactly
    prev.replace(last)
    resumed = _rar(["train", "--quiet", "--config", str(config), "--resume"], env)
    assert resumed.returncode == 0, resumed.stderr
    full = json.loads((dpo_run / "metrics.json").read_text())
    again = json.loads((run / "metrics.json").read_text())
    keys = [k for k in full if k.startswith(("val/", "test/"))] + ["best_step", "steps"]
    assert {k: full[k] for k in keys} == {k: again[k] for k in keys}
    assert _curve(run) == _curve(dpo_run)
    # ranker counters are the whole run's, not only the resumed process's
    for key in ("ranker.requests", "ranker.calls", "ranker.failures"):
        assert again[key] == full[key], key


@pytest.mark.slow
def test_damaged_pretrain_checkpoint_is_one_line(small_corpus, pretrained_run, data_dir, tmp_path):
    shutil.copytree(pretrained_run, tmp_path / "pre")
    last = tmp_path / "pre" / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    budget = ["epochs=1", "max_steps_per_epoch=5"]
    args = _pretrain_args(small_corpus, data_dir, tmp_path, "pre", budget)
    result = _rar([*args, "--resume"], _env(data_dir))
    message = _one_line_error(result)
    assert f"cannot resume: {last} is unreadable" in message and "--overwrite" in message


# ---------------------------------------------------------------- failed runs leave nothing behind


@pytest.mark.slow
def test_a_failed_train_leaves_no_run_directory(small_corpus, pretrained_run, data_dir, tmp_path):
    env = _env(data_dir)
    overrides = _train_overrides(small_corpus, pretrained_run, data_dir, tmp_path, "dpo", "bad")
    run = tmp_path / "bad"
    # a missing pretrained run: refused while loading inputs, before the directory exists
    missing = _train_config(tmp_path, overrides, [f"pretrained_run={tmp_path / 'nope'}"])
    message = _one_line_error(_rar(["train", "--quiet", "--config", str(missing)], env))
    assert str(tmp_path / "nope") in message
    assert not run.exists()
    # a failure at the step-0 validation, after the directory was made: it is removed again
    bogus = _train_config(tmp_path, overrides, ["validate_at_start=true", "select_metric=ndcg@999"])
    assert "ndcg@999" in _one_line_error(_rar(["train", "--quiet", "--config", str(bogus)], env))
    assert not run.exists()
    # --overwrite with bad inputs keeps the run it was asked to replace
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    result = _rar(["train", "--quiet", "--config", str(missing), "--overwrite"], env)
    _one_line_error(result)
    assert (run / "notes.txt").read_text() == "mine"
