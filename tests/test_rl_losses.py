"""Losses and rewards against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from rar.rl.losses import dpo_loss, group_advantages, grpo_loss, nll_loss, simpo_loss
from rar.rl.rewards import dpo_winner, label_rank, ndcg_reward


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_dpo_without_reference():
    w, lo = torch.tensor([-10.0, -3.0]), torch.tensor([-12.0, -1.0])
    # margins 2 and -2, beta 0.5 -> -log sig(1), -log sig(-1)
    expected = (-math.log(_sig(1.0)) - math.log(_sig(-1.0))) / 2
    assert float(dpo_loss(w, lo, beta=0.5)) == pytest.approx(expected, rel=1e-6)


def test_dpo_with_reference():
    w, lo = torch.tensor([-10.0]), torch.tensor([-12.0])
    rw, rl = torch.tensor([-11.0]), torch.tensor([-11.5])
    # beta [(-10 + 11) - (-12 + 11.5)] = 0.1 * 1.5
    assert float(dpo_loss(w, lo, 0.1, rw, rl)) == pytest.approx(-math.log(_sig(0.15)), rel=1e-6)
    with pytest.raises(ValueError):
        dpo_loss(w, lo, 0.1, rw, None)


def test_dpo_gradient_pushes_winner_up():
    w = torch.tensor([-5.0], requires_grad=True)
    lo = torch.tensor([-5.0], requires_grad=True)
    dpo_loss(w, lo, beta=0.2).backward()
    # d/dw -log sig(b(w-l)) = -b (1 - sig(0)) = -0.1
    assert float(w.grad) == pytest.approx(-0.1)
    assert float(lo.grad) == pytest.approx(0.1)


def test_simpo():
    w, lo = torch.tensor([-10.0]), torch.tensor([-12.0])
    # -log sig(0.2 * 2 - 0.5) = -log sig(-0.1)
    assert float(simpo_loss(w, lo, beta=0.2, gamma=0.5)) == pytest.approx(
        -math.log(_sig(-0.1)), rel=1e-6
    )


def test_empty_pair_batch_gives_connected_zero():
    x = torch.zeros(0, requires_grad=True)
    loss = dpo_loss(x, x, 0.1)
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_group_advantages_hand_computed():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    adv, valid = group_advantages(r)
    std = math.sqrt(1.0 / 3.0)  # sample std of (1, 0, 0, 1)
    assert adv[0].tolist() == pytest.approx([0.5 / std, -0.5 / std, -0.5 / std, 0.5 / std])
    assert valid.tolist() == [True, False]
    assert adv[1].tolist() == [0.0] * 4


def test_grpo_loss_skips_zero_variance_groups_and_counts_them():
    logp = torch.tensor([[-2.0, -4.0], [-1.0, -1.0]], requires_grad=True)
    rewards = torch.tensor([[1.0, 0.0], [0.3, 0.3]])
    out = grpo_loss(logp, rewards)
    a = 0.5 / math.sqrt(0.5)  # advantages +-0.7071
    # -(1/2) [(-2)(a) + (-4)(-a)] = -(1/2)(2a) = -a
    assert float(out.loss.detach()) == pytest.approx(-a, rel=1e-6)
    assert out.n_zero_variance == 1 and out.n_groups == 2
    out.loss.backward()
    assert logp.grad[1].tolist() == [0.0, 0.0]
    assert logp.grad[0].tolist() == pytest.approx([-a / 2, a / 2])


def test_grpo_kl_term_k3_estimator():
    logp = torch.tensor([[-2.0, -4.0]])
    ref = torch.tensor([[-2.5, -3.0]])
    out = grpo_loss(logp, torch.tensor([[1.0, 0.0]]), beta=0.1, ref_logp=ref)
    kls = [math.exp(d) - d - 1 for d in (-0.5, 1.0)]
    assert float(out.kl) == pytest.approx(sum(kls) / 2, rel=1e-6)
    assert float(out.loss) == pytest.approx(float(out.pg_loss) + 0.1 * sum(kls) / 2, rel=1e-6)


def test_nll_mean_over_targets():
    scores = torch.tensor([[0.0, math.log(3.0), float("-inf")], [1.0, 1.0, 1.0]])
    targets = torch.tensor([[1, 0], [2, 0]])
    mask = torch.tensor([[True, True], [True, False]])
    # row 0: p = (1/4, 3/4, 0) -> -log 3/4 and -log 1/4; row 1: -log 1/3
    expected = (-math.log(0.75) - math.log(0.25) + math.log(3.0)) / 3
    assert float(nll_loss(scores, targets, mask)) == pytest.approx(expected, rel=1e-6)


def test_ndcg_reward_hand_computed():
    ranked = ["a", "b", "c", "d"]
    assert ndcg_reward(ranked, {"a"}) == 1.0
    assert ndcg_reward(ranked, {"c"}) == pytest.approx(1 / math.log2(4))
    assert ndcg_reward(ranked, {"z"}) == 0.0
    # two targets at ranks 2 and 4: (1/log2 3 + 1/log2 5) / (1 + 1/log2 3)
    two = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_reward(ranked, {"b", "d"}) == pytest.approx(two)
    assert ndcg_reward(ranked, {"d"}, cutoff=3) == 0.0
    with pytest.raises(ValueError):
        ndcg_reward(ranked, set())


def test_dpo_winner_rule():
    assert label_rank(["x", "t", "y"], {"t"}) == 1
    assert label_rank(["x"], {"t"}) is None
    assert dpo_winner(0, 3) == 0  # both: higher rank wins
    assert dpo_winner(4, 2) == 1
    assert dpo_winner(None, 7) == 1  # only in one set: that set wins
    assert dpo_winner(5, None) == 0
    assert dpo_winner(None, None) is None  # neither: resample
    assert dpo_winner(2, 2) is None  # tie carries no preference


# ---- listwise distillation and label credit (issue 25) ------------------------------------


def test_listmle_is_minimised_by_the_teachers_own_order():
    import itertools

    from rar.rl.losses import listmle_loss

    teacher = torch.tensor([[4.0, 2.5, 1.0, -0.5]])  # scores in the teacher's order
    best = listmle_loss(teacher)
    for perm in itertools.permutations(range(4)):
        if list(perm) == [0, 1, 2, 3]:
            continue
        assert listmle_loss(teacher[:, list(perm)]) > best  # any other order costs more
    # gradient descent on free scores recovers the teacher's order
    free = torch.zeros(1, 4, requires_grad=True)
    opt = torch.optim.SGD([free], lr=1.0)
    for _ in range(200):
        opt.zero_grad()
        listmle_loss(free).backward()
        opt.step()
    assert free.detach()[0].argsort(descending=True).tolist() == [0, 1, 2, 3]
    # padding (unranked items) is ignored
    padded = torch.tensor([[4.0, 2.5, 99.0]])
    assert torch.allclose(
        listmle_loss(padded, torch.tensor([[True, True, False]])),
        listmle_loss(torch.tensor([[4.0, 2.5]])),
    )


def test_label_selection_logp_is_the_plackett_luce_factor():
    from rar.rl.losses import label_selection_logp
    from rar.rl.policy import log_prob

    g = torch.Generator().manual_seed(0)
    scores = torch.randn(1, 30, generator=g, dtype=torch.float64)
    items = torch.tensor([[5, 9, 2, 17]])
    # log P(set) = sum of its factors; each factor = logp(prefix to i) - logp(prefix to i-1)
    total = torch.zeros(1, dtype=torch.float64)
    for pos in range(4):
        total += label_selection_logp(scores, items, torch.tensor([pos]))
    expected = log_prob(scores, items[:, None, :])[:, 0]
    assert torch.allclose(total, expected, atol=1e-9)
    first = label_selection_logp(scores, items, torch.tensor([0]))
    assert torch.allclose(first, torch.log_softmax(scores, -1)[:, 5])
