"""Keep movies that have the required fields, never dropping a linked movie silently.

A movie some dataset links to but that misses a required field is either kept (reported as
`kept_linked_incomplete`) or dropped (its keys are listed in `dropped_linked`), as the config says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from corpus_builder.corpus_config import FilterConfig
from rar.corpus.movie import Movie


@dataclass
class FilterResult:
    keep: np.ndarray  # bool per movie row
    report: dict = field(default_factory=dict)


@dataclass
class _LinkedDrops:
    """Movies some dataset links to that were dropped: all counted, the first few described."""

    movies: list[Movie]
    linked_by: list[list[str]]
    max_examples: int
    count: int = 0
    examples: list[dict] = field(default_factory=list)

    def add(self, i: int, reason: str) -> None:
        self.count += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(
                {
                    "corpus_id": self.movies[i].corpus_id,
                    "title": self.movies[i].title,
                    "datasets": self.linked_by[i],
                    "reason": reason,
                }
            )


def filter_movies(
    movies: list[Movie],
    linked_by: list[list[str]],
    popularity: np.ndarray,
    config: FilterConfig,
    max_examples: int = 100,
) -> FilterResult:
    """`linked_by[i]` names the datasets linking movie i; `popularity[i]` ranks movies for max_movies."""
    keep = np.ones(len(movies), dtype=bool)
    drops = _LinkedDrops(movies, linked_by, max_examples)
    dropped_by_field, kept_incomplete = _require_fields(movies, linked_by, config, keep, drops)
    dropped_by_cap = _cap(movies, linked_by, popularity, config, keep, drops)
    report = {
        "movies_in": len(movies),
        "movies_kept": int(keep.sum()),
        "required_fields": list(config.required_fields),
        "keep_linked": config.keep_linked,
        "dropped": dict(sorted(dropped_by_field.items())),
        "dropped_by_max_movies": dropped_by_cap,
        "kept_linked_incomplete": kept_incomplete,
        "dropped_linked": drops.count,
        "dropped_linked_examples": drops.examples,
    }
    return FilterResult(keep, report)


def _require_fields(
    movies: list[Movie],
    linked_by: list[list[str]],
    config: FilterConfig,
    keep: np.ndarray,
    drops: _LinkedDrops,
) -> tuple[dict[str, int], int]:
    """Drop (in `keep`) movies missing a required field or older than `min_year`, unless linked
    and `keep_linked`. Returns the drops per reason and how many linked ones were kept anyway."""
    dropped_by_field: dict[str, int] = {}
    kept_incomplete = 0
    for i, movie in enumerate(movies):
        missing = [f for f in config.required_fields if not movie.has(f)]
        too_old = config.min_year is not None and (movie.year or 0) < config.min_year
        if not missing and not too_old:
            continue
        reason = f"missing {missing[0]}" if missing else f"before {config.min_year}"
        if linked_by[i] and config.keep_linked:
            kept_incomplete += 1
            continue
        keep[i] = False
        dropped_by_field[reason] = dropped_by_field.get(reason, 0) + 1
        if linked_by[i]:
            drops.add(i, reason)
    return dropped_by_field, kept_incomplete


def _cap(
    movies: list[Movie],
    linked_by: list[list[str]],
    popularity: np.ndarray,
    config: FilterConfig,
    keep: np.ndarray,
    drops: _LinkedDrops,
) -> int:
    """Keep at most `max_movies`: linked by the priority datasets first, then by more
    datasets, then the more popular and voted; returns how many the cap dropped."""
    dropped_by_cap = 0
    if config.max_movies is not None and keep.sum() > config.max_movies:
        candidates = np.flatnonzero(keep)
        priority = set(config.priority_datasets)
        order = sorted(
            candidates.tolist(),
            key=lambda i: (
                -sum(d in priority for d in linked_by[i]),
                -len(linked_by[i]),
                -float(popularity[i]),
                -(movies[i].votes or 0),
                movies[i].corpus_id,
            ),
        )
        for i in order[config.max_movies :]:
            keep[i] = False
            dropped_by_cap += 1
            if linked_by[i]:
                drops.add(i, "max_movies")
    return dropped_by_cap
