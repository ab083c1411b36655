"""What decides a DPO pair: sample two Plackett-Luce sets per training sample from a retriever
run, rank both with a ranker, and describe the pairs whose sets both hold the label.

The winner is the set where the ranker puts the label higher. If that is mostly the set whose
other movies (distractors) are weaker, by the policy's own scores or by popularity, then DPO
pushes probability towards sets of weak movies: a signal against the retriever's ranking, not
the ranker's knowledge.

    python experiments/dpo_pair_diagnostics.py --corpus CORPUS --run SFT_RUN --ranker RANKER_DIR \\
        [--samples 1200] [--text-cache turns.npz]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def first_label(ranked: list[str], targets: set[str]) -> int | None:
    return next((p for p, c in enumerate(ranked) if c in targets), None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--run", required=True, help="the policy: a retriever run")
    ap.add_argument("--ranker", required=True, help="`rar fit-ranker` output directory")
    ap.add_argument("--dataset", default="redial")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--samples", type=int, default=1200, help="training samples (seeded subset)")
    ap.add_argument("--k", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--text-cache", default=None, help="npz of turn embeddings to reuse")
    args = ap.parse_args(argv)
    import torch
    from _common import load_corpus
    from ranker_vs_retriever_order import load_text_cache

    from rar.data.linking import link_samples
    from rar.data.registry import load_conversation_samples
    from rar.paths import resolve_data_dir
    from rar.rankers import RankerConfig
    from rar.rankers.semantic_ranker import SemanticRanker
    from rar.rankers.trained_ranker import TrainedModel, TrainedRanker
    from rar.rankers.types import RankRequest
    from rar.retrievers import load_pretrained_run
    from rar.rl.batches import make_batch
    from rar.rl.candidate_order import order_set
    from rar.rl.policy import sample_ranked_sets

    torch.set_num_threads(1)
    corpus = load_corpus(args.corpus)
    raw = load_conversation_samples(args.dataset, resolve_data_dir(args.data_dir), "train")
    train, _ = link_samples(raw, corpus)
    rng = np.random.default_rng(args.seed)
    picked = rng.choice(len(train), min(args.samples, len(train)), replace=False)
    train = [train[i] for i in picked]
    policy = load_pretrained_run(args.run, corpus).eval()
    ranker = TrainedRanker(
        RankerConfig(backend="trained"), corpus, model=TrainedModel.load(args.ranker)
    )
    if args.text_cache:
        shared = SemanticRanker(RankerConfig(backend="semantic"), corpus)
        load_text_cache(shared, Path(args.text_cache), str(corpus.embedding_meta.get("model_id")))
        ranker._text_cache = shared._text_cache
    ids = list(corpus.ids)
    row_of = {c: i for i, c in enumerate(ids)}
    pop = np.array([ranker.trained.popularity.get(c, 0.0) for c in ids])
    gen = torch.Generator().manual_seed(args.seed)
    counts = {"both": 0, "one": 0, "neither": 0, "tie": 0}
    diffs: dict[str, list[float]] = {
        "distractors' mean policy score": [],
        "distractors' mean popularity (log count)": [],
        "the label's position in the set as shown": [],
    }
    for start in range(0, len(train), 64):
        chunk = train[start : start + 64]
        with torch.no_grad():
            scores = policy.scores(make_batch(chunk, row_of, 64).inputs)
        sets = sample_ranked_sets(scores, args.k, 2, generator=gen)
        requests, shown = [], []
        for i, x in enumerate(chunk):
            for j in range(2):
                rows = order_set(sets[i, j].tolist(), "retriever", scores[i].numpy())
                shown.append(rows)
                cands = [ids[c] for c in rows]
                requests.append(
                    RankRequest(x.sample.sample_id, x.sample.context, cands, list(x.history_ids))
                )
        results = ranker.rank_sync(requests)
        for i, x in enumerate(chunk):
            targets = set(x.target_ids)
            label = [first_label(results[2 * i + j].ranked_ids, targets) for j in range(2)]
            if None in label:
                counts["neither" if label == [None, None] else "one"] += 1
                continue
            if label[0] == label[1]:
                counts["tie"] += 1
                continue
            counts["both"] += 1
            win = 0 if label[0] < label[1] else 1
            sides = []
            for j in (win, 1 - win):
                rows = shown[2 * i + j]
                other = [c for c in rows if ids[c] not in targets]
                position = next(p for p, c in enumerate(rows) if ids[c] in targets)
                sides.append((scores[i, other].mean().item(), pop[other].mean(), position))
            for name, w, lo in zip(diffs, sides[0], sides[1], strict=True):
                diffs[name].append(w - lo)
    total = sum(counts.values())
    print(
        f"{total} pairs: "
        + ", ".join(f"label in {k} {v} ({v / total:.0%})" for k, v in counts.items())
    )
    print(
        "pairs with the label in both sets, winner − loser (mean ± se; share where winner < loser):"
    )
    for name, values in diffs.items():
        d = np.array(values)
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        print(f"  {name}: {d.mean():+.3f} ± {se:.3f}; {np.mean(d < 0):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
