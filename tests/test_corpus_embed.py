"""Embeddings (real MiniLM), the content-hash cache, FAISS search and the Corpus API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from corpus_builder.build import build_corpus
from corpus_builder.corpus_config import IndexConfig
from corpus_builder.embed import text_hashes
from corpus_builder.index import build_index
from corpus_builder.testing import mini_config, write_mini_data_dir
from rar.corpus import Corpus
from rar.corpus.index import search
from rar.corpus.movie import Movie, movie_text


def test_movie_text_is_key_value_lines():
    movie = Movie("tt0113277", "Heat", 1995, genres=("crime", "drama"), plot=None, runtime=170.0)
    assert movie_text(movie, ["title", "year", "genres", "directors", "plot", "runtime"]) == (
        "title: Heat\nyear: 1995\ngenres: crime, drama\nruntime: 170"
    )
    a, b = text_hashes(["x", "y"], "model-a"), text_hashes(["x"], "model-b")
    assert a[0] != a[1] and a[0] != b[0] and a.dtype == np.dtype("S16")


@pytest.mark.needs_data
def test_small_corpus_api(small_corpus):
    corpus = Corpus.load(small_corpus)
    n = len(corpus)
    assert 1000 <= n <= 2000 and len(corpus.ids) == n and corpus.index_of(corpus.ids[5]) == 5
    vectors = corpus.vectors()
    assert vectors.shape == (n, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    meta = json.loads((small_corpus / "embeddings" / "meta.json").read_text())
    assert meta["count"] == n and meta["normalized"] is True
    redial = corpus.link_table("redial")
    assert len(redial) > 500 and all(cid in corpus._row for cid in redial.values())
    assert set(corpus.datasets) == {
        "redial",
        "inspired",
        "movielens-ml-100k",
        "movielens-ml-latest-small",
    }
    matrix = corpus.find("The Matrix (1999)")[0]
    text = corpus.movie_text(matrix)
    assert text.startswith("title: The Matrix\nyear: 1999\n") and "Keanu Reeves" in text
    assert corpus.movie(matrix).corpus_id == "tt0133093"


def test_search_returns_sensible_movies(small_corpus):
    corpus = Corpus.load(small_corpus)
    hits = corpus.search("an animated movie about toys that come alive", 10)
    titles = [corpus.movie(r).title for r, _ in hits]
    assert any(t.startswith("Toy Story") for t in titles), titles
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True) and len(hits) == 10
    # a movie's own vector finds the movie itself first
    row = corpus.find("Jurassic Park")[0]
    assert corpus.search(np.asarray(corpus.vectors()[row]), 1)[0][0] == row


def test_hnsw_index_agrees_with_flat(small_corpus):
    vectors = np.asarray(Corpus.load(small_corpus).vectors())
    flat = build_index(vectors, IndexConfig(type="flat"))
    hnsw = build_index(vectors, IndexConfig(type="hnsw", hnsw_m=16))
    queries = vectors[:50]
    _, exact = search(flat, queries, 10)
    _, approx = search(hnsw, queries, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall > 0.9 and (exact[:, 0] == np.arange(50)).all()


@pytest.mark.slow
def test_rebuild_embeds_only_changed_movies(tmp_path, data_dir):
    data = write_mini_data_dir(data_dir, tmp_path / "data", n_movies=30)
    config = mini_config(
        sources=["redial_movies", "redial_metadata"],
        link={"datasets": ["redial"], "use_data_loaders": False},
        embedding={"enabled": True, "max_seq_length": 32, "cache_dir": str(tmp_path / "cache")},
    )
    out = tmp_path / "corpus"
    first = build_corpus(data, out, config, progress=False).build_log["embedding"]
    assert first["computed"] == 30 and first["reused"] == 0
    second = build_corpus(data, out, config, progress=False).build_log["embedding"]
    assert second["computed"] == 0 and second["reused"] == 30
    vectors_before = np.load(out / "embeddings" / "vectors.npy")
    # change one movie's title: only that movie is embedded again
    csv_path = data / "redial" / "movies_with_mentions.csv"
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("Headhunter", "Headhunters")
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    third = build_corpus(data, tmp_path / "elsewhere", config, progress=False).build_log[
        "embedding"
    ]
    assert third["computed"] == 1 and third["reused"] == 29  # via the shared cache dir
    corpus = Corpus.load(tmp_path / "elsewhere")
    unchanged = corpus.find("Angels in the Outfield")[0]
    old = Corpus.load(out)
    assert np.array_equal(
        corpus.vectors()[unchanged], vectors_before[old.find("Angels in the Outfield")[0]]
    )
