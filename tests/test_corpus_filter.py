"""Filter rules: required fields, keep_linked, max_movies with priority datasets."""

from __future__ import annotations

import numpy as np

from corpus_builder.corpus_config import FilterConfig
from corpus_builder.filter import filter_movies
from rar.corpus import Movie


def _movies():
    return [
        Movie("a", "A", plot="p", votes=10),
        Movie("b", "B", plot=None, votes=99),
        Movie("c", "C", plot="p", votes=5),
        Movie("d", "D", plot=None, votes=1),
    ]


def test_required_fields_keep_or_drop_linked():
    linked = [[], ["redial"], [], []]
    kept = filter_movies(_movies(), linked, np.zeros(4), FilterConfig(required_fields=["plot"]))
    assert kept.keep.tolist() == [True, True, True, False]
    assert kept.report["kept_linked_incomplete"] == 1 and kept.report["dropped"] == {
        "missing plot": 1
    }
    dropped = filter_movies(
        _movies(), linked, np.zeros(4), FilterConfig(required_fields=["plot"], keep_linked=False)
    )
    assert dropped.keep.tolist() == [True, False, True, False]
    assert dropped.report["dropped_linked"] == 1
    assert dropped.report["dropped_linked_examples"][0] == {
        "corpus_id": "b", "title": "B", "datasets": ["redial"], "reason": "missing plot"
    }  # fmt: skip


def test_max_movies_ranks_priority_datasets_then_links_then_popularity():
    linked = [["redial", "reddit"], ["movielens-ml-100k"], [], ["redial"]]
    popularity = np.array([0.0, 0.0, 50.0, 9.0])
    plain = filter_movies(_movies(), linked, popularity, FilterConfig(max_movies=2))
    assert plain.keep.tolist() == [True, False, False, True]  # two links, then one link + popular
    assert plain.report["dropped_by_max_movies"] == 2 and plain.report["dropped_linked"] == 1
    config = FilterConfig(max_movies=2, priority_datasets=["movielens-ml-100k"])
    prioritised = filter_movies(_movies(), linked, popularity, config)
    assert prioritised.keep.tolist() == [True, True, False, False]
