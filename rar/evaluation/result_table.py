"""A terminal table of results, one row per system, whose name column is never cut.

Why: rich shrinks the widest column first, so at 80 columns every system name became
"quickst…" and the rows could no longer be told apart. This table picks, at render time, the
first layout that fits the console: full names on one line; then each metric's confidence
interval on a second line; then names wrapped at spaces (when every word fits); else short
stable labels (S1, S2, … in report order) with a legend underneath that wraps, never cuts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from rar.evaluation.failed_calls import failed_share
from rar.evaluation.markdown import HEADLINE, metric_label, protocol_caption

if TYPE_CHECKING:
    from rar.evaluation.results import EvaluationReport


@dataclass
class ResultRow:
    """A system's row: `cells[i]` is (main value, optional second line such as '±0.0200')."""

    name: str
    cells: list[tuple[str, str | None]]


@dataclass
class ResultTable:
    title: str
    columns: list[str]  # headers after the name column; all right-aligned
    rows: list[ResultRow] = field(default_factory=list)
    name_header: str = "system"

    def add_row(self, name: str, cells: Sequence[tuple[str, str | None] | str]) -> None:
        self.rows.append(ResultRow(name, [c if isinstance(c, tuple) else (c, None) for c in cells]))

    def labels(self) -> list[str]:
        """Short labels in row order: stable for a given report."""
        return [f"S{i}" for i in range(1, len(self.rows) + 1)]

    def table(self, stacked: bool, labelled: bool = False, name_width: int | None = None) -> Table:
        """One layout: `stacked` puts second lines under the value; `labelled` names rows S1,
        S2…; `name_width` wraps names at spaces into a column that wide (None: one line)."""
        table = Table(title=self.title)
        if name_width is None:
            table.add_column(self.name_header, no_wrap=True)  # never wrapped, never cut
        else:
            table.add_column(self.name_header, width=name_width, overflow="fold")
        for header in self.columns:
            table.add_column(header, justify="right", overflow="fold")
        names = self.labels() if labelled else [row.name for row in self.rows]
        for name, row in zip(names, self.rows, strict=True):
            cells = [
                main if extra is None else f"{main}{chr(10) if stacked else ' '}{extra}"
                for main, extra in row.cells
            ]
            table.add_row(name, *cells)
        return table

    def layout(self, console: Console, options: ConsoleOptions) -> tuple[Table, bool]:
        """(table, labelled): the first layout that fits, from the widest to the narrowest."""
        unbounded = options.update_width(10_000)  # a table's measure is clamped to the width

        def width(table: Table) -> int:
            return Measurement.get(console, unbounded, table).maximum

        for stacked in (False, True):
            table = self.table(stacked)
            if width(table) <= options.max_width:
                return table, False
        labelled = self.table(stacked=True, labelled=True)
        label_width = max(len(self.name_header), *(len(x) for x in self.labels()))
        room = options.max_width - (width(labelled) - label_width)
        longest_word = max((len(word) for row in self.rows for word in row.name.split()), default=0)
        if room >= max(longest_word, len(self.name_header)):
            return self.table(stacked=True, name_width=room), False  # wrapped at spaces
        return labelled, True

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table, labelled = self.layout(console, options)
        yield table
        if labelled:
            for label, row in zip(self.labels(), self.rows, strict=True):
                yield Text(f"{label} = {row.name}", overflow="fold")


def summary_table(data: dict[str, Any] | EvaluationReport, title: str | None = None) -> ResultTable:
    """The terminal table: N@5 R@5 N@10 R@10 with 95% CI half-widths, failed ranker calls
    (count and share) and ranker calls / cache hits; the protocol and its row count are in the
    title. System names are never cut (see
    `rar.evaluation.result_table`)."""
    if not isinstance(data, dict):  # an EvaluationReport
        data = data.to_dict()
    systems: dict[str, Any] = data["systems"]
    table = ResultTable(
        title
        or f"{data.get('dataset', '')} ({data.get('split', '')}), {protocol_caption(data)}, "
        f"k = {data.get('k')}",
        [metric_label(key) for key in HEADLINE] + ["failed", "calls/hits"],
    )
    for name, v in systems.items():
        cells: list[tuple[str, str | None]] = []
        for key in HEADLINE:
            mean = v["metrics"].get(key)
            ci = v["metrics_ci"].get(key, {})
            half = (
                (ci["ci_high"] - ci["ci_low"]) / 2
                if ci.get("ci_high") is not None and ci.get("ci_low") is not None
                else None
            )
            cells.append(
                ("n/a", None)
                if mean is None
                else (f"{mean:.4f}", f"±{half:.4f}" if half is not None else None)
            )
        failed = v.get("failed_samples")
        cells.append(
            ("–", None)
            if failed is None
            else (str(failed), f"{failed_share(failed, v['num_samples']):.0%}")
        )
        r = v.get("ranker")
        cells.append((f"{r.get('calls', 0)}/{r.get('cache_hits', 0)}" if r else "–", None))
        table.add_row(name, cells)
    return table


def appended_note(data: dict[str, Any] | EvaluationReport) -> str | None:
    """'appended (share of candidates the ranker left out; ...): A + llm 88.0%, ...' for the
    systems with a ranker: the terminal table's footer (None: no system has a ranker)."""
    if not isinstance(data, dict):
        data = data.to_dict()
    shares = [
        f"{name} {v['ranker'].get('appended_share', 0.0):.1%}"
        for name, v in data["systems"].items()
        if v.get("ranker")
    ]
    if not shares:
        return None
    return (
        "appended (share of candidates the ranker left out; misses unless "
        "parser.score_appended): " + ", ".join(shares)
    )
