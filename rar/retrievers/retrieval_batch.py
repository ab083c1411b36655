"""What a candidate source reads, and the contract every source meets.

Why a type: the pipeline, RL validation and the demo hand the same input to LRURec, the
conversation-aware policy and the count baselines. A :class:`RetrievalBatch` carries the movies
named so far (left-padded tokens, corpus row + 1, 0 = pad) and, for the sources that read it,
the conversation so far; a :class:`CandidateSource` turns it into top-k corpus rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

from rar.data.types import Turn
from rar.retrievers.sequences import left_pad

if TYPE_CHECKING:
    from rar.data.linking import LinkedSample


@dataclass(frozen=True)
class RetrievalBatch:
    """A batch of retrieval inputs: histories as tokens, and optionally the conversations."""

    history: torch.Tensor  # [B, L] left-padded tokens (corpus row + 1, 0 = pad)
    contexts: Sequence[Sequence[Turn]] | None = None  # per row: the turns so far, oldest first

    def __post_init__(self) -> None:
        if self.contexts is not None and len(self.contexts) != int(self.history.shape[0]):
            raise ValueError(
                f"{len(self.contexts)} conversations for {int(self.history.shape[0])} histories"
            )

    def __len__(self) -> int:
        return int(self.history.shape[0])

    @classmethod
    def from_rows(
        cls,
        histories: Sequence[Sequence[int]],
        contexts: Sequence[Sequence[Turn]] | None = None,
        max_len: int | None = None,
    ) -> RetrievalBatch:
        """Histories as corpus rows (oldest first); the newest `max_len` are kept."""
        tokens = [
            [int(r) + 1 for r in h][-max_len:] if max_len else [int(r) + 1 for r in h]
            for h in histories
        ]
        return cls(left_pad(tokens), contexts)


def as_batch(inputs: RetrievalBatch | torch.Tensor) -> RetrievalBatch:
    """A bare token tensor is a batch without conversations (the item-only input)."""
    return inputs if isinstance(inputs, RetrievalBatch) else RetrievalBatch(inputs)


@runtime_checkable
class CandidateSource(Protocol):
    """What the pipeline needs from a retriever or a fitted baseline."""

    @property
    def num_items(self) -> int:
        """Corpus size N: rows are 0..N-1."""
        ...

    @property
    def max_history(self) -> int:
        """The most recent history items the source reads."""
        ...

    def top_rows(self, batch: RetrievalBatch, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """([B, k] corpus rows, [B, k] scores), history items excluded, deterministic (no
        dropout, no gradients); rows of -1 where fewer than k items can be offered."""
        ...

    def check_unseen(self, samples: Sequence[LinkedSample]) -> None:
        """Refuse samples the source was fitted on (a no-op for sources that were not)."""
        ...
