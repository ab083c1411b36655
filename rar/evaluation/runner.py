"""Glue for `rar evaluate`: load samples from a file or dataset directory, load run retrievers,
build the ranker, and hand everything to :func:`evaluate_systems`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rar.data.datasets import check_dataset
from rar.data.types import Sample
from rar.errors import InputError, MissingPathError
from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.evaluator import evaluate_systems
from rar.evaluation.results import EvaluationReport, check_output_dir
from rar.pipeline import System
from rar.rankers.registry import LLM_RANKER_NAMES, RANKERS

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.rankers.base import Ranker


def load_eval_samples(dataset: str, data: str | Path, split: str) -> tuple[list[Sample], str]:
    """Samples from a file in any supported format, or a dataset's split from a data directory.

    Returns (samples, description of the source)."""
    check_dataset(dataset)
    path = Path(data)
    if path.is_file():
        from rar.data.registry import load_samples_from_file

        samples = load_samples_from_file(path)
        # the link table to use is the named dataset's, whatever the file's own label
        samples = [
            s if s.dataset == dataset else dataclasses.replace(s, dataset=dataset) for s in samples
        ]
        return samples, str(path)
    if path.is_dir():
        from rar.data.registry import load_conversation_samples

        return load_conversation_samples(dataset, path, split), f"{path} ({dataset}, split {split})"
    raise MissingPathError(f"--data {path} is neither a file nor a directory")


def corpus_from_run(run_dir: str | Path) -> str | None:
    """The corpus directory a run was trained with: the top-level `corpus` of its config.yaml
    (the one key both `rar pretrain` and `rar train` read). Runs store it absolute; a relative
    one (older runs: relative to where training ran) is looked up from the working directory,
    then from each of the run's parent directories; returned as stored when found nowhere."""
    file = Path(run_dir) / "config.yaml"
    if not file.is_file():
        return None
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    corpus = data.get("corpus") if isinstance(data, dict) else None
    if not isinstance(corpus, str):
        return None
    path = Path(corpus)
    if path.is_absolute() or path.is_dir():
        return corpus
    for parent in Path(run_dir).resolve().parents:
        if (parent / path).is_dir():
            return str(parent / path)
    return corpus


def find_run_corpus(run_dir: str | Path) -> str:
    """:func:`corpus_from_run`, or one error saying what to pass when it names none or a
    directory that is not there (a moved or copied run)."""
    corpus = corpus_from_run(run_dir)
    config = Path(run_dir) / "config.yaml"
    if corpus is None:
        raise InputError(f"no --corpus given and {config} names none: pass --corpus DIR")
    if not Path(corpus).is_dir():
        relative = "" if Path(corpus).is_absolute() else ", relative to where the run was trained"
        raise MissingPathError(
            f"the corpus of {run_dir}, {corpus!r} in {config}{relative}, is not a directory "
            "here: pass --corpus DIR (the corpus the run was trained with)"
        )
    return corpus


def run_label(run_dir: str | Path) -> str:
    return Path(run_dir).resolve().name


def evaluate_runs(
    runs: Sequence[str | Path],
    dataset: str,
    data: str | Path,
    config: EvaluateConfig,
    corpus_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    train_data_dir: str | Path | None = None,
) -> EvaluationReport:
    """`rar evaluate`: each baseline's and run's retriever alone and (with a ranker) re-ranked,
    plus LLM-only. Baselines are fitted on `dataset`'s train split of `data` (a directory) or,
    when `data` is a file, of `train_data_dir`."""
    from rar.corpus import Corpus

    _check_inputs(runs, config, out_dir)
    corpus_dir = _corpus_dir(runs, corpus_dir)
    corpus = Corpus.load(corpus_dir)
    samples, source = load_eval_samples(dataset, data, config.split)
    ranker = None
    if config.ranker is not None:
        from rar.rankers import build_ranker

        ranker = build_ranker(config.ranker, corpus)
    fitted = fit_baselines(config, dataset, data, corpus, train_data_dir)
    systems = _systems(config, fitted, runs, corpus, ranker)
    if out_dir is None:
        base = Path(runs[0]) if runs else Path("runs") / ("baselines" if fitted else "llm-only")
        tag = Path(data).stem if Path(data).is_file() else config.split
        out_dir = check_output_dir(base / "eval" / f"{dataset}-{tag}")
    try:
        report = evaluate_systems(
            samples,
            corpus,
            systems,
            config,
            out_dir=out_dir,
            dataset=dataset,
            data_source=source,
            progress=progress,
            data_path=data,
            corpus_dir=corpus_dir,
        )
    finally:
        if ranker is not None:
            ranker.close()
    if fitted and report.out_dir is not None:
        save_baseline_fits(fitted, report.out_dir)
    return report


def _check_inputs(
    runs: Sequence[str | Path], config: EvaluateConfig, out_dir: str | Path | None
) -> None:
    """Refuse before any work: an output directory that is not ours, nothing to evaluate, a
    missing run directory."""
    if out_dir is not None:
        check_output_dir(out_dir)
    if not runs and not config.llm_only and not config.baselines:
        raise InputError(
            "give at least one --run or --baseline (or --llm-only with an LLM --ranker)"
        )
    for run in runs:
        if not Path(run).is_dir():
            raise MissingPathError(f"run directory not found: {run}")


def _corpus_dir(runs: Sequence[str | Path], corpus_dir: str | Path | None) -> str | Path:
    """`corpus_dir`, else the corpus the first run naming one was trained with; it must exist."""
    if corpus_dir is None:
        if not runs:
            raise InputError("give --corpus: baselines are served over a corpus directory")
        named = [run for run in runs if corpus_from_run(run)]
        corpus_dir = find_run_corpus(named[0] if named else runs[0])
    if not Path(corpus_dir).is_dir():
        raise MissingPathError(
            f"corpus directory not found: {corpus_dir} (build it with `rar build-corpus`)"
        )
    return corpus_dir


def _systems(
    config: EvaluateConfig,
    fitted: Sequence[Any],
    runs: Sequence[str | Path],
    corpus: Corpus,
    ranker: Ranker | None,
) -> list[System]:
    """Each baseline, then each run: alone (with `retriever_only`, or without a ranker) and
    re-ranked (with one); then the LLM alone (`llm_only`, which needs an LLM ranker)."""
    from rar.retrievers import load_pretrained_run

    sources: list[tuple[str, Any, str]] = [
        (fit.baseline.label, fit.baseline, fit.source()) for fit in fitted
    ]
    sources += [(run_label(run), load_pretrained_run(run, corpus), str(run)) for run in runs]
    systems: list[System] = []
    for label, retriever, source in sources:
        if config.retriever_only or ranker is None:
            systems.append(System(label, retriever, None, source))
        if ranker is not None:
            systems.append(System(f"{label} + {ranker_label(config)}", retriever, ranker, source))
    if config.llm_only:
        if ranker is None:
            raise InputError(f"--llm-only needs an LLM --ranker ({', '.join(LLM_RANKER_NAMES)})")
        systems.append(System(f"{ranker_label(config)} only", None, ranker, "llm-only"))
    return systems


BASELINES_JSON = "baselines.json"


def fit_baselines(
    config: EvaluateConfig,
    dataset: str,
    data: str | Path,
    corpus: Corpus,
    train_data_dir: str | Path | None = None,
) -> list[Any]:
    """`config.baselines` fitted on `dataset`'s train split (hyperparameters chosen on val
    unless `tune_baselines` is off): a list of `rar.baselines.FittedBaseline`."""
    if not config.baselines:
        return []
    from rar.baselines import fit_on_dataset
    from rar.paths import resolve_data_dir

    root = Path(data) if Path(data).is_dir() else resolve_data_dir(train_data_dir)
    return [
        fit_on_dataset(
            name,
            dataset,
            root,
            corpus,
            k=config.k,
            tune=config.tune_baselines,
            match_threshold=config.match_threshold,
        )
        for name in config.baselines
    ]


def save_baseline_fits(fitted: Sequence[Any], out_dir: str | Path) -> Path:
    """What each baseline was fitted on and the validation grid it was chosen from."""
    import json

    from rar.atomic_files import atomic_write_text

    path = Path(out_dir) / BASELINES_JSON
    return atomic_write_text(path, json.dumps([f.as_dict() for f in fitted], indent=2))


def ranker_label(config: EvaluateConfig) -> str:
    r = config.ranker
    if r is None:
        return ""
    return f"{r.backend}:{r.model}" if RANKERS[r.backend].llm else r.backend
