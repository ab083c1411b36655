"""The interface every retriever shares: encode a history, score the whole corpus, take top-k.

Token convention: corpus row i <-> token i + 1; 0 is padding; histories are left-padded so the
most recent item is always at the last position.
"""

from __future__ import annotations

import torch
from torch import nn

from rar.retrievers.item_encoder import ItemEncoder
from rar.retrievers.retriever_config import RetrieverConfig


class Retriever(nn.Module):
    """Base class: subclasses implement :meth:`hidden_states` (one output per position)."""

    #: whether position t's output only depends on positions <= t (shifted-sequence training).
    causal: bool = True

    def __init__(self, config: RetrieverConfig, item_vectors: torch.Tensor):
        super().__init__()
        self.config = config
        self.items = ItemEncoder(
            item_vectors,
            config.d_model,
            config.use_id_embedding,
            config.item_bias,
            config.item_bias_scale,
        )

    @property
    def num_items(self) -> int:
        return self.items.num_items

    # ---- to implement -------------------------------------------------------------------
    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, L] tokens (left-padded) -> [B, L, d] outputs; padding must not affect real positions."""
        raise NotImplementedError

    # ---- shared -------------------------------------------------------------------------
    def check_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Validate a token batch: 2-D integer tensor with values in [0, N]."""
        if tokens.ndim != 2:
            raise ValueError(f"history must be a [B, L] tensor, got shape {tuple(tokens.shape)}")
        if tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"history must hold integer tokens, got dtype {tokens.dtype}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) > self.num_items):
            raise ValueError(
                f"history tokens must be in [0, {self.num_items}] (corpus row + 1, 0 = pad); "
                f"got values in [{int(tokens.min())}, {int(tokens.max())}]"
            )
        if tokens.shape[1] == 0:  # empty histories: one padding column, so there is a last position
            tokens = tokens.new_zeros(tokens.shape[0], 1)
        return tokens.long()

    def truncate(self, history: torch.Tensor) -> torch.Tensor:
        """Keep the most recent `max_len` positions (left padding keeps the newest at the end)."""
        return history[:, -self.config.max_len :]

    def encode(self, history: torch.Tensor) -> torch.Tensor:
        """[B, L] left-padded history -> [B, d] user state (the output at the last position)."""
        history = self.truncate(self.check_tokens(history))
        return self.hidden_states(history)[:, -1]

    def item_table(self) -> torch.Tensor:
        """[N, d] vectors of every corpus item (row i = corpus row i), without the bias."""
        return self.items.table()

    def item_bias(self) -> torch.Tensor | None:
        """[N] learned output bias per corpus item, or None (config.item_bias = false)."""
        return self.items.bias_values()

    def score_states(self, states: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of user states [..., d] against every item ([..., N]) or the 1-D `rows`:
        <state, item_table[i]> + item_bias[i]. Every scoring path goes through here."""
        return self.items.score(states, rows)

    def logits(self, history: torch.Tensor) -> torch.Tensor:
        """[B, N] raw scores over the corpus, history items NOT masked (for losses)."""
        return self.score_states(self.encode(history))

    def scores(self, history: torch.Tensor) -> torch.Tensor:
        """[B, N] scores over the whole corpus with items already in the history set to -inf."""
        history = self.check_tokens(history)
        return mask_history(self.logits(history), history)

    @torch.no_grad()
    def topk(self, history: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact top-k corpus rows (not tokens) and their scores, history excluded: ([B, k], [B, k])."""
        history = self.check_tokens(history)
        scores = self.logits(history)
        batch, pos = (history > 0).nonzero(as_tuple=True)
        scores[batch, history[batch, pos] - 1] = float("-inf")  # in place: no second [B, N] copy
        k = min(k, scores.shape[1])
        values, rows = scores.topk(k, dim=1)
        return rows, values

    def training_pairs(
        self, sequences: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shifted-sequence training: input positions :-1 predict the next item (targets 0 = ignore)."""
        return sequences[:, :-1], sequences[:, 1:]


def mask_history(scores: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
    """Set the scores of history items to -inf (padding tokens are ignored)."""
    rows = (history - 1).clamp(min=0)
    fill = torch.where(history > 0, float("-inf"), 0.0).to(scores.dtype)
    # scatter_add of -inf on pad rows would be 0 + 0; real rows get -inf.
    return scores.scatter_add(1, rows, fill)
