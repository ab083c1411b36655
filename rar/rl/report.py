"""Reporting of `rar train`: validation and test through the pipeline, the logged step means,
the per-sample test figures, and the pieces of the flat metrics.json a finished run leaves."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rar.atomic_files import atomic_write_text
from rar.pipeline import PipelineResult, System

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.data.linking import LinkedSample
    from rar.rl.inputs import LinkedSplits
    from rar.rl.ranker_totals import RankerTotals
    from rar.rl.rl_config import RLConfig
    from rar.rl.state import TrainerState
    from rar.rl.train_config import TrainConfig

log = logging.getLogger("rar.rl")


def evaluate_samples(
    samples: Sequence[LinkedSample],
    corpus: Corpus,
    system: System,
    k: int,
    ks: Sequence[int],
    what: str,
) -> PipelineResult:
    """The system's pipeline metrics on `samples` (validation or test: the policy, + the
    ranker when the run has one); failed ranker calls are misses,
    warned about, and an error (FailedCallsError) when every call failed: selecting on them
    would be noise. `what` names the pass in messages (e.g. "validation at step 50")."""
    from rar.evaluation.failed_calls import FailedCallsError, describe_failures

    result = system.run(samples, corpus, k=k, ks=ks)
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


def run_summary(
    config: TrainConfig, rl: RLConfig, data: LinkedSplits, state: TrainerState, total_steps: int
) -> dict[str, Any]:
    """What a run was (`rl`: the trainer's RL settings) and how it ended: metrics.json's leading
    entries."""
    selection = state.selection
    return {
        "method": rl.method,
        "dataset": config.data.dataset,
        "steps": state.step,
        "budget_steps": total_steps,
        "best_step": selection.best["step"],
        "stopped_early": selection.stopped_early,
        "candidate_order": rl.candidate_order,
        "shuffle_rewards": rl.shuffle_rewards,
        "n_train": len(data.train),
        "eval_protocol": config.eval_protocol,
        "n_val": len(data.val),
        "link_stats": data.link_stats,
    }


def ranker_block(totals: RankerTotals, history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """metrics.json's ranker entries: the run's counters (across resumes) and how often, and
    with how many failed calls, the ranker's server stopped a step (`history`: the run's
    metrics.jsonl rows)."""
    events = [r for r in history if r.get("event") == "ranker_unavailable"]
    return {
        "ranker": totals.report(),
        "ranker_interruptions": len(events),
        "ranker_interrupted_failures": sum(
            r.get("ranker_failures", 0) + r.get("ranker_outage_retries", 0) for r in events
        ),
    }
