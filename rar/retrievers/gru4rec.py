"""GRU4Rec (Hidasi et al., 2016): a GRU over the item sequence.

A GRU's state drifts even on zero input, so left padding would leak into the state; rows are
re-aligned to the right and packed, so the GRU only ever sees real items.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rar.retrievers.base import Retriever
from rar.retrievers.retriever_config import RetrieverConfig


def roll_rows(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Roll each row of x [B, L, ...] left by shifts[b] positions (circularly)."""
    length = x.shape[1]
    index = (torch.arange(length, device=x.device)[None, :] + shifts[:, None]) % length
    if x.ndim == 3:
        index = index.unsqueeze(-1).expand(-1, -1, x.shape[2])
    return x.gather(1, index)


class GRU4Rec(Retriever):
    """Embedding -> dropout -> multi-layer GRU -> linear map back to d."""

    def __init__(self, config: RetrieverConfig, item_vectors: torch.Tensor):
        super().__init__(config, item_vectors)
        d = config.d_model
        self.input_dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(
            d,
            d,
            num_layers=config.n_layers,
            batch_first=True,
            dropout=config.dropout if config.n_layers > 1 else 0.0,
        )
        self.out = nn.Linear(d, d)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        lengths = (tokens > 0).sum(1)
        pad = length - lengths
        x = self.input_dropout(self.items.embed_tokens(tokens))
        right = roll_rows(x, pad)  # real items first, padding after
        packed = pack_padded_sequence(
            right, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=length)
        return self.out(roll_rows(out, (length - pad) % length))
