"""Merge/dedup rules, field resolution with provenance, and stable ids."""

from __future__ import annotations

import json

from corpus_builder.merge import merge_records, stable_id
from corpus_builder.records import MovieRecord as R

PRIORITY = [
    "imdb_tsv",
    "movielens",
    "reddit",
    "redial_metadata",
    "redial_movies",
    "inspired",
    "wiki",
]


def _merge(records, keys=None, **kwargs):
    return merge_records(records, keys or {}, source_priority=PRIORITY, **kwargs)


def _movie_of(result, i):
    return result.movies[result.record_movie[i]]


def test_imdb_id_merge_and_most_informative_fields():
    records = [
        R("movielens", "ml:1", "Matrix, The", 1999, genres=["action", "science fiction"], imdb_id="tt0133093"),
        R("redial_metadata", "85036", "the matrix", 1999, genres=["thriller", "action"], directors=["Lana Wachowski"],
          cast=["Keanu Reeves"], plot="short plot", imdb_id="tt0133093"),
        R("imdb_tsv", "tt0133093", "The Matrix", 1999, cast=["Keanu Reeves", "Laurence Fishburne"], runtime=136.0,
          rating=8.7, votes=100, imdb_id="tt0133093"),
        R("wiki", "The Matrix", "The Matrix", None, plot="a much longer plot " * 5, weak=True),
    ]  # fmt: skip
    result = _merge(records)
    assert len(result.movies) == 1 and set(result.record_movie.tolist()) == {0}
    movie = result.movies[0]
    assert movie.corpus_id == "tt0133093"
    assert movie.title == "The Matrix"  # imdb_tsv has top priority
    assert movie.genres == ("action", "science fiction", "thriller")  # union, priority order
    assert movie.cast == ("Keanu Reeves", "Laurence Fishburne")  # the longest list
    assert movie.plot.startswith("a much longer plot")  # longest plot, from a weak record
    provenance = json.loads(movie.provenance)
    assert provenance["title"] == "imdb_tsv" and provenance["plot"] == "wiki"
    assert (
        provenance["directors"] == "redial_metadata"
        and provenance["genres"] == ["imdb_tsv", "movielens", "redial_metadata"][1:]
    )
    assert json.loads(movie.source_ids)["movielens"] == ["ml:1"]
    assert result.stats.merged_by_id == 2 and result.stats.attached == 1


def test_title_variants_and_years_within_tolerance_merge():
    records = [
        R("movielens", "ml:1", "Shawshank Redemption, The", 1994),
        R("redial_movies", "7", "The Shawshank Redemtion", 1994),  # typo -> fuzzy
        R("inspired", "x", "Shawshank Redemption", 1995, exclusive=False),  # +1 year
        R("reddit", "Heat (1995)", "Heat", 1995, imdb_id="tt0113277"),
        R("redial_movies", "8", "Heat", 1986),  # same title, 9 years apart: another film
    ]
    result = _merge(records)
    assert result.record_movie[0] == result.record_movie[1] == result.record_movie[2]
    assert result.record_movie[3] != result.record_movie[4]
    assert len(result.movies) == 3
    assert result.stats.merged_by_fuzzy_title >= 1 and result.stats.merged_by_exact_title >= 1


def test_same_title_same_year_different_people_stay_apart():
    records = [
        R("movielens", "ml:1", "Crash", 2004, directors=["Paul Haggis"]),
        R("redial_metadata", "1", "Crash", 2004, directors=["David Cronenberg"]),
        R("redial_movies", "2", "Crash", 2004),
    ]
    result = _merge(records)
    assert result.record_movie[0] != result.record_movie[1]
    assert result.stats.blocked_merges["disjoint_directors"] >= 1


def test_exclusive_catalogue_lists_each_movie_once():
    records = [
        R("movielens", "ml:1", "Hamlet", 1990, catalogue="movielens-ml"),
        R("movielens", "ml:2", "Hamlet", 1990, catalogue="movielens-ml"),
        R("inspired", "Hamlet", "Hamlet", 1990, exclusive=False),
    ]
    result = _merge(records)
    assert result.record_movie[0] != result.record_movie[1]
    assert result.stats.blocked_merges["same_catalogue_twice"] >= 1
    ids = sorted(m.corpus_id for m in result.movies)
    assert ids[0] == stable_id("Hamlet", 1990) and ids[1] == stable_id("Hamlet", 1990) + "-2"


def test_conflicting_imdb_years_are_detached_and_reported():
    records = [
        R("movielens", "ml:1", "Frankenstein", 1931, imdb_id="tt0021884"),
        R("reddit", "Frankenstein (1931)", "Frankenstein", 1931, imdb_id="tt0021884"),
        R("redial_metadata", "123395", "Frankenstein", 2004, imdb_id="tt0021884"),
        R("redial_movies", "123395", "Frankenstein", 2004),
    ]
    result = _merge(records, {"redial": {"123395": [2, 3]}})
    assert result.record_movie[0] == result.record_movie[1]
    assert result.record_movie[2] == result.record_movie[3] != result.record_movie[0]
    conflict = result.stats.id_conflicts[0]
    assert conflict["imdb_id"] == "tt0021884" and conflict["kept_year"] == 1931
    assert conflict["detached"] == ["redial_metadata:123395 (2004)"]
    assert _movie_of(result, 2).imdb_id is None and _movie_of(result, 2).corpus_id.startswith(
        "rar:"
    )
    assert result.stats.to_json()["id_conflicts"] == 1


def test_yearless_and_weak_records_attach_or_are_counted():
    records = [
        R("movielens", "ml:1", "Knives Out", 2019),
        R("inspired", "Knives Out", "Knives Out", None, exclusive=False),
        R("inspired", "Unknown Thing", "Unknown Thing", None, exclusive=False),
        R("redial_metadata", "db:1", "unknown thing", None, cast=["A"], weak=True),
        R("wiki", "Nothing Like It (film)", "Nothing Like It", None, plot="p", weak=True),
        R("inspired", "...", "...", None, exclusive=False),  # no title left after normalising
    ]
    result = _merge(records)
    assert result.record_movie[5] == -1 and result.stats.no_title == {"inspired": 1}
    assert result.record_movie[0] == result.record_movie[1]
    assert (
        result.record_movie[2] == result.record_movie[3] >= 0
    )  # weak attaches to a yearless movie
    assert result.record_movie[4] == -1 and result.stats.unattached_weak == {"wiki": 1}
    assert len(result.movies) == 2


def test_stable_ids_do_not_depend_on_record_order():
    records = [
        R("movielens", "ml:1", "Amélie", 2001),
        R("redial_movies", "5", "Amelie", 2001),
        R("movielens", "ml:2", "Toy Story", 1995, imdb_id="tt0114709"),
    ]
    forward = _merge(records)
    backward = _merge(list(reversed(records)))
    assert [m.corpus_id for m in forward.movies] == [m.corpus_id for m in backward.movies]
    assert [m.corpus_id for m in forward.movies] == sorted([stable_id("Amelie", 2001), "tt0114709"])
    assert stable_id("The Amélie", 2001) == stable_id("amelie", 2001)  # normalised title


def test_a_colliding_movie_takes_another_year_its_own_id_gives():
    """300 (tt0416449): MovieLens says 2007, Reddit (same id) 2006; another id holds 300 (2007)."""
    records = [
        R("movielens", "ml:51662", "300", 2007, imdb_id="tt0416449"),
        R("reddit", "300 (2006)", "300", 2006, imdb_id="tt0416449"),
        R("redial_metadata", "136877", "300", 2007, directors=["Shu-Kai Chung"], imdb_id="tt0373839"),
    ]  # fmt: skip
    result = _merge(records)
    years = {m.imdb_id: (m.year, json.loads(m.provenance)["year"]) for m in result.movies}
    assert years == {"tt0416449": (2006, "reddit"), "tt0373839": (2007, "redial_metadata")}
    assert result.stats.to_json()["years_changed_to_avoid_collision"] == 1
