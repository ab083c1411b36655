"""How far can a fused run reach cold movies? Its signals, and the cost of ranking cold movies.

Issue 25 asks for N@10 >= 0.03 on test rows whose movies were never a training target
("cold"). A cold movie has no trained per-item parameters, and most (86% on ReDial) are not
even mentioned in a training dialogue, so its ways in are its text and its metadata. This
script splits a fused run's score on the test split into its parts (item tower, per-item
bias, text tower, co-occurrence prior, and the metadata links: people, title words) and
measures, on the same rows:

- each part and a few sums, ranked over the whole corpus (N@10, R@25, cold N@10, cold R@25);
- each part ranked among never-target movies only: how well it picks the cold movie once
  told the answer is cold (an upper bound on what it can bring to the full ranking);
- a calibrated two-component mixture: P(j) = (1 - lam) P_warm(j) + lam P_cold(j), with lam
  the validation share of rows whose target is a never-target movie, P_warm the run's fitted
  score as a softmax over training-target movies and P_cold a softmax over the others, each
  fitted by likelihood on its own validation rows. Ranking by a calibrated probability is
  what a Bayes-optimal N@10 would do, so this says how many cold movies *deserve* a top-10
  slot; a sweep over lam shows what forcing more of them in costs.

    python experiments/cold_ceiling.py --run runs/quickstart/runs/quickstart-sft-fused \\
        --corpus runs/quickstart/corpus --data-dir ../shared/data

Figures go to stdout and `--out` (json). Only validation rows are fitted on; test rows are
only read.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rar.corpus import Corpus
from rar.evaluation.ceiling import cold_mask, training_targets
from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.evaluator import Evaluator
from rar.evaluation.runner import load_eval_samples
from rar.metrics import ndcg_at_k, recall_at_k
from rar.retrievers import load_pretrained_run
from rar.retrievers.base import Retriever, mask_history
from rar.retrievers.fusion import combine, search_weights
from rar.retrievers.retrieval_batch import RetrievalBatch

LAMBDA_SWEEP = (0.05, 0.1, 0.2, 0.3, 0.5)
WARM_TEMPERATURES = tuple(2.0 ** (k / 4) for k in range(-32, 9))


@dataclass
class Split:
    """One split's rows: every score part [B, N], the history mask, targets and cold rows."""

    parts: dict[str, torch.Tensor]
    mask: torch.Tensor  # 0, or -inf on history movies
    targets: list[list[int]]
    cold: np.ndarray  # rows whose targets are all never-target movies

    def metrics(self, scores: torch.Tensor) -> dict[str, float]:
        """N@10, R@25 over all rows and over the cold rows (history masked)."""
        top = (scores + self.mask).topk(25, dim=1).indices.tolist()
        n = np.array([ndcg_at_k(r, t, 10) for r, t in zip(top, self.targets, strict=True)])
        r = np.array([recall_at_k(r, t, 25) for r, t in zip(top, self.targets, strict=True)])
        cold_n = float(n[self.cold].mean()) if self.cold.any() else float("nan")
        cold_r = float(r[self.cold].mean()) if self.cold.any() else float("nan")
        return {"N@10": n.mean(), "R@25": r.mean(), "cold N@10": cold_n, "cold R@25": cold_r}

    def nll(self, scores: torch.Tensor, rows: np.ndarray, items: torch.Tensor) -> float:
        """Mean -log softmax over `items` of the targets of `rows` (targets outside `items`,
        or in the history, are skipped)."""
        logp = torch.log_softmax((scores + self.mask).masked_fill(~items, float("-inf")), dim=1)
        picked = [logp[i, t] for i in np.flatnonzero(rows) for t in self.targets[i]]
        values = torch.stack(picked)
        return float(-values[torch.isfinite(values)].mean())


def load_split(
    model: Retriever, corpus: Corpus, args: argparse.Namespace, split: str, seen: set[str]
) -> Split:
    samples, _ = load_eval_samples(args.dataset, args.data_dir, split)
    linked, _ = Evaluator(corpus, EvaluateConfig(), progress=False).link(samples)
    histories = [[corpus.index_of(c) for c in item.history_ids] for item in linked]
    chunks: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for start in range(0, len(linked), 128):
            rows = histories[start : start + 128]
            batch = RetrievalBatch.from_rows(
                rows,
                [item.sample.context for item in linked[start : start + 128]],
                model.max_history,
            )
            for name, value in model.score_parts(batch).items():
                chunks.setdefault(name, []).append(value.expand(len(rows), model.num_items))
    history = RetrievalBatch.from_rows(histories, None, model.max_history).history
    return Split(
        parts={name: torch.cat(values) for name, values in chunks.items()},
        mask=mask_history(torch.zeros(len(linked), model.num_items), model.check_tokens(history)),
        targets=[[corpus.index_of(c) for c in item.target_ids] for item in linked],
        cold=cold_mask((item.target_ids for item in linked), seen),
    )


def fit_cold_component(val: Split, novel: torch.Tensor) -> dict[str, float]:
    """Part weights of P_cold by likelihood on the validation rows with a cold target (the
    fusion fit's search, maximising minus the loss)."""

    def gain(w: dict[str, float]) -> float:
        return -val.nll(combine(val.parts, w), val.cold, novel)

    return search_weights(gain, dict.fromkeys(val.parts, 1.0), "nll")[0]


def calibrated_mixture(
    val: Split, test: Split, fitted: dict[str, float], novel: torch.Tensor
) -> tuple[float, dict[str, float], Callable[[float], torch.Tensor]]:
    """lam, and a function lam -> [B, N] log-probabilities of the two-component mixture on
    the test rows (components fitted on validation)."""
    warm = ~novel
    lam = float(val.cold.mean())
    warm_scores = combine(val.parts, fitted)
    tau = min(WARM_TEMPERATURES, key=lambda t: val.nll(t * warm_scores, ~val.cold, warm))
    cold_weights = fit_cold_component(val, novel)
    log_warm = torch.log_softmax(
        (tau * combine(test.parts, fitted) + test.mask).masked_fill(~warm, float("-inf")), 1
    )
    log_cold = torch.log_softmax(
        (combine(test.parts, cold_weights) + test.mask).masked_fill(~novel, float("-inf")), 1
    )

    def mixture(share: float) -> torch.Tensor:
        return torch.where(warm, math.log(1 - share) + log_warm, math.log(share) + log_cold)

    return (
        lam,
        {"warm temperature": tau} | {f"cold {k}": v for k, v in cold_weights.items()},
        mixture,
    )


def signal_tables(test: Split, fitted: dict[str, float], novel: torch.Tensor) -> dict[str, dict]:
    """Each signal over the whole corpus, and among never-target movies only."""
    p = test.parts
    signals = {
        "fused, weights of fusion.json": combine(p, fitted),
        "fused, parts as SFT left them": combine(
            p, {n: 1.0 for n in ("item", "bias", "text", "prior")}
        ),
        "text tower alone": p["text"],
        "co-occurrence prior alone": p["prior"],
        "people links alone": p["people"],
        "title links alone": p["title"],
        "text + people + title (fitted weights)": combine(
            p, {n: fitted[n] for n in ("text", "people", "title")}
        ),
    }
    return {
        "signals": {name: test.metrics(s) for name, s in signals.items()},
        "among never-target movies": {
            name: test.metrics(s.masked_fill(~novel, float("-inf"))) for name, s in signals.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a fused SFT run with fusion.json")
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--dataset", default="redial")
    parser.add_argument("--out", type=Path, help="write the figures as json here")
    args = parser.parse_args()
    torch.manual_seed(0)
    corpus = Corpus.load(args.corpus)
    model = load_pretrained_run(args.run, corpus).eval()  # fitted weights, links built
    if not model.links.is_built:
        model.links.build(corpus)  # a run fitted before the links existed: weights of 1
    seen = training_targets(args.dataset, args.data_dir, corpus)
    novel = torch.ones(model.num_items, dtype=torch.bool)
    novel[[corpus.index_of(c) for c in seen]] = False
    val, test = (load_split(model, corpus, args, s, seen) for s in ("val", "test"))
    fitted = {n: w for n, w in model.fusion.as_dict().items() if n in test.parts}
    out: dict[str, object] = {"rows": len(test.targets), "cold_rows": int(test.cold.sum())}
    out |= signal_tables(test, fitted, novel)
    lam, fit, mixture = calibrated_mixture(val, test, fitted, novel)
    out["mixture fit"] = {"lambda (validation share of cold rows)": lam} | fit
    sweep = {f"calibrated, lam {lam:.3f}": test.metrics(mixture(lam))}
    sweep |= {f"lam forced to {s}": test.metrics(mixture(s)) for s in LAMBDA_SWEEP}
    out["two-component mixture"] = sweep
    print(f"{out['rows']} test rows, {out['cold_rows']} cold; mixture fit {out['mixture fit']}")
    for section in ("signals", "among never-target movies", "two-component mixture"):
        print(f"\n| {section} | N@10 | R@25 | cold N@10 | cold R@25 |\n|---|---:|---:|---:|---:|")
        for name, m in out[section].items():  # type: ignore[attr-defined]
            print(f"| {name} | " + " | ".join(f"{m[k]:.4f}" for k in m) + " |")
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
