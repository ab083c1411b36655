"""Item table = learned projection of frozen corpus text vectors (+ optional ID embedding),
plus an optional learned per-item output bias.

Projecting text vectors (instead of a free embedding per item) lets the retriever score every
corpus movie, including ones never seen in training (cold start). The bias lets it learn item
popularity, which a projection of text vectors cannot express; it starts at zero, so items
never seen in training keep a neutral bias.
"""

from __future__ import annotations

import torch
from torch import nn


class ItemEncoder(nn.Module):
    """Maps tokens (corpus row + 1, 0 = pad) to d-dimensional item vectors."""

    vectors: torch.Tensor  # buffers, registered in __init__
    seen: torch.Tensor

    def __init__(
        self,
        item_vectors: torch.Tensor,
        d_model: int,
        use_id_embedding: bool = False,
        item_bias: bool = False,
        bias_scale: float = 1.0,
    ):
        super().__init__()
        if item_vectors.ndim != 2:
            raise ValueError(
                f"item_vectors must be a 2-D [N, d_text] tensor, got shape {tuple(item_vectors.shape)}"
            )
        self.num_items = int(item_vectors.shape[0])
        self.d_text = int(item_vectors.shape[1])
        self.d_model = d_model
        # Frozen text vectors: a buffer (moves with .to(), not trained, not saved in checkpoints).
        self.register_buffer(
            "vectors", item_vectors.detach().float().contiguous(), persistent=False
        )
        self.proj = nn.Linear(self.d_text, d_model)
        self.use_id_embedding = use_id_embedding
        if use_id_embedding:
            self.id_embedding = nn.Embedding(self.num_items, d_model)
            nn.init.normal_(self.id_embedding.weight, std=0.02)
            # Items never seen in training keep a zero ID part, so cold-start items are text-only.
            self.register_buffer("seen", torch.zeros(self.num_items, dtype=torch.bool))
        # Score of item i = <user, table[i]> + bias_scale * bias[i]; zeros = no effect until
        # trained. Adam moves each parameter by about lr per step whatever its gradient scale,
        # so bias_scale multiplies the bias's effective learning rate: log-popularity spans
        # several nats, more than a few hundred steps at lr 1e-3 could otherwise reach.
        self.bias = nn.Parameter(torch.zeros(self.num_items)) if item_bias else None
        self.bias_scale = float(bias_scale)
        self._cache: tuple[tuple, torch.Tensor] | None = None

    def mark_seen(self, rows: torch.Tensor) -> None:
        """Record corpus rows seen in training (only they get an ID embedding)."""
        if self.use_id_embedding:
            self.seen[rows.to(self.seen.device)] = True

    def embed_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Vectors of corpus rows (any shape of row indices) -> [..., d]."""
        out = self.proj(self.vectors[rows])
        if self.use_id_embedding:
            out = out + self.id_embedding(rows) * self.seen[rows].unsqueeze(-1).to(out.dtype)
        return out

    def bias_values(self) -> torch.Tensor | None:
        """The output bias of every item [N] (bias_scale * parameter), or None without a bias."""
        return None if self.bias is None else self.bias * self.bias_scale

    def bias_rows(self, rows: torch.Tensor) -> torch.Tensor | None:
        """Output bias of corpus rows (any shape), or None when the model has no bias."""
        return None if self.bias is None else self.bias[rows] * self.bias_scale

    def score(
        self, hidden: torch.Tensor, rows: torch.Tensor | None = None, with_bias: bool = True
    ) -> torch.Tensor:
        """Scores <hidden, item> (+ bias) of every item ([..., N]) or of the given 1-D `rows`."""
        table = self.table() if rows is None else self.embed_rows(rows)
        out = hidden @ table.T
        if not with_bias:
            return out
        bias = self.bias_values() if rows is None else self.bias_rows(rows)
        return out if bias is None else out + bias.to(out.dtype)

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (row + 1, 0 = pad) -> [..., d] with exact zeros at padding."""
        rows = (tokens - 1).clamp(min=0)
        pad = (tokens == 0).unsqueeze(-1)
        return self.embed_rows(rows).masked_fill(pad, 0.0)

    def _table_tensors(self) -> list[torch.Tensor]:
        """What the table depends on (the bias is not part of it: it is read live)."""
        out: list[torch.Tensor] = list(self.proj.parameters())
        if self.use_id_embedding:
            out += [self.id_embedding.weight, self.seen]
        return out

    def _cache_key(self) -> tuple:
        params = self._table_tensors()
        return tuple((id(p), p._version, p.device, p.dtype) for p in params)

    def table(self) -> torch.Tensor:
        """All N item vectors [N, d]. Cached outside autograd until a parameter changes."""
        if torch.is_grad_enabled() and any(p.requires_grad for p in self._table_tensors()):
            return self.embed_rows(torch.arange(self.num_items, device=self.vectors.device))
        key = self._cache_key()
        if self._cache is None or self._cache[0] != key:
            rows = torch.arange(self.num_items, device=self.vectors.device)
            self._cache = (key, self.embed_rows(rows).detach())
        return self._cache[1]
