"""MovieLens ratings -> user sessions for retriever pretraining.

Formats, auto-detected from the directory:
- "csv"  (ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m): `ratings.csv`, `movies.csv`,
  optional `links.csv` (imdbId, tmdbId); UTF-8 with a header row.
- "100k" (ml-100k): `u.data` (user item rating timestamp, tab-separated), `u.item`
  (pipe-separated, latin-1; 19 genre flags named by `u.genre`; no IMDb ids).
- "dat"  (ml-1m, ml-10m): `ratings.dat` and `movies.dat`, "::"-separated (ML-1M is latin-1;
  files are read as UTF-8 when they decode as UTF-8, else latin-1).

Sessions: each user's ratings sorted by timestamp (ties keep file order); a new session
starts when the gap to the previous rating is *more than* 30 minutes (a gap of exactly
1800 s continues the session). Sessions shorter than 2 are dropped and counted. Sessions keep
all their items; the 64-item model input cap is applied where sequences are made
(`Session.last()`), so a long session feeds its most recent 64 items. Splits are 8:1:1 over
sessions, shuffled with a seed (val and test get floor(n/10) each, train the rest).
Sessionising is vectorised with numpy: ML-20M's 20M ratings take seconds, not minutes.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rar.data.errors import DataFormatError, read_table, read_text, require_columns
from rar.errors import MissingPathError

GAP_SECONDS = 30 * 60
MIN_SESSION_LENGTH = 2
MAX_HISTORY = 64
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


@dataclass(eq=False)
class Session:
    """One user's burst of ratings. `items` are MovieLens movieIds as strings, oldest first;
    `timestamps` (seconds, numpy int64) align with them."""

    user_id: str
    items: list[str]
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.items)

    def last(self, n: int = MAX_HISTORY) -> list[str]:
        """The most recent `n` items: what a model with a 64-item input sees."""
        return self.items[-n:] if n > 0 else []


@dataclass
class Sessionized:
    sessions: list[Session]
    dropped_sessions: int  # sessions shorter than min_length
    dropped_interactions: int  # ratings in those sessions


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


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _user_time_order(users: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Permutation sorting by user, then time, ties in file order. One stable argsort of a
    combined int64 key (fast on the mostly pre-sorted MovieLens files); lexsort otherwise."""
    user_codes, uniques = pd.factorize(users, sort=True)
    t_min = int(times.min())
    span = int(times.max()) - t_min + 1
    if len(uniques) * span < 2**62:
        key = user_codes.astype(np.int64) * span + (times - t_min)
        return np.argsort(key, kind="stable")
    return np.lexsort((np.arange(len(users)), times, user_codes))


def sessionize(
    ratings: pd.DataFrame,
    gap_seconds: int = GAP_SECONDS,
    min_length: int = MIN_SESSION_LENGTH,
) -> Sessionized:
    """Split each user's ratings into sessions at gaps longer than `gap_seconds`."""
    require_columns(ratings, ("userId", "movieId", "timestamp"), Path("<ratings>"))
    n = len(ratings)
    if n == 0:
        return Sessionized([], 0, 0)
    users = ratings["userId"].to_numpy()
    items = ratings["movieId"].to_numpy()
    times = ratings["timestamp"].to_numpy().astype(np.int64, copy=False)
    order = _user_time_order(users, times)
    users, items, times = users[order], items[order], times[order]
    starts_mask = np.ones(n, dtype=bool)
    starts_mask[1:] = (users[1:] != users[:-1]) | (np.diff(times) > gap_seconds)
    starts = np.flatnonzero(starts_mask)
    ends = np.append(starts[1:], n)
    lengths = ends - starts
    keep = lengths >= min_length
    # One shared str object per distinct movie: 20M items cost pointers, not strings.
    codes, unique_items = pd.factorize(items)
    names = np.array([str(x) for x in unique_items.tolist()], dtype=object)[codes].tolist()
    kept_starts, kept_ends = starts[keep], ends[keep]
    user_names = [str(u) for u in users[kept_starts].tolist()]
    with _gc_paused():  # millions of small containers: cyclic GC passes would dominate
        sessions = [
            Session(user, names[s:e], times[s:e])
            for user, s, e in zip(user_names, kept_starts.tolist(), kept_ends.tolist(), strict=True)
        ]
    return Sessionized(sessions, int((~keep).sum()), int(lengths[~keep].sum()))


def split_sessions(sessions: list[Session], seed: int = 0) -> dict[str, list[Session]]:
    """8:1:1 by session, shuffled with `seed`; each split keeps the input order."""
    n = len(sessions)
    permutation = np.random.default_rng(seed).permutation(n)
    tenth = n // 10
    parts = {
        "test": permutation[:tenth],
        "val": permutation[tenth : 2 * tenth],
        "train": permutation[2 * tenth :],
    }
    return {name: [sessions[i] for i in np.sort(parts[name])] for name in ("train", "val", "test")}


def movielens_splits(
    path: Path,
    seed: int = 0,
    gap_seconds: int = GAP_SECONDS,
    min_length: int = MIN_SESSION_LENGTH,
) -> dict[str, list[Session]]:
    """Train/val/test sessions of the MovieLens release in `path`."""
    result = sessionize(load_movielens(path).ratings, gap_seconds, min_length)
    if not result.sessions:
        raise DataFormatError(f"{path}: no session has {min_length} or more ratings")
    return split_sessions(result.sessions, seed)


@dataclass
class MovieLensStats:
    variant: str
    users: int
    movies: int  # distinct rated movies
    catalogue: int  # rows of the movie table
    interactions: int  # ratings
    sessions: int  # kept sessions
    session_interactions: int  # ratings inside kept sessions
    dropped: int  # sessions shorter than the minimum
    dropped_interactions: int
    long_sessions: int  # sessions longer than the 64-item input cap
    train: int
    val: int
    test: int

    def as_dict(self) -> dict[str, int | str]:
        return dict(self.__dict__)


def movielens_stats(data: MovieLensData, seed: int = 0) -> MovieLensStats:
    """Counts for `rar data stats`."""
    result = sessionize(data.ratings)
    splits = split_sessions(result.sessions, seed)
    lengths = np.fromiter((len(s) for s in result.sessions), dtype=np.int64)
    return MovieLensStats(
        variant=data.variant,
        users=int(data.ratings["userId"].nunique()),
        movies=int(data.ratings["movieId"].nunique()),
        catalogue=len(data.movies),
        interactions=len(data.ratings),
        sessions=len(result.sessions),
        session_interactions=int(lengths.sum()),
        dropped=result.dropped_sessions,
        dropped_interactions=result.dropped_interactions,
        long_sessions=int((lengths > MAX_HISTORY).sum()),
        train=len(splits["train"]),
        val=len(splits["val"]),
        test=len(splits["test"]),
    )
