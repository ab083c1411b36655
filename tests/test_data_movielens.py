"""MovieLens loaders (real ml-latest-small / ml-100k / ml-1m movies, and files in the official
ML-20M CSV and ML-1M .dat formats written here), sessionisation and splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rar.data.errors import DataFormatError
from rar.data.movielens import detect_format, load_movielens, load_movielens_movies
from rar.data.movielens_sessions import (
    GAP_SECONDS,
    Session,
    movielens_splits,
    movielens_stats,
    sessionize,
    split_sessions,
)


@pytest.fixture(scope="module")
def small(data_dir):
    return load_movielens(data_dir / "movielens" / "ml-latest-small")


@pytest.mark.needs_data
def test_real_ml_latest_small(small):
    assert small.format == "csv" and small.variant == "ml-latest-small"
    assert len(small.ratings) == 100_004
    assert list(small.ratings.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert len(small.movies) == 9_125
    toy = small.movies.set_index("movieId").loc[1]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["imdbId"] == "tt0114709" and toy["tmdbId"] == 862
    assert "Animation" in toy["genres"].split("|")


@pytest.mark.needs_data
def test_real_ml_100k(data_dir):
    data = load_movielens(data_dir / "movielens" / "ml-100k")
    assert data.format == "100k"
    assert len(data.ratings) == 100_000 and data.ratings["userId"].nunique() == 943
    assert len(data.movies) == 1_682
    assert data.movies["imdbId"].isna().all()  # ML-100K has no IMDb ids
    toy = data.movies.set_index("movieId").loc[1]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["genres"] == "Animation|Children's|Comedy"


@pytest.mark.needs_data
def test_real_ml_1m_movies_dat(data_dir):
    movies = load_movielens_movies(data_dir / "movielens" / "ml-1m-movies.dat")
    assert len(movies) == 3_883
    assert movies.iloc[0]["title"] == "Toy Story (1995)"
    assert movies.iloc[0]["genres"] == "Animation|Children's|Comedy"
    # latin-1 titles decode (e.g. "Misérables")
    assert movies["title"].str.contains("é").any()


def write_ml20m(tmp_path):
    """A tiny release in the ML-20M/25M CSV format (header rows, quoted titles, links)."""
    root = tmp_path / "ml-20m"
    root.mkdir()
    (root / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        "1,2,3.5,1112486027\n1,29,3.5,1112484676\n1,32,3.5,1112484819\n"
        "2,3,4.0,974820889\n2,62,5.0,974820598\n"
        "3,1,4.0,944919407\n",
        encoding="utf-8",
    )
    (root / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        "2,Jumanji (1995),Adventure|Children|Fantasy\n"
        "3,Grumpier Old Men (1995),Comedy|Romance\n"
        '29,"City of Lost Children, The (Cité des enfants perdus, La) (1995)",Adventure|Drama\n'
        "32,Twelve Monkeys (a.k.a. 12 Monkeys) (1995),Mystery|Sci-Fi|Thriller\n"
        "62,Mr. Holland's Opus (1995),Drama\n",
        encoding="utf-8",
    )
    (root / "links.csv").write_text(
        "movieId,imdbId,tmdbId\n1,0114709,862\n2,0113497,8844\n3,0113228,15602\n"
        "29,0112682,902\n32,0114746,63\n62,0113862,\n",
        encoding="utf-8",
    )
    return root


def test_ml20m_csv_written_in_official_format(tmp_path):
    data = load_movielens(write_ml20m(tmp_path))
    assert data.format == "csv"
    movies = data.movies.set_index("movieId")
    assert movies.loc[29, "title"].startswith("City of Lost Children, The (Cité")
    assert movies.loc[62, "imdbId"] == "tt0113862" and pd.isna(movies.loc[62, "tmdbId"])
    stats = movielens_stats(data)
    assert (stats.users, stats.interactions, stats.movies) == (3, 6, 6)
    # user 1: 1112484676, +143 s, +1208 s -> one session of 3; user 2: 291 s -> one of 2;
    # user 3: a single rating -> dropped
    assert (stats.sessions, stats.dropped, stats.dropped_interactions) == (2, 1, 1)


def write_ml1m(tmp_path):
    """ML-1M: '::'-separated ratings.dat and latin-1 movies.dat, no header."""
    root = tmp_path / "ml-1m"
    root.mkdir()
    (root / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n1::914::3::978301968\n"
        "1::3408::4::978300275\n2::1357::5::978298709\n2::3068::4::978299000\n",
        encoding="latin-1",
    )
    (root / "movies.dat").write_text(
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "914::My Fair Lady (1964)::Musical|Romance\n"
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "1357::Shine (1996)::Drama|Romance\n"
        "3068::Verdict, The (1982)::Drama\n"
        "3408::Erin Brockovich (2000)::Drama\n"
        "3409::Misérables, Les (1995)::Drama\n",
        encoding="latin-1",
    )
    return root


def test_ml1m_dat_written_in_official_format(tmp_path):
    root = write_ml1m(tmp_path)
    assert detect_format(root) == "dat"
    data = load_movielens(root)
    assert len(data.ratings) == 6 and data.ratings["timestamp"].dtype == np.int64
    assert data.movies.set_index("movieId").loc[3409, "title"] == "Misérables, Les (1995)"
    result = sessionize(data.ratings)
    # user 1 sorted: 978300275, 978300760 (+485), 978301968 (+1208), 978302109 (+141)
    assert [s.items for s in result.sessions] == [["3408", "1193", "914", "661"], ["1357", "3068"]]
    assert result.sessions[0].user_id == "1"
    assert list(result.sessions[0].timestamps) == [978300275, 978300760, 978301968, 978302109]


def ratings(rows):
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])


def test_gap_of_exactly_30_minutes_continues_the_session():
    frame = ratings(
        [
            (1, 10, 4.0, 0),
            (1, 11, 4.0, GAP_SECONDS),  # exactly 30 min: same session
            (1, 12, 4.0, 2 * GAP_SECONDS + 1),  # 30 min + 1 s: new session
            (1, 13, 4.0, 2 * GAP_SECONDS + 2),
        ]
    )
    result = sessionize(frame)
    assert [s.items for s in result.sessions] == [["10", "11"], ["12", "13"]]


def test_ties_keep_file_order_and_users_never_share_a_session():
    frame = ratings([(2, 5, 1, 100), (1, 7, 1, 50), (1, 9, 1, 50), (2, 6, 1, 100), (1, 8, 1, 49)])
    result = sessionize(frame)
    assert [(s.user_id, s.items) for s in result.sessions] == [
        ("1", ["8", "7", "9"]),
        ("2", ["5", "6"]),
    ]


def test_short_sessions_are_dropped_and_counted():
    frame = ratings([(1, 1, 1, 0), (1, 2, 1, 10_000), (1, 3, 1, 10_010), (2, 4, 1, 0)])
    result = sessionize(frame)
    assert [s.items for s in result.sessions] == [["2", "3"]]
    assert (result.dropped_sessions, result.dropped_interactions) == (2, 2)
    longer = sessionize(frame, min_length=3)
    assert longer.sessions == [] and longer.dropped_sessions == 3


def test_long_sessions_keep_all_items_and_cap_at_64_for_model_input():
    frame = ratings([(1, i, 1, i) for i in range(100)])
    (session,) = sessionize(frame).sessions
    assert len(session) == 100
    assert session.last() == [str(i) for i in range(36, 100)]
    assert session.last(3) == ["97", "98", "99"]


def test_split_is_8_1_1_deterministic_and_disjoint():
    sessions = [Session(str(i), [str(i), str(i + 1)], np.array([0, 1])) for i in range(105)]
    a = split_sessions(sessions, seed=0)
    b = split_sessions(sessions, seed=0)
    c = split_sessions(sessions, seed=1)
    assert {k: len(v) for k, v in a.items()} == {"train": 85, "val": 10, "test": 10}
    assert [s.user_id for s in a["test"]] == [s.user_id for s in b["test"]]
    assert [s.user_id for s in a["test"]] != [s.user_id for s in c["test"]]
    ids = [s.user_id for split in a.values() for s in split]
    assert sorted(ids) == sorted(s.user_id for s in sessions)


@pytest.mark.needs_data
def test_movielens_splits_on_real_data(data_dir):
    splits = movielens_splits(data_dir / "movielens" / "ml-100k", seed=0)
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 1827, "val": 228, "test": 228}
    again = movielens_splits(data_dir / "movielens" / "ml-100k", seed=0)
    assert [s.items for s in again["val"]] == [s.items for s in splits["val"]]
    assert all(len(s) >= 2 for s in splits["train"])


# ------------------------------------------------------------------ bad input


def test_missing_rating_column_names_file_and_column(tmp_path):
    root = write_ml20m(tmp_path)
    (root / "ratings.csv").write_text("userId,movieId,score,timestamp\n1,2,3.5,1\n")
    with pytest.raises(DataFormatError, match=r"ratings\.csv.*'rating'"):
        load_movielens(root)
    (root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,3.5,1\n1,3\n")
    with pytest.raises(DataFormatError, match=r"ratings\.csv, line 3: expected 4 comma-sep"):
        load_movielens(root)


def test_malformed_dat_line_names_file_and_line(tmp_path):
    root = write_ml1m(tmp_path)
    (root / "ratings.dat").write_text("1::1193::5::978300760\n1::661\n")
    with pytest.raises(DataFormatError, match=r"ratings\.dat, line 2"):
        load_movielens(root)
    (root / "ratings.dat").write_text("1::1193::5::978300760\n")
    (root / "movies.dat").write_text("1193::One Flew\n", encoding="latin-1")
    with pytest.raises(DataFormatError, match=r"movies\.dat, line 1: expected 'movieId::title"):
        load_movielens(root)


def test_undecodable_csv_names_the_encoding(tmp_path):
    root = write_ml20m(tmp_path)
    (root / "movies.csv").write_bytes(b"movieId,title,genres\n1,Caf\xe9 (1995),Drama\n")
    with pytest.raises(DataFormatError, match=r"movies\.csv: cannot decode the file as utf-8"):
        load_movielens(root)


def test_empty_ratings_and_unknown_directory_are_errors(tmp_path):
    root = write_ml20m(tmp_path)
    (root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(DataFormatError, match="no ratings"):
        load_movielens(root)
    with pytest.raises(DataFormatError, match="not a MovieLens directory"):
        load_movielens(tmp_path)
