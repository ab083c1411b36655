"""Training objectives over Plackett-Luce log-likelihoods of candidate sets.

All functions take per-set log-probabilities log pi(C) from :func:`rar.rl.policy.log_prob`
and return a scalar loss (mean over pairs / groups) plus, where useful, counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rar.rl.policy import log1mexp


def _zero_like(x: torch.Tensor) -> torch.Tensor:
    """A zero that keeps the graph connected (so .backward() works on empty batches); the sum
    of an empty slice, so -inf entries (masked items) cannot turn it into NaN."""
    return x.flatten()[:0].sum()


def dpo_loss(
    logp_w: torch.Tensor,
    logp_l: torch.Tensor,
    beta: float,
    ref_logp_w: torch.Tensor | None = None,
    ref_logp_l: torch.Tensor | None = None,
) -> torch.Tensor:
    """Online DPO (paper Eq. 4): -log sigmoid(beta [(log pi(Cw) - log ref(Cw)) - (log pi(Cl) - log ref(Cl))]).

    Without reference log-probs the ratios reduce to log pi (the paper's final setting,
    where the NLL term regularises instead of the reference policy).
    """
    if logp_w.numel() == 0:
        return _zero_like(logp_w)
    margin = logp_w - logp_l
    if (ref_logp_w is None) != (ref_logp_l is None):
        raise ValueError("pass both reference log-probs (winner and loser) or neither")
    if ref_logp_w is not None and ref_logp_l is not None:
        margin = margin - (ref_logp_w.detach() - ref_logp_l.detach())
    return -F.logsigmoid(beta * margin).mean()


def simpo_loss(
    logp_w: torch.Tensor, logp_l: torch.Tensor, beta: float, gamma: float
) -> torch.Tensor:
    """SimPO as the paper writes it (Eq. 7): -log sigmoid(beta log P(Cw) - beta log P(Cl) - gamma).

    No length normalisation: every candidate set has the same length k, so dividing by
    |C| would only rescale beta.
    """
    if logp_w.numel() == 0:
        return _zero_like(logp_w)
    return -F.logsigmoid(beta * (logp_w - logp_l) - gamma).mean()


@dataclass
class GRPOOutput:
    loss: torch.Tensor  # policy-gradient part + beta * KL
    pg_loss: torch.Tensor
    kl: torch.Tensor  # mean per-set KL estimate to the reference (0 without reference)
    n_groups: int
    n_zero_variance: int  # groups whose rewards are all equal (no signal; skipped)


def group_advantages(
    rewards: torch.Tensor, eps: float = 1e-8, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(r - mean r) / std r within each group (rows of [G, g]); std is the sample std (n - 1).

    `mask` [G, g] (True = use) leaves sets out: a set whose ranker call failed has no reward,
    so the mean and std are over the group's other sets and its advantage is 0.
    Returns (advantages, valid) where valid marks groups with non-zero variance (and at least
    two sets); the advantages of invalid groups are 0.
    """
    if rewards.shape[-1] < 2:
        raise ValueError("GRPO needs at least 2 sets per group")
    if mask is None:
        mean = rewards.mean(dim=-1, keepdim=True)
        std = rewards.std(dim=-1, keepdim=True)
        valid = std.squeeze(-1) > eps
        use = valid[:, None]
    else:
        m = mask.to(rewards.dtype)
        n = m.sum(dim=-1, keepdim=True)
        mean = (rewards * m).sum(dim=-1, keepdim=True) / n.clamp(min=1)
        var = (((rewards - mean) * m) ** 2).sum(dim=-1, keepdim=True) / (n - 1).clamp(min=1)
        std = var.sqrt()
        valid = (std.squeeze(-1) > eps) & (n.squeeze(-1) >= 2)
        use = valid[:, None] & mask
    adv = torch.where(use, (rewards - mean) / std.clamp(min=eps), torch.zeros_like(rewards))
    return adv, valid


def grpo_loss(
    logp: torch.Tensor,
    rewards: torch.Tensor,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> GRPOOutput:
    """GRPO (paper Eq. 5): -(1/g) sum_i log pi(C_i) A_i over groups with reward variance,
    plus beta * KL to the reference, estimated per sampled set with the unbiased,
    non-negative k3 estimator exp(q - p) - (q - p) - 1 (q = log ref, p = log pi).

    logp, rewards, ref_logp: [G, g]. Zero-variance groups give no policy gradient and are
    counted; the mean is over the remaining groups. `mask` [G, g] (True = use) leaves out
    sets without a reward (failed ranker calls): each group averages over its used sets.
    """
    adv, valid = group_advantages(rewards.detach().double(), mask=mask)
    adv = adv.to(logp.dtype)
    n_valid = int(valid.sum())
    if not n_valid:
        pg = _zero_like(logp)
    elif mask is None:
        pg = -(logp[valid] * adv[valid]).mean(dim=-1).mean()
    else:
        used = mask[valid].to(logp.dtype)
        pg = -((logp[valid] * adv[valid] * used).sum(dim=-1) / used.sum(dim=-1)).mean()
    if ref_logp is not None:
        delta = ref_logp.detach() - logp
        kl = (torch.exp(delta) - delta - 1.0).mean()
    else:
        kl = _zero_like(logp)
    loss = pg + beta * kl if ref_logp is not None else pg
    return GRPOOutput(
        loss, pg, kl, n_groups=int(rewards.shape[0]), n_zero_variance=int((~valid).sum())
    )


def nll_loss(
    scores: torch.Tensor, targets: torch.Tensor, target_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Supervised L_nll: -log softmax(scores over the corpus)[target], mean over all targets.

    scores [B, N] (history masked to -inf), targets [B, T] corpus rows, target_mask [B, T]
    (False = padding). Each target of a turn counts once, as in evaluation.
    """
    logp = torch.log_softmax(scores.float(), dim=-1).gather(1, targets)
    if target_mask is None:
        target_mask = torch.ones_like(targets, dtype=torch.bool)
    if not bool(target_mask.any()):
        return _zero_like(scores)
    return -logp[target_mask].mean()


def listmle_loss(set_scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """ListMLE (Xia et al. 2008): -log P_PL(order | scores) of sets given in the teacher's
    order, the Plackett-Luce likelihood restricted to each set's own items.

    set_scores [S, m]: the policy's scores of each set's items, teacher's best first;
    `mask` [S, m] (True = ranked by the teacher; padding last). Minimal, over all orders of a
    set, exactly when the policy's scores sort the items as the teacher did.
    """
    if mask is None:
        mask = torch.ones_like(set_scores, dtype=torch.bool)
    s = set_scores.double().masked_fill(~mask, float("-inf"))
    # denominator at position i: log-sum-exp of the items from i on (reverse cumulative)
    tail = torch.logcumsumexp(s.flip(-1), dim=-1).flip(-1)
    terms = (s - tail).masked_fill(~mask, 0.0)
    counted = mask.sum(dim=-1) > 1  # a one-item list carries no order
    if not bool(counted.any()):
        return _zero_like(set_scores)
    return -(terms.sum(dim=-1)[counted] / mask.sum(dim=-1)[counted]).mean().to(set_scores.dtype)


def label_selection_logp(
    scores: torch.Tensor, sets: torch.Tensor, position: torch.Tensor
) -> torch.Tensor:
    """log of the Plackett-Luce factor that drew the item at `position` of each set:
    s_c - log sum over the items not drawn before it (the whole corpus minus the set's prefix).

    scores [S, N] (one row per set), sets [S, k], position [S] -> [S]. This factor alone is
    the label's credit: the distractors' factors are left out of the gradient."""
    s = scores.double()
    lse_all = torch.logsumexp(s, dim=-1)  # [S]
    drawn = s.gather(1, sets)  # [S, k]
    prefix = torch.logcumsumexp(drawn, dim=-1)  # mass of the first i + 1 drawn items
    before = prefix.gather(1, (position - 1).clamp(min=0)[:, None]).squeeze(1)
    rest = lse_all + log1mexp((before - lse_all).clamp(max=0.0))
    denom = torch.where(position > 0, rest, lse_all)
    chosen = drawn.gather(1, position[:, None]).squeeze(1)
    return (chosen - denom).to(scores.dtype)
