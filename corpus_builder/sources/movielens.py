"""MovieLens movie lists with their IMDb/TMDB links, in every format `rar.data.movielens`
reads (`movies.csv` + `links.csv`, ML-100K `u.item`, ML-1M/10M `movies.dat`).

Only movie tables are read (not ratings), so even ml-25m is quick. Each variant becomes a
dataset `movielens-<variant>` whose keys are MovieLens movieIds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from corpus_builder.fields import genres, imdb_id, title_and_year
from corpus_builder.records import MovieRecord, SkipLog
from corpus_builder.sources.base import SourceResult
from rar.data.movielens import read_movies_100k, read_movies_csv, read_movies_dat

NAME = "movielens"
DEFAULT_PATHS = ["movielens/*"]


def variant_name(path: Path) -> str:
    """'ml-latest-small' for a directory; 'ml-1m' for 'ml-1m-movies.dat'."""
    name = path.name if path.is_dir() else path.stem
    match = re.match(r"(ml-(?:latest-small|[a-z0-9]+))", name)
    return match.group(1) if match else name


def _movie_table(path: Path) -> pd.DataFrame | None:
    """The movie table of a MovieLens directory or movie file (ratings are not needed)."""
    if path.is_dir():
        if (path / "movies.csv").is_file():
            return read_movies_csv(path)
        if (path / "u.item").is_file():
            return read_movies_100k(path)
        if (path / "movies.dat").is_file():
            return read_movies_dat(path / "movies.dat")
        return None
    if path.name == "u.item":
        return read_movies_100k(path.parent)
    if path.name == "movies.csv":
        return read_movies_csv(path.parent)
    if path.name.endswith("movies.dat"):
        return read_movies_dat(path)
    return None


def read(paths: list[Path], skips: SkipLog) -> SourceResult:
    result = SourceResult()
    for path in paths:
        movies = _movie_table(path)
        if movies is None:
            continue
        variant = variant_name(
            path if path.is_dir() or path.name.endswith("movies.dat") else path.parent
        )
        result.files.extend(
            sorted(
                p
                for p in path.iterdir()
                if p.name in {"movies.csv", "links.csv", "u.item", "u.genre", "movies.dat"}
            )
            if path.is_dir()
            else [path]
        )
        for row in movies.itertuples(index=False):
            movie_id = str(row.movieId)
            raw_title = str(row.title or "").strip()
            if raw_title.lower() in {"", "unknown"}:
                skips.skip(
                    NAME,
                    path,
                    None,
                    f"placeholder movie: movieId {movie_id} has title {raw_title!r}",
                )
                continue
            title, year = title_and_year(raw_title)
            record = MovieRecord(
                NAME,
                f"{variant}:{movie_id}",
                title,
                year,
                genres=genres(row.genres, "|"),
                imdb_id=imdb_id(row.imdbId),
                catalogue=f"movielens-{variant}",
            )
            index = result.add(record, f"movielens-{variant}", movie_id)
            if not pd.isna(row.tmdbId):
                result.dataset_keys.setdefault("tmdb", {}).setdefault(str(int(row.tmdbId)), index)
    return result
