r"""Figure 3 of the paper: N@10 and R@10 as the number of retrieved candidates k grows (5..50).

For each dataset's test split, the retriever's top-50 is computed once; for every k its first
k items are (a) scored in the retriever's own order and (b) re-ranked by the ranker
(`rar.evaluation.reports.recall_vs_k_report`, which also draws the curve). The retriever is a
pretrained run by default, or any post-trained run (`--run`, e.g. a DPO run directory).

    .venv/bin/python experiments/figure3_k_sweep.py --corpus corpus \
        --pretrained-run runs/pretrain-ml-latest-small-lrurec --data-dir ../shared/data \
        [--datasets redial inspired] [--ks 5 10 15 20 25 30 35 40 45 50] \
        [--backend semantic|local-loglik] [--max-samples N] [--out runs/experiments/figure3]

Writes OUT/figure3_k_sweep.{md,json} and OUT/<dataset>/recall_vs_k.{md,json} +
recall_vs_k_curve.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from _common import (  # fmt: skip
    add_common_args,
    cell,
    check_pretrained,
    load_corpus,
    markdown_table,
    setup,
    write_outputs,
)

DEFAULT_KS = [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(parser, "runs/experiments/figure3")
    parser.add_argument("--run", default=None, help="Retriever run to use instead (e.g. RL run).")
    parser.add_argument("--datasets", nargs="+", default=["redial", "inspired"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--ks", nargs="+", type=int, default=DEFAULT_KS)
    parser.add_argument("--backend", default="semantic", choices=["semantic", "local-loglik"])
    parser.add_argument("--config-dir", default="rar/configs", help="Holds ranker_<backend>.yaml.")
    parser.add_argument("--max-samples", type=int, default=None, help="Seeded subset per dataset.")
    args = parser.parse_args()
    setup(args)

    from rar.config import load_config
    from rar.data.registry import load_conversation_samples
    from rar.evaluation.evaluate_config import EvaluateConfig
    from rar.evaluation.reports.recall_vs_k import recall_vs_k_report
    from rar.paths import resolve_data_dir
    from rar.rankers import RankerConfig, build_ranker
    from rar.retrievers import load_pretrained_run

    run = check_pretrained(args.run or args.pretrained_run)
    corpus = load_corpus(args.corpus)
    data_dir = resolve_data_dir(args.data_dir)
    retriever = load_pretrained_run(run, corpus)
    sets = [f"cache.path={Path(args.out) / 'ranker_cache.sqlite'}"]
    if args.backend == "semantic":
        cfg = load_config(RankerConfig, Path(args.config_dir) / "ranker_semantic.yaml", sets)
    else:
        sets += ["local.mode=loglik", f"local.num_threads={args.threads}"]
        cfg = load_config(RankerConfig, Path(args.config_dir) / "ranker_local.yaml", sets)
    ranker = build_ranker(cfg, corpus)
    config = EvaluateConfig(split=args.split, max_samples=args.max_samples)

    import json

    header = ["dataset", "k", "retriever N@10", "retriever R@10", "re-ranked N@10", "re-ranked R@10"]  # fmt: skip
    rows: list[list[str]] = []
    results: dict[str, Any] = {"args": vars(args), "retriever_run": str(run), "datasets": {}}
    for dataset in args.datasets:
        samples = load_conversation_samples(dataset, data_dir, args.split)
        out_dir = Path(args.out) / dataset
        recall_vs_k_report(
            samples,
            corpus,
            retriever,
            out_dir,
            ranker=ranker,
            ks=args.ks,
            config=config,
            label=f"{dataset} {args.split}, {args.backend} ranker, retriever {run}",
            progress=not args.quiet,
        )
        points = json.loads((out_dir / "recall_vs_k.json").read_text(encoding="utf-8"))
        results["datasets"][dataset] = points
        for p in points:
            rows.append(
                [
                    dataset,
                    str(p["k"]),
                    *(
                        cell(p[f"{side}/{m}"], p[f"{side}/{m}/se"])
                        for side in ("retriever", "ranked")
                        for m in ("ndcg@10", "recall@10")
                    ),
                ]
            )
    ranker.close()
    n = {d: v[0]["num_samples"] for d, v in results["datasets"].items()}
    lines = [
        "# Figure 3 analogue: N@10 / R@10 vs the number of retrieved candidates k",
        "",
        f"Retriever `{run}`; ranker `{args.backend}`; split `{args.split}` "
        f"({', '.join(f'{d}: {c} samples' for d, c in n.items())}); mean ± se over samples. "
        "Curves: OUT/<dataset>/recall_vs_k_curve.png.",
        "",
        markdown_table(header, rows),
    ]
    write_outputs(args.out, "figure3_k_sweep", "\n".join(lines), results)


if __name__ == "__main__":
    main()
