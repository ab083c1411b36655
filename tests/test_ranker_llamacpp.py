"""The in-process llama.cpp ranker with the packaged SmolLM2-135M-Instruct GGUF."""

from __future__ import annotations

import pytest
from servers.redial_corpus import redial_metadata_corpus

from rar.data.types import Turn
from rar.rankers import RankerConfig, RankRequest, build_ranker


def test_missing_gguf_names_the_key(data_dir, tmp_path):
    corpus = redial_metadata_corpus(data_dir, n=3)
    cfg = RankerConfig(backend="llamacpp", llamacpp={"model_path": str(tmp_path / "no.gguf")})
    with pytest.raises(FileNotFoundError, match=r"ranker.llamacpp.model_path: no GGUF file at"):
        build_ranker(cfg, corpus)


@pytest.mark.slow
def test_llamacpp_generates_scores_and_caches(data_dir, tmp_path):
    corpus = redial_metadata_corpus(data_dir, n=6)
    cfg = RankerConfig(
        backend="llamacpp",
        max_tokens=24,
        cache={"path": str(tmp_path / "c.sqlite")},
        prompt={"fields": ["title", "year", "genres"]},
        llamacpp={"mode": "generate", "n_ctx": 1024, "n_threads": 1},
    )
    ranker = build_ranker(cfg, corpus)
    req = RankRequest("s0", [Turn("seeker", "I want a scary horror movie.")], corpus.ids[:4])
    [res] = ranker.rank([req])
    assert res.error is None and res.raw_reply.strip()
    assert sorted(res.ranked_ids) == sorted(req.candidate_ids)  # parsed, then missing appended
    assert res.usage["prompt_tokens"] > 50 and 0 < res.usage["completion_tokens"] <= 24

    # log-likelihood mode: one score per title, every candidate matched, no free text
    ranker.config.llamacpp.mode = "loglik"
    [ll] = ranker.rank([RankRequest("s1", req.context, req.candidate_ids)])
    assert ll.error is None and ll.hallucinations == [] and ll.usage["n_matched"] == 4
    titles = ["The Silence of the Lambs (1991)", "Finding Nemo (2003)"]
    scores, n_prompt = ranker.score_titles("Recommend a movie.", titles)
    assert len(scores) == 2 and all(s < 0 for s in scores) and n_prompt > 5
    # each title is scored right after the prompt (the context is rewound between titles), and
    # the reused KV cache of the shared prefix gives the same numbers: order does not matter
    again, _ = ranker.score_titles("Recommend a movie.", titles[::-1])
    assert again[::-1] == pytest.approx(scores, abs=1e-3)

    # the generate reply again: from the cache (the key holds the mode), no model call
    ranker.config.llamacpp.mode = "generate"
    calls = ranker.stats().calls
    [cached] = ranker.rank([req])
    assert ranker.stats().calls == calls and cached.cached
    assert cached.raw_reply == res.raw_reply
    ranker.close()


@pytest.mark.slow
def test_prompt_past_the_context_window_fails_clearly(data_dir, tmp_path):
    corpus = redial_metadata_corpus(data_dir, n=30)
    cfg = RankerConfig(
        backend="llamacpp",
        cache={"enabled": False},
        llamacpp={"mode": "loglik", "n_ctx": 256, "n_threads": 1},
    )
    ranker = build_ranker(cfg, corpus)
    [res] = ranker.rank([RankRequest("s0", [Turn("seeker", "Anything.")], corpus.ids[:25])])
    assert res.error is not None and "ranker.llamacpp.n_ctx=256" in res.error
    assert ranker.stats().calls == 1  # not retried: it would fail again
    ranker.close()


@pytest.mark.slow
def test_llamacpp_loglik_matches_the_transformers_backend(data_dir, tmp_path):
    """The same GGUF through both local backends scores the same titles alike: llama.cpp runs
    the Q4_1 weights (activations quantised to 8 bits in its dot products), transformers the
    float32 dequantised copy, so scores agree within a small tolerance and so does the
    ranking they imply."""
    corpus = redial_metadata_corpus(data_dir, n=6)
    prompt = "I loved The Shining and want another scary horror movie. Recommend one."
    titles = [
        "The Silence of the Lambs (1991)",
        "Finding Nemo (2003)",
        "Halloween (1978)",
        "Notting Hill (1999)",
        "The Exorcist (1973)",
        "Toy Story (1995)",
    ]
    both = {}
    for backend, section in (
        ("llamacpp", {"mode": "loglik", "n_ctx": 1024, "n_threads": 1}),
        ("local", {"mode": "loglik", "num_threads": 1}),
    ):
        cfg = RankerConfig(
            backend=backend,
            cache={"path": str(tmp_path / f"{backend}.sqlite")},
            **{backend: section},
        )
        ranker = build_ranker(cfg, corpus)
        scores = ranker.score_titles(prompt, titles)
        both[backend] = scores[0] if backend == "llamacpp" else scores
        ranker.close()
    ll, tf = both["llamacpp"], both["local"]
    assert ll == pytest.approx(tf, abs=0.15), (ll, tf)
    order = lambda s: sorted(range(len(s)), key=lambda i: -s[i])  # noqa: E731
    assert order(ll)[:2] == order(tf)[:2]
    # rank correlation of the two orders (Spearman, no ties)
    r_ll = {i: r for r, i in enumerate(order(ll))}
    r_tf = {i: r for r, i in enumerate(order(tf))}
    n = len(titles)
    rho = 1 - 6 * sum((r_ll[i] - r_tf[i]) ** 2 for i in range(n)) / (n * (n * n - 1))
    assert rho >= 0.8, (ll, tf)


@pytest.mark.slow
def test_llamacpp_titles_in_one_batch_score_as_one_at_a_time(data_dir):
    """loglik decodes all titles together, each its own sequence on the prompt's KV cells (in
    groups of TITLE_SEQS). A title's score does not depend on the other titles in its batch (no
    attention across sequences), and it matches the title scored alone up to the numerical
    noise of another kernel path (llama.cpp picks its matmul kernels by batch size: a few
    hundredths of a nat, as far from transformers' float32 scores as the one-title path)."""
    from rar.rankers.llamacpp_ranker import TITLE_SEQS

    corpus = redial_metadata_corpus(data_dir, n=3)
    cfg = RankerConfig(
        backend="llamacpp",
        cache={"enabled": False},
        llamacpp={"mode": "loglik", "n_ctx": 1024, "n_threads": 1},
    )
    ranker = build_ranker(cfg, corpus)
    prompt = "I loved The Shining and want another scary horror movie. Recommend one."
    a, b, c = (f"The Night of the {w} ({1950 + i})" for i, w in enumerate("abc"))
    with_b, _ = ranker.score_titles(prompt, [a] + [b] * 15)
    with_c, _ = ranker.score_titles(prompt, [a] + [c] * 15)
    assert with_b[0] == pytest.approx(with_c[0], abs=1e-6)  # the neighbours do not leak in
    # every copy of b alike up to kernel noise (rows at a tile's edge take another kernel)
    assert max(with_b[1:]) - min(with_b[1:]) < 0.1
    titles = [f"The Night of the {w} ({1950 + i})" for i, w in enumerate("abcdefghijkl" * 3)]
    titles += ["Up (2009)", "Alien (1979)"]
    assert len(titles) > TITLE_SEQS  # two decodes
    together, _ = ranker.score_titles(prompt, titles)
    alone = [ranker.score_titles(prompt, [t])[0][0] for t in titles]
    assert together == pytest.approx(alone, abs=0.1)
    ranker.close()


@pytest.mark.slow
def test_llamacpp_weights_copy_is_converted_once_and_scores_like_the_file(
    data_dir, tmp_path, monkeypatch
):
    """`llamacpp.weights: f16` runs an F16 copy of the packaged Q4_1 file, converted once into
    $RAR_CACHE_DIR/gguf and reused; the scores stay close to the Q4_1 file's, and the
    cache key tells the two formats apart."""
    import llama_cpp

    from rar.rankers.gguf_weights import converted_path
    from rar.rankers.llamacpp_ranker import resolve_gguf

    monkeypatch.setenv("RAR_CACHE_DIR", str(tmp_path / "cache"))
    corpus = redial_metadata_corpus(data_dir, n=6)
    titles = [corpus.movie(i).display for i in range(6)]
    prompt = "I loved Heat and The Godfather. Recommend a movie."
    scores = {}
    for weights in ("as_is", "f16"):
        cfg = RankerConfig(
            backend="llamacpp",
            cache={"enabled": False},
            llamacpp={"mode": "loglik", "n_ctx": 1024, "n_threads": 1, "weights": weights},
        )
        ranker = build_ranker(cfg, corpus)
        scores[weights], _ = ranker.score_titles(prompt, titles)
        ranker.close()
    copy = converted_path(resolve_gguf(None), "f16")
    assert copy.is_file() and copy.parent == tmp_path / "cache" / "gguf"
    assert list(copy.parent.iterdir()) == [copy]  # no partial file left behind
    model = llama_cpp.Llama(model_path=str(copy), vocab_only=True, verbose=False)
    assert model.metadata["general.file_type"] == str(llama_cpp.LLAMA_FTYPE_MOSTLY_F16)
    model.close()
    # Q4_1 runs with activations rounded to 8 bits, F16 in floating point: a few hundredths of
    # a nat apart, up to about 0.1 (the bound of the transformers match test is 0.15)
    assert scores["f16"] == pytest.approx(scores["as_is"], abs=0.15)
    best = max(range(6), key=scores["as_is"].__getitem__)
    assert best == max(range(6), key=scores["f16"].__getitem__)
    assert scores["f16"] != scores["as_is"]  # really another file
    stamp = copy.stat().st_mtime_ns
    ranker = build_ranker(cfg, corpus)
    ranker.load()  # the cached copy, not converted again
    assert copy.stat().st_mtime_ns == stamp
    assert ranker.generation_params()["weights"] == "f16"
    ranker.close()


def test_unknown_weights_format_is_refused(data_dir):
    from rar.rankers.gguf_weights import gguf_with_weights
    from rar.rankers.llamacpp_ranker import resolve_gguf

    with pytest.raises(ValueError, match="ranker.llamacpp.weights"):
        gguf_with_weights(resolve_gguf(None), "q2_k")
