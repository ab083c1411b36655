"""The trained offline ranker: fitted on a tiny real ReDial training split with real MiniLM
vectors; deterministic, train-only, saved and loaded intact, selectable by config."""

from __future__ import annotations

import numpy as np
import pytest

from rar.data.linking import link_samples
from rar.evaluation.ranker_fit import FitSettings, fit_trained_ranker, select_retriever_weight
from rar.metrics import ndcg_at_k
from rar.rankers import RankerConfig, RankRequest, build_ranker
from rar.rankers.trained_ranker import TrainedModel, TrainedRanker

SETTINGS = FitSettings(l2=(1.0, 10.0))


@pytest.fixture(scope="module")
def corpus(small_corpus):
    from rar.corpus import Corpus

    return Corpus.load(small_corpus)


@pytest.fixture(scope="module")
def splits(data_dir, corpus):
    from rar.data.registry import load_conversation_samples

    def linked(split: str, n: int):
        samples = load_conversation_samples("redial", data_dir, split)
        kept, _ = link_samples(samples, corpus)
        return [x.sample for x in kept[:n]]

    return {"train": linked("train", 80), "val": linked("val", 30), "test": linked("test", 10)}


@pytest.fixture(scope="module")
def model(splits, corpus) -> TrainedModel:
    return fit_trained_ranker(splits["train"], corpus, SETTINGS, val_samples=splits["val"])


def _requests(samples, corpus, n=25):
    rng = np.random.default_rng(0)
    ids = list(corpus.ids)
    out = []
    for s in samples:
        cands = [ids[i] for i in rng.choice(len(ids), size=n, replace=False)]
        out.append(RankRequest(s.sample_id, s.context, cands))
    return out


def test_fit_is_deterministic_and_chosen_on_validation(model, splits, corpus):
    again = fit_trained_ranker(splits["train"], corpus, SETTINGS, val_samples=splits["val"])
    np.testing.assert_array_equal(model.W, again.W)
    assert model.scale == again.scale and model.pop_weight == again.pop_weight
    assert not np.allclose(model.W, np.eye(model.W.shape[0]))  # W moved from the identity
    trials = model.metrics["trials"]
    assert [t["l2"] for t in trials] == [1.0, 10.0] and all("val_nll" in t for t in trials)
    chosen = min(trials, key=lambda t: t["val_nll"])  # validation picks, training fits
    assert model.meta["l2"] == chosen["l2"] and model.scale == pytest.approx(chosen["scale"])
    reqs = _requests(splits["test"], corpus)
    a = TrainedRanker(RankerConfig(backend="trained"), corpus, model=model).rank_sync(reqs)
    b = TrainedRanker(RankerConfig(backend="trained"), corpus, model=again).rank_sync(reqs)
    assert [r.ranked_ids for r in a] == [r.ranked_ids for r in b]
    assert all(
        sorted(r.ranked_ids) == sorted(q.candidate_ids) for r, q in zip(a, reqs, strict=True)
    )


@pytest.mark.parametrize("split", ["val", "test"])
def test_fit_refuses_held_out_samples(splits, corpus, split):
    with pytest.raises(ValueError, match=f"belongs to the '{split}' split"):
        fit_trained_ranker(splits["train"][:5] + splits[split][:1], corpus, SETTINGS)


def test_validation_only_selects(splits, corpus, model):
    with pytest.raises(ValueError, match="'train' split"):  # val selection refuses train rows
        fit_trained_ranker(splits["train"], corpus, SETTINGS, val_samples=splits["train"][:3])
    linked, _ = link_samples(splits["val"], corpus)
    cands = [r.candidate_ids for r in _requests([x.sample for x in linked], corpus)]
    cands = [x.target_ids[:1] + c[:24] for x, c in zip(linked, cands, strict=True)]
    best, table = select_retriever_weight(model, corpus, linked, cands, weights=(0.0, 1.0, 50.0))
    given = np.mean([ndcg_at_k(c, x.target_ids, 10) for c, x in zip(cands, linked, strict=True)])
    assert table[50.0] == pytest.approx(given)  # a huge weight keeps the given order
    assert best == 50.0 and table[50.0] > table[0.0]  # target first in it: the order wins


def test_artefact_round_trips_and_backend_is_selectable(model, splits, corpus, tmp_path):
    out = model.save(tmp_path / "ranker")
    assert {p.name for p in out.iterdir()} == {"weights.npz", "config.json", "metrics.json"}
    loaded = TrainedModel.load(out)
    np.testing.assert_array_equal(loaded.W, model.W)
    assert loaded.popularity == pytest.approx(model.popularity)
    assert loaded.meta["semantic"] == model.meta["semantic"]
    ranker = build_ranker(RankerConfig(backend="trained", trained={"path": str(out)}), corpus)
    assert isinstance(ranker, TrainedRanker)
    reqs = _requests(splits["test"], corpus)
    direct = TrainedRanker(RankerConfig(backend="trained"), corpus, model=model).rank(reqs)
    assert [r.ranked_ids for r in ranker.rank(reqs)] == [r.ranked_ids for r in direct]
    with pytest.raises(ValueError, match="ranker.trained.path"):
        build_ranker(RankerConfig(backend="trained"), corpus)
    with pytest.raises(FileNotFoundError, match="weights.npz"):
        build_ranker(RankerConfig(backend="trained", trained={"path": str(tmp_path)}), corpus)


def test_cooc_term_is_fitted_on_training_dialogues_only(model, splits, corpus):
    train, _ = link_samples(splits["train"], corpus)
    seen = {c for x in train for c in (*x.history_ids, *x.target_ids)}
    assert model.cooc is not None and set(model.cooc_ids) == seen  # nothing from val/test
    assert model.cooc.shape == (len(seen), len(seen))
    np.testing.assert_array_equal(np.diag(model.cooc), 0.0)  # EASE: no self-similarity
    # scaled so the scores it gives the training dialogues have unit spread
    col = {c: i for i, c in enumerate(model.cooc_ids)}
    per_dialogue: dict[str, set[int]] = {}
    for x in train:
        per_dialogue.setdefault(x.sample.dialogue_id, set()).update(
            col[c] for c in (*x.history_ids, *x.target_ids)
        )
    X = np.zeros((len(per_dialogue), len(seen)))
    for i, rows in enumerate(per_dialogue.values()):
        X[i, sorted(rows)] = 1.0
    assert float((X @ model.cooc).std()) == pytest.approx(1.0, rel=1e-4)


def test_cooc_term_ranks_what_follows_the_mentioned_movies_first(model, splits, corpus):
    train, _ = link_samples(splits["train"], corpus)
    item = next(x for x in train if x.history_ids)
    col = {c: i for i, c in enumerate(model.cooc_ids)}
    h = item.history_ids[-1]
    partner = model.cooc_ids[int(np.argmax(model.cooc[col[h]]))]
    others = [c for c in corpus.ids if c not in (h, partner)][:24]
    request = RankRequest("x:1:1", [], [*others, partner], history_ids=[h])
    ranker = TrainedRanker(
        RankerConfig(backend="trained", trained={"cooc_weight": 1e3, "retriever_weight": 0.0}),
        corpus,
        model=model,
    )
    assert ranker.rank_sync([request])[0].ranked_ids[0] == partner
    ranker.cooc_weight = 0.0  # without the term the partner is just one more candidate
    no_cooc = ranker.rank_sync([request])[0].ranked_ids
    scores = model.scores(None, np.zeros((25, 1)), request.candidate_ids, 0.0, [h], 0.0)
    assert no_cooc == [request.candidate_ids[i] for i in np.argsort(-scores, kind="stable")]


def test_history_is_linked_from_the_context_when_the_caller_gives_none(model, splits, corpus):
    linked, _ = link_samples(splits["val"], corpus)
    linked = [x for x in linked if x.history_ids]
    assert linked
    ranker = TrainedRanker(
        RankerConfig(backend="trained", trained={"cooc_weight": 2.0}), corpus, model=model
    )
    cands = [r.candidate_ids for r in _requests([x.sample for x in linked], corpus)]
    given = [
        RankRequest(x.sample.sample_id, x.sample.context, c, list(x.history_ids))
        for x, c in zip(linked, cands, strict=True)
    ]
    bare = [RankRequest(r.sample_id, r.context, r.candidate_ids) for r in given]
    # the same movies (the co-occurrence sum does not depend on their order)
    assert [set(ranker.history_of(r)) for r in bare] == [set(x.history_ids) for x in linked]
    assert [r.ranked_ids for r in ranker.rank_sync(bare)] == [
        r.ranked_ids for r in ranker.rank_sync(given)
    ]


def test_cooc_weight_is_chosen_on_validation_and_saved(splits, corpus, tmp_path):
    model = fit_trained_ranker(splits["train"], corpus, SETTINGS, val_samples=splits["val"])
    linked, _ = link_samples(splits["val"], corpus)
    cands = [r.candidate_ids for r in _requests([x.sample for x in linked], corpus)]
    cands = [x.target_ids[:1] + c[:24] for x, c in zip(linked, cands, strict=True)]
    best, table = select_retriever_weight(model, corpus, linked, cands, weights=(0.0, 1.0))
    grid = {
        tuple(map(float, k.split("/"))): v for k, v in model.metrics["val_ndcg@10_grid"].items()
    }
    assert {a for _, a in grid} == {0.0, 0.25, 0.5, 1.0, 2.0, 4.0}
    top = max(grid.values())
    assert grid[(best, model.cooc_weight)] == top and table[best] == top
    loaded = TrainedModel.load(model.save(tmp_path / "r"))
    assert loaded.cooc_weight == model.cooc_weight and loaded.cooc_ids == model.cooc_ids
    np.testing.assert_array_equal(loaded.cooc, model.cooc)
    reqs = [
        RankRequest(x.sample.sample_id, x.sample.context, c, list(x.history_ids))
        for x, c in zip(linked, cands, strict=True)
    ]
    a = TrainedRanker(RankerConfig(backend="trained"), corpus, model=model).rank_sync(reqs)
    b = TrainedRanker(RankerConfig(backend="trained"), corpus, model=loaded).rank_sync(reqs)
    assert [r.ranked_ids for r in a] == [r.ranked_ids for r in b]
