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


@torch.no_grad()
def ranked_rows(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    histories: Sequence[Sequence[int]],
    k: int,
    batch_size: int = 256,
) -> np.ndarray:
    """[n, k] top-k corpus rows per history (history items excluded)."""
    out = []
    for start in range(0, len(histories), batch_size):
        history = left_pad(histories[start : start + batch_size])
        scores = mask_history(score_fn(history), history)
        out.append(scores.topk(min(k, scores.shape[1]), dim=1).indices.numpy())
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


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
    rows = ranked_rows(score_fn, histories, max(ks), batch_size)
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
