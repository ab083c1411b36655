"""N@10 and R@10 as the number of retrieved candidates grows (the paper's Figure 3).

Unlike the other reports this one runs the evaluator: the ranker must see each candidate-set
size. Retrieval happens once at the largest k (exact top-k lists are prefixes of each other);
the ranker is called once per k (cached replies make reruns free).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rar.errors import InputError
from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.evaluator import Evaluator
from rar.evaluation.reports.common import md_escape, plt, write_report
from rar.pipeline import rank, retrieve, scored_ranking

if TYPE_CHECKING:
    from rar.corpus import Corpus

DEFAULT_KS = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
METRICS = ("ndcg@10", "recall@10")


def recall_vs_k(
    samples: Sequence[Any],
    corpus: Corpus,
    retriever: Any,
    ranker: Any | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    config: EvaluateConfig | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """One row per k: retriever-only and (with a ranker) re-ranked N@10/R@10 with standard errors."""
    if not ks or min(ks) < 1:
        raise InputError(f"ks must be positive integers, got {list(ks)}")
    config = config or EvaluateConfig()
    evaluator = Evaluator(corpus, config, progress)
    linked, _ = evaluator.link(samples)
    if not linked:
        raise InputError("no sample has a target in the corpus")
    widest = retrieve(retriever, linked, corpus, max(ks), config.batch_size, progress)
    rows = []
    for k in sorted(set(ks)):
        cands = [c[:k] for c in widest]
        row: dict[str, Any] = {"k": k, "num_samples": len(linked)}
        base = evaluator.score("retriever", "retriever", linked, cands)
        for m in METRICS:
            row[f"retriever/{m}"] = base.metrics[m]
            row[f"retriever/{m}/se"] = base.metrics_ci[m]["se"]
        if ranker is not None:
            results = rank(ranker, linked, cands, config.ranker_batch, progress)
            ranked = evaluator.score(
                "ranked", "retriever+ranker", linked, [scored_ranking(r) for r in results]
            )
            for m in METRICS:
                row[f"ranked/{m}"] = ranked.metrics[m]
                row[f"ranked/{m}/se"] = ranked.metrics_ci[m]["se"]
            row["ranker_failures"] = sum(1 for r in results if r.error)
        rows.append(row)
    return rows


def recall_vs_k_report(
    samples: Sequence[Any],
    corpus: Corpus,
    retriever: Any,
    out_dir: str | Path,
    ranker: Any | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    config: EvaluateConfig | None = None,
    label: str = "",
    progress: bool = True,
) -> dict[str, Path]:
    """Write recall_vs_k.md, recall_vs_k.json and recall_vs_k_curve.png."""
    rows = recall_vs_k(samples, corpus, retriever, ranker, ks, config, progress)
    has_ranker = ranker is not None
    ranker_name = getattr(ranker, "backend", "ranker") if has_ranker else ""
    lines = [
        f"# N@10 and R@10 versus the number of retrieved candidates{(' — ' + md_escape(label)) if label else ''}",
        "",
        f"{rows[0]['num_samples']} samples. Retriever-only = the retriever's own order of its top-k;"
        + (
            f" re-ranked = the {ranker_name} ranker's order of the same k candidates."
            if has_ranker
            else ""
        ),
        "",
    ]
    head = ["k", "retriever N@10", "retriever R@10"] + (
        ["re-ranked N@10", "re-ranked R@10"] if has_ranker else []
    )
    lines += ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in rows:
        cells = [str(r["k"]), f"{r['retriever/ndcg@10']:.4f}", f"{r['retriever/recall@10']:.4f}"]
        if has_ranker:
            cells += [f"{r['ranked/ndcg@10']:.4f}", f"{r['ranked/recall@10']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![N@10 and R@10 vs k](recall_vs_k_curve.png)"]
    pyplot = plt()
    fig, axes = pyplot.subplots(1, 2, figsize=(8, 3.2))
    k = np.array([r["k"] for r in rows])
    for ax, metric, title in zip(axes, METRICS, ("N@10", "R@10"), strict=True):
        for prefix, name in (("retriever", "retriever only"), ("ranked", f"+ {ranker_name}")):
            key = f"{prefix}/{metric}"
            if key not in rows[0]:
                continue
            y = np.array([r[key] for r in rows])
            se = np.array([r[f"{key}/se"] or 0.0 for r in rows])
            ax.plot(k, y, marker="o", label=name)
            ax.fill_between(k, y - 1.96 * se, y + 1.96 * se, alpha=0.15)
        ax.set_xlabel("retrieved candidates k")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    written = write_report(out_dir, "recall_vs_k", "\n".join(lines) + "\n", {"curve": fig})
    (Path(out_dir) / "recall_vs_k.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return written
