"""What of a reply is kept (issue 24 items 9 and 12), through the official SDKs against the
loopback server: a server that echoes the API key gets it redacted from the results and the
cache; a huge reply is cut to `max_reply_chars` before it is parsed, cached or saved, and
counted. The end-to-end test runs `rar evaluate` and reads the samples file it writes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from servers.llm_server import FakeLLMServer, Fault, reverse_ranking
from servers.redial_corpus import redial_metadata_corpus
from typer.testing import CliRunner

from rar.corpus import Corpus
from rar.data.types import Turn
from rar.rankers import RankerConfig, RankRequest, build_ranker
from rar.rankers.cache import CachedReply, ResponseCache, cache_key
from rar.rankers.replies import storable

SECRET = "sk-test-ECHOED-key-0123456789abcdef"
BACKENDS = ["openai", "gemini"]


@pytest.fixture(scope="module")
def corpus(data_dir) -> Corpus:
    return redial_metadata_corpus(data_dir, n=30)


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("RAR_TEST_KEY", SECRET)


def make_config(backend: str, server: FakeLLMServer, tmp_path: Path, **extra) -> RankerConfig:
    url = server.openai_base_url if backend == "openai" else server.gemini_base_url
    return RankerConfig(
        backend=backend,
        model="test-model",
        base_url=url,
        api_key_env="RAR_TEST_KEY",
        cache={"path": str(tmp_path / "cache.sqlite")},
        limits={"timeout_s": 30.0, "max_retries": 1, "backoff_base_s": 0.01},
        **extra,
    )


def requests_for(corpus: Corpus, n: int, k: int = 5) -> list[RankRequest]:
    ctx = [Turn("seeker", "A thriller with a twist, please.")]
    return [RankRequest(f"s{i}", ctx, corpus.ids[i : i + k]) for i in range(n)]


def cache_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob("cache.sqlite*"))


def stored_replies(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "cache.sqlite") as conn:
        return [row[0] for row in conn.execute("SELECT reply FROM replies")]


def echoing(prompt: str) -> str:
    """A server that echoes the key it was sent: in a list item, in chatter, twice on a line."""
    return f"Your key is {SECRET}.\n{reverse_ranking(prompt)}\n6. {SECRET} ({SECRET})\n"


def test_redact_then_cut():
    reply = storable(f"ab {SECRET} cd", SECRET, max_chars=6)
    assert reply.text == "ab [re" and reply.redacted == 1 and reply.truncated
    assert storable("abc", SECRET, 3) == storable("abc", None, 3)  # nothing to do
    assert storable("x not-needed y", "not-ne", 100).redacted == 0  # too short to be a key


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_echoed_api_key_reaches_neither_results_nor_cache(backend, corpus, tmp_path):
    with FakeLLMServer(responder=echoing) as server:
        config = make_config(backend, server, tmp_path)
        first = build_ranker(config, corpus).rank(requests_for(corpus, 2))
        again = build_ranker(config, corpus).rank(requests_for(corpus, 2))  # warm cache
        assert server.n_hits == 2
    for res in first + again:
        assert res.error is None and res.n_model_ranked == 5
        assert SECRET not in repr(res) and "Your key is [redacted]." in res.raw_reply
        assert res.hallucinations == ["[redacted] ([redacted])"]
    assert all(r.cached for r in again) and [r.raw_reply for r in again] == [
        r.raw_reply for r in first
    ]
    assert SECRET.encode() not in cache_bytes(tmp_path)
    assert all("[redacted]" in reply for reply in stored_replies(tmp_path))


def test_a_key_in_a_cache_entry_written_before_the_fix_is_redacted_on_read(corpus, tmp_path):
    with FakeLLMServer() as server:
        config = make_config("openai", server, tmp_path)
        ranker = build_ranker(config, corpus)
        [req] = requests_for(corpus, 1)
        _, prompt = ranker.build(req)
        key = cache_key("openai", "test-model", prompt, ranker.generation_params())
        ResponseCache(tmp_path / "cache.sqlite").put(
            key, "openai", "test-model", CachedReply(f"{reverse_ranking(prompt)}\n{SECRET}")
        )
        [res] = ranker.rank([req])
        assert server.n_hits == 0
    assert res.cached and SECRET not in repr(res) and res.raw_reply.endswith("\n[redacted]")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_huge_reply_is_cut_counted_and_never_stored_whole(backend, corpus, tmp_path):
    huge = "\n".join(f"{i}. Not a candidate {i} " + "z" * 80 for i in range(1, 20_001))  # 1.9 MB
    with FakeLLMServer(responder=lambda p: reverse_ranking(p) + "\n" + huge) as server:
        config = make_config(backend, server, tmp_path, max_reply_chars=4_000)
        ranker = build_ranker(config, corpus)
        results = ranker.rank(requests_for(corpus, 3))
        assert server.n_hits == 3
    st = ranker.stats()
    assert st.replies_truncated == 3 and st.failures == 0
    for res in results:
        assert res.error is None and len(res.raw_reply) == 4_000
        assert res.n_model_ranked == 5  # the ranking at the head of the reply is kept
        assert res.usage["reply_chars"] > 1_900_000
        assert sum(map(len, res.hallucinations + res.non_titles)) <= 4_000
    assert [len(r) for r in stored_replies(tmp_path)] == [4_000] * 3


def test_the_default_cap_is_64k_characters(corpus, tmp_path):
    with FakeLLMServer() as server:
        server.push(Fault("text", text="1. " + "y" * 1_000_000))
        ranker = build_ranker(make_config("openai", server, tmp_path), corpus)
        [res] = ranker.rank(requests_for(corpus, 1))
    assert RankerConfig().max_reply_chars == 65_536 == len(res.raw_reply)
    assert ranker.stats().replies_truncated == 1


@pytest.mark.slow
def test_evaluate_saves_neither_the_key_nor_a_huge_reply(small_corpus, data_dir, tmp_path):
    """`rar evaluate` against a server whose replies echo the key and run to 2 MB: the samples
    file and the cache hold the key nowhere and no reply text longer than the cap."""
    from test_eval_evaluator import make_run

    run = make_run(small_corpus, tmp_path / "run")
    huge = "\n".join(f"{SECRET} line {i} " + "w" * 60 for i in range(20_000))
    with FakeLLMServer(responder=lambda p: echoing(p) + huge) as server:
        ranker = tmp_path / "ranker.yaml"
        cfg = make_config("openai", server, tmp_path, max_reply_chars=3_000)
        ranker.write_text(yaml.safe_dump(cfg.model_dump(mode="json")), encoding="utf-8")
        result = CliRunner().invoke(
            __import__("rar.cli", fromlist=["app"]).app,
            [
                "evaluate", "--run", str(run), "--dataset", "inspired",
                "--data", str(data_dir / "inspired" / "context_targets" / "train.csv"),
                "--ranker", str(ranker), "--max-samples", "4", "-k", "5",
                "--out", str(tmp_path / "e"), "--quiet",
            ],
        )  # fmt: skip
        assert server.n_hits >= 1
    assert result.exit_code == 0, result.output
    written = b"".join(p.read_bytes() for p in (tmp_path / "e").rglob("*") if p.is_file())
    assert SECRET.encode() not in written and SECRET.encode() not in cache_bytes(tmp_path)
    samples = next((tmp_path / "e" / "samples").glob("*openai*.jsonl")).read_text()
    for line in samples.splitlines():
        record = json.loads(line)
        assert sum(map(len, record["hallucinations"] + record["non_titles"])) <= 3_000
    assert max(map(len, stored_replies(tmp_path))) <= 3_000
