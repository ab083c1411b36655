"""The order in which a sampled candidate set is handed to the ranker during RL.

A Plackett-Luce draw returns the set in the order it was drawn. Rankers are order-sensitive
(the semantic ranker blends in the given order, LLMs have position bias), so handing them the
draw order makes the reward depend on how the policy happened to draw the set, not only on
which movies it holds. `retriever` and `shuffled` depend only on the set (and, for
`retriever`, on the policy's scores, which are the same for every set of a sample in a step).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Literal

import numpy as np

CandidateOrder = Literal["retriever", "shuffled", "sampled"]


def order_set(
    rows: Sequence[int],
    order: CandidateOrder,
    scores: np.ndarray | None = None,
    key: str = "",
    seed: int = 0,
) -> list[int]:
    """Corpus rows of one sampled set in the order the ranker sees them.

    retriever: by descending `scores[row]` (the policy's scores for this sample), ties by row;
    shuffled: a shuffle seeded by (seed, key, the set's sorted rows); sampled: as drawn.
    """
    rows = [int(r) for r in rows]
    if order == "sampled":
        return rows
    if order == "retriever":
        if scores is None:
            raise ValueError("candidate_order=retriever needs the policy's scores")
        return sorted(rows, key=lambda r: (-float(scores[r]), r))
    if order == "shuffled":
        ordered = sorted(rows)
        text = f"{seed}:{key}:{','.join(map(str, ordered))}"
        digest = hashlib.sha256(text.encode()).digest()
        random.Random(int.from_bytes(digest[:8], "big")).shuffle(ordered)
        return ordered
    raise ValueError(f"unknown candidate order {order!r}; expected retriever, shuffled or sampled")


def cross_sample_permutation(n: int, seed: Sequence[int]) -> np.ndarray:
    """A seeded permutation of n samples in which no sample keeps its own index (one random
    cycle), for the shuffled-reward control; the identity when n < 2."""
    if n < 2:
        return np.arange(n)
    cycle = np.random.default_rng(list(seed)).permutation(n)
    perm = np.empty(n, dtype=np.int64)
    perm[cycle] = np.roll(cycle, -1)  # cycle[i] takes the reward of cycle[i + 1]
    return perm
