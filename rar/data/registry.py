"""Conversation datasets by name: which files to read under a data directory, and splits.

| dataset | files under DATA_DIR | notes |
|---|---|---|
| `redial` | `redial/train*.jsonl` (e.g. `train_data.jsonl`, `train_part_*.jsonl`) | deduplicated by conversationId; the official `test_data.jsonl` is left aside |
| `inspired` | `inspired/dialog_data/*.tsv`; else `inspired/*.jsonl` for dev; `inspired/context_targets/train.csv` when there is no `train.tsv` | the dev TSV and `dev_annotated.jsonl` hold the same dialogues: only one is read |
| `reddit` | `reddit_movie/*.jsonl` or `reddit/*.jsonl` (turn JSONL) | titles from `entity2id.json` |
| `custom` | `custom/*.csv`, `custom/*.jsonl` | see `rar.data.custom` |

All files of a dataset are pooled and split 8:1:1 at dialogue level by a hash of the dialogue
id (`rar.data.splits`), so a dialogue's split never depends on file order.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rar.data.custom import load_custom
from rar.data.datasets import CONVERSATION_DATASETS, DATASET_NAMES, check_dataset
from rar.data.errors import DataFormatError, iter_jsonl
from rar.data.inspired import load_inspired_jsonl, load_inspired_tsv
from rar.data.reddit import CATALOGUE, load_catalogue, load_reddit
from rar.data.redial import load_redial
from rar.data.samples import DialogueSamples, SampleStats, samples_from_dialogue, summarize
from rar.data.splits import ALL, SPLITS, check_split, split_of
from rar.data.types import Sample
from rar.errors import InputError, MissingPathError

FORMATS = ("redial", "inspired-tsv", "inspired-jsonl", "reddit", "custom")


@dataclass
class SourceData:
    """What one file (or one deduplicated group of files) contributed."""

    name: str  # path(s) relative to the data directory
    records: list[DialogueSamples]
    duplicates: int = 0

    def stats(self) -> SampleStats:
        return summarize(self.records, self.duplicates)


@dataclass
class ConversationData:
    """Samples of one dataset split, with counts overall, per split and per source."""

    dataset: str
    split: str
    samples: list[Sample]
    stats: SampleStats
    split_stats: dict[str, SampleStats] = field(default_factory=dict)
    sources: dict[str, SampleStats] = field(default_factory=dict)


# ---------------------------------------------------------------- single files


def detect_file_format(path: Path) -> str:
    """The format of a conversation file, from its extension and first record."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return "inspired-tsv"
    if suffix == ".csv":
        return "custom"
    if suffix not in (".jsonl", ".json"):
        raise DataFormatError(f"{path}: unknown file type {suffix!r} (expected .jsonl, .tsv, .csv)")
    for _, record in iter_jsonl(path):
        if isinstance(record, list):
            return "inspired-jsonl"
        if isinstance(record, dict):
            if "messages" in record and "conversationId" in record:
                return "redial"
            if "rec" in record and "context" in record:
                return "reddit"
            if any(k in record for k in ("targets", "movies")) and any(
                k in record for k in ("context", "full_situation")
            ):
                return "custom"
        raise DataFormatError(
            f"{path}, line 1: cannot tell the format (expected a ReDial conversation with "
            f"'conversationId' and 'messages', a list of INSPIRED utterances, a Reddit-Movie turn "
            f"with 'context' and 'rec', or a custom row with 'context' and 'targets')"
        )
    raise DataFormatError(f"{path}: the file holds no records")


def _dialogue_source(name: str, dialogues, dataset: str, duplicates: int = 0) -> SourceData:
    return SourceData(name, [samples_from_dialogue(d, dataset) for d in dialogues], duplicates)


def load_source(path: Path, format: str | None = None, dataset: str | None = None) -> SourceData:
    """One conversation file of any supported format as samples grouped by dialogue."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"{path}: file not found")
    fmt = format or detect_file_format(path)
    if fmt == "redial":
        load = load_redial([path])
        return _dialogue_source(str(path), load.dialogues, dataset or "redial", load.duplicates)
    if fmt == "inspired-tsv":
        return _dialogue_source(str(path), load_inspired_tsv(path), dataset or "inspired")
    if fmt == "inspired-jsonl":
        return _dialogue_source(str(path), load_inspired_jsonl(path), dataset or "inspired")
    if fmt == "reddit":
        loaded = load_reddit(path, dataset=dataset or "reddit")
        return SourceData(str(path), loaded.records, loaded.duplicates)
    if fmt == "custom":
        return SourceData(str(path), load_custom(path, dataset=dataset or "custom"))
    raise InputError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def load_samples_from_file(
    path: Path, format: str | None = None, dataset: str | None = None
) -> list[Sample]:
    """All samples of one file (format auto-detected unless given); empty is an error."""
    source = load_source(path, format, dataset)
    samples = [s for r in source.records for s in r.samples]
    if not samples:
        stats = source.stats()
        raise DataFormatError(
            f"{path}: no samples ({stats.dialogues} dialogues; {stats.drop_summary()})"
        )
    return samples


# ---------------------------------------------------------------- datasets


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _require(paths: Sequence[object], what: str) -> None:
    if not paths:
        raise MissingPathError(what)


def _redial_sources(data_dir: Path) -> list[SourceData]:
    folder = data_dir / "redial"
    paths = sorted(folder.glob("train*.jsonl"))
    _require(paths, f"no ReDial files: expected {folder}/train*.jsonl (train_data.jsonl)")
    load = load_redial(paths)
    name = _relative(paths[0], data_dir)
    if len(paths) > 1:
        name = f"{_relative(folder, data_dir)}/train*.jsonl ({len(paths)} files)"
    return [_dialogue_source(name, load.dialogues, "redial", load.duplicates)]


def _inspired_sources(data_dir: Path) -> list[SourceData]:
    folder = data_dir / "inspired"
    tsvs = sorted((folder / "dialog_data").glob("*.tsv"))
    sources = [
        _dialogue_source(_relative(p, data_dir), load_inspired_tsv(p), "inspired") for p in tsvs
    ]
    if not any(p.stem == "dev" for p in tsvs):
        for path in sorted(folder.glob("*.jsonl")):
            dialogues = load_inspired_jsonl(path)
            sources.append(_dialogue_source(_relative(path, data_dir), dialogues, "inspired"))
    train_csv = folder / "context_targets" / "train.csv"
    if train_csv.is_file() and not any(p.stem == "train" for p in tsvs):
        records = load_custom(train_csv, dataset="inspired")
        sources.append(SourceData(_relative(train_csv, data_dir), records))
    _require(sources, f"no INSPIRED files under {folder} (dialog_data/*.tsv)")
    return sources


def _reddit_sources(data_dir: Path) -> list[SourceData]:
    folders = [data_dir / name for name in CONVERSATION_DATASETS["reddit"]]
    paths = [p for f in folders for p in sorted(f.glob("*.jsonl"))]
    _require(
        paths,
        f"no Reddit-Movie turn JSONL files in {folders[0]} (only the item catalogue is "
        f"there on machines without the dialogues)",
    )
    catalogue_path = next((f / CATALOGUE for f in folders if (f / CATALOGUE).is_file()), None)
    catalogue = load_catalogue(catalogue_path) if catalogue_path else {}
    sources = []
    for path in paths:
        loaded = load_reddit(path, catalogue=catalogue)
        sources.append(SourceData(_relative(path, data_dir), loaded.records, loaded.duplicates))
    return sources


def _custom_sources(data_dir: Path) -> list[SourceData]:
    folder = data_dir / "custom"
    paths = sorted([*folder.glob("*.csv"), *folder.glob("*.jsonl")])
    _require(paths, f"no custom files: expected {folder}/*.csv or *.jsonl")
    return [SourceData(_relative(p, data_dir), load_custom(p)) for p in paths]


# conversation dataset -> its reader (the names and folders: rar.data.datasets)
READERS: dict[str, Callable[[Path], list[SourceData]]] = {
    "redial": _redial_sources,
    "inspired": _inspired_sources,
    "reddit": _reddit_sources,
    "custom": _custom_sources,
}
assert set(READERS) == set(DATASET_NAMES)


def dataset_sources(dataset: str, data_dir: Path) -> list[SourceData]:
    """Every source file of a dataset under `data_dir`, parsed (see the module table)."""
    return READERS[check_dataset(dataset)](Path(data_dir))


def _signature(folders: Sequence[Path]) -> tuple:
    """Changes whenever a file in the folders changes, so the cache never serves stale data."""
    files = sorted(p for folder in folders if folder.is_dir() for p in folder.rglob("*"))
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files if p.is_file())


@functools.lru_cache(maxsize=8)
def _cached_sources(dataset: str, data_dir: str, signature: tuple) -> tuple[SourceData, ...]:
    return tuple(dataset_sources(dataset, Path(data_dir)))


def _sources(dataset: str, data_dir: Path) -> tuple[SourceData, ...]:
    check_dataset(dataset)
    root = Path(data_dir).resolve()
    if not root.is_dir():
        raise MissingPathError(f"data directory {data_dir} does not exist")
    signature = _signature([root / name for name in CONVERSATION_DATASETS[dataset]])
    return _cached_sources(dataset, str(root), signature)


def load_conversation_data(
    dataset: str, data_dir: Path, split: str = ALL, seed: int = 0
) -> ConversationData:
    """Samples of `dataset` in `split` ("train"/"val"/"test"/"all") plus counts.

    Parsed files are cached per process (keyed by file times and sizes), so asking for train,
    val and test in turn parses once. Samples are shared between calls: do not mutate them.
    """
    check_split(split)
    sources = _sources(dataset, data_dir)
    by_split: dict[str, list[DialogueSamples]] = {name: [] for name in SPLITS}
    seen: set[str] = set()
    for source in sources:
        for record in source.records:
            if record.dialogue_id in seen:
                raise DataFormatError(
                    f"{dataset}: dialogue id {record.dialogue_id!r} appears in two sources "
                    f"(last: {source.name})"
                )
            seen.add(record.dialogue_id)
            by_split[split_of(dataset, record.dialogue_id, seed)].append(record)
    duplicates = sum(s.duplicates for s in sources)
    all_records = [r for s in sources for r in s.records]
    split_stats = {name: summarize(records) for name, records in by_split.items()}
    split_stats[ALL] = summarize(all_records, duplicates)
    chosen = all_records if split == ALL else by_split[split]
    samples = [s for r in chosen for s in r.samples]
    total = split_stats[ALL]
    if total.samples == 0:
        raise DataFormatError(
            f"{dataset} in {data_dir}: no samples ({total.dialogues} dialogues; "
            f"{total.drop_summary()})"
        )
    return ConversationData(
        dataset,
        split,
        samples,
        split_stats[split],
        split_stats,
        {s.name: s.stats() for s in sources},
    )


def load_conversation_samples(
    dataset: str, data_dir: Path, split: str = ALL, seed: int = 0
) -> list[Sample]:
    """Samples of `dataset` (one of `rar.data.datasets.DATASET_NAMES`) in `split`."""
    return load_conversation_data(dataset, data_dir, split, seed).samples


def mention_counts(dataset: str, data_dir: Path) -> tuple[Counter[str], dict[str, str]]:
    """Every annotated movie of a dataset, for linking it to a corpus: (number of dialogues
    mentioning each key, a title per key). Unlike the samples, this includes movies that only
    appear in dropped turns, seeker turns after the last recommendation, or dialogues that
    yield no sample."""
    sources = _sources(dataset, data_dir)
    counts: Counter[str] = Counter()
    titles: dict[str, str] = {}
    for source in sources:
        for record in source.records:
            keys = set()
            for mention in record.mentions:
                if mention.title:
                    titles.setdefault(mention.key, mention.title)
                keys.add(mention.key)
            counts.update(keys)
    for key in counts:
        titles.setdefault(key, "")
    return counts, titles
