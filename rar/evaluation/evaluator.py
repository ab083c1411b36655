"""Evaluate recommender systems on conversation samples: metrics with CIs, costs, per-sample output.

Systems (one :class:`SystemSpec` each):
- retriever only: its top-k order is the recommendation;
- retriever + ranker (SFT / RAR runs): the ranker re-ranks the retriever's top-k;
- LLM only: no retrieval; an LLM names movies, matched to every corpus title.

Python entry point (what `rar evaluate` and `rar quickstart` call)::

    report = evaluate_systems(samples, corpus, [SystemSpec("RAR", retriever, ranker)],
                              EvaluateConfig(k=25), out_dir=run_dir / "eval" / "redial-test")
    print(report.to_markdown())

The per-sample JSONL files it writes (`samples/<system>.jsonl`) are what the reports and the
paired bootstrap read.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rar.data.linking import LinkedSample, SampleLinkStats, link_samples
from rar.data.types import Sample
from rar.errors import InputError, MissingPathError, UnknownKeyError
from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.failed_calls import failed_share
from rar.pipeline import retrieve, run_pipeline, score, scored_ranking

if TYPE_CHECKING:
    from rar.corpus import Corpus

EVALUATION_JSON = "evaluation.json"
EVALUATION_MD = "evaluation.md"
SAMPLES_DIR = "samples"
HEADLINE = ("ndcg@5", "recall@5", "ndcg@10", "recall@10")
SHORT = {"ndcg": "N", "recall": "R", "mrr": "MRR", "hit": "Hit"}


@dataclass
class SystemSpec:
    """A system to evaluate. `retriever` None + `ranker` set = LLM-only."""

    name: str
    retriever: Any = None  # rar.retrievers.Retriever
    ranker: Any = None  # rar.rankers.Ranker
    source: str = ""  # e.g. the run directory, recorded in the output

    @property
    def kind(self) -> str:
        if self.retriever is None and self.ranker is None:
            raise ValueError(f"system '{self.name}' has neither a retriever nor a ranker")
        if self.retriever is None:
            return "llm-only"
        return "retriever" if self.ranker is None else "retriever+ranker"


@dataclass
class SystemResult:
    name: str
    kind: str
    metrics: dict[str, float]
    metrics_ci: dict[str, dict[str, float]]
    num_samples: int
    records: list[dict[str, Any]] = field(repr=False, default_factory=list)
    ranker: dict[str, Any] | None = None
    source: str = ""
    seconds: float = 0.0
    samples_file: str | None = None
    failed_samples: int | None = None  # samples whose ranker call failed (None: no ranker)
    first_error: str | None = None  # one failed call's message, to show the user

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "metrics": self.metrics,
            "metrics_ci": self.metrics_ci,
            "num_samples": self.num_samples,
            "source": self.source,
            "seconds": round(self.seconds, 3),
        }
        if self.failed_samples is not None:
            out["failed_samples"] = self.failed_samples
            out["failed_share"] = failed_share(self.failed_samples, self.num_samples)
            if self.first_error:
                out["first_error"] = self.first_error
        if self.ranker is not None:
            out["ranker"] = self.ranker
        if self.samples_file:
            out["samples_file"] = self.samples_file
        return out


@dataclass
class EvaluationReport:
    dataset: str
    split: str
    data_source: str
    k: int
    ks: list[int]
    link_stats: SampleLinkStats
    systems: list[SystemResult]
    out_dir: Path | None = None
    data_path: str = ""  # the file or directory the samples came from (reports reload it)
    corpus_dir: str = ""

    def system(self, name: str) -> SystemResult:
        for result in self.systems:
            if result.name == name:
                return result
        raise KeyError(
            f"no system named '{name}' (have: {', '.join(s.name for s in self.systems)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "data_source": self.data_source,
            "data_path": self.data_path,
            "corpus_dir": self.corpus_dir,
            "k": self.k,
            "ks": self.ks,
            "samples": self.link_stats.as_dict(),
            "systems": {s.name: s.summary() for s in self.systems},
        }

    def to_markdown(self) -> str:
        return render_markdown(self.to_dict())

    def save(self, out_dir: str | Path) -> Path:
        """Write evaluation.json, evaluation.md and samples/<system>.jsonl into `out_dir`."""
        out = Path(out_dir)
        (out / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
        for result in self.systems:
            name = f"{SAMPLES_DIR}/{slug(result.name)}.jsonl"
            with (out / name).open("w", encoding="utf-8") as handle:
                for record in result.records:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            result.samples_file = name
        (out / EVALUATION_JSON).write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        (out / EVALUATION_MD).write_text(self.to_markdown(), encoding="utf-8")
        self.out_dir = out
        return out


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "system"


class Evaluator:
    """Runs systems over linked samples and scores them with `rar.metrics`."""

    def __init__(self, corpus: Corpus, config: EvaluateConfig | None = None, progress: bool = True):
        self.corpus = corpus
        self.config = config or EvaluateConfig()
        self.progress = progress

    # ---- samples -------------------------------------------------------------------------
    def link(self, samples: Sequence[Sample]) -> tuple[list[LinkedSample], SampleLinkStats]:
        """Link to corpus ids (dropping, and counting, samples with no linked target), then
        subsample to `max_samples` with the config seed."""
        linked, stats = link_samples(samples, self.corpus, self.config.match_threshold)
        if self.config.max_samples is not None and len(linked) > self.config.max_samples:
            rng = random.Random(self.config.seed)
            keep = sorted(rng.sample(range(len(linked)), self.config.max_samples))
            linked = [linked[i] for i in keep]
        stats.samples_evaluated = len(linked)
        return linked, stats

    # ---- systems -------------------------------------------------------------------------
    def evaluate(
        self,
        spec: SystemSpec,
        linked: Sequence[LinkedSample],
        candidates: Sequence[list[str]] | None = None,
    ) -> SystemResult:
        """Run one system on linked samples (`candidates` reuses an earlier retrieval)."""
        kind = spec.kind
        start = time.perf_counter()
        stats_before = dict(spec.ranker.stats()) if spec.ranker is not None else None
        extras: list[dict[str, Any]] = [{} for _ in linked]
        if kind == "llm-only":
            results = spec.ranker.recommend(
                [(item.sample.sample_id, item.sample.context) for item in linked],
                self.config.llm_only_items,
                self.config.match_threshold,
                self.progress,
            )
            rankings = [scored_ranking(r) for r in results]
            for extra, r in zip(extras, results, strict=True):
                extra.update(
                    predicted=r.predicted,
                    hallucinations=r.hallucinations,
                    non_titles=r.non_titles,
                    n_predicted=len(r.predicted),
                    error=r.error,
                    cached=r.cached,
                    usage=r.usage,
                )
        else:
            ran = run_pipeline(
                linked,
                self.corpus,
                spec.retriever,
                spec.ranker,
                k=self.config.k,
                ks=self.config.ks,
                candidates=candidates,
                batch_size=self.config.batch_size,
                ranker_batch=self.config.ranker_batch,
                progress=self.progress,
            )
            cands = ran.candidates
            # scored: what the ranker itself ranked (an LLM's missing labels are misses);
            # a failed call is a miss, never its retriever-order fallback
            rankings = ran.rankings
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
            for extra, c in zip(extras, cands, strict=True):
                extra["candidates"] = c
        ranker_stats = None
        if spec.ranker is not None:
            ranker_stats = _stats_delta(stats_before or {}, spec.ranker.stats())
        return self.score(
            spec.name,
            kind,
            linked,
            rankings,
            extras,
            ranker_stats,
            spec.source,
            time.perf_counter() - start,
        )

    def score(
        self,
        name: str,
        kind: str,
        linked: Sequence[LinkedSample],
        rankings: Sequence[list[str]],
        extras: Sequence[dict[str, Any]] | None = None,
        ranker_stats: dict[str, Any] | None = None,
        source: str = "",
        seconds: float = 0.0,
    ) -> SystemResult:
        """Per-sample metrics, their means with standard errors and 95% CIs, and records."""
        from rar.metrics import summarize

        per_sample = score(rankings, linked, self.config.ks)
        metrics: dict[str, float] = {}
        metrics_ci: dict[str, dict[str, float]] = {}
        for key in _metric_order(per_sample):
            s = summarize(np.asarray(per_sample[key], dtype=float))
            metrics[key] = float(s.mean)
            metrics_ci[key] = {
                "se": _finite(s.se),
                "ci_low": _finite(s.ci_low),
                "ci_high": _finite(s.ci_high),
            }
        records = []
        keep = max(max(self.config.ks), 20)
        for i, item in enumerate(linked):
            s = item.sample
            record: dict[str, Any] = {
                "sample_id": s.sample_id,
                "dataset": s.dataset,
                "dialogue_id": s.dialogue_id,
                "turn_index": s.turn_index,
                "history": item.history_ids,
                "targets": item.target_ids,
                "target_titles": [m.title for m in s.targets],
                "ranking": list(rankings[i])[: max(keep, self.config.k)],
                "metrics": {k: float(v[i]) for k, v in per_sample.items()},
            }
            if extras is not None:
                record.update(extras[i])
            records.append(record)
        failed = None
        if kind != "retriever":
            failed = sum(1 for r in records if r.get("error"))
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
            first_error=next((r["error"] for r in records if r.get("error")), None),
        )


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined standard error (one sample) is stored as null."""
    value = float(value)
    return value if np.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _metric_order(per_sample: dict[str, Any]) -> list[str]:
    def key(name: str) -> tuple[int, int]:
        family, _, cut = name.partition("@")
        order = {"ndcg": 0, "recall": 1, "mrr": 2, "hit": 3}.get(family, 9)
        return (int(cut) if cut.isdigit() else 999, order)

    return sorted(per_sample, key=key)


_COUNTERS = (
    "requests", "calls", "retries", "retries_denied", "cache_hits", "cache_misses", "failures",
    "prompt_tokens", "completion_tokens", "cost_usd", "hallucinations", "items_parsed",
    "non_title_lines", "candidates", "model_ranked", "appended", "latency_s",
)  # fmt: skip


def _stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Ranker counters spent by this evaluation only (a ranker may be shared between systems)."""
    out: dict[str, Any] = {
        k: v for k, v in after.items() if k not in _COUNTERS and not isinstance(v, (int, float))
    }
    for key in _COUNTERS:
        if key in after:
            out[key] = after[key] - before.get(key, 0)
    parsed = out.get("items_parsed", 0)
    out["hallucination_rate"] = (out.get("hallucinations", 0) / parsed) if parsed else 0.0
    lines = parsed + out.get("non_title_lines", 0)
    out["non_title_rate"] = (out.get("non_title_lines", 0) / lines) if lines else 0.0
    cands = out.get("candidates", 0)
    out["appended_share"] = (out.get("appended", 0) / cands) if cands else 0.0
    if isinstance(out.get("cost_usd"), float):
        out["cost_usd"] = round(out["cost_usd"], 6)
    return out


def evaluate_systems(
    samples: Sequence[Sample],
    corpus: Corpus,
    systems: Sequence[SystemSpec],
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


# ---- rendering ---------------------------------------------------------------------------
def _label(key: str) -> str:
    family, _, cut = key.partition("@")
    return f"{SHORT.get(family, family)}@{cut}" if cut else key


def samples_summary(s: dict[str, Any]) -> str:
    """'150 samples evaluated (of 484 linked; 485 loaded, 1 dropped with no target in the
    corpus)' from evaluation.json's "samples" dict.

    The first figure is what the metrics average over (after `max_samples`), not the split."""
    kept = s.get("samples_kept", "?")
    evaluated = s.get("samples_evaluated", kept)  # files written before the field existed
    return (
        f"{evaluated} samples evaluated (of {kept} linked; {s.get('samples_in', '?')} loaded, "
        f"{s.get('dropped_no_linked_target', 0)} dropped with no target in the corpus)"
    )


def _failed_cell(system: dict[str, Any]) -> str:
    """'3 (30.0%)' for a system with a ranker, '–' for a retriever alone."""
    failed = system.get("failed_samples")
    if failed is None:
        return "–"
    return f"{failed} ({failed_share(failed, system.get('num_samples') or 0):.1%})"


def render_markdown(data: dict[str, Any]) -> str:
    """Markdown tables from an evaluation.json dict (paper columns first, then CIs, then costs)."""
    systems: dict[str, Any] = data["systems"]
    s = data.get("samples", {})
    lines = [
        f"# Evaluation: {data.get('dataset', '')} ({data.get('split', '')})",
        "",
        f"Data: `{data.get('data_source', '')}`; {samples_summary(s)}; "
        f"{s.get('targets_unlinked', 0)} of {s.get('targets', 0)} target mentions "
        f"and {s.get('history_unlinked', 0)} of {s.get('history_mentions', 0)} history mentions unlinked. "
        f"Retrieved candidates k = {data.get('k')}.",
        "",
    ]
    head = [k for k in HEADLINE if any(k in v["metrics"] for v in systems.values())]
    lines += [
        "| system | " + " | ".join(_label(k) for k in head) + " | samples | failed calls |",
        "|---|" + "---:|" * (len(head) + 2),
    ]
    for name, v in systems.items():
        vals = " | ".join(f"{v['metrics'].get(k, float('nan')):.4f}" for k in head)
        lines.append(f"| {name} | {vals} | {v['num_samples']} | {_failed_cell(v)} |")
    if any(v.get("failed_samples") for v in systems.values()):
        lines += [
            "",
            "**Failed ranker calls:** a sample whose ranker call failed is scored as a miss "
            "(0 on every metric), not as the retriever's order.",
        ]
    all_keys: list[str] = []
    for v in systems.values():
        all_keys += [k for k in v["metrics"] if k not in all_keys]
    lines += ["", "## All metrics (mean ± standard error, [95% CI])", ""]
    lines += ["| system | metric | mean | se | 95% CI |", "|---|---|---:|---:|---|"]
    for name, v in systems.items():
        for key in all_keys:
            if key not in v["metrics"]:
                continue
            ci = v["metrics_ci"][key]
            lines.append(
                f"| {name} | {_label(key)} | {v['metrics'][key]:.4f} | {_fmt(ci['se'])} | "
                f"[{_fmt(ci['ci_low'])}, {_fmt(ci['ci_high'])}] |"
            )
    rankers = {n: v["ranker"] for n, v in systems.items() if v.get("ranker")}
    if rankers:
        lines += [
            "",
            "## Ranker usage",
            "",
            "Hallucination rate: listed titles matching no candidate, per title attempt; "
            "non-title lines (chatter, headers) are counted apart. Appended: share of candidates "
            "an LLM left out; they score as misses unless `parser.score_appended` is set.",
            "",
        ]
        lines += [
            "| system | backend | calls | cache hits | failures | prompt tokens | completion tokens "
            "| cost (USD) | hallucination rate | non-title lines | appended | seconds |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in rankers.items():
            backend = r.get("backend", "")
            if r.get("model") and backend != "semantic":
                backend += f" ({r['model']})"
            lines.append(
                f"| {name} | {backend} | {r.get('calls', 0)} | {r.get('cache_hits', 0)} | "
                f"{r.get('failures', 0)} | {r.get('prompt_tokens', 0)} | {r.get('completion_tokens', 0)} | "
                f"{r.get('cost_usd', 0.0):.4f} | {r.get('hallucination_rate', 0.0):.2%} | "
                f"{r.get('non_title_lines', 0)} | {r.get('appended_share', 0.0):.1%} | "
                f"{systems[name].get('seconds', 0):.1f} |"
            )
    return "\n".join(lines) + "\n"


def load_evaluation(path: str | Path) -> tuple[dict[str, Any], Path]:
    """An evaluation.json (or the directory holding it) -> (data, directory)."""
    path = Path(path)
    file = path / EVALUATION_JSON if path.is_dir() else path
    if not file.is_file():
        raise MissingPathError(f"no {EVALUATION_JSON} at {path}; run `rar evaluate` first")
    return json.loads(file.read_text(encoding="utf-8")), file.parent


def load_records(
    eval_dir: str | Path, system: str, data: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The per-sample records one system wrote."""
    eval_dir = Path(eval_dir)
    if data is None:
        data, eval_dir = load_evaluation(eval_dir)
    if system not in data["systems"]:
        raise UnknownKeyError(
            f"no system '{system}' in {eval_dir} (have: {', '.join(data['systems'])})"
        )
    rel = data["systems"][system].get("samples_file") or f"{SAMPLES_DIR}/{slug(system)}.jsonl"
    file = eval_dir / rel
    if not file.is_file():
        raise MissingPathError(f"{file} is missing; rerun `rar evaluate`")
    out = []
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{file}:{number}: not valid JSON ({exc})") from exc
    return out


def summary_table(data: dict[str, Any] | EvaluationReport, title: str | None = None):
    """The terminal table: N@5 R@5 N@10 R@10 with 95% CI half-widths, failed ranker calls
    (count and share) and ranker calls / cache hits; the sample count is in the title. System names are never cut (see
    `rar.evaluation.result_table`)."""
    from rar.evaluation.result_table import ResultTable

    if isinstance(data, EvaluationReport):
        data = data.to_dict()
    systems: dict[str, Any] = data["systems"]
    evaluated = {v["num_samples"] for v in systems.values()}  # every system sees the same samples
    n = evaluated.pop() if len(evaluated) == 1 else "?"
    table = ResultTable(
        title
        or f"{data.get('dataset', '')} ({data.get('split', '')}), {n} samples, k = {data.get('k')}",
        [_label(key) for key in HEADLINE] + ["failed", "calls/hits"],
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
