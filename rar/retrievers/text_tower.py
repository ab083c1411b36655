"""The text tower: score every corpus movie by how well its text matches the conversation.

Why: the item tower (LRURec) reads only the movies named so far, so a movie never named in
training (cold) is unreachable and a critique ("something darker") changes nothing. This tower
reads the turns themselves. Each turn is a frozen sentence vector (`turn_encoder.py`, the model
that made the corpus vectors); learned weights per (position from the end, role) pool them into
one conversation vector c, a learned linear map (zero-initialised residual, so training starts
from plain cosine similarity) turns it into a query q = c + cM, and movie i scores
scale * <q, v_i> with v_i its frozen text vector. Cold movies have text vectors like every
other movie, so they are reachable; the map learns which texts lead to which movies.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rar.corpus.turn_encoder import ROLE_IDS, TurnVectors


class TextTower(nn.Module):
    """Conversation turns -> scores over the corpus text vectors."""

    def __init__(
        self,
        d_text: int,
        max_turns: int = 16,
        scale: float = 10.0,
        recency_decay: float = 0.8,
        recommender_weight: float = 0.5,
    ):
        super().__init__()
        self.max_turns = int(max_turns)
        # pooling logits per (position from the end, role): init = a recency and seeker prior
        pos = torch.arange(self.max_turns, dtype=torch.float32)[:, None]
        role = torch.zeros(1, len(ROLE_IDS) + 1)
        role[0, ROLE_IDS["recommender"]] = math.log(recommender_weight)
        self.turn_logits = nn.Parameter(pos * math.log(recency_decay) + role)
        self.mix = nn.Linear(d_text, d_text, bias=False)
        nn.init.zeros_(self.mix.weight)
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))

    def conversation(self, turns: TurnVectors) -> torch.Tensor:
        """[B, D] unit conversation vectors (zeros for a conversation with no text)."""
        vectors, roles = turns.vectors, turns.roles
        width = roles.shape[1]
        from_end = (width - 1 - torch.arange(width, device=roles.device)).clamp(
            max=self.max_turns - 1
        )
        logits = self.turn_logits[from_end[None, :].expand_as(roles), roles]
        logits = logits.masked_fill(roles == 0, float("-inf"))
        empty = (roles == 0).all(dim=1, keepdim=True)
        weights = torch.softmax(logits.masked_fill(empty, 0.0), dim=1).masked_fill(empty, 0.0)
        pooled = (weights.unsqueeze(-1) * vectors.to(weights.dtype)).sum(dim=1)
        return nn.functional.normalize(pooled, dim=-1)

    def query(self, turns: TurnVectors) -> torch.Tensor:
        """[B, D] query q = scale * (c + cM)."""
        c = self.conversation(turns)
        return (c + self.mix(c)) * self.log_scale.exp()

    def scores(self, turns: TurnVectors, item_vectors: torch.Tensor) -> torch.Tensor:
        """[B, N] scale * <q, v_i> for every corpus row i."""
        return self.query(turns) @ item_vectors.T
