"""A fixed sparse item-item matrix B [N, N] that scores a history by sum_{i in h} B[i, j].

Why: two parts of a fused retriever's score have this shape, the co-occurrence prior (EASE
weights fitted on the training dialogues) and the metadata links (movies that share a person
or a title word). Both are buffers of any size saved with the checkpoint, and both score a
batch with one sparse-dense product.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class SparseItemMatrix(nn.Module):
    """(src, dst, weight) buffers of a sparse [N, N] matrix; empty until `set_weights`."""

    def __init__(self, num_items: int):
        super().__init__()
        self.num_items = int(num_items)
        self.register_buffer("src", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("dst", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("weight", torch.zeros(0, dtype=torch.float32))
        self._matrix: torch.Tensor | None = None

    @property
    def is_empty(self) -> bool:
        return not self.weight.numel()

    def set_weights(self, src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> None:
        self.src = torch.as_tensor(src, dtype=torch.int32)
        self.dst = torch.as_tensor(dst, dtype=torch.int32)
        self.weight = torch.as_tensor(weight, dtype=torch.float32)
        self._matrix = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # buffers of any length: the matrix's size is known only after it is built
        for name in ("src", "dst", "weight"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        self._matrix = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def matrix_t(self) -> torch.Tensor:
        """The sparse transposed matrix B^T [N, N] (coalesced COO), built once."""
        if self._matrix is None:
            indices = torch.stack([self.dst.long(), self.src.long()])
            size = (self.num_items, self.num_items)
            coo = torch.sparse_coo_tensor(indices, self.weight, size, check_invariants=False)
            self._matrix = coo.coalesce()
        return self._matrix

    def history_scores(self, history: torch.Tensor) -> torch.Tensor:
        """[B, L] left-padded tokens (0 = pad) -> [B, N] (multi-hot history) @ B."""
        batch = history.shape[0]
        hot = torch.zeros(batch, self.num_items + 1, dtype=torch.float32, device=history.device)
        hot.scatter_(1, history, 1.0)
        hot = hot[:, 1:]  # drop the padding column
        if self.is_empty:
            return hot * 0.0
        return torch.sparse.mm(self.matrix_t(), hot.T).T  # (B^T h^T)^T: one product
