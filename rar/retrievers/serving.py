"""Top-k serving through a FAISS inner-product index over the projected item table.

History items are excluded by over-fetching k + len(history) neighbours and filtering, which
is exact: at most len(history) of the fetched rows can be history items. A learned item bias
b is folded into the inner product: index rows are [item, b_i] and queries [user, 1], so
<[u, 1], [v_i, b_i]> = <u, v_i> + b_i and the search stays exact.
"""

from __future__ import annotations

import faiss
import numpy as np
import torch

from rar.retrievers.base import Retriever


class FaissTopK:
    """Exact inner-product top-k over a retriever's item table (rebuild after training steps)."""

    def __init__(self, model: Retriever):
        self.model = model
        self.refresh()

    def refresh(self) -> None:
        """(Re)build the index from the model's current item table."""
        with torch.no_grad():
            fusion = self.model.fusion.as_dict()
            model = self.model
            if model.config.towers != "item" or model.cooc is not None or model.links.is_built:
                raise ValueError(
                    "FAISS serving covers the item tower only (towers: item, no prior, no "
                    "metadata links)"
                )
            table = self.model.item_table().detach().float().cpu() * fusion["item"]
            bias = self.model.item_bias()
            bias = None if bias is None else bias * fusion["bias"]
            self.with_bias = bias is not None
            if bias is not None:
                table = torch.cat([table, bias.detach().float().cpu()[:, None]], dim=1)
            rows = table.numpy()
        self.index = faiss.IndexFlatIP(rows.shape[1])
        self.index.add(np.ascontiguousarray(rows))

    @torch.no_grad()
    def topk(self, history: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k corpus rows [B, k] and scores [B, k] per history, history items excluded.

        Rows are -1 (score -inf) when fewer than k items remain."""
        history = self.model.check_tokens(history)
        states = self.model.encode(history).float().cpu()
        if self.with_bias:
            states = torch.cat([states, states.new_ones(len(states), 1)], dim=1)
        queries = np.ascontiguousarray(states.numpy())
        fetch = min(k + history.shape[1], self.index.ntotal)
        scores, rows = self.index.search(queries, fetch)
        out_rows = np.full((len(queries), k), -1, dtype=np.int64)
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        seen = history.cpu().numpy() - 1
        for b in range(len(queries)):
            exclude = set(seen[b][seen[b] >= 0].tolist())
            kept = [
                (r, s)
                for r, s in zip(rows[b], scores[b], strict=True)
                if r >= 0 and r not in exclude
            ][:k]
            if kept:
                out_rows[b, : len(kept)] = [r for r, _ in kept]
                out_scores[b, : len(kept)] = [s for _, s in kept]
        return out_rows, out_scores
