"""Hallucination report: per dataset and backend, the share of title attempts that match no
candidate (re-ranked systems) or no corpus title (LLM-only) at similarity >= 0.85, told
apart from reply lines that are not titles at all (chatter, headers, commentary) and from
failed calls; and how many candidates were appended because the LLM left them out.

The matching itself happened at evaluation time (the ranker's parser against the candidates,
the LLM-only matcher against the whole corpus; `rar.rankers.parser` documents which lines
are title attempts); this report aggregates the saved outcomes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
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
    predicted: int  # title attempts
    hallucinated: int  # title attempts matching nothing
    samples_with_hallucination: int
    failures: int
    non_titles: int = 0  # reply lines that were not titles
    answered: int = 0  # re-ranking calls that returned a reply (not failed)
    candidates: int = 0  # candidates in those calls
    appended: int = 0  # of those, candidates the LLM left out (appended, scored as misses)
    examples: list[tuple[str, str]] = field(default_factory=list)  # (sample id, title)
    non_title_examples: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Hallucinated share of title attempts (non-title lines do not count)."""
        return self.hallucinated / self.predicted if self.predicted else 0.0

    @property
    def non_title_rate(self) -> float:
        """Share of parsed reply lines that were not title attempts."""
        lines = self.predicted + self.non_titles
        return self.non_titles / lines if lines else 0.0

    @property
    def appended_per_call(self) -> float:
        return self.appended / self.answered if self.answered else 0.0

    @property
    def appended_share(self) -> float:
        return self.appended / self.candidates if self.candidates else 0.0


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
                chatter = rec.get("non_titles") or []
                row.predicted += int(rec.get("n_predicted") or 0)
                row.hallucinated += len(bad)
                row.non_titles += len(chatter)
                row.samples_with_hallucination += bool(bad)
                row.failures += bool(rec.get("error"))
                if kind == "retriever+ranker" and not rec.get("error"):
                    row.answered += 1
                    row.candidates += len(rec.get("candidates") or [])
                    row.appended += int(rec.get("n_appended") or 0)
                for title in bad:
                    if len(row.examples) < max_examples:
                        row.examples.append((rec["sample_id"], title))
                for line in chatter:
                    if len(row.non_title_examples) < max_examples:
                        row.non_title_examples.append((rec["sample_id"], line))
            rows.append(row)
    return rows


_INTRO = (
    "A reply line is a title attempt when it is a list item (numbered or bulleted, or a "
    "JSON entry), or a short title-shaped line in a reply without a list; other lines "
    '(greetings, headers, commentary such as "I\'m glad you enjoyed the conversation…") '
    "are non-title lines and are counted apart (`rar.rankers.parser`). A title attempt is a "
    "hallucination when its similarity to every candidate title (re-ranked systems) or to "
    "every corpus title (LLM-only) is below 0.85 (`rar.matching`, year-aware fuzzy "
    "matching); the rate is per title attempt. Failed calls are counted on their own and "
    "parse nothing. Appended: candidates the LLM left out of its ranking, which are "
    "appended in retriever order and score as misses (unless `parser.score_appended`). "
    "Retriever-only systems return corpus ids and cannot hallucinate; the offline semantic "
    "ranker also returns ids, so its rates are 0 by construction."
)


def hallucination_report(
    paths: Sequence[str | Path], out_dir: str | Path | None = None, max_examples: int = 5
) -> dict[str, Path]:
    """Write hallucination.md, hallucination_rates.png and hallucination.json; returns the
    written files."""
    rows = hallucination_rows(paths, max_examples)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(paths[0])
    written = write_report(
        out_dir, "hallucination", _markdown(rows), {"rates": _rates_figure(rows)}
    )
    (Path(out_dir) / "hallucination.json").write_text(
        json.dumps([_row_dict(r) for r in rows], indent=2), encoding="utf-8"
    )
    return written


def _markdown(rows: Sequence[HallucinationRow]) -> str:
    """The page: what counts as a hallucination, the table, then examples of both kinds."""
    lines = ["# Hallucination report", "", _INTRO, ""]
    if not rows:
        lines.append("No re-ranked or LLM-only system in these evaluations: nothing to report.")
    else:
        lines += _table(rows)
        lines += ["", "![hallucination rates](hallucination_rates.png)", "", "## Examples", ""]
        lines += _examples(rows, lambda r: r.examples)
        if not any(r.examples for r in rows):
            lines.append("No hallucinated titles.")
        if any(r.non_title_examples for r in rows):
            lines += ["", "## Non-title lines (not hallucinations)", ""]
            lines += _examples(rows, lambda r: r.non_title_examples)
    return "\n".join(lines) + "\n"


def _table(rows: Sequence[HallucinationRow]) -> list[str]:
    """One table row per system; the appended columns are n/a for LLM-only (nothing to append)."""
    lines = [
        "| dataset | system | backend | samples | title attempts | hallucinated | rate | "
        "samples with ≥1 | non-title lines | non-title share | failed calls | appended | "
        "appended per call | appended share |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        reranked = r.kind == "retriever+ranker"
        appended = (
            f"{r.appended} | {r.appended_per_call:.1f} | {r.appended_share:.1%}"
            if reranked
            else "n/a | n/a | n/a"
        )
        lines.append(
            f"| {r.dataset} | {md_escape(r.system)} | {md_escape(r.backend)} | {r.samples} | "
            f"{r.predicted} | {r.hallucinated} | {r.rate:.2%} | {r.samples_with_hallucination} | "
            f"{r.non_titles} | {r.non_title_rate:.2%} | {r.failures} | {appended} |"
        )
    return lines


def _examples(
    rows: Sequence[HallucinationRow], of: Callable[[HallucinationRow], list[tuple[str, str]]]
) -> list[str]:
    """Per system with any, its examples `of(row)`: (sample id, text) pairs."""
    lines: list[str] = []
    for r in rows:
        examples = of(r)
        if examples:
            lines.append(f"**{md_escape(r.system)}** ({r.dataset}):")
            lines += [f"- `{sid}`: {md_escape(text)}" for sid, text in examples]
            lines.append("")
    return lines


def _rates_figure(rows: Sequence[HallucinationRow]):
    """Bars per system: hallucinated share of title attempts beside non-title share of lines."""
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(max(4.0, 1.2 * len(rows) + 2), 3.2))
    labels = [f"{r.system}\n{r.dataset}" for r in rows]
    series = [
        ("hallucinated (of title attempts)", [100 * r.rate for r in rows], "tab:red", -0.2),
        ("non-title lines (of lines)", [100 * r.non_title_rate for r in rows], "tab:gray", 0.2),
    ]
    for label, values, color, shift in series:
        bars = ax.bar([i + shift for i in range(len(rows))], values, 0.4, color=color, label=label)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                f"{value:.1f}%",
                (bar.get_x() + bar.get_width() / 2, value),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("%")
    ax.set_title("Hallucinated title attempts vs non-title reply lines")
    if rows:
        ax.legend(fontsize=7)
    ax.set_ylim(0, max([5.0, *(v for _, values, _, _ in series for v in values)]) * 1.25)
    return fig


def _row_dict(r: HallucinationRow) -> dict[str, Any]:
    """A row for hallucination.json: its fields and its rates."""
    return asdict(r) | {
        "rate": r.rate,
        "non_title_rate": r.non_title_rate,
        "appended_per_call": r.appended_per_call,
        "appended_share": r.appended_share,
    }
