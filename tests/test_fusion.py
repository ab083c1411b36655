"""Fusion weights: the parts of a fused retriever's score re-weighted on validation (stacking)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_text_tower import FakeEmbedder, _convo, _model, _vectors

from rar.errors import InputError
from rar.retrievers import RetrievalBatch, RetrieverConfig, build_retriever, save_retriever
from rar.retrievers.fusion import FUSION_FILE, PARTS, fit_fusion, fit_run_fusion, is_fused
from rar.retrievers.metadata_links import LINK_PARTS


def _fused_with_prior():
    """A fused retriever whose co-occurrence prior knows the answer: each movie's successor."""
    from rar.retrievers import with_cooc_prior

    vectors = _vectors()
    model = _model("fused", vectors, FakeEmbedder(vectors))
    model.config = model.config.model_copy(update={"cooc_l2": 1.0})
    dialogues = [np.array([i, i + 1]) for i in range(0, 58, 2)] * 3
    return with_cooc_prior(model, dialogues, vectors).eval()


def _rows(n: int = 29):
    """Validation rows: history [2i], target 2i + 1 (the prior's neighbour), idle chat."""
    histories = [[2 * i] for i in range(n)]
    contexts = [_convo(f"hello {i}") for i in range(n)]
    targets = [[2 * i + 1] for i in range(n)]
    return histories, contexts, targets


def test_unfitted_weights_give_the_parts_sum_exactly():
    model = _fused_with_prior()
    batch = RetrievalBatch(torch.tensor([[3, 5]]), [_convo("movie 9 please")])
    with torch.no_grad():
        parts = model.score_parts(batch)
        assert set(parts) == set(PARTS) - set(LINK_PARTS)  # links: built by a fit only
        by_hand = parts["item"] + parts["bias"] + parts["text"] + parts["prior"]
        assert torch.equal(model.logits(batch), by_hand)
        model.fusion.set({"prior": 3.0, "text": 0.5})
        weighted = parts["item"] + parts["bias"] + 0.5 * parts["text"] + 3.0 * parts["prior"]
        assert torch.allclose(model.logits(batch), weighted)


def test_fitting_raises_validation_ndcg_and_moves_towards_the_informative_part():
    model = _fused_with_prior()
    model.cooc.scale_param.data.fill_(0.01)  # as if trained in-sample: the prior under-weighted
    fit = fit_fusion(model, *_rows())
    assert fit.val_ndcg10_before < 0.2 and fit.val_ndcg10_after == pytest.approx(1.0)
    w = fit.weights
    assert w["prior"] / w["item"] > 1.0 and w["prior"] / w["text"] > 1.0
    assert set(w) == set(PARTS) - set(LINK_PARTS)  # the parts this retriever has
    assert {k: model.fusion.as_dict()[k] for k in w} == w  # set on the model
    assert fit.steps and fit.temperature > 0
    again = _fused_with_prior()
    again.cooc.scale_param.data.fill_(0.01)
    assert fit_fusion(again, *_rows()).weights == w  # deterministic


def test_weights_survive_a_checkpoint_and_old_checkpoints_load_as_ones(tmp_path):
    from rar.retrievers import load_retriever

    model = _fused_with_prior()
    model.fusion.set({"prior": 4.0})
    path = save_retriever(model, tmp_path / "m.pt")
    assert load_retriever(path, _vectors()).fusion.as_dict()["prior"] == 4.0
    payload = torch.load(path, weights_only=True)
    del payload["state_dict"]["fusion.weights"]  # written before fusion weights existed
    torch.save(payload, tmp_path / "old.pt")
    assert load_retriever(tmp_path / "old.pt", _vectors()).fusion.as_dict() == dict.fromkeys(
        PARTS, 1.0
    )


def test_bad_weights_and_unknown_parts_are_refused():
    model = _fused_with_prior()
    with pytest.raises(InputError, match="unknown fusion parts"):
        model.fusion.set({"popularity": 2.0})
    with pytest.raises(InputError, match="finite and positive"):
        model.fusion.set({"prior": -1.0})
    with pytest.raises(InputError, match="validation rows"):
        fit_fusion(model, [], [], [])


def test_only_retrievers_that_combine_sources_are_fused():
    vectors = _vectors()
    assert is_fused(_model("fused", vectors, FakeEmbedder(vectors)))
    assert not is_fused(_model("text", vectors, FakeEmbedder(vectors)))
    assert not is_fused(_model("item", vectors, FakeEmbedder(vectors)))
    assert is_fused(_fused_with_prior())
    item_prior = build_retriever(RetrieverConfig(d_model=8, n_layers=1, cooc_prior=True), vectors)
    assert is_fused(item_prior)


@pytest.mark.slow
def test_a_run_is_fitted_on_its_validation_split_and_loads_with_its_weights(
    tmp_path, pretrained_run, small_corpus, data_dir
):
    """Real corpus, real data, real linking: the fused run's fusion.json is written from the
    dataset's validation split and applied by load_pretrained_run (and not with fusion=False)."""
    from rar.corpus import Corpus
    from rar.data.linking import link_samples
    from rar.data.registry import load_conversation_samples
    from rar.retrievers import load_pretrained_run, with_cooc_prior, with_towers

    corpus = Corpus.load(small_corpus)
    vectors = corpus.vectors()
    item = load_pretrained_run(pretrained_run, corpus)
    assert fit_run_fusion(pretrained_run, corpus, "redial", data_dir) is None  # item only
    assert not (pretrained_run / FUSION_FILE).exists()
    train, _ = link_samples(load_conversation_samples("redial", data_dir, "train"), corpus)
    dialogues = [
        np.array([corpus.index_of(c) for c in s.history_ids + s.target_ids]) for s in train
    ]
    fused = with_cooc_prior(with_towers(item, "fused", vectors), dialogues, vectors)
    run = tmp_path / "fused-run"
    save_retriever(fused, run / "checkpoints" / "best.pt")
    fit = fit_run_fusion(run, corpus, "redial", data_dir)
    assert fit is not None and fit.val_rows > 0
    assert fit.val_ndcg10_after >= fit.val_ndcg10_before
    record = json.loads((run / FUSION_FILE).read_text())
    assert record["split"] == "val" and record["weights"] == fit.weights
    assert set(LINK_PARTS) <= set(fit.weights)  # the metadata links were built and weighed
    loaded = load_pretrained_run(run, corpus)
    assert loaded.fusion.as_dict() == fit.weights and loaded.links.is_built
    assert load_pretrained_run(run, corpus, fusion=False).fusion.as_dict() == dict.fromkeys(
        PARTS, 1.0
    )
    for damaged in ("{not json", '{"weights": {"prior": -2.0}}', '{"weights": {"pop": 1.0}}'):
        (run / FUSION_FILE).write_text(damaged)
        with pytest.raises(InputError, match=FUSION_FILE):
            load_pretrained_run(run, corpus)


@pytest.mark.slow
def test_sft_of_a_fused_policy_fits_its_weights_and_says_so(
    tmp_path, pretrained_run, small_corpus, data_dir
):
    """`rar train`'s SFT of a fused policy ends by fitting the weights on validation: fusion.json
    in the run, the fitted figures in metrics.json, and loading the run applies them;
    `fit_fusion=false` writes none."""
    from rar.config import load_config
    from rar.corpus import Corpus
    from rar.retrievers import load_pretrained_run
    from rar.rl.train_config import TrainConfig
    from rar.rl.trainer import train

    def run(name: str, *extra: str) -> Path:
        overrides = [
            f"name={name}", f"pretrained_run={pretrained_run}", f"corpus={small_corpus}",
            f"data.data_dir={data_dir}", "data.dataset=redial", "data.train_size=200",
            "data.val_size=60", "data.evaluate_test=false", "towers=fused", "cooc_prior=true",
            "rl.method=sft", "rl.k=10", "optim.batch_size=16", "max_steps=6", "val_every=3",
            "select_metric=retriever/ndcg@10", "ranker.backend=semantic", "threads=1",
            f"tracking.runs_dir={tmp_path}", *extra,
        ]  # fmt: skip
        train(load_config(TrainConfig, None, overrides), progress=False)
        return tmp_path / name

    fitted = run("fitted")
    record = json.loads((fitted / FUSION_FILE).read_text())
    metrics = json.loads((fitted / "metrics.json").read_text())
    assert record["val_rows"] > 0 and record["split"] == "val"
    assert metrics["fusion.val_ndcg10_before"] == pytest.approx(record["val_ndcg10_before"])
    assert metrics["val/retriever/ndcg@10"] == pytest.approx(record["val_ndcg10_after"], abs=1e-6)
    corpus = Corpus.load(small_corpus)
    assert load_pretrained_run(fitted, corpus).fusion.as_dict() == record["weights"]
    assert not (run("unfitted", "fit_fusion=false") / FUSION_FILE).exists()
