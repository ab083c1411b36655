"""Next-item NLL: sampled softmax (uniform + in-batch negatives, as in the paper) or full softmax."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rar.errors import InputError
from rar.retrievers.base import Retriever


def next_item_loss(
    model: Retriever,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss: str = "sampled",
    num_negatives: int = 100,
    in_batch_negatives: bool = True,
    max_in_batch: int = 1024,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean NLL of the target token at every position with targets > 0.

    sampled: softmax over {target} + `num_negatives` uniform corpus rows + the batch's other
    targets (accidental hits of the target are removed); full_softmax: over every corpus item.
    """
    hidden = model.hidden_states(inputs)
    valid = targets > 0
    if not bool(valid.any()):
        raise ValueError("batch has no target items")
    h = hidden[valid]
    target_rows = targets[valid] - 1
    if loss == "full_softmax":
        return F.cross_entropy(model.score_states(h), target_rows)
    if loss != "sampled":
        raise ValueError(f"unknown loss '{loss}'; expected 'sampled' or 'full_softmax'")
    negatives = []
    if num_negatives:
        negatives.append(
            torch.randint(0, model.num_items, (num_negatives,), generator=generator).to(h.device)
        )
    if in_batch_negatives:
        batch_rows = target_rows.unique()
        if len(batch_rows) > max_in_batch:
            pick = torch.randperm(len(batch_rows), generator=generator)[:max_in_batch]
            batch_rows = batch_rows[pick.to(batch_rows.device)]
        negatives.append(batch_rows)
    if not negatives:
        raise InputError("sampled loss needs num_negatives > 0 or in_batch_negatives")
    neg_rows = torch.cat(negatives).unique()
    positive = (h * model.items.embed_rows(target_rows)).sum(-1, keepdim=True)
    target_bias = model.items.bias_rows(target_rows)
    if target_bias is not None:
        positive = positive + target_bias.unsqueeze(-1).to(positive.dtype)
    negative = model.score_states(h, neg_rows)
    negative = negative.masked_fill(neg_rows[None, :] == target_rows[:, None], float("-inf"))
    logits = torch.cat([positive, negative], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=h.device))
