"""`rar evaluate`: paper-style metrics (with CIs and costs) for retriever / SFT / RAR runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from rar.commands.common import (
    console,
    err_console,
    flag_overrides,
    ranker_spec_config,
    user_errors,
)
from rar.data.datasets import dataset_choices
from rar.errors import InputError
from rar.rankers.registry import ranker_choices

if TYPE_CHECKING:
    from rar.evaluation.evaluate_config import EvaluateConfig
    from rar.evaluation.results import EvaluationReport


def evaluate(
    run: list[Path] = typer.Option(
        [],
        "--run",
        "-r",
        help="Run directory with checkpoints/best.pt (pretrain, SFT or RAR); repeatable.",
    ),
    baseline: list[str] = typer.Option(
        [],
        "--baseline",
        "-b",
        help="Baseline to evaluate next to the runs: most-popular | itemknn | ease; fitted on "
        "the dataset's train split, hyperparameters chosen on val (repeatable).",
    ),
    dataset: str = typer.Option(
        "redial",
        "--dataset",
        help=f"{dataset_choices()} (picks the corpus link table).",
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="A file in any supported format, or a data directory "
        "(default: --data-dir / $RAR_DATA_DIR / ./data).",
    ),
    ranker: str | None = typer.Option(
        None,
        "--ranker",
        help=f"Ranker backend ({ranker_choices()}) or a ranker YAML config.",
    ),
    ranker_model: str | None = typer.Option(
        None, "--ranker-model", help="Model name for openai/gemini."
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible / Gemini server URL."
    ),
    llm_only: bool = typer.Option(
        False, "--llm-only", help="Also evaluate the LLM without retrieval."
    ),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Corpus directory (default: the run's)."
    ),
    split: str | None = typer.Option(
        None, "--split", help="Split of a data directory (default test)."
    ),
    k: int | None = typer.Option(
        None, "-k", "--k", help="Candidates retrieved per sample (default 25)."
    ),
    max_samples: int | None = typer.Option(None, "--max-samples", help="Evaluate a seeded subset."),
    protocol: str | None = typer.Option(
        None,
        "--protocol",
        help="Rows of the metrics: per_turn (one per recommender turn, default) or per_item "
        "(He et al. 2023: one per ground-truth movie of a turn).",
    ),
    max_failed_share: float | None = typer.Option(
        None,
        "--max-failed-share",
        min=0.0,
        max=1.0,
        help="Exit with status 3 when a system's share of failed ranker calls exceeds this "
        "(default: warn on any failure, status 3 only when every call failed).",
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="Evaluation YAML config."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key (repeatable)."),
    out: Path | None = typer.Option(
        None, "--out", help="Output directory (default RUN/eval/<dataset>-<split or file>)."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the JSON summary here."),
    markdown_out: Path | None = typer.Option(
        None, "--markdown", help="Also write the markdown here."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory when --data is not given."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Evaluate runs: N@5 R@5 N@10 R@10 (and @1, @20, MRR) with standard errors and 95% CIs,
    ranker calls, cache hits, failures, tokens and cost; writes evaluation.json/.md and
    per-sample rankings (samples/*.jsonl) for `rar report`.

    A sample whose ranker call failed is scored as a miss and counted per system. Exit status:
    0 done, 2 bad input, 3 too many failed ranker calls (the results are still written)."""
    with user_errors():
        from rar.evaluation.runner import evaluate_runs
        from rar.paths import resolve_data_dir

        flags = {
            "split": split,
            "k": k,
            "max_samples": max_samples,
            "protocol": protocol.replace("-", "_") if protocol else None,
            "llm_only": llm_only,
            "max_failed_share": max_failed_share,
        }
        cfg = _evaluate_config(config, overrides, flags, baseline, ranker, ranker_model, base_url)
        source = data if data is not None else resolve_data_dir(data_dir)
        report = evaluate_runs(
            [str(r) for r in run],
            dataset,
            source,
            cfg,
            corpus,
            out,
            progress=not quiet,
            train_data_dir=data_dir,
        )
        _write_copies(report, json_out, markdown_out)
        _print_summary(report, cfg.max_failed_share)


def _evaluate_config(
    config: Path | None,
    overrides: list[str],
    flags: Mapping[str, object],
    baselines: list[str],
    ranker: str | None,
    ranker_model: str | None,
    base_url: str | None,
) -> EvaluateConfig:
    """The evaluation config: the YAML (or defaults), `--set`, the convenience flags, then
    `--baseline` appended to its baselines and `--ranker` in place of its ranker."""
    from rar.config import load_config
    from rar.evaluation.evaluate_config import EvaluateConfig

    cfg = load_config(EvaluateConfig, config, flag_overrides(overrides, flags))
    if baselines:
        from rar.baselines import baseline_class

        cfg.baselines = [*cfg.baselines, *(baseline_class(b).name for b in baselines)]
    if ranker is not None:
        cfg.ranker = ranker_spec_config(ranker, ranker_model, base_url, cfg)
    elif ranker_model or base_url:
        raise InputError("--ranker-model/--base-url need --ranker")
    return cfg


def _write_copies(
    report: EvaluationReport, json_out: Path | None, markdown_out: Path | None
) -> None:
    """`--json` and `--markdown`: copies of the summary beside the ones in the output dir."""
    import json

    from rar.atomic_files import atomic_write_text

    text = report.to_markdown()
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(report.to_dict(), indent=2))
    if markdown_out is not None:
        atomic_write_text(markdown_out, text)


def _print_summary(report: EvaluationReport, max_failed_share: float | None) -> None:
    """The headline table, what was evaluated and where it was written; then a warning per
    system whose ranker calls failed, or the error (exit status 3) when too many failed: only
    after the results are written and shown."""
    from rar.evaluation.failed_calls import check_failed_calls
    from rar.evaluation.markdown import samples_summary
    from rar.evaluation.result_table import appended_note, summary_table

    data = report.to_dict()
    console.print(summary_table(data))
    console.print(f"{samples_summary(data['samples'])}; ± = 95% CI half-width", soft_wrap=True)
    if appended_note(data):
        console.print(appended_note(data), soft_wrap=True, highlight=False)
    console.print(
        f"written to {report.out_dir} (evaluation.json, evaluation.md, samples/)",
        soft_wrap=True,
    )
    for warning in check_failed_calls(data["systems"], max_failed_share):
        err_console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
