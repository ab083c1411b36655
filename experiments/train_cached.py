"""`rar train` with the ranker's conversation-turn embeddings preloaded from an npz file.

The semantic and trained rankers embed every conversation turn with MiniLM the first time they
see it; on 2 shared CPU cores that first pass dominates an RL run. This runs exactly what
`rar train --config CONFIG --set ...` runs, with the ranker's turn cache filled from
`--text-cache` (written by `experiments/ranker_vs_retriever_order.py --text-cache`), so
several seeds and methods do not each re-embed the same conversations.

    python experiments/train_cached.py --config configs/redial_dpo_trained.yaml \\
        --text-cache /tmp/text_redial.npz --set seed=1 --set name=dpo-s1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--text-cache", default=None)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    import torch
    from _common import load_corpus
    from ranker_vs_retriever_order import load_text_cache

    from rar.config import load_config
    from rar.rankers import build_ranker
    from rar.rl.train_config import TrainConfig
    from rar.rl.trainer import train

    cfg = load_config(TrainConfig, args.config, args.overrides)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    corpus = load_corpus(cfg.corpus)
    ranker = build_ranker(cfg.ranker, corpus)
    if args.text_cache and hasattr(ranker, "_text_cache"):
        model_id = str(corpus.embedding_meta.get("model_id", ""))
        n = load_text_cache(ranker, Path(args.text_cache), model_id)
        print(f"text cache: {n:,} turns from {args.text_cache}", flush=True)
    try:
        final = train(cfg, resume=args.resume, corpus=corpus, ranker=ranker, progress=False)
    finally:
        ranker.close()
    print({k: v for k, v in final.items() if k.startswith(("val/", "best", "steps", "run_dir"))})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
