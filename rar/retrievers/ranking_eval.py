"""Leave-last-out evaluation: top-k over all corpus items (history masked), scored with the
project's shared metrics (`rar.metrics`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from rar.metrics import sample_metrics
from rar.retrievers.base import mask_history
from rar.retrievers.sequences import left_pad

METRIC_KS = (10, 20)


TopK = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def ranked_rows(
    topk: TopK,
    histories: Sequence[Sequence[int]],
    k: int,
    batch_size: int = 256,
    max_len: int | None = None,
    on_batch: Callable[[int], object] | None = None,
) -> list[list[int]]:
    """Top-k corpus rows per token history (history items excluded), in batches: the one
    batched top-k loop (pretraining evaluation here, `rar.pipeline.retrieve` for the rest).

    `topk(tokens, k)` returns ([B, k] rows, scores) like `Retriever.topk`; rows of -1 (a
    baseline with fewer than k unmasked items) are dropped; `max_len` keeps the newest tokens."""
    out: list[list[int]] = []
    for start in range(0, len(histories), batch_size):
        chunk = histories[start : start + batch_size]
        history = left_pad([list(h)[-max_len:] if max_len else h for h in chunk])
        rows, _ = topk(history, k)
        out.extend([r for r in row if r >= 0] for row in rows.tolist())
        if on_batch is not None:
            on_batch(len(chunk))
    return out


def score_topk(score_fn: Callable[[torch.Tensor], torch.Tensor]) -> TopK:
    """A `topk` over a [B, N] score function, history masked."""

    def topk(history: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        scores = mask_history(score_fn(history), history)
        values, rows = scores.topk(min(k, scores.shape[1]), dim=1)
        return rows, values

    return topk


def ranking_metrics(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    histories: Sequence[Sequence[int]],
    targets: Sequence[int],
    batch_size: int = 256,
    ks: Sequence[int] = METRIC_KS,
) -> dict[str, float]:
    """Mean NDCG@k and Recall@k of predicting each target token from its history."""
    if not histories:
        return {f"{m}@{k}": 0.0 for k in ks for m in ("ndcg", "recall")}
    rows = ranked_rows(score_topk(score_fn), histories, max(ks), batch_size)
    per_sample = sample_metrics(rows, [[t - 1] for t in targets], ks=tuple(ks))
    return {
        f"{m}@{k}": float(per_sample[f"{m}@{k}"].mean()) for k in ks for m in ("ndcg", "recall")
    }


def popularity_scores(train_sequences: Sequence[Sequence[int]], num_items: int) -> torch.Tensor:
    """Training-set item counts [N] (+ a tiny row-order tie-break), the popularity baseline."""
    counts = np.zeros(num_items, dtype=np.float64)
    for seq in train_sequences:
        np.add.at(counts, np.asarray(seq, dtype=np.int64) - 1, 1.0)
    counts -= np.arange(num_items) * 1e-9
    return torch.from_numpy(counts)
