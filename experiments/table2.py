"""Table 2 of the paper: the five retrievers pretrained with the same budget on MovieLens.

Trains LRURec, SASRec, GRU4Rec, BERT4Rec and FMLP-Rec on ml-latest-small and ML-100K sessions
linked to a corpus, for several seeds (each seed = its own 8:1:1 session split and init), and
prints test NDCG/Recall@{10,20} as mean ± standard error, with a most-popular baseline row.

    .venv/bin/python experiments/table2.py --corpus corpus --data-dir ../shared/data \
        [--epochs 10 --steps-per-epoch 50 --seeds 0 1 2] [--out runs/table2/results.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import cell

from rar.metrics import summarize

MODELS = ("gru4rec", "bert4rec", "sasrec", "fmlprec", "lrurec")
DATASETS = ("ml-latest-small", "ml-100k")
KEYS = ("ndcg@10", "recall@10", "ndcg@20", "recall@20")


def seed_cell(values: list[float]) -> str:
    """`mean ± se` over seeds (`rar.metrics.summarize`; the mean alone for one seed)."""
    s = summarize(values)
    return cell(s.mean, s.se)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", required=True, help="Corpus directory.")
    parser.add_argument(
        "--data-dir", default=None, help="Data directory holding movielens/<variant>/."
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10, help="Max epochs (same for every model).")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="Cap steps per epoch.")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--max-eval-sessions", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs-dir", default="runs/table2")
    parser.add_argument("--out", default=None, help="Write all results as JSON here.")
    args = parser.parse_args()

    import torch

    from rar.corpus import Corpus
    from rar.paths import resolve_data_dir
    from rar.retrievers.pretrain import pretrain
    from rar.retrievers.pretrain_config import PretrainConfig

    torch.set_num_threads(args.threads)
    corpus = Corpus.load(args.corpus)
    data_dir = resolve_data_dir(args.data_dir)
    results: list[dict] = []
    for dataset in args.datasets:
        for seed in args.seeds:
            for model in args.models:
                cfg = PretrainConfig.model_validate(
                    {
                        "name": f"{dataset}-{model}-seed{seed}",
                        "seed": seed,
                        "retriever": {
                            "name": model,
                            "max_len": args.max_len,
                            "dropout": args.dropout,
                        },
                        "data": {
                            "movielens": f"movielens/{dataset}",
                            "max_eval_sessions": args.max_eval_sessions,
                        },
                        "corpus": args.corpus,
                        "optim": {"batch_size": args.batch_size, "lr": args.lr},
                        "epochs": args.epochs,
                        "max_steps_per_epoch": args.steps_per_epoch,
                        "patience": args.patience,
                        "tracking": {"runs_dir": args.runs_dir},
                    }
                )
                started = time.perf_counter()
                metrics = pretrain(cfg, data_dir, corpus=corpus, overwrite=True, progress=False)
                seconds = time.perf_counter() - started
                results.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "seed": seed,
                        "seconds": seconds,
                        **metrics,
                    }
                )
                print(
                    f"{dataset} {model} seed {seed}: test ndcg@10 {metrics['test/ndcg@10']:.4f} "
                    f"(best epoch {metrics['best_epoch']}, {seconds:.0f}s)",
                    flush=True,
                )
                if args.out:
                    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                    Path(args.out).write_text(json.dumps(results, indent=2))

    budget = (
        f"{args.epochs} epochs max (patience {args.patience}), "
        f"{args.steps_per_epoch or 'all'} steps/epoch, batch {args.batch_size}, "
        f"d 64, 2 layers, max_len {args.max_len}, dropout {args.dropout}, lr {args.lr}"
    )
    print(f"\nTable 2 (test split, mean ± se over seeds {args.seeds}; budget: {budget})")
    for dataset in args.datasets:
        rows = [r for r in results if r["dataset"] == dataset]
        if not rows:
            continue
        first = rows[0]
        print(
            f"\n### {dataset} ({first['n_train_sessions']} train / {first['n_test_sessions']} test sessions, "
            f"corpus {len(corpus)} items)\n"
        )
        print("| retriever | N@10 | R@10 | N@20 | R@20 |")
        print("|---|---|---|---|---|")
        by_seed = {r["seed"]: r for r in rows}
        print(
            "| popularity | "
            + " | ".join(
                seed_cell([by_seed[s][f"popularity/test/{k}"] for s in by_seed]) for k in KEYS
            )
            + " |"
        )
        for model in args.models:
            model_rows = [r for r in rows if r["model"] == model]
            print(
                f"| {model} | "
                + " | ".join(seed_cell([r[f"test/{k}"] for r in model_rows]) for k in KEYS)
                + " |"
            )


if __name__ == "__main__":
    main()
