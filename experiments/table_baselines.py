r"""Baselines: most-popular, ItemKNN and EASE on each dataset's test split, per protocol.

Each baseline is fitted on the dataset's train split only, its hyperparameters chosen on the val
split over a small grid (logged below the table), and served through the evaluator exactly like
a retriever: top-k over the corpus with mentioned movies masked, then the metrics. The splits are
the ones `rar train` and `rar evaluate` use. Protocols (`--protocols`, default per_turn):
per_turn, one row per recommender turn with all its new movies as targets; per_item (He et al.
2023), one row per ground-truth movie of a turn. Cells: mean ± standard error over rows.

    .venv/bin/python experiments/table_baselines.py --corpus corpus --data-dir ../shared/data \
        [--datasets redial inspired] [--k 25] [--ranker] [--protocols per_turn per_item] \
        [--out runs/experiments/table_baselines]

`--ranker` also re-ranks each baseline's top-k with the offline semantic ranker (the corpus needs
embeddings). Writes OUT/table_baselines.{md,json} and, per dataset, OUT/<dataset>/ (per_turn;
OUT/<dataset>-per_item/ for per_item) with the evaluator's evaluation.json, samples/*.jsonl (for `rar report compare`) and baselines.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from _common import LABELS, METRICS, cell, load_corpus, markdown_table, setup, write_outputs

BASELINE_NAMES = ("most-popular", "itemknn", "ease")
REFERENCE = (  # measured independently on the official ReDial test split (3,858 samples), k = 25
    "Reference, official ReDial test split (3,858 samples): most-popular N@10 0.034, "
    "ItemKNN (decay 0.8) N@10 0.063."
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default="corpus", help="Corpus directory (rar build-corpus).")
    parser.add_argument("--data-dir", default=None, help="Default $RAR_DATA_DIR, else ./data.")
    parser.add_argument("--datasets", nargs="+", default=["redial", "inspired"])
    parser.add_argument("--baselines", nargs="+", default=list(BASELINE_NAMES))
    parser.add_argument("--k", type=int, default=25, help="Candidates retrieved (paper: 25).")
    parser.add_argument("--no-tune", action="store_true", help="Defaults, no validation grid.")
    parser.add_argument("--ranker", action="store_true", help="Also + semantic ranker rows.")
    parser.add_argument(
        "--protocols",
        nargs="+",
        choices=["per_turn", "per_item"],
        default=["per_turn"],
        help="Evaluation protocols (docs/evaluation.md); the baselines are fitted once.",
    )
    parser.add_argument("--out", default="runs/experiments/table_baselines")
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    parser.add_argument("--quiet", action="store_true", help="No progress bars.")
    args = parser.parse_args()
    setup(args)

    from rar.baselines import fit_on_dataset
    from rar.data.registry import load_conversation_samples
    from rar.evaluation.evaluate_config import EvaluateConfig
    from rar.evaluation.evaluator import evaluate_systems
    from rar.evaluation.runner import save_baseline_fits
    from rar.paths import resolve_data_dir
    from rar.pipeline import System
    from rar.rankers import RankerConfig, build_ranker

    corpus = load_corpus(args.corpus)
    data_dir = resolve_data_dir(args.data_dir)
    ranker = None
    if args.ranker:
        ranker = build_ranker(RankerConfig(backend="semantic", cache={"enabled": False}), corpus)
    header = [
        "dataset", "protocol", "system", *(LABELS[m] for m in METRICS), "rows", "chosen on val"
    ]  # fmt: skip
    rows: list[list[str]] = []
    grid_lines: list[str] = []
    results: dict[str, Any] = {"args": vars(args), "protocols": args.protocols, "datasets": {}}
    try:
        for dataset in args.datasets:
            fits = [
                fit_on_dataset(name, dataset, data_dir, corpus, k=args.k, tune=not args.no_tune)
                for name in args.baselines
            ]
            systems = []
            for fit in fits:
                systems.append(System(fit.baseline.label, fit.baseline, None, fit.source()))
                if ranker is not None:
                    name = f"{fit.baseline.label} + semantic"
                    systems.append(System(name, fit.baseline, ranker, fit.source()))
            samples = load_conversation_samples(dataset, data_dir, "test")
            chosen = {f.baseline.label: f.baseline.describe() or "–" for f in fits}
            results["datasets"][dataset] = {"fits": [f.as_dict() for f in fits]}
            for protocol in args.protocols:
                out = Path(args.out) / (
                    dataset if protocol == "per_turn" else f"{dataset}-{protocol}"
                )
                report = evaluate_systems(
                    samples,
                    corpus,
                    systems,
                    EvaluateConfig(k=args.k, split="test", protocol=protocol),
                    out_dir=out,
                    dataset=dataset,
                    data_source=f"{dataset} test split of {data_dir}",
                    progress=not args.quiet,
                    corpus_dir=args.corpus,
                )
                save_baseline_fits(fits, out)
                data = report.to_dict()
                key = "evaluation" if protocol == "per_turn" else f"evaluation_{protocol}"
                results["datasets"][dataset][key] = data
                label = protocol.replace("_", "-")
                for name, s in data["systems"].items():
                    cells = [cell(s["metrics"][m], s["metrics_ci"][m]["se"]) for m in METRICS]
                    params = chosen.get(name.removesuffix(" + semantic"), "")
                    rows.append([dataset, label, name, *cells, str(s["num_samples"]), params])
            grid_lines += _grid_lines(dataset, fits)
    finally:
        if ranker is not None:
            ranker.close()

    lines = [
        f"# Baselines ({', '.join(p.replace('_', '-') for p in args.protocols)} protocol)",
        "",
        f"Test split of each dataset; top-{args.k} over the corpus with mentioned movies masked; "
        "fitted on train only, hyperparameters chosen on val by N@10; mean ± standard error "
        "over rows. Protocol per-turn: one row per recommender turn (all its new movies are "
        "targets); per-item (He et al. 2023): one row per ground-truth movie of a turn, the "
        "turn's other movies not masked.",
        "",
        markdown_table(header, rows),
        "",
        REFERENCE,
        "",
        "## Validation grids (N@10 on val; test never read)",
        "",
        *grid_lines,
    ]
    write_outputs(args.out, "table_baselines", "\n".join(lines), results)


def _grid_lines(dataset: str, fits: list[Any]) -> list[str]:
    lines: list[str] = []
    for fit in fits:
        if not fit.grid:
            continue
        lines.append(
            f"{dataset} {fit.baseline.label} ({fit.train_samples:,} train / "
            f"{fit.val_samples:,} val samples):"
        )
        lines.append("")
        keys = list(fit.grid[0]["params"])
        table = [
            [*(str(row["params"][k]) for k in keys), f"{row[fit.metric]:.4f}"] for row in fit.grid
        ]
        lines += [markdown_table([*keys, "val N@10"], table), ""]
    return lines


if __name__ == "__main__":
    main()
