"""The quickstart: every stage of RAR end to end on the real data, in minutes on a CPU.

corpus → pretrain LRURec on MovieLens → SFT on ReDial to convergence → fit the trained offline
ranker on ReDial's training split (its weights chosen on the SFT run's validation top-25) → RAR:
DPO from the SFT run with that ranker's rewards → evaluate most-popular, ItemKNN and EASE
(fitted on the train split), the retrievers alone and + ranker on the held-back ReDial test
split → hallucination, popularity and paired-comparison reports.

Each stage reuses its output when it is already complete (a finished run has metrics.json), so
an interrupted quickstart picks up where it stopped; `fresh=True` starts again.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rar.config import load_config, resolve_config
from rar.errors import InputError, MissingPathError
from rar.tracking import is_finished

QUICKSTART_BASELINES = ("most-popular", "itemknn", "ease")  # cheap: fitted in seconds
STAGES = 7


@dataclass
class QuickstartResult:
    out_dir: Path
    corpus_dir: Path
    runs: dict[str, Path]
    evaluation_dir: Path
    report_files: dict[str, dict[str, Path]]
    table: str
    seconds: dict[str, float] = field(default_factory=dict)


def _config_path(name: str) -> Path:
    """A packaged config (rar/configs/), found wherever the package is installed."""
    return resolve_config(name)


def run_quickstart(
    data_dir: Path,
    out_dir: Path = Path("runs/quickstart"),
    fresh: bool = False,
    overrides: dict[str, list[str]] | None = None,
    progress: bool = True,
    say: Callable[[str], None] = print,
    corpus: Path | None = None,
) -> QuickstartResult:
    """Run every stage; `overrides` maps a stage (corpus, pretrain, sft, rar, evaluate; `train`
    applies to both sft and rar) to extra `--set` style overrides (the tests use them to shrink
    budgets). `corpus` names an existing corpus directory to use instead of building one."""
    from corpus_builder.build import build_corpus
    from corpus_builder.corpus_config import CorpusConfig
    from rar.baselines import fit_on_dataset
    from rar.corpus import Corpus
    from rar.evaluation.evaluate_config import EvaluateConfig
    from rar.evaluation.evaluator import SystemSpec, evaluate_systems
    from rar.evaluation.ranker_fit import fit_from_data
    from rar.evaluation.runner import load_eval_samples, save_baseline_fits
    from rar.rankers import RankerConfig
    from rar.rankers.semantic_ranker import SemanticRanker
    from rar.rankers.trained_ranker import TrainedModel, TrainedRanker
    from rar.retrievers import load_pretrained_run
    from rar.retrievers.pretrain import pretrain
    from rar.retrievers.pretrain_config import PretrainConfig
    from rar.rl.train_config import TrainConfig
    from rar.rl.trainer import train

    overrides = overrides or {}
    out_dir = Path(out_dir)
    if fresh and out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_dir = out_dir / "runs"
    corpus_dir = Path(corpus) if corpus is not None else out_dir / "corpus"
    seconds: dict[str, float] = {}

    # 1. corpus
    clock = time.perf_counter()
    if (corpus_dir / "manifest.json").exists():
        say(f"[1/{STAGES}] corpus: reusing {corpus_dir}")
    elif corpus is not None:
        raise MissingPathError(f"--corpus {corpus_dir} is not a built corpus (no manifest.json)")
    else:
        say(f"[1/{STAGES}] building the movie corpus (merge, link, embed, index)")
        corpus_config = load_config(
            CorpusConfig, _config_path("corpus_quickstart.yaml"), overrides.get("corpus")
        )
        build_corpus(data_dir, corpus_dir, corpus_config, progress=progress)
    movies = Corpus.load(corpus_dir)
    seconds["corpus"] = time.perf_counter() - clock
    say(f"      {len(movies):,} movies")

    # 2. pretrain LRURec on MovieLens sessions
    clock = time.perf_counter()
    pre_config = load_config(
        PretrainConfig,
        _config_path("pretrain_quickstart.yaml"),
        [
            f"corpus={corpus_dir}",
            f"tracking.runs_dir={runs_dir}",
            *overrides.get("pretrain", []),
        ],
    )
    pre_dir = runs_dir / pre_config.name
    if is_finished(pre_dir):
        say(f"[2/{STAGES}] pretrained retriever: reusing {pre_dir}")
    else:
        say(f"[2/{STAGES}] pretraining LRURec on MovieLens sessions")
        pretrain(pre_config, data_dir=data_dir, corpus=movies, overwrite=True, progress=progress)
    seconds["pretrain"] = time.perf_counter() - clock

    # 3. SFT to convergence; 4. the trained ranker; 5. RAR (DPO from the SFT run)
    run_dirs: dict[str, Path] = {"retriever": pre_dir}

    def post_train(
        stage: int, label: str, key: str, config: str, sets: list[str], what: str, ranker
    ):
        """Train (or reuse) one post-training run; `key` names its override stage."""
        clock = time.perf_counter()
        train_config = load_config(
            TrainConfig,
            _config_path(config),
            [
                f"corpus={corpus_dir}",
                f"data.data_dir={data_dir}",
                f"tracking.runs_dir={runs_dir}",
                *sets,
                *overrides.get("train", []),
                *overrides.get(key, []),
            ],
        )
        run_dir = runs_dir / train_config.name
        if is_finished(run_dir):
            say(f"[{stage}/{STAGES}] {label}: reusing {run_dir}")
        else:
            say(f"[{stage}/{STAGES}] {label}: {what}")
            train(train_config, overwrite=True, corpus=movies, ranker=ranker, progress=progress)
        seconds[key] = time.perf_counter() - clock
        return run_dir

    run_dirs["sft"] = post_train(
        3,
        "SFT",
        "sft",
        "train_quickstart.yaml",
        [f"pretrained_run={pre_dir}"],
        "post-training on ReDial to convergence (NLL, early stopping)",
        None,
    )

    clock = time.perf_counter()
    ranker_dir = runs_dir / "ranker-redial"
    # one MiniLM embedder for the ranker's fit, RL and evaluation: each turn is embedded once
    embedder = SemanticRanker(RankerConfig(backend="semantic"), movies)
    if (ranker_dir / "config.json").is_file():
        say(f"[4/{STAGES}] trained ranker: reusing {ranker_dir}")
        model = TrainedModel.load(ranker_dir)
    else:
        say(
            f"[4/{STAGES}] fitting the offline ranker on ReDial's training split "
            "(weights chosen on the SFT run's validation top-25)"
        )
        model = fit_from_data(
            "redial", data_dir, movies, run_dir=str(run_dirs["sft"]), k=25, embedder=embedder
        )
        model.save(ranker_dir)
    say(
        f"      retriever_weight {model.retriever_weight}, cooc_weight {model.cooc_weight}, "
        f"l2 {model.meta.get('l2')}"
    )
    ranker_config = RankerConfig(backend="trained", trained={"path": str(ranker_dir)})
    ranker = TrainedRanker(ranker_config, movies, model=model)
    ranker._text_cache = embedder._text_cache
    seconds["ranker"] = time.perf_counter() - clock

    run_dirs["dpo"] = post_train(
        5,
        "RAR (DPO)",
        "rar",
        "dpo_quickstart.yaml",
        [f"pretrained_run={run_dirs['sft']}", f"ranker.trained.path={ranker_dir}"],
        "DPO from the SFT run with the trained ranker's rewards",
        ranker,
    )
    rar_metrics = json.loads((run_dirs["dpo"] / "metrics.json").read_text(encoding="utf-8"))
    if rar_metrics.get("best_step") == 0:
        say(
            "      no DPO checkpoint beat the SFT model on validation: RAR keeps step 0, the SFT "
            "model itself (docs/rl.md)"
        )

    # 4. evaluate on the held-back test split
    clock = time.perf_counter()
    say(
        f"[6/{STAGES}] evaluating most-popular, ItemKNN, EASE, the retrievers alone and "
        "+ ranker on the ReDial test split"
    )
    eval_config = load_config(
        EvaluateConfig,
        _config_path("evaluate_quickstart.yaml"),
        [f"ranker.trained.path={ranker_dir}", *overrides.get("evaluate", [])],
    )
    if eval_config.ranker is None or eval_config.ranker.backend != "trained":
        raise InputError(
            "the quickstart evaluates with the trained ranker (ranker.backend: trained)"
        )
    evaluation_dir = out_dir / "evaluation"
    samples, source = load_eval_samples("redial", data_dir, eval_config.split)
    retrievers = {name: load_pretrained_run(path, movies) for name, path in run_dirs.items()}
    # the floors every system must clear: fitted on ReDial's train split, chosen on val
    baselines = [
        fit_on_dataset(name, "redial", data_dir, movies, k=eval_config.k)
        for name in QUICKSTART_BASELINES
    ]
    systems = [
        *(SystemSpec(b.baseline.label, b.baseline, None, b.source()) for b in baselines),
        SystemSpec("LRURec (retriever only)", retrievers["retriever"], None, str(pre_dir)),
        SystemSpec("SFT (retriever only)", retrievers["sft"], None, str(run_dirs["sft"])),
        SystemSpec("SFT + ranker", retrievers["sft"], ranker, str(run_dirs["sft"])),
        SystemSpec("RAR (DPO)", retrievers["dpo"], None, str(run_dirs["dpo"])),
        SystemSpec("RAR (DPO) + ranker", retrievers["dpo"], ranker, str(run_dirs["dpo"])),
    ]
    try:
        report = evaluate_systems(
            samples,
            movies,
            systems,
            eval_config,
            out_dir=evaluation_dir,
            dataset="redial",
            data_source=source,
            progress=progress,
            data_path=data_dir,
            corpus_dir=corpus_dir,
        )
    finally:
        ranker.close()
    save_baseline_fits(baselines, evaluation_dir)
    from rar.evaluation.failed_calls import check_failed_calls

    for warning in check_failed_calls(report.to_dict()["systems"], eval_config.max_failed_share):
        say(f"warning: {warning}")
    seconds["evaluate"] = time.perf_counter() - clock

    # 5. reports
    clock = time.perf_counter()
    say(f"[7/{STAGES}] writing reports (hallucination, popularity, paired comparison)")
    from rar.evaluation.reports import standard_reports

    written = standard_reports(
        evaluation_dir,
        pairs=[
            ("ItemKNN", "SFT (retriever only)"),
            ("SFT (retriever only)", "SFT + ranker"),
            ("SFT + ranker", "RAR (DPO) + ranker"),
        ],
        out_dir=out_dir / "reports",
    )
    seconds["reports"] = time.perf_counter() - clock
    return QuickstartResult(
        out_dir=out_dir,
        corpus_dir=corpus_dir,
        runs=run_dirs,
        evaluation_dir=evaluation_dir,
        report_files=written,
        table=report.to_markdown(),
        seconds=seconds,
    )


def headline_rows(evaluation: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(system, [N@5, R@5, N@10, R@10]) rows from an evaluation.json dict, for the terminal."""
    rows = []
    for name, system in evaluation["systems"].items():
        metrics = system["metrics"]
        rows.append(
            (
                name,
                [
                    f"{metrics.get(k, float('nan')):.4f}"
                    for k in ("ndcg@5", "recall@5", "ndcg@10", "recall@10")
                ],
            )
        )
    return rows
