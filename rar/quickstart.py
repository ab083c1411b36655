"""The quickstart: every stage of RAR end to end on the real data, in minutes on a CPU.

corpus → pretrain LRURec on MovieLens → three SFT runs on ReDial to convergence (the paper's
item-only LRURec, the text tower alone, and the recommended fused policy that reads both the
movies named so far and the conversation) → fit the trained offline ranker on ReDial's training
split (its weights chosen on the fused policy's validation top-25) → RAR: RL from the fused SFT
run with that ranker's feedback → evaluate most-popular, ItemKNN and EASE (fitted on the train
split) and every policy alone and + ranker on the held-back test split, with the retrieval
ceiling (R@25, R@50) and N@10 on cold targets → hallucination, popularity and paired reports.

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
from typing import TYPE_CHECKING, Any

from rar.config import load_config, resolve_config
from rar.errors import InputError, MissingPathError
from rar.tracking import is_finished

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.evaluation.results import EvaluationReport
    from rar.rankers.trained_ranker import TrainedRanker

QUICKSTART_BASELINES = ("most-popular", "itemknn", "ease")  # cheap: fitted in seconds
STAGES = 9
# (run name, overrides, table label) of the three SFT policies, in table order
POLICIES = (
    ("quickstart-sft", ["towers=item"], "LRURec SFT (item only, paper)"),
    ("quickstart-sft-text", ["towers=text"], "Text tower SFT (PECRS-style)"),
    ("quickstart-sft-fused", ["towers=fused", "cooc_prior=true"], "Fused SFT (recommended)"),
)
RAR_LABEL = "RAR (fused + RL)"
PAIRS = (  # (A, B): the paired tests the quickstart prints
    ("LRURec SFT (item only, paper)", "Fused SFT (recommended)"),
    ("Fused SFT (recommended)", "Fused SFT (recommended) + ranker"),  # what the ranker adds
    ("EASE + ranker", "Fused SFT (recommended) + ranker"),
    ("Fused SFT (recommended) + ranker", f"{RAR_LABEL} + ranker"),
)


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


@dataclass
class Quickstart:
    """What every stage shares: where things go, the overrides, and how to report."""

    data_dir: Path
    out_dir: Path
    corpus_dir: Path
    overrides: dict[str, list[str]]
    progress: bool
    say: Callable[[str], None]
    seconds: dict[str, float] = field(default_factory=dict)
    dataset: str = "redial"

    @property
    def runs_dir(self) -> Path:
        return self.out_dir / "runs"

    def corpus(self, given: bool) -> Corpus:
        """Stage 1: build the corpus (or reuse it)."""
        from corpus_builder.build import build_corpus
        from corpus_builder.corpus_config import CorpusConfig
        from rar.corpus import Corpus

        clock = time.perf_counter()
        if (self.corpus_dir / "manifest.json").exists():
            self.say(f"[1/{STAGES}] corpus: reusing {self.corpus_dir}")
        elif given:
            raise MissingPathError(
                f"--corpus {self.corpus_dir} is not a built corpus (no manifest.json)"
            )
        else:
            self.say(f"[1/{STAGES}] building the movie corpus (merge, link, embed, index)")
            config = load_config(
                CorpusConfig, _config_path("corpus_quickstart.yaml"), self.overrides.get("corpus")
            )
            build_corpus(self.data_dir, self.corpus_dir, config, progress=self.progress)
        movies = Corpus.load(self.corpus_dir)
        self.seconds["corpus"] = time.perf_counter() - clock
        self.say(f"      {len(movies):,} movies")
        return movies

    def pretrain(self, movies: Corpus) -> Path:
        """Stage 2: pretrain LRURec on MovieLens sessions (or reuse it)."""
        from rar.retrievers.pretrain import pretrain
        from rar.retrievers.pretrain_config import PretrainConfig

        clock = time.perf_counter()
        config = load_config(
            PretrainConfig,
            _config_path("pretrain_quickstart.yaml"),
            [
                f"corpus={self.corpus_dir}",
                f"tracking.runs_dir={self.runs_dir}",
                *self.overrides.get("pretrain", []),
            ],
        )
        run_dir = self.runs_dir / config.name
        if is_finished(run_dir):
            self.say(f"[2/{STAGES}] pretrained retriever: reusing {run_dir}")
        else:
            self.say(f"[2/{STAGES}] pretraining LRURec on MovieLens sessions")
            pretrain(config, data_dir=self.data_dir, corpus=movies, overwrite=True,
                     progress=self.progress)  # fmt: skip
        self.seconds["pretrain"] = time.perf_counter() - clock
        return run_dir

    def post_train(
        self, stage: int, label: str, key: str, config: str, sets: list[str], what: str,
        movies: Corpus, ranker: TrainedRanker | None = None,
    ) -> Path:  # fmt: skip
        """Train (or reuse) one post-training run; `key` names its override stage."""
        from rar.rl.train_config import TrainConfig
        from rar.rl.trainer import train

        clock = time.perf_counter()
        train_config = load_config(
            TrainConfig,
            _config_path(config),
            [
                f"corpus={self.corpus_dir}",
                f"data.data_dir={self.data_dir}",
                f"data.dataset={self.dataset}",
                f"tracking.runs_dir={self.runs_dir}",
                *sets,
                *self.overrides.get("train", []),
                *self.overrides.get(key, []),
            ],
        )
        run_dir = self.runs_dir / train_config.name
        if is_finished(run_dir):
            self.say(f"[{stage}/{STAGES}] {label}: reusing {run_dir}")
        else:
            self.say(f"[{stage}/{STAGES}] {label}: {what}")
            train(train_config, overwrite=True, corpus=movies, ranker=ranker,
                  progress=self.progress)  # fmt: skip
        self._say_fusion(run_dir)
        self.seconds[key] = time.perf_counter() - clock
        return run_dir

    def _say_fusion(self, run_dir: Path) -> None:
        """One line on the fused policy's weights, when SFT re-fitted them (fusion.json)."""
        from rar.retrievers.fusion import FUSION_FILE

        path = run_dir / FUSION_FILE
        if path.is_file():
            fit = json.loads(path.read_text(encoding="utf-8"))
            weights = ", ".join(f"{k} {v:.3g}" for k, v in fit["weights"].items())
            self.say(
                f"      fusion weights fitted on validation ({weights}): retriever val N@10 "
                f"{fit['val_ndcg10_before']:.4f} -> {fit['val_ndcg10_after']:.4f}"
            )

    def sft_runs(self, movies: Corpus, pre_dir: Path) -> dict[str, Path]:
        """Stages 3-5: the item-only, text-only and fused policies, each SFT to convergence."""
        runs = {}
        for stage, (name, sets, label) in enumerate(POLICIES, start=3):
            runs[name] = self.post_train(
                stage,
                label,
                "sft",
                "train_quickstart.yaml",
                [f"pretrained_run={pre_dir}", f"name={name}", *sets],
                f"post-training on {self.dataset} to convergence (NLL, early stopping)",
                movies,
            )
        return runs

    def ranker(self, movies: Corpus, policy_run: Path) -> tuple[TrainedRanker, Path]:
        """Stage 6: fit the trained offline ranker (or reuse it)."""
        from rar.evaluation.ranker_fit import fit_from_data
        from rar.rankers import RankerConfig
        from rar.rankers.trained_ranker import TrainedModel, TrainedRanker

        clock = time.perf_counter()
        ranker_dir = self.runs_dir / f"ranker-{self.dataset}"
        if (ranker_dir / "config.json").is_file():
            self.say(f"[6/{STAGES}] trained ranker: reusing {ranker_dir}")
            model = TrainedModel.load(ranker_dir)
        else:
            self.say(
                f"[6/{STAGES}] fitting the offline ranker on {self.dataset}'s training split "
                "(weights chosen on the fused policy's validation top-25)"
            )
            model = fit_from_data(self.dataset, self.data_dir, movies, run_dir=str(policy_run))
            model.save(ranker_dir)
        self.say(
            f"      retriever_weight {model.retriever_weight}, cooc_weight {model.cooc_weight}, "
            f"l2 {model.meta.get('l2')}"
        )
        config = RankerConfig(backend="trained", trained={"path": str(ranker_dir)})
        self.seconds["ranker"] = time.perf_counter() - clock
        return TrainedRanker(config, movies, model=model), ranker_dir

    def rar(self, movies: Corpus, fused: Path, ranker: TrainedRanker, ranker_dir: Path) -> Path:
        """Stage 7: RAR, RL from the fused SFT run with the trained ranker's feedback (or reuse
        it); says so when no RL checkpoint beat the SFT model it started from."""
        run_dir = self.post_train(
            7,
            RAR_LABEL,
            "rar",
            "rar_quickstart.yaml",
            [f"pretrained_run={fused}", f"ranker.trained.path={ranker_dir}"],
            "RL from the fused SFT run with the trained ranker's feedback",
            movies,
            ranker,
        )
        metrics = json.loads((run_dir / "metrics.json").read_text())
        if metrics.get("best_step") == 0:
            self.say(
                "      no RL checkpoint beat the fused SFT model on validation: RAR keeps step 0, "
                "the SFT model itself (docs/rl.md)"
            )
        return run_dir

    def evaluate(
        self, movies: Corpus, run_dirs: dict[str, Path], ranker: TrainedRanker, ranker_dir: Path
    ) -> EvaluationReport:
        """Stage 8: every system on the held-back test split, plus the ceiling and cold N@10."""
        from rar.baselines import fit_on_dataset
        from rar.evaluation.evaluate_config import EvaluateConfig
        from rar.evaluation.evaluator import evaluate_systems
        from rar.evaluation.runner import load_eval_samples, save_baseline_fits
        from rar.pipeline import System
        from rar.retrievers import load_pretrained_run

        clock = time.perf_counter()
        self.say(
            f"[8/{STAGES}] evaluating the baselines and every policy, alone and + ranker, on the "
            f"{self.dataset} test split"
        )
        config = load_config(
            EvaluateConfig,
            _config_path("evaluate_quickstart.yaml"),
            [f"ranker.trained.path={ranker_dir}", *self.overrides.get("evaluate", [])],
        )
        if config.ranker is None or config.ranker.backend != "trained":
            raise InputError(
                "the quickstart evaluates with the trained ranker (ranker.backend: trained)"
            )
        evaluation_dir = self.out_dir / "evaluation"
        samples, source = load_eval_samples(self.dataset, self.data_dir, config.split)
        baselines = [
            fit_on_dataset(name, self.dataset, self.data_dir, movies, k=config.k)
            for name in QUICKSTART_BASELINES
        ]
        systems = [System(b.baseline.label, b.baseline, None, b.source()) for b in baselines]
        ease = baselines[-1]
        systems.append(System("EASE + ranker", ease.baseline, ranker, ease.source()))
        labels = {name: label for name, _, label in POLICIES} | {"quickstart-rar": RAR_LABEL}
        for name, path in run_dirs.items():
            policy = load_pretrained_run(path, movies)
            systems.append(System(labels[name], policy, None, str(path)))
            systems.append(System(f"{labels[name]} + ranker", policy, ranker, str(path)))
        report = evaluate_systems(
            samples, movies, systems, config, out_dir=evaluation_dir, dataset=self.dataset,
            data_source=source, progress=self.progress, data_path=self.data_dir,
            corpus_dir=self.corpus_dir,
        )  # fmt: skip
        save_baseline_fits(baselines, evaluation_dir)
        from rar.evaluation.failed_calls import check_failed_calls

        for warning in check_failed_calls(report.to_dict()["systems"], config.max_failed_share):
            self.say(f"warning: {warning}")
        self.ceiling(movies, samples, systems, config, report, evaluation_dir)
        self.seconds["evaluate"] = time.perf_counter() - clock
        return report

    def ceiling(self, movies, samples, systems, config, report, evaluation_dir: Path) -> None:
        """R@25 and R@50 of every candidate source's own top-50, and N@10 on cold targets of
        every system, written to evaluation/ceiling.json."""
        from rar.atomic_files import atomic_write_text
        from rar.evaluation.ceiling import cold_mask, cold_mean, retrieval_ceiling, training_targets
        from rar.evaluation.evaluator import Evaluator

        linked, _ = Evaluator(movies, config, progress=False).link(samples)
        seen = training_targets(self.dataset, self.data_dir, movies)
        out: dict[str, Any] = {
            "cold_rows": int(cold_mask((r.target_ids for r in linked), seen).sum()),
            "rows": len(linked),
            "systems": {},
        }
        by_source: dict[int, dict[str, float]] = {}
        for spec in systems:
            key = id(spec.retriever)
            if key not in by_source:
                by_source[key] = retrieval_ceiling(spec.retriever, linked, movies)
            records = report.system(spec.name).records
            out["systems"][spec.name] = by_source[key] | {"cold/ndcg@10": cold_mean(records, seen)}
        atomic_write_text(evaluation_dir / "ceiling.json", json.dumps(out, indent=2) + "\n")

    def reports(self, evaluation_dir: Path) -> dict[str, dict[str, Path]]:
        """Stage 9: hallucination, popularity and the paired comparisons."""
        from rar.evaluation.reports import standard_reports

        clock = time.perf_counter()
        self.say(f"[9/{STAGES}] writing reports (hallucination, popularity, paired comparison)")
        written = standard_reports(
            evaluation_dir, pairs=list(PAIRS), out_dir=self.out_dir / "reports"
        )
        self.seconds["reports"] = time.perf_counter() - clock
        return written


def run_quickstart(
    data_dir: Path,
    out_dir: Path = Path("runs/quickstart"),
    fresh: bool = False,
    overrides: dict[str, list[str]] | None = None,
    progress: bool = True,
    say: Callable[[str], None] = print,
    corpus: Path | None = None,
    dataset: str = "redial",
) -> QuickstartResult:
    """Run every stage; `overrides` maps a stage (corpus, pretrain, sft, rar, evaluate; `train`
    applies to every post-training run) to extra `--set` style overrides (the tests use them to
    shrink budgets). `corpus` names an existing corpus directory to use instead of building one.
    `dataset` is the conversation dataset (redial; experiments run inspired)."""
    out_dir = Path(out_dir)
    if fresh and out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus_dir = Path(corpus) if corpus is not None else out_dir / "corpus"
    qs = Quickstart(data_dir, out_dir, corpus_dir, overrides or {}, progress, say, dataset=dataset)
    movies = qs.corpus(given=corpus is not None)
    pre_dir = qs.pretrain(movies)
    run_dirs = qs.sft_runs(movies, pre_dir)
    fused = run_dirs["quickstart-sft-fused"]
    ranker, ranker_dir = qs.ranker(movies, fused)
    try:
        run_dirs["quickstart-rar"] = qs.rar(movies, fused, ranker, ranker_dir)
        report = qs.evaluate(movies, run_dirs, ranker, ranker_dir)
    finally:
        ranker.close()
    written = qs.reports(out_dir / "evaluation")
    run_dirs["retriever"] = pre_dir
    return QuickstartResult(
        out_dir=out_dir,
        corpus_dir=corpus_dir,
        runs=run_dirs,
        evaluation_dir=out_dir / "evaluation",
        report_files=written,
        table=report.to_markdown(),
        seconds=qs.seconds,
    )


def headline_rows(
    evaluation: dict[str, Any], ceiling: dict[str, Any]
) -> list[tuple[str, list[str]]]:
    """(system, [N@10, R@10, R@25, R@50, cold N@10]) rows from evaluation.json and
    ceiling.json dicts, for the terminal. R@25 and R@50 are the candidate source's own."""
    rows = []
    for name, system in evaluation["systems"].items():
        metrics = system["metrics"]
        extra = ceiling["systems"].get(name, {})
        values = [metrics.get("ndcg@10"), metrics.get("recall@10"), extra.get("recall@25"),
                  extra.get("recall@50"), extra.get("cold/ndcg@10")]  # fmt: skip
        rows.append((name, [f"{v:.4f}" if v is not None else "—" for v in values]))
    return rows
