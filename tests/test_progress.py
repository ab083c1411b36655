"""Progress output: a live bar in a terminal (a real pseudo-terminal), a few plain lines in a
log (a real `rar evaluate` process with stderr to a file), and result tables that never cut a
system name at 80 columns."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from servers.llm_server import FakeLLMServer
from test_eval_evaluator import make_run

from rar.progress import LINE_STEPS, LineProgress, progress_bar

ROOT = Path(__file__).resolve().parents[1]
RUN_NAME = "quickstart-lrurec-retriever-tiny"


def test_log_lines_one_per_tenth_and_a_closing_line():
    out = io.StringIO()
    with progress_bar(1000, "rank (openai)", "sample", stream=out) as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(1000):
            bar.update(1)
        bar.set_postfix(in_flight=4)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == LINE_STEPS  # 10%, 20% … 90%, then the closing 100% line
    assert lines[0].startswith("rank (openai): 100/1,000 sample (10%)")
    assert lines[-1].startswith("rank (openai): 1,000/1,000 sample (100%)")
    assert "sample/s" in lines[-1] and lines[-1].endswith("in_flight=4")


def test_unknown_total_and_transient_bars_write_only_the_closing_line():
    out = io.StringIO()
    with progress_bar(None, "download x.zip", "B", unit_scale=True, stream=out) as bar:
        for _ in range(100):
            bar.update(10_000)
    with progress_bar(50, "epoch 0", "step", leave=False, stream=out) as bar:
        for _ in range(50):
            bar.update(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("download x.zip: 977kB, ") and "B/s)" in lines[0]
    assert lines[1].startswith("epoch 0: 50/50 step (100%)")


def test_disabled_writes_nothing():
    out = io.StringIO()
    with progress_bar(10, "x", stream=out, enabled=False) as bar:
        bar.update(10)
    assert out.getvalue() == ""


def test_a_terminal_gets_the_live_bar():
    """stderr is a real pseudo-terminal: tqdm redraws in place (carriage returns)."""
    code = (
        "import time\nfrom rar.progress import progress_bar\n"
        "with progress_bar(40, 'work', 'item') as bar:\n"
        "    for _ in range(40):\n        bar.update(1); time.sleep(0.01)\n"
    )
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # 80x24
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stderr=slave, stdout=subprocess.DEVNULL, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    assert "\r" in text and "40/40" in text and "work" in text


# ---------------------------------------------------------------- a real command (slow)


@pytest.fixture(scope="module")
def evaluate_to_files(small_corpus, data_dir, tmp_path_factory):
    """`python -m rar evaluate` with an OpenAI ranker on a loopback server, 200 samples,
    stdout and stderr to files, COLUMNS=80 — as in `make quickstart > log 2>&1`."""
    tmp = tmp_path_factory.mktemp("progress")
    run = make_run(small_corpus, tmp / RUN_NAME)
    ranker = tmp / "ranker.yaml"
    with FakeLLMServer() as server:
        ranker.write_text(
            f"backend: openai\nmodel: fake-llm\nbase_url: {server.openai_base_url}\n"
            "api_key_env: RAR_TEST_KEY\ncache: {enabled: false}\n",
            encoding="utf-8",
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="80", RAR_TEST_KEY="sk-test-not-a-key")
        with (tmp / "stdout").open("wb") as out, (tmp / "stderr").open("wb") as err:
            proc = subprocess.run(
                [
                    sys.executable, "-m", "rar", "evaluate", "--run", str(run),
                    "--dataset", "redial", "--data-dir", str(data_dir), "--ranker", str(ranker),
                    "--max-samples", "200", "-k", "10", "--out", str(tmp / "eval"),
                ],
                stdout=out, stderr=err, env=env, timeout=600,
            )  # fmt: skip
    return proc.returncode, (tmp / "stdout").read_bytes(), (tmp / "stderr").read_bytes()


@pytest.mark.needs_data
@pytest.mark.slow
def test_progress_in_a_log_is_a_few_lines_without_carriage_returns(evaluate_to_files):
    code, _, err = evaluate_to_files
    assert code == 0, err.decode()
    assert b"\r" not in err
    text = err.decode()
    lines = text.splitlines()
    assert len(err) < 4_000 and len(lines) <= 2 * (LINE_STEPS + 1), text
    assert any(line.startswith("rank (openai): 20/200 sample (10%)") for line in lines), text
    assert any(line.startswith("rank (openai): 200/200 sample (100%)") for line in lines), text
    assert any(line.startswith("retrieve top-10: 200/200 sample (100%)") for line in lines), text


@pytest.mark.needs_data
@pytest.mark.slow
def test_result_table_keeps_every_system_name_at_80_columns(evaluate_to_files):
    code, out, err = evaluate_to_files
    assert code == 0, err.decode()
    text = out.decode()
    assert "…" not in text
    table = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80
    for name in (RUN_NAME, f"{RUN_NAME} + openai:fake-llm"):
        assert any(line.strip().endswith(f"= {name}") for line in text.splitlines()), text
    assert "200 samples evaluated (of " in " ".join(text.split())
