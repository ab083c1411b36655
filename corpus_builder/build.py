"""Build a corpus directory: read sources -> merge -> link -> filter -> write -> embed -> index.

Everything is written into a temporary sibling directory that replaces the old corpus by
rename only when complete, so a crash never leaves a half-written corpus. Same inputs and
config give byte-identical `movies.parquet`, link tables and `manifest.json` (rows sorted, fixed
parquet options, no timestamps); timings and cache hits go to `build_log.json`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpus_builder.corpus_config import CorpusConfig
from corpus_builder.embed import embed_texts, model_id
from corpus_builder.filter import filter_movies
from corpus_builder.index import build_index, write_index
from corpus_builder.link import (
    LinkTable,
    MovieMatcher,
    collect_mentions,
    link_dataset,
)
from corpus_builder.merge import MergeResult, merge_records, title_year_collisions
from corpus_builder.records import MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult, find_inputs
from corpus_builder.writer import write_links, write_movies
from rar.atomic_files import atomic_directory
from rar.corpus.movie import METADATA_FIELDS, Movie, movie_text
from rar.corpus.schema import (
    BUILD_LOG_FILE,
    CORPUS_ENTRIES,
    CORPUS_FORMAT,
    EMBEDDING_META_FILE,
    EMBEDDINGS_DIR,
    HASHES_FILE,
    INDEX_FILE,
    LINKS_DIR,
    MANIFEST_FILE,
    MOVIES_FILE,
    VECTORS_FILE,
)
from rar.data.datasets import CONVERSATION_DATASETS
from rar.errors import InputError, MissingPathError, PathExistsError

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


@dataclass
class BuildResult:
    path: Path
    manifest: dict
    build_log: dict


def source_module(name: str):
    try:
        return importlib.import_module(f"corpus_builder.sources.{name}")
    except ModuleNotFoundError:
        from corpus_builder.corpus_config import ALL_SOURCES

        raise InputError(
            f"unknown corpus source {name!r}; expected one of {', '.join(ALL_SOURCES)}"
        ) from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def read_sources(
    data_dir: Path, config: CorpusConfig, skips: SkipLog
) -> tuple[list[tuple[str, SourceResult]], dict]:
    """Run each configured reader on its inputs; absent default inputs are reported, not errors."""
    results: list[tuple[str, SourceResult]] = []
    report: dict[str, dict] = {}
    unknown = set(config.source_paths) - set(config.sources)
    if unknown:
        raise InputError(
            f"source_paths names source(s) not in sources: {', '.join(sorted(unknown))}"
        )
    for name in config.sources:
        module = source_module(name)
        explicit = name in config.source_paths
        patterns = config.source_paths.get(name, module.DEFAULT_PATHS)
        paths = find_inputs(data_dir, patterns, explicit)
        if not paths:
            report[name] = {"status": "absent", "looked_for": list(patterns), "records": 0}
            continue
        t0 = time.perf_counter()
        result = module.read(paths, skips)
        report[name] = {
            "status": "read",
            "records": len(result.records),
            "files": sorted(_relative(p, data_dir) for p in result.files or paths),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        results.append((name, result))
        log.info("source %s: %d records", name, len(result.records))
    return results, report


def _is_corpus_manifest(manifest: object) -> bool:
    """The format marker, or (corpora built before the marker existed) version 1's full key set."""
    if not isinstance(manifest, dict):
        return False
    if manifest.get("format") == CORPUS_FORMAT:
        return True
    legacy_keys = {"format_version", "corpus_version", "config", "merge", "links", "counts"}
    return manifest.get("format_version") == 1 and legacy_keys <= manifest.keys()


def _not_a_corpus_reason(out: Path) -> str | None:
    """Why `out` is not provably a corpus this tool wrote (None when it is, or is empty).

    Proof is the manifest's format marker plus the files a build writes and nothing else, so a
    directory that merely holds a file named manifest.json is never replaced.
    """
    if not out.is_dir():
        return "it is not a directory"
    entries = {p.name for p in out.iterdir()}
    if not entries:
        return None
    manifest_path = out / MANIFEST_FILE
    if not manifest_path.is_file():
        return "it has no manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"its manifest.json is not readable JSON ({exc})"
    if not _is_corpus_manifest(manifest):
        return f'its manifest.json has no "format": "{CORPUS_FORMAT}" marker'
    if not (out / MOVIES_FILE).is_file():
        return "it has no movies.parquet"
    foreign = sorted(entries - CORPUS_ENTRIES)
    if foreign:
        return "it holds files a corpus build does not write: " + ", ".join(foreign[:5])
    return None


def _check_output(out: Path) -> None:
    """Refuse to replace anything but an empty directory or a corpus this tool wrote."""
    if not out.exists():
        return
    reason = _not_a_corpus_reason(out)
    if reason:
        raise PathExistsError(
            f"{out} exists and is not a corpus directory ({reason}); refusing to replace it: "
            "pass another --out, or remove it yourself"
        )


class _Laps:
    """Seconds per build stage, for build_log.json (never the manifest)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._clock, 3)
        self._clock = now


@dataclass
class _Records:
    """Every source's records in one list, with dataset keys and popularity by list index."""

    results: list[tuple[str, SourceResult]]
    source_report: dict
    records: list[MovieRecord]
    dataset_keys: dict[str, dict[str, list[int]]]
    popularity: dict[int, int]


def build_corpus(
    data_dir: Path,
    out: Path,
    config: CorpusConfig | None = None,
    progress: bool = True,
) -> BuildResult:
    """Build the corpus described by `config` from the files in `data_dir` into `out`."""
    config = config or CorpusConfig()
    data_dir, out = Path(data_dir), Path(out)
    if not data_dir.is_dir():
        raise MissingPathError(f"data directory {data_dir} does not exist")
    _check_output(out)
    lap = _Laps()
    skips = SkipLog(strict=config.strict)
    read = _read_records(data_dir, config, skips)
    lap("read")
    merged = merge_records(
        read.records,
        {d: dict(k) for d, k in read.dataset_keys.items()},
        fuzzy_threshold=config.merge.fuzzy_threshold,
        year_tolerance=config.merge.year_tolerance,
        source_priority=config.merge.source_priority,
        conflict_year_gap=config.merge.conflict_year_gap,
    )
    lap("merge")
    tables, linked_by, popularity = _link(read, merged, config, data_dir)
    lap("link")
    filtered = filter_movies(merged.movies, linked_by, popularity, config.filter)
    movies = _keep(merged.movies, filtered.keep, tables)
    lap("filter")
    # write into a staging sibling that replaces `out` whole
    with atomic_directory(out) as tmp:
        link_report = _write_tables(tmp, movies, tables)
        manifest = {
            "format": CORPUS_FORMAT,
            "format_version": FORMAT_VERSION,
            "corpus_version": config.version,
            "config": config.model_dump(mode="json"),
            "inputs": _input_files(read.results, data_dir),
            "sources": source_report_without_times(read.source_report),
            "skips": skips.to_json(),
            "merge": merged.stats.to_json(),
            "filter": filtered.report,
            "links": link_report,
            "counts": corpus_counts(movies),
            "checks": {"title_year_collisions": _collisions(movies)},
        }
        lap("write")
        build_log: dict = {"timings": lap.timings, "sources": read.source_report}
        if config.embedding.enabled:
            _embed_and_index(tmp, out, movies, config, progress, lap, manifest, build_log)
        (tmp / MANIFEST_FILE).write_text(
            json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )
        (tmp / BUILD_LOG_FILE).write_text(json.dumps(build_log, indent=2, sort_keys=True) + "\n")
    return BuildResult(out, manifest, build_log)


def _read_records(data_dir: Path, config: CorpusConfig, skips: SkipLog) -> _Records:
    """Stage read: every source's records, one list; each source's dataset keys and popularity
    shifted to the records' indices in it."""
    results, source_report = read_sources(data_dir, config, skips)
    if not results:
        raise MissingPathError(
            f"no corpus source files found in {data_dir} (looked for: "
            + "; ".join(f"{n}: {', '.join(r['looked_for'])}" for n, r in source_report.items())
            + ")"
        )
    records: list[MovieRecord] = []
    dataset_keys: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    record_popularity: dict[int, int] = {}
    for _name, result in results:
        offset = len(records)
        records.extend(result.records)
        for dataset, keys in result.dataset_keys.items():
            for key, index in keys.items():
                dataset_keys[dataset][key].append(offset + index)
        for index, count in result.popularity.items():
            record_popularity[offset + index] = count
    return _Records(results, source_report, records, dataset_keys, record_popularity)


def _link(
    read: _Records, merged: MergeResult, config: CorpusConfig, data_dir: Path
) -> tuple[dict[str, LinkTable], list[list[str]], np.ndarray]:
    """Stage link: a link table per dataset (its catalogue keys and, with the data loaders, its
    conversations' mentions); returns the tables, the datasets linking to each movie, and each
    movie's popularity (its records' counts plus its links' mentions)."""
    movies = merged.movies
    popularity = np.zeros(len(movies), dtype=np.float64)
    for index, count in read.popularity.items():
        row = merged.record_movie[index]
        if row >= 0:
            popularity[row] += count
    matcher = MovieMatcher(
        movies,
        popularity + np.array([m.votes or 0 for m in movies]) * 1e-6,
        config.link.fuzzy_threshold,
    )
    record_titles = [r.title if r.year is None else f"{r.title} ({r.year})" for r in read.records]
    tables: dict[str, LinkTable] = {}
    for dataset in _datasets_to_link(config, read.dataset_keys):
        mentions = None
        if config.link.use_data_loaders and dataset in CONVERSATION_DATASETS:
            mentions = collect_mentions(dataset, data_dir)
        catalogue = read.dataset_keys.get(dataset, {})
        if not catalogue and not mentions:
            continue
        tables[dataset] = link_dataset(
            dataset, catalogue, merged.record_movie, record_titles, mentions, matcher
        )
    linked_by: list[list[str]] = [[] for _ in movies]
    for dataset, table in tables.items():
        for row, count in zip(table.rows, table.counts, strict=True):
            if row >= 0:
                if dataset not in linked_by[row]:
                    linked_by[row].append(dataset)
                popularity[row] += count
    return tables, linked_by, popularity


def _datasets_to_link(
    config: CorpusConfig, dataset_keys: dict[str, dict[str, list[int]]]
) -> list[str]:
    """`link.datasets` in order, `movielens` standing for every MovieLens release read."""
    datasets: list[str] = []
    for name in config.link.datasets:
        if name == "movielens":
            datasets.extend(sorted(d for d in dataset_keys if d.startswith("movielens-")))
        elif name not in datasets:
            datasets.append(name)
    return datasets


def _keep(movies: list[Movie], keep: np.ndarray, tables: dict[str, LinkTable]) -> list[Movie]:
    """Stage filter, applied: the kept movies, and each link table renumbered to them (a link
    to a dropped movie becomes unlinked, method "filtered")."""
    new_row = np.full(len(movies), -1, dtype=np.int64)
    kept = np.flatnonzero(keep)
    new_row[kept] = np.arange(len(kept))
    for table in tables.values():
        for i, row in enumerate(table.rows):
            if row >= 0 and new_row[row] < 0:
                table.methods[i] = "filtered"
            table.rows[i] = int(new_row[row]) if row >= 0 else -1
    return [movies[i] for i in kept]


def _write_tables(tmp: Path, movies: list[Movie], tables: dict[str, LinkTable]) -> dict:
    """Stage write: movies.parquet and links/<dataset>.parquet; returns the manifest's link
    report (each table's stats and its first 200 unlinked keys)."""
    write_movies(movies, tmp / MOVIES_FILE)
    (tmp / LINKS_DIR).mkdir()
    link_report: dict[str, dict] = {}
    for dataset, table in sorted(tables.items()):
        write_links(table, movies, tmp / LINKS_DIR / f"{dataset}.parquet")
        unlinked = table.unlinked()
        link_report[dataset] = {
            **table.stats(),
            "unlinked_total": len(unlinked),
            "unlinked": unlinked[:200],
        }
    return link_report


def _input_files(results: list[tuple[str, SourceResult]], data_dir: Path) -> list[dict]:
    """Every file read, per source: path (relative to the data dir), size and SHA-256."""
    input_files = []
    for name, result in results:
        for path in sorted(set(result.files)):
            input_files.append(
                {
                    "source": name,
                    "path": _relative(path, data_dir),
                    "bytes": path.stat().st_size,
                    "sha256": file_sha256(path),
                }
            )
    return input_files


def _collisions(movies: list[Movie]) -> dict:
    """(title, year) pairs held by two or more IMDb ids, for the manifest; warned about."""
    collisions = title_year_collisions(movies)
    if collisions["count"]:
        log.warning(
            "%d (title, year) pairs are held by two or more IMDb ids, e.g. %s "
            "(manifest.json checks.title_year_collisions)",
            collisions["count"],
            collisions["examples"][0],
        )
    return collisions


def _embed_and_index(
    tmp: Path,
    out: Path,
    movies: list[Movie],
    config: CorpusConfig,
    progress: bool,
    lap: _Laps,
    manifest: dict,
    build_log: dict,
) -> None:
    """Stages embed and index: the movie vectors (reusing the previous corpus's and the shared
    cache's) with their meta, and the FAISS index; adds both to the manifest and the build log."""
    texts = [movie_text(m, config.embedding.fields) for m in movies]
    result = embed_texts(
        texts, config.embedding, previous=[out] if out.exists() else [], progress=progress
    )
    (tmp / EMBEDDINGS_DIR).mkdir()
    np.save(tmp / EMBEDDINGS_DIR / VECTORS_FILE, result.vectors)
    np.save(tmp / EMBEDDINGS_DIR / HASHES_FILE, result.hashes)
    meta = {
        "model_id": model_id(config.embedding),
        "model": config.embedding.model,
        "max_seq_length": config.embedding.max_seq_length,
        "fields": list(config.embedding.fields),
        "dim": int(result.vectors.shape[1]) if result.vectors.ndim == 2 else 0,
        "count": len(movies),
        "normalized": True,
    }
    (tmp / EMBEDDINGS_DIR / EMBEDDING_META_FILE).write_text(
        json.dumps(meta, indent=2, sort_keys=True) + "\n"
    )
    lap("embed")
    write_index(build_index(result.vectors, config.index), tmp / INDEX_FILE)
    lap("index")
    manifest["embeddings"] = {k: meta[k] for k in ("model_id", "dim", "count", "fields")}
    manifest["index"] = config.index.model_dump(mode="json")
    build_log["embedding"] = {
        "computed": result.computed,
        "reused": result.reused,
        "seconds": round(result.seconds, 3),
        "model_load_seconds": round(result.model_seconds, 3),
        "movies_per_second": round(
            result.computed / max(result.seconds - result.model_seconds, 1e-9), 2
        )
        if result.computed
        else None,
    }


def source_report_without_times(report: dict) -> dict:
    return {
        name: {k: v for k, v in entry.items() if k != "seconds"}
        for name, entry in sorted(report.items())
    }


def corpus_counts(movies: list[Movie]) -> dict:
    """How many movies have each field (coverage), for the manifest and `rar corpus stats`."""
    coverage = {}
    for name in METADATA_FIELDS[1:]:  # every movie has a title
        coverage[name] = sum(1 for m in movies if _counted(getattr(m, name)))
    per_source: dict[str, int] = defaultdict(int)
    for movie in movies:
        for source in json.loads(movie.source_ids):
            per_source[source] += 1
    return {
        "movies": len(movies),
        "with_field": coverage,
        "movies_per_source": dict(sorted(per_source.items())),
    }


def _counted(value: object) -> bool:
    """Coverage counts a non-empty list or any stored value (an empty plot text counts)."""
    return len(value) > 0 if isinstance(value, tuple) else value is not None
