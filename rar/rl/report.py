"""Test reporting of `rar train`: the logged step means, the per-sample test figures and the
flat metrics.json a finished run leaves (`finish`: the best checkpoint on validation and test)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rar.atomic_files import atomic_write_text
from rar.pipeline import PipelineResult, run_pipeline

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.data.linking import LinkedSample
    from rar.rl.trainer import RLTrainer

log = logging.getLogger("rar.rl")


def evaluate_samples(
    samples: Sequence[LinkedSample],
    corpus: Corpus,
    model: Any,
    ranker: Any,
    k: int,
    ks: Sequence[int],
    what: str,
) -> PipelineResult:
    """Pipeline metrics on `samples` (validation or test); failed ranker calls are misses,
    warned about, and an error (FailedCallsError) when every call failed: selecting on them
    would be noise. `what` names the pass in messages (e.g. "validation at step 50")."""
    from rar.evaluation.failed_calls import FailedCallsError, describe_failures

    result = run_pipeline(samples, corpus, model, ranker, k=k, ks=ks)
    if result.ranker_failures:
        line = describe_failures(result.ranker_failures, len(samples), what)
        if result.ranker_failures >= len(samples):
            raise FailedCallsError(
                f"{line} (e.g. {result.first_error}); stopping: metrics with no ranked output "
                "would select a checkpoint at random — check the ranker's server, base_url "
                "and API key"
            )
        log.warning("%s; those samples are scored as misses", line)
    return result


def write_per_sample(result: PipelineResult, run_dir: Path) -> Path:
    """test_per_sample.json: each test sample's metrics (for paired tests across runs)."""
    per_sample = {"sample_ids": result.sample_ids} | {
        k: v.tolist() for k, v in result.per_sample.items()
    }
    return atomic_write_text(run_dir / "test_per_sample.json", json.dumps(per_sample))


def mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per-key means of the step rows since the last log line (missing and NaN skipped)."""
    keys = {k for r in rows for k in r}
    out: dict[str, float] = {}
    for key in sorted(keys):
        values = [
            r[key] for r in rows if key in r and r[key] is not None and not math.isnan(r[key])
        ]
        if values:
            out[key] = float(np.mean(values))
    return out


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested final metrics as one level of dotted keys (lists as JSON), for metrics.json."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


def finish(trainer: RLTrainer) -> dict[str, Any]:
    """Evaluate the best checkpoint on validation (and test); write metrics.json."""
    from rar.retrievers import load_retriever

    t = trainer
    best_path = t.run.checkpoints / "best.pt"
    if best_path.exists():
        best = load_retriever(best_path, t.corpus.vectors())
        t.model.load_state_dict(best.state_dict())
    final: dict[str, Any] = {
        "method": t.rl.method,
        "dataset": t.config.data.dataset,
        "steps": t.step,
        "budget_steps": t.total_steps,
        "best_step": t.selection.best["step"],
        "stopped_early": t.selection.stopped_early,
        "candidate_order": t.rl.candidate_order,
        "shuffle_rewards": t.rl.shuffle_rewards,
        "n_train": len(t.train_samples),
        "eval_protocol": t.config.eval_protocol,
        "n_val": len(t.val_samples),
        "link_stats": t.link_stats,
    }
    if t.val_samples:
        # the best checkpoint's validation figures were measured when it was selected
        best_val = t.selection.best.get("metrics") or t.evaluate(t.val_samples).metrics
        final.update({f"val/{k}": v for k, v in best_val.items()})
    test = t.splits.get("test") or []
    if test:
        result = t.evaluate(test, "test")
        final.update({f"test/{k}": v for k, v in result.metrics.items()})
        final["n_test"] = len(test)
        write_per_sample(result, t.run.path)
    if t.ranker is not None:
        final["ranker"] = t.ranker_totals.report()  # this run's, across resumes
        events = [r for r in t.run.history() if r.get("event") == "ranker_unavailable"]
        final["ranker_interruptions"] = len(events)
        final["ranker_interrupted_failures"] = sum(
            r.get("ranker_failures", 0) + r.get("ranker_outage_retries", 0) for r in events
        )
    t.run.finish(flatten(final))
    return final
