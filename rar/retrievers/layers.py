"""Building blocks shared by several retrievers: position-wise feed-forward, padding masks."""

from __future__ import annotations

import torch
from torch import nn


class FeedForward(nn.Module):
    """Position-wise d -> m*d -> d GELU feed-forward with residual + LayerNorm (post-norm)."""

    def __init__(self, d_model: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, mult * d_model),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mult * d_model, d_model),
            nn.Dropout(dropout),
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.net(x))


def pad_mask(tokens: torch.Tensor) -> torch.Tensor:
    """[B, L] -> [B, L, 1] float mask, 1 at real items and 0 at padding."""
    return (tokens > 0).unsqueeze(-1)


def positions_from_end(tokens: torch.Tensor) -> torch.Tensor:
    """Position ids counted back from the newest item (0 = last), so left padding never shifts them."""
    length = tokens.shape[1]
    return torch.arange(length - 1, -1, -1, device=tokens.device).expand_as(tokens)
