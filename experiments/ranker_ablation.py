"""The trained ranker's parts on a retriever's top-k: full, without co-occurrence, without the
conversation text, co-occurrence and order only; each against the retriever's own order.

Each ablation re-chooses its free weights (retriever, co-occurrence) on the validation top-k of
the same run, then the test split is scored once (paired bootstrap on per-sample N@10).

    python experiments/ranker_ablation.py --corpus CORPUS --run SFT_RUN --ranker RANKER_DIR \\
        [--text-cache turns.npz]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = ("full", "no co-occurrence", "no conversation", "co-occurrence and order only")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--run", required=True, help="retriever run whose top-k is re-ranked")
    ap.add_argument("--ranker", required=True, help="`rar fit-ranker` output directory")
    ap.add_argument("--dataset", default="redial")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--k", type=int, default=25)
    ap.add_argument("--text-cache", default=None, help="npz of turn embeddings to reuse")
    args = ap.parse_args(argv)
    from _common import load_corpus
    from ranker_vs_retriever_order import load_text_cache

    from rar.data.linking import link_samples
    from rar.data.registry import load_conversation_samples
    from rar.evaluation.ranker_fit import retrieve_top_k, select_retriever_weight
    from rar.metrics import paired_bootstrap
    from rar.paths import resolve_data_dir
    from rar.pipeline import rank, score, scored_ranking
    from rar.rankers import RankerConfig
    from rar.rankers.semantic_ranker import SemanticRanker
    from rar.rankers.trained_ranker import TrainedModel, TrainedRanker

    corpus = load_corpus(args.corpus)
    data_dir = resolve_data_dir(args.data_dir)
    linked = {
        s: link_samples(load_conversation_samples(args.dataset, data_dir, s), corpus)[0]
        for s in ("val", "test")
    }
    cands = {s: retrieve_top_k(args.run, corpus, linked[s], args.k) for s in linked}
    shared = SemanticRanker(RankerConfig(backend="semantic"), corpus)
    if args.text_cache:
        model_id = str(corpus.embedding_meta.get("model_id", ""))
        load_text_cache(shared, Path(args.text_cache), model_id)
    own = score(cands["test"], linked["test"], (10,))["ndcg@10"]
    print(f"| {args.dataset} test, {len(own)} samples | N@10 | Δ vs retriever order | 95% CI | p |")
    print("|---|---:|---:|---|---:|")
    print(f"| the retriever's own order | {own.mean():.4f} | | | |")
    fitted = TrainedModel.load(args.ranker)
    for name in VARIANTS:
        model = copy.deepcopy(fitted)
        if name == "no co-occurrence":
            model.cooc, model.cooc_ids, model.cooc_weight = None, [], 0.0
        if name in ("no conversation", "co-occurrence and order only"):
            model.scale = 0.0
        if name == "co-occurrence and order only":
            model.pop_weight = 0.0
        weight = model.retriever_weight
        if name != "full":  # the fitted weights belong to the full model
            weight, _ = select_retriever_weight(model, corpus, linked["val"], cands["val"])
        ranker = TrainedRanker(RankerConfig(backend="trained"), corpus, model=model)
        ranker._text_cache = shared._text_cache
        ranker.retriever_weight, ranker.cooc_weight = weight, model.cooc_weight
        ranked = [scored_ranking(r) for r in rank(ranker, linked["test"], cands["test"])]
        values = score(ranked, linked["test"], (10,))["ndcg@10"]
        b = paired_bootstrap(values, own, seed=0)
        print(
            f"| {name} (retriever {weight}, co-occurrence {model.cooc_weight}) | "
            f"{values.mean():.4f} | {b.diff:+.4f} | [{b.ci_low:+.4f}, {b.ci_high:+.4f}] | "
            f"{b.p_value:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
