"""One movie from the records `corpus_builder/merge.py` grouped into it: the most informative
value of each field with the source it came from (provenance), the year that keeps two IMDb ids
off one (title, year), and the corpus id (the IMDb id, else a stable hash of title and year).
`title_year_collisions` is the build check of the collisions that remain."""

from __future__ import annotations

import functools
import hashlib
import json
from collections import defaultdict

from corpus_builder.records import MovieRecord
from rar.corpus.movie import LIST_FIELDS, Movie
from rar.matching import normalize_title

# titles repeat across sources; normalising each distinct title once halves merge time
title_key = functools.lru_cache(maxsize=1 << 20)(normalize_title)


def stable_id(title: str, year: int | None) -> str:
    """Corpus id for a movie without an IMDb id: a hash of its normalised title and year."""
    digest = hashlib.sha1(f"{title_key(title)}|{year or ''}".encode()).hexdigest()
    return f"rar:{digest[:12]}"


def title_year_collisions(movies: list[Movie], max_examples: int = 50) -> dict:
    """(normalised title, year) pairs held by two or more distinct IMDb ids: a build check.

    Ranker output names movies by "Title (Year)", so such movies are indistinguishable there.
    """
    ids: dict[tuple[str, int], set[str]] = defaultdict(set)
    shown: dict[tuple[str, int], str] = {}
    for movie in movies:
        if movie.imdb_id and movie.year is not None:
            key = (title_key(movie.title), movie.year)
            ids[key].add(movie.imdb_id)
            shown.setdefault(key, movie.title)
    collisions = sorted((key, sorted(v)) for key, v in ids.items() if len(v) > 1)
    return {
        "count": len(collisions),
        "movies": sum(len(v) for _key, v in collisions),
        "examples": [
            {"title": shown[key], "year": key[1], "imdb_ids": v}
            for key, v in collisions[:max_examples]
        ],
    }


def _rank(record: MovieRecord, priority: dict[str, int]) -> tuple[int, int, str]:
    return (1 if record.weak else 0, priority.get(record.source, len(priority)), record.source_id)


def resolve_movie(records: list[MovieRecord], priority: dict[str, int]) -> dict:
    """One movie from its records: most informative value per field, with the winning source."""
    ranked = sorted(records, key=lambda r: _rank(r, priority))
    provenance: dict[str, object] = {}
    movie: dict[str, object] = {"title": _first(ranked, "title", provenance)}
    _resolve_year(ranked, movie, provenance)
    _resolve_lists(ranked, movie, provenance)
    # plot: the longest text
    plots = [r for r in ranked if r.plot]
    if plots:
        best = max(plots, key=lambda r: len(r.plot or ""))
        movie["plot"] = best.plot
        provenance["plot"] = best.source
    else:
        movie["plot"] = None
    movie["runtime"] = _first(ranked, "runtime", provenance)
    movie["rating"] = _first(ranked, "rating", provenance)
    with_votes = [r for r in ranked if r.votes is not None]
    if with_votes:
        best = max(with_votes, key=lambda r: r.votes or 0)
        movie["votes"] = best.votes
        provenance["votes"] = best.source
    else:
        movie["votes"] = None
    movie["imdb_id"] = _first(ranked, "imdb_id", provenance)
    movie["source_ids"] = _source_ids(records)
    movie["provenance"] = json.dumps(provenance, sort_keys=True)
    movie["_key"] = min(f"{r.source}:{r.source_id}" for r in records)
    return movie


def _first(ranked: list[MovieRecord], name: str, provenance: dict[str, object]):
    """Field `name` of the best-ranked record that has it (its source noted), else None."""
    for record in ranked:
        if record.filled(name):
            provenance[name] = record.source
            return getattr(record, name)
    return None


def _resolve_year(
    ranked: list[MovieRecord], movie: dict[str, object], provenance: dict[str, object]
) -> None:
    """The year comes from a record carrying the movie's IMDb id when one gives a year, so a
    title-matched record of another source cannot give the id another film's year; the id's
    other years are kept (`_id_years`, best first) as the fallbacks of a title+year collision."""
    imdb_id = next((r.imdb_id for r in ranked if r.imdb_id), None)
    with_id = [r for r in ranked if imdb_id and r.imdb_id == imdb_id and r.year is not None]
    if with_id:
        movie["year"] = with_id[0].year
        provenance["year"] = with_id[0].source
    else:
        movie["year"] = _first(ranked, "year", provenance)
    movie["_id_years"] = [(r.year, r.source) for r in with_id]


def _resolve_lists(
    ranked: list[MovieRecord], movie: dict[str, object], provenance: dict[str, object]
) -> None:
    """Genres: the union in priority order (provenance lists every contributing source).
    People: the longest list (ties: priority)."""
    genres: list[str] = []
    contributors: list[str] = []
    for record in ranked:
        added = [g for g in record.genres if g not in genres]
        if added:
            genres.extend(added)
            contributors.append(record.source)
    movie["genres"] = genres
    if contributors:
        provenance["genres"] = contributors
    for name in LIST_FIELDS[1:]:
        best = max(ranked, key=lambda r: len(getattr(r, name)), default=None)
        value = list(getattr(best, name)) if best is not None else []
        movie[name] = value
        if value:
            provenance[name] = best.source


def _source_ids(records: list[MovieRecord]) -> str:
    """Every source's ids of the movie's records, as sorted JSON."""
    source_ids: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if record.source_id not in source_ids[record.source]:
            source_ids[record.source].append(record.source_id)
    return json.dumps(
        {s: sorted(v) for s, v in sorted(source_ids.items())}, ensure_ascii=False, sort_keys=True
    )


def avoid_title_year_collisions(movies: list[dict]) -> int:
    """Where two IMDb ids share a (title, year), move one to another year its own id's records give.

    Only years from records carrying the movie's id are used, and only free ones, so every
    year stays consistent with the id; collisions nothing can resolve remain (and are counted).
    Returns how many years were changed.
    """
    holders: dict[tuple[str, int], set[str]] = defaultdict(set)
    for movie in movies:
        if movie["imdb_id"] and movie["year"] is not None:
            holders[(title_key(str(movie["title"])), movie["year"])].add(movie["imdb_id"])
    changed = 0
    for movie in sorted(movies, key=lambda m: m["imdb_id"] or ""):
        imdb, year = movie["imdb_id"], movie["year"]
        if not imdb or year is None:
            continue
        key = title_key(str(movie["title"]))
        if len(holders[(key, year)]) < 2:
            continue
        for other_year, source in movie["_id_years"]:
            if other_year != year and not holders[(key, other_year)]:
                holders[(key, year)].discard(imdb)
                holders[(key, other_year)].add(imdb)
                movie["year"] = other_year
                provenance = json.loads(movie["provenance"])
                provenance["year"] = source
                movie["provenance"] = json.dumps(provenance, sort_keys=True)
                changed += 1
                break
    for movie in movies:
        del movie["_id_years"]
    return changed


def assign_ids(movies: list[dict]) -> None:
    """IMDb id when known, else `rar:<hash>`; hash collisions get `-2`, `-3` in a fixed order."""
    taken: dict[str, int] = {}
    ordered = sorted(
        range(len(movies)), key=lambda m: (movies[m]["imdb_id"] is None, movies[m]["_key"])
    )
    for m in ordered:
        movie = movies[m]
        base = movie["imdb_id"] or stable_id(str(movie["title"]), movie["year"])
        count = taken.get(base, 0) + 1
        taken[base] = count
        movie["corpus_id"] = base if count == 1 else f"{base}-{count}"
        del movie["_key"]
