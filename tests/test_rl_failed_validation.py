"""Failed ranker calls in RL validation: never scored as ranked, counted, and a validation where
every call failed stops the run with a clear error (exit status 3). A real loopback server
answers HTTP 401; the retriever is a tiny real LRURec on the small real corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from servers.llm_server import FakeLLMServer, Fault
from test_eval_evaluator import make_run
from typer.testing import CliRunner

from rar.cli import app
from rar.rankers import RankerConfig, build_ranker

K = 100


@pytest.fixture(scope="module")
def corpus(small_corpus):
    from rar.corpus import Corpus

    return Corpus.load(small_corpus)


@pytest.fixture(scope="module")
def run_dir(small_corpus, tmp_path_factory) -> Path:
    return make_run(small_corpus, tmp_path_factory.mktemp("run") / "tiny-lrurec")


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("RAR_TEST_KEY", "sk-test-not-a-real-key")


def refusing_server(n: int) -> FakeLLMServer:
    server = FakeLLMServer().start()
    server.push(*[Fault("status", status=401) for _ in range(n)])
    return server


@pytest.mark.slow
def test_failed_validation_calls_score_as_misses_not_as_the_retriever_order(
    corpus, run_dir, data_dir, tmp_path
):
    from rar.data.linking import link_samples
    from rar.data.registry import load_conversation_samples
    from rar.pipeline import run_pipeline
    from rar.retrievers import load_pretrained_run

    linked, _ = link_samples(load_conversation_samples("inspired", data_dir, "test"), corpus)
    linked = linked[:120]
    model = load_pretrained_run(run_dir, corpus)
    server = refusing_server(10 * len(linked))
    try:
        ranker = build_ranker(
            RankerConfig(
                backend="openai", model="fake-llm", base_url=server.openai_base_url,
                api_key_env="RAR_TEST_KEY", cache={"enabled": False},
                limits={"timeout_s": 5.0, "max_retries": 0},
            ),
            corpus,
        )  # fmt: skip
        result = run_pipeline(linked, corpus, model, ranker, k=K, ks=(K,))
    finally:
        server.stop()
    assert result.ranker_failures == len(linked)
    assert result.metrics["ranker_failed_share"] == 1.0
    assert "HTTP 401" in (result.first_error or "")
    # the retriever's own order finds targets; the failed ranker must not be credited with them
    assert np.sum(result.per_sample[f"retriever/recall@{K}"]) > 0
    assert np.all(result.per_sample[f"recall@{K}"] == 0.0)


@pytest.mark.slow
def test_a_validation_where_every_call_failed_stops_the_run(
    small_corpus, run_dir, data_dir, tmp_path
):
    server = refusing_server(1000)
    try:
        result = CliRunner().invoke(
            app,
            [
                "train", "--quiet", "--pretrained", str(run_dir), "--corpus", str(small_corpus),
                "--data-dir", str(data_dir), "--name", "refused",
                "--set", f"tracking.runs_dir={tmp_path / 'runs'}",
                "--set", "data.dataset=inspired", "--set", "data.train_size=8",
                "--set", "data.val_size=6", "--set", "data.test_size=4",
                "--set", "rl.method=sft", "--set", "rl.k=8", "--set", "optim.batch_size=4",
                "--set", "max_steps=2", "--set", "validate_at_start=true", "--set", "threads=1",
                "--set", "ranker.backend=openai", "--set", "ranker.model=fake-llm",
                "--set", f"ranker.base_url={server.openai_base_url}",
                "--set", "ranker.api_key_env=RAR_TEST_KEY", "--set", "ranker.cache.enabled=false",
                "--set", "ranker.limits.max_retries=0",
            ],
        )  # fmt: skip
    finally:
        server.stop()
    assert result.exit_code == 3, result.output
    text = " ".join(result.output.split())
    assert "6 of 6 ranker calls failed (100.0%) for validation at step 0" in text
    assert "HTTP 401" in text and "Traceback" not in text
    assert not (tmp_path / "runs" / "refused" / "checkpoints" / "best.pt").exists()
