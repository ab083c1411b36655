"""LLM-only as a mode of the prompt ranker: one rate limiter, cache and accounting for ranking
and naming movies, so the configured limits hold across every batch of either mode (an
LLM-only run once made fresh limiters per call and ignored them between batches)."""

from __future__ import annotations

import pytest
from servers.llm_server import FakeLLMServer

from rar.data.types import Turn
from rar.rankers import RankerConfig, RankRequest, build_ranker

RPM = 30  # 0.5 calls/s after a burst of 30 (the bucket holds one minute)
CONTEXT = [Turn("seeker", "Hi! I'd like a funny romantic movie."), Turn("recommender", "Seen any?")]


@pytest.fixture(scope="module")
def corpus(small_corpus):
    from rar.corpus import Corpus

    return Corpus.load(small_corpus)


def test_rate_limit_holds_across_batches_of_both_modes(corpus, tmp_path):
    title, year = corpus.movies["title"].iloc[0], corpus.movies["year"].iloc[0]
    reply = f"1. {title} ({year})\n2. Zzyzx Qwerty Spaceship Ballet 3000 (2031)"
    with FakeLLMServer(responder=lambda prompt: reply) as server:
        config = RankerConfig(
            backend="openai", model="fake-llm", base_url=server.openai_base_url,
            cache={"enabled": False, "path": str(tmp_path / "c.sqlite")},
            limits={"rpm": RPM, "timeout_s": 10.0, "max_retries": 0},
        )  # fmt: skip
        ranker = build_ranker(config, corpus)
        ranked = ranker.rank([RankRequest(f"r{i}", CONTEXT, corpus.ids[:5]) for i in range(15)])
        named = ranker.recommend([(f"a{i}", CONTEXT) for i in range(15)], n_items=2)
        # the burst is spent: two more calls in a new batch wait for the shared bucket
        late = ranker.recommend([("b0", CONTEXT), ("b1", CONTEXT)], n_items=2)
        times = [hit["time"] for hit in server.hits]
    assert all(r.error is None for r in [*ranked, *named, *late]) and len(times) == 32
    # call 31 waits until one unit refilled (2 s at 0.5/s), call 32 another 2 s
    assert times[-1] - times[0] >= 2 * 60 / RPM - 0.5
    assert [r.ranked_ids for r in late] == [[corpus.ids[0]]] * 2
    assert late[0].hallucinations == ["Zzyzx Qwerty Spaceship Ballet 3000 (2031)"]
    st = ranker.stats()
    assert st.requests == 32 and st.calls == 32 and st.cache_hits == 0
    assert st.items_parsed == 15 * 2 + 17 * 2  # ranking replies' titles + LLM-only titles


def test_a_ranker_that_cannot_name_movies_refuses_the_mode(corpus):
    from rar.rankers.llm_only import llm_only_ranker

    ranker = build_ranker(RankerConfig(backend="semantic", cache={"enabled": False}), corpus)
    with pytest.raises(ValueError, match="needs an LLM backend"):
        llm_only_ranker(ranker)
