"""Prompt layout vs engine prefix caching (issue 11, item 3), both layouts side by side in one run.

Starts `python -m llama_cpp.server` with the packaged SmolLM2-135M GGUF on 127.0.0.1 (one
slot, like llama.cpp and Ollama by default) and ranks GRPO steps through the OpenAI ranker: per
real ReDial test conversation, g sets of k candidates drawn with the trainer's own
Plackett-Luce sampler (`rar.rl.policy.sample_ranked_sets`) from a ReDial popularity score over the
ReDial movie metadata. Each conversation gets one step per layout, alternating which layout
goes first so drift in machine load hits both. The response cache is off.

Per layout it prints seconds per GRPO step, the prompt tokens sent (the server's `usage`), and
the prompt tokens the server actually evaluated: the sent tokens minus the prefix it reused
from its KV cache, read from the server's log ("Llama.generate: N prefix-match hit").

Usage: python experiments/bench_prompt_layout.py [--conversations 3] [--g 8] [--k 25]
       [--max-tokens 64] [--threads 1] [--out figures.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the ReDial-metadata corpus look-alike lives there
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# `python -m llama_cpp.server` with llama.cpp's extra weight buffer types (AMX / repacked
# kernels) off: on the 2-core build machines the AMX path of this llama-cpp-python build
# segfaults on the first evaluation (a vocabulary-only load works); plain CPU kernels do not.
NO_EXTRA_BUFTS = """
import runpy, llama_cpp.llama_cpp as low_level
_defaults = low_level.llama_model_default_params
def _params():
    params = _defaults()
    params.use_extra_bufts = False
    return params
low_level.llama_model_default_params = _params
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""
PREFIX_HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit")
LAYOUTS = ("paper", "prefix_cache")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(gguf: str, port: int, n_ctx: int, threads: int, log_path: Path, extra_bufts: bool):
    """llama-cpp-python's OpenAI-compatible server; verbose (its default) logs prefix reuse."""
    launch = ["-m", "llama_cpp.server"] if extra_bufts else ["-c", NO_EXTRA_BUFTS]
    cmd = [
        sys.executable, *launch, "--model", gguf, "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", str(n_ctx),
        "--n_threads", str(threads), "--n_threads_batch", str(threads),
    ]  # fmt: skip
    log = open(log_path, "w")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"error: llama_cpp.server exited with {proc.returncode}; see {log_path}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit(f"error: llama_cpp.server did not answer within 120 s; see {log_path}")


def candidate_sets(corpus, data_dir: Path, n_conv: int, g: int, k: int, seed: int):
    """(sample, [g lists of k corpus ids]) for the first n_conv ReDial test conversations."""
    import torch

    from rar.data.registry import load_conversation_samples, mention_counts
    from rar.rl.policy import sample_ranked_sets

    counts, _ = mention_counts("redial", data_dir)
    pop = torch.tensor([math.log1p(counts.get(cid[1:], 0)) for cid in corpus.ids])
    samples = [s for s in load_conversation_samples("redial", data_dir, "test") if s.context]
    by_dialogue: dict[str, object] = {}
    for s in samples:  # one sample (the longest context) per conversation
        if s.dialogue_id not in by_dialogue or len(s.context) > len(
            by_dialogue[s.dialogue_id].context
        ):
            by_dialogue[s.dialogue_id] = s
    chosen = list(by_dialogue.values())[:n_conv]
    gen = torch.Generator().manual_seed(seed)
    sets = sample_ranked_sets(pop.repeat(len(chosen), 1), k, g, 1.0, gen)
    return [
        (s, [[corpus.ids[i] for i in row] for row in sets[n].tolist()])
        for n, s in enumerate(chosen)
    ]


def ranker_config(layout: str, args, port: int = 0):
    from rar.rankers import RankerConfig

    return RankerConfig(
        backend="openai",
        model="smollm2",
        base_url=f"http://127.0.0.1:{port}/v1",
        max_tokens=args.max_tokens,
        context_window=args.n_ctx,
        prompt={"layout": layout, **({"fields": args.fields} if args.fields else {})},
        extra_body={"cache_prompt": True},  # llama-server's flag; ignored here
        cache={"enabled": False},
        limits={"max_in_flight": 1, "timeout_s": 900, "max_retries": 0},
    )


def offline(args, corpus, steps, gguf: str) -> None:
    """Token figures of the same run without a server (see --offline)."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from rar.rankers import RankRequest, build_ranker

    vocab = Llama(gguf, vocab_only=True, verbose=False)

    def text_of(token_id: int) -> str:
        return vocab._model.token_get_text(token_id)

    formatter = Jinja2ChatFormatter(
        template=vocab.metadata["tokenizer.chat_template"],
        eos_token=text_of(vocab.token_eos()),
        bos_token=text_of(vocab.token_bos()),
    )

    def tokens(prompt: str) -> list[int]:
        result = formatter(messages=[{"role": "user", "content": prompt}])
        return vocab.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )

    rankers = {layout: build_ranker(ranker_config(layout, args), corpus) for layout in LAYOUTS}
    previous: list[int] = []
    rows: dict[str, list[dict]] = {name: [] for name in LAYOUTS}
    for n, (sample, sets) in enumerate(steps):
        for layout in LAYOUTS if n % 2 == 0 else LAYOUTS[::-1]:
            sent = reused = 0
            for ids in sets:
                _, fitted = rankers[layout].build_fitted(
                    RankRequest(sample.sample_id, sample.context, ids)
                )
                toks = tokens(fitted.text)
                keep, limit = 0, min(len(previous), len(toks) - 1)
                while keep < limit and previous[keep] == toks[keep]:
                    keep += 1
                sent, reused, previous = sent + len(toks), reused + keep, toks
            rows[layout].append(
                {
                    "conversation": sample.sample_id,
                    "turns": len(sample.context),
                    "prompt_tokens_sent": sent,
                    "prompt_tokens_evaluated": sent - reused,
                }
            )
    summary = {}
    for layout in LAYOUTS:
        r = rows[layout]
        summary[layout] = {
            "prompt_tokens_sent_per_step": round(sum(x["prompt_tokens_sent"] for x in r) / len(r)),
            "prompt_tokens_evaluated_per_step": round(
                sum(x["prompt_tokens_evaluated"] for x in r) / len(r)
            ),
        }
    p, c = summary["paper"], summary["prefix_cache"]
    per_conv = [
        a["prompt_tokens_evaluated"] / b["prompt_tokens_evaluated"]
        for a, b in zip(rows["paper"], rows["prefix_cache"], strict=True)
    ]
    ratio = p["prompt_tokens_evaluated_per_step"] / c["prompt_tokens_evaluated_per_step"]
    print(f"offline, {len(steps)} ReDial conversations, g={args.g} sets of k={args.k}, "
          f"fields {args.fields or 'default'}")  # fmt: skip
    print("| layout | prompt tokens sent / step | prompt tokens evaluated / step |")
    print("|---|---:|---:|")
    for layout in LAYOUTS:
        s = summary[layout]
        print(f"| {layout} | {s['prompt_tokens_sent_per_step']} | "
              f"{s['prompt_tokens_evaluated_per_step']} |")  # fmt: skip
    print(f"paper / prefix_cache evaluated tokens: {ratio:.2f}x (per conversation "
          f"{min(per_conv):.2f}-{max(per_conv):.2f}x)")  # fmt: skip
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {"rows": rows, "summary": summary, "ratio_evaluated_tokens": ratio}, indent=2
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("RAR_DATA_DIR", "data"))
    parser.add_argument("--gguf", default=None, help="GGUF model (default: packaged SmolLM2).")
    parser.add_argument("--conversations", type=int, default=3)
    parser.add_argument("--g", type=int, default=8, help="Sets per conversation (GRPO g).")
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--max-tokens", type=int, default=64, help="Reply cap (same for both).")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--fields",
        nargs="+",
        default=None,
        help="Candidate metadata fields (default: the prompt's; e.g. title year genres).",
    )
    parser.add_argument(
        "--extra-bufts",
        action="store_true",
        help="Keep llama.cpp's AMX/repacked weight buffers (they segfault on the build machines).",
    )
    parser.add_argument("--out", default=None, help="Write the figures as JSON here.")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="No server: tokenize the same prompts with the GGUF's tokenizer and chat template "
        "and count the prefix llama-cpp-python's server would reuse (the longest common prefix "
        "with the previous prompt, as `Llama.generate` computes it). Exact token figures, no "
        "seconds; checked against the server's log on the conversations a server run covers.",
    )
    args = parser.parse_args()

    from servers.redial_corpus import redial_metadata_corpus

    from rar.data.types import Sample  # noqa: F401 (documents what candidate_sets returns)
    from rar.rankers import RankRequest, build_ranker
    from rar.rankers.local_ranker import packaged_smollm2

    data_dir = Path(args.data_dir)
    gguf = args.gguf or "/".join(packaged_smollm2())
    corpus = redial_metadata_corpus(data_dir, n=100_000)  # every ReDial movie
    steps = candidate_sets(corpus, data_dir, args.conversations, args.g, args.k, seed=0)
    if args.offline:
        return offline(args, corpus, steps, gguf)
    tmp = Path(tempfile.mkdtemp(prefix="bench_layout_"))
    log_path = tmp / "server.log"
    port = free_port()
    load = os.getloadavg()[0]
    proc = start_server(gguf, port, args.n_ctx, args.threads, log_path, args.extra_bufts)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the server
    rows: dict[str, list[dict]] = {name: [] for name in LAYOUTS}
    try:
        for n, (sample, sets) in enumerate(steps):
            order = LAYOUTS if n % 2 == 0 else LAYOUTS[::-1]
            for layout in order:
                ranker = build_ranker(ranker_config(layout, args, port), corpus)
                reqs = [RankRequest(sample.sample_id, sample.context, ids) for ids in sets]
                log_start = log_path.stat().st_size
                start = time.perf_counter()
                results = ranker.rank(reqs)
                seconds = time.perf_counter() - start
                with open(log_path, errors="replace") as fh:
                    fh.seek(log_start)
                    reused = sum(int(m.group(1)) for m in PREFIX_HIT.finditer(fh.read()))
                sent = sum(r.usage.get("prompt_tokens", 0) for r in results)
                row = {
                    "conversation": sample.sample_id,
                    "seconds": round(seconds, 2),
                    "prompt_tokens_sent": sent,
                    "prompt_tokens_reused": reused,
                    "prompt_tokens_evaluated": sent - reused,
                    "failed": sum(not r.ok for r in results),
                }
                if proc.poll() is not None:
                    sys.exit(
                        f"error: llama_cpp.server died (exit {proc.returncode}); see {log_path}"
                    )
                rows[layout].append(row)
                print(f"  {sample.sample_id} {layout:12s} {seconds:7.1f} s  sent {sent:6d}  "
                      f"evaluated {sent - reused:6d}  failed {row['failed']}", flush=True)  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    summary = {}
    for layout in LAYOUTS:
        r = rows[layout]
        summary[layout] = {
            "seconds_per_step": round(sum(x["seconds"] for x in r) / len(r), 2),
            "prompt_tokens_sent_per_step": round(sum(x["prompt_tokens_sent"] for x in r) / len(r)),
            "prompt_tokens_evaluated_per_step": round(
                sum(x["prompt_tokens_evaluated"] for x in r) / len(r)
            ),
            "failed": sum(x["failed"] for x in r),
        }
    p, c = summary["paper"], summary["prefix_cache"]
    ratio_s = p["seconds_per_step"] / c["seconds_per_step"]
    ratio_t = p["prompt_tokens_evaluated_per_step"] / max(1, c["prompt_tokens_evaluated_per_step"])
    print(f"\nGRPO steps: g={args.g} sets of k={args.k}, {len(steps)} ReDial conversations, "
          f"load average {load:.1f} at start, {args.threads} server thread(s)")  # fmt: skip
    print("| layout | s / GRPO step | prompt tokens sent / step | prompt tokens evaluated / step |")
    print("|---|---:|---:|---:|")
    for layout in LAYOUTS:
        s = summary[layout]
        print(f"| {layout} | {s['seconds_per_step']:.1f} | {s['prompt_tokens_sent_per_step']} | "
              f"{s['prompt_tokens_evaluated_per_step']} |")  # fmt: skip
    print(f"paper / prefix_cache: {ratio_s:.2f}x seconds, {ratio_t:.2f}x evaluated tokens")
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "rows": rows,
                    "summary": summary,
                    "load_average": load,
                    "ratio_seconds": ratio_s,
                    "ratio_evaluated_tokens": ratio_t,
                },
                indent=2,
            )  # fmt: skip
        )


if __name__ == "__main__":
    main()
