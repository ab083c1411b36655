"""What a source reader returns, and how its input files are found."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from corpus_builder.records import BadInputError, MovieRecord
from rar.errors import MissingPathError


@dataclass
class SourceResult:
    """Records read from one source, plus dataset_keys: dataset -> {dataset key -> record index}.

    An entry says "this dataset calls record i by this key", which is how link tables
    for id-keyed datasets (ReDial movieId, MovieLens movieId) are made exact.
    """

    records: list[MovieRecord] = field(default_factory=list)
    dataset_keys: dict[str, dict[str, int]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    # record index -> how often the dataset mentions it (used to keep popular movies first)
    popularity: dict[int, int] = field(default_factory=dict)

    def add(self, record: MovieRecord, dataset: str | None = None, key: str | None = None) -> int:
        self.records.append(record)
        index = len(self.records) - 1
        if dataset is not None and key is not None:
            self.dataset_keys.setdefault(dataset, {}).setdefault(key, index)
        return index


def find_inputs(data_dir: Path, patterns: list[str], explicit: bool) -> list[Path]:
    """Files matching `patterns` (globs relative to data_dir, or absolute), sorted.

    Explicit paths (from the config) must exist; default locations may simply be absent.
    """
    found: list[Path] = []
    for pattern in patterns:
        base = Path(pattern)
        if base.is_absolute():
            matches = (
                sorted(base.parent.glob(base.name))
                if any(c in base.name for c in "*?[")
                else [base]
            )
        else:
            matches = sorted(data_dir.glob(pattern))
        matches = [m for m in matches if m.exists()]
        if explicit and not matches:
            raise MissingPathError(f"input not found: {pattern} (data dir {data_dir})")
        for match in matches:
            if match not in found:
                found.append(match)
    return found


def read_text(path: Path, encodings: tuple[str, ...] = ("utf-8",)) -> str:
    """File text in the first encoding that decodes; a clear error naming file and line otherwise.

    UTF-8 only by default: guessing latin-1 would silently garble titles of UTF-8 files.
    """
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # UTF-8 byte-order mark
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            last = exc
    line = data[: last.start].count(b"\n") + 1
    raise BadInputError(f"{path}:{line}: cannot decode as {' or '.join(encodings)}")


def csv_rows(path: Path, delimiter: str = ",", encodings: tuple[str, ...] = ("utf-8",)):
    """(line number, row dict) pairs of a CSV/TSV file with a header."""
    reader = csv.DictReader(
        io.StringIO(read_text(path, encodings), newline=""), delimiter=delimiter
    )
    if reader.fieldnames is None:
        raise BadInputError(f"{path}:1: empty file, expected a header row")
    for row in reader:
        yield reader.line_num, row


def require_columns(path: Path, header: list[str] | None, needed: list[str]) -> None:
    missing = [c for c in needed if c not in (header or [])]
    if missing:
        raise BadInputError(f"{path}:1: missing column(s) {', '.join(missing)}; header is {header}")
