"""The RL table (paper Table 1/3 style) on our own splits, with the offline semantic ranker.

For each dataset (ReDial, INSPIRED): the pretrained retriever alone, the pretrained retriever
+ ranker (no post-training), and SFT / DPO / SimPO / GRPO post-training (+ ranker), each over
several seeds. Reports N@5 R@5 N@10 R@10 on the test split as mean +- standard error over
seeds (single deterministic rows: over samples), and a paired bootstrap of DPO vs SFT on the
per-sample N@10 averaged over seeds.

    python experiments/table_rl.py --corpus corpus --pretrained runs/pretrain-ml-latest-small-lrurec \
        [--datasets redial inspired] [--methods sft dpo simpo grpo] [--seeds 0 1 2] \
        [--set data.train_size=500 --set max_steps=60] [--out docs/rl_table.md]

Runs go to <runs-dir>/table-<dataset>-<method>-s<seed>; finished runs are reused, killed ones
resumed, so the script can be interrupted and restarted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METRICS = ("ndcg@5", "recall@5", "ndcg@10", "recall@10")
LABELS = {"ndcg@5": "N@5", "recall@5": "R@5", "ndcg@10": "N@10", "recall@10": "R@10"}


def config_path(config_dir: Path, dataset: str, method: str) -> tuple[Path, list[str]]:
    """The dataset x method config, or the dataset's DPO config with the method overridden."""
    exact = config_dir / f"{dataset}_{method}_semantic.yaml"
    if exact.exists():
        return exact, []
    return config_dir / f"{dataset}_dpo_semantic.yaml", [f"rl.method={method}"]


def mean_se(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    se = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return float(arr.mean()), se


def fmt(mean: float, se: float) -> str:
    return f"{mean:.4f}" if np.isnan(se) else f"{mean:.4f} ± {se:.4f}"


def run_one(args, dataset: str, method: str, seed: int, corpus, ranker) -> Path:
    from rar.config import load_config
    from rar.rl.train_config import TrainConfig
    from rar.rl.trainer import train
    from rar.tracking import is_finished

    path, extra = config_path(Path(args.config_dir), dataset, method)
    name = f"table-{dataset}-{method}-s{seed}"
    overrides = [
        *extra,
        f"seed={seed}",
        f"name={name}",
        f"corpus={args.corpus}",
        f"pretrained_run={args.pretrained}",
        f"tracking.runs_dir={args.runs_dir}",
        *([f"data.data_dir={args.data_dir}"] if args.data_dir else []),
        *args.set,
    ]
    cfg = load_config(TrainConfig, path, overrides)
    run_dir = Path(args.runs_dir) / name
    if is_finished(run_dir) and not args.rerun:
        return run_dir
    resume = run_dir.exists() and not args.rerun
    train(
        cfg,
        resume=resume,
        overwrite=args.rerun,
        corpus=corpus,
        ranker=ranker,
        progress=not args.quiet,
    )
    return run_dir


def baseline(args, dataset: str, corpus, ranker) -> dict[str, dict[str, np.ndarray]]:
    """The pretrained retriever on the same test samples: alone, and + ranker."""
    from rar.config import load_config
    from rar.pipeline import run_pipeline
    from rar.retrievers import load_pretrained_run
    from rar.rl.train_config import TrainConfig
    from rar.rl.trainer import load_splits

    path, extra = config_path(Path(args.config_dir), dataset, "sft")
    cfg = load_config(
        TrainConfig,
        path,
        [
            *extra,
            f"corpus={args.corpus}",
            f"pretrained_run={args.pretrained}",
            *([f"data.data_dir={args.data_dir}"] if args.data_dir else []),
            *args.set,
        ],
    )
    splits, _ = load_splits(cfg, corpus)
    model = load_pretrained_run(args.pretrained, corpus)
    result = run_pipeline(splits["test"], corpus, model, ranker, k=cfg.rl.k, ks=(5, 10))
    alone = {m: result.per_sample[f"retriever/{m}"] for m in METRICS}
    ranked = {m: result.per_sample[m] for m in METRICS}
    return {"retriever": alone, "retriever+ranker": ranked, "sample_ids": result.sample_ids}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", default="corpus")
    ap.add_argument("--pretrained", default="runs/pretrain-ml-latest-small-lrurec")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--config-dir", default="configs")
    ap.add_argument("--datasets", nargs="+", default=["redial", "inspired"])
    ap.add_argument("--methods", nargs="+", default=["sft", "dpo", "simpo", "grpo"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--set", action="append", default=[], help="config override for every run")
    ap.add_argument("--rerun", action="store_true", help="retrain finished runs")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", default=None, help="write the markdown table here")
    args = ap.parse_args()

    from rar.corpus import Corpus
    from rar.metrics import paired_bootstrap
    from rar.rankers import RankerConfig, build_ranker

    corpus = Corpus.load(args.corpus)
    ranker = build_ranker(RankerConfig(backend="semantic"), corpus)
    lines = [
        "| dataset | system | " + " | ".join(LABELS[m] for m in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    summary: dict[str, object] = {}
    for dataset in args.datasets:
        base = baseline(args, dataset, corpus, ranker)
        for system in ("retriever", "retriever+ranker"):
            cells = [fmt(*_sample_mean_se(base[system][m])) for m in METRICS]
            lines.append(f"| {dataset} | {system} (pretrained) | " + " | ".join(cells) + " |")
        per_method: dict[str, list[dict]] = {}
        for method in args.methods:
            finals = []
            for seed in args.seeds:
                run_dir = run_one(args, dataset, method, seed, corpus, ranker)
                final = json.loads((run_dir / "metrics.json").read_text())
                per_sample = json.loads((run_dir / "test_per_sample.json").read_text())
                if per_sample["sample_ids"] != base["sample_ids"]:
                    raise SystemExit(f"{run_dir}: test samples differ from the baseline's")
                finals.append({"final": final, "per_sample": per_sample})
            per_method[method] = finals
            cells = [fmt(*mean_se([f["final"][f"test/{m}"] for f in finals])) for m in METRICS]
            lines.append(f"| {dataset} | {method.upper()} + ranker | " + " | ".join(cells) + " |")
        if "dpo" in per_method and "sft" in per_method:
            dpo = np.mean([f["per_sample"]["ndcg@10"] for f in per_method["dpo"]], axis=0)
            sft = np.mean([f["per_sample"]["ndcg@10"] for f in per_method["sft"]], axis=0)
            boot = paired_bootstrap(dpo, sft, seed=0)
            summary[f"{dataset}/dpo_vs_sft_ndcg@10"] = {
                "diff": boot.diff,
                "ci_low": boot.ci_low,
                "ci_high": boot.ci_high,
                "p_value": boot.p_value,
            }
            lines.append(
                f"| {dataset} | DPO − SFT (N@10, paired bootstrap) | diff {boot.diff:+.4f}, "
                f"95% CI [{boot.ci_low:+.4f}, {boot.ci_high:+.4f}], p = {boot.p_value:.3f} | | | |"
            )
        summary[dataset] = {m: [f["final"] for f in finals] for m, finals in per_method.items()}
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n", encoding="utf-8")
        Path(args.out).with_suffix(".json").write_text(json.dumps(summary, indent=2, default=str))


def _sample_mean_se(values: np.ndarray) -> tuple[float, float]:
    from rar.metrics import summarize

    s = summarize(values)
    return s.mean, s.se


if __name__ == "__main__":
    main()
