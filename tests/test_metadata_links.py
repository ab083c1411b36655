"""Metadata links: movies that share a person or a title word with the history, as fused parts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from test_text_tower import FakeEmbedder, N, _convo, _model, _vectors

from rar.corpus import Corpus
from rar.corpus.movie import Movie
from rar.data.linking import LinkedSample
from rar.data.types import Sample
from rar.retrievers import (
    RetrievalBatch,
    RetrieverConfig,
    build_retriever,
    load_pretrained_run,
    load_retriever,
    save_retriever,
)
from rar.retrievers.fusion import FUSION_FILE, fit_linked
from rar.retrievers.metadata_links import (
    LINK_PARTS,
    MetadataLinks,
    link_weights,
    people_keys,
    title_keys,
)
from rar.rl.policy import log_prob, sample_ranked_sets


def _corpus() -> Corpus:
    """N movies; movies 2i and 2i+1 share a director; a title word links every third movie."""
    movies = [
        Movie(
            corpus_id=f"m{j}",
            title=f"{('Alpha', 'Bravo', 'Charlie')[j % 3]} Story{j}",
            directors=(f"Director {j // 2}",),
            cast=(f"Actor {j}",),
        )
        for j in range(N)
    ]
    return Corpus.from_movies(movies, _vectors().numpy())


def _cold_odd_movies(model):
    """As SFT leaves a policy whose training targets were the even movies: the odd (cold)
    movies' bias far below every even movie's."""
    with torch.no_grad():
        bias = model.items.bias
        bias[1::2] = bias[0::2].min() - 5.0 / model.items.bias_scale
    return model


def test_keys_are_directors_billed_cast_and_title_words():
    cast = [f"Actor {k}" for k in range(8)]
    assert people_keys(["Ridley Scott "], cast) == {"ridley scott"} | {
        f"actor {k}" for k in range(5)
    }
    assert title_keys("The Lord of the Rings: Part II") == {"lord", "rings"}
    assert title_keys("Up") == set()


def test_link_weights_sum_the_idf_of_shared_keys_without_self_links():
    keys = [{"a", "b"}, {"a", "b"}, {"a"}, {"solo"}, set()]
    src, dst, weight = link_weights(keys, max_df=3)
    pairs = {(int(s), int(d)): float(w) for s, d, w in zip(src, dst, weight, strict=True)}
    idf_a, idf_b = math.log(5 / 3), math.log(5 / 2)
    assert pairs[(0, 1)] == pytest.approx(idf_a + idf_b) == pairs[(1, 0)]
    assert pairs[(0, 2)] == pytest.approx(idf_a)
    assert all(s != d for s, d in pairs) and not any(3 in p or 4 in p for p in pairs)
    src, _, _ = link_weights(keys, max_df=2)  # 'a' is held by 3 movies: too common
    assert len(src) == 2


def test_a_cold_movie_is_retrieved_through_a_shared_director():
    """The odd movies were never targets (bias far down); the fit on rows 'history 2i ->
    target 2i+1' finds the people links, and the cold movie enters the top 5."""
    vectors = _vectors()
    model = _cold_odd_movies(_model("fused", vectors, FakeEmbedder(vectors))).eval()
    batch = RetrievalBatch(torch.tensor([[5]]), [_convo("hello")])  # token 5 = movie 4
    with torch.no_grad():
        assert 5 not in model.scores(batch).topk(5).indices[0].tolist()
    corpus = _corpus()
    linked = [
        LinkedSample(
            Sample("t", f"d{j}", 0, _convo(f"hello {j}"), [], []), [f"m{j}"], [f"m{j + 1}"]
        )
        for j in range(0, N, 2)
    ]
    unlinked = fit_linked(model, linked, corpus, links=False)  # the control: no links built
    assert not model.links.is_built and not set(unlinked.weights) & set(LINK_PARTS)
    fit = fit_linked(model, linked, corpus)  # builds the links, then fits them
    assert set(model.score_parts(batch)) >= set(LINK_PARTS)
    assert fit.val_ndcg10_before < 0.1 and fit.val_ndcg10_after > 0.9
    assert fit.weights["people"] > fit.weights["title"]
    with torch.no_grad():
        assert 5 in model.scores(batch).topk(5).indices[0].tolist()


def test_links_keep_the_policy_a_differentiable_plackett_luce_over_the_corpus():
    vectors = _vectors()
    model = _model("fused", vectors, FakeEmbedder(vectors))
    model.links.build(_corpus())
    batch = RetrievalBatch(torch.tensor([[1, 3]]), [_convo("movie 9 please")])
    sets = sample_ranked_sets(model.logits(batch).detach(), k=5, g=3)
    log_prob(model.logits(batch), sets).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert not any(p.requires_grad for p in model.links.parameters())  # fixed buffers


def test_links_survive_a_checkpoint_and_old_checkpoints_load_without_them(tmp_path):
    model = build_retriever(RetrieverConfig(d_model=8, n_layers=1, cooc_prior=True), _vectors())
    model.links.build(_corpus())
    path = save_retriever(model, tmp_path / "m.pt")
    loaded = load_retriever(path, _vectors())
    assert loaded.links.is_built
    assert torch.equal(loaded.links.people.weight, model.links.people.weight)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"] = {
        k: v for k, v in payload["state_dict"].items() if not k.startswith("links.")
    }
    payload["state_dict"]["fusion.weights"] = torch.ones(4)  # written with four parts
    torch.save(payload, tmp_path / "old.pt")
    old = load_retriever(tmp_path / "old.pt", _vectors())
    assert not old.links.is_built and old.fusion.as_dict()["people"] == 1.0


def test_a_run_builds_its_links_only_when_its_fusion_file_weighs_them(tmp_path):
    corpus = _corpus()
    model = build_retriever(RetrieverConfig(d_model=8, n_layers=1, cooc_prior=True), _vectors())
    run = tmp_path / "run"
    save_retriever(model, run / "checkpoints" / "best.pt")
    weights = {"item": 1.0, "bias": 1.0, "prior": 2.0}
    (run / FUSION_FILE).write_text(json.dumps({"weights": weights}))  # a fit without links
    assert not load_pretrained_run(run, corpus).links.is_built
    (run / FUSION_FILE).write_text(json.dumps({"weights": weights | {"people": 0.5}}))
    loaded = load_pretrained_run(run, corpus)
    assert loaded.links.is_built and loaded.fusion.as_dict()["people"] == 0.5
    history = torch.tensor([[1]])  # movie 0: its director's other movie is movie 1
    people = loaded.links.scores(history)["people"][0]
    assert int(people.argmax()) == 1 and float(people[2:].abs().sum()) == 0.0
    assert not load_pretrained_run(run, corpus, fusion=False).links.is_built


def test_links_need_the_retrievers_own_corpus():
    with pytest.raises(ValueError, match="corpus rows"):
        MetadataLinks(N + 1).build(_corpus())
    assert np.isfinite(MetadataLinks(N).build(_corpus()).people.weight.numpy()).all()
