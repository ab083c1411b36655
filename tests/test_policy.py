"""Plackett-Luce policy: exact probabilities, exact samplers (chi-square), stable gradients."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy.stats import chi2

from rar.rl.policy import (
    gumbel_top_k,
    log1mexp,
    log_prob,
    sample_ranked_sets,
    sequential_sample,
    top1_kl,
    top_down_sample,
)

K = 3


def _scores() -> torch.Tensor:
    # N = 6 with item 2 masked (history): 5 live items, k = 3 -> 60 ordered subsets
    s = torch.tensor([[1.3, -0.4, 0.0, 0.9, 2.1, -1.2]], dtype=torch.float64)
    s[0, 2] = float("-inf")
    return s


def _perms() -> list[tuple[int, ...]]:
    return list(itertools.permutations([0, 1, 3, 4, 5], K))


def _brute(s: torch.Tensor, perm: tuple[int, ...]) -> float:
    w = [math.exp(float(x)) if math.isfinite(float(x)) else 0.0 for x in s[0]]
    total, p = sum(w), 1.0
    for i in perm:
        p *= w[i] / total
        total -= w[i]
    return p


def test_probabilities_sum_to_one_and_match_brute_force():
    s, perms = _scores(), _perms()
    lp = log_prob(s, torch.tensor(perms)[None])
    assert lp.shape == (1, len(perms))
    assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-12)
    for i, perm in enumerate(perms):
        assert float(lp[0, i].exp()) == pytest.approx(_brute(s, perm), rel=1e-10)


def test_masked_item_has_zero_probability():
    lp = log_prob(_scores(), torch.tensor([[[2, 0, 1]]]))
    assert float(lp) == float("-inf")


def test_stable_when_chosen_items_hold_almost_all_mass():
    # chosen items carry all but ~1e-26 of the mass: naive subtraction gives log(0) or garbage
    s = torch.tensor([[60.0, 45.0, 30.0, -5.0, -6.0, -7.0]], dtype=torch.float64)
    ranked = torch.tensor([[[0, 1, 2], [2, 1, 0], [3, 4, 5]]])
    rest = math.log(sum(math.exp(x) for x in (-5.0, -6.0, -7.0)))
    # hand-computed: log P(0,1,2) = -[log(1+e^-15+e^-30+e^(rest-60)) + log(1+e^-15+e^(rest-45)) + log(1+e^(rest-30))]
    exp0 = -(
        math.log1p(math.exp(-15) + math.exp(-30) + math.exp(rest - 60))
        + math.log1p(math.exp(-15) + math.exp(rest - 45))
        + math.log1p(math.exp(rest - 30))
    )
    for dtype in (torch.float64, torch.float32):
        lp = log_prob(s.to(dtype), ranked)
        assert torch.isfinite(lp).all()
        assert float(lp[0, 0]) == pytest.approx(exp0, rel=1e-4, abs=1e-9)
        assert float(lp[0, 1]) == pytest.approx(-45.0 + exp0, rel=1e-6)


def test_gradcheck_float64():
    torch.manual_seed(0)
    x = torch.randn(2, 7, dtype=torch.float64, requires_grad=True)
    ranked = torch.tensor([[[0, 1, 2], [3, 4, 5]], [[6, 5, 4], [1, 0, 2]]])
    assert torch.autograd.gradcheck(lambda z: log_prob(z, ranked), (x,))
    peaked = torch.tensor([[30.0, 20.0, 10.0, 0.0, -1.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: log_prob(z, torch.tensor([[[0, 1, 2]]])), (peaked,))


def test_log1mexp_accuracy():
    x = torch.tensor([-1e-20, -1e-5, -0.5, -1.0, -50.0], dtype=torch.float64)
    expected = [
        math.log(1e-20),
        math.log(-math.expm1(-1e-5)),
        math.log(-math.expm1(-0.5)),
        math.log(-math.expm1(-1.0)),
        math.log1p(-math.exp(-50.0)),
    ]
    for got, want in zip(log1mexp(x).tolist(), expected, strict=True):
        assert got == pytest.approx(want, rel=1e-12)


def _chi_square(sets: torch.Tensor, s: torch.Tensor) -> tuple[float, int]:
    perms = _perms()
    index = {p: i for i, p in enumerate(perms)}
    counts = torch.zeros(len(perms), dtype=torch.float64)
    for row in sets.tolist():
        counts[index[tuple(row)]] += 1
    expected = log_prob(s, torch.tensor(perms)[None])[0].exp() * len(sets)
    return float(((counts - expected) ** 2 / expected).sum()), len(perms) - 1


@pytest.mark.parametrize(
    "sampler",
    [
        lambda s, n, gen: gumbel_top_k(s, K, n, generator=gen),
        lambda s, n, gen: sequential_sample(s, K, n, generator=gen),
        lambda s, n, gen: top_down_sample(s, K, n, generator=gen, head_size=2, block=2),
        lambda s, n, gen: top_down_sample(s, K, n, generator=gen, head_size=0, block=4),
        lambda s, n, gen: top_down_sample(s, K, n, generator=gen, head_size=4, block=2),
        lambda s, n, gen: top_down_sample(s, K, n, generator=gen, head_size=3, block=2),
        lambda s, n, gen: top_down_sample(
            s, K, n, generator=gen, head_size=3, block=2, max_bound_candidates=0
        ),
    ],
    ids=[
        "gumbel",
        "sequential",
        "top_down_head2",
        "top_down_tail_only",
        "top_down_bound_head4",
        "top_down_bound_head3",
        "top_down_lse_head3",
    ],
)
def test_sampled_frequencies_match_plackett_luce(sampler):
    s = _scores()
    gen = torch.Generator().manual_seed(1234)
    sets = sampler(s, 12000, gen)[0]
    assert sets.shape == (12000, K)
    assert not (sets == 2).any()  # masked item never drawn
    stat, dof = _chi_square(sets, s)
    assert stat < chi2.ppf(0.999, dof), f"chi-square {stat:.1f} with {dof} dof"


def test_temperature_is_applied():
    s = _scores()
    gen = torch.Generator().manual_seed(5)
    sets = top_down_sample(s, K, 12000, temperature=2.0, generator=gen, head_size=1, block=2)[0]
    stat, dof = _chi_square(sets, s / 2.0)
    assert stat < chi2.ppf(0.999, dof)


def test_samplers_are_deterministic_and_vectorised_over_batch():
    torch.manual_seed(0)
    s = torch.randn(4, 300) * 3
    s[:, :10] = float("-inf")
    for method in ("top_down", "gumbel", "sequential", "auto"):
        a = sample_ranked_sets(
            s, 25, 8, generator=torch.Generator().manual_seed(3), method=method, head_size=16
        )
        b = sample_ranked_sets(
            s, 25, 8, generator=torch.Generator().manual_seed(3), method=method, head_size=16
        )
        assert a.shape == (4, 8, 25) and torch.equal(a, b)
        assert (a >= 10).all()  # masked items never drawn
        assert all(len(set(row)) == 25 for row in a.view(-1, 25).tolist())  # no repeats


def test_top_down_matches_gumbel_marginals_on_a_larger_corpus():
    # first-position marginal = softmax(scores): compare both samplers' empirical top-1 mass
    torch.manual_seed(1)
    s = torch.randn(1, 2000) * 2.0
    p = torch.softmax(s[0].double(), 0)
    top = p.topk(5).indices
    n = 4000
    for method in ("top_down", "gumbel"):
        sets = sample_ranked_sets(
            s, 5, n, generator=torch.Generator().manual_seed(9), method=method, head_size=32
        )
        first = sets[0, :, 0]
        for j in top.tolist():
            freq = float((first == j).double().mean())
            se = math.sqrt(float(p[j]) * (1 - float(p[j])) / n)
            assert abs(freq - float(p[j])) < 4.5 * se + 1e-9


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="at least k"):
        gumbel_top_k(_scores(), 6, 1)
    with pytest.raises(ValueError, match="unknown sampler"):
        sample_ranked_sets(_scores(), 2, 1, method="nope")
    with pytest.raises(ValueError, match=r"\[B, N\]"):
        log_prob(_scores(), torch.tensor([[0, 1]]))


def test_top1_kl_zero_for_identical_and_positive_otherwise():
    s = _scores()
    assert float(top1_kl(s, s)) == pytest.approx(0.0, abs=1e-12)
    t = s.clone()
    t[0, 0] += 1.0
    assert float(top1_kl(t, s)) > 0
