"""Ranker benchmarks (issue 5). Prints measured figures and ratios side by side.

1. Throughput of ranking 256 samples (k=25) through the OpenAI SDK against a loopback server
   with a fixed 200 ms reply latency, at concurrency 1, 4, 16, 64; ratio to the ideal speed-up
   (goal >= 0.8 up to 16).
2. Warm-cache lookups per second (goal >= 10,000/s), and warm-cache end-to-end samples/s.
3. Semantic ranker samples/s on CPU for k=25 on real ReDial conversations, and its quality on
   the probe (true movie + 24 random linked movies): NDCG@10 / hit@1 vs the random order.

Usage: python experiments/bench_rankers.py [--corpus DIR] [--data-dir DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the loopback servers live with the tests
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def server_process(latency: float):
    """The loopback server in its own process, so its threads do not share our GIL."""
    import subprocess

    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "servers" / "llm_server.py"),
            "--latency",
            str(latency),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


def bench_throughput(data_dir: Path, n: int, levels: list[int], latency: float) -> list[dict]:
    from servers.redial_corpus import redial_metadata_corpus

    from rar.data.types import Turn
    from rar.rankers import RankerConfig, RankRequest, build_ranker

    corpus = redial_metadata_corpus(data_dir, n=400)
    rng = random.Random(0)
    ctx = [
        Turn("seeker", "Hi, I love funny romantic movies from the 90s."),
        Turn("recommender", "Have you seen Notting Hill?"),
        Turn("seeker", "Yes, loved it! More like that?"),
    ]
    reqs = [RankRequest(f"s{i}", ctx, rng.sample(corpus.ids, 25)) for i in range(n)]
    os.environ["RAR_BENCH_KEY"] = "bench-key"
    rows = []
    proc, url = server_process(latency)
    try:
        base = None
        for c in levels:
            cfg = RankerConfig(
                backend="openai",
                model="bench",
                base_url=url,
                api_key_env="RAR_BENCH_KEY",
                cache={"enabled": False},
                limits={"max_in_flight": c, "adaptive": False, "timeout_s": 30},
            )
            ranker = build_ranker(cfg, corpus)
            start, cpu = time.perf_counter(), time.process_time()
            results = ranker.rank(reqs)
            elapsed = time.perf_counter() - start
            cpu_ms = (time.process_time() - cpu) / n * 1000
            assert all(r.error is None for r in results), [r.error for r in results if r.error][:3]
            thr = n / elapsed
            base = base or thr
            ideal = min(c, n)
            rows.append(
                {
                    "concurrency": c,
                    "seconds": round(elapsed, 2),
                    "samples_per_s": round(thr, 1),
                    "speedup": round(thr / base, 2),
                    "ideal": ideal,
                    "ratio_to_ideal": round(thr / base / ideal, 3),
                    "ratio_to_latency_bound": round(thr / (c / latency), 3),
                    "client_cpu_ms_per_sample": round(cpu_ms, 2),
                    "loadavg": os.getloadavg()[0],
                }
            )
            print(
                f"  concurrency {c:3d}: {elapsed:6.2f}s  {thr:7.1f} samples/s  speed-up {thr / base:5.2f}x "
                f"(ideal {ideal}x, ratio {thr / base / ideal:.2f}; {thr / (c / latency):.2f} of the "
                f"{c / latency:.0f}/s latency bound); client CPU {cpu_ms:.1f} ms/sample, load avg {os.getloadavg()[0]:.1f}"
            )
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    return rows


def bench_cache(n_entries: int, n_lookups: int) -> dict:
    from rar.rankers.cache import CachedReply, ResponseCache, cache_key

    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(Path(tmp) / "c.sqlite")
        keys = [
            cache_key("openai", "m", f"prompt {i}", {"temperature": 0.0}) for i in range(n_entries)
        ]
        reply = CachedReply(
            "\n".join(f"{i}. Movie {i} (1999)" for i in range(1, 26)), {"prompt_tokens": 900}, 1.2
        )
        conn = cache._connect()
        conn.execute("BEGIN")
        for k in keys:
            conn.execute(
                "INSERT INTO replies VALUES (?, 'openai', 'm', ?, ?, ?, 0)",
                (k, reply.reply, json.dumps(reply.usage), reply.latency_s),
            )
        conn.execute("COMMIT")
        rng = random.Random(0)
        probe = [keys[rng.randrange(n_entries)] for _ in range(n_lookups)]
        start = time.perf_counter()
        for k in probe:
            assert cache.get(k) is not None
        elapsed = time.perf_counter() - start
        cache.close()
    rate = n_lookups / elapsed
    print(
        f"  warm-cache lookups: {rate:,.0f}/s over {n_entries:,} entries (goal >= 10,000/s, ratio {rate / 1e4:.1f})"
    )
    return {"entries": n_entries, "lookups": n_lookups, "lookups_per_s": round(rate)}


def bench_warm_rank(data_dir: Path, n: int) -> dict:
    """End-to-end warm-cache ranking (prompt build + cache hit + parse), no server running."""
    from servers.llm_server import FakeLLMServer
    from servers.redial_corpus import redial_metadata_corpus

    from rar.data.types import Turn
    from rar.rankers import RankerConfig, RankRequest, build_ranker

    corpus = redial_metadata_corpus(data_dir, n=400)
    rng = random.Random(1)
    reqs = [
        RankRequest(
            f"w{i}", [Turn("seeker", f"something like movie {i}")], rng.sample(corpus.ids, 25)
        )
        for i in range(n)
    ]
    with tempfile.TemporaryDirectory() as tmp, FakeLLMServer() as server:
        cfg = RankerConfig(
            backend="openai",
            model="bench",
            base_url=server.openai_base_url,
            api_key_env="RAR_BENCH_KEY",
            cache={"path": f"{tmp}/c.sqlite"},
            limits={"max_in_flight": 32},
        )
        build_ranker(cfg, corpus).rank(reqs)
        hits_before = server.n_hits
        ranker = build_ranker(cfg, corpus)
        start = time.perf_counter()
        results = ranker.rank(reqs)
        elapsed = time.perf_counter() - start
        assert server.n_hits == hits_before and all(r.cached for r in results)
    rate = n / elapsed
    print(f"  warm-cache end-to-end ranking: {rate:,.0f} samples/s (k=25, zero server calls)")
    return {"samples": n, "samples_per_s": round(rate)}


def bench_semantic(corpus_dir: Path, data_dir: Path, max_samples: int) -> dict:
    import numpy as np
    import torch

    from rar.corpus import Corpus
    from rar.data.registry import load_conversation_samples
    from rar.evaluation.probe import build_probe
    from rar.metrics import paired_bootstrap, sample_metrics
    from rar.rankers import RankerConfig, build_ranker

    torch.set_num_threads(1)  # the machine is shared; one thread is faster under contention
    corpus = Corpus.load(corpus_dir)
    samples = load_conversation_samples("redial", data_dir, "test")
    probe = build_probe(samples, corpus, "redial", k=25, seed=0, max_samples=max_samples)
    ranker = build_ranker(RankerConfig(backend="semantic"), corpus)
    ranker.rank(probe.requests[:8])  # load the model
    ranker._text_cache.clear()
    start = time.perf_counter()
    results = ranker.rank(probe.requests)
    elapsed = time.perf_counter() - start
    rate = len(results) / elapsed
    n_texts = len({t.text.strip() for q in probe.requests for t in q.context if t.text.strip()})
    start = time.perf_counter()
    ranker.rank(probe.requests)  # every turn already embedded: the scoring path alone
    warm_rate = len(results) / (time.perf_counter() - start)
    ranked = [r.scored_ids for r in results]
    random_order = [r.candidate_ids for r in probe.requests]
    sem = sample_metrics(ranked, probe.targets, ks=(1, 5, 10))
    rnd = sample_metrics(random_order, probe.targets, ks=(1, 5, 10))
    boot = paired_bootstrap(sem["ndcg@10"], rnd["ndcg@10"], n_resamples=2000, seed=0)
    out = {
        "samples": len(results),
        "skipped_unlinked": probe.skipped,
        "samples_per_s": round(rate, 1),
        "unique_turn_texts": n_texts,
        "warm_samples_per_s": round(warm_rate, 1),
        "torch_threads": torch.get_num_threads(),
        "loadavg": os.getloadavg()[0],
        "semantic": {k: round(float(np.mean(v)), 4) for k, v in sem.items()},
        "random_order": {k: round(float(np.mean(v)), 4) for k, v in rnd.items()},
        "ndcg@10_diff": round(boot.diff, 4),
        "ndcg@10_ci": [round(boot.ci_low, 4), round(boot.ci_high, 4)],
        "p_value": boot.p_value,
    }
    print(
        f"  semantic ranker: {rate:,.1f} samples/s on CPU (k=25, {len(results)} ReDial test samples, "
        f"cold text cache, {n_texts} unique turns to embed; {probe.skipped} samples without a linked target "
        f"skipped); {warm_rate:,.0f} samples/s with turns already embedded; load avg {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  probe N@10 semantic {out['semantic']['ndcg@10']:.4f} vs random order {out['random_order']['ndcg@10']:.4f} "
        f"(diff {boot.diff:+.4f}, 95% CI [{boot.ci_low:+.4f}, {boot.ci_high:+.4f}], p={boot.p_value:.4f}); "
        f"hit@1 {out['semantic']['hit@1']:.4f} vs {out['random_order']['hit@1']:.4f}"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="Corpus dir (default: build the small test corpus).",
    )
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--quick", action="store_true", help="Fewer samples (smoke run).")
    ap.add_argument("--out", type=Path, default=None, help="Write the figures as JSON here.")
    args = ap.parse_args()
    n = 64 if args.quick else 256
    report: dict = {}
    print(f"[1] throughput, {n} samples, 200 ms server latency")
    report["throughput"] = bench_throughput(args.data_dir, n, [1, 4, 16, 64], 0.2)
    print("[2] cache")
    report["cache"] = bench_cache(20_000, 50_000)
    report["warm_rank"] = bench_warm_rank(args.data_dir, 512)
    print("[3] semantic ranker")
    corpus_dir = args.corpus
    tmp = None
    if corpus_dir is None:
        from corpus_builder.testing import build_small_corpus

        tmp = tempfile.TemporaryDirectory()
        corpus_dir = build_small_corpus(Path(tmp.name), args.data_dir)
    report["semantic"] = bench_semantic(corpus_dir, args.data_dir, 100 if args.quick else 400)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
