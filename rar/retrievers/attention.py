"""Self-attention blocks for SASRec (causal) and BERT4Rec (bidirectional)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rar.retrievers.layers import FeedForward


def attention_mask(tokens: torch.Tensor, causal: bool) -> torch.Tensor:
    """[B, 1, L, L] boolean 'may attend' mask: real keys only (plus self, so pad rows stay finite)."""
    length = tokens.shape[1]
    keys = (tokens > 0)[:, None, None, :]
    allowed = keys.expand(-1, 1, length, -1)
    if causal:
        allowed = (
            allowed & torch.ones(length, length, dtype=torch.bool, device=tokens.device).tril()
        )
    eye = torch.eye(length, dtype=torch.bool, device=tokens.device)
    return allowed | eye


class AttentionBlock(nn.Module):
    """Multi-head self-attention + residual + LayerNorm, then a position-wise feed-forward."""

    def __init__(self, d_model: int, heads: int, ffn_mult: int, dropout: float):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} must be divisible by attn_heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout
        self.norm = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, ffn_mult, dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        batch, length, d = x.shape
        q, k, v = (
            t.view(batch, length, self.heads, d // self.heads).transpose(1, 2)
            for t in self.qkv(x).chunk(3, dim=-1)
        )
        attn = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed, dropout_p=self.attn_dropout if self.training else 0.0
        )
        attn = attn.transpose(1, 2).reshape(batch, length, d)
        x = self.norm(x + self.dropout(self.out(attn)))
        return self.ffn(x)
