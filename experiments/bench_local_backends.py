"""Transformers vs in-process llama.cpp on the same model and the same prompts (issue 11).

Both local backends rank the same 25-candidate prompts (real ReDial test conversations; the
true movie plus 24 other linked corpus movies, with the default Figure 5 metadata) with the
packaged SmolLM2-135M-Instruct GGUF, one request at a time, cache off. Prints seconds per
ranking for each backend and the ratio (goal: llama.cpp >= 3x faster), in `loglik` mode (a
fixed amount of work: the prompt plus every title) and in `generate` mode (greedy, up to
--max-tokens). Model loading is timed separately and not part of the per-ranking time.

Usage: python experiments/bench_local_backends.py [--corpus DIR] [--data-dir DIR]
           [--samples 5] [--modes loglik generate] [--threads 2] [--out FILE.json]
           [--backends local llamacpp] [--gguf FILE] [--flash-attn on|off]
           [--weights as_is f16 bf16 q8_0]

--weights runs llama.cpp on the file as stored and on copies converted once by
`ranker.llamacpp.weights` (f16, bf16, q8_0), each in the same run beside one transformers row;
--gguf gives llama.cpp another GGUF file instead; transformers always runs the packaged file. The
llama.cpp build's CPU features (`llama_print_system_info`) are printed, so a run says whether it
measured the AVX2 or the AVX-512 build.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import get_args

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def probe_requests(corpus_dir: Path, data_dir: Path, n: int):
    from rar.corpus import Corpus
    from rar.data.registry import load_conversation_samples
    from rar.evaluation.probe import build_probe

    corpus = Corpus.load(corpus_dir)
    samples = load_conversation_samples("redial", data_dir, "test")
    probe = build_probe(samples, corpus, "redial", k=25, seed=0, max_samples=n)
    return corpus, probe.requests


@contextmanager
def probed_corpus(corpus_dir: Path | None, data_dir: Path | None, n: int) -> Iterator[tuple]:
    """(corpus, the first `n` 25-candidate ReDial test requests) on `corpus_dir`, or on the
    small test corpus built in a temporary directory (removed on exit) when it is None."""
    from rar.paths import resolve_data_dir

    data_dir = resolve_data_dir(data_dir)
    if corpus_dir is not None:
        yield probe_requests(corpus_dir, data_dir, n)
        return
    from corpus_builder.testing import build_small_corpus

    with tempfile.TemporaryDirectory() as tmp:
        yield probe_requests(build_small_corpus(Path(tmp) / "corpus", data_dir), data_dir, n)


def time_backend(
    backend: str,
    mode: str,
    corpus,
    requests,
    max_tokens: int,
    threads: int,
    llamacpp: dict | None = None,
):
    """Seconds per ranking of each request (model loaded first, outside the timing)."""
    from rar.rankers import RankerConfig, build_ranker

    section = {"mode": mode}
    if backend == "local":
        section["num_threads"] = threads
    else:
        section["n_threads"] = threads
        section.update(llamacpp or {})
    cfg = RankerConfig(
        backend=backend,
        max_tokens=max_tokens,
        cache={"enabled": False},
        limits={"timeout_s": 1800},  # a slow backend is measured, not cut off
        **{backend: section},
    )
    ranker = build_ranker(cfg, corpus)
    start = time.perf_counter()
    ranker.load()
    load_s = time.perf_counter() - start
    seconds, cpu_seconds, prompt_tokens, completion_tokens, matched = [], [], [], [], []
    for req in requests:
        start, cpu = time.perf_counter(), time.process_time()
        [res] = ranker.rank([req])
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu)
        assert res.error is None, res.error
        prompt_tokens.append(res.usage.get("prompt_tokens", 0))
        completion_tokens.append(res.usage.get("completion_tokens", 0))
        matched.append(res.usage.get("n_matched", 0))
    ranker.close()
    return {
        "backend": backend,
        "settings": section,
        "mode": mode,
        "load_s": round(load_s, 2),
        "s_per_ranking": round(statistics.mean(seconds), 3),
        "median_s": round(statistics.median(seconds), 3),
        "all_s": [round(s, 3) for s in seconds],
        "cpu_s_per_ranking": round(statistics.mean(cpu_seconds), 3),
        "prompt_tokens_mean": round(statistics.mean(prompt_tokens)),
        "completion_tokens_mean": round(statistics.mean(completion_tokens), 1),
        "titles_matched_mean": round(statistics.mean(matched), 1),
    }


def main() -> None:
    from rar.rankers.gguf_weights import WeightsFormat

    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--corpus", type=Path, default=None, help="Corpus dir (default: small corpus).")
    ap.add_argument("--data-dir", type=Path, default=None, help="Default $RAR_DATA_DIR.")
    ap.add_argument("--samples", type=int, default=5, help="Prompts ranked by each backend.")
    ap.add_argument("--modes", nargs="+", default=["loglik", "generate"])
    ap.add_argument("--max-tokens", type=int, default=64, help="Generate mode reply budget.")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for both backends.")
    ap.add_argument("--out", type=Path, default=None, help="Also write the figures as JSON.")
    ap.add_argument("--backends", nargs="+", default=["local", "llamacpp"])
    ap.add_argument("--gguf", default=None, help="llama.cpp's GGUF (default: the packaged Q4_1).")
    ap.add_argument("--flash-attn", choices=["on", "off"], default=None, help="llama.cpp only.")
    ap.add_argument(
        "--weights",
        nargs="+",
        choices=get_args(WeightsFormat),
        default=["as_is"],
        help="llama.cpp's ranker.llamacpp.weights, each measured in the same run against the "
        "one transformers row (a converted copy of the GGUF, made once, before the timing).",
    )
    args = ap.parse_args()
    llamacpp = {}
    if args.gguf:
        llamacpp["model_path"] = args.gguf
    if args.flash_attn:
        llamacpp["flash_attn"] = args.flash_attn == "on"
    with probed_corpus(args.corpus, args.data_dir, args.samples) as (corpus, requests):
        run(args, llamacpp, corpus, requests)


def run(args: argparse.Namespace, llamacpp: dict, corpus, requests) -> None:
    """Time every backend variant on `requests` and print the table."""
    print(
        f"{len(requests)} ReDial test prompts, 25 candidates each, SmolLM2-135M-Instruct "
        f"(transformers: the packaged Q4_1 GGUF as float32; llama.cpp: "
        f"{args.gguf or 'the packaged Q4_1'}, weights {' / '.join(args.weights)}, "
        f"{llamacpp or 'default settings'}), {args.threads} threads, "
        f"load avg {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    variants = [("local", {})] if "local" in args.backends else []
    if "llamacpp" in args.backends:
        import llama_cpp

        from rar.rankers.gguf_weights import gguf_with_weights
        from rar.rankers.llamacpp_ranker import resolve_gguf

        print(f"llama.cpp build: {llama_cpp.llama_print_system_info().decode().strip()}")
        for weights in args.weights:
            gguf_with_weights(resolve_gguf(args.gguf), weights)  # convert outside the timing
            variants.append(("llamacpp", {**llamacpp, "weights": weights}))
    rows = []
    for mode in args.modes:
        base = None
        for backend, extra in variants:
            row = time_backend(
                backend, mode, corpus, requests, args.max_tokens, args.threads, extra
            )
            rows.append(row)
            name = backend if backend == "local" else f"llamacpp {extra['weights']}"
            print(
                f"  {mode:8s} {name:15s}: {row['s_per_ranking']:7.2f} s/ranking, "
                f"{row['cpu_s_per_ranking']:.2f} CPU s/ranking "
                f"(median {row['median_s']:.2f}; load {row['load_s']:.1f}s; "
                f"{row['prompt_tokens_mean']} prompt + {row['completion_tokens_mean']} "
                f"completion tokens; {row['titles_matched_mean']} titles matched)",
                flush=True,
            )
            if backend == "local":
                base = row
                continue
            if base is None:
                continue
            ratio = base["s_per_ranking"] / row["s_per_ranking"]
            cpu_ratio = base["cpu_s_per_ranking"] / row["cpu_s_per_ranking"]
            rows.append(
                {
                    "mode": mode,
                    "weights": extra["weights"],
                    "speedup_llamacpp_vs_transformers": round(ratio, 2),
                    "cpu_speedup_llamacpp_vs_transformers": round(cpu_ratio, 2),
                }
            )
            print(
                f"  {mode:8s} {name} is {ratio:.2f}x faster than transformers in wall time, "
                f"{cpu_ratio:.2f}x in CPU time (goal >= 3x; CPU time is what a shared machine "
                "does not distort)",
                flush=True,
            )
    print(f"load avg after: {os.getloadavg()[0]:.1f}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    sys.exit(main())
