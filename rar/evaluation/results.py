"""What an evaluation produced and its files: per-system results, the report, and
evaluation.json + evaluation.md + samples/<system>.jsonl (what the reports and the paired
bootstrap read back)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from rar.atomic_files import atomic_write, atomic_write_text, storage_errors
from rar.data.linking import SampleLinkStats
from rar.errors import InputError, MissingPathError, PathExistsError, UnknownKeyError
from rar.evaluation.failed_calls import failed_share
from rar.evaluation.markdown import render_markdown

EVALUATION_JSON = "evaluation.json"
EVALUATION_MD = "evaluation.md"
SAMPLES_DIR = "samples"


@dataclass
class SystemResult:
    name: str
    kind: str
    metrics: dict[str, float]
    metrics_ci: dict[str, dict[str, float | None]]  # None: undefined (one sample)
    num_samples: int
    records: list[dict[str, Any]] = field(repr=False, default_factory=list)
    ranker: dict[str, Any] | None = None
    source: str = ""
    seconds: float = 0.0
    samples_file: str | None = None
    failed_samples: int | None = None  # samples whose ranker call failed (None: no ranker)
    first_error: str | None = None  # one failed call's message, to show the user

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "metrics": self.metrics,
            "metrics_ci": self.metrics_ci,
            "num_samples": self.num_samples,
            "source": self.source,
            "seconds": round(self.seconds, 3),
        }
        if self.failed_samples is not None:
            out["failed_samples"] = self.failed_samples
            out["failed_share"] = failed_share(self.failed_samples, self.num_samples)
            if self.first_error:
                out["first_error"] = self.first_error
        if self.ranker is not None:
            out["ranker"] = self.ranker
        if self.samples_file:
            out["samples_file"] = self.samples_file
        return out


@dataclass
class EvaluationReport:
    dataset: str
    split: str
    data_source: str
    k: int
    ks: list[int]
    link_stats: SampleLinkStats
    systems: list[SystemResult]
    out_dir: Path | None = None
    data_path: str = ""  # the file or directory the samples came from (reports reload it)
    corpus_dir: str = ""
    protocol: str = "per_turn"  # rar.data.linking.PROTOCOLS: what one row of the metrics is

    def system(self, name: str) -> SystemResult:
        for result in self.systems:
            if result.name == name:
                return result
        raise KeyError(
            f"no system named '{name}' (have: {', '.join(s.name for s in self.systems)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "data_source": self.data_source,
            "data_path": self.data_path,
            "corpus_dir": self.corpus_dir,
            "protocol": self.protocol,
            "rows": self.link_stats.rows,
            "k": self.k,
            "ks": self.ks,
            "samples": self.link_stats.as_dict(),
            "systems": {s.name: s.summary() for s in self.systems},
        }

    def to_markdown(self) -> str:
        return render_markdown(self.to_dict())

    def save(self, out_dir: str | Path) -> Path:
        """Write evaluation.json, evaluation.md and samples/<system>.jsonl into `out_dir`, each
        atomically (a full disk leaves the previous file or none, never half of one)."""
        out = check_output_dir(out_dir)
        way_out = "free some space or pass another --out"
        with storage_errors(out / SAMPLES_DIR, way_out):
            (out / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
        for result in self.systems:
            name = f"{SAMPLES_DIR}/{slug(result.name)}.jsonl"
            atomic_write(out / name, partial(_write_records, result.records), way_out=way_out)
            result.samples_file = name
        atomic_write_text(out / EVALUATION_JSON, json.dumps(self.to_dict(), indent=2), way_out)
        atomic_write_text(out / EVALUATION_MD, self.to_markdown(), way_out)
        self.out_dir = out
        return out


def _write_records(records: list[dict[str, Any]], handle: BinaryIO) -> None:
    for record in records:
        handle.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))


def check_output_dir(out_dir: str | Path) -> Path:
    """`out_dir` as a Path, refused in one line when it exists and is not a directory."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PathExistsError(
            f"--out {out} is a file, not a directory: pass another --out (a directory)"
        )
    return out


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "system"


def load_evaluation(path: str | Path) -> tuple[dict[str, Any], Path]:
    """An evaluation.json (or the directory holding it) -> (data, directory)."""
    path = Path(path)
    file = path / EVALUATION_JSON if path.is_dir() else path
    if not file.is_file():
        raise MissingPathError(f"no {EVALUATION_JSON} at {path}; run `rar evaluate` first")
    return json.loads(file.read_text(encoding="utf-8")), file.parent


def load_records(
    eval_dir: str | Path, system: str, data: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The per-sample records one system wrote."""
    eval_dir = Path(eval_dir)
    if data is None:
        data, eval_dir = load_evaluation(eval_dir)
    if system not in data["systems"]:
        raise UnknownKeyError(
            f"no system '{system}' in {eval_dir} (have: {', '.join(data['systems'])})"
        )
    rel = data["systems"][system].get("samples_file") or f"{SAMPLES_DIR}/{slug(system)}.jsonl"
    file = eval_dir / rel
    if not file.is_file():
        raise MissingPathError(f"{file} is missing; rerun `rar evaluate`")
    out = []
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{file}:{number}: not valid JSON ({exc})") from exc
    return out
