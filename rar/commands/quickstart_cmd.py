"""`rar quickstart`: the whole pipeline end to end on the real data (see rar/quickstart.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from rar.commands.common import console, user_errors
from rar.errors import MissingPathError


def quickstart(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Datasets directory (default: $RAR_DATA_DIR, else ./data)."
    ),
    out: Path = typer.Option(
        Path("runs/quickstart"), "--out", help="Where the corpus, runs, evaluation and reports go."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Delete earlier quickstart output first."),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Use this built corpus instead of building one under --out."
    ),
    set_corpus: list[str] = typer.Option([], "--set-corpus", help="Override a corpus build key."),
    set_pretrain: list[str] = typer.Option(
        [], "--set-pretrain", help="Override a pretraining key."
    ),
    set_train: list[str] = typer.Option([], "--set-train", help="Override an RL training key."),
    set_evaluate: list[str] = typer.Option(
        [], "--set-evaluate", help="Override an evaluation key."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Build the corpus, pretrain LRURec, post-train it with SFT and DPO against the semantic
    ranker on ReDial, evaluate retriever-only vs SFT vs RAR on the held-back test split, and
    write the reports. Stages that already finished are reused (use --fresh to redo them)."""
    with user_errors():
        from rar.evaluation.markdown import protocol_caption, samples_summary
        from rar.evaluation.result_table import ResultTable
        from rar.paths import resolve_data_dir
        from rar.quickstart import headline_rows, run_quickstart

        try:
            data = resolve_data_dir(data_dir)
        except MissingPathError as exc:
            raise MissingPathError(
                f"{exc}\nThe quickstart needs ReDial and MovieLens there (see README, 'Data')."
            ) from None
        start = time.perf_counter()
        result = run_quickstart(
            data,
            out,
            fresh=fresh,
            overrides={
                "corpus": set_corpus,
                "pretrain": set_pretrain,
                "train": set_train,
                "evaluate": set_evaluate,
            },
            progress=not quiet,
            say=lambda line: console.print(line, highlight=False, soft_wrap=True),
            corpus=corpus,
        )
        evaluation = json.loads((result.evaluation_dir / "evaluation.json").read_text())
        table = ResultTable(
            f"ReDial test split, {protocol_caption(evaluation)} (k = {evaluation['k']} candidates)",
            ["N@5", "R@5", "N@10", "R@10"],
        )
        for name, values in headline_rows(evaluation):
            table.add_row(name, values)
        console.print(table)
        console.print(samples_summary(evaluation["samples"]), soft_wrap=True)
        minutes = (time.perf_counter() - start) / 60
        console.print(
            f"done in {minutes:.1f} min. Evaluation: {result.evaluation_dir / 'evaluation.md'}",
            soft_wrap=True,
        )
        console.print(f"Reports: {result.out_dir / 'reports'}", soft_wrap=True)
        console.print(f"Try it in the browser: rar demo --run {result.out_dir}", soft_wrap=True)


quickstart.command_name = "quickstart"  # type: ignore[attr-defined]
