"""Does the trained offline ranker beat the retriever's own order on the retriever's top-k?

Fits the trained ranker on the dataset's training split (early stopping on validation),
chooses its retriever weight on the retriever run's validation top-k, then re-ranks the run's
test top-k and compares N@10 with the retriever's own order by a paired bootstrap. The
untrained semantic ranker (alone and blended 0.7 with the order) is shown for reference.

    python experiments/ranker_vs_retriever_order.py --run runs/quickstart-sft \\
        --corpus corpus --dataset redial --out /tmp/ranker_vs_order
    python experiments/ranker_vs_retriever_order.py --baseline itemknn --corpus corpus

`--text-cache FILE.npz` keeps conversation-turn embeddings between invocations (MiniLM on
2 shared cores is the slow part); `--ranker DIR` reuses a `rar fit-ranker` output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def load_text_cache(ranker, path: Path, model_id: str) -> int:
    """Fill a SemanticRanker's text cache from `path` if it was made by the same embedder."""
    if not path.is_file():
        return 0
    with np.load(path, allow_pickle=False) as data:
        if str(data["model_id"]) != model_id:
            return 0
        for text, vec in zip(data["texts"].tolist(), data["vectors"], strict=True):
            ranker._text_cache[text] = np.asarray(vec, dtype=np.float32)
    return len(ranker._text_cache)


def save_text_cache(ranker, path: Path, model_id: str) -> None:
    texts = list(ranker._text_cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        model_id=np.array(model_id),
        texts=np.array(texts, dtype=str),
        vectors=np.stack([ranker._text_cache[t] for t in texts]).astype(np.float32),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="Trained retriever run directory.")
    source.add_argument(
        "--baseline", help="Or a baseline as the retriever (most-popular, itemknn, ease)."
    )
    parser.add_argument("--corpus", default=None, help="Corpus directory (default: the run's).")
    parser.add_argument("--dataset", default="redial")
    parser.add_argument("--data-dir", default=None, help="Default $RAR_DATA_DIR, else ./data.")
    parser.add_argument("--ranker", default=None, help="A `rar fit-ranker` output to reuse.")
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--l2", type=float, nargs="*", default=None, help="Ridge grid.")
    parser.add_argument("--text-cache", default=None, help="npz of turn embeddings to reuse.")
    parser.add_argument("--out", default="results/ranker_vs_retriever_order")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from _common import load_corpus

    from rar.data.linking import link_samples
    from rar.data.registry import load_conversation_samples
    from rar.evaluation.ranker_fit import (
        FitSettings,
        fit_from_data,
        retrieve_top_k,
        select_retriever_weight,
    )
    from rar.evaluation.runner import corpus_from_run
    from rar.metrics import paired_bootstrap
    from rar.paths import resolve_data_dir
    from rar.pipeline import rank, score, scored_ranking
    from rar.rankers import RankerConfig
    from rar.rankers.semantic_ranker import SemanticRanker
    from rar.rankers.trained_ranker import TrainedModel, TrainedRanker

    torch.set_num_threads(max(1, args.threads))
    started = time.perf_counter()
    data_dir = resolve_data_dir(args.data_dir)
    corpus_dir = args.corpus or (corpus_from_run(args.run) if args.run else None)
    if corpus_dir is None:
        parser.error("pass --corpus (or a --run whose config.yaml names one)")
    corpus = load_corpus(corpus_dir)
    if args.baseline:
        from rar.baselines.selection import fit_on_dataset

        fitted = fit_on_dataset(args.baseline, args.dataset, data_dir, corpus, k=args.k)
        retriever, retriever_name = fitted.baseline, fitted.source()
    else:
        retriever, retriever_name = args.run, str(args.run)
    print(f"retriever: {retriever_name}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_id = str(corpus.embedding_meta.get("model_id", ""))
    shared = SemanticRanker(RankerConfig(backend="semantic"), corpus)  # one text cache for all
    cache = Path(args.text_cache) if args.text_cache else None
    if cache is not None:
        print(f"text cache: {load_text_cache(shared, cache, model_id):,} turns from {cache}")

    settings = FitSettings(l2=tuple(args.l2)) if args.l2 else FitSettings()
    if args.ranker:
        model = TrainedModel.load(args.ranker)
    else:
        model = fit_from_data(args.dataset, data_dir, corpus, settings, embedder=shared)
        if cache is not None:
            save_text_cache(shared, cache, model_id)
    val = load_conversation_samples(args.dataset, data_dir, "val", settings.split_seed)
    val_linked, _ = link_samples(val, corpus)
    val_cands = retrieve_top_k(retriever, corpus, val_linked, args.k)
    ranker = TrainedRanker(RankerConfig(backend="trained"), corpus, model=model)
    ranker._text_cache = shared._text_cache
    weight, table = select_retriever_weight(
        model, corpus, val_linked, val_cands, split_seed=settings.split_seed
    )
    model.retriever_weight = weight
    model.metrics["val_ndcg@10_by_retriever_weight"] = {str(w): v for w, v in table.items()}
    model.meta["retriever_run"] = retriever_name
    model.save(out / "ranker")
    print(f"validation N@10 by retriever weight: {table} -> {weight}")

    test = load_conversation_samples(args.dataset, data_dir, "test", settings.split_seed)
    test_linked, link_stats = link_samples(test, corpus)
    cands = retrieve_top_k(retriever, corpus, test_linked, args.k)

    def n10(rankings: list[list[str]]) -> np.ndarray:
        return score(rankings, test_linked, (10,))["ndcg@10"]

    def ranked(by) -> list[list[str]]:
        return [scored_ranking(r) for r in rank(by, test_linked, cands)]

    systems: dict[str, np.ndarray] = {"retriever order": n10(cands)}
    ranker.retriever_weight = weight
    ranker._text_cache = shared._text_cache
    systems[f"trained ranker (retriever weight {weight})"] = n10(ranked(ranker))
    ranker.retriever_weight = 0.0
    systems["trained ranker alone (weight 0)"] = n10(ranked(ranker))
    for blend in (0.0, 0.7):
        sem = SemanticRanker(
            RankerConfig(backend="semantic", semantic={"retriever_weight": blend}), corpus
        )
        sem._text_cache = shared._text_cache
        systems[f"semantic ranker (blend {blend})"] = n10(ranked(sem))
    if cache is not None:
        save_text_cache(shared, cache, model_id)

    base = systems["retriever order"]
    rows = []
    print(
        f"\n{args.dataset} test split: {len(test_linked)} samples "
        f"(of {link_stats.samples_in}), top-{args.k} of {retriever_name}"
    )
    print("| system | N@10 | diff vs retriever order | 95% CI | p |\n|---|---:|---:|---|---:|")
    for name, values in systems.items():
        if name == "retriever order":
            print(f"| {name} | {values.mean():.4f} | | | |")
            rows.append({"system": name, "ndcg@10": float(values.mean())})
            continue
        b = paired_bootstrap(values, base, seed=0)
        print(
            f"| {name} | {values.mean():.4f} | {b.diff:+.4f} | "
            f"[{b.ci_low:+.4f}, {b.ci_high:+.4f}] | {b.p_value:.4f} |"
        )
        rows.append(
            {
                "system": name,
                "ndcg@10": float(values.mean()),
                "diff": b.diff,
                "ci": [b.ci_low, b.ci_high],
                "p": b.p_value,
            }
        )
    result = {
        "dataset": args.dataset,
        "retriever": retriever_name,
        "corpus": str(corpus_dir),
        "k": args.k,
        "test_samples": len(test_linked),
        "val_samples": len(val_linked),
        "retriever_weight": weight,
        "val_ndcg@10_by_retriever_weight": table,
        "fit": model.metrics.get("trials"),
        "chosen_l2": model.metrics.get("chosen_l2"),
        "rows": rows,
        "seconds": time.perf_counter() - started,
    }
    stem = f"{args.dataset}-{args.baseline or 'run'}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out / (stem + '.json')} and {out / 'ranker'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
