"""The in-process LM ranker with the packaged SmolLM2-135M-Instruct GGUF (slow: loads a model)."""

from __future__ import annotations

import pytest
from servers.redial_corpus import redial_metadata_corpus

from rar.data.types import Turn
from rar.rankers import RankerConfig, RankRequest, build_ranker
from rar.rankers.local_ranker import packaged_smollm2


def test_packaged_model_is_found():
    folder, name = packaged_smollm2()
    assert name.endswith(".gguf")


@pytest.mark.slow
def test_smollm2_generates_and_scores(data_dir, tmp_path):
    import torch

    torch.set_num_threads(1)
    corpus = redial_metadata_corpus(data_dir, n=4)
    cfg = RankerConfig(
        backend="local",
        max_tokens=24,
        cache={"path": str(tmp_path / "c.sqlite")},
        prompt={"fields": ["title", "year"]},
        local={"mode": "generate"},
    )
    ranker = build_ranker(cfg, corpus)
    req = RankRequest("s0", [Turn("seeker", "I want a romantic comedy.")], corpus.ids[:3])
    [res] = ranker.rank([req])
    assert res.error is None and res.raw_reply.strip()
    assert sorted(res.ranked_ids) == sorted(req.candidate_ids)  # parsed, then missing appended
    assert res.usage["completion_tokens"] > 0
    # log-likelihood mode on the already loaded model: a score per candidate, no free text
    titles = [corpus.movie(i).title for i in range(3)]
    scores = ranker.score_titles("Recommend a movie.", titles)
    assert len(scores) == 3 and all(s < 0 for s in scores)
    ranker.config.local.mode = "loglik"
    [ll] = ranker.rank([RankRequest("s1", req.context, req.candidate_ids)])
    assert ll.error is None and ll.hallucinations == [] and ll.usage["n_matched"] == 3
    # the generate request again: from the cache (the key holds the mode), no model call
    ranker.config.local.mode = "generate"
    calls = ranker.stats().calls
    [again] = ranker.rank([req])
    assert ranker.stats().calls == calls
    assert again.cached and again.raw_reply == res.raw_reply


@pytest.mark.slow
def test_loglik_titles_scored_together_match_each_title_run_alone(data_dir, tmp_path, monkeypatch):
    """loglik runs the titles together on the prompt's cache, in groups of TITLE_TOKENS, with a
    mask that hides the other titles: each score must equal a plain forward of prompt + title
    (no cache), and the cache must be back at the prompt for the next group."""
    import torch

    from rar.rankers import local_ranker

    torch.set_num_threads(1)
    corpus = redial_metadata_corpus(data_dir, n=8)
    cfg = RankerConfig(
        backend="local", cache={"enabled": False}, local={"mode": "loglik", "num_threads": 1}
    )
    ranker = build_ranker(cfg, corpus)
    ranker.load()
    titles = [corpus.movie(i).display for i in range(8)] + ["Alien", "The Lord of the Rings"]
    prompt = "I loved Heat and The Godfather. Recommend a movie."
    monkeypatch.setattr(local_ranker, "TITLE_TOKENS", 12)  # several groups, one title alone
    scores = ranker.score_titles(prompt, titles)
    model, tok = ranker._model, ranker._tokenizer
    ids = ranker._chat_ids(prompt, assistant_prefix="1.")[0].tolist()
    with torch.inference_mode():
        for title, score in zip(titles, scores, strict=True):
            cont = tok(" " + title, add_special_tokens=False).input_ids
            logits = model(torch.tensor([ids + cont])).logits[0, len(ids) - 1 : -1]
            lp = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(cont)[:, None])
            assert score == pytest.approx(lp.mean().item(), abs=1e-3), title
    ranker.close()
