"""Converged systems side by side on one split: baselines, retriever runs, each + a frozen ranker.

Every system is scored on the same linked samples of `--split` (per-turn rows, k candidates,
history masked), so every comparison is a paired bootstrap on per-sample N@10. A group of runs
given as `NAME=DIR1,DIR2,DIR3` (one per seed) is averaged per sample over its seeds before the
bootstrap (sample noise, not seed-to-seed variance); its mean ± se over seeds is printed too.

    python experiments/table_converged.py --corpus CORPUS --dataset redial --split test \\
        --baselines most-popular itemknn ease --ranker RANKER_DIR \\
        --runs SFT=runs/sft-s0,runs/sft-s1,runs/sft-s2 RAR=runs/dpo-s0,runs/dpo-s1,runs/dpo-s2 \\
        --compare "SFT=itemknn" "RAR + ranker=SFT + ranker" --out /tmp/table_converged

The trained ranker (`rar fit-ranker`, fitted on the training split only) re-ranks each
system's top-k with its retriever weight chosen on that system's *validation* top-k
(`--ranker-weight` fixes it instead). Test is only read for the final table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cell

from rar.metrics import paired_bootstrap, summarize
from rar.pipeline import rank, score, scored_ranking

CUTS = (("N@5", "ndcg@5"), ("R@5", "recall@5"), ("N@10", "ndcg@10"), ("R@10", "recall@10"))


def per_sample(rankings: list[list[str]], samples: list) -> dict[str, np.ndarray]:
    """The table's columns, scored by the pipeline (`rar.pipeline.score`)."""
    scores = score(rankings, samples, (5, 10))
    return {label: scores[key] for label, key in CUTS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--dataset", default="redial")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--split", default="test", choices=["val", "test"])
    ap.add_argument("--k", type=int, default=25)
    ap.add_argument("--baselines", nargs="*", default=[])
    ap.add_argument("--runs", nargs="*", default=[], help="NAME=DIR[,DIR...] (seeds)")
    ap.add_argument("--ranker", default=None, help="`rar fit-ranker` output directory")
    ap.add_argument("--ranker-weight", type=float, default=None)
    ap.add_argument("--text-cache", default=None, help="npz of turn embeddings to reuse")
    ap.add_argument("--compare", nargs="*", default=[], help='"A=B": paired bootstrap A - B')
    ap.add_argument("--out", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch
    from _common import load_corpus
    from ranker_vs_retriever_order import load_text_cache, save_text_cache

    from rar.data.linking import link_samples
    from rar.data.registry import load_conversation_samples
    from rar.evaluation.ranker_fit import retrieve_top_k, select_retriever_weight
    from rar.paths import resolve_data_dir
    from rar.rankers import RankerConfig

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    data_dir = resolve_data_dir(args.data_dir)
    corpus = load_corpus(args.corpus)
    linked = {}
    for split in sorted({"val", args.split}):
        raw = load_conversation_samples(args.dataset, data_dir, split)
        linked[split], _ = link_samples(raw, corpus)
    samples = linked[args.split]

    ranker = model = shared = None
    if args.ranker:
        from rar.rankers.semantic_ranker import SemanticRanker
        from rar.rankers.trained_ranker import TrainedModel, TrainedRanker

        model = TrainedModel.load(args.ranker)
        shared = SemanticRanker(RankerConfig(backend="semantic"), corpus)
        model_id = str(corpus.embedding_meta.get("model_id", ""))
        if args.text_cache:
            n = load_text_cache(shared, Path(args.text_cache), model_id)
            print(f"text cache: {n:,} turns")
        ranker = TrainedRanker(RankerConfig(backend="trained"), corpus, model=model)
        ranker._text_cache = shared._text_cache

    systems: dict[str, dict] = {}  # name -> {"seeds": [per-sample dicts], "note": str}

    def add(name: str, retrievers: list, note: str) -> None:
        seeds, ranked_seeds, weights = [], [], []
        for retriever in retrievers:
            cands = retrieve_top_k(retriever, corpus, samples, args.k)
            seeds.append(per_sample(cands, samples))
            if ranker is None:
                continue
            weight = args.ranker_weight
            if weight is None:  # chosen on this retriever's validation top-k
                val_cands = retrieve_top_k(retriever, corpus, linked["val"], args.k)
                weight, _ = select_retriever_weight(model, corpus, linked["val"], val_cands)
            ranker.retriever_weight, ranker.cooc_weight = weight, model.cooc_weight
            weights.append((weight, model.cooc_weight))
            ranked = [scored_ranking(r) for r in rank(ranker, samples, cands)]
            ranked_seeds.append(per_sample(ranked, samples))
        systems[name] = {"seeds": seeds, "note": note}
        if ranked_seeds:
            systems[f"{name} + ranker"] = {
                "seeds": ranked_seeds,
                "note": f"trained ranker, (retriever, co-occurrence) weights {weights} (chosen on val)",
            }
        print(f"  {name}: N@10 {np.mean([s['N@10'].mean() for s in seeds]):.4f}", flush=True)

    if args.baselines:
        from rar.baselines.selection import fit_on_dataset

        for name in args.baselines:
            fitted = fit_on_dataset(name, args.dataset, data_dir, corpus, k=args.k)
            add(name, [fitted.baseline], fitted.source())
    for spec in args.runs:
        name, dirs = spec.split("=", 1)
        add(name, dirs.split(","), dirs)
    if shared is not None and args.text_cache:
        save_text_cache(shared, Path(args.text_cache), model_id)

    lines = [
        f"{args.dataset} {args.split}: {len(samples)} samples, k = {args.k}, per-turn rows.",
        "",
        "| system | N@5 | R@5 | N@10 | R@10 | seeds |",
        "|---|---|---|---|---|---|",
    ]
    out_json: dict = {"dataset": args.dataset, "split": args.split, "n": len(samples)}
    out_json["systems"] = {}
    for name, sys_ in systems.items():
        cells = []
        for metric, _ in CUTS:
            values = [s[metric] for s in sys_["seeds"]]
            # deterministic: se over samples; else se over seeds
            summary = summarize(values[0] if len(values) == 1 else [v.mean() for v in values])
            cells.append(cell(summary.mean, summary.se))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {len(sys_['seeds'])} |")
        out_json["systems"][name] = {
            "note": sys_["note"],
            "per_seed_ndcg@10": [float(s["N@10"].mean()) for s in sys_["seeds"]],
            "per_sample_ndcg@10": np.mean([s["N@10"] for s in sys_["seeds"]], 0).tolist(),
        }
    lines += ["", "| comparison (N@10) | difference | 95% CI | p |", "|---|---:|---|---:|"]
    out_json["comparisons"] = []
    for spec in args.compare:
        a, b = spec.split("=", 1)
        va = np.mean([s["N@10"] for s in systems[a]["seeds"]], 0)
        vb = np.mean([s["N@10"] for s in systems[b]["seeds"]], 0)
        r = paired_bootstrap(va, vb, seed=0)
        lines.append(
            f"| {a} − {b} | {r.diff:+.4f} | [{r.ci_low:+.4f}, {r.ci_high:+.4f}] | {r.p_value:.4f} |"
        )
        out_json["comparisons"].append(
            {"a": a, "b": b, "diff": r.diff, "ci": [r.ci_low, r.ci_high], "p": r.p_value}
        )
    lines.append(f"\n({time.perf_counter() - started:.0f} s)")
    text = "\n".join(lines)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(text + "\n")
        out.with_suffix(".json").write_text(json.dumps(out_json, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
