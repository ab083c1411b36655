"""Validation/test through the full pipeline: deterministic retriever top-k -> ranker -> metrics.

Model selection in RL post-training must look at what the user gets (the ranker's output),
not at the retriever's own order; both are reported. A sample whose ranker call failed is a
miss in the pipeline metrics (never its retriever-order fallback) and is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rar.data.linking import LinkedSample
from rar.evaluation.failed_calls import first_error, scored_ranking
from rar.rankers.types import RankRequest
from rar.rl.batches import make_batch


@dataclass
class PipelineResult:
    metrics: dict[str, float]  # e.g. "ndcg@10" (pipeline) and "retriever/ndcg@10"
    per_sample: dict[str, np.ndarray]  # same keys, one value per sample
    sample_ids: list[str]
    ranker_failures: int
    first_error: str | None = None  # one failed call's message, to show the user


@torch.no_grad()
def evaluate_pipeline(
    model: torch.nn.Module,
    samples: Sequence[LinkedSample],
    ranker,
    corpus_ids: Sequence[str],
    row_of: dict[str, int],
    k: int,
    ks: Sequence[int] = (5, 10),
    batch_size: int = 128,
) -> PipelineResult:
    """Top-k candidates per sample (eval mode, no sampling), ranked by `ranker`; metrics at `ks`."""
    from rar.metrics import sample_metrics

    was_training = model.training
    model.eval()
    candidates: list[list[str]] = []
    try:
        for start in range(0, len(samples), batch_size):
            batch = make_batch(samples[start : start + batch_size], row_of, model.config.max_len)
            rows, _ = model.topk(batch.history, k)
            candidates.extend([[corpus_ids[r] for r in row] for row in rows.tolist()])
    finally:
        model.train(was_training)
    requests = [
        RankRequest(s.sample.sample_id, s.sample.context, cands)
        for s, cands in zip(samples, candidates, strict=True)
    ]
    results = ranker.rank(requests) if requests else []
    targets = [s.target_ids for s in samples]
    ks = tuple(ks)
    # the ranker's own ranking: a label an LLM did not output is a miss (parser.score_appended),
    # and so is every label of a failed call
    pipe = sample_metrics([scored_ranking(r) for r in results], targets, ks=ks)
    retr = sample_metrics(candidates, targets, ks=ks)
    per_sample: dict[str, np.ndarray] = {}
    for name, values in pipe.items():
        per_sample[name] = np.asarray(values, dtype=float)
    for name, values in retr.items():
        per_sample[f"retriever/{name}"] = np.asarray(values, dtype=float)
    metrics = {name: float(v.mean()) if len(v) else 0.0 for name, v in per_sample.items()}
    failures = sum(1 for r in results if r.error is not None)
    metrics["ranker_failures"] = float(failures)
    cands_total = sum(len(c) for c in candidates)
    appended = sum(r.n_appended for r in results)
    metrics["ranker_appended_share"] = appended / cands_total if cands_total else 0.0
    metrics["ranker_failed_share"] = failures / len(results) if results else 0.0
    return PipelineResult(
        metrics, per_sample, [s.sample.sample_id for s in samples], failures, first_error(results)
    )
