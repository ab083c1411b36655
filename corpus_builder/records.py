"""The normalised movie record every source reader produces, and the skip log for bad rows.

Readers disagree on formats but agree on this shape, so merge/link/filter never see raw files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rar.errors import InputError


@dataclass
class MovieRecord:
    """One movie as one source describes it. `source_id` is the source's own key for it."""

    source: str
    source_id: str
    title: str
    year: int | None = None
    genres: list[str] = field(default_factory=list)
    directors: list[str] = field(default_factory=list)
    cast: list[str] = field(default_factory=list)
    writers: list[str] = field(default_factory=list)
    plot: str | None = None
    runtime: float | None = None
    rating: float | None = None
    votes: int | None = None
    imdb_id: str | None = None
    # Weak records (lower-cased titles, article names) only enrich a movie found elsewhere.
    weak: bool = False
    # A catalogue lists each movie once, so two records of one catalogue are two movies.
    # Empty = the source name; `exclusive=False` for mention lists (one movie, many spellings).
    catalogue: str = ""
    exclusive: bool = True

    def filled(self, name: str) -> bool:
        value = getattr(self, name)
        if isinstance(value, list):
            return len(value) > 0
        return value is not None and value != ""


class BadInputError(InputError):
    """A malformed input row or file; the message names file and line."""


@dataclass
class SkipLog:
    """Rows a reader could not use. Counted per source and reason; a few examples are kept.

    When `strict` is set, the first skip raises instead, so nothing is dropped silently.
    """

    strict: bool = False
    max_examples: int = 20
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, source: str, path: Path | str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        if self.strict:
            raise BadInputError(f"{where}: {reason}")
        by_reason = self.counts.setdefault(source, {})
        key = reason.split(":")[0]
        by_reason[key] = by_reason.get(key, 0) + 1
        examples = self.examples.setdefault(source, [])
        if len(examples) < self.max_examples:
            examples.append(f"{where}: {reason}")

    def note(self, source: str, reason: str, count: int = 1) -> None:
        """Count rows left out on purpose (e.g. adult titles); reported, never an error."""
        if count:
            by_reason = self.counts.setdefault(source, {})
            by_reason[reason] = by_reason.get(reason, 0) + count

    def total(self) -> int:
        return sum(sum(v.values()) for v in self.counts.values())

    def to_json(self) -> dict:
        return {
            "total": self.total(),
            "counts": {s: dict(sorted(r.items())) for s, r in sorted(self.counts.items())},
            "examples": {s: list(v) for s, v in sorted(self.examples.items())},
        }
