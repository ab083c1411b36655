"""Retriever benchmarks, measured side by side (no timing asserts anywhere else).

1. LRURec parallel scan vs the sequential recurrence, forward + backward, batch 128, d = 64,
   L in {16, 64, 256}: outputs/gradients allclose and the speed ratio (goal >= 5x at L = 256).
2. Training throughput (sequences/s) of LRURec vs SASRec at L = 64 and 256, same width/depth
   (goal: LRURec >= SASRec at L = 256).
3. Scoring 256 histories over a 337k-item table and taking the top 25: ms and memory.

    .venv/bin/python experiments/bench_retrievers.py [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import time
from collections.abc import Callable
from pathlib import Path

import torch


def best_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Fastest of `repeats` runs in seconds (the least disturbed by other processes)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def bench_scan(lengths: list[int], batch: int, d: int, repeats: int) -> None:
    from rar.retrievers.lru import LRULayer

    print(
        f"\n## 1. LRU layer: parallel scan vs sequential recurrence (batch {batch}, d {d}, fwd+bwd)"
    )
    print("| L | sequential ms | parallel ms | speed-up | max |out diff| | max |grad diff| |")
    print("|---|---|---|---|---|---|")
    torch.manual_seed(0)
    layer = LRULayer(d, 0.8, 0.99, 6.283, dropout=0.0)
    for length in lengths:
        x = torch.randn(batch, length, d)
        mask = torch.ones(batch, length, 1)
        mask[: batch // 2, : length // 4] = 0  # half the batch left-padded

        def run(sequential: bool, x=x, mask=mask) -> tuple[torch.Tensor, torch.Tensor]:
            layer.use_sequential = sequential
            xi = x.clone().requires_grad_()
            out = layer(xi, mask)
            out.pow(2).sum().backward()
            return out.detach(), xi.grad

        (o_seq, g_seq), (o_par, g_par) = run(True), run(False)
        out_diff = (o_seq - o_par).abs().max().item()
        grad_diff = (g_seq - g_par).abs().max().item()
        ok = torch.allclose(o_seq, o_par, rtol=1e-4, atol=1e-4) and torch.allclose(
            g_seq, g_par, rtol=1e-3, atol=1e-3
        )
        t_seq = best_time(lambda: run(True), repeats)
        t_par = best_time(lambda: run(False), repeats)
        print(
            f"| {length} | {t_seq * 1e3:.1f} | {t_par * 1e3:.1f} | {t_seq / t_par:.1f}x | "
            f"{out_diff:.1e} | {grad_diff:.1e} |" + ("" if ok else " NOT allclose")
        )
    layer.use_sequential = False


def bench_throughput(lengths: list[int], batch: int, d: int, n_items: int, steps: int) -> None:
    from rar.retrievers import RetrieverConfig, build_retriever
    from rar.retrievers.training_loss import next_item_loss

    print(
        f"\n## 2. Training throughput (batch {batch}, d {d}, 2 layers, {n_items} items, sampled NLL)"
    )
    print("| L | LRURec seq/s | SASRec seq/s | LRURec / SASRec |")
    print("|---|---|---|---|")
    vectors = torch.randn(n_items, 384)
    for length in lengths:
        rates = {}
        for name in ("lrurec", "sasrec"):
            torch.manual_seed(0)
            cfg = RetrieverConfig(name=name, d_model=d, n_layers=2, max_len=length, dropout=0.2)
            model = build_retriever(cfg, vectors).train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            seqs = torch.randint(1, n_items + 1, (batch, length + 1))

            def step(model=model, opt=opt, seqs=seqs) -> None:
                inputs, targets = model.training_pairs(seqs)
                loss = next_item_loss(model, inputs, targets, num_negatives=100)
                opt.zero_grad()
                loss.backward()
                opt.step()

            rates[name] = batch / best_time(step, steps)
        print(
            f"| {length} | {rates['lrurec']:.0f} | {rates['sasrec']:.0f} | {rates['lrurec'] / rates['sasrec']:.2f} |"
        )


def bench_scoring(n_items: int, n_queries: int, k: int, repeats: int) -> None:
    from rar.retrievers import RetrieverConfig, build_retriever
    from rar.retrievers.serving import FaissTopK

    print(f"\n## 3. Scoring {n_queries} histories (L=64) over {n_items:,} items, top-{k}")
    torch.manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(n_items, 384), dim=1)
    model = build_retriever(RetrieverConfig(name="lrurec", d_model=64, max_len=64), vectors).eval()
    history = torch.randint(1, n_items + 1, (n_queries, 64))
    history[: n_queries // 2, :32] = 0
    gc.collect()
    with torch.no_grad():
        t_table = best_time(lambda: model.items.embed_rows(torch.arange(n_items)), 1, warmup=0)
        model.item_table()  # cached from here on
        t_encode = best_time(lambda: model.encode(history), repeats)
        base = rss_mb()
        reset_peak_rss()
        t_topk = best_time(lambda: model.topk(history, k), repeats)
        peak = rss_mb("VmHWM") - base
        server = FaissTopK(model)
        t_faiss = best_time(lambda: server.topk(history, k), repeats)
        rows, _ = model.topk(history, k)
        f_rows, _ = server.topk(history, k)
        agree = (rows.numpy() == f_rows).mean()
    score_mb = n_queries * n_items * 4 / 2**20
    print("| step | ms |")
    print("|---|---|")
    print(f"| item table projection (once, then cached) | {t_table * 1e3:.0f} |")
    print(f"| encode 256 histories | {t_encode * 1e3:.1f} |")
    print(f"| encode + full scores + history mask + torch top-{k} | {t_topk * 1e3:.0f} |")
    print(f"| encode + FAISS IndexFlatIP top-{k} (over-fetch k+L, filter) | {t_faiss * 1e3:.0f} |")
    print(
        f"\nmemory: item table {n_items * 64 * 4 / 2**20:.0f} MB, text vectors {n_items * 384 * 4 / 2**20:.0f} MB, "
        f"score matrix {score_mb:.0f} MB; peak RSS growth during torch top-k {peak:.0f} MB; "
        f"FAISS and torch top-{k} rows agree on {agree:.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--quick", action="store_true", help="Fewer repeats and smaller sizes (smoke run)."
    )
    parser.add_argument("--only", choices=["scan", "throughput", "scoring"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    repeats = 2 if args.quick else 5
    if args.only in (None, "scan"):
        bench_scan([16, 64, 256], batch=128, d=64, repeats=repeats)
    if args.only in (None, "throughput"):
        bench_throughput([64, 256], batch=128, d=64, n_items=20_000, steps=3 if args.quick else 5)
    if args.only in (None, "scoring"):
        bench_scoring(n_items=337_731, n_queries=256, k=25, repeats=repeats)


if __name__ == "__main__":
    main()
