"""Ranking metrics, summaries and the paired bootstrap, checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rar.metrics import (
    BootstrapResult,
    Summary,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    paired_bootstrap,
    recall_at_k,
    sample_metrics,
    summarize,
    summarize_metrics,
)


def test_single_target_at_rank_3() -> None:
    ranked = ["a", "b", "t", "c"]
    # DCG = 1/log2(3+1) = 1/2; IDCG over min(1, k) = 1 position = 1/log2(2) = 1
    assert ndcg_at_k(ranked, ["t"], 10) == pytest.approx(0.5)
    assert mrr_at_k(ranked, ["t"], 10) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, ["t"], 10) == 1.0
    assert hit_rate_at_k(ranked, ["t"], 10) == 1.0
    # k = 2 cuts the target off
    for metric in (ndcg_at_k, mrr_at_k, recall_at_k, hit_rate_at_k):
        assert metric(ranked, ["t"], 2) == 0.0


def test_two_targets_idcg_over_min_targets_k() -> None:
    ranked = ["x", "t1", "y", "t2", "z"]
    # DCG@5 = 1/log2(3) + 1/log2(5); IDCG@5 = 1/log2(2) + 1/log2(3) (two targets)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k(ranked, {"t1", "t2"}, 5) == pytest.approx(dcg / idcg)
    assert recall_at_k(ranked, {"t1", "t2"}, 5) == 1.0
    assert recall_at_k(ranked, {"t1", "t2"}, 3) == 0.5
    assert mrr_at_k(ranked, {"t1", "t2"}, 5) == 0.5  # first target at rank 2
    # k = 1 < #targets: IDCG uses min(2, 1) = 1 position, DCG@1 = 0 (rank 1 is "x")
    assert ndcg_at_k(ranked, {"t1", "t2"}, 1) == 0.0
    # three targets, k = 2, ranking [t1, t2]: DCG = IDCG over min(3, 2) = 2 positions -> 1.0
    assert ndcg_at_k(["t1", "t2"], ["t1", "t2", "t3"], 2) == pytest.approx(1.0)
    assert recall_at_k(["t1", "t2"], ["t1", "t2", "t3"], 2) == pytest.approx(2 / 3)


def test_repeated_ids_count_once_and_short_rankings() -> None:
    # "t" twice: only rank 1 counts, so recall 1/2 (not 2/2) and DCG = 1
    assert recall_at_k(["t", "t", "x"], ["t", "u"], 3) == 0.5
    assert ndcg_at_k(["t", "t"], ["t", "u"], 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # a ranking shorter than k is a miss past its end
    assert recall_at_k(["x"], ["t"], 20) == 0.0
    assert ndcg_at_k([], ["t"], 5) == 0.0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="no targets"):
        recall_at_k(["a"], [], 5)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ndcg_at_k(["a"], ["a"], 0)
    with pytest.raises(ValueError, match="sample 1 has no targets"):
        sample_metrics([["a"], ["b"]], [["a"], []])
    with pytest.raises(ValueError, match="2 rankings but 1 target lists"):
        sample_metrics([["a"], ["b"]], [["a"]])


def test_sample_metrics_matches_scalar_functions() -> None:
    rng = np.random.default_rng(0)
    rankings = [list(rng.permutation(30)[: rng.integers(0, 25)]) for _ in range(200)]
    targets = [list(rng.choice(30, size=rng.integers(1, 4), replace=False)) for _ in range(200)]
    ks = (1, 5, 10, 20)
    out = sample_metrics(rankings, targets, ks=ks)
    assert set(out) == {f"{m}@{k}" for m in ("recall", "ndcg", "mrr", "hit") for k in ks}
    scalar = {"recall": recall_at_k, "ndcg": ndcg_at_k, "mrr": mrr_at_k, "hit": hit_rate_at_k}
    for name, fn in scalar.items():
        for k in ks:
            expected = [fn(r, t, k) for r, t in zip(rankings, targets, strict=True)]
            np.testing.assert_allclose(out[f"{name}@{k}"], expected)


def test_sample_metrics_hand_computed_and_array_input() -> None:
    rankings = np.array([[5, 6, 1], [1, 2, 3], [7, 8, 9]])
    targets = [[1], [2, 1], [4]]
    out = sample_metrics(rankings, targets, ks=(1, 3))
    # sample 0: target at rank 3; sample 1: both targets at ranks 1-2; sample 2: miss
    np.testing.assert_allclose(out["ndcg@3"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(out["mrr@3"], [1 / 3, 1.0, 0.0])
    np.testing.assert_allclose(out["recall@1"], [0.0, 0.5, 0.0])
    np.testing.assert_allclose(out["ndcg@1"], [0.0, 1.0, 0.0])  # IDCG@1 = 1 for sample 1
    np.testing.assert_allclose(out["hit@3"], [1.0, 1.0, 0.0])
    assert out["recall@3"].mean() == pytest.approx(2 / 3)
    empty = sample_metrics([], [], ks=(5,))
    assert empty["ndcg@5"].shape == (0,)


def test_summarize_hand_computed() -> None:
    # values 1,0,0,1: mean 0.5; sample variance = 4 * 0.25 / 3 = 1/3; se = sqrt(1/3)/2
    s = summarize([1, 0, 0, 1])
    se = math.sqrt(1 / 3) / 2
    assert s == Summary(0.5, pytest.approx(se), pytest.approx(0.5 - 1.96 * se, abs=1e-4),
                        pytest.approx(0.5 + 1.96 * se, abs=1e-4), 4)  # fmt: skip
    assert s.as_dict()["n"] == 4
    one = summarize([0.3])
    assert one.mean == 0.3 and math.isnan(one.se)
    with pytest.raises(ValueError, match="empty"):
        summarize([])
    with pytest.raises(ValueError, match="non-finite values \\(first at position 1\\)"):
        summarize([0.1, float("nan")])
    per = summarize_metrics({"ndcg@10": np.array([0.0, 1.0])})
    assert per["ndcg@10"].mean == 0.5


def test_paired_bootstrap_clear_difference_and_no_difference() -> None:
    rng = np.random.default_rng(1)
    b = rng.random(400)
    a = b + 0.05 + rng.normal(0, 0.02, 400)  # a is better on nearly every sample
    result = paired_bootstrap(a, b, n_resamples=2000, seed=0)
    assert isinstance(result, BootstrapResult)
    assert result.diff == pytest.approx(float((a - b).mean()))
    assert result.ci_low < result.diff < result.ci_high
    assert result.ci_low > 0
    # no resample mean is <= 0, so p = 2 * (0 + 1) / (2000 + 1)
    assert result.p_value == pytest.approx(2 / 2001)
    # symmetric: swapping the systems flips the sign, keeps the p-value
    swapped = paired_bootstrap(b, a, n_resamples=2000, seed=0)
    assert swapped.diff == pytest.approx(-result.diff)
    assert swapped.p_value == pytest.approx(result.p_value)
    # identical systems: diff 0, p = 1
    same = paired_bootstrap(b, b, n_resamples=100)
    assert (same.diff, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    # pure noise around 0: not significant
    noise = paired_bootstrap(rng.normal(0, 1, 300), rng.normal(0, 1, 300), n_resamples=2000)
    assert noise.ci_low < 0 < noise.ci_high
    assert noise.p_value > 0.05


def test_paired_bootstrap_deterministic_and_checks_lengths() -> None:
    a, b = [1.0, 0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]
    first = paired_bootstrap(a, b, n_resamples=500, seed=3)
    assert first == paired_bootstrap(a, b, n_resamples=500, seed=3)
    assert first.diff == pytest.approx(0.4)  # (1 + 0 + 0 + 1 + 0) / 5
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="n_resamples"):
        paired_bootstrap(a, b, n_resamples=0)


def test_paired_bootstrap_sparse_ties_count_half():
    # a wins on 3 of 400 samples, every other sample ties: a resample draws none of the 3
    # wins with probability (1 - 3/400)^400 = e^-3 (about 0.049), giving a mean of exactly 0.
    # Those ties count half on each side, so p = 2 * 0.5 * 0.049; counting them all as "far"
    # would double it to about 0.1.
    a = np.zeros(400)
    a[:3] = 1.0
    b = np.zeros(400)
    result = paired_bootstrap(a, b, n_resamples=4000, seed=1)
    assert 0.03 < result.p_value < 0.07
    # a symmetric case stays insignificant
    c = np.zeros(400)
    c[:6] = 1.0
    d = np.zeros(400)
    d[6:12] = 1.0
    assert paired_bootstrap(c, d, n_resamples=4000, seed=1).p_value > 0.5
