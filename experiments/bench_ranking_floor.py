"""The arithmetic of one 25-candidate `loglik` ranking and the floor this CPU puts under it
(issue 11: "in-process llama.cpp >= 3x faster than transformers").

A ranking is a fixed amount of work: the ~2,000-token prompt through every layer, then every
title's tokens on the prompt's KV cache, then a vocabulary row per title token. This script
counts it from the model's shapes and the real prompts' token counts (multiply-add = 2 FLOPs;
causal attention counted as the lower triangle only, the work no implementation can skip), then
times, in one run and on one thread:

- the transformers backend ranking those prompts (CPU seconds), and llama.cpp's if asked;
- the best kernels torch has on this CPU (oneDNN / MKL) on the model's exact shapes: the
  layer's matrix products in float32, bfloat16 and int8 (`torch._int_mm`), causal
  scaled-dot-product attention in float32 and bfloat16, and attention as two bfloat16 batched
  matrix products over the full square.

From those it prints the time a ranking would take if every product ran at those measured
rates, beside the 3x target (transformers' time / 3) and the sustained rate the target needs.
If the target is below every floor, 3x needs llama.cpp's kernels to beat the best library
kernels on this machine by the printed factor.

Usage: python experiments/bench_ranking_floor.py [--corpus DIR] [--data-dir DIR] [--samples 3]
           [--llamacpp-weights f16 bf16] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class Shapes:
    """The shapes of a Llama-style decoder that set its arithmetic."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @classmethod
    def of(cls, config) -> Shapes:
        """From a transformers `LlamaConfig` (or any config with the same field names)."""
        head_dim = (
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        )
        return cls(
            layers=config.num_hidden_layers,
            hidden=config.hidden_size,
            intermediate=config.intermediate_size,
            heads=config.num_attention_heads,
            kv_heads=config.num_key_value_heads,
            head_dim=head_dim,
            vocab=config.vocab_size,
        )

    def linear_shapes(self) -> list[tuple[int, int]]:
        """(in, out) of each matrix product of one layer: q, k, v, o, gate, up, down."""
        d, q, kv, ff = (
            self.hidden,
            self.heads * self.head_dim,
            self.kv_heads * self.head_dim,
            self.intermediate,
        )
        return [(d, q), (d, kv), (d, kv), (q, d), (d, ff), (d, ff), (ff, d)]


def forward_flops(
    shapes: Shapes, n_tokens: int, logit_rows: int, keys_per_query: Sequence[int]
) -> dict[str, float]:
    """FLOPs of one forward of `n_tokens` tokens: the layers' matrix products, the attention
    (QK^T and PV; query i attends to keys_per_query[i] keys) and `logit_rows` vocabulary rows."""
    per_token = sum(2 * i * o for i, o in shapes.linear_shapes())
    attention_per_key = 2 * 2 * shapes.heads * shapes.head_dim
    return {
        "linear": float(shapes.layers * per_token * n_tokens),
        "attention": float(shapes.layers * attention_per_key * sum(keys_per_query)),
        "lm_head": float(2 * shapes.hidden * shapes.vocab * logit_rows),
    }


def ranking_flops(shapes: Shapes, n_prompt: int, title_lengths: Sequence[int]) -> dict[str, float]:
    """FLOPs of a `loglik` ranking as both local backends compute it: the prompt once (causal,
    one vocabulary row kept), then each title's tokens but its last on the prompt's cache, each
    seeing the prompt and its own earlier tokens, each with its vocabulary row."""
    prompt = forward_flops(shapes, n_prompt, 1, range(1, n_prompt + 1))
    title_keys = [n_prompt + j + 1 for n in title_lengths for j in range(n - 1)]
    titles = forward_flops(shapes, len(title_keys), len(title_keys), title_keys)
    return {part: prompt[part] + titles[part] for part in prompt}


def _best_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up (kernel selection, page faults)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def layer_linear_rate(shapes: Shapes, rows: int, dtype: str, repeat: int = 5) -> float:
    """GFLOP/s of one layer's matrix products on `rows` tokens, in float32, bfloat16 or int8."""
    import torch

    gen = torch.Generator().manual_seed(0)
    pairs = []
    for i, o in shapes.linear_shapes():
        if dtype == "int8":
            a = torch.randint(-127, 127, (rows, i), dtype=torch.int8, generator=gen)
            b = torch.randint(-127, 127, (i, o), dtype=torch.int8, generator=gen)
        else:
            kind = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
            a = torch.randn(rows, i, generator=gen).to(kind)
            b = torch.randn(i, o, generator=gen).to(kind)
        pairs.append((a, b))
    mm = torch._int_mm if dtype == "int8" else torch.mm

    def layer() -> None:
        for a, b in pairs:
            mm(a, b)

    flops = sum(2 * rows * i * o for i, o in shapes.linear_shapes())
    return flops / _best_seconds(layer, repeat) / 1e9


def causal_attention_rate(shapes: Shapes, n: int, dtype: str, repeat: int = 3) -> float:
    """GFLOP/s (lower-triangle work) of torch's causal scaled-dot-product attention, one layer."""
    import torch
    import torch.nn.functional as F

    kind = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    gen = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(1, shapes.heads, n, shapes.head_dim, generator=gen).to(kind) for _ in range(3)
    )
    seconds = _best_seconds(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), repeat)
    flops = 2 * 2 * shapes.heads * shapes.head_dim * n * (n + 1) / 2
    return flops / seconds / 1e9


def square_attention_rate(shapes: Shapes, n: int, dtype: str, repeat: int = 3) -> float:
    """GFLOP/s (lower-triangle work) of attention as two plain batched matrix products over the
    full n x n square (softmax left out): the other way to get library kernels on it."""
    import torch

    kind = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    gen = torch.Generator().manual_seed(0)
    q, v = (torch.randn(shapes.heads, n, shapes.head_dim, generator=gen).to(kind) for _ in range(2))
    k_t = torch.randn(shapes.heads, shapes.head_dim, n, generator=gen).to(kind)
    seconds = _best_seconds(lambda: torch.bmm(torch.bmm(q, k_t), v), repeat)
    flops = 2 * 2 * shapes.heads * shapes.head_dim * n * (n + 1) / 2
    return flops / seconds / 1e9


def measure_tokens(corpus, requests) -> tuple[Shapes, list[int], list[list[int]]]:
    """The model's shapes, and each prompt's token count and title lengths exactly as the
    transformers backend's `score_titles` tokenises them."""
    from rar.rankers import RankerConfig, build_ranker

    ranker = build_ranker(
        RankerConfig(backend="local", cache={"enabled": False}, local={"mode": "loglik"}), corpus
    )
    ranker.load()
    tok = ranker._tokenizer
    prompts, titles = [], []
    for req in requests:
        candidates, prompt = ranker.build(req)
        prompts.append(int(ranker._chat_ids(prompt, assistant_prefix="1.").shape[1]))
        titles.append(
            [len(tok(" " + c.display, add_special_tokens=False).input_ids) for c in candidates]
        )
    shapes = Shapes.of(ranker._model.config)
    ranker.close()
    return shapes, prompts, titles


def main() -> None:
    from bench_local_backends import probed_corpus

    from rar.rankers.gguf_weights import WeightsFormat

    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--corpus", type=Path, default=None, help="Corpus dir (default: small corpus).")
    ap.add_argument("--data-dir", type=Path, default=None, help="Default $RAR_DATA_DIR.")
    ap.add_argument("--samples", type=int, default=3, help="Prompts each backend ranks.")
    ap.add_argument(
        "--llamacpp-weights",
        nargs="*",
        choices=get_args(WeightsFormat),
        default=["f16", "bf16"],
        help="Also time in-process llama.cpp on these `ranker.llamacpp.weights` (none: skip).",
    )
    ap.add_argument("--out", type=Path, default=None, help="Also write the figures as JSON.")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    with probed_corpus(args.corpus, args.data_dir, args.samples) as (corpus, requests):
        report(args, corpus, requests)


def report(args: argparse.Namespace, corpus, requests) -> None:
    """Count the work, time the backends and the kernels, print the floors."""
    from bench_local_backends import time_backend

    shapes, prompts, titles = measure_tokens(corpus, requests)
    flops = [ranking_flops(shapes, n, t) for n, t in zip(prompts, titles, strict=True)]
    work = {part: statistics.mean(f[part] for f in flops) for part in flops[0]}
    total = sum(work.values())
    n_prompt = round(statistics.mean(prompts))
    print(
        f"{len(requests)} ReDial test prompts, 25 candidates, SmolLM2-135M-Instruct {shapes}; "
        f"{n_prompt} prompt tokens and {statistics.mean(sum(t) for t in titles):.0f} title "
        f"tokens on average; one thread; load avg {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    print(
        "GFLOP per ranking: "
        + ", ".join(f"{part} {value / 1e9:.1f}" for part, value in work.items())
        + f", total {total / 1e9:.1f}"
    )

    backends = [("transformers", time_backend("local", "loglik", corpus, requests, 64, 1))]
    if args.llamacpp_weights:
        import llama_cpp

        from rar.rankers.gguf_weights import gguf_with_weights
        from rar.rankers.llamacpp_ranker import resolve_gguf

        print(f"llama.cpp build: {llama_cpp.llama_print_system_info().decode().strip()}")
        for weights in args.llamacpp_weights:
            gguf_with_weights(resolve_gguf(None), weights)  # convert outside the timing
            row = time_backend("llamacpp", "loglik", corpus, requests, 64, 1, {"weights": weights})
            backends.append((f"llama.cpp {weights}", row))
    base_cpu = backends[0][1]["cpu_s_per_ranking"]
    target = base_cpu / 3
    print("\nmeasured, CPU s per ranking (achieved GFLOP/s over the whole ranking):")
    for name, row in backends:
        cpu = row["cpu_s_per_ranking"]
        print(
            f"  {name:22s} {cpu:6.2f} s  ({total / cpu / 1e9:5.1f} GFLOP/s; {base_cpu / cpu:.2f}x)"
        )
    print(f"  3x target              {target:6.2f} s  (needs {total / target / 1e9:5.1f} GFLOP/s)")

    rates = {
        "linear float32": layer_linear_rate(shapes, n_prompt, "float32"),
        "linear bfloat16": layer_linear_rate(shapes, n_prompt, "bfloat16"),
        "linear int8": layer_linear_rate(shapes, n_prompt, "int8"),
        "attention float32": causal_attention_rate(shapes, n_prompt, "float32"),
        "attention bfloat16": causal_attention_rate(shapes, n_prompt, "bfloat16"),
        "attention bf16 bmm": square_attention_rate(shapes, n_prompt, "bfloat16"),
    }
    print("\ntorch's kernels on the model's shapes, one thread, GFLOP/s:")
    for name, rate in rates.items():
        print(f"  {name:20s} {rate:6.1f}")
    floors = {
        "float32 throughout": ("linear float32", "attention float32"),
        "bfloat16 throughout": ("linear bfloat16", "attention bfloat16"),
        "int8 weights, best attention": (
            "linear int8",
            max((name for name in rates if name.startswith("attention")), key=rates.get),
        ),
    }
    print("\na ranking with every product at those rates (softmax, norms and copies free):")
    floor_s = {}
    for name, (linear, attention) in floors.items():
        seconds = (work["linear"] + work["lm_head"]) / rates[linear] / 1e9
        seconds += work["attention"] / rates[attention] / 1e9
        floor_s[name] = seconds
        print(
            f"  {name:30s} {seconds:5.2f} s  = {base_cpu / seconds:.2f}x transformers; "
            f"the 3x target is {seconds / target:.2f}x this floor"
        )
    print(f"load avg after: {os.getloadavg()[0]:.1f}")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "shapes": shapes.__dict__,
                    "prompt_tokens": prompts,
                    "title_tokens": [sum(t) for t in titles],
                    "gflop": {part: value / 1e9 for part, value in work.items()},
                    "backends": {name: row for name, row in backends},
                    "target_s": target,
                    "kernel_gflops": rates,
                    "floor_s": floor_s,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    sys.exit(main())
