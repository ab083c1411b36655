"""Issue 24, run directories and checkpoints, with real processes and real files: `--overwrite`
never deletes what is not a run; a live run is locked (a killed one still resumes); a corrupted
checkpoint is refused; a full disk, an unwritable runs_dir and `evaluate --out FILE` are one line;
stale corpus staging directories are cleaned up; evaluation files are written atomically; a
run's config.yaml names its corpus so that a moved run still finds it (or says what to pass)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_rl_trainer import _train_overrides
from test_train_resume import _pretrain_args, _train_config

ROOT = Path(__file__).resolve().parents[1]


def _env(data_dir: Path) -> dict[str, str]:
    """This checkout's `rar` (PYTHONPATH) wherever the command runs from."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(
        os.environ,
        PYTHONPATH=path,
        HF_HUB_OFFLINE="1",
        RAR_DATA_DIR=str(data_dir),
        WANDB_MODE="disabled",
    )


def _rar(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rar", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    """The command failed as a user error: exit 2 and a single `error:` line, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return " ".join(result.stderr.split())  # rich may wrap a long line


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and directory under `root` with its bytes (None for a directory)."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def _rows(run: Path) -> list[dict]:
    """metrics.jsonl rows written so far (a line still being written is skipped)."""
    file = run / "metrics.jsonl"
    rows = []
    for line in file.read_text().splitlines() if file.exists() else []:
        with suppress(json.JSONDecodeError):
            rows.append(json.loads(line))
    return rows


def _steps(run: Path) -> list[int]:
    return [row["step"] for row in _rows(run) if "loss" in row]


def _wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"the process ended before {what}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---------------------------------------------------------------- 1. --overwrite deletes only runs


def _train_args(small_corpus: Path, pretrained_run: Path, data_dir: Path) -> list[str]:
    """The issue's reproduction (one step of the quickstart's SFT config)."""
    sets = ["max_steps=1", "val_every=1", "data.train_size=16", "data.val_size=8", "threads=1"]
    return [
        "train",
        "--quiet",
        "--config",
        "train_quickstart",
        "--corpus",
        str(small_corpus),
        "--pretrained",
        str(pretrained_run),
        "--data-dir",
        str(data_dir),
        *[arg for value in sets for arg in ("--set", value)],
    ]


def test_overwrite_never_deletes_what_is_not_a_run(
    small_corpus, pretrained_run, data_dir, tmp_path
):
    scratch = tmp_path / "scratch"
    (scratch / "runs" / "notarun").mkdir(parents=True)
    (scratch / "runs" / "notarun" / "thesis.tex").write_text("\\chapter{Results}")
    shutil.copytree(pretrained_run, scratch / "runs" / "important-run")
    (scratch / "precious.txt").write_text("keep me")
    before = _snapshot(scratch)
    env = _env(data_dir)
    absolute = tmp_path / "elsewhere"
    train = _train_args(small_corpus, pretrained_run, data_dir)

    refused = _one_line_error(_rar([*train, "--name", "notarun", "--overwrite"], env, scratch))
    assert "runs/notarun exists and is not a run directory (it has no config.yaml)" in refused
    assert "refusing to replace it" in refused and "another --name" in refused
    for name in ["", "..", ".", str(absolute), "runs/x", "a/../.."]:
        message = _one_line_error(_rar([*train, "--name", name, "--overwrite"], env, scratch))
        assert "run name" in message and "--name NAME" in message, (name, message)
    pretrain = _pretrain_args(small_corpus, data_dir, Path("runs"), "x", ["epochs=1"])
    del pretrain[pretrain.index("--name") : pretrain.index("--name") + 2]
    for name in ["", "..", str(absolute)]:
        message = _one_line_error(_rar([*pretrain, "--name", name, "--overwrite"], env, scratch))
        assert "run name" in message, (name, message)
    # an unset variable in `--set name=$RUN` is refused the same way (the config's own check)
    via_set = _one_line_error(_rar([*train, "--set", "name=", "--overwrite"], env, scratch))
    assert "field 'name': the run name is empty" in via_set

    assert _snapshot(scratch) == before  # thesis.tex, the other run and precious.txt intact
    assert not absolute.exists()


def test_overwrite_refuses_a_run_holding_foreign_files_and_replaces_its_own(tmp_path):
    from rar.errors import PathExistsError
    from rar.tracking import Run, TrackingConfig

    run = Run.create("exp", TrackingConfig(), runs_dir=tmp_path)
    run.log(1, loss=1.0)
    run.finish({"n": 1})
    (run.path / "notes.md").write_text("mine")
    with pytest.raises(PathExistsError, match=r"exp exists and is not a run directory .*notes\.md"):
        Run.create("exp", TrackingConfig(), runs_dir=tmp_path, overwrite=True)
    assert (run.path / "notes.md").read_text() == "mine" and run.history()
    (run.path / "notes.md").unlink()
    fresh = Run.create("exp", TrackingConfig(), runs_dir=tmp_path, overwrite=True)
    assert fresh.history() == [] and not (fresh.path / "metrics.json").exists()
    # a file where the run directory would go is not replaced either
    (tmp_path / "file").write_text("x")
    with pytest.raises(PathExistsError, match="not a directory"):
        Run.create("file", TrackingConfig(), runs_dir=tmp_path, overwrite=True)
    assert (tmp_path / "file").read_text() == "x"


# ---------------------------------------------------------------- 2. one process per run


@pytest.mark.slow
def test_a_live_run_is_locked_and_a_killed_one_still_resumes(
    small_corpus, pretrained_run, data_dir, tmp_path
):
    overrides = _train_overrides(small_corpus, pretrained_run, data_dir, tmp_path, "dpo", "race")
    config = _train_config(tmp_path, overrides)
    args = ["train", "--quiet", "--config", str(config)]
    cmd = [sys.executable, "-m", "rar", *args]
    env = _env(data_dir)
    run = tmp_path / "race"

    # a second process (a fresh start with --overwrite, or a --resume) while the first is live
    first = subprocess.Popen(cmd, env=env, cwd=ROOT)
    _wait_for(lambda: _steps(run), first, "the first step")
    os.kill(first.pid, signal.SIGSTOP)  # hold it mid-run, so the race cannot be lost by timing
    try:
        for flag in ("--overwrite", "--resume"):
            message = _one_line_error(_rar([*args, flag], env))
            assert f"run directory {run} is in use by another process (pid {first.pid})" in message
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=600) == 0
    assert _steps(run) == [1, 2, 3, 4]  # each step once: nothing interleaved

    # kill -9 leaves the lock file, but not the lock: --resume proceeds
    lock_pid = lambda: (run / "run.lock").read_text().strip()  # noqa: E731
    killed = subprocess.Popen([*cmd, "--overwrite"], env=env, cwd=ROOT)
    last = run / "checkpoints" / "last.pt"
    started = lambda: lock_pid() == str(killed.pid) and last.exists()  # noqa: E731
    _wait_for(started, killed, "the first checkpoint of the new run")
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert (run / "run.lock").exists() and not (run / "metrics.json").exists()
    resumed = subprocess.Popen([*cmd, "--resume"], env=env, cwd=ROOT)
    _wait_for(lambda: lock_pid() == str(resumed.pid), resumed, "the resume to take the lock")
    os.kill(resumed.pid, signal.SIGSTOP)
    try:  # two simultaneous --resume: the second is refused
        assert "is in use by another process" in _one_line_error(_rar([*args, "--resume"], env))
    finally:
        os.kill(resumed.pid, signal.SIGCONT)
    assert resumed.wait(timeout=600) == 0
    assert _steps(run) == [1, 2, 3, 4]


def test_the_lock_is_per_process_and_released_when_a_run_ends(tmp_path):
    from rar.run_guard import RunLock
    from rar.tracking import Run, TrackingConfig

    run = Run.create("exp", TrackingConfig(), runs_dir=tmp_path)
    holder = [sys.executable, "-c", HOLD_LOCK, str(run.path)]
    blocked = subprocess.run(holder, capture_output=True, text=True, timeout=120, env=_env(ROOT))
    assert blocked.returncode == 2 and f"in use by another process (pid {os.getpid()})" in (
        blocked.stdout
    )
    # the same process may reopen its own run (in-process resumes, the quickstart's stages)
    assert Run.create("exp", TrackingConfig(), runs_dir=tmp_path, resume=False, overwrite=True)
    run.finish({})
    assert str(run.path.resolve()) not in RunLock._held
    free = subprocess.run(holder, capture_output=True, text=True, timeout=120, env=_env(ROOT))
    assert free.returncode == 0, free.stdout + free.stderr


HOLD_LOCK = """
import sys
from pathlib import Path
from rar.errors import InputError
from rar.run_guard import RunLock
try:
    RunLock.acquire(Path(sys.argv[1]))
except InputError as exc:
    print(exc)
    sys.exit(2)
"""


# ---------------------------------------------------------------- 3. corrupted checkpoints


def _flip_bytes(path: Path, count: int = 5000) -> None:
    """Overwrite `count` bytes in the middle of `path` with seeded random bytes."""
    data = bytearray(path.read_bytes())
    start = len(data) // 2
    noise = np.random.default_rng(0).integers(0, 256, count, dtype=np.uint8).tobytes()
    data[start : start + count] = noise[: len(data) - start]
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_a_corrupted_checkpoint_is_refused_by_evaluate(
    pretrained_run, small_corpus, data_dir, tmp_path
):
    run = tmp_path / "copy"
    shutil.copytree(pretrained_run, run)
    best = run / "checkpoints" / "best.pt"
    _flip_bytes(best)
    result = _rar(
        ["evaluate", "--run", str(run), "--corpus", str(small_corpus), "--data-dir",
         str(data_dir), "--max-samples", "8", "--out", str(tmp_path / "eval"), "--quiet"],
        _env(data_dir),
    )  # fmt: skip
    message = _one_line_error(result)
    assert f"{best} is corrupt" in message and "checksum" in message
    assert not (tmp_path / "eval").exists()


def test_checkpoints_are_verified_on_load(pretrained_run, small_corpus, tmp_path):
    from rar.atomic_files import CheckpointError, load_torch_file
    from rar.retrievers import load_retriever

    best = pretrained_run / "checkpoints" / "best.pt"
    payload = torch.load(best, weights_only=True)
    key = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    # an intact file loads, in the zip format and the legacy one (which has no checksums)
    legacy = tmp_path / "legacy.pt"
    torch.save(payload, legacy, _use_new_zipfile_serialization=False)
    assert load_torch_file(legacy)["num_items"] == payload["num_items"]
    # bytes changed after writing: the stored CRC-32 of the entry no longer matches
    damaged = tmp_path / "damaged.pt"
    shutil.copy(best, damaged)
    _flip_bytes(damaged, 64)
    with pytest.raises(CheckpointError, match=rf"{damaged} is corrupt: entry .* checksum"):
        load_torch_file(damaged)
    # a NaN written as such passes the checksums, and is refused by the finite check
    payload["state_dict"][key] = payload["state_dict"][key].clone()
    payload["state_dict"][key].view(-1)[3] = float("nan")
    for name, zipped in (("nan.pt", True), ("nan-legacy.pt", False)):
        path = tmp_path / name
        torch.save(payload, path, _use_new_zipfile_serialization=zipped)
        with pytest.raises(CheckpointError, match=rf"NaN or inf in `state_dict\.{key}`"):
            load_retriever(path, torch.zeros(payload["num_items"], payload["d_text"]))


def test_a_corrupted_last_checkpoint_names_the_intact_previous_one(tmp_path):
    from rar.atomic_files import CheckpointError, atomic_torch_save
    from rar.tracking import Run, TrackingConfig

    run = Run.create("exp", TrackingConfig(), runs_dir=tmp_path)
    for step in (1, 2):
        atomic_torch_save(
            {"step": step, "w": torch.randn(20_000)}, run.last_checkpoint, keep_previous=True
        )
    _flip_bytes(run.last_checkpoint)
    with pytest.raises(CheckpointError) as caught:
        run.load_last_checkpoint()
    message = str(caught.value)
    assert f"{run.last_checkpoint} is corrupt" in message
    assert "prev.pt (step 1) is intact: rename it to last.pt" in message


# ---------------------------------------------------------------- 5. disk full, unwritable places


@contextmanager
def _tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A real tmpfs of `size` at `path` (skips when this machine does not allow mounting)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root (a full disk is simulated on a real tmpfs)")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0777" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _no_temporaries(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(".*.tmp*")]


@pytest.mark.slow
def test_a_full_disk_is_one_line_in_pretrain_train_and_evaluate(
    small_corpus, pretrained_run, data_dir, tmp_path
):
    env = _env(data_dir)
    with _tmpfs(tmp_path / "full", "64k") as disk:  # config and rows fit, a checkpoint does not
        args = _pretrain_args(small_corpus, data_dir, disk, "pre", ["epochs=1"])
        message = _one_line_error(_rar([*args, "--set", "max_steps_per_epoch=3"], env))
        assert f"cannot write {disk / 'pre'}" in message and "No space left on device" in message
        assert "free some space" in message and _no_temporaries(disk) == []
        assert "[Errno" not in message and "Traceback" not in message

        overrides = _train_overrides(small_corpus, pretrained_run, data_dir, disk, "sft", "sft")
        config = _train_config(tmp_path, overrides)
        message = _one_line_error(_rar(["train", "--quiet", "--config", str(config)], env))
        assert f"cannot write {disk / 'sft'}" in message and "No space left on device" in message
        assert "--resume" in message and _no_temporaries(disk) == []

    with _tmpfs(tmp_path / "small", "16k") as disk:
        out = disk / "eval"
        result = _rar(
            ["evaluate", "--run", str(pretrained_run), "--corpus", str(small_corpus),
             "--data-dir", str(data_dir), "--max-samples", "60", "--out", str(out), "--quiet"],
            env,
        )  # fmt: skip
        message = _one_line_error(result)
        assert f"cannot write {out}" in message and "No space left on device" in message
        assert "pass another --out" in message
        # 7: nothing half-written: each file is whole or absent
        assert _no_temporaries(disk) == []
        for jsonl in out.rglob("*.jsonl"):
            [json.loads(line) for line in jsonl.read_text().splitlines()]


def test_an_unwritable_runs_dir_is_one_line(small_corpus, data_dir, tmp_path):
    env = _env(data_dir)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        context = _tmpfs(tmp_path / "ro", "1m", read_only=True)  # root ignores permissions
    else:
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o500)
        context = _nothing(tmp_path / "ro")
    with context as runs:
        args = _pretrain_args(small_corpus, data_dir, runs / "runs", "pre", ["epochs=1"])
        message = _one_line_error(_rar(args, env))
    assert f"cannot write {runs / 'runs' / 'pre'}" in message
    assert "set tracking.runs_dir to a writable directory" in message


@contextmanager
def _nothing(path: Path) -> Iterator[Path]:
    yield path


@pytest.mark.slow
def test_evaluate_out_pointing_at_a_file_is_refused_before_the_work(
    pretrained_run, small_corpus, data_dir, tmp_path
):
    out = tmp_path / "results.txt"
    out.write_text("mine")
    result = _rar(
        ["evaluate", "--run", str(pretrained_run), "--corpus", str(small_corpus), "--data-dir",
         str(data_dir), "--max-samples", "8", "--out", str(out), "--quiet"],
        _env(data_dir),
    )  # fmt: skip
    assert f"--out {out} is a file, not a directory" in _one_line_error(result)
    assert out.read_text() == "mine"


def test_a_storage_fault_in_a_write_removes_the_temporary(tmp_path):
    from rar.atomic_files import atomic_write
    from rar.errors import StorageError

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def full(handle):
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(StorageError) as caught:
        atomic_write(target, full)
    assert str(caught.value).startswith(f"cannot write {target}: No space left on device; free")
    assert caught.value.errno == 28
    assert target.read_bytes() == b"old" and _no_temporaries(tmp_path) == []


# ---------------------------------------------------------------- 6. stale corpus staging dirs

STALLED_BUILD = """
import sys, time
from pathlib import Path
from rar.atomic_files import atomic_directory
with atomic_directory(Path(sys.argv[1])) as staged:
    (staged / "movies.parquet").write_bytes(b"half")
    print("staging", flush=True)
    time.sleep(600)
"""


def test_a_build_removes_staging_dirs_of_killed_builds(data_dir, tmp_path):
    from corpus_builder.testing import write_mini_data_dir

    out = tmp_path / "corpus"
    env = _env(data_dir)
    proc = subprocess.Popen(
        [sys.executable, "-c", STALLED_BUILD, str(out)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "staging"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stale = tmp_path / f".corpus.tmp{proc.pid}"
    assert stale.is_dir()
    # a staging directory of a process still running is left alone
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        running = tmp_path / f".corpus.tmp{live.pid}"
        running.mkdir()
        data = write_mini_data_dir(data_dir, tmp_path / "data", n_movies=30)
        config = tmp_path / "corpus.yaml"
        config.write_text(
            "sources: [movielens, redial_metadata, redial_movies]\n"
            "link: {datasets: [redial, movielens], use_data_loaders: false}\n"
            "embedding: {enabled: false}\n",
            encoding="utf-8",
        )
        build = _rar(
            ["build-corpus", "--data-dir", str(data), "--out", str(out), "--config", str(config),
             "--quiet"],
            env,
        )  # fmt: skip
        assert build.returncode == 0, build.stderr
        assert not stale.exists() and running.is_dir()
        assert (out / "movies.parquet").is_file()
    finally:
        live.kill()
        live.wait()


# ---------------------------------------------------------------- 7. atomic evaluation files


def test_a_failure_while_writing_samples_leaves_no_half_file(tmp_path):
    from rar.data.linking import SampleLinkStats
    from rar.evaluation.results import EvaluationReport, SystemResult

    def report(records):
        system = SystemResult("sys", "retriever", {}, {}, len(records), records=records)
        return EvaluationReport("redial", "test", "x", 25, [10], SampleLinkStats(), [system])

    report([{"i": i} for i in range(3)]).save(tmp_path)
    samples = tmp_path / "samples" / "sys.jsonl"
    before = samples.read_bytes()
    broken = [{"i": i} for i in range(1000)] + [{"i": object()}]  # not JSON: fails mid-file
    with pytest.raises(TypeError):
        report(broken).save(tmp_path)
    assert samples.read_bytes() == before and _no_temporaries(tmp_path) == []


# ---------------------------------------------------------------- 14c. a moved run finds its corpus


def test_config_yaml_stores_paths_absolute(tmp_path, monkeypatch):
    from rar.rl.train_config import TrainConfig
    from rar.tracking import Run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus").mkdir()
    config = TrainConfig(corpus="corpus", pretrained_run="runs/pre", name="sft")
    run = Run.create("sft", config, runs_dir="runs")
    saved = yaml.safe_load((run.path / "config.yaml").read_text())
    assert saved["corpus"] == str(tmp_path / "corpus")
    assert saved["pretrained_run"] == str(tmp_path / "runs" / "pre")
    assert config.corpus == "corpus"  # the config the trainer uses is not changed


@pytest.mark.slow
def test_a_moved_run_finds_its_corpus_or_says_what_to_pass(
    pretrained_run, small_corpus, data_dir, tmp_path
):
    env = _env(data_dir)
    moved = tmp_path / "moved" / "pre"
    shutil.copytree(pretrained_run, moved)
    args = ["evaluate", "--run", str(moved), "--data-dir", str(data_dir), "--max-samples", "8",
            "--quiet", "--out", str(tmp_path / "eval")]  # fmt: skip
    # stored absolute: found from any working directory
    assert Path(yaml.safe_load((moved / "config.yaml").read_text())["corpus"]).is_absolute()
    found = _rar(args, env, cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    # a run of an older version, relative to where it was trained: one line saying what to pass
    config = yaml.safe_load((moved / "config.yaml").read_text())
    config["corpus"] = "data/corpus"
    (moved / "config.yaml").write_text(yaml.safe_dump(config))
    message = _one_line_error(_rar(args, env, cwd=tmp_path))
    assert "'data/corpus'" in message and "relative to where the run was trained" in message
    assert "pass --corpus DIR" in message


def test_a_metrics_row_cut_by_a_full_disk_is_dropped_on_resume(tmp_path):
    from rar.tracking import Run, TrackingConfig

    run = Run.create("exp", TrackingConfig(), runs_dir=tmp_path)
    run.log(1, loss=1.0)
    run.log(2, loss=0.5)
    with run.metrics_jsonl.open("a", encoding="utf-8") as handle:
        handle.write('{"step": 3, "lo')  # what an append cut by ENOSPC or kill -9 leaves
    assert [row["step"] for row in run.history()] == [1, 2]
    run.log(3, loss=0.25)  # appended on a line of its own, not glued to the cut one
    assert [row["step"] for row in run.history()] == [1, 2, 3]
    run.truncate_history(after_step=2)
    assert run.metrics_jsonl.read_text().endswith("}\n") and len(run.history()) == 2
