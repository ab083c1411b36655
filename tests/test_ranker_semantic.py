"""The offline semantic ranker: weighting maths, and real usefulness on ReDial conversations."""

from __future__ import annotations

import numpy as np
import pytest

from rar.corpus import Corpus, Movie
from rar.data.types import Turn
from rar.rankers import RankerConfig, RankRequest, build_ranker
from rar.rankers.semantic_ranker import SemanticRanker


def vector_corpus(vectors: np.ndarray) -> Corpus:
    """Movies c0, c1, ... with the given vectors: enough for the scoring maths (no text encoder)."""
    return Corpus.from_movies([Movie(f"c{i}", f"Movie {i}") for i in range(len(vectors))], vectors)


def test_recent_and_seeker_turns_weigh_more():
    cfg = RankerConfig(
        backend="semantic",
        semantic={"recency_decay": 0.5, "seeker_weight": 1.0, "recommender_weight": 0.5},
    )
    ranker = SemanticRanker(cfg, vector_corpus(np.eye(3)))
    turns = [Turn("seeker", "a"), Turn("recommender", "b"), Turn("seeker", "c")]
    np.testing.assert_allclose(ranker.turn_weights(turns), [0.25, 0.25, 1.0])


def test_similarity_order_and_retriever_blend():
    vecs = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    conv = np.array([0, 1], dtype=np.float32)
    rows = np.array([0, 1, 2])
    pure = SemanticRanker(RankerConfig(backend="semantic"), vector_corpus(vecs))
    order, sims = pure.order(conv, rows)
    assert order.tolist() == [2, 1, 0] and sims.tolist() == pytest.approx([0, 0.8, 1])
    blended = SemanticRanker(
        RankerConfig(backend="semantic", semantic={"retriever_weight": 0.9}), vector_corpus(vecs)
    )
    assert blended.order(conv, rows)[0].tolist() == [0, 1, 2]  # mostly the retriever order
    assert pure.order(None, rows)[0].tolist() == [0, 1, 2]  # empty conversation: keep the order


@pytest.mark.needs_data
@pytest.mark.slow
def test_semantic_beats_random_order_on_real_redial(small_corpus, data_dir):
    """True movie + 24 random linked movies: reading the conversation must rank it higher."""
    import torch

    from rar.data.registry import load_conversation_samples
    from rar.evaluation.probe import build_probe
    from rar.metrics import paired_bootstrap, sample_metrics

    torch.set_num_threads(1)
    corpus = Corpus.load(small_corpus)
    samples = load_conversation_samples("redial", data_dir, "val")
    probe = build_probe(samples, corpus, "redial", k=25, seed=0, max_samples=80)
    assert len(probe.requests) == 80
    ranker = build_ranker(RankerConfig(backend="semantic"), corpus)
    results = ranker.rank(probe.requests)
    assert all(
        r.error is None and sorted(r.ranked_ids) == sorted(q.candidate_ids)
        for r, q in zip(results, probe.requests, strict=True)
    )
    sem = sample_metrics([r.ranked_ids for r in results], probe.targets, ks=(1, 10))
    rnd = sample_metrics([q.candidate_ids for q in probe.requests], probe.targets, ks=(1, 10))
    boot = paired_bootstrap(sem["ndcg@10"], rnd["ndcg@10"], n_resamples=2000, seed=0)
    assert sem["ndcg@10"].mean() > rnd["ndcg@10"].mean() + 0.05
    assert boot.ci_low > 0 and boot.p_value < 0.05
    assert ranker.stats().calls == 80 and ranker.stats().failures == 0


def test_unknown_candidate_is_recorded_not_raised():
    ranker = SemanticRanker(RankerConfig(backend="semantic"), vector_corpus(np.eye(2)))
    [res] = ranker.rank([RankRequest("x", [], ["zzz"])])
    assert res.error is not None and ranker.stats().failures == 1


def test_sync_rank_works_inside_a_running_event_loop():
    import asyncio

    ranker = SemanticRanker(RankerConfig(backend="semantic"), vector_corpus(np.eye(3)))

    async def inside() -> list:
        return ranker.rank([RankRequest("x", [], ["c2", "c0"])])  # e.g. called from a notebook

    [res] = asyncio.run(inside())
    assert res.ranked_ids == ["c2", "c0"] and res.error is None
