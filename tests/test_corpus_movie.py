"""The ground-floor movie record: one field list, the parquet schema agrees with it, and rows
read back from pandas (NA, NaN, numpy arrays) become clean typed records."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from rar.corpus import Corpus, Movie
from rar.corpus.movie import MOVIE_FIELDS, movie_text
from rar.corpus.schema import MOVIES_SCHEMA


def test_movie_fields_schema_and_record_agree():
    assert tuple(f.name for f in dataclasses.fields(Movie)) == MOVIE_FIELDS
    assert tuple(MOVIES_SCHEMA.names) == MOVIE_FIELDS


def test_from_row_cleans_pandas_values():
    row = {
        "corpus_id": "tt0113277",
        "title": "Heat",
        "year": pd.NA,
        "genres": np.array(["crime", "drama"], dtype=object),
        "directors": None,
        "runtime": float("nan"),
        "votes": np.int64(12),
    }
    movie = Movie.from_row(row)
    assert movie.year is None and movie.runtime is None and movie.plot is None
    assert movie.genres == ("crime", "drama") and movie.directors == ()
    assert movie.votes == 12 and type(movie.votes) is int
    assert movie.source_ids == "{}" and movie.display == "Heat"
    with pytest.raises(dataclasses.FrozenInstanceError):
        movie.title = "other"  # type: ignore[misc]


def test_in_memory_corpus_round_trips_movies_and_vectors():
    movies = [
        Movie("a", "Alien", 1979, genres=("horror",), votes=5),
        Movie("b", "Heat", None, plot="A heist."),
    ]
    corpus = Corpus.from_movies(movies, np.eye(2))
    assert corpus.ids == ["a", "b"] and corpus.index_of("b") == 1
    assert [corpus.movie(i) for i in range(2)] == movies
    assert corpus.movies["year"].dtype == "Int64" and corpus.vectors().dtype == np.float32
    assert corpus.movie_text(0) == "title: Alien\nyear: 1979\ngenres: horror"
    assert movie_text(movies[1], ["title", "year", "plot"]) == "title: Heat\nplot: A heist."
    assert corpus.datasets == [] and corpus.find("Alien (1979)") == [0]
    with pytest.raises(FileNotFoundError):
        corpus.link_table("redial")
    with pytest.raises(ValueError):
        Corpus.from_movies(movies, np.eye(3))
