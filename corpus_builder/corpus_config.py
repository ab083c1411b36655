"""Config of a corpus build: which sources, how to merge, link, filter, embed and index."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rar.config import ConfigModel
from rar.corpus.movie import DEFAULT_TEXT_FIELDS

# Also the default merge priority (earlier wins ties): official dumps, then id-bearing
# catalogues, then processed metadata, then title-only lists.
ALL_SOURCES = [
    "imdb_tsv",
    "tmdb",
    "movielens",
    "reddit",
    "imdb_top1000",
    "redial_metadata",
    "redial_movies",
    "inspired",
    "imdb_ggplot2movies",
    "wikipedia_summaries",
]


class MergeConfig(ConfigModel):
    """How records from different sources are recognised as the same movie."""

    fuzzy_threshold: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="Minimum title similarity for two records in one block to merge.",
    )
    year_tolerance: int = Field(
        1, ge=0, description="Years may differ by this much within one movie."
    )
    source_priority: list[str] = Field(
        default_factory=lambda: list(ALL_SOURCES),
        description="Tie-break order when sources disagree on a field (earlier wins).",
    )
    conflict_year_gap: int = Field(
        2,
        ge=1,
        description="Records sharing an IMDb id whose years differ by at least this are reported as conflicts.",
    )


class LinkConfig(ConfigModel):
    """Which datasets get link tables, and how title-only mentions are matched."""

    datasets: list[str] = Field(
        default_factory=lambda: ["redial", "inspired", "reddit", "movielens"],
        description="Datasets to link; 'movielens' expands to every MovieLens variant found.",
    )
    fuzzy_threshold: float = Field(
        0.88,
        ge=0.0,
        le=1.0,
        description="Minimum similarity for a title-only mention to link fuzzily.",
    )
    use_data_loaders: bool = Field(
        True, description="Count mentions with rar.data loaders (else only the source catalogues)."
    )


class FilterConfig(ConfigModel):
    """Which merged movies are kept."""

    required_fields: list[str] = Field(
        default_factory=lambda: ["title"],
        description="Fields a movie must have (title, year, genres, directors, cast, writers, plot, ...).",
    )
    keep_linked: bool = Field(
        True,
        description="Keep movies a dataset links to even when they miss required fields (reported).",
    )
    max_movies: int | None = Field(
        None,
        ge=1,
        description="Keep at most this many movies: most-mentioned first, then most votes.",
    )
    priority_datasets: list[str] = Field(
        default_factory=list,
        description="Under max_movies, movies these datasets link to are kept first (e.g. movielens-ml-100k).",
    )
    min_year: int | None = Field(
        None, description="Drop movies released before this year (unlinked only)."
    )


class EmbeddingConfig(ConfigModel):
    """Movie text embeddings."""

    enabled: bool = Field(True, description="Compute embeddings and the FAISS index.")
    model: str | None = Field(
        None,
        description="sentence-transformers model name or path; None = packaged all-MiniLM-L6-v2.",
    )
    batch_size: int = Field(64, ge=1, description="Texts per encoder batch.")
    max_seq_length: int = Field(128, ge=8, description="Token limit per movie text.")
    fields: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TEXT_FIELDS),
        description="Metadata fields written as 'key: value' lines for each movie.",
    )
    cache_dir: str | None = Field(
        None,
        description="Shared vector cache directory (reused across corpora); the previous corpus is always reused.",
    )
    num_threads: int | None = Field(
        None,
        ge=1,
        description="Threads while embedding, split over up to 4 worker threads that each have "
        "their own model copy (None = torch's thread count).",
    )


class IndexConfig(ConfigModel):
    """FAISS index over the movie vectors."""

    type: Literal["flat", "hnsw"] = Field(
        "flat", description="flat = exact inner product; hnsw = approximate."
    )
    hnsw_m: int = Field(32, ge=4, description="HNSW graph degree.")
    hnsw_ef_construction: int = Field(200, ge=8, description="HNSW build-time beam width.")
    hnsw_ef_search: int = Field(128, ge=8, description="HNSW search-time beam width.")


class CorpusConfig(ConfigModel):
    """A whole corpus build."""

    version: str = Field("1", description="Corpus version written into the manifest.")
    sources: list[str] = Field(
        default_factory=lambda: list(ALL_SOURCES), description="Source readers to run."
    )
    source_paths: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per-source input files/dirs (relative to the data dir or absolute); overrides the defaults.",
    )
    strict: bool = Field(
        False, description="Fail on the first malformed row instead of counting a skip."
    )
    merge: MergeConfig = Field(default_factory=MergeConfig, description="Merge/dedup settings.")
    link: LinkConfig = Field(default_factory=LinkConfig, description="Linking settings.")
    filter: FilterConfig = Field(default_factory=FilterConfig, description="Filter settings.")
    embedding: EmbeddingConfig = Field(
        default_factory=EmbeddingConfig, description="Embedding settings."
    )
    index: IndexConfig = Field(default_factory=IndexConfig, description="FAISS index settings.")
