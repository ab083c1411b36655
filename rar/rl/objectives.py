"""The RL objectives of post-training behind one interface: `OBJECTIVES[method].term(step)`.

Each objective turns one step's sampled candidate sets and the ranker's verdicts into the RL
term of the loss (the trainer adds `nll_weight` * NLL); `rl_term` samples those sets, has them
ranked and calls the objective. The loss formulas themselves are the
pure functions of :mod:`rar.rl.losses`; here is what each objective feeds them: DPO / SimPO
pick a winner per pair by the paper's rule (resampling undecided pairs), GRPO normalises the
rewards within each sample's group. Two objectives beyond the paper carry the ranker's
judgement rather than only "which set holds the label": `distill` (ListMLE towards the ranker's
order of every sampled set) and `label_credit` (the label's own Plackett-Luce factor, weighted
by the ranker's reward; distractors get no credit). docs/rl.md says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from rar.rl.batches import Batch
from rar.rl.candidate_order import cross_sample_permutation
from rar.rl.feedback import Verdicts, reward_diagnostics
from rar.rl.losses import dpo_loss, grpo_loss, label_selection_logp, listmle_loss, simpo_loss
from rar.rl.policy import log_prob
from rar.rl.rewards import dpo_winner

if TYPE_CHECKING:  # rl_config derives `rl.method` from OBJECTIVES below
    from rar.rl.rl_config import RLConfig

Ranks = list[list[int | None]]
# (sample rows of the batch, sets [rows, g, k], policy scores [rows, N]) -> the ranker's verdicts
RankFn = Callable[[Batch, list[int], torch.Tensor, torch.Tensor], Verdicts]
SampleFn = Callable[[torch.Tensor, int], torch.Tensor]


@dataclass
class RLStep:
    """What an objective sees of one step: the policy's scores (with grad), the frozen initial
    policy's, the sets sampled and their verdicts, and how to sample and rank more."""

    rl: RLConfig
    batch: Batch
    scores: torch.Tensor  # [B, N], with grad
    ref_scores: torch.Tensor  # [B, N], the initial policy's
    sets: torch.Tensor  # [B, g, k]
    rewards: np.ndarray  # [B, g]
    ranks: Ranks  # best label rank of each set (None when absent)
    failed: np.ndarray  # [B, g] sets whose ranker call failed: kept out of the loss
    orders: list[list[list[int]]]  # [B][g] each set's corpus rows in the ranker's order
    perm: np.ndarray | None  # the shuffled-reward control: sample b takes perm[b]'s verdict
    sample: SampleFn
    rank: RankFn
    seconds: dict[str, float] = field(default_factory=lambda: {"sample": 0.0, "rank": 0.0})

    @property
    def detached(self) -> torch.Tensor:
        return self.scores.detach()


Objective = Callable[[RLStep], tuple[torch.Tensor, dict[str, float]]]


def _decided_pairs(step: RLStep) -> tuple[torch.Tensor, list[int], list[int], dict[str, float]]:
    """The paper's winner rule on each sample's two sets, resampling undecided pairs up to
    `rl.max_resamples` times; returns (sets, decided samples, their winners, statistics).
    A pair with a failed set has no verdict: it is skipped, not resampled (its call failed
    after its retries; asking again would hit the same server)."""
    rl = step.rl
    ranks = [list(r) for r in step.ranks]
    broken = {b for b in range(len(ranks)) if step.failed[b].any()}
    winners = [None if b in broken else dpo_winner(r[0], r[1]) for b, r in enumerate(ranks)]
    sets = step.sets.clone()
    resamples = 0
    for _ in range(rl.max_resamples):
        undecided = [b for b, w in enumerate(winners) if w is None and b not in broken]
        if not undecided:
            break
        resamples += len(undecided)
        t0 = time.perf_counter()
        fresh = step.sample(step.detached[undecided], 2)
        step.seconds["sample"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        _, new_ranks, new_failed, _ = step.rank(
            step.batch, undecided, fresh, step.detached[undecided]
        )
        step.seconds["rank"] += time.perf_counter() - t0
        for i, b in enumerate(undecided):
            sets[b] = fresh[i]
            ranks[b] = list(new_ranks[i])
            if new_failed[i].any():
                broken.add(b)
                winners[b] = None
            else:
                winners[b] = dpo_winner(new_ranks[i][0], new_ranks[i][1])
    decided = [b for b, w in enumerate(winners) if w is not None]
    both = [b for b in decided if ranks[b][0] is not None and ranks[b][1] is not None]
    stats = {
        "pairs_decided_frac": len(decided) / len(winners),
        "pairs_skipped_frac": 1.0 - len(decided) / len(winners),
        # decided pairs whose two sets both hold the label (won on the label's rank)
        "pairs_label_in_both_frac": len(both) / len(decided) if decided else float("nan"),
        "resamples_per_sample": resamples / len(winners),
        "pairs_failed_frac": len(broken) / len(winners),
    }
    if step.perm is not None:
        winners = [winners[int(step.perm[b])] for b in range(len(winners))]
        decided = [b for b, w in enumerate(winners) if w is not None]
    return sets, decided, [w for w in winners if w is not None], stats


def _pairwise(
    step: RLStep, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """A preference objective over (winner, loser) log-likelihoods: `loss(logp, ref_logp)` of
    the [P, 2] winner-first pairs."""
    rl = step.rl
    sets, decided, winners, stats = _decided_pairs(step)
    if not decided:
        return torch.zeros((), dtype=step.scores.dtype), stats | {"win_rate": float("nan")}
    idx = torch.tensor(decided, dtype=torch.long)
    w = torch.tensor(winners, dtype=torch.long)
    pairs = torch.stack([sets[idx, w], sets[idx, 1 - w]], dim=1)  # [P, 2, k] (winner first)
    logp = log_prob(step.scores[idx], pairs, rl.temperature)
    with torch.no_grad():
        ref_lp = log_prob(step.ref_scores[idx], pairs, rl.temperature)
    value = loss(logp, ref_lp)
    stats["win_rate"] = float((logp[:, 0] > logp[:, 1]).float().mean())
    stats["logp_margin"] = float((logp[:, 0] - logp[:, 1]).detach().mean())
    stats["kl_sets_to_initial"] = float((logp.detach() - ref_lp).mean())
    return value, stats


def dpo(step: RLStep) -> tuple[torch.Tensor, dict[str, float]]:
    """Online DPO (paper Eq. 4), divided by the initial policy only with `rl.use_reference`."""
    rl = step.rl

    def loss(logp: torch.Tensor, ref_lp: torch.Tensor) -> torch.Tensor:
        if rl.use_reference:
            return dpo_loss(logp[:, 0], logp[:, 1], rl.beta, ref_lp[:, 0], ref_lp[:, 1])
        return dpo_loss(logp[:, 0], logp[:, 1], rl.beta)

    return _pairwise(step, loss)


def simpo(step: RLStep) -> tuple[torch.Tensor, dict[str, float]]:
    """SimPO (paper Eq. 7): DPO without a reference, with a target margin `rl.gamma`."""
    rl = step.rl
    return _pairwise(step, lambda logp, _: simpo_loss(logp[:, 0], logp[:, 1], rl.beta, rl.gamma))


def grpo(step: RLStep) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO: policy gradient with group-normalised rewards (+ beta * KL with a reference)."""
    rl = step.rl
    rewards, failed = step.rewards, step.failed
    if step.perm is not None:
        rewards, failed = rewards[step.perm], failed[step.perm]
    logp = log_prob(step.scores, step.sets, rl.temperature)
    ref_lp = log_prob(step.ref_scores, step.sets, rl.temperature) if rl.use_reference else None
    mask = torch.as_tensor(~failed) if failed.any() else None  # failed sets leave their group
    res = grpo_loss(logp, torch.as_tensor(rewards, dtype=logp.dtype), rl.beta, ref_lp, mask)
    stats = {
        "zero_variance_frac": res.n_zero_variance / max(1, res.n_groups),
        "loss_pg": float(res.pg_loss.detach()),
        "kl_ref": float(res.kl.detach()),
    }
    with torch.no_grad():
        stats["kl_sets_to_initial"] = float(
            (logp.detach() - log_prob(step.ref_scores, step.sets, rl.temperature)).mean()
        )
    return res.loss, stats


def _teacher_orders(step: RLStep) -> list[list[list[int]]]:
    """The ranker's order of every set; under the control (`perm`), each set keeps its own
    movies but takes the position pattern of another sample's verdict on its j-th set."""
    if step.perm is None:
        return step.orders
    out: list[list[list[int]]] = []
    for b, sets in enumerate(step.sets.tolist()):
        donor = int(step.perm[b])
        donor_sets = step.sets[donor].tolist()
        row = []
        for j, items in enumerate(sets):
            where = {c: i for i, c in enumerate(donor_sets[j])}
            pattern = [where[c] for c in step.orders[donor][j] if c in where]
            row.append([items[i] for i in pattern])
        out.append(row)
    return out


def distill(step: RLStep) -> tuple[torch.Tensor, dict[str, float]]:
    """Listwise distillation: the policy's Plackett-Luce order over each sampled set is
    trained towards the ranker's order of it (ListMLE), so everything the ranker read in the
    conversation reaches the policy, not only where the label landed."""
    orders = _teacher_orders(step)
    k = step.sets.shape[2]
    rows, lists, masks = [], [], []
    for b, per_set in enumerate(orders):
        for j, order in enumerate(per_set):
            if step.failed[b, j] or len(order) < 2:
                continue
            rows.append(b)
            lists.append(order + [0] * (k - len(order)))
            masks.append([True] * len(order) + [False] * (k - len(order)))
    if not rows:
        return torch.zeros((), dtype=step.scores.dtype), {"distill_sets": 0.0}
    idx = torch.tensor(lists, dtype=torch.long)
    set_scores = step.scores[torch.tensor(rows)].gather(1, idx) / step.rl.temperature
    loss = listmle_loss(set_scores, torch.tensor(masks))
    with torch.no_grad():  # how often the policy already agrees with the ranker's top pick
        agree = set_scores.masked_fill(~torch.tensor(masks), float("-inf")).argmax(1) == 0
    return loss, {
        "distill_sets": float(len(rows)),
        "distill_top1_agree": float(agree.float().mean()),
    }


def label_credit(step: RLStep) -> tuple[torch.Tensor, dict[str, float]]:
    """Reward-weighted credit to the label alone: for every sampled set holding a label, the
    Plackett-Luce factor that drew it is weighted by the ranker's NDCG for that set. Unlike
    DPO's set-level comparison, the distractors that made a set win get no credit."""
    rewards, failed = step.rewards, step.failed
    if step.perm is not None:
        rewards, failed = rewards[step.perm], failed[step.perm]
    targets, tmask = step.batch.targets, step.batch.target_mask
    rows, sets, positions, weights = [], [], [], []
    for b in range(step.sets.shape[0]):
        labels = {int(t) for t, m in zip(targets[b].tolist(), tmask[b].tolist(), strict=True) if m}
        for j, items in enumerate(step.sets[b].tolist()):
            if failed[b, j]:
                continue
            for pos, item in enumerate(items):
                if item in labels:
                    rows.append(b)
                    sets.append(items)
                    positions.append(pos)
                    weights.append(float(rewards[b, j]))
    if not rows:
        return torch.zeros((), dtype=step.scores.dtype), {"credited_labels": 0.0}
    logp = label_selection_logp(
        step.scores[torch.tensor(rows)] / step.rl.temperature,
        torch.tensor(sets, dtype=torch.long),
        torch.tensor(positions, dtype=torch.long),
    )
    w = torch.tensor(weights, dtype=logp.dtype)
    loss = -(w * logp).sum() / step.sets.shape[0] / step.sets.shape[1]
    return loss, {"credited_labels": float(len(rows)), "credit_weight_mean": float(w.mean())}


@dataclass(frozen=True)
class Method:
    """One `rl.method`: its RL term (None: NLL only, so nothing is sampled or ranked) and
    whether it samples `rl.group_size` sets per sample (else a pair)."""

    term: Objective | None
    about: str
    group: bool = False


# the one table of `rl.method` names: config validation and its help text derive from it
OBJECTIVES: dict[str, Method] = {
    "sft": Method(None, "NLL only"),
    "dpo": Method(dpo, "online DPO"),
    "simpo": Method(simpo, "SimPO"),
    "grpo": Method(grpo, "GRPO", group=True),
    "distill": Method(
        distill, "ListMLE towards the ranker's order of each sampled set", group=True
    ),
    "label_credit": Method(
        label_credit, "the label's own draw factor weighted by the ranker's reward", group=True
    ),
}


def rl_term(
    rl: RLConfig,
    batch: Batch,
    scores: torch.Tensor,
    ref_scores: torch.Tensor,
    sample: SampleFn,
    rank: RankFn,
    shuffle_seed: Sequence[int],
) -> tuple[torch.Tensor, dict[str, float], dict[str, float]]:
    """One step's RL term: `rl.sets_per_sample` sets per sample drawn from the policy, ranked,
    and handed to `OBJECTIVES[rl.method].term` (not called for a method without one). Returns (loss, statistics for the step row, seconds
    spent sampling and ranking). With `rl.shuffle_rewards` (the control) each sample takes
    another's verdicts, permuted by `shuffle_seed`."""
    detached = scores.detach()
    seconds = {"sample": 0.0, "rank": 0.0}
    t0 = time.perf_counter()
    sets = sample(detached, rl.sets_per_sample)  # [B, g, k]
    seconds["sample"] += time.perf_counter() - t0
    rows = list(range(len(batch.samples)))
    t0 = time.perf_counter()
    rewards, ranks, failed, orders = rank(batch, rows, sets, detached)
    seconds["rank"] += time.perf_counter() - t0
    out = reward_diagnostics(rewards, sets, batch)
    perm = None
    if rl.shuffle_rewards:  # the control: rewards no longer belong to their sample
        perm = cross_sample_permutation(len(rows), shuffle_seed)
        out["shuffle_rewards"] = 1.0
    step = RLStep(
        rl, batch, scores, ref_scores, sets, rewards, ranks, failed, orders, perm, sample, rank
    )
    term = OBJECTIVES[rl.method].term
    assert term is not None, f"rl.method {rl.method} has no RL term"
    loss, stats = term(step)
    seconds["sample"] += step.seconds["sample"]
    seconds["rank"] += step.seconds["rank"]
    out.update(stats)
    out[f"loss_{rl.method}"] = float(loss.detach())
    return loss, out, seconds
