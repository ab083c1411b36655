"""The official IMDb non-commercial datasets (https://datasets.imdbws.com), gzipped TSV with
`\\N` for nulls: `title.basics` (kept: titleType movie / tvMovie, adult titles dropped),
`title.ratings`, `title.crew` (directors, writers), `title.principals` (actors/actresses, first
five by ordering) and `name.basics` (names of those people only).

Files are streamed in chunks with pandas, keeping only the rows of kept titles, so the
multi-gigabyte principals file never has to fit in memory at once.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pandas as pd

from corpus_builder.fields import genres, imdb_id
from corpus_builder.records import BadInputError, MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult

NAME = "imdb_tsv"
DEFAULT_PATHS = ["imdb/*.tsv.gz", "imdb/*.tsv"]
TITLE_TYPES = {"movie", "tvMovie"}
CAST_PER_MOVIE = 5
CHUNK_ROWS = 500_000
COLUMNS = {
    "title.basics": [
        "tconst",
        "titleType",
        "primaryTitle",
        "isAdult",
        "startYear",
        "runtimeMinutes",
        "genres",
    ],
    "title.ratings": ["tconst", "averageRating", "numVotes"],
    "title.crew": ["tconst", "directors", "writers"],
    "title.principals": ["tconst", "ordering", "nconst", "category"],
    "name.basics": ["nconst", "primaryName"],
}


def _kind(path: Path) -> str | None:
    name = path.name
    for kind in COLUMNS:
        if name.startswith(kind + "."):
            return kind
    return None


def _chunks(path: Path, kind: str):
    """DataFrame chunks of the needed columns; header and parse errors name the file."""
    try:
        header = pd.read_csv(path, sep="\t", nrows=0, quoting=csv.QUOTE_NONE).columns.tolist()
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, EOFError) as exc:
        raise BadInputError(f"{path}:1: cannot read as a gzipped IMDb TSV ({exc})") from None
    missing = [c for c in COLUMNS[kind] if c not in header]
    if missing:
        raise BadInputError(
            f"{path}:1: missing column(s) {', '.join(missing)} for {kind}; header is {header}"
        )
    try:
        yield from pd.read_csv(
            path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, na_values=["\\N"], keep_default_na=False,
            usecols=COLUMNS[kind], chunksize=CHUNK_ROWS, encoding="utf-8",
        )  # fmt: skip
    except pd.errors.ParserError as exc:
        raise BadInputError(f"{path}: malformed row ({exc})") from None
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: not UTF-8 ({exc})") from None


def read(paths: list[Path], skips: SkipLog) -> SourceResult:
    """Movies from title.basics, then their ratings, then their people (ids from title.crew
    and title.principals, named from name.basics); each later file is read for kept titles only."""
    result = SourceResult(files=list(paths))
    files: dict[str, Path] = {}
    for path in paths:
        kind = _kind(path)
        if kind is not None:
            files.setdefault(kind, path)
    if "title.basics" not in files:
        raise BadInputError(
            f"IMDb TSV input needs title.basics.tsv.gz (got {', '.join(p.name for p in paths)})"
        )
    movies, dropped = _read_basics(files["title.basics"], skips)
    if "title.ratings" in files:
        _add_ratings(files["title.ratings"], movies)
    people_of = _people(files, pd.Index(sorted(movies)))  # kept ids, built once
    _name_people(files, movies, people_of, skips)
    for reason, count in dropped.items():
        skips.note(NAME, f"filtered {reason} titles", count)
    for tconst in sorted(movies):
        result.add(movies[tconst])
    return result


def _read_basics(basics: Path, skips: SkipLog) -> tuple[dict[str, MovieRecord], dict[str, int]]:
    """A record per movie / TV movie of title.basics; adult titles are counted and left out."""
    movies: dict[str, MovieRecord] = {}
    dropped: dict[str, int] = defaultdict(int)
    for chunk in _chunks(basics, "title.basics"):
        chunk = chunk[chunk["titleType"].isin(TITLE_TYPES)]
        adult = chunk["isAdult"].fillna("0") == "1"
        dropped["adult"] += int(adult.sum())
        for row in chunk[~adult].itertuples(index=False):
            tconst = imdb_id(row.tconst)
            if (
                tconst is None
                or not isinstance(row.primaryTitle, str)
                or not row.primaryTitle.strip()
            ):
                skips.skip(NAME, basics, None, f"bad row: tconst {row.tconst!r} has no id or title")
                continue
            year = (
                int(row.startYear)
                if isinstance(row.startYear, str) and row.startYear.isdigit()
                else None
            )
            runtime = (
                float(row.runtimeMinutes)
                if isinstance(row.runtimeMinutes, str) and row.runtimeMinutes.isdigit()
                else None
            )
            movies[tconst] = MovieRecord(
                NAME, tconst, " ".join(row.primaryTitle.split()), year,
                genres=genres(row.genres) if isinstance(row.genres, str) else [],
                runtime=runtime, imdb_id=tconst,
            )  # fmt: skip
    return movies, dropped


def _add_ratings(path: Path, movies: dict[str, MovieRecord]) -> None:
    """Rating and votes of the kept movies, from title.ratings."""
    for chunk in _chunks(path, "title.ratings"):
        for tconst, rating, votes in zip(
            chunk["tconst"], chunk["averageRating"], chunk["numVotes"], strict=True
        ):
            record = movies.get(tconst)
            if record is not None:
                record.rating = float(rating) if isinstance(rating, str) else None
                record.votes = int(votes) if isinstance(votes, str) and votes.isdigit() else None


def _people(files: dict[str, Path], kept: pd.Index) -> dict[str, dict[str, list[str]]]:
    """Person ids per kept movie: directors and writers (title.crew), and the first
    CAST_PER_MOVIE actors by ordering (title.principals)."""
    people_of: dict[str, dict[str, list[str]]] = defaultdict(
        lambda: {"directors": [], "writers": [], "cast": []}
    )
    if "title.crew" in files:
        for chunk in _chunks(files["title.crew"], "title.crew"):
            chunk = chunk[chunk["tconst"].isin(kept)]
            for tconst, directors, writers in zip(
                chunk["tconst"], chunk["directors"], chunk["writers"], strict=True
            ):
                entry = people_of[tconst]
                entry["directors"] = directors.split(",") if isinstance(directors, str) else []
                entry["writers"] = writers.split(",") if isinstance(writers, str) else []
    if "title.principals" in files:
        cast: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for chunk in _chunks(files["title.principals"], "title.principals"):
            chunk = chunk[
                chunk["tconst"].isin(kept) & chunk["category"].isin(["actor", "actress", "self"])
            ]
            for tconst, ordering, nconst in zip(
                chunk["tconst"], chunk["ordering"], chunk["nconst"], strict=True
            ):
                cast[tconst].append((int(ordering) if str(ordering).isdigit() else 999, nconst))
        for tconst, entries in cast.items():
            people_of[tconst]["cast"] = [n for _, n in sorted(entries)[:CAST_PER_MOVIE]]
    return people_of


def _name_people(
    files: dict[str, Path],
    movies: dict[str, MovieRecord],
    people_of: dict[str, dict[str, list[str]]],
    skips: SkipLog,
) -> None:
    """Set each movie's directors, writers and cast to the names name.basics gives their ids;
    ids without a name are left out and counted as one skip."""
    names: dict[str, str] = {}
    if people_of and "name.basics" in files:
        wanted = {n for entry in people_of.values() for ids in entry.values() for n in ids}
        for chunk in _chunks(files["name.basics"], "name.basics"):
            chunk = chunk[chunk["nconst"].isin(wanted)]
            names.update(zip(chunk["nconst"], chunk["primaryName"], strict=True))
    unnamed = 0
    for tconst, entry in people_of.items():
        record = movies[tconst]
        for role, ids in entry.items():
            resolved = [names[n] for n in ids if isinstance(names.get(n), str)]
            unnamed += len(ids) - len(resolved)
            setattr(record, role, resolved)
    if unnamed:
        skips.skip(
            NAME,
            files.get("name.basics", files["title.basics"]),
            None,
            f"unresolved person ids: {unnamed} crew/cast ids have no name.basics row",
        )
