"""Small helpers shared by the paper-table scripts: flags, mean ± se cells, and writing JSON +
markdown (the mean and standard error themselves come from `rar.metrics.summarize`).

The scripts stay thin drivers over the project's APIs; what they share (the flags every table
takes, how a cell is printed, where results go) lives here so every table reads the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("ndcg@5", "recall@5", "ndcg@10", "recall@10")
LABELS = {"ndcg@5": "N@5", "recall@5": "R@5", "ndcg@10": "N@10", "recall@10": "R@10"}


def add_common_args(parser: argparse.ArgumentParser, out_default: str) -> None:
    """Flags every table script takes: where the corpus, pretrained run, data and output live."""
    parser.add_argument("--corpus", default="corpus", help="Corpus directory (rar build-corpus).")
    parser.add_argument(
        "--pretrained-run",
        default="runs/pretrain-ml-latest-small-lrurec",
        help="Run directory of `rar pretrain` (checkpoints/best.pt).",
    )
    parser.add_argument(
        "--data-dir", default=None, help="Data directory (default $RAR_DATA_DIR, else ./data)."
    )
    parser.add_argument("--out", default=out_default, help="Directory for the JSON + markdown.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    parser.add_argument("--quiet", action="store_true", help="No progress bars.")


def setup(args: argparse.Namespace) -> None:
    """Offline model loading and a bounded thread count (the machines are shared)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(max(1, args.threads))


def load_corpus(path: str | Path):
    """`Corpus.load`, with a one-line error naming the command that builds one."""
    from rar.corpus import Corpus

    path = Path(path)
    if not (path / "manifest.json").is_file():
        sys.exit(
            f"error: no corpus at {path} (manifest.json missing); build one with "
            f"`rar build-corpus --out {path} --config corpus_quickstart`"
        )
    return Corpus.load(path)


def check_pretrained(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoints" / "best.pt").is_file():
        sys.exit(
            f"error: {run_dir}/checkpoints/best.pt not found; pretrain first, e.g. "
            "`rar pretrain --config pretrain_quickstart --corpus CORPUS`"
        )
    return run_dir


def cell(mean: float | None, se: float | None = None) -> str:
    """`0.0650 ± 0.0041`, or just the mean when the se is undefined."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if se is None or math.isnan(se):
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {se:.4f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def paper_rows(paper: dict[str, Sequence[float]] | None) -> list[list[str]]:
    """The paper's figures as table rows (N@5 R@5 N@10 R@10), for side-by-side printing."""
    return [[name, *(f"{v:.4f}" for v in values)] for name, values in (paper or {}).items()]


def write_outputs(out_dir: str | Path, stem: str, markdown: str, data: dict[str, Any]) -> Path:
    """Write `<stem>.md` and `<stem>.json` into `out_dir` and print the markdown."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(markdown.rstrip() + "\n", encoding="utf-8")
    (out / f"{stem}.json").write_text(
        json.dumps(data, indent=2, default=_json_default), encoding="utf-8"
    )
    print(markdown)
    print(f"\nwrote {out / (stem + '.md')} and {out / (stem + '.json')}")
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
