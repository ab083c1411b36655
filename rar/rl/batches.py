"""Conversation samples -> retriever tensors (left-padded history tokens, target rows).

Token convention of the retrievers: corpus row i <-> token i + 1, 0 = padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rar.data.linking import LinkedSample
from rar.retrievers.retrieval_batch import RetrievalBatch


@dataclass
class Batch:
    samples: list[LinkedSample]
    history: torch.Tensor  # [B, L] tokens, left-padded
    targets: torch.Tensor  # [B, T] corpus rows (0 where padded)
    target_mask: torch.Tensor  # [B, T] bool

    @property
    def target_ids(self) -> list[list[str]]:
        return [s.target_ids for s in self.samples]

    @property
    def inputs(self) -> RetrievalBatch:
        """What the policy reads: the histories and the conversations so far."""
        return RetrievalBatch(self.history, [s.sample.context for s in self.samples])


def make_batch(samples: Sequence[LinkedSample], row_of: dict[str, int], max_len: int) -> Batch:
    """Tensors for a list of linked samples; the newest `max_len` history items are kept."""
    if not samples:
        raise ValueError("cannot make a batch of zero samples")
    hist_rows = [[row_of[c] for c in s.history_ids][-max_len:] for s in samples]
    width = max(1, max(len(h) for h in hist_rows))
    history = torch.zeros((len(samples), width), dtype=torch.long)
    for i, rows in enumerate(hist_rows):
        if rows:
            history[i, width - len(rows) :] = torch.tensor(rows, dtype=torch.long) + 1
    n_t = max(len(s.target_ids) for s in samples)
    targets = torch.zeros((len(samples), n_t), dtype=torch.long)
    mask = torch.zeros((len(samples), n_t), dtype=torch.bool)
    for i, s in enumerate(samples):
        rows = [row_of[c] for c in s.target_ids]
        targets[i, : len(rows)] = torch.tensor(rows, dtype=torch.long)
        mask[i, : len(rows)] = True
    return Batch(list(samples), history, targets, mask)
