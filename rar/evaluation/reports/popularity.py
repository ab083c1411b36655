"""Popularity-bias report (the paper's Figure 4): accuracy on rare and unseen items, and how
popular the recommended items are compared with the true ones.

Popularity of a movie = the number of training samples of the same dataset whose targets
include it ("unseen" = 0). Each (sample, target) pair is one row, scored by N@10 of the
system's ranking against that target alone (He et al., 2023 convention), so a bucket's N@10
averages over the targets that fall in it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rar.errors import InputError
from rar.evaluation.reports.common import (
    SavedEvaluation,
    default_out_dir,
    find_evaluations,
    md_escape,
    plt,
    write_report,
)
from rar.metrics import ndcg_at_k

if TYPE_CHECKING:
    from rar.corpus import Corpus

DEFAULT_EDGES = (1, 3, 11, 51)  # buckets: 0 | 1-2 | 3-10 | 11-50 | 51+


def bucket_labels(edges: Sequence[int] = DEFAULT_EDGES) -> list[str]:
    labels = ["unseen"]
    for lo, hi in zip(edges, [*edges[1:], None], strict=True):
        labels.append(f"{lo}+" if hi is None else (f"{lo}" if hi - 1 == lo else f"{lo}-{hi - 1}"))
    return labels


def bucket_of(freq: int, edges: Sequence[int] = DEFAULT_EDGES) -> int:
    """0 for unseen, then 1 + the index of the last edge <= freq."""
    if freq <= 0:
        return 0
    return int(np.searchsorted(np.asarray(edges), freq, side="right"))


def training_frequency(
    train_samples: Sequence[Any], corpus: Corpus, threshold: float = 0.85
) -> Counter:
    """corpus id -> number of training samples with it among the targets."""
    from rar.data.linking import link_samples

    linked, _ = link_samples(train_samples, corpus, threshold)
    counts: Counter = Counter()
    for item in linked:
        counts.update(set(item.target_ids))
    return counts


def popularity_tables(
    ev: SavedEvaluation,
    counts: Mapping[str, int],
    edges: Sequence[int] = DEFAULT_EDGES,
    cutoff: int = 10,
) -> dict[str, Any]:
    """Per system: N@cutoff per bucket and the bucket distribution of its top-`cutoff` items."""
    labels = bucket_labels(edges)
    nb = len(labels)
    out: dict[str, Any] = {"buckets": labels, "systems": {}, "targets_per_bucket": [0] * nb}
    first = True
    for name in ev.systems:
        scores: list[list[float]] = [[] for _ in range(nb)]
        recommended = np.zeros(nb)
        target_dist = np.zeros(nb)
        for rec in ev.records(name):
            ranking = rec.get("ranking") or []
            for t in rec["targets"]:
                b = bucket_of(int(counts.get(t, 0)), edges)
                scores[b].append(ndcg_at_k(ranking, [t], cutoff))
                target_dist[b] += 1
            for cid in ranking[:cutoff]:
                recommended[bucket_of(int(counts.get(cid, 0)), edges)] += 1
        if first:
            out["targets_per_bucket"] = target_dist.astype(int).tolist()
            first = False
        every = [v for bucket in scores for v in bucket]
        out["systems"][name] = {
            "ndcg_all": float(np.mean(every)) if every else 0.0,
            "ndcg_per_bucket": [float(np.mean(s)) if s else None for s in scores],
            "n_per_bucket": [len(s) for s in scores],
            "recommended_share": (recommended / recommended.sum()).tolist()
            if recommended.sum()
            else [0.0] * nb,
            "target_share": (target_dist / target_dist.sum()).tolist()
            if target_dist.sum()
            else [0.0] * nb,
        }
    return out


def _plots(dataset: str, tables: dict[str, Any], cutoff: int):
    pyplot = plt()
    labels = ["all", *tables["buckets"]]
    systems = tables["systems"]
    width = 0.8 / max(1, len(systems))
    fig1, ax = pyplot.subplots(figsize=(7, 3.4))
    x = np.arange(len(labels))
    for i, (name, v) in enumerate(systems.items()):
        vals = [v["ndcg_all"], *[(s if s is not None else 0.0) for s in v["ndcg_per_bucket"]]]
        ax.bar(x + (i - (len(systems) - 1) / 2) * width, vals, width, label=name)
    ax.set_xticks(
        x,
        [
            f"{lab}\n(n={n})" if lab != "all" else lab
            for lab, n in zip(
                labels,
                [sum(tables["targets_per_bucket"]), *tables["targets_per_bucket"]],
                strict=True,
            )
        ],
        fontsize=8,
    )
    ax.set_xlabel("target's training frequency")
    ax.set_ylabel(f"N@{cutoff}")
    ax.set_title(f"N@{cutoff} by item popularity ({dataset})")
    ax.legend(fontsize=7)
    fig2, ax2 = pyplot.subplots(figsize=(7, 3.4))
    series = {"true targets": next(iter(systems.values()))["target_share"]} if systems else {}
    series.update({f"{n} top-{cutoff}": v["recommended_share"] for n, v in systems.items()})
    width2 = 0.8 / max(1, len(series))
    xb = np.arange(len(tables["buckets"]))
    for i, (name, share) in enumerate(series.items()):
        ax2.bar(
            xb + (i - (len(series) - 1) / 2) * width2,
            share,
            width2,
            label=name,
            color="black" if name == "true targets" else None,
        )
    ax2.set_xticks(xb, tables["buckets"])
    ax2.set_xlabel("training frequency")
    ax2.set_ylabel("share of items")
    ax2.set_title(f"Popularity of recommended vs true items ({dataset})")
    ax2.legend(fontsize=7)
    return fig1, fig2


def popularity_report(
    paths: Sequence[str | Path],
    counts: Mapping[str, int] | None = None,
    train_data: str | Path | None = None,
    corpus_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    edges: Sequence[int] = DEFAULT_EDGES,
    cutoff: int = 10,
) -> dict[str, Path]:
    """Write popularity.md with `popularity_<dataset>_ndcg.png` and `_distribution.png`.

    `counts` (corpus id -> training frequency) may be given directly; otherwise the training
    split is loaded from `train_data` (default: the evaluation's data directory, split "train")
    and linked to the corpus (default: the evaluation's corpus)."""
    evals = find_evaluations(paths)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(paths[0])
    lines = [
        "# Popularity bias",
        "",
        "Popularity = number of training samples (same dataset, split `train`) whose targets "
        "include the movie; `unseen` = never a training target. Each (sample, target) pair is "
        f"one row, scored by N@{cutoff} of the ranking against that target alone.",
        "",
    ]
    figures: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for ev in evals:
        ds_counts = counts if counts is not None else _counts_for(ev, train_data, corpus_dir)
        tables = popularity_tables(ev, ds_counts, edges, cutoff)
        summary[ev.dataset] = tables
        key = ev.dataset or "eval"
        figures[f"{key}_ndcg"], figures[f"{key}_distribution"] = _plots(ev.dataset, tables, cutoff)
        lines += [
            f"## {ev.dataset} ({ev.directory})",
            "",
            f"Training items with frequency > 0: {sum(1 for v in ds_counts.values() if v > 0)}.",
            "",
            *_ndcg_table(tables),
            "",
            f"Share of items per popularity bucket (true targets vs each system's top-{cutoff}):",
            "",
            *_share_table(tables, cutoff),
            "",
            f"![N@{cutoff} per bucket](popularity_{key}_ndcg.png)",
            f"![popularity distribution](popularity_{key}_distribution.png)",
            "",
        ]
    written = write_report(out_dir, "popularity", "\n".join(lines) + "\n", figures)
    (Path(out_dir) / "popularity.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return written


def _ndcg_table(tables: dict[str, Any]) -> list[str]:
    """N@cutoff overall and per bucket, one row per system, under the targets per bucket."""
    labels = tables["buckets"]
    lines = [
        "| system | all | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * (len(labels) + 1),
        "| targets (n) | "
        + str(sum(tables["targets_per_bucket"]))
        + " | "
        + " | ".join(str(n) for n in tables["targets_per_bucket"])
        + " |",
    ]
    for name, v in tables["systems"].items():
        cells = " | ".join("–" if s is None else f"{s:.4f}" for s in v["ndcg_per_bucket"])
        lines.append(f"| {md_escape(name)} | {v['ndcg_all']:.4f} | {cells} |")
    return lines


def _share_table(tables: dict[str, Any], cutoff: int) -> list[str]:
    """Share of items per bucket: the true targets, then each system's top-`cutoff`."""
    labels = tables["buckets"]
    first = next(iter(tables["systems"].values()))
    lines = [
        "| items | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
        "| true targets | " + " | ".join(f"{s:.1%}" for s in first["target_share"]) + " |",
    ]
    for name, v in tables["systems"].items():
        lines.append(
            f"| {md_escape(name)} top-{cutoff} | "
            + " | ".join(f"{s:.1%}" for s in v["recommended_share"])
            + " |"
        )
    return lines


def _counts_for(
    ev: SavedEvaluation, train_data: str | Path | None, corpus_dir: str | Path | None
) -> Counter:
    from rar.corpus import Corpus
    from rar.evaluation.runner import load_eval_samples

    source = train_data or ev.data.get("data_path")
    if not source or not Path(source).is_dir() and train_data is None:
        raise InputError(
            f"{ev.directory} was evaluated on a file; pass --train-data (a data directory or a "
            "file of training samples) to count item popularity"
        )
    corpus_path = corpus_dir or ev.data.get("corpus_dir")
    if not corpus_path:
        raise InputError("no corpus known for this evaluation; pass --corpus")
    corpus = Corpus.load(corpus_path)
    samples, _ = load_eval_samples(ev.dataset, source, "train")
    return training_frequency(samples, corpus)
