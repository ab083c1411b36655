"""BERT4Rec (Sun et al., 2019): bidirectional attention trained by predicting masked items.

At inference a mask token is appended to the history and its output is the user state.
The mask token is token N + 1 (one past the last corpus row) with its own learned vector.
"""

from __future__ import annotations

import torch
from torch import nn

from rar.retrievers.retriever_config import RetrieverConfig
from rar.retrievers.sasrec import SASRec


class BERT4Rec(SASRec):
    """Bidirectional transformer with a learned [MASK] item."""

    causal = False
    causal_attention = False

    def __init__(self, config: RetrieverConfig, item_vectors: torch.Tensor):
        super().__init__(config, item_vectors)
        self.mask_vector = nn.Parameter(torch.randn(config.d_model) * 0.02)

    @property
    def mask_token(self) -> int:
        return self.num_items + 1

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        is_mask = tokens == self.mask_token
        x = self.items.embed_tokens(tokens.masked_fill(is_mask, 0))
        return torch.where(is_mask.unsqueeze(-1), self.mask_vector.to(x.dtype), x)

    def encode(self, history: torch.Tensor) -> torch.Tensor:
        history = self.check_tokens(history)[:, -(self.config.max_len - 1) :]
        mask = torch.full_like(history[:, :1], self.mask_token)
        return self.hidden_states(torch.cat([history, mask], dim=1))[:, -1]

    def training_pairs(
        self, sequences: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask a random `mask_prob` of items and always the last one (matches inference)."""
        real = sequences > 0
        draw = torch.rand(sequences.shape, generator=generator, device=sequences.device)
        masked = real & (draw < self.config.mask_prob)
        masked[:, -1] = real[:, -1]
        inputs = sequences.masked_fill(masked, self.mask_token)
        targets = sequences.masked_fill(~masked, 0)
        return inputs, targets
