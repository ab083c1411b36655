"""SASRec (Kang & McAuley, 2018): causal self-attention over the history."""

from __future__ import annotations

import torch
from torch import nn

from rar.retrievers.attention import AttentionBlock, attention_mask
from rar.retrievers.base import Retriever
from rar.retrievers.layers import pad_mask, positions_from_end
from rar.retrievers.retriever_config import RetrieverConfig


class SASRec(Retriever):
    """Causal transformer; positions are counted from the newest item so padding never moves them."""

    causal_attention = True

    def __init__(self, config: RetrieverConfig, item_vectors: torch.Tensor):
        super().__init__(config, item_vectors)
        d = config.d_model
        self.position = nn.Embedding(config.max_len + 1, d)
        nn.init.normal_(self.position.weight, std=0.02)
        self.input_norm = nn.LayerNorm(d)
        self.input_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            AttentionBlock(d, config.attn_heads, config.ffn_mult, config.dropout)
            for _ in range(config.n_layers)
        )

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.items.embed_tokens(tokens)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = pad_mask(tokens).to(self.items.vectors.dtype)
        positions = positions_from_end(tokens).clamp(max=self.position.num_embeddings - 1)
        x = self.embed(tokens) + self.position(positions)
        x = self.input_dropout(self.input_norm(x))
        allowed = attention_mask(tokens, causal=self.causal_attention)
        for block in self.blocks:
            x = block(x * mask, allowed)
        return x
