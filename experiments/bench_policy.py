"""Benchmark of the Plackett-Luce policy at the paper's scale (issue 6, "Performance").

Sampling g=8 ranked sets of k=25 for a batch of 32 over a 337,731-movie corpus:
- sequential draws without replacement (k softmax + multinomial passes) vs full-corpus
  Gumbel-top-k (goal: Gumbel >= 20x faster);
- the exact top-down sampler vs the scoring matrix product alone (goal: <= 3x), on peaked
  (pretrained-like) and on flat (untrained) scores;
- the exact log-likelihood of the sampled sets (forward + backward).
Each figure is the median of `--repeats` timings measured side by side in this process.

    python experiments/bench_policy.py [--items 337731] [--threads 1] [--run RUN --corpus DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from rar.rl.policy import gumbel_top_k, log_prob, sequential_sample, top_down_sample


def timed(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def describe(scores: torch.Tensor, head: int) -> dict[str, float]:
    """How peaked the policy is: effective number of items exp(H) and the top-`head` mass."""
    p = torch.softmax(scores.double(), dim=1)
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(1)
    return {
        "effective_items": float(entropy.exp().median()),
        f"top{head}_mass": float(p.topk(head, dim=1).values.sum(1).median()),
        "top1_prob": float(p.max(1).values.median()),
    }


def synthetic(
    batch: int, n: int, d: int, scale: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """User states and an item table whose dot products have standard deviation ~`scale`."""
    gen = torch.Generator().manual_seed(seed)
    users = torch.randn(batch, d, generator=gen)
    items = torch.randn(n, d, generator=gen)
    users = users / users.norm(dim=1, keepdim=True) * scale
    return users, items


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=337_731)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--groups", type=int, default=8)
    ap.add_argument("-k", type=int, default=25)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--head", type=int, default=512, help="top_down head size")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--seq-repeats", type=int, default=1, help="repeats of the slow sequential sampler"
    )
    ap.add_argument(
        "--seq-rows",
        type=int,
        default=4,
        help="time the sequential sampler on this many batch rows and scale linearly to --batch",
    )
    ap.add_argument(
        "--no-sequential", action="store_true", help="skip the (slow) sequential sampler"
    )
    ap.add_argument(
        "--peaked-scale", type=float, default=8.0, help="score std of the peaked setting"
    )
    ap.add_argument(
        "--moderate-scale", type=float, default=4.0, help="score std of the moderate setting"
    )
    ap.add_argument("--flat-scale", type=float, default=0.1, help="score std of the flat setting")
    ap.add_argument(
        "--run", default=None, help="optional pretrained run dir: also time its real scores"
    )
    ap.add_argument("--corpus", default=None, help="corpus dir for --run")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    B, g, k, N = args.batch, args.groups, args.k, args.items
    results: dict[str, object] = {
        "batch": B,
        "groups": g,
        "k": k,
        "items": N,
        "threads": args.threads,
    }
    settings = {
        "peaked": synthetic(B, N, args.dim, args.peaked_scale, 0),
        "moderate": synthetic(B, N, args.dim, args.moderate_scale, 2),
        "flat": synthetic(B, N, args.dim, args.flat_scale, 1),
    }
    if args.run:
        from rar.corpus import Corpus
        from rar.retrievers import load_pretrained_run

        corpus = Corpus.load(args.corpus)
        model = load_pretrained_run(args.run, corpus).eval()
        with torch.no_grad():
            table = model.item_table()
            hist = torch.randint(
                1, len(corpus) + 1, (B, 8), generator=torch.Generator().manual_seed(2)
            )
            users = model.encode(hist)
            if model.item_bias() is not None:  # fold the item bias in: [u, 1] . [v_i, b_i]
                table = torch.cat([table, model.item_bias()[:, None]], dim=1)
                users = torch.cat([users, users.new_ones(len(users), 1)], dim=1)
        settings["pretrained"] = (users, table)
        N = table.shape[0]

    for name, (users, items) in settings.items():
        gen = torch.Generator().manual_seed(0)
        scores = users @ items.T
        row: dict[str, float] = describe(scores, args.head)
        row["t_scoring_matmul"] = timed(lambda u=users, it=items: u @ it.T, args.repeats)
        row["t_gumbel_topk"] = timed(
            lambda s=scores, gen=gen: gumbel_top_k(s, k, g, generator=gen), args.repeats
        )
        row["t_top_down"] = timed(
            lambda s=scores, gen=gen: top_down_sample(s, k, g, generator=gen, head_size=args.head),
            args.repeats,
        )
        sets = top_down_sample(scores, k, g, generator=gen, head_size=args.head)
        leaf = scores.clone().requires_grad_(True)

        def loglik(leaf=leaf, sets=sets) -> None:
            log_prob(leaf, sets).sum().backward()

        row["t_log_prob_fwd_bwd"] = timed(loglik, args.repeats)
        if name != "pretrained" and not args.no_sequential:
            rows = min(args.seq_rows, B)
            part = timed(
                lambda s=scores[:rows], gen=gen: sequential_sample(s, k, g, generator=gen),
                args.seq_repeats,
                warmup=False,
            )
            row["t_sequential"] = part * B / rows  # linear in rows (each row is independent)
            row["speedup_gumbel_vs_sequential"] = row["t_sequential"] / row["t_gumbel_topk"]
        row["ratio_top_down_vs_matmul"] = row["t_top_down"] / row["t_scoring_matmul"]
        row["ratio_gumbel_vs_matmul"] = row["t_gumbel_topk"] / row["t_scoring_matmul"]
        row["speedup_top_down_vs_gumbel"] = row["t_gumbel_topk"] / row["t_top_down"]
        results[name] = row
        print(f"\n== {name} scores (N={N}, B={B}, g={g}, k={k}, threads={args.threads}) ==")
        for key, value in row.items():
            unit = " s" if key.startswith("t_") else ""
            print(f"  {key:32s} {value:10.4f}{unit}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
