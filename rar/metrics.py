"""Top-k ranking metrics, their aggregate with uncertainty, and a paired bootstrap between systems.

Conventions (the paper's): relevance is binary (an item is a target or not); a sample may have
several targets and must have at least one; ranks are 1-based; an id repeated in a ranking
counts once, at its first position; a ranking shorter than k is a miss past its end.

- Recall@k   = (# targets in the top k) / (# targets)
- HitRate@k  = 1 if any target is in the top k, else 0
- MRR@k      = 1 / rank of the first target in the top k, 0 if none
- NDCG@k     = DCG@k / IDCG@k with DCG@k = sum over target ranks r <= k of 1 / log2(r + 1) and
               IDCG@k = sum_{r=1}^{min(#targets, k)} 1 / log2(r + 1) (all targets at the top).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Z_95 = 1.959963984540054  # two-sided 95% normal quantile

METRIC_NAMES = ("recall", "ndcg", "mrr", "hit")


def _check_k(k: int) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _target_set(targets: Collection[Any], where: str = "") -> set[Any]:
    target_set = set(targets)
    if not target_set:
        raise ValueError(f"sample{where} has no targets; metrics need at least one")
    return target_set


def _hit_row(ranked: Iterable[Any], targets: set[Any], k: int) -> np.ndarray:
    """Boolean [k]: position i holds a target seen there for the first time."""
    row = np.zeros(k, dtype=bool)
    seen: set[Any] = set()
    for pos, item in enumerate(ranked):
        if pos >= k:
            break
        if item in targets and item not in seen:
            row[pos] = True
        seen.add(item)
    return row


def recall_at_k(ranked: Sequence[Any], targets: Collection[Any], k: int) -> float:
    """Share of the targets found in the first k ranked items."""
    k, target_set = _check_k(k), _target_set(targets)
    return float(_hit_row(ranked, target_set, k).sum() / len(target_set))


def hit_rate_at_k(ranked: Sequence[Any], targets: Collection[Any], k: int) -> float:
    """1.0 when any target is in the first k ranked items."""
    k, target_set = _check_k(k), _target_set(targets)
    return float(_hit_row(ranked, target_set, k).any())


def mrr_at_k(ranked: Sequence[Any], targets: Collection[Any], k: int) -> float:
    """Reciprocal (1-based) rank of the first target within the first k items, else 0."""
    k, target_set = _check_k(k), _target_set(targets)
    hits = np.flatnonzero(_hit_row(ranked, target_set, k))
    return float(1.0 / (hits[0] + 1)) if len(hits) else 0.0


def ndcg_at_k(ranked: Sequence[Any], targets: Collection[Any], k: int) -> float:
    """Binary-relevance NDCG with the ideal DCG over min(#targets, k) positions."""
    k, target_set = _check_k(k), _target_set(targets)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = discounts[_hit_row(ranked, target_set, k)].sum()
    idcg = discounts[: min(len(target_set), k)].sum()
    return float(dcg / idcg)


def sample_metrics(
    rankings: Sequence[Sequence[Any]] | np.ndarray,
    targets: Sequence[Collection[Any]],
    ks: Sequence[int] = (1, 5, 10, 20),
) -> dict[str, np.ndarray]:
    """Per-sample metrics for many samples: keys ``recall@k``, ``ndcg@k``, ``mrr@k``, ``hit@k``.

    `rankings[i]` is sample i's ranked ids (any hashable ids, any length; a 2-D array works) and
    `targets[i]` its target ids. Each value is a float array of length ``len(rankings)``, so
    ``.mean()`` is the dataset figure and the arrays feed :func:`summarize` and
    :func:`paired_bootstrap`. Raises if a sample has no target or the lengths differ.
    """
    if len(rankings) != len(targets):
        raise ValueError(f"{len(rankings)} rankings but {len(targets)} target lists")
    ks = tuple(_check_k(k) for k in ks)
    if not ks:
        raise ValueError("ks must name at least one cut-off")
    n, max_k = len(targets), max(ks)
    hits = np.zeros((n, max_k), dtype=bool)
    n_targets = np.zeros(n, dtype=np.int64)
    for i, (ranked, tgt) in enumerate(zip(rankings, targets, strict=True)):
        target_set = _target_set(tgt, f" {i}")
        n_targets[i] = len(target_set)
        row = ranked.tolist() if isinstance(ranked, np.ndarray) else ranked
        hits[i] = _hit_row(row, target_set, max_k)

    discounts = 1.0 / np.log2(np.arange(2, max_k + 2))
    ideal_cum = np.cumsum(discounts)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        top = hits[:, :k]
        found = top.sum(axis=1)
        first = np.where(top.any(axis=1), top.argmax(axis=1) + 1, 0)
        idcg = ideal_cum[np.minimum(n_targets, k) - 1] if n else np.zeros(0)
        out[f"recall@{k}"] = found / np.maximum(n_targets, 1)
        out[f"ndcg@{k}"] = (top * discounts[:k]).sum(axis=1) / (idcg if n else 1.0)
        out[f"mrr@{k}"] = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
        out[f"hit@{k}"] = (found > 0).astype(float)
    return out


@dataclass(frozen=True)
class Summary:
    """Mean of per-sample values with its standard error and a 95% normal-approximation CI."""

    mean: float
    se: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {
            "mean": self.mean,
            "se": self.se,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
        }


def _as_values(values: Iterable[float], name: str) -> np.ndarray:
    array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty; nothing to summarise")
    bad = np.flatnonzero(~np.isfinite(array))
    if len(bad):
        raise ValueError(f"{name} has {len(bad)} non-finite values (first at position {bad[0]})")
    return array


def summarize(values: Iterable[float]) -> Summary:
    """Mean, standard error std(ddof=1)/sqrt(n), and 95% CI mean ± 1.96·se (normal approximation).

    With one value the standard error is undefined: se and the CI bounds are NaN.
    """
    array = _as_values(values, "values")
    n = int(array.size)
    mean = float(array.mean())
    se = float(array.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return Summary(mean, se, mean - Z_95 * se, mean + Z_95 * se, n)


def summarize_metrics(per_sample: Mapping[str, Sequence[float] | np.ndarray]) -> dict[str, Summary]:
    """:func:`summarize` each metric of :func:`sample_metrics`."""
    return {name: summarize(values) for name, values in per_sample.items()}


@dataclass(frozen=True)
class BootstrapResult:
    """Mean paired difference a - b, its 95% percentile CI and a two-sided bootstrap p-value."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    n_resamples: int

    def as_dict(self) -> dict[str, float]:
        return {
            "diff": self.diff,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "n": self.n,
            "n_resamples": self.n_resamples,
        }


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> BootstrapResult:
    """Compare two systems scored on the same samples (a[i] and b[i] are sample i).

    Method: d = a - b; draw `n_resamples` resamples of the n samples with replacement
    (numpy Generator, `seed`) and take the mean of d in each. The CI is the 2.5th and 97.5th
    percentile of those means. The two-sided p-value is twice the share of resampled means on
    the far side of 0 from the observed mean (those < 0 when it is positive, > 0 when it is
    negative; means of exactly 0 count half), with the usual +1 correction ``(count + 1) / (n_resamples + 1)`` so it is never
    exactly 0, capped at 1. When every d is 0 the p-value is 1.
    """
    x, y = _as_values(a, "a"), _as_values(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have the same length, got {x.size} and {y.size}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    d = x - y
    n = int(d.size)
    observed = float(d.mean())
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=float)
    chunk = max(1, min(256, 4_000_000 // n))  # resamples per draw: at most ~32 MB of indices
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        means[start : start + size] = d[idx].mean(axis=1)
    ci_low, ci_high = (float(v) for v in np.percentile(means, [2.5, 97.5]))
    if np.all(d == 0):
        p_value = 1.0
    else:
        # Resampled means of exactly 0 (common with sparse metrics: most d are 0) count half on
        # each side; counting them all as "far" would inflate p far beyond what the CI shows.
        beyond = np.count_nonzero(means < 0) if observed > 0 else np.count_nonzero(means > 0)
        far = beyond + 0.5 * np.count_nonzero(means == 0)
        if observed == 0:
            far = n_resamples
        p_value = min(1.0, 2.0 * (far + 1) / (n_resamples + 1))
    return BootstrapResult(observed, ci_low, ci_high, float(p_value), n, int(n_resamples))
