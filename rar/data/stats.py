"""Dataset statistics for `rar data stats`: every dataset found under a data directory.

Conversation datasets report dialogues, samples, distinct movies, mentions and dropped
samples overall, per split and per source file (the paper's Table 8, plus what was dropped);
MovieLens releases report users, movies, interactions, sessions and dropped short sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rar.data.datasets import MOVIELENS, STATS_DATASETS
from rar.data.movielens import detect_format, load_movielens
from rar.data.movielens_sessions import movielens_stats
from rar.data.registry import load_conversation_data
from rar.data.splits import ALL, SPLITS
from rar.errors import InputError


@dataclass
class StatsReport:
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> counts
    skipped: dict[str, str] = field(default_factory=dict)  # dataset -> why it is missing


def movielens_dirs(data_dir: Path) -> list[Path]:
    """MovieLens release directories under `data_dir/movielens` (those with ratings)."""
    root = Path(data_dir) / "movielens"
    found = []
    for path in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        try:
            detect_format(path)
        except (ValueError, FileNotFoundError):
            continue
        found.append(path)
    return found


def collect_stats(
    data_dir: Path,
    datasets: Sequence[str] | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> StatsReport:
    """Counts for every conversation dataset and MovieLens release present in `data_dir`.
    `datasets` may name conversation datasets and "movielens"; all by default."""
    wanted = list(datasets) if datasets else list(STATS_DATASETS)
    unknown = [d for d in wanted if d not in STATS_DATASETS]
    if unknown:
        raise InputError(
            f"unknown dataset(s) {', '.join(unknown)}; expected {', '.join(STATS_DATASETS)}"
        )
    report = StatsReport()
    for dataset in wanted:
        if dataset == MOVIELENS:
            continue
        if progress:
            progress(dataset)
        try:
            data = load_conversation_data(dataset, data_dir, ALL, seed)
        except FileNotFoundError as exc:
            report.skipped[dataset] = str(exc)
            continue
        entry: dict[str, Any] = data.stats.as_dict()
        entry["splits"] = {name: data.split_stats[name].as_dict() for name in SPLITS}
        entry["sources"] = {name: stats.as_dict() for name, stats in data.sources.items()}
        report.entries[dataset] = entry
    if MOVIELENS in wanted:
        directories = movielens_dirs(data_dir)
        if not directories:
            report.skipped["movielens"] = (
                f"no MovieLens release with ratings in {data_dir}/movielens"
            )
        for path in directories:
            if progress:
                progress(f"movielens-{path.name}")
            stats = movielens_stats(load_movielens(path), seed)
            report.entries[f"movielens-{path.name}"] = stats.as_dict()
    return report
