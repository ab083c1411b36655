"""A small but real corpus for tests and demos, built by the normal builder with a restricting config.

ReDial movies with their metadata, MovieLens ml-100k and ml-latest-small movies (with links),
and INSPIRED titles; at most `SMALL_MAX_MOVIES` movies (the most-linked and most-mentioned
first), real MiniLM embeddings and a flat FAISS index. Vectors are cached by content hash in
`$RAR_CACHE_DIR/corpus_embeddings` (default `~/.cache/rar/corpus_embeddings`), so only the first
build on a machine pays for embedding.
"""

from __future__ import annotations

import os
from pathlib import Path

from corpus_builder.build import build_corpus
from corpus_builder.corpus_config import CorpusConfig

SMALL_MAX_MOVIES = 1500


def shared_cache_dir() -> Path:
    root = os.environ.get("RAR_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "rar"
    return base / "corpus_embeddings"


def small_corpus_config(
    max_movies: int = SMALL_MAX_MOVIES, cache_dir: Path | None = None
) -> CorpusConfig:
    """The restricting config of the small corpus (same builder, fewer sources and movies)."""
    return CorpusConfig(
        version="small-1",
        sources=["movielens", "redial_metadata", "redial_movies", "inspired"],
        source_paths={
            "movielens": ["movielens/ml-100k", "movielens/ml-latest-small"],
            "redial_metadata": ["metadata/redial_id2info.json"],
        },
        link={"datasets": ["redial", "inspired", "movielens"]},
        filter={"required_fields": ["title"], "max_movies": max_movies},
        embedding={
            "cache_dir": str(cache_dir or shared_cache_dir()),
            "fields": ["title", "year", "genres", "directors", "cast", "plot"],
            "max_seq_length": 64,
        },
    )


def build_small_corpus(
    out_dir: str | Path, data_dir: str | Path, max_movies: int = SMALL_MAX_MOVIES
) -> Path:
    """Build the small corpus into `out_dir` (a directory that is empty or an old corpus)."""
    out = Path(out_dir)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()  # pytest's tmp dirs arrive empty; the builder creates the directory itself
    build_corpus(Path(data_dir), out, small_corpus_config(max_movies), progress=False)
    return out


def write_mini_data_dir(data_dir: str | Path, out_dir: str | Path, n_movies: int = 150) -> Path:
    """A tiny data directory in the official formats, cut from the real files, for fast tests:
    the first `n_movies` ReDial movies with their id2info metadata, the first `n_movies` lines of
    ML-100K `u.item` (+ `u.genre`), and the Reddit catalogue entries of those IMDb ids."""
    import json

    src, out = Path(data_dir), Path(out_dir)
    (out / "redial").mkdir(parents=True, exist_ok=True)
    (out / "metadata").mkdir(exist_ok=True)
    (out / "movielens" / "ml-100k").mkdir(parents=True, exist_ok=True)
    (out / "reddit_movie").mkdir(exist_ok=True)
    lines = (src / "redial" / "movies_with_mentions.csv").read_text(encoding="utf-8").splitlines()
    (out / "redial" / "movies_with_mentions.csv").write_text(
        "\n".join(lines[: n_movies + 1]) + "\n", encoding="utf-8"
    )
    ids = {line.split(",", 1)[0] for line in lines[1 : n_movies + 1]}
    info = json.loads((src / "metadata" / "redial_id2info.json").read_text(encoding="utf-8"))
    subset = {k: v for k, v in info.items() if k in ids}
    (out / "metadata" / "redial_id2info.json").write_text(json.dumps(subset), encoding="utf-8")
    item = (src / "movielens" / "ml-100k" / "u.item").read_bytes().splitlines(keepends=True)
    (out / "movielens" / "ml-100k" / "u.item").write_bytes(b"".join(item[:n_movies]))
    (out / "movielens" / "ml-100k" / "u.genre").write_bytes(
        (src / "movielens" / "ml-100k" / "u.genre").read_bytes()
    )
    imdb_ids = {v.get("imdb_id") for v in subset.values()}
    catalogue = json.loads((src / "reddit_movie" / "entity2id.json").read_text(encoding="utf-8"))
    reddit = {k: v for k, v in catalogue.items() if v in imdb_ids}
    (out / "reddit_movie" / "entity2id.json").write_text(json.dumps(reddit), encoding="utf-8")
    return out


def mini_config(**overrides) -> CorpusConfig:
    """Config for the mini data dir: its four sources (+ the absent IMDb dumps), no embeddings unless asked."""
    data = {
        "sources": ["imdb_tsv", "movielens", "reddit", "redial_metadata", "redial_movies"],
        "link": {"datasets": ["redial", "reddit", "movielens"], "use_data_loaders": False},
        "embedding": {"enabled": False},
    }
    data.update(overrides)
    return CorpusConfig.model_validate(data)
