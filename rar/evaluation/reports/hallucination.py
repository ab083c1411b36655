"""Hallucination report: the share of predicted titles that match no candidate (re-ranked
systems) or no corpus title (LLM-only) at similarity >= 0.85, per dataset and backend.

The matching itself happened at evaluation time (the ranker's parser against the candidates,
the LLM-only matcher against the whole corpus); this report aggregates the saved outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rar.evaluation.reports.common import (
    default_out_dir,
    find_evaluations,
    md_escape,
    plt,
    write_report,
)


@dataclass
class HallucinationRow:
    dataset: str
    system: str
    kind: str
    backend: str
    samples: int
    predicted: int
    hallucinated: int
    samples_with_hallucination: int
    failures: int
    examples: list[tuple[str, str]] = field(default_factory=list)  # (sample id, title)

    @property
    def rate(self) -> float:
        return self.hallucinated / self.predicted if self.predicted else 0.0


def _backend(summary: dict[str, Any]) -> str:
    r = summary.get("ranker") or {}
    backend = str(r.get("backend", ""))
    if r.get("model") and backend not in ("semantic", ""):
        backend += f" ({r['model']})"
    return backend or "?"


def hallucination_rows(
    paths: Sequence[str | Path], max_examples: int = 5
) -> list[HallucinationRow]:
    """One row per (evaluation, system that names titles)."""
    rows = []
    for ev in find_evaluations(paths):
        for name, summary in ev.systems.items():
            kind = summary.get("kind", "")
            if kind not in ("retriever+ranker", "llm-only"):
                continue  # a retriever returns corpus ids: nothing to hallucinate
            row = HallucinationRow(ev.dataset, name, kind, _backend(summary), 0, 0, 0, 0, 0)
            for rec in ev.records(name):
                row.samples += 1
                bad = rec.get("hallucinations") or []
                row.predicted += int(rec.get("n_predicted") or 0)
                row.hallucinated += len(bad)
                row.samples_with_hallucination += bool(bad)
                row.failures += bool(rec.get("error"))
                for title in bad:
                    if len(row.examples) < max_examples:
                        row.examples.append((rec["sample_id"], title))
            rows.append(row)
    return rows


def hallucination_report(
    paths: Sequence[str | Path], out_dir: str | Path | None = None, max_examples: int = 5
) -> dict[str, Path]:
    """Write hallucination.md and hallucination_rates.png; returns the written files."""
    rows = hallucination_rows(paths, max_examples)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(paths[0])
    lines = [
        "# Hallucination report",
        "",
        "A predicted title is a hallucination when its similarity to every candidate title "
        "(re-ranked systems) or to every corpus title (LLM-only) is below 0.85 "
        "(`rar.matching`, year-aware fuzzy matching). Retriever-only systems return corpus ids "
        "and cannot hallucinate; the offline semantic ranker also returns ids, so its rate is 0 "
        "by construction.",
        "",
    ]
    if not rows:
        lines.append("No re-ranked or LLM-only system in these evaluations: nothing to report.")
    else:
        lines += [
            "| dataset | system | backend | samples | titles predicted | hallucinated | rate | "
            "samples with ≥1 | failed calls |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r.dataset} | {md_escape(r.system)} | {md_escape(r.backend)} | {r.samples} | "
                f"{r.predicted} | {r.hallucinated} | {r.rate:.2%} | {r.samples_with_hallucination} | "
                f"{r.failures} |"
            )
        lines += ["", "![hallucination rates](hallucination_rates.png)", "", "## Examples", ""]
        for r in rows:
            if r.examples:
                lines.append(f"**{md_escape(r.system)}** ({r.dataset}):")
                lines += [f"- `{sid}`: {md_escape(title)}" for sid, title in r.examples]
                lines.append("")
        if not any(r.examples for r in rows):
            lines.append("No hallucinated titles.")
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(max(4.0, 1.2 * len(rows) + 2), 3.2))
    labels = [f"{r.system}\n{r.dataset}" for r in rows]
    values = [100 * r.rate for r in rows]
    bars = ax.bar(range(len(rows)), values, color="tab:red")
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            f"{value:.1f}%",
            (bar.get_x() + bar.get_width() / 2, value),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("hallucinated titles (%)")
    ax.set_title("Share of predicted titles matching no candidate / corpus title")
    ax.set_ylim(0, max([5.0, *values]) * 1.2)
    written = write_report(out_dir, "hallucination", "\n".join(lines) + "\n", {"rates": fig})
    (Path(out_dir) / "hallucination.json").write_text(
        __import__("json").dumps([asdict(r) | {"rate": r.rate} for r in rows], indent=2),
        encoding="utf-8",
    )
    return written
