"""Rewards from the ranker's output, and the paper's rule for picking DPO winners."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rar.metrics import ndcg_at_k
from rar.rankers.types import RankResult


def ndcg_reward(
    ranked_ids: Sequence[str], targets: Collection[str], cutoff: int | None = None
) -> float:
    """NDCG of the target(s) in the ranker's ranked list (binary relevance, the paper's reward).

    The cut-off is the whole list unless `cutoff` is given; the metric is the evaluation's
    own :func:`rar.metrics.ndcg_at_k`, so training and evaluation agree.
    """
    if not targets:
        raise ValueError("ndcg_reward needs at least one target")
    k = cutoff if cutoff is not None else max(1, len(ranked_ids))
    return ndcg_at_k(ranked_ids, targets, k)


def label_rank(ranked_ids: Sequence[str], targets: Collection[str]) -> int | None:
    """0-based rank of the best-placed target in the ranker's output, None when absent."""
    wanted = set(targets)
    for r, item in enumerate(ranked_ids):
        if item in wanted:
            return r
    return None


def result_reward(
    result: RankResult, targets: Collection[str], cutoff: int | None = None
) -> tuple[float, int | None]:
    """(NDCG reward, best label rank) of one ranker result, scored on what the ranker itself
    ranked (`RankResult.scored_ids`): a label an LLM did not output earns 0 and no rank,
    unless `parser.score_appended` counts the appended candidates too."""
    ranked = result.scored_ids
    if not ranked:
        return 0.0, None
    return ndcg_reward(ranked, targets, cutoff), label_rank(ranked, targets)


def dpo_winner(rank_a: int | None, rank_b: int | None) -> int | None:
    """The paper's rule: label in both sets -> the higher (smaller) rank wins; in one -> that set
    wins; in neither, or tied at the same rank -> None (no preference: resample)."""
    if rank_a is None and rank_b is None:
        return None
    if rank_b is None:
        return 0
    if rank_a is None:
        return 1
    if rank_a == rank_b:
        return None
    return 0 if rank_a < rank_b else 1
