"""Adaptive concurrency, the retry budget and the circuit breaker through the real OpenAI SDK
against loopback servers: a one-slot engine that queues requests (like llama.cpp and Ollama
by default), a server answering 503 to everything, and a port with nothing listening."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import typer
from servers.llm_server import FakeLLMServer, Fault
from servers.redial_corpus import redial_metadata_corpus

from rar.commands.common import user_errors
from rar.corpus import Corpus
from rar.data.types import Turn
from rar.rankers import RankerConfig, RankRequest, build_ranker
from rar.rankers.concurrency import RankerUnavailable

SERVERS = Path(__file__).resolve().parent / "servers"
SERVICE_S = 0.3  # one answer of the one-slot server (a real CPU engine: ~8 s)


@pytest.fixture(scope="module")
def corpus(data_dir) -> Corpus:
    return redial_metadata_corpus(data_dir, n=60)


def config(url: str, tmp_path, **limits) -> RankerConfig:
    return RankerConfig(
        backend="openai",
        model="test-model",
        base_url=url,
        cache={"path": str(tmp_path / "cache.sqlite")},
        limits=limits,
    )


def requests_for(corpus: Corpus, n: int, k: int = 5) -> list[RankRequest]:
    ctx = [Turn("seeker", "Something scary for tonight, please.")]
    return [RankRequest(f"s{i}", ctx, corpus.ids[i : i + k]) for i in range(n)]


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_slot_server_with_default_settings_has_no_failures(corpus, tmp_path):
    with FakeLLMServer(latency_s=SERVICE_S, slots=1) as server:
        ranker = build_ranker(config(server.openai_base_url, tmp_path), corpus)
        results = ranker.rank(requests_for(corpus, 30), progress=True)
        assert [r.error for r in results] == [None] * 30
        st = ranker.stats()
        assert st.failures == 0 and st.retries == 0 and st.calls == 30
        assert server.max_in_flight <= 3  # not 16 queued at once
        assert ranker.concurrency() <= 3
        assert "in flight" in ranker.progress_postfix()


def test_adaptive_limit_survives_a_tight_timeout_where_fixed_16_fails(corpus, tmp_path):
    """The issue's ratio: a timeout a few answers long. 16 requests queued on one slot time
    out; the adaptive client keeps the queue short and loses nothing."""
    timeout = 5 * SERVICE_S
    with FakeLLMServer(latency_s=SERVICE_S, slots=1) as server:
        ranker = build_ranker(config(server.openai_base_url, tmp_path, timeout_s=timeout), corpus)
        assert all(r.error is None for r in ranker.rank(requests_for(corpus, 30)))
        assert ranker.stats().retries == 0 and server.max_in_flight <= 3
    with FakeLLMServer(latency_s=SERVICE_S, slots=1) as server:
        fixed = config(
            server.openai_base_url,
            tmp_path / "fixed",
            timeout_s=timeout,
            adaptive=False,
            max_retries=0,
            breaker_failures=0,
            timeout_growth=1,  # the old fixed timeout, to show what it loses
        )
        ranker = build_ranker(fixed, corpus)
        results = ranker.rank(requests_for(corpus, 30))
        assert server.max_in_flight >= 16  # abandoned requests stay queued on the server
        assert sum(r.error is not None for r in results) >= 10
        assert all("timeout" in r.error for r in results if r.error)


FAST_BREAKER = {"breaker_open_after_s": 2.0, "probe_base_s": 0.05, "probe_max_s": 0.2}


def test_breaker_stops_the_run_when_nothing_listens(corpus, tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    ranker = build_ranker(config(url, tmp_path, breaker_failures=5, **FAST_BREAKER), corpus)
    start = time.monotonic()
    with pytest.raises(RankerUnavailable) as info:
        ranker.rank(requests_for(corpus, 30))
    elapsed = time.monotonic() - start
    assert 2.0 <= elapsed < 20  # after the failures persisted breaker_open_after_s, not before
    message = str(info.value)
    assert (
        url in message and "connection" in message and "rerun to resume from the cache" in message
    )
    assert "consecutive failed calls over 2 s" in message
    st = ranker.stats()
    # probes, one per probe interval, not 30 requests x 5 attempts
    assert st.calls <= 2 + 2.0 / 0.05 and st.retries == 0


@pytest.mark.slow  # a minute: the default breaker_open_after_s
def test_dead_server_stops_the_run_with_default_settings_within_a_minute_or_so(corpus, tmp_path):
    """Untouched defaults: a port with nothing listening stops the run once the failures
    have lasted breaker_open_after_s (60 s), with the probes spaced at most 5 s apart."""
    url = f"http://127.0.0.1:{free_port()}/v1"
    ranker = build_ranker(config(url, tmp_path), corpus)
    start = time.monotonic()
    with pytest.raises(RankerUnavailable, match="consecutive failed calls over 6[0-9] s"):
        ranker.rank(requests_for(corpus, 30))
    assert 60 <= time.monotonic() - start < 75
    assert ranker.stats().calls <= 2 + 60 / 5 + 6  # in flight + probes


def test_breaker_stops_the_run_when_the_server_answers_503(corpus, tmp_path):
    with FakeLLMServer() as server:
        server.push(*[Fault("status", 503)] * 500)
        ranker = build_ranker(
            config(
                server.openai_base_url,
                tmp_path,
                breaker_failures=6,
                **FAST_BREAKER,
            ),
            corpus,
        )
        with pytest.raises(RankerUnavailable, match="HTTP 503"):
            ranker.rank(requests_for(corpus, 30))
        assert server.n_hits <= 2 + 2.0 / 0.05  # what was in flight, then one per probe


def _serve_in_subprocess(port: int, *args: str) -> subprocess.Popen:
    """The loopback server in its own process on `port`, so SIGKILL drops every connection
    (a crashed or killed engine), as the real engine does."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVERS / "llm_server.py"), "--port", str(port), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and int(proc.stdout.readline()) == port
    return proc


def test_restart_of_a_few_seconds_is_ridden_out_with_default_settings(corpus, tmp_path):
    """SIGKILL the one-slot server while requests are in flight, start it again 3 s later on
    the same port, answering 503 ("loading") for its first second: every request completes,
    nothing fails, and the refused calls are counted as outage retries, not as retries that
    spend a request's own attempts or the retry budget."""
    port = free_port()
    server = _serve_in_subprocess(port, "--latency", "0.1", "--slots", "1")
    url = f"http://127.0.0.1:{port}/v1"
    ranker = build_ranker(config(url, tmp_path), corpus)
    restarted: list[subprocess.Popen] = []

    def restart() -> None:
        server.kill()
        server.wait()
        time.sleep(3.0)
        restarted.append(
            _serve_in_subprocess(port, "--latency", "0.1", "--slots", "1", "--loading-s", "1")
        )

    timer = threading.Timer(1.0, restart)  # about 10 answers in
    timer.start()
    try:
        start = time.monotonic()
        results = ranker.rank(requests_for(corpus, 60))
        elapsed = time.monotonic() - start
    finally:
        timer.join()
        for proc in [server, *restarted]:
            proc.kill()
            proc.wait()
    assert [r.error for r in results] == [None] * 60
    st = ranker.stats()
    assert st.failures == 0 and st.outage_retries >= 1, st
    assert st.retries_denied == 0
    assert elapsed >= 4.0  # the run really waited for the restart


def test_server_that_stays_down_after_a_kill_stops_the_run_with_one_clear_error(corpus, tmp_path):
    port = free_port()
    server = _serve_in_subprocess(port, "--latency", "0.1", "--slots", "1")
    url = f"http://127.0.0.1:{port}/v1"
    ranker = build_ranker(config(url, tmp_path, **FAST_BREAKER), corpus)
    timer = threading.Timer(1.0, server.kill)
    timer.start()
    try:
        with pytest.raises(RankerUnavailable, match="rerun to resume from the cache"):
            ranker.rank(requests_for(corpus, 200))
    finally:
        timer.join()
        server.wait()
    st = ranker.stats()
    assert st.answered >= 1 and st.answered < 200
    assert st.outage_retries >= 1


def test_retry_budget_caps_the_retries_to_a_failing_server(corpus, tmp_path):
    with FakeLLMServer() as server:
        server.push(*[Fault("status", 503)] * 500)
        cfg = config(
            server.openai_base_url,
            tmp_path,
            max_retries=4,
            backoff_base_s=0.01,
            backoff_max_s=0.02,
            breaker_failures=0,
            retry_budget_ratio=0.2,
            retry_budget_min=5,
        )
        ranker = build_ranker(cfg, corpus)
        results = ranker.rank(requests_for(corpus, 30))
        assert all(r.error is not None for r in results)
        st = ranker.stats()
        assert st.retries <= 0.2 * 30 + 5  # not 30 x 4 = 120
        assert server.n_hits == 30 + st.retries
        assert st.retries_denied > 0 and st.failures == 30
        assert any("retry budget spent" in r.error for r in results)


def test_timeouts_grow_the_timeout_so_a_slow_server_is_waited_for(corpus, tmp_path):
    """A server four times slower than timeout_s: the first call times out, its retry (and
    every later call) gets a doubled timeout, so nothing fails; after fast answers the
    timeout shrinks back to timeout_s."""
    with FakeLLMServer(latency_s=1.2, slots=1) as server:
        ranker = build_ranker(config(server.openai_base_url, tmp_path, timeout_s=0.5), corpus)
        results = ranker.rank(requests_for(corpus, 3))
        assert [r.error for r in results] == [None] * 3
        assert ranker.stats().retries >= 1 and ranker.timeout_s >= 1.2
        server.latency_s = 0.01
        ranker.rank(requests_for(corpus, 3)[1:] + [RankRequest("x", [], corpus.ids[40:45])])
        assert ranker.timeout_s == 0.5


def test_cli_shows_a_dead_server_as_one_line(capsys):
    with pytest.raises(typer.Exit) as info, user_errors():
        raise RankerUnavailable("http://127.0.0.1:9/v1", 10, "connection error: refused [x]")
    assert info.value.exit_code == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ranker server http://127.0.0.1:9/v1")
    assert "refused [x]" in err and "rerun to resume from the cache" in err
