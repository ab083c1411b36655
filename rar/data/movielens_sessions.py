"""MovieLens ratings -> user sessions and their train/val/test splits for retriever pretraining
(the releases are read by `rar.data.movielens`).

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

from rar.data.errors import DataFormatError, require_columns
from rar.data.movielens import MovieLensData, load_movielens

GAP_SECONDS = 30 * 60
MIN_SESSION_LENGTH = 2
MAX_HISTORY = 64


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
