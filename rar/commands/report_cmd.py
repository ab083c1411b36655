"""`rar report ...`: markdown + PNG reports from saved evaluations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rar.commands.common import console, ranker_spec_config, user_errors
from rar.data.datasets import dataset_choices
from rar.errors import InputError

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.data.types import Sample
    from rar.retrievers.base import Retriever

report = typer.Typer(
    name="report",
    help="Reports (markdown + PNG) from `rar evaluate` outputs: hallucination, popularity, "
    "compare, recall-vs-k.",
    no_args_is_help=True,
)


def _done(written: dict[str, Path]) -> None:
    console.print(f"report: {written['markdown']}", soft_wrap=True)
    for key, path in written.items():
        if key != "markdown":
            console.print(f"  plot: {path}", soft_wrap=True)


@report.command("all")
def all_reports(
    path: Path = typer.Argument(..., help="Run directory (eval/*/) or evaluation directory."),
    train_data: Path | None = typer.Option(
        None,
        "--train-data",
        help="Training data for popularity (default: the evaluation's data dir).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Output directory (default <path>/reports)."
    ),
    resamples: int = typer.Option(10000, "--resamples", help="Bootstrap resamples."),
) -> None:
    """Hallucination + popularity + paired comparisons (first system vs each other one)."""
    with user_errors():
        from rar.evaluation.reports import standard_reports

        written_all = standard_reports(
            path, out_dir=out, n_resamples=resamples, train_data=train_data
        )
        for name, written in written_all.items():
            console.print(f"[bold]{name}[/]", soft_wrap=True)
            _done(written)


@report.command("hallucination")
def hallucination(
    paths: list[Path] = typer.Argument(
        ..., help="Run directories (eval/*/) or evaluation directories."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Output directory (default <first path>/reports)."
    ),
    examples: int = typer.Option(5, "--examples", help="Hallucinated titles shown per system."),
) -> None:
    """Share of predicted titles matching no candidate (or, LLM-only, no corpus title) at 0.85."""
    with user_errors():
        from rar.evaluation.reports.hallucination import hallucination_report

        _done(hallucination_report(paths, out, examples))


@report.command("popularity")
def popularity(
    paths: list[Path] = typer.Argument(
        ..., help="Run directories (eval/*/) or evaluation directories."
    ),
    train_data: Path | None = typer.Option(
        None,
        "--train-data",
        help="Training data (directory or file); default: the evaluation's data dir.",
    ),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Corpus directory (default: the evaluation's)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Output directory (default <first path>/reports)."
    ),
    cutoff: int = typer.Option(
        10, "--cutoff", help="N@cutoff per bucket and top-cutoff distribution."
    ),
) -> None:
    """N@10 per training-frequency bucket (incl. unseen) and popularity of recommended vs true items."""
    with user_errors():
        from rar.evaluation.reports.popularity import popularity_report

        _done(popularity_report(paths, None, train_data, corpus, out, cutoff=cutoff))


@report.command("compare")
def compare(
    run_a: Path = typer.Argument(..., help="Evaluation (or run) directory A."),
    run_b: Path = typer.Argument(..., help="Evaluation (or run) directory B (may equal A)."),
    system_a: str | None = typer.Option(
        None, "--system-a", help="System of A (default: its re-ranked one)."
    ),
    system_b: str | None = typer.Option(
        None, "--system-b", help="System of B (default: its re-ranked one)."
    ),
    metrics: str = typer.Option(
        "ndcg@5,recall@5,ndcg@10,recall@10", "--metrics", help="Comma-separated."
    ),
    resamples: int = typer.Option(10000, "--resamples", help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    dataset: str | None = typer.Option(
        None, "--dataset", help="Pick this dataset's evaluation in a run dir."
    ),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default <A>/reports)."),
) -> None:
    """Paired bootstrap (B - A) on the samples both evaluations share, with p-values and a plot."""
    with user_errors():
        from rar.evaluation.reports.compare import compare_report

        names = [m.strip() for m in metrics.split(",") if m.strip()]
        _done(
            compare_report(run_a, run_b, system_a, system_b, names, resamples, seed, out, dataset)
        )


@report.command("recall-vs-k")
def recall_vs_k(
    run: Path = typer.Option(..., "--run", "-r", help="Run directory with checkpoints/best.pt."),
    dataset: str = typer.Option("redial", "--dataset", help=f"{dataset_choices()}."),
    data: Path | None = typer.Option(
        None, "--data", help="File or data directory (default: data dir)."
    ),
    ranker: str | None = typer.Option(
        "semantic", "--ranker", help="Ranker backend or YAML ('none' = off)."
    ),
    ranker_model: str | None = typer.Option(
        None, "--ranker-model", help="Model for openai/gemini."
    ),
    base_url: str | None = typer.Option(None, "--base-url", help="Server URL for openai/gemini."),
    ks: str = typer.Option("5,10,15,20,25,30,35,40,45,50", "--ks", help="Candidate-set sizes."),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Corpus directory (default: the run's)."
    ),
    split: str = typer.Option("test", "--split", help="Split of a data directory."),
    max_samples: int | None = typer.Option(None, "--max-samples", help="Seeded subset size."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory when --data is not given."
    ),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default RUN/reports)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """N@10 / R@10 as the number of retrieved candidates grows (paper Figure 3)."""
    with user_errors():
        from rar.config import validate_config
        from rar.evaluation.evaluate_config import EvaluateConfig
        from rar.evaluation.reports.recall_vs_k import recall_vs_k_report

        try:
            k_list = [int(x) for x in ks.split(",") if x.strip()]
        except ValueError:
            raise InputError(f"--ks must be comma-separated integers, got '{ks}'") from None
        cfg = validate_config(EvaluateConfig, {"split": split, "max_samples": max_samples}, "flags")
        corp, samples, retriever = _curve_inputs(run, corpus, dataset, data, data_dir, split)
        rk = None
        if ranker and ranker.lower() != "none":
            from rar.rankers import build_ranker

            rk = build_ranker(ranker_spec_config(ranker, ranker_model, base_url, cfg), corp)
        try:
            written = recall_vs_k_report(
                samples,
                corp,
                retriever,
                out or Path(run) / "reports",
                rk,
                k_list,
                cfg,
                label=f"{Path(run).name} on {dataset}",
                progress=not quiet,
            )
        finally:
            if rk is not None:
                rk.close()
        _done(written)


def _curve_inputs(
    run: Path,
    corpus: Path | None,
    dataset: str,
    data: Path | None,
    data_dir: Path | None,
    split: str,
) -> tuple[Corpus, list[Sample], Retriever]:
    """What the curve is measured on: the corpus (`--corpus`, else the run's), the samples
    (`--data`, else the data directory's `split`) and the run's retriever."""
    from rar.corpus import Corpus
    from rar.evaluation.runner import find_run_corpus, load_eval_samples
    from rar.paths import resolve_data_dir
    from rar.retrievers import load_pretrained_run

    corp = Corpus.load(corpus or find_run_corpus(run))
    samples, _ = load_eval_samples(
        dataset, data if data is not None else resolve_data_dir(data_dir), split
    )
    return corp, samples, load_pretrained_run(run, corp)
