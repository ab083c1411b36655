"""`rar data ...`: inspect the datasets under a data directory."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rar.commands.common import console, err_console, user_errors
from rar.data.datasets import STATS_DATASETS
from rar.errors import InputError

data_app = typer.Typer(
    name="data",
    help="Inspect datasets: ReDial, INSPIRED, Reddit-Movie, custom files, MovieLens.",
    no_args_is_help=True,
)


_COUNTS = ("dialogues", "samples", "movies", "mentions", "dropped")
_ML_COUNTS = ("users", "movies", "interactions", "sessions", "dropped", "train", "val", "test")


def _table(title: str, columns: tuple[str, ...], text_columns: int = 2):
    from rich.table import Table

    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < text_columns else "right")
    return table


def _conversation_tables(report):
    splits = _table(
        "Conversation samples (one per recommender turn with a new movie)",
        ("dataset", "split", *_COUNTS),
    )
    sources = _table("Sources", ("dataset", "file(s)", *_COUNTS, "duplicates"))
    for name, entry in report.entries.items():
        if "splits" not in entry:
            continue
        for split, counts in entry["splits"].items():
            splits.add_row(name, split, *(f"{counts[k]:,}" for k in _COUNTS))
        splits.add_row(name, "all", *(f"{entry[k]:,}" for k in _COUNTS), end_section=True)
        for source, counts in entry["sources"].items():
            sources.add_row(name, source, *(f"{counts[k]:,}" for k in (*_COUNTS, "duplicates")))
    return splits, sources


def _drop_lines(report) -> list[str]:
    """Why rows of each source file were dropped, with the first file lines (row formats)."""
    lines = []
    for name, entry in report.entries.items():
        for source, counts in entry.get("sources", {}).items():
            reasons = counts.get("dropped_by_reason") or {}
            if not counts.get("dropped_rows"):
                continue
            lines.append(
                f"{name} {source}: dropped "
                + ", ".join(f"{n:,} ({reason})" for reason, n in reasons.items())
            )
            lines.extend(f"  {row}" for row in counts["dropped_rows"])
    return lines


def _output():
    """The console, or a 120-column one when piped (rich would otherwise wrap at 80)."""
    from rich.console import Console

    return console if console.is_terminal else Console(width=120, highlight=False)


def _movielens_table(report):
    table = _table(
        "MovieLens sessions (30-min gap, shorter than 2 dropped)",
        ("release", "users", "movies", "ratings", "sessions", "dropped", "train", "val", "test"),
        text_columns=1,
    )
    for entry in report.entries.values():
        if "sessions" in entry:
            table.add_row(entry["variant"], *(f"{entry[k]:,}" for k in _ML_COUNTS))
    return table


@data_app.command("stats")
def stats(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (default: $RAR_DATA_DIR, else ./data)."
    ),
    json_path: Path | None = typer.Option(
        None, "--json", help="Also write the counts as JSON (one entry per dataset) to FILE."
    ),
    dataset: list[str] | None = typer.Option(
        None,
        "--dataset",
        "-d",
        help=f"Only these datasets ({', '.join(STATS_DATASETS)}); repeatable.",
    ),
    seed: int = typer.Option(0, help="Split seed (dialogue hash salt, MovieLens shuffle)."),
) -> None:
    """Dialogues, samples, distinct movies, mentions and dropped samples per dataset and split
    (like the paper's Table 8), and MovieLens session counts."""
    with user_errors():
        from rar.data.stats import collect_stats
        from rar.paths import resolve_data_dir

        root = resolve_data_dir(data_dir)
        with err_console.status("reading datasets ...") as status:
            report = collect_stats(
                root, dataset, seed, progress=lambda name: status.update(f"reading {name} ...")
            )
        if not report.entries:
            raise InputError(
                f"no dataset found in {root}: "
                + "; ".join(f"{k}: {v}" for k, v in report.skipped.items())
            )
        out = _output()
        if any("splits" in e for e in report.entries.values()):
            for table in _conversation_tables(report):
                out.print(table)
        if any("sessions" in e for e in report.entries.values()):
            out.print(_movielens_table(report))
        for line in _drop_lines(report):
            out.print(line, highlight=False)
        for name, reason in report.skipped.items():
            err_console.print(f"[yellow]skipped {name}:[/] {reason}", highlight=False)
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(report.entries, indent=2) + "\n", encoding="utf-8")
            err_console.print(f"wrote {json_path}", highlight=False)
