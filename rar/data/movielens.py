"""MovieLens releases -> ratings and movie tables, for retriever pretraining and the corpus.

Formats, auto-detected from the directory:
- "csv"  (ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m): `ratings.csv`, `movies.csv`,
  optional `links.csv` (imdbId, tmdbId); UTF-8 with a header row.
- "100k" (ml-100k): `u.data` (user item rating timestamp, tab-separated), `u.item`
  (pipe-separated, latin-1; 19 genre flags named by `u.genre`; no IMDb ids).
- "dat"  (ml-1m, ml-10m): `ratings.dat` and `movies.dat`, "::"-separated (ML-1M is latin-1;
  files are read as UTF-8 when they decode as UTF-8, else latin-1).

Sessions and splits are cut in `rar.data.movielens_sessions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rar.data.errors import DataFormatError, read_table, read_text, require_columns
from rar.errors import MissingPathError

RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MOVIELENS_MOVIE_COLUMNS = ("movieId", "title", "genres", "imdbId", "tmdbId")
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


@dataclass
class MovieLensData:
    """Ratings (userId, movieId, rating, timestamp) and movies (movieId, title, genres,
    imdbId "tt..." or None, tmdbId nullable) of one MovieLens release."""

    variant: str  # directory name, e.g. "ml-latest-small", "ml-100k"
    format: str  # "csv" | "100k" | "dat"
    path: Path
    ratings: pd.DataFrame
    movies: pd.DataFrame


def detect_format(path: Path) -> str:
    """ "csv", "100k" or "dat" from the files present in a MovieLens directory."""
    path = Path(path)
    if not path.is_dir():
        raise MissingPathError(f"{path}: MovieLens directory not found")
    if (path / "ratings.csv").is_file():
        return "csv"
    if (path / "u.data").is_file():
        return "100k"
    if (path / "ratings.dat").is_file():
        return "dat"
    raise DataFormatError(
        f"{path}: not a MovieLens directory (expected ratings.csv, u.data or ratings.dat)"
    )


def _decode_any(path: Path, encodings: tuple[str, ...] = ("utf-8", "latin-1")) -> str:
    for encoding in encodings[:-1]:
        try:
            return path.read_text(encoding=encoding)
        except UnicodeDecodeError:
            continue
    return read_text(path, encodings[-1])


def _check_complete(frame: pd.DataFrame, path: Path, header_lines: int) -> None:
    bad = frame.isna().any(axis=1).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{path}, line {row + 1 + header_lines}: expected userId, movieId, rating, timestamp"
        )


def _typed_ratings(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    try:
        return pd.DataFrame(
            {
                "userId": frame["userId"].astype(np.int64),
                "movieId": frame["movieId"].astype(np.int64),
                "rating": frame["rating"].astype(np.float32),
                "timestamp": frame["timestamp"].astype(np.int64),
            }
        )
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"{path}: non-numeric rating fields ({exc})") from None


def read_ratings_csv(path: Path) -> pd.DataFrame:
    header = read_table(path, nrows=0)
    require_columns(header, RATING_COLUMNS, path)
    try:
        frame = read_table(path, usecols=list(RATING_COLUMNS), engine="pyarrow")
    except DataFormatError:
        _raise_bad_line(path, len(header.columns))
        raise
    _check_complete(frame, path, header_lines=1)
    return _typed_ratings(frame, path)


def _raise_bad_line(path: Path, fields: int) -> None:
    """On a parse error (only then), find and name the first line with the wrong field count."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip() and line.count(",") + 1 != fields:
                raise DataFormatError(
                    f"{path}, line {line_no}: expected {fields} comma-separated fields, "
                    f"got {line.count(',') + 1}"
                )


def read_ratings_dat(path: Path) -> pd.DataFrame:
    """`user::movie::rating::timestamp` lines (ML-1M/10M). Read with the fast C parser by
    splitting on ':' and keeping fields 0, 2, 4, 6 (the '::' leaves empty fields between)."""
    frame = read_table(
        path, sep=":", header=None, usecols=[0, 2, 4, 6], names=range(7), encoding="latin-1"
    )
    frame.columns = list(RATING_COLUMNS)
    _check_complete(frame, path, header_lines=0)
    return _typed_ratings(frame, path)


def read_ratings_100k(path: Path) -> pd.DataFrame:
    frame = read_table(path, sep="\t", header=None, names=list(RATING_COLUMNS))
    _check_complete(frame, path, header_lines=0)
    return _typed_ratings(frame, path)


def _imdb(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.startswith("tt"):
        return text
    return f"tt{int(float(text)):07d}"


def read_movies_csv(directory: Path) -> pd.DataFrame:
    path = directory / "movies.csv"
    movies = read_table(path, dtype={"movieId": np.int64, "title": str, "genres": str})
    require_columns(movies, ("movieId", "title", "genres"), path)
    links_path = directory / "links.csv"
    if links_path.is_file():
        links = read_table(links_path, dtype=str, keep_default_na=False)
        require_columns(links, ("movieId", "imdbId", "tmdbId"), links_path)
        links = links.assign(
            movieId=links["movieId"].astype(np.int64),
            imdbId=links["imdbId"].map(_imdb),
            tmdbId=pd.to_numeric(links["tmdbId"], errors="coerce").astype("Int64"),
        )
        movies = movies.merge(links[["movieId", "imdbId", "tmdbId"]], on="movieId", how="left")
    else:
        movies = movies.assign(imdbId=None, tmdbId=pd.array([pd.NA] * len(movies), dtype="Int64"))
    return _movie_frame(movies)


def read_movies_dat(path: Path) -> pd.DataFrame:
    """`id::title::genres` lines (ML-1M/10M `movies.dat`)."""
    rows = []
    for line_no, line in enumerate(_decode_any(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            raise DataFormatError(f"{path}, line {line_no}: expected 'movieId::title::genres'")
        rows.append((int(parts[0]), parts[1].strip(), parts[2].strip()))
    frame = pd.DataFrame(rows, columns=["movieId", "title", "genres"])
    frame["imdbId"] = None
    frame["tmdbId"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    return _movie_frame(frame)


def read_movies_100k(directory: Path) -> pd.DataFrame:
    """`u.item`: id|title|release date|video release date|IMDb URL|19 genre flags (latin-1)."""
    path = directory / "u.item"
    genres = list(ML100K_GENRES)
    genre_path = directory / "u.genre"
    if genre_path.is_file():
        pairs = [ln.split("|") for ln in read_text(genre_path, "latin-1").splitlines() if "|" in ln]
        genres = [name for name, _ in sorted(pairs, key=lambda p: int(p[1]))]
    rows = []
    for line_no, line in enumerate(read_text(path, "latin-1").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 5 + len(genres) or not parts[0].isdigit():
            raise DataFormatError(
                f"{path}, line {line_no}: expected {5 + len(genres)} '|'-separated fields "
                f"(id|title|release date|video release date|IMDb URL|genre flags)"
            )
        flags = parts[5:]
        names = "|".join(g for g, f in zip(genres, flags, strict=True) if f.strip() == "1")
        rows.append((int(parts[0]), parts[1].strip(), names))
    frame = pd.DataFrame(rows, columns=["movieId", "title", "genres"])
    frame["imdbId"] = None
    frame["tmdbId"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    return _movie_frame(frame)


def _movie_frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[list(MOVIELENS_MOVIE_COLUMNS)].copy()
    frame["imdbId"] = frame["imdbId"].astype(object).where(frame["imdbId"].notna(), None)
    return frame.sort_values("movieId", kind="stable").reset_index(drop=True)


def load_movielens_movies(path: Path) -> pd.DataFrame:
    """The movie table alone, from a MovieLens directory or a movies file
    (`movies.csv`, `movies.dat` / `ml-1m-movies.dat`, `u.item`)."""
    path = Path(path)
    if path.is_dir():
        fmt = detect_format(path)
        if fmt == "csv":
            return read_movies_csv(path)
        if fmt == "100k":
            return read_movies_100k(path)
        return read_movies_dat(path / "movies.dat")
    if path.name == "u.item":
        return read_movies_100k(path.parent)
    if path.suffix == ".csv":
        return read_movies_csv(path.parent)
    if path.suffix == ".dat":
        return read_movies_dat(path)
    raise DataFormatError(f"{path}: not a MovieLens movie file (movies.csv, movies.dat, u.item)")


def load_movielens(path: Path) -> MovieLensData:
    """Ratings and movies of the MovieLens release in `path` (format auto-detected)."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "csv":
        ratings = read_ratings_csv(path / "ratings.csv")
        movies = read_movies_csv(path)
    elif fmt == "100k":
        ratings = read_ratings_100k(path / "u.data")
        movies = read_movies_100k(path)
    else:
        ratings = read_ratings_dat(path / "ratings.dat")
        movies = read_movies_dat(path / "movies.dat")
    if ratings.empty:
        raise DataFormatError(f"{path}: no ratings")
    return MovieLensData(path.name, fmt, path, ratings, movies)
