"""`rar quickstart`: the whole pipeline end to end on the real data (see rar/quickstart.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rar.commands.common import console, user_errors
from rar.errors import MissingPathError

if TYPE_CHECKING:
    from rar.quickstart import QuickstartResult


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
    set_train: list[str] = typer.Option(
        [], "--set-train", help="Override a post-training key of both SFT and RAR."
    ),
    set_sft: list[str] = typer.Option(
        [], "--set-sft", help="Override a key of the three SFT runs (item, text, fused)."
    ),
    set_rar: list[str] = typer.Option([], "--set-rar", help="Override a RAR (RL) key."),
    set_evaluate: list[str] = typer.Option(
        [], "--set-evaluate", help="Override an evaluation key."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Build the corpus, pretrain LRURec, post-train three policies on ReDial to convergence
    (item-only LRURec as in the paper, the text tower alone, and the recommended fused policy
    that also reads the conversation), fit the offline ranker on ReDial's training split, train
    RAR (RL from the fused run with the ranker's feedback), evaluate the baselines and every
    policy alone and + ranker on the held-back test split (N@10, R@10, the retrieval ceiling
    R@25/R@50, N@10 on cold movies) with paired tests, and write the reports. Stages that
    already finished are reused (use --fresh to redo them)."""
    with user_errors():
        from rar.quickstart import run_quickstart

        data = _data_dir(data_dir)
        start = time.perf_counter()
        result = run_quickstart(
            data,
            out,
            fresh=fresh,
            overrides={
                "corpus": set_corpus,
                "pretrain": set_pretrain,
                "train": set_train,
                "sft": set_sft,
                "rar": set_rar,
                "evaluate": set_evaluate,
            },
            progress=not quiet,
            say=lambda line: console.print(line, highlight=False, soft_wrap=True),
            corpus=corpus,
        )
        _print_results(result, start)


def _data_dir(data_dir: Path | None) -> Path:
    """The datasets directory, or an error that says the quickstart needs ReDial and MovieLens."""
    from rar.paths import resolve_data_dir

    try:
        return resolve_data_dir(data_dir)
    except MissingPathError as exc:
        raise MissingPathError(
            f"{exc}\nThe quickstart needs ReDial and MovieLens there (see README, 'Data')."
        ) from None


def _print_results(result: QuickstartResult, start: float) -> None:
    """The headline table, the paired comparisons, the time taken and where everything is."""
    from rar.evaluation.markdown import samples_summary

    evaluation = json.loads((result.evaluation_dir / "evaluation.json").read_text())
    ceiling = json.loads((result.evaluation_dir / "ceiling.json").read_text())
    console.print(headline_table(evaluation, ceiling))
    console.print(samples_summary(evaluation["samples"]), soft_wrap=True)
    console.print(paired_table(result.out_dir / "reports", list(result.report_files)))
    minutes = (time.perf_counter() - start) / 60
    console.print(
        f"done in {minutes:.1f} min. Evaluation: {result.evaluation_dir / 'evaluation.md'}",
        soft_wrap=True,
    )
    console.print(f"Reports: {result.out_dir / 'reports'}", soft_wrap=True)
    console.print(f"Try it in the browser: rar demo --run {result.out_dir}", soft_wrap=True)


def headline_table(evaluation: dict[str, Any], ceiling: dict[str, Any]):
    """N@10, R@10, the retrieval ceiling R@25/R@50 and N@10 on cold movies, per system."""
    from rar.evaluation.markdown import protocol_caption
    from rar.evaluation.result_table import ResultTable
    from rar.quickstart import headline_rows

    table = ResultTable(
        f"ReDial test split, {protocol_caption(evaluation)} (k = {evaluation['k']} "
        f"candidates; cold = the {ceiling['cold_rows']} of {ceiling['rows']} rows whose "
        "movies were never a training target)",
        ["N@10", "R@10", "R@25", "R@50", "cold N@10"],
    )
    for name, values in headline_rows(evaluation, ceiling):
        table.add_row(name, values)
    return table


def paired_table(reports_dir: Path, keys: list[str]):
    """N@10 of every paired comparison the quickstart wrote (B − A, bootstrap CI and p)."""
    from rar.evaluation.result_table import ResultTable

    table = ResultTable(
        "Paired bootstrap on N@10 (same test samples, 10,000 resamples)",
        ["A", "B", "B − A", "95% CI", "p"],
        name_header="comparison",
    )
    for key in keys:
        path = reports_dir / key / "compare.json"
        if not key.startswith("compare_") or not path.is_file():
            continue
        report = json.loads(path.read_text(encoding="utf-8"))
        row = next(r for r in report["rows"] if r["metric"] == "ndcg@10")
        a, b = (report[side].rsplit(" (", 1)[0] for side in ("a", "b"))
        table.add_row(
            f"{b} vs {a}",
            [
                f"{row['a']:.4f}",
                f"{row['b']:.4f}",
                f"{row['diff']:+.4f}",
                f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]",
                f"{row['p_value']:.3f}",
            ],
        )
    return table
