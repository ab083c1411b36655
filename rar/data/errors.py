"""One error type for bad dataset files, and the readers that raise it with file, line and column.

Every loader reads through these helpers so a malformed line, a missing column or an
undecodable file always produces a message that names the file and what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rar.errors import InputError, MissingPathError


class DataFormatError(InputError):
    """A dataset file does not have the expected format (names the file, line or column)."""


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """The whole file as text, or an error naming the encoding that was tried."""
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"{path}: cannot decode the file as {encoding} (byte {exc.start}: {exc.reason}); "
            f"re-save it as {encoding}"
        ) from None


def iter_jsonl(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) for every non-blank line; a bad line names file and line."""
    for line_no, line in enumerate(read_text(path, encoding).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"{path}, line {line_no}: malformed JSON ({exc.msg} at column {exc.colno})"
            ) from None


def require_fields(obj: Any, fields: Sequence[str], path: Path, line_no: int) -> None:
    """A JSON record must be an object holding `fields`."""
    if not isinstance(obj, dict):
        raise DataFormatError(
            f"{path}, line {line_no}: expected a JSON object, got {type(obj).__name__}"
        )
    missing = [f for f in fields if f not in obj]
    if missing:
        raise DataFormatError(
            f"{path}, line {line_no}: missing field(s) {', '.join(repr(f) for f in missing)}"
        )


def require_columns(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> None:
    """A table must hold `columns`; the error names the file, the column and what was found."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} "
            f"(found: {', '.join(map(str, frame.columns))})"
        )


def read_table(path: Path, encoding: str = "utf-8", **kwargs: Any) -> pd.DataFrame:
    """pandas.read_csv with errors that name the file and the encoding tried."""
    if not path.is_file():
        raise MissingPathError(f"{path}: file not found")
    try:
        return pd.read_csv(path, encoding=encoding, **kwargs)
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"{path}: cannot decode the file as {encoding} ({exc.reason}); re-save it as {encoding}"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, ValueError) as exc:
        message = str(exc)
        if any(word in message.lower() for word in ("decode", "utf-8", "utf8")):
            raise DataFormatError(
                f"{path}: cannot decode the file as {encoding} ({message.splitlines()[0]})"
            ) from None
        raise DataFormatError(
            f"{path}: cannot parse the table ({message.splitlines()[0]})"
        ) from None
