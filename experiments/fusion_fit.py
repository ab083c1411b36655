"""Does re-weighting a fused retriever's parts on validation help, and what is the cause?

`rar/retrievers/fusion.py` re-weights the parts of a fused SFT run's score (item tower, bias,
text tower, co-occurrence prior, and the metadata links it adds: people, title words) on the
validation split, on the claim that SFT balanced them in-sample. This script measures that
claim on the test split, paired on the same rows:

- the run as SFT left it (weights all 1, no links);
- weights fitted on the validation split (what `rar train` and the quickstart do);
- the same fit without the metadata links: what do the links add?
- control 1: the same fit on training rows (a sample of the training split the towers and the
  prior were fitted on): is held-out data the cause?
- control 2: the same search on validation, by likelihood (SFT's own criterion) instead of
  N@10: is the criterion the cause?

    python experiments/fusion_fit.py --run runs/quickstart/runs/quickstart-sft-fused \\
        --corpus runs/quickstart/corpus --data-dir ../shared/data

The run directory is only read (its fusion.json is ignored and never written).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from rar.corpus import Corpus
from rar.data.linking import LinkedSample, link_samples
from rar.data.registry import load_conversation_samples
from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.evaluator import Evaluator
from rar.metrics import paired_bootstrap
from rar.pipeline import retrieve, score
from rar.retrievers import load_pretrained_run
from rar.retrievers.fusion import fit_linked
from rar.retrievers.metadata_links import LINK_PARTS

KS = (10, 25, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a fused SFT run directory")
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--dataset", default="redial")
    parser.add_argument("--train-rows", type=int, default=2000, help="control: training rows")
    parser.add_argument("--out", type=Path, help="write the figures as json here")
    args = parser.parse_args()
    corpus = Corpus.load(args.corpus)

    def split(name: str) -> list[LinkedSample]:
        samples = load_conversation_samples(args.dataset, args.data_dir, name)
        return link_samples(samples, corpus)[0]

    test_samples = load_conversation_samples(args.dataset, args.data_dir, "test")
    test, _ = Evaluator(corpus, EvaluateConfig(), progress=False).link(test_samples)
    train = split("train")
    train = random.Random(0).sample(train, min(args.train_rows, len(train)))
    variants = {  # rows fitted on, criterion, with the metadata links
        "as trained (weights 1)": None,
        "fitted on validation (N@10)": ("val", "ndcg@10", True),
        "fitted on validation (N@10), without the links": ("val", "ndcg@10", False),
        "control: fitted on training rows (N@10)": ("train", "ndcg@10", True),
        "control: fitted on validation by likelihood": ("val", "nll", True),
    }
    out: dict[str, dict] = {}
    per_row = {}
    for name, source in variants.items():
        model = load_pretrained_run(args.run, corpus, fusion=False)
        weights = {n: w for n, w in model.fusion.as_dict().items() if n not in LINK_PARTS}
        if source is not None:
            rows = split("val") if source[0] == "val" else train
            weights = fit_linked(model, rows, corpus, source[1], links=source[2]).weights
        metrics = score(retrieve(model, test, corpus, max(KS)), test, KS)
        per_row[name] = metrics["ndcg@10"]
        out[name] = {"weights": weights} | {
            m: float(metrics[m].mean()) for m in ("ndcg@10", "recall@25", "recall@50")
        }
    base = "as trained (weights 1)"
    print(f"{len(test)} test rows\n\n| variant | N@10 | R@25 | R@50 | N@10 vs as trained (p) |")
    print("|---|---:|---:|---:|---|")
    for name, row in out.items():
        test_vs = paired_bootstrap(per_row[name], per_row[base])
        row["vs as trained"] = {"diff": test_vs.diff, "p": test_vs.p_value}
        print(
            f"| {name} | {row['ndcg@10']:.4f} | {row['recall@25']:.4f} | {row['recall@50']:.4f} "
            f"| {test_vs.diff:+.4f} ({test_vs.p_value:.3f}) |"
        )
    links = paired_bootstrap(
        per_row["fitted on validation (N@10)"],
        per_row["fitted on validation (N@10), without the links"],
    )
    out["links: fitted with vs without"] = {"diff": links.diff, "p": links.p_value}
    print(
        f"\nwhat the links add (fitted with vs without): {links.diff:+.4f} (p {links.p_value:.3f})"
    )
    for name, row in out.items():
        if "weights" not in row:
            continue
        print(f"{name}: {json.dumps({k: round(v, 3) for k, v in row['weights'].items()})}")
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
