"""The typed movie record of a built corpus, and the one list of its fields.

Every layer names movie fields through the constants here (the parquet schema, the builder's
merge and coverage counts, the embedder's text, the CLI's display), so a field is added in
one place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

# Metadata a movie may carry, in the order they appear in movie text and parquet.
LIST_FIELDS = ("genres", "directors", "cast", "writers")
SCALAR_FIELDS = ("plot", "runtime", "rating", "votes")
METADATA_FIELDS = ("title", "year", *LIST_FIELDS, *SCALAR_FIELDS, "imdb_id")
# Build bookkeeping: JSON text of {source: [source ids]} and {field: winning source(s)}.
BOOKKEEPING_FIELDS = ("source_ids", "provenance")
# Columns of movies.parquet, in order; also the fields of `Movie`.
MOVIE_FIELDS = ("corpus_id", *METADATA_FIELDS, *BOOKKEEPING_FIELDS)
# What a movie's embedding text holds unless the build config says otherwise.
DEFAULT_TEXT_FIELDS = ("title", "year", "genres", "directors", "cast", "writers", "plot")
_INT_FIELDS = frozenset({"year", "votes"})
_FLOAT_FIELDS = frozenset({"runtime", "rating"})


@dataclass(frozen=True)
class Movie:
    """One movie of a corpus; row i of `movies.parquet`. Missing values are None or ()."""

    corpus_id: str
    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    directors: tuple[str, ...] = ()
    cast: tuple[str, ...] = ()
    writers: tuple[str, ...] = ()
    plot: str | None = None
    runtime: float | None = None
    rating: float | None = None
    votes: int | None = None
    imdb_id: str | None = None
    source_ids: str = "{}"
    provenance: str = "{}"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Movie:
        """A record from a parquet/pandas row: NA and NaN become None, arrays become tuples."""
        values = {name: _clean(name, row.get(name)) for name in MOVIE_FIELDS}
        values["title"] = values["title"] or ""
        for name in BOOKKEEPING_FIELDS:
            values[name] = values[name] or "{}"
        return cls(**values)

    @property
    def display(self) -> str:
        """'Title (Year)', the form rankers read and write."""
        return f"{self.title} ({self.year})" if self.year is not None else self.title

    def has(self, name: str) -> bool:
        """Whether field `name` holds a value (a non-empty list or text, any number)."""
        value = getattr(self, name, None)
        if isinstance(value, tuple):
            return len(value) > 0
        return value is not None and value != ""

    def to_dict(self) -> dict[str, Any]:
        """Field name -> value, in `MOVIE_FIELDS` order (lists as tuples)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _is_missing(value: Any) -> bool:
    """None, NaN, or pandas' NA (whose comparisons are NA, and NA has no truth value)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True


def _clean(name: str, value: Any) -> Any:
    if name in LIST_FIELDS:
        if not isinstance(value, Iterable) or isinstance(value, str):
            return ()  # None, NaN or NA: no list stored
        return tuple(str(v) for v in value)
    if _is_missing(value):
        return None
    if name in _INT_FIELDS:
        return int(value)
    if name in _FLOAT_FIELDS:
        return float(value)
    return str(value)


def format_value(value: object) -> str | None:
    """A field value as movie-text: lists comma-joined, whole floats without '.0', blanks None."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else f"{value:g}"
    if isinstance(value, Iterable) and not isinstance(value, str):
        items = [str(v) for v in value if str(v)]
        return ", ".join(items) if items else None
    text = str(value).strip()
    return text or None


def movie_text(movie: Movie, text_fields: Sequence[str]) -> str:
    """'key: value' lines of the fields the movie has, in the given order (the embedder's input)."""
    lines = []
    for name in text_fields:
        value = format_value(getattr(movie, name, None))
        if value is not None and value != "<NA>":
            lines.append(f"{name}: {value}")
    return "\n".join(lines)
