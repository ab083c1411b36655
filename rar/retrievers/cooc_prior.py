"""A fixed co-occurrence prior for the policy: EASE's item-item weights, added with a learned
weight.

Why: on conversational data item co-occurrence is a strong signal (EASE beats a learned
sequential retriever on ReDial), and a linear item-item model fitted in closed form on the
training dialogues gives it to the policy for free. The weights B are fitted once on the
training split (`fit_cooc_prior`), pruned to each item's strongest neighbours, and stored with
the checkpoint; only their scale is learned. A history h scores movie j by sum_{i in h} B[i, j].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rar.retrievers.sparse_item_matrix import SparseItemMatrix


class CoocPrior(SparseItemMatrix):
    """Sparse item-item weights [N, N] (fixed buffers) and a learned scale."""

    def __init__(self, num_items: int, scale: float = 1.0, scale_lr_mult: float = 10.0):
        super().__init__(num_items)
        # effective scale = mult * param: Adam moves a parameter ~lr per step, so the multiplier
        # lets a short run move the scale by whole units (as the item bias's scale does)
        self.scale_lr_mult = float(scale_lr_mult)
        self.scale_param = nn.Parameter(torch.tensor(scale / scale_lr_mult))

    @property
    def scale(self) -> torch.Tensor:
        return self.scale_param * self.scale_lr_mult

    def scores(self, history: torch.Tensor) -> torch.Tensor:
        """[B, L] left-padded tokens -> [B, N] scale * (multi-hot history) @ B."""
        return self.scale * self.history_scores(history)


def fit_cooc_prior(
    dialogue_items: list[np.ndarray], num_items: int, l2: float = 200.0, neighbours: int = 200
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EASE weights over the items of the training dialogues (one row per dialogue, every movie
    it mentions), each item's `neighbours` largest weights kept: (src, dst, weight) arrays."""
    items = [np.asarray(d, dtype=np.int64) for d in dialogue_items if len(d)]
    if not items:
        return (np.zeros(0, np.int32),) * 2 + (np.zeros(0, np.float32),)
    seen = np.unique(np.concatenate(items))
    column = np.full(num_items, -1, dtype=np.int64)
    column[seen] = np.arange(len(seen))
    x = np.zeros((len(items), len(seen)), dtype=np.float64)
    for i, rows in enumerate(items):
        x[i, column[rows]] = 1.0
    b = ease_weights(x, l2)
    keep = min(neighbours, len(seen))
    top = np.argpartition(-b, keep - 1, axis=1)[:, :keep]  # per source item
    src = np.repeat(np.arange(len(seen)), keep)
    dst = top.reshape(-1)
    weight = b[src, dst]
    nonzero = weight != 0
    return (
        seen[src[nonzero]].astype(np.int32),
        seen[dst[nonzero]].astype(np.int32),
        weight[nonzero].astype(np.float32),
    )


def ease_weights(x: np.ndarray, l2: float) -> np.ndarray:
    """B = I − P·diag(1/diag(P)) with P = (XᵀX + λI)⁻¹, for a [users, items] matrix X
    (Steck 2019; the EASE baseline and this prior share it)."""
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += l2
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b
