"""The ranker's feedback on sampled candidate sets: one concurrent ranking call per step,
turned into NDCG rewards; the step's failed sets; the diagnostics of its learning signal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from rar.rankers.types import RankRequest
from rar.rl.batches import Batch
from rar.rl.candidate_order import order_set
from rar.rl.rewards import result_reward

if TYPE_CHECKING:
    from rar.rl.rl_config import RLConfig


class Verdicts(NamedTuple):
    """The ranker's verdicts on a step's sets [rows, g, k]."""

    rewards: np.ndarray  # [rows, g] NDCG of the labels in the ranker's output
    ranks: list[list[int | None]]  # best label rank of each set (None when absent)
    failed: np.ndarray  # [rows, g] sets whose ranker call failed (reward 0, no rank)
    orders: list[list[list[int]]]  # [rows][g] corpus rows in the ranker's order (what it ranked)


@dataclass
class FailedSets:
    """One step's ranked sets and those whose ranker call failed (with their errors)."""

    ranked: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def check(self, out: dict[str, float], max_share: float, step: int) -> None:
        """Count the step's failed sets in its metrics `out`; stop past `max_share`."""
        from rar.evaluation.failed_calls import FailedCallsError, describe_failures

        ranked, failed = self.ranked, self.failed
        out["failed_sets"] = float(failed)
        out["failed_sets_share"] = failed / ranked if ranked else 0.0
        if ranked and failed / ranked > max_share:
            line = describe_failures(failed, ranked, f"the ranked sets of step {step}")
            raise FailedCallsError(
                f"{line} (e.g. {self.errors[0]}); more than rl.max_failed_share = "
                f"{max_share:g}, stopping: the step's reward would be noise — "
                "check the ranker's server; `rar train --resume` continues from the last checkpoint"
            )


def rank_sets(
    ranker: Any,
    corpus_ids: Sequence[str],
    rl: RLConfig,
    batch: Batch,
    rows: Sequence[int],
    sets: torch.Tensor,
    scores: torch.Tensor,
    counts: FailedSets,
) -> Verdicts:
    """Rank sets [len(rows), g, k] for the samples `rows` of the batch; returns rewards
    [len(rows), g], the best label rank of each set (None when absent), which sets'
    ranker calls failed [len(rows), g] (reward 0 and no rank: kept out of the loss; also added
    to `counts`) and each set's movies in the ranker's order (what it ranked itself).

    Each set reaches the ranker in `rl.candidate_order` (`scores` [len(rows), N] are the
    policy's scores for those samples), so with `retriever` or `shuffled` the reward depends
    only on which movies a set holds, never on the order they were drawn in."""
    requests: list[RankRequest] = []
    order = rl.candidate_order
    for i, b in enumerate(rows):
        linked = batch.samples[b]
        sample = linked.sample
        row_scores = scores[i].numpy() if order == "retriever" else None
        for cand in sets[i].tolist():
            shown = order_set(cand, order, row_scores, sample.sample_id, rl.order_seed)
            ids = [corpus_ids[c] for c in shown]
            requests.append(
                RankRequest(sample.sample_id, sample.context, ids, list(linked.history_ids))
            )
    results = ranker.rank(requests)
    g = sets.shape[1]
    rewards = np.zeros((len(rows), g))
    failed = np.zeros((len(rows), g), dtype=bool)
    ranks: list[list[int | None]] = [[None] * g for _ in rows]
    orders: list[list[list[int]]] = [[[] for _ in range(g)] for _ in rows]
    row_of = {cid: r for r, cid in ((int(r), corpus_ids[int(r)]) for r in sets.flatten().tolist())}
    for n, result in enumerate(results):
        i, j = divmod(n, g)
        if result.error is not None:
            failed[i, j] = True
            counts.errors.append(result.error)
            continue
        targets = batch.samples[rows[i]].target_ids
        rewards[i, j], ranks[i][j] = result_reward(result, targets, rl.reward_cutoff)
        orders[i][j] = [row_of[c] for c in result.scored_ids if c in row_of]
    counts.ranked += failed.size
    counts.failed += int(failed.sum())
    return Verdicts(rewards, ranks, failed, orders)


def reward_diagnostics(rewards: np.ndarray, sets: torch.Tensor, batch: Batch) -> dict[str, float]:
    """What explains an RL step: reward level and variance (overall and within a sample's
    sets, which is what DPO/GRPO learn from) and how often a sampled set holds a label."""
    targets = batch.targets[:, None, None, :]  # [B, 1, 1, T]
    in_set = ((sets[..., None] == targets) & batch.target_mask[:, None, None, :]).any(-1).any(-1)
    return {
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std()),
        "reward_var": float(rewards.var()),
        "reward_var_within": float(rewards.var(axis=1).mean()),
        "reward_max_mean": float(rewards.max(axis=1).mean()),
        "label_in_set_rate": float(in_set.float().mean()),
    }
