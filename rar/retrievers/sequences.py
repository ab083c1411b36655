"""MovieLens sessions -> token sequences over corpus rows, training windows and eval examples."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from rar.data.movielens_sessions import Session


@dataclass
class SessionLinkStats:
    """What linking MovieLens sessions to corpus rows dropped, so nothing disappears silently."""

    items_total: int = 0
    items_unlinked: int = 0
    sessions_total: int = 0
    sessions_too_short: int = 0
    unlinked_keys: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, int]:
        return {
            "items_total": self.items_total,
            "items_unlinked": self.items_unlinked,
            "distinct_unlinked_movies": len(self.unlinked_keys),
            "sessions_total": self.sessions_total,
            "sessions_too_short": self.sessions_too_short,
        }


def link_sessions(
    sessions: Iterable[Session],
    key_to_row: Mapping[str, int],
    min_length: int = 2,
    stats: SessionLinkStats | None = None,
) -> list[list[int]]:
    """Map each session's movieIds to tokens (corpus row + 1); unlinked items are dropped and counted."""
    stats = stats if stats is not None else SessionLinkStats()
    out: list[list[int]] = []
    for session in sessions:
        stats.sessions_total += 1
        tokens = []
        for key in session.items:
            stats.items_total += 1
            row = key_to_row.get(str(key))
            if row is None:
                stats.items_unlinked += 1
                stats.unlinked_keys.add(str(key))
            else:
                tokens.append(row + 1)
        if len(tokens) < min_length:
            stats.sessions_too_short += 1
        else:
            out.append(tokens)
    return out


def training_windows(sequences: Sequence[list[int]], max_len: int) -> list[list[int]]:
    """Cut sequences into windows of max_len + 1 items (consecutive windows share one item),
    so each next-item target is predicted exactly once from up to max_len previous items."""
    windows = []
    for seq in sequences:
        if len(seq) <= max_len + 1:
            windows.append(seq)
            continue
        for start in range(0, len(seq) - 1, max_len):
            window = seq[start : start + max_len + 1]
            if len(window) >= 2:
                windows.append(window)
    return windows


def eval_examples(
    sequences: Sequence[list[int]], max_len: int
) -> tuple[list[list[int]], list[int]]:
    """Predict each session's last item from the up to max_len items before it."""
    histories = [seq[:-1][-max_len:] for seq in sequences]
    targets = [seq[-1] for seq in sequences]
    return histories, targets


def left_pad(sequences: Sequence[Sequence[int]], length: int | None = None) -> torch.Tensor:
    """[B, L] LongTensor, each row right-aligned (left-padded with 0)."""
    length = length or max((len(s) for s in sequences), default=1)
    out = np.zeros((len(sequences), max(length, 1)), dtype=np.int64)
    for i, seq in enumerate(sequences):
        seq = list(seq)[-length:]
        if seq:
            out[i, length - len(seq) :] = seq
    return torch.from_numpy(out)
