"""Evaluate recommender systems on conversation samples: metrics with CIs, costs, per-sample output.

Systems (one :class:`System` each):
- retriever only: its top-k order is the recommendation;
- retriever + ranker (SFT / RAR runs): the ranker re-ranks the retriever's top-k;
- LLM only: no retrieval; an LLM names movies, matched to every corpus title.

Python entry point (what `rar evaluate` and `rar quickstart` call)::

    report = evaluate_systems(samples, corpus, [System("RAR", retriever, ranker)],
                              EvaluateConfig(k=25), out_dir=run_dir / "eval" / "redial-test")
    print(report.to_markdown())

This module is the loop; what it returns and writes is `rar.evaluation.results`, the markdown
`rar.evaluation.markdown`, the terminal table `rar.evaluation.result_table`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rar.data.linking import LinkedSample, SampleLinkStats, expand_rows, link_samples
from rar.data.types import Sample
from rar.errors import InputError
from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.results import EvaluationReport, SystemResult
from rar.pipeline import System, retrieve, score, scored_ranking
from rar.rankers.llm_only import llm_only_ranker

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.rankers.llm_only import LLMOnlyRanker

Record = dict[str, object]  # one row of samples/<system>.jsonl: JSON values by field name


class Evaluator:
    """Runs systems over linked samples and scores them with `rar.metrics`."""

    def __init__(self, corpus: Corpus, config: EvaluateConfig | None = None, progress: bool = True):
        self.corpus = corpus
        self.config = config or EvaluateConfig()
        self.progress = progress

    # ---- samples -------------------------------------------------------------------------
    def link(self, samples: Sequence[Sample]) -> tuple[list[LinkedSample], SampleLinkStats]:
        """Link to corpus ids (dropping, and counting, samples with no linked target),
        subsample to `max_samples` turns with the config seed, then expand them into the rows
        of `config.protocol` (so both protocols score the same turns)."""
        linked, stats = link_samples(samples, self.corpus, self.config.match_threshold)
        if self.config.max_samples is not None and len(linked) > self.config.max_samples:
            rng = random.Random(self.config.seed)
            keep = sorted(rng.sample(range(len(linked)), self.config.max_samples))
            linked = [linked[i] for i in keep]
        stats.samples_evaluated = len(linked)
        linked = expand_rows(linked, self.config.protocol)
        stats.protocol = self.config.protocol
        stats.rows = len(linked)
        return linked, stats

    # ---- systems -------------------------------------------------------------------------
    def evaluate(
        self,
        spec: System,
        linked: Sequence[LinkedSample],
        candidates: Sequence[list[str]] | None = None,
    ) -> SystemResult:
        """Run one system on linked samples (`candidates` reuses an earlier retrieval)."""
        kind = spec.kind
        start = time.perf_counter()
        stats_before = spec.ranker.stats() if spec.ranker is not None else None
        if spec.retriever is None:
            assert spec.ranker is not None  # `kind` refused a system with neither
            rankings, extras = self._llm_only(llm_only_ranker(spec.ranker), linked)
        else:
            rankings, extras = self._retrieve_and_rank(spec, linked, candidates)
        ranker_stats = None
        if spec.ranker is not None and stats_before is not None:
            # only what this system spent: a ranker may be shared between systems
            spent = spec.ranker.stats() - stats_before
            ranker_stats = spec.ranker.info() | spent.as_dict()
        seconds = time.perf_counter() - start
        return self.score(
            spec.name, kind, linked, rankings, extras, ranker_stats, spec.source, seconds
        )

    def _llm_only(
        self, ranker: LLMOnlyRanker, linked: Sequence[LinkedSample]
    ) -> tuple[list[list[str]], list[Record]]:
        """The movies the LLM names for each row, and what each record adds about them."""
        # per-item rows of one turn are one request (the LLM reads the same conversation)
        turns = {item.turn_id or item.sample.sample_id: item for item in linked}
        answers = ranker.recommend(
            [(turn, item.sample.context) for turn, item in turns.items()],
            self.config.llm_only_items,
            self.config.match_threshold,
            self.progress,
        )
        by_turn = dict(zip(turns, answers, strict=True))
        results = [by_turn[item.turn_id or item.sample.sample_id] for item in linked]
        extras: list[Record] = [
            {
                "predicted": r.predicted,
                "hallucinations": r.hallucinations,
                "non_titles": r.non_titles,
                "n_predicted": len(r.predicted),
                "error": r.error,
                "cached": r.cached,
                "usage": r.usage,
            }
            for r in results
        ]
        return [scored_ranking(r) for r in results], extras

    def _retrieve_and_rank(
        self,
        spec: System,
        linked: Sequence[LinkedSample],
        candidates: Sequence[list[str]] | None,
    ) -> tuple[list[list[str]], list[Record]]:
        """The retriever's top-k (re-ranked when the system has a ranker) for each row, and
        what each record adds: the candidates and the ranker's reply."""
        ran = spec.run(
            linked,
            self.corpus,
            k=self.config.k,
            ks=self.config.ks,
            candidates=candidates,
            batch_size=self.config.batch_size,
            ranker_batch=self.config.ranker_batch,
            progress=self.progress,
        )
        extras: list[Record] = [{} for _ in linked]
        for extra, r in zip(extras, ran.results or [], strict=ran.results is not None):
            extra.update(
                hallucinations=list(r.hallucinations),
                non_titles=list(r.non_titles),
                n_predicted=int(r.usage.get("n_items", 0)),  # title attempts
                n_model_ranked=r.n_model_ranked,
                n_appended=r.n_appended,
                error=r.error,
                cached=r.cached,
                usage=r.usage,
            )
        for extra, c in zip(extras, ran.candidates, strict=True):
            extra["candidates"] = c
        # scored: what the ranker itself ranked (an LLM's missing labels are misses);
        # a failed call is a miss, never its retriever-order fallback
        return ran.rankings, extras

    def score(
        self,
        name: str,
        kind: str,
        linked: Sequence[LinkedSample],
        rankings: Sequence[list[str]],
        extras: Sequence[Record] | None = None,
        ranker_stats: dict[str, object] | None = None,
        source: str = "",
        seconds: float = 0.0,
    ) -> SystemResult:
        """Per-sample metrics, their means with standard errors and 95% CIs, and records."""
        per_sample = score(rankings, linked, self.config.ks)
        metrics, metrics_ci = _summaries(per_sample)
        records = [
            self._record(item, rankings[i], {k: float(v[i]) for k, v in per_sample.items()})
            | (extras[i] if extras is not None else {})
            for i, item in enumerate(linked)
        ]
        errors = [str(r["error"]) for r in records if r.get("error")]
        failed = len(errors) if kind != "retriever" else None
        if ranker_stats is not None:
            ranker_stats["failures_in_samples"] = failed
        return SystemResult(
            name=name,
            kind=kind,
            metrics=metrics,
            metrics_ci=metrics_ci,
            num_samples=len(linked),
            records=records,
            ranker=ranker_stats,
            source=source,
            seconds=seconds,
            failed_samples=failed,
            first_error=errors[0] if errors else None,
        )

    def _record(self, item: LinkedSample, ranking: list[str], metrics: dict[str, float]) -> Record:
        """One row's line in samples/<system>.jsonl (before what the system adds to it)."""
        s = item.sample
        record: Record = {
            "sample_id": s.sample_id,
            "dataset": s.dataset,
            "dialogue_id": s.dialogue_id,
            "turn_index": s.turn_index,
            "history": item.history_ids,
            "targets": item.target_ids,
            "target_titles": [m.title for m in s.targets],
            "ranking": list(ranking)[: max(max(self.config.ks), 20, self.config.k)],
            "metrics": metrics,
        }
        if item.turn_id is not None:  # a per-item row: the turn it came from
            record["turn_id"] = item.turn_id
        return record


def _summaries(
    per_sample: dict[str, np.ndarray],
) -> tuple[dict[str, float], dict[str, dict[str, float | None]]]:
    """Each metric's mean, and its standard error and 95% CI (`rar.metrics.summarize`)."""
    from rar.metrics import summarize

    metrics: dict[str, float] = {}
    metrics_ci: dict[str, dict[str, float | None]] = {}
    for key in _metric_order(per_sample):
        summary = summarize(np.asarray(per_sample[key], dtype=float))
        metrics[key] = float(summary.mean)
        metrics_ci[key] = {
            "se": _finite(summary.se),
            "ci_low": _finite(summary.ci_low),
            "ci_high": _finite(summary.ci_high),
        }
    return metrics, metrics_ci


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined standard error (one sample) is stored as null."""
    value = float(value)
    return value if np.isfinite(value) else None


def _metric_order(per_sample: dict[str, np.ndarray]) -> list[str]:
    def key(name: str) -> tuple[int, int]:
        family, _, cut = name.partition("@")
        order = {"ndcg": 0, "recall": 1, "mrr": 2, "hit": 3}.get(family, 9)
        return (int(cut) if cut.isdigit() else 999, order)

    return sorted(per_sample, key=key)


def evaluate_systems(
    samples: Sequence[Sample],
    corpus: Corpus,
    systems: Sequence[System],
    config: EvaluateConfig | None = None,
    out_dir: str | Path | None = None,
    dataset: str | None = None,
    data_source: str = "",
    progress: bool = True,
    data_path: str | Path = "",
    corpus_dir: str | Path = "",
) -> EvaluationReport:
    """Evaluate every system on the same linked samples; save to `out_dir` when given.

    Systems sharing a retriever object reuse one retrieval pass (e.g. "LRURec" and
    "LRURec + semantic ranker")."""
    config = config or EvaluateConfig()
    if not systems:
        raise ValueError("no systems to evaluate")
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise InputError(f"system names must be unique, got {names}")
    evaluator = Evaluator(corpus, config, progress)
    linked, stats = evaluator.link(samples)
    if not linked:
        raise InputError(
            f"none of the {stats.samples_in} samples has a target movie in the corpus "
            f"({stats.targets_unlinked} of {stats.targets} targets unlinked; e.g. "
            f"{'; '.join(stats.unlinked_examples[:3])})"
        )
    retrieved: dict[int, list[list[str]]] = {}
    results = []
    for spec in systems:
        cands = None
        if spec.retriever is not None:
            key = id(spec.retriever)
            if key not in retrieved:
                retrieved[key] = retrieve(
                    spec.retriever, linked, corpus, config.k, config.batch_size, progress
                )
            cands = retrieved[key]
        results.append(evaluator.evaluate(spec, linked, cands))
    report = EvaluationReport(
        dataset=dataset or (samples[0].dataset if samples else ""),
        split=config.split,
        protocol=config.protocol,
        data_source=data_source,
        k=config.k,
        ks=list(config.ks),
        link_stats=stats,
        systems=results,
        data_path=str(data_path),
        corpus_dir=str(corpus_dir),
    )
    if out_dir is not None:
        report.save(out_dir)
    return report
