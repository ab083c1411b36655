"""The retrieval ceiling and accuracy on cold targets, reported beside N@10.

Why: a ranker can only reorder what retrieval found, so R@25 and R@50 of a source's own top-k
bound every system built on it; and a movie that was never a training target ("cold") can only
be found through its text, so N@10 on the rows whose targets are all cold shows whether a
system can recommend anything it was not trained to repeat.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rar.pipeline import retrieve, score
from rar.retrievers.retrieval_batch import CandidateSource

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.data.linking import LinkedSample

CEILING_KS = (25, 50)


def training_targets(dataset: str, data_dir: Any, corpus: Corpus) -> set[str]:
    """Corpus ids that are a target of some linked sample of the dataset's training split."""
    from rar.data.linking import link_samples
    from rar.data.registry import load_conversation_samples

    linked, _ = link_samples(load_conversation_samples(dataset, data_dir, "train"), corpus)
    return {cid for item in linked for cid in item.target_ids}


def cold_mask(targets: Iterable[Sequence[str]], seen_targets: set[str]) -> np.ndarray:
    """True for rows whose targets are all cold (never a training target)."""
    return np.array([all(t not in seen_targets for t in row) for row in targets], dtype=bool)


def cold_mean(records: Sequence[dict[str, Any]], seen: set[str], metric: str = "ndcg@10") -> float:
    """Mean `metric` over an evaluation's rows whose targets are all cold (nan when none)."""
    mask = cold_mask((r["targets"] for r in records), seen)
    if not mask.any():
        return float("nan")
    values = np.array([r["metrics"][metric] for r in records], dtype=float)
    return float(values[mask].mean())


def retrieval_ceiling(
    source: CandidateSource,
    linked: Sequence[LinkedSample],
    corpus: Corpus,
    ks: Sequence[int] = CEILING_KS,
    progress: bool = False,
) -> dict[str, float]:
    """Recall@k of the source's own top-max(ks): the share of targets any ranker could place."""
    candidates = retrieve(source, linked, corpus, max(ks), progress=progress)
    per_sample = score(candidates, linked, ks)
    return {f"recall@{k}": float(per_sample[f"recall@{k}"].mean()) for k in ks}
