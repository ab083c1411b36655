"""OpenAI and Gemini rankers through their official SDKs against a loopback server speaking
the real wire formats, with injected faults (429 + Retry-After, 500, slow, malformed JSON,
non-list replies, non-candidate titles)."""

from __future__ import annotations

import logging

import pytest
from servers.llm_server import FakeLLMServer, Fault, prompt_candidates
from servers.redial_corpus import redial_metadata_corpus

from rar.corpus import Corpus
from rar.data.types import Turn
from rar.rankers import RankerConfig, RankRequest, build_ranker
from rar.rankers.cache import ResponseCache

SECRET = "sk-test-SECRET-do-not-store-0123456789"
BACKENDS = ["openai", "gemini"]


@pytest.fixture(scope="module")
def corpus(data_dir) -> Corpus:
    return redial_metadata_corpus(data_dir, n=60)


@pytest.fixture
def server():
    with FakeLLMServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("RAR_TEST_KEY", SECRET)


def make_config(backend: str, server: FakeLLMServer, tmp_path, **limits) -> RankerConfig:
    url = server.openai_base_url if backend == "openai" else server.gemini_base_url
    lim = {
        "timeout_s": 2.0,
        "max_retries": 2,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        **limits,
    }
    return RankerConfig(
        backend=backend,
        model="test-model",
        base_url=url,
        api_key_env="RAR_TEST_KEY",
        cache={"path": str(tmp_path / "cache.sqlite")},
        limits=lim,
        price={"prompt_per_1m": 1.0, "completion_per_1m": 10.0},
    )


def requests_for(corpus: Corpus, n: int, k: int = 5) -> list[RankRequest]:
    ctx = [
        Turn("seeker", "Hi! I'd like a funny romantic movie."),
        Turn("recommender", "Seen any lately?"),
    ]
    return [RankRequest(f"s{i}", ctx, corpus.ids[i : i + k]) for i in range(n)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_parses_ranking_counts_tokens_and_cost(backend, server, corpus, tmp_path):
    ranker = build_ranker(make_config(backend, server, tmp_path), corpus)
    reqs = requests_for(corpus, 3)
    results = ranker.rank(reqs)
    for req, res in zip(reqs, results, strict=True):
        assert res.error is None and not res.cached and res.hallucinations == []
        assert res.ranked_ids == req.candidate_ids[::-1]  # the server answers last-first
        assert res.usage["prompt_tokens"] > 0 and res.usage["n_matched"] == 5
    st = ranker.stats()
    assert st.calls == 3 and st.failures == 0 and st.cache_misses == 3
    expected = (st.prompt_tokens * 1.0 + st.completion_tokens * 10.0) / 1e6
    assert st.cost_usd == pytest.approx(expected) and st.cost_usd > 0
    body = server.hits[0]["body"]
    if backend == "openai":
        assert server.hits[0]["path"] == "/v1/chat/completions"
        assert (
            body["model"] == "test-model"
            and body["temperature"] == 0.0
            and body["max_tokens"] == 1024
        )
        assert server.hits[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    else:
        assert server.hits[0]["path"] == "/v1beta/models/test-model:generateContent"
        assert body["generationConfig"]["maxOutputTokens"] == 1024
        assert server.hits[0]["headers"]["x-goog-api-key"] == SECRET
    prompt = (
        body["messages"][0]["content"]
        if backend == "openai"
        else body["contents"][0]["parts"][0]["text"]
    )
    assert len(prompt_candidates(prompt)) == 5 and "Conversation history:" in prompt


@pytest.mark.parametrize("backend", BACKENDS)
def test_warm_cache_makes_zero_calls_and_key_is_never_stored(
    backend, server, corpus, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    config = make_config(backend, server, tmp_path)
    reqs = requests_for(corpus, 4)
    first = build_ranker(config, corpus).rank(reqs)
    hits = server.n_hits
    assert hits == 4
    again = build_ranker(config, corpus)  # a new run on the same cache file
    second = again.rank(reqs)
    assert server.n_hits == hits  # zero network calls
    assert all(r.cached for r in second)
    assert [r.ranked_ids for r in second] == [r.ranked_ids for r in first]
    assert again.stats().cache_hits == 4 and again.stats().calls == 0
    db = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("cache.sqlite"))
    assert SECRET.encode() not in db
    assert SECRET not in caplog.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_retries_429_with_retry_after_then_500(backend, server, corpus, tmp_path):
    server.push(Fault("status", 429, retry_after=0.3), Fault("status", 500))
    ranker = build_ranker(make_config(backend, server, tmp_path, max_in_flight=1), corpus)
    [res] = ranker.rank(requests_for(corpus, 1))
    assert res.error is None and res.usage["attempts"] == 3
    assert server.n_hits == 3 and ranker.stats().retries == 2
    assert server.hits[1]["time"] - server.hits[0]["time"] >= 0.3  # honoured Retry-After


@pytest.mark.parametrize("backend", BACKENDS)
def test_persistent_failure_is_recorded_not_raised(backend, server, corpus, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    # HTTP 500 keeps the ordinary retries (503 means "not ready": it waits for the server)
    server.push(*[Fault("status", 500)] * 3)
    ranker = build_ranker(make_config(backend, server, tmp_path, max_in_flight=1), corpus)
    reqs = requests_for(corpus, 2)
    [bad] = ranker.rank(reqs[:1])
    [good] = ranker.rank(reqs[1:])  # the run goes on
    assert "500" in bad.error and bad.usage["attempts"] == 3
    assert bad.ranked_ids == reqs[0].candidate_ids  # retriever order so metrics stay defined
    assert good.error is None
    st = ranker.stats()
    assert st.failures == 1 and st.calls == 4 and st.requests == 2
    # a failed call is not cached: the next run tries again
    assert (
        build_ranker(make_config(backend, server, tmp_path), corpus).rank(reqs[:1])[0].error is None
    )
    assert SECRET not in caplog.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_client_errors_are_not_retried(backend, server, corpus, tmp_path):
    server.push(Fault("status", 400))
    ranker = build_ranker(make_config(backend, server, tmp_path), corpus)
    [res] = ranker.rank(requests_for(corpus, 1))
    assert "400" in res.error and server.n_hits == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_slow_reply_times_out_then_retry_succeeds(backend, server, corpus, tmp_path):
    # Generous margins: on a loaded 2-core machine a normal reply can take well over 0.5 s.
    server.push(Fault("slow", delay=6.0))
    ranker = build_ranker(make_config(backend, server, tmp_path, timeout_s=2.0), corpus)
    [res] = ranker.rank(requests_for(corpus, 1))
    assert res.error is None and res.usage["attempts"] == 2 and server.n_hits == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_always_slow_records_timeout(backend, server, corpus, tmp_path):
    server.push(*[Fault("slow", delay=1.0)] * 2)
    ranker = build_ranker(
        make_config(backend, server, tmp_path, timeout_s=0.3, max_retries=1), corpus
    )
    [res] = ranker.rank(requests_for(corpus, 1))
    assert res.error is not None and "timeout" in res.error


@pytest.mark.parametrize("backend", BACKENDS)
def test_malformed_json_is_retried(backend, server, corpus, tmp_path):
    server.push(Fault("malformed"))
    ranker = build_ranker(make_config(backend, server, tmp_path), corpus)
    [res] = ranker.rank(requests_for(corpus, 1))
    assert res.error is None and res.usage["attempts"] == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_list_and_non_candidate_replies(backend, server, corpus, tmp_path):
    reqs = requests_for(corpus, 2)
    second = corpus.movie(corpus.index_of(reqs[1].candidate_ids[2]))
    server.push(
        Fault("text", text="I'm sorry, I can't rank movies without more information."),
        Fault(
            "text",
            text=f"Here are my picks:\n1. Inception (2010)\n2. {second.title}\n3. The Godfather\n",
        ),
    )
    ranker = build_ranker(make_config(backend, server, tmp_path, max_in_flight=1), corpus)
    r0, r1 = ranker.rank(reqs)
    assert r0.error is None and r0.ranked_ids == reqs[0].candidate_ids
    assert r0.usage["n_matched"] == 0 and r0.hallucinations == []  # a refusal is no title
    assert r0.non_titles == ["I'm sorry, I can't rank movies without more information."]
    assert r0.n_model_ranked == 0 and r0.scored_ids == []  # nothing the model ranked scores
    assert r1.hallucinations == ["Inception (2010)", "The Godfather"]
    assert r1.non_titles == ["Here are my picks:"] and r1.n_model_ranked == 1
    assert r1.ranked_ids[0] == reqs[1].candidate_ids[2] and sorted(r1.ranked_ids) == sorted(
        reqs[1].candidate_ids
    )
    st = ranker.stats()
    assert st.hallucinations == 2 and st.items_parsed == 3 and st.non_title_lines == 2
    assert st.hallucination_rate == pytest.approx(2 / 3)
    assert st.appended == 5 + 4 and st.candidates == 10 and st.appended_share == 0.9


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_flight_bound_and_rpm(backend, corpus, tmp_path):
    with FakeLLMServer(latency_s=0.1) as server:
        ranker = build_ranker(make_config(backend, server, tmp_path, max_in_flight=3), corpus)
        assert all(r.error is None for r in ranker.rank(requests_for(corpus, 12)))
        assert 2 <= server.max_in_flight <= 3
    with FakeLLMServer() as server:
        config = make_config(backend, server, tmp_path / "b", rpm=600)  # 10/s, burst of 600
        ranker = build_ranker(config, corpus)
        assert all(r.error is None for r in ranker.rank(requests_for(corpus, 3)))
        assert ranker._rpm is not None and ranker._rpm.level < 600  # the bucket was drawn from


def test_reasoning_and_thinking_options_reach_the_wire(server, corpus, tmp_path):
    cfg = make_config("openai", server, tmp_path)
    cfg.reasoning_effort = "low"
    build_ranker(cfg, corpus).rank(requests_for(corpus, 1))
    body = server.hits[-1]["body"]
    assert body["reasoning_effort"] == "low" and body["max_completion_tokens"] == 1024
    assert "temperature" not in body and "max_tokens" not in body
    cfg = make_config("gemini", server, tmp_path)
    cfg.thinking = False
    build_ranker(cfg, corpus).rank(requests_for(corpus, 1))
    thinking = server.hits[-1]["body"]["generationConfig"]["thinkingConfig"]
    # this SDK version sends the proto field name; the API accepts either JSON spelling
    assert thinking.get("thinkingBudget", thinking.get("thinking_budget")) == 0


def test_missing_api_key_is_a_clear_error(monkeypatch, corpus, tmp_path):
    monkeypatch.delenv("RAR_TEST_KEY")
    cfg = RankerConfig(backend="openai", api_key_env="RAR_TEST_KEY", cache={"enabled": False})
    with pytest.raises(ValueError, match="RAR_TEST_KEY"):
        build_ranker(cfg, corpus)


def test_unknown_candidate_is_recorded(server, corpus, tmp_path):
    ranker = build_ranker(make_config("openai", server, tmp_path), corpus)
    [res] = ranker.rank([RankRequest("x", [], ["no-such-id"])])
    assert "no-such-id" in res.error and server.n_hits == 0


EMPTY_REPLIES = {
    "openai": {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []},
    "gemini": {"candidates": [], "promptFeedback": {"blockReason": "SAFETY"}},
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_reply_without_choices_is_an_empty_reply_and_not_retried(
    backend, server, corpus, tmp_path
):
    """Issue 24 item 11: `choices: []` (Gemini: no candidates) is an answer, not a transport
    fault: a clear "empty reply" error, one call, nothing cached."""
    server.push(*[Fault("json", payload=EMPTY_REPLIES[backend])] * 3)
    ranker = build_ranker(make_config(backend, server, tmp_path), corpus)
    [res] = ranker.rank(requests_for(corpus, 1))
    assert res.error is not None and res.error.startswith("empty reply (")
    assert "ChatCompletion(" not in res.error and "GenerateContentResponse(" not in res.error
    assert ("no choices" if backend == "openai" else "no candidates") in res.error
    assert server.n_hits == 1 and res.usage["attempts"] == 1
    st = ranker.stats()
    assert st.retries == 0 and st.failures == 1
    assert len(ResponseCache(tmp_path / "cache.sqlite")) == 0
