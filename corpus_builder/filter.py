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


def filter_movies(
    movies: list[Movie],
    linked_by: list[list[str]],
    popularity: np.ndarray,
    config: FilterConfig,
    max_examples: int = 100,
) -> FilterResult:
    """`linked_by[i]` names the datasets linking movie i; `popularity[i]` ranks movies for max_movies."""
    n = len(movies)
    keep = np.ones(n, dtype=bool)
    dropped_by_field: dict[str, int] = {}
    kept_incomplete = 0
    dropped_linked: list[dict] = []
    dropped_linked_count = 0

    def drop_linked(i: int, reason: str) -> None:
        nonlocal dropped_linked_count
        dropped_linked_count += 1
        if len(dropped_linked) < max_examples:
            dropped_linked.append(
                {
                    "corpus_id": movies[i].corpus_id,
                    "title": movies[i].title,
                    "datasets": linked_by[i],
                    "reason": reason,
                }
            )

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
            drop_linked(i, reason)

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
                drop_linked(i, "max_movies")

    report = {
        "movies_in": n,
        "movies_kept": int(keep.sum()),
        "required_fields": list(config.required_fields),
        "keep_linked": config.keep_linked,
        "dropped": dict(sorted(dropped_by_field.items())),
        "dropped_by_max_movies": dropped_by_cap,
        "kept_linked_incomplete": kept_incomplete,
        "dropped_linked": dropped_linked_count,
        "dropped_linked_examples": dropped_linked,
    }
    return FilterResult(keep, report)
