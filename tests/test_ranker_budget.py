"""Prompt layout, the token budget and the context-window guarantee, on real ReDial movie
metadata, with the SmolLM2 GGUF tokenizer (exact) and the estimate, through the OpenAI SDK
against the loopback server."""

from __future__ import annotations

import random

import pytest
from servers.llm_server import FakeLLMServer
from servers.redial_corpus import redial_metadata_corpus

from rar.corpus import Corpus
from rar.data.types import Turn
from rar.rankers import RankerConfig, RankRequest, build_ranker
from rar.rankers.budget import PromptTooLongError, fit_prompt, trim_levels
from rar.rankers.local_ranker import packaged_smollm2
from rar.rankers.prompt import build_prompt, format_candidate, load_candidates
from rar.rankers.ranker_config import PromptConfig
from rar.rankers.tokens import build_counter

CONTEXT = [
    Turn("seeker", "Hi! I'm looking for a scary movie for Halloween, something like Halloween."),
    Turn("recommender", "Have you seen The Shining? Or maybe It Follows?"),
    Turn("seeker", "I loved The Shining. Something with Jack Nicholson maybe?"),
]


@pytest.fixture(scope="module")
def corpus(data_dir) -> Corpus:
    return redial_metadata_corpus(data_dir, n=300)


@pytest.fixture(scope="module")
def gguf_counter():
    folder, name = packaged_smollm2()
    return build_counter(f"{folder}/{name}", overhead=0)


def _render(corpus, ids):
    cands = load_candidates(corpus, ids)

    def render(level: int, cfg: PromptConfig) -> str:
        return build_prompt(CONTEXT, cands, cfg, [format_candidate(c, cfg) for c in cands])

    return render


def test_prefix_cache_layout_puts_the_shared_part_first(corpus):
    paper, prefix = PromptConfig(), PromptConfig(layout="prefix_cache")
    sets = [corpus.ids[0:25], corpus.ids[30:55]]
    a, b = (_render(corpus, ids)(0, prefix) for ids in sets)
    # the two candidate sets of one conversation share everything up to the candidates
    shared = a.index("Candidate movies:")
    assert a[:shared] == b[:shared] and "Conversation history:" in a[:shared]
    assert a[shared:] != b[shared:]
    text = _render(corpus, sets[0])(0, paper)
    assert text.index("Candidate movies:") < text.index("Conversation history:")
    assert PromptConfig().layout == "paper"
    # the same parts, only reordered
    assert sorted(text.splitlines()) == sorted(a.splitlines())


def test_trim_order_plot_first_then_cast_then_the_rest():
    levels = trim_levels(PromptConfig(plot_max_chars=200))
    shown = [(lv.plot_max_chars if "plot" in lv.fields else 0, list(lv.fields)) for lv in levels]
    assert [p for p, _ in shown] == [200, 100, 50, 0, 0, 0, 0]
    assert shown[3][1] == ["title", "year", "genres", "directors", "cast"]
    assert shown[4][1] == ["title", "year", "genres", "directors"]  # cast goes after the plot
    assert shown[-1][1] == ["title", "year"]


def test_budget_trims_metadata_in_order(corpus, gguf_counter):
    ids = corpus.ids[:25]
    render = _render(corpus, ids)
    cfg = PromptConfig(plot_max_chars=200)
    full = gguf_counter.count(render(0, cfg))
    levels = trim_levels(cfg)
    sizes = [gguf_counter.count(render(i, lv)) for i, lv in enumerate(levels)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == full
    # a budget just under the untrimmed size shortens the plot, but keeps every field
    fitted = fit_prompt(
        render,
        gguf_counter.count,
        cfg.model_copy(update={"max_prompt_tokens": full - 1}),
        None,
        None,
    )
    assert fitted.level == 1 and "Plot:" in fitted.text and "Cast:" in fitted.text
    # a budget between "no plot" and "no cast": plot gone, cast kept
    budget = sizes[3]
    fitted = fit_prompt(
        render, gguf_counter.count, cfg.model_copy(update={"max_prompt_tokens": budget}), None, None
    )
    assert fitted.level == 3 and "Plot:" not in fitted.text and "Cast:" in fitted.text
    assert fitted.tokens <= budget and not fitted.over_budget
    # a budget below titles-only: sent with titles only, counted as over budget (no window)
    fitted = fit_prompt(
        render, gguf_counter.count, cfg.model_copy(update={"max_prompt_tokens": 10}), None, None
    )
    assert fitted.over_budget and "Genre:" not in fitted.text and "Director:" not in fitted.text


@pytest.mark.parametrize("counter_name", ["gguf", "estimate"])
def test_never_exceeds_the_context_window(corpus, gguf_counter, counter_name):
    counter = gguf_counter if counter_name == "gguf" else build_counter("estimate", 16)
    rng = random.Random(0)
    for trial in range(40):
        ids = rng.sample(corpus.ids, 25)
        render = _render(corpus, ids)
        window, max_tokens = rng.randint(300, 3000), rng.choice([None, 64, 256])
        cfg = PromptConfig(plot_max_chars=rng.choice([0, 100, 400]))
        try:
            fitted = fit_prompt(render, counter.count, cfg, window, max_tokens)
        except PromptTooLongError:
            titles_only = trim_levels(cfg)[-1]
            assert counter.count(render(0, titles_only)) + (max_tokens or 0) > window
            continue
        assert fitted.tokens + (max_tokens or 0) <= window, trial
        assert fitted.tokens == counter.count(fitted.text)


def test_gguf_counter_is_exact_and_knows_the_window(gguf_counter):
    assert gguf_counter.exact and gguf_counter.context_window == 8192
    # the chat template (system prompt + role markers) is counted, not only the text
    assert gguf_counter.count("Hi") > 10


def _config(server, tmp_path, **kw) -> RankerConfig:
    return RankerConfig(
        backend="openai",
        model="test-model",
        base_url=server.openai_base_url,
        cache={"path": str(tmp_path / "cache.sqlite")},
        limits={"timeout_s": 5.0, "max_retries": 0},
        **kw,
    )


def test_too_long_for_the_window_fails_with_window_and_size_and_sends_nothing(corpus, tmp_path):
    with FakeLLMServer() as server:
        ranker = build_ranker(_config(server, tmp_path, context_window=300, max_tokens=256), corpus)
        [result] = ranker.rank([RankRequest("s0", CONTEXT, corpus.ids[:25])])
        assert server.n_hits == 0
    assert result.error is not None
    assert "context window of 300 tokens" in result.error
    assert "+ max_tokens 256" in result.error and "prompt of " in result.error
    assert ranker.stats().prompts_too_long == 1


def test_budget_trims_on_the_wire_and_stats_report_tokens_per_call(corpus, tmp_path):
    with FakeLLMServer() as server:
        ranker = build_ranker(
            _config(
                server,
                tmp_path,
                prompt={"max_prompt_tokens": 900, "layout": "prefix_cache"},
                extra_body={"cache_prompt": True},
            ),
            corpus,
        )
        results = ranker.rank(
            [RankRequest(f"s{i}", CONTEXT, corpus.ids[i : i + 25]) for i in range(3)]
        )
        bodies = [hit["body"] for hit in server.hits]
    assert all(r.error is None for r in results)
    assert all(b["cache_prompt"] is True for b in bodies)  # extra_body reaches the server
    for body, result in zip(bodies, results, strict=True):
        prompt = body["messages"][-1]["content"]
        assert prompt.index("Conversation history:") < prompt.index("Candidate movies:")
        assert result.usage["prompt_tokens_counted"] <= 900 and result.usage["trim_level"] > 0
        assert len(result.ranked_ids) == 25
    st = ranker.stats()
    assert st.prompts_built == 3 and st.prompts_trimmed == 3 and st.answered == 3
    assert st.per_call()["prompt_tokens_per_call"] == st.prompt_tokens / 3 > 0
    assert 0 < st.per_call()["counted_tokens_per_prompt"] <= 900
