"""Paired comparison of two systems on the samples both were evaluated on (paired bootstrap)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rar.errors import InputError, UnknownKeyError
from rar.evaluation.reports.common import (
    SavedEvaluation,
    default_out_dir,
    find_evaluations,
    md_escape,
    plt,
    write_report,
)
from rar.metrics import paired_bootstrap

DEFAULT_METRICS = ("ndcg@5", "recall@5", "ndcg@10", "recall@10")


def _one(path: str | Path, dataset: str | None):
    evals = find_evaluations([path])
    if dataset is not None:
        evals = [e for e in evals if e.dataset == dataset] or evals
    if len(evals) > 1:
        names = ", ".join(str(e.directory) for e in evals)
        raise InputError(f"{path} holds several evaluations ({names}); name one eval directory")
    return evals[0]


def compare_report(
    run_a: str | Path,
    run_b: str | Path,
    system_a: str | None = None,
    system_b: str | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    n_resamples: int = 10_000,
    seed: int = 0,
    out_dir: str | Path | None = None,
    dataset: str | None = None,
) -> dict[str, Path]:
    """B versus A on shared sample ids: mean difference (B - A), 95% bootstrap CI, p-value."""
    ev_a, ev_b = _one(run_a, dataset), _one(run_b, dataset)
    name_a, name_b = ev_a.pick_system(system_a), ev_b.pick_system(system_b)
    protocol = _common_protocol(ev_a, name_a, ev_b, name_b)
    rec_a = {r["sample_id"]: r for r in ev_a.records(name_a)}
    rec_b = {r["sample_id"]: r for r in ev_b.records(name_b)}
    shared = sorted(set(rec_a) & set(rec_b))
    if not shared:
        raise InputError("the two evaluations share no sample ids; evaluate both on the same data")
    rows = _paired_rows(rec_a, rec_b, shared, metrics, n_resamples, seed)
    label_a, label_b = f"{name_a} ({ev_a.directory})", f"{name_b} ({ev_b.directory})"
    header = [
        f"- A: **{md_escape(label_a)}** — {len(rec_a)} samples",
        f"- B: **{md_escape(label_b)}** — {len(rec_b)} samples",
        f"- shared samples: {len(shared)} (only these are compared); protocol: "
        f"{protocol.replace('_', '-')} (one row per "
        f"{'recommender turn' if protocol == 'per_turn' else 'ground-truth movie of a turn'})",
        f"- paired bootstrap, {n_resamples} resamples, seed {seed}; difference = B − A; "
        "two-sided p-value",
    ]
    fig = _diff_figure(rows, f"{name_b} vs {name_a} on {len(shared)} shared samples")
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(run_a)
    written = write_report(out_dir, "compare", _markdown(header, rows), {"diff": fig})
    summary = {
        "a": label_a,
        "b": label_b,
        "protocol": protocol,
        "shared_samples": len(shared),
        "rows": rows,
    }
    (Path(out_dir) / "compare.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return written


def _common_protocol(ev_a: SavedEvaluation, name_a: str, ev_b: SavedEvaluation, name_b: str) -> str:
    """The protocol both sides were evaluated with; refuse a system against itself, and two
    protocols (per-turn and per-item rows share the ids of one-movie turns: never pair them)."""
    if ev_a.directory == ev_b.directory and name_a == name_b:
        raise InputError(
            f"both sides are '{name_a}' of {ev_a.directory}; pick --system-a/--system-b"
        )
    protocol = ev_a.data.get("protocol") or "per_turn"
    if (ev_b.data.get("protocol") or "per_turn") != protocol:
        raise InputError(
            f"A is evaluated per {protocol.removeprefix('per_')}, B per "
            f"{(ev_b.data.get('protocol') or 'per_turn').removeprefix('per_')}: compare two "
            "evaluations of the same protocol (rar evaluate --protocol)"
        )
    return protocol


def _paired_rows(
    rec_a: dict[str, Any],
    rec_b: dict[str, Any],
    shared: Sequence[str],
    metrics: Sequence[str],
    n_resamples: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Per metric: both means and the paired bootstrap of B - A over the shared samples."""
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        if metric not in rec_a[shared[0]]["metrics"] or metric not in rec_b[shared[0]]["metrics"]:
            raise UnknownKeyError(
                f"metric '{metric}' was not computed (have: {', '.join(rec_a[shared[0]]['metrics'])})"
            )
        a = np.array([rec_a[s]["metrics"][metric] for s in shared])
        b = np.array([rec_b[s]["metrics"][metric] for s in shared])
        res = paired_bootstrap(b, a, n_resamples=n_resamples, seed=seed)  # diff = B - A
        rows.append({"metric": metric, "a": float(a.mean()), "b": float(b.mean()), **res.as_dict()})
    return rows


def _markdown(header: list[str], rows: Sequence[dict[str, Any]]) -> str:
    """compare.md: what is compared (`header`), then one table row per metric."""
    lines = [
        "# Paired comparison",
        "",
        *header,
        "",
        "| metric | A | B | B − A | 95% CI | p-value |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['metric']} | {r['a']:.4f} | {r['b']:.4f} | {r['diff']:+.4f} | "
            f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | {r['p_value']:.4f} |"
        )
    lines += ["", "![difference B - A](compare_diff.png)"]
    return "\n".join(lines) + "\n"


def _diff_figure(rows: Sequence[dict[str, Any]], title: str):
    """B - A per metric with its 95% CI as error bars (green up, red down)."""
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(1.3 * len(rows) + 2.5, 3.2))
    x = np.arange(len(rows))
    diffs = np.array([r["diff"] for r in rows])
    err = np.array(
        [[r["diff"] - r["ci_low"] for r in rows], [r["ci_high"] - r["diff"] for r in rows]]
    )
    ax.bar(x, diffs, color=["tab:green" if d >= 0 else "tab:red" for d in diffs])
    ax.errorbar(x, diffs, yerr=err, fmt="none", ecolor="black", capsize=4)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(x, [f"{r['metric']}\np={r['p_value']:.3f}" for r in rows])
    ax.set_ylabel("B − A (95% bootstrap CI)")
    ax.set_title(title, fontsize=9)
    return fig
