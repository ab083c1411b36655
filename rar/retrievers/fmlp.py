"""FMLP-Rec (Zhou et al., WWW 2022): all-MLP blocks with a learnable frequency-domain filter.

The original filters the sequence circularly, which lets position t see later items under
shifted-sequence training. Here the learnable frequency response is turned into a causal
kernel (its first max_len taps) and applied as a linear convolution through the FFT
(zero-padded to 2 * max_len), so outputs depend only on the past and never on padding.
"""

from __future__ import annotations

import torch
from torch import nn

from rar.retrievers.base import Retriever
from rar.retrievers.layers import FeedForward, pad_mask, positions_from_end
from rar.retrievers.retriever_config import RetrieverConfig


class FilterLayer(nn.Module):
    """Learnable complex filter over 2*max_len frequencies, applied causally, + residual + LayerNorm."""

    def __init__(self, d_model: int, max_len: int, dropout: float):
        super().__init__()
        self.max_len = max_len
        self.n_fft = 2 * max_len
        self.weight = nn.Parameter(torch.randn(self.n_fft // 2 + 1, d_model, 2) * 0.02)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)

    def kernel(self) -> torch.Tensor:
        """Causal impulse response [max_len, d] of the learned frequency response."""
        response = torch.view_as_complex(self.weight)
        return torch.fft.irfft(response, n=self.n_fft, dim=0)[: self.max_len]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds max_len {self.max_len}")
        x = x * mask
        spectrum = torch.fft.rfft(x, n=self.n_fft, dim=1)
        kernel = torch.fft.rfft(self.kernel().to(x.dtype), n=self.n_fft, dim=0)
        y = torch.fft.irfft(spectrum * kernel, n=self.n_fft, dim=1)[:, :length]
        return self.norm(x + self.dropout(y))


class FMLPRec(Retriever):
    """Item + position embeddings, then (filter layer, feed-forward) blocks."""

    def __init__(self, config: RetrieverConfig, item_vectors: torch.Tensor):
        super().__init__(config, item_vectors)
        d = config.d_model
        self.position = nn.Embedding(config.max_len + 1, d)
        nn.init.normal_(self.position.weight, std=0.02)
        self.input_norm = nn.LayerNorm(d)
        self.input_dropout = nn.Dropout(config.dropout)
        self.filters = nn.ModuleList(
            FilterLayer(d, config.max_len, config.dropout) for _ in range(config.n_layers)
        )
        self.ffns = nn.ModuleList(
            FeedForward(d, config.ffn_mult, config.dropout) for _ in range(config.n_layers)
        )

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = pad_mask(tokens).to(self.items.vectors.dtype)
        positions = positions_from_end(tokens).clamp(max=self.position.num_embeddings - 1)
        x = self.items.embed_tokens(tokens) + self.position(positions)
        x = self.input_dropout(self.input_norm(x))
        for filt, ffn in zip(self.filters, self.ffns, strict=True):
            x = ffn(filt(x, mask))
        return x
