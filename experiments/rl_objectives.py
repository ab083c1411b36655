"""RL objectives from one converged SFT run, each with its shuffled control, over seeds (issue 25).

Trains `rar train` runs in one process (the corpus, the trained ranker and the turn embeddings
are shared), one per variant x seed, from `--config` (default: the packaged rar_quickstart)
with `pretrained_run` = `--sft` and `ranker.trained.path` = `--ranker`. Finished runs are
reused. Then compare them on the test split with experiments/table_converged.py:

    python experiments/rl_objectives.py --corpus runs/quickstart/corpus \\
        --sft runs/quickstart/runs/quickstart-sft-fused --ranker runs/quickstart/runs/ranker-redial \\
        --data-dir ../shared/data --out runs/rl-objectives
    python experiments/table_converged.py --corpus runs/quickstart/corpus --data-dir ../shared/data \\
        --ranker runs/quickstart/runs/ranker-redial --runs SFT=runs/quickstart/runs/quickstart-sft-fused \\
        "distill=runs/rl-objectives/distill-s0,..." --compare "distill + ranker=SFT + ranker"
"""

from __future__ import annotations

import argparse
from pathlib import Path

VARIANTS = {
    "distill": ["rl.method=distill"],
    "distill-shuffled": ["rl.method=distill", "rl.shuffle_rewards=true"],
    "label_credit": ["rl.method=label_credit"],
    "label_credit-shuffled": ["rl.method=label_credit", "rl.shuffle_rewards=true"],
    "dpo": ["rl.method=dpo", "rl.max_resamples=1"],
    "dpo-shuffled": ["rl.method=dpo", "rl.max_resamples=1", "rl.shuffle_rewards=true"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--sft", type=Path, required=True, help="the converged SFT run")
    ap.add_argument("--ranker", type=Path, required=True, help="`rar fit-ranker` output")
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--config", default="rar_quickstart", help="a config path or packaged name")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument(
        "--feedback-retriever-weight",
        type=float,
        default=None,
        help="the feedback ranker's retriever_weight (0 = order-free: its own judgement, not an "
        "echo of the policy's order; None = the fitted value)",
    )
    ap.add_argument("--set", action="append", default=[], help="extra key=value overrides")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from rar.config import load_config
    from rar.corpus import Corpus
    from rar.rankers import RankerConfig
    from rar.rankers.trained_ranker import TrainedRanker
    from rar.rl.train_config import TrainConfig
    from rar.rl.trainer import train
    from rar.tracking import is_finished

    corpus = Corpus.load(args.corpus)
    trained = {"path": str(args.ranker), "retriever_weight": args.feedback_retriever_weight}
    ranker = TrainedRanker(RankerConfig(backend="trained", trained=trained), corpus)
    try:
        for variant in args.variants:
            for seed in args.seeds:
                name = f"{variant}-s{seed}"
                if is_finished(args.out / name):
                    print(f"{name}: reusing {args.out / name}")
                    continue
                config = load_config(
                    TrainConfig,
                    args.config,
                    [
                        f"name={name}",
                        f"seed={seed}",
                        f"corpus={args.corpus}",
                        f"pretrained_run={args.sft}",
                        f"ranker.trained.path={args.ranker}",
                        *(
                            [f"ranker.trained.retriever_weight={args.feedback_retriever_weight}"]
                            if args.feedback_retriever_weight is not None
                            else []
                        ),
                        f"data.data_dir={args.data_dir}",
                        f"tracking.runs_dir={args.out}",
                        *VARIANTS[variant],
                        *args.set,
                    ],
                )
                final = train(config, overwrite=True, corpus=corpus, ranker=ranker)
                print(f"{name}: best step {final.get('best_step')}, val N@10 "
                      f"{final.get('val/ndcg@10', float('nan')):.4f}")  # fmt: skip
    finally:
        ranker.close()


if __name__ == "__main__":
    main()
