"""Fit a baseline on a dataset's training split, choosing its hyperparameters on validation.

The splits are the ones the trainers and `rar evaluate` use (`rar.data.registry`, dialogue-level
hash splits), linked to the corpus the same way. Every grid point is fitted on train and scored
(N@10 over the top-k) on val only; the test split is never read here. The grid and its scores
are returned so the caller can log and save them.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rar.baselines.base import Baseline
from rar.baselines.registry import baseline_class, build_baseline
from rar.errors import InputError

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.data.linking import LinkedSample

log = logging.getLogger(__name__)

SELECTION_METRIC = "ndcg@10"


@dataclass
class FittedBaseline:
    """A fitted baseline and how it was chosen."""

    baseline: Baseline
    dataset: str
    params: dict[str, Any]
    train_samples: int
    val_samples: int
    metric: str = SELECTION_METRIC
    grid: list[dict[str, Any]] = field(default_factory=list)  # {"params", metric} per point

    def source(self) -> str:
        """One line for the evaluation's `source` field: what it was fitted and chosen on."""
        b = self.baseline
        chosen = (
            f"chosen on {self.dataset}/val {_short(self.metric)} over {len(self.grid)} settings"
            if self.grid
            else "defaults"
        )
        params = b.describe()
        return (
            f"baseline {b.name} fitted on {self.dataset}/{b.fit_split} "
            f"({self.train_samples:,} samples, {len(b.fit_dialogues):,} dialogues)"
            + (f"; {params}" if params else "")
            + f"; {chosen}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.name,
            "dataset": self.dataset,
            "fit_split": self.baseline.fit_split,
            "fit_dialogues": len(self.baseline.fit_dialogues),
            "train_samples": self.train_samples,
            "val_samples": self.val_samples,
            "params": self.params,
            "selection_metric": self.metric,
            "grid": self.grid,
        }


def _short(metric: str) -> str:
    family, _, cut = metric.partition("@")
    return {"ndcg": "N", "recall": "R"}.get(family, family) + (f"@{cut}" if cut else "")


def grid_points(grid: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in a fixed order (empty grid: one point)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def validation_score(
    baseline: Baseline,
    val: Sequence[LinkedSample],
    corpus: Corpus,
    k: int,
    metric: str = SELECTION_METRIC,
) -> float:
    """Mean `metric` of the fitted baseline's top-k on the validation samples."""
    from rar.metrics import sample_metrics

    family, _, cut = metric.partition("@")
    rankings = baseline.recommend(val, corpus, k)
    per_sample = sample_metrics(rankings, [v.target_ids for v in val], ks=(int(cut),))
    return float(np.mean(per_sample[metric]))


def select_on_validation(
    name: str,
    train: Sequence[LinkedSample],
    val: Sequence[LinkedSample],
    corpus: Corpus,
    k: int = 25,
    params: dict[str, Any] | None = None,
    grid: dict[str, Sequence[Any]] | None = None,
    dataset: str = "",
    metric: str = SELECTION_METRIC,
) -> FittedBaseline:
    """Fit every grid point (over `params`) on `train`, keep the best on `val` (first on ties).

    `grid` None = the class's own small grid; `{}` = no search (fit `params` as given)."""
    cls = baseline_class(name)
    grid = cls.grid if grid is None else grid
    base = dict(params or {})
    dataset = dataset or (train[0].sample.dataset if train else "")
    if not val and grid:
        raise InputError(f"{cls.label}: no validation samples to choose its hyperparameters on")
    rows: list[dict[str, Any]] = []
    best: tuple[float, Baseline, dict[str, Any]] | None = None
    points = grid_points(grid) if grid else []
    for point in points:
        chosen = {**base, **point}
        model = build_baseline(cls.name, chosen).fit(train, corpus, split="train")
        score = validation_score(model, val, corpus, k, metric)
        rows.append({"params": chosen, metric: score})
        log.info("%s %s: val %s = %.4f", cls.label, chosen, metric, score)
        if best is None or score > best[0]:
            best = (score, model, chosen)
    if best is None:
        model = build_baseline(cls.name, base).fit(train, corpus, split="train")
        best = (float("nan"), model, base)
    _, model, chosen = best
    full = model.config.model_dump(exclude={"max_len"})
    if points:
        log.info("%s: chose %s on %s/val (%s)", cls.label, full, dataset, metric)
    return FittedBaseline(model, dataset, full, len(train), len(val), metric, rows)


def fit_on_dataset(
    name: str,
    dataset: str,
    data_dir: str | Path,
    corpus: Corpus,
    k: int = 25,
    params: dict[str, Any] | None = None,
    tune: bool = True,
    match_threshold: float = 0.85,
) -> FittedBaseline:
    """Load and link `dataset`'s train and val splits from `data_dir`, then
    :func:`select_on_validation` (`tune=False`: fit `params` on train, no search)."""
    from rar.data.linking import MentionLinker, link_samples
    from rar.data.registry import load_conversation_samples

    linker = MentionLinker(corpus, match_threshold)
    splits = {}
    for split in ("train", "val") if tune else ("train",):
        raw = load_conversation_samples(dataset, Path(data_dir), split)
        splits[split], _ = link_samples(raw, corpus, match_threshold, linker)
    return select_on_validation(
        name,
        splits["train"],
        splits.get("val", []),
        corpus,
        k=k,
        params=params,
        grid=None if tune else {},
        dataset=dataset,
    )
