"""The one driver of the RL tables (the RL rows of paper Table 1, and Tables 3, 4 and 5).

A sweep (YAML in experiments/configs/) names a base training config per dataset and a few
variants, each a list of `--set` overrides (e.g. `rl.method=grpo`). For every dataset x
variant x seed this trains one run with `rar.rl.trainer.train`, then tabulates the test
metrics of the best checkpoint through the full pipeline (retriever top-k -> frozen ranker),
next to the pretrained retriever (alone and + ranker) on the same test samples.

Run directories are named after the method, beta, seed and a hash of the resolved config, so
identical runs are shared between tables (Table 3's DPO is Table 4's DPO and Table 5's
beta = 0.05), finished runs are reused and interrupted ones resumed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    LABELS,
    METRICS,
    add_common_args,
    cell,
    check_pretrained,
    load_corpus,
    markdown_table,
    paper_rows,
    setup,
    write_outputs,
)
from pydantic import Field

from rar.config import ConfigModel, load_config
from rar.tracking import is_finished


class SweepConfig(ConfigModel):
    """One RL ablation table: a base config per dataset, variants, and a quick budget."""

    title: str = Field(..., description="Table title printed above the results.")
    base_config: str = Field(
        "{dataset}_dpo_semantic",
        description="Training config per dataset ({dataset} is substituted): a packaged name or a path.",
    )
    variants: dict[str, list[str]] = Field(
        ..., description="Row label -> `key=value` overrides of the base config (in order)."
    )
    datasets: list[str] = Field(default_factory=lambda: ["redial"], description="Default datasets.")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], description="Default seeds.")
    common: list[str] = Field(
        default_factory=list, description="Overrides applied to every run of the sweep."
    )
    quick: list[str] = Field(
        default_factory=list, description="Extra overrides applied with --quick (small budget)."
    )
    compare_to: str | None = Field(
        None, description="Variant the others are compared with by paired bootstrap on N@10."
    )
    paper: dict[str, list[float]] = Field(
        default_factory=dict,
        description="The paper's rows (N@5 R@5 N@10 R@10) for side-by-side printing.",
    )
    paper_note: str = Field("", description="What the paper's rows are (backbone, averaging).")


def parse_args(description: str, sweep_file: str, out_default: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(parser, out_default)
    parser.add_argument("--sweep", default=sweep_file, help="Sweep YAML (experiments/configs/).")
    parser.add_argument("--dataset", nargs="+", default=None, help="redial and/or inspired.")
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=None, help="Cap training steps.")
    parser.add_argument("--quick", action="store_true", help="Small budget (minutes per run).")
    parser.add_argument(
        "--runs-dir",
        default=None,
        help="Run directories (default OUT/../rl_runs, shared by the tables).",
    )
    parser.add_argument(
        "--set", action="append", default=[], help="Extra key=value override for every run."
    )
    parser.add_argument("--rerun", action="store_true", help="Retrain finished runs.")
    return parser.parse_args()


def _hash(cfg: Any) -> str:
    data = cfg.model_dump(mode="json")
    for key in ("name", "tracking", "seed", "threads"):
        data.pop(key, None)
    blob = json.dumps(data, sort_keys=True).encode()
    return hashlib.sha1(blob).hexdigest()[:8]


def resolve_config(args, sweep: SweepConfig, dataset: str, variant: str, seed: int):
    """The TrainConfig of one run (base YAML + sweep + quick + CLI overrides) and its name."""
    from rar.rl.train_config import TrainConfig

    path = Path(sweep.base_config.format(dataset=dataset))
    overrides = [
        f"data.dataset={dataset}",
        *sweep.common,
        *(sweep.quick if args.quick else []),
        *sweep.variants[variant],
        f"seed={seed}",
        f"corpus={args.corpus}",
        f"pretrained_run={args.pretrained_run}",
        f"threads={args.threads}",
        *([f"data.data_dir={args.data_dir}"] if args.data_dir else []),
        *([f"max_steps={args.max_steps}"] if args.max_steps else []),
        *args.set,
    ]
    cfg = load_config(TrainConfig, path, overrides)
    name = f"{dataset}-{cfg.rl.method}-b{cfg.rl.beta:g}-s{seed}-{_hash(cfg)}"
    if not cfg.rl.has_rl_term:  # NLL only: beta plays no part
        name = f"{dataset}-{cfg.rl.method}-s{seed}-{_hash(cfg)}"
    return cfg.model_copy(update={"name": name}), name


def run_one(args, cfg, corpus, ranker) -> dict[str, Any]:
    """Train (or reuse / resume) one run; its final metrics and per-sample test values."""
    from rar.rl.trainer import train

    cfg.tracking.runs_dir = args.runs_dir
    run_dir = Path(args.runs_dir) / cfg.name
    if not is_finished(run_dir) or args.rerun:
        resume = (run_dir / "checkpoints" / "last.pt").is_file() and not args.rerun
        print(f"training {cfg.name} ({'resume' if resume else 'new'})", flush=True)
        train(
            cfg,
            resume=resume,
            overwrite=args.rerun or (run_dir.exists() and not resume),
            corpus=corpus,
            ranker=ranker,
            progress=not args.quiet,
        )
    else:
        print(f"reusing finished run {run_dir}", flush=True)
    final = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    per_sample = json.loads((run_dir / "test_per_sample.json").read_text(encoding="utf-8"))
    return {"run_dir": str(run_dir), "final": final, "per_sample": per_sample}


def pretrained_baseline(cfg, corpus, ranker) -> dict[str, Any]:
    """The pretrained retriever on the runs' test samples: its own order, and + ranker."""
    from rar.pipeline import run_pipeline
    from rar.retrievers import load_pretrained_run
    from rar.rl.inputs import load_splits

    splits = load_splits(cfg, corpus)
    model = load_pretrained_run(cfg.pretrained_run, corpus)
    result = run_pipeline(splits.test, corpus, model, ranker, k=cfg.rl.k)
    return {
        "sample_ids": result.sample_ids,
        "retriever": {m: result.per_sample[f"retriever/{m}"] for m in METRICS},
        "retriever+ranker": {m: result.per_sample[m] for m in METRICS},
    }


def run_sweep(description: str, sweep_file: str, stem: str) -> None:
    """Parse flags, train every run of the sweep, print and save the table."""
    args = parse_args(description, sweep_file, f"runs/experiments/{stem}")
    setup(args)
    sweep = load_config(SweepConfig, args.sweep)
    datasets = args.dataset or sweep.datasets
    seeds = args.seeds if args.seeds is not None else sweep.seeds
    args.runs_dir = args.runs_dir or str(Path(args.out).parent / "rl_runs")
    check_pretrained(args.pretrained_run)
    corpus = load_corpus(args.corpus)

    from rar.metrics import paired_bootstrap, summarize
    from rar.rankers import build_ranker

    header = ["dataset", "system", *(LABELS[m] for m in METRICS), "seeds"]
    rows: list[list[str]] = []
    results: dict[str, Any] = {"sweep": sweep.model_dump(), "args": vars(args), "datasets": {}}
    notes: list[str] = []
    for dataset in datasets:
        configs = {
            (v, s): resolve_config(args, sweep, dataset, v, s)[0]
            for v in sweep.variants
            for s in seeds
        }
        first = next(iter(configs.values()))
        ranker = build_ranker(first.ranker, corpus)  # shared: turn embeddings are memoised
        base = pretrained_baseline(first, corpus, ranker)
        n_test = len(base["sample_ids"])
        out: dict[str, Any] = {"n_test": n_test, "pretrained": {}, "variants": {}}
        for system in ("retriever", "retriever+ranker"):
            cells = []
            for m in METRICS:
                s = summarize(base[system][m])
                cells.append(cell(s.mean, s.se))
                out["pretrained"].setdefault(system, {})[m] = float(s.mean)
            label = "LRURec (pretrained)" if system == "retriever" else "LRURec + ranker"
            rows.append([dataset, label, *cells, "– (se over samples)"])
        per_variant_ndcg: dict[str, np.ndarray] = {}
        for variant in sweep.variants:
            runs = [run_one(args, configs[(variant, s)], corpus, ranker) for s in seeds]
            for r in runs:
                if r["per_sample"]["sample_ids"] != base["sample_ids"]:
                    raise SystemExit(f"{r['run_dir']}: test samples differ from the baseline's")
            finals = [r["final"] for r in runs]
            cells = []
            for m in METRICS:
                if len(runs) > 1:
                    s = summarize([f[f"test/{m}"] for f in finals])
                    cells.append(cell(s.mean, s.se))
                else:
                    s = summarize(np.asarray(runs[0]["per_sample"][m], dtype=float))
                    cells.append(cell(s.mean, s.se))
            rows.append([dataset, f"{variant} + ranker", *cells, " ".join(str(s) for s in seeds)])
            per_variant_ndcg[variant] = np.mean(
                [np.asarray(r["per_sample"]["ndcg@10"], dtype=float) for r in runs], axis=0
            )
            out["variants"][variant] = {
                "overrides": sweep.variants[variant],
                "runs": [
                    {
                        "run_dir": r["run_dir"],
                        "seed": s,
                        "best_step": r["final"].get("best_step"),
                        "steps": r["final"].get("steps"),
                        **{f"test/{m}": r["final"][f"test/{m}"] for m in METRICS},
                        **{
                            f"test/retriever/{m}": r["final"].get(f"test/retriever/{m}")
                            for m in METRICS
                        },
                    }
                    for r, s in zip(runs, seeds, strict=True)
                ],
                "mean": {m: summarize([f[f"test/{m}"] for f in finals]).mean for m in METRICS},
            }
        ref = sweep.compare_to
        if ref in per_variant_ndcg:
            for variant, values in per_variant_ndcg.items():
                if variant == ref:
                    continue
                boot = paired_bootstrap(values, per_variant_ndcg[ref], seed=0)
                out.setdefault("bootstrap_ndcg@10", {})[f"{variant} - {ref}"] = {
                    "diff": boot.diff,
                    "ci_low": boot.ci_low,
                    "ci_high": boot.ci_high,
                    "p_value": boot.p_value,
                }
                notes.append(
                    f"{dataset}: {variant} − {ref}, N@10 (paired bootstrap over {n_test} test "
                    f"samples, seed-averaged): {boot.diff:+.4f}, 95% CI [{boot.ci_low:+.4f}, "
                    f"{boot.ci_high:+.4f}], p = {boot.p_value:.3f}"
                )
        results["datasets"][dataset] = out
        ranker.close()

    budget = " ".join([*(sweep.quick if args.quick else []), *args.set]) or "config defaults"
    if args.max_steps:
        budget += f" max_steps={args.max_steps}"
    lines = [
        f"# {sweep.title}",
        "",
        f"Test split, all linked samples of our split; retriever top-{first.rl.k} re-ranked by "
        f"the `{first.ranker.backend}` ranker. Cells: mean ± se over seeds (one seed: over "
        f"samples). Budget: {budget}.",
        "",
        markdown_table(header, rows),
    ]
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    if sweep.paper:
        lines += [
            "",
            f"Paper ({sweep.paper_note}):",
            "",
            markdown_table(["system", *(LABELS[m] for m in METRICS)], paper_rows(sweep.paper)),
        ]
    write_outputs(args.out, stem, "\n".join(lines), results)
