r"""Table 1 analogue with our rankers: the pretrained LRURec alone vs LRURec + each ranker.

For each dataset's test split: LRURec's own top-k order, then the same k candidates re-ranked
by every backend available here: `semantic` (offline sentence embeddings), `local-loglik`
(SmolLM2-135M scoring each title by log-likelihood), optionally `local-generate` (SmolLM2
writing a numbered list), and `openai` / `gemini` when their API key is in the environment
(skipped with a message otherwise; `--base-url` points the OpenAI client at vLLM/Ollama,
which need no key). All systems see the same samples and the same retrieved candidates
(`rar.evaluation.evaluator.evaluate_systems`). Cells: mean ± standard error over samples.

    .venv/bin/python experiments/table1_rankers.py --corpus corpus \
        --pretrained-run runs/pretrain-ml-latest-small-lrurec --data-dir ../shared/data \
        [--datasets redial inspired] [--backends semantic local-loglik openai gemini] \
        [--max-samples 200] [--k 25] [--out runs/experiments/table1]

Writes OUT/table1_rankers.{md,json} and, per dataset, OUT/<dataset>/ with the evaluator's
evaluation.json / evaluation.md / samples/*.jsonl (what `rar report ...` reads).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from _common import (
    LABELS,
    METRICS,
    add_common_args,
    cell,
    check_pretrained,
    load_corpus,
    markdown_table,
    paper_rows,
    setup,
    write_outputs,
)

BACKENDS = ("semantic", "local-loglik", "local-generate", "openai", "gemini")
PAPER = {  # Table 1 of the paper, N@5 R@5 N@10 R@10 (337k-movie corpus, full datasets)
    "inspired": {
        "LRURec": [0.0671, 0.0978, 0.0793, 0.1359],
        "SFT (GPT-5 mini)": [0.0997, 0.1214, 0.1091, 0.1491],
        "RAR (Qwen3-8B)": [0.0693, 0.0980, 0.0773, 0.1241],
        "RAR (GPT-5 mini)": [0.1091, 0.1422, 0.1180, 0.1700],
    },
    "redial": {
        "LRURec": [0.0539, 0.0771, 0.0650, 0.1111],
        "SFT (GPT-5 mini)": [0.0599, 0.0887, 0.0700, 0.1197],
        "RAR (Qwen3-8B)": [0.0491, 0.0704, 0.0569, 0.0947],
        "RAR (GPT-5 mini)": [0.0620, 0.0932, 0.0718, 0.1236],
    },
}


def ranker_config(backend: str, args: argparse.Namespace):
    """The RankerConfig of one backend (the project's rar/configs/ranker_*.yaml plus overrides),
    or (None, reason) when it cannot run here."""
    from rar.config import load_config
    from rar.rankers import RankerConfig

    configs = Path(args.config_dir)
    sets = [f"cache.path={Path(args.out) / 'ranker_cache.sqlite'}"]
    if backend == "semantic":
        return load_config(RankerConfig, configs / "ranker_semantic.yaml", sets), None
    if backend.startswith("local-"):
        sets += [f"local.mode={backend.split('-', 1)[1]}", f"local.num_threads={args.threads}"]
        if args.local_model:
            sets.append(f"local.model={args.local_model}")
        return load_config(RankerConfig, configs / "ranker_local.yaml", sets), None
    if backend == "openai":
        if args.base_url:  # a local OpenAI-compatible server: no key, no reasoning effort
            sets += [f"base_url={args.base_url}", "reasoning_effort=null", "temperature=0.0"]
        elif not os.environ.get("OPENAI_API_KEY"):
            return None, "OPENAI_API_KEY is not set and no --base-url was given"
        if args.openai_model:
            sets.append(f"model={args.openai_model}")
        return load_config(RankerConfig, configs / "ranker_openai.yaml", sets), None
    if backend == "gemini":
        if not os.environ.get("GEMINI_API_KEY"):
            return None, "GEMINI_API_KEY is not set"
        if args.gemini_model:
            sets.append(f"model={args.gemini_model}")
        return load_config(RankerConfig, configs / "ranker_gemini.yaml", sets), None
    raise SystemExit(f"error: unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def label(backend: str, ranker: Any) -> str:
    name = getattr(ranker, "model_name", "") if backend != "semantic" else ""
    return f"LRURec + {backend}" + (f" ({name})" if name else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(parser, "runs/experiments/table1")
    parser.add_argument("--datasets", nargs="+", default=["redial", "inspired"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--backends", nargs="+", default=["semantic", "local-loglik", "openai", "gemini"], choices=BACKENDS)  # fmt: skip
    parser.add_argument("--k", type=int, default=25, help="Candidates retrieved (paper: 25).")
    parser.add_argument("--max-samples", type=int, default=None, help="Seeded subset per dataset.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the subset.")
    parser.add_argument("--config-dir", default="rar/configs", help="Holds ranker_<backend>.yaml.")
    parser.add_argument(
        "--openai-model", default=None, help="Default: rar/configs/ranker_openai.yaml."
    )
    parser.add_argument(
        "--gemini-model", default=None, help="Default: rar/configs/ranker_gemini.yaml."
    )
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible server (vLLM, Ollama).")
    parser.add_argument("--local-model", default=None, help="Local model (default SmolLM2-135M).")
    args = parser.parse_args()
    setup(args)

    from rar.data.registry import load_conversation_samples
    from rar.evaluation.evaluate_config import EvaluateConfig
    from rar.evaluation.evaluator import evaluate_systems
    from rar.paths import resolve_data_dir
    from rar.pipeline import System
    from rar.rankers import build_ranker
    from rar.retrievers import load_pretrained_run

    check_pretrained(args.pretrained_run)
    corpus = load_corpus(args.corpus)
    data_dir = resolve_data_dir(args.data_dir)
    retriever = load_pretrained_run(args.pretrained_run, corpus)
    rankers: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for backend in args.backends:
        cfg, reason = ranker_config(backend, args)
        if cfg is None:
            skipped[backend] = reason
            print(f"skipping {backend}: {reason}")
            continue
        rankers[backend] = build_ranker(cfg, corpus)
        if backend.startswith("local-"):
            # load on the main thread: loading lazily inside the ranker's worker thread failed
            # here with transformers ImportError / meta-tensor errors (see docs/results.md)
            rankers[backend].load()

    eval_cfg = EvaluateConfig(
        k=args.k, split=args.split, max_samples=args.max_samples, seed=args.seed
    )
    header = ["dataset", "system", *(LABELS[m] for m in METRICS), "samples", "hallucination", "seconds"]  # fmt: skip
    rows: list[list[str]] = []
    results: dict[str, Any] = {"args": vars(args), "skipped": skipped, "datasets": {}}
    for dataset in args.datasets:
        samples = load_conversation_samples(dataset, data_dir, args.split)
        systems = [System("LRURec", retriever, None, str(args.pretrained_run))]
        systems += [
            System(label(b, r), retriever, r, str(args.pretrained_run)) for b, r in rankers.items()
        ]
        report = evaluate_systems(
            samples,
            corpus,
            systems,
            eval_cfg,
            out_dir=Path(args.out) / dataset,
            dataset=dataset,
            data_source=f"{dataset} {args.split} split of {data_dir}",
            progress=not args.quiet,
            corpus_dir=args.corpus,
        )
        data = report.to_dict()
        results["datasets"][dataset] = data
        for name, s in data["systems"].items():
            cells = [cell(s["metrics"][m], s["metrics_ci"][m]["se"]) for m in METRICS]
            r = s.get("ranker") or {}
            halluc = f"{r.get('hallucination_rate', 0.0):.1%}" if r else "–"
            rows.append([dataset, name, *cells, str(s["num_samples"]), halluc, f"{s['seconds']:.0f}"])  # fmt: skip
    for ranker in rankers.values():
        ranker.close()

    lines = [
        "# Table 1 analogue: pretrained LRURec alone vs LRURec + our rankers",
        "",
        f"Split `{args.split}`; LRURec's top-{args.k} candidates re-ranked by each backend; "
        "mean ± standard error over samples. Hallucination = share of titles in the ranker's "
        "reply matching no candidate (similarity < 0.85).",
        "",
        markdown_table(header, rows),
        "",
        "Samples: " + "; ".join(_sample_note(d, v) for d, v in results["datasets"].items()),
    ]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"{b} ({why})" for b, why in skipped.items())]
    for dataset in args.datasets:
        if dataset in PAPER:
            lines += [
                "",
                f"Paper, {dataset} (337k-movie corpus, full dataset; N@5 R@5 N@10 R@10):",
                "",
                markdown_table(
                    ["system", *(LABELS[m] for m in METRICS)], paper_rows(PAPER[dataset])
                ),  # fmt: skip
            ]
    write_outputs(args.out, "table1_rankers", "\n".join(lines), results)


def _sample_note(dataset: str, data: dict[str, Any]) -> str:
    s = data["samples"]
    evaluated = next(iter(data["systems"].values()))["num_samples"]
    note = f"{dataset}: {evaluated} evaluated"
    if evaluated != s.get("samples_kept"):
        note += f" (seeded subset of {s.get('samples_kept')} linked)"
    return note + (
        f", {s.get('samples_in')} loaded, {s.get('dropped_no_linked_target', 0)} dropped "
        "(no target in the corpus)"
    )


if __name__ == "__main__":
    main()
