"""Failed ranker calls in `rar evaluate`: scored as misses, counted per system, exit status 3
past the allowed share. A real loopback server answers HTTP 401 (the OpenAI SDK's real
AuthenticationError path); the retriever is a tiny real LRURec on the small real corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from servers.llm_server import FakeLLMServer, Fault
from test_eval_evaluator import make_run
from typer.testing import CliRunner

from rar.cli import app

N = 10


@pytest.fixture(scope="module")
def run_dir(small_corpus, tmp_path_factory) -> Path:
    return make_run(small_corpus, tmp_path_factory.mktemp("run") / "tiny-lrurec")


def ranker_yaml(server: FakeLLMServer, tmp_path: Path) -> Path:
    path = tmp_path / "ranker.yaml"
    config = {
        "backend": "openai",
        "model": "fake-llm",
        "base_url": server.openai_base_url,
        "api_key_env": "RAR_TEST_KEY",
        "cache": {"enabled": False},
        "limits": {"timeout_s": 5.0, "max_retries": 1, "backoff_base_s": 0.01},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def evaluate(run_dir: Path, data_dir: Path, ranker: Path, out: Path, *extra: str):
    return CliRunner().invoke(
        app,
        [
            "evaluate", "--run", str(run_dir), "--dataset", "inspired",
            "--data", str(data_dir / "inspired" / "context_targets" / "train.csv"),
            "--ranker", str(ranker), "--max-samples", str(N), "-k", "10",
            "--out", str(out), "--quiet", *extra,
        ],
    )  # fmt: skip


def flat(output: str) -> str:
    return " ".join(output.split())


@pytest.mark.slow
def test_every_call_refused_is_an_error_and_scored_as_misses(
    run_dir, data_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("RAR_TEST_KEY", "sk-test-not-a-real-key")
    with FakeLLMServer() as server:
        server.push(*[Fault("status", status=401) for _ in range(4 * N)])
        result = evaluate(run_dir, data_dir, ranker_yaml(server, tmp_path), tmp_path / "e")
        assert server.n_hits == N  # 401 is not retried
    assert result.exit_code == 3, result.output
    text = flat(result.output)
    assert f"{N} of {N} ranker calls failed (100.0%) for 'tiny-lrurec + openai:fake-llm'" in text
    assert "HTTP 401" in text and "every call failed" in text
    data = json.loads((tmp_path / "e" / "evaluation.json").read_text())  # still written
    ranked = data["systems"]["tiny-lrurec + openai:fake-llm"]
    assert ranked["failed_samples"] == N and ranked["failed_share"] == 1.0
    assert all(value == 0.0 for value in ranked["metrics"].values())  # misses, not the fallback
    assert "failed_samples" not in data["systems"]["tiny-lrurec"]
    records = [
        json.loads(line)
        for line in (tmp_path / "e" / "samples" / "tiny-lrurec_openai_fake-llm.jsonl")
        .read_text()
        .splitlines()
    ]
    assert len(records) == N and all(r["error"] and r["ranking"] == [] for r in records)
    assert all(len(r["candidates"]) == 10 for r in records)  # the retriever's order is kept apart
    md = (tmp_path / "e" / "evaluation.md").read_text()
    assert f"| {N} (100.0%) |" in md and "scored as a miss" in md


@pytest.mark.slow
def test_some_failed_calls_warn_and_the_share_limit_is_configurable(
    run_dir, data_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("RAR_TEST_KEY", "sk-test-not-a-real-key")
    with FakeLLMServer() as server:
        ranker = ranker_yaml(server, tmp_path)
        server.push(*[Fault("status", status=401) for _ in range(3)])
        warned = evaluate(run_dir, data_dir, ranker, tmp_path / "a")
        server.push(*[Fault("status", status=401) for _ in range(3)])
        strict = evaluate(run_dir, data_dir, ranker, tmp_path / "b", "--max-failed-share", "0.2")
        server.push(*[Fault("status", status=401) for _ in range(3)])
        lenient = evaluate(
            run_dir, data_dir, ranker, tmp_path / "c", "--set", "max_failed_share=0.5"
        )
    assert warned.exit_code == 0, warned.output
    assert f"warning: 3 of {N} ranker calls failed (30.0%)" in flat(warned.output)
    data = json.loads((tmp_path / "a" / "evaluation.json").read_text())
    ranked = data["systems"]["tiny-lrurec + openai:fake-llm"]
    assert ranked["failed_samples"] == 3 and ranked["failed_share"] == pytest.approx(0.3)
    records = [
        json.loads(line)
        for line in (tmp_path / "a" / "samples" / "tiny-lrurec_openai_fake-llm.jsonl")
        .read_text()
        .splitlines()
    ]
    assert sum(1 for r in records if r["error"]) == 3
    assert all(r["ranking"] == [] for r in records if r["error"])
    assert all(sorted(r["ranking"]) == sorted(r["candidates"]) for r in records if not r["error"])
    assert strict.exit_code == 3 and "max_failed_share = 0.2" in flat(strict.output)
    assert lenient.exit_code == 0, lenient.output
