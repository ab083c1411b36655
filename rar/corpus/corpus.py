"""Read-only access to a built corpus directory (movies, links, vectors, FAISS search)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rar.corpus.embedder import load_model
from rar.corpus.index import read_index, search
from rar.corpus.movie import DEFAULT_TEXT_FIELDS, LIST_FIELDS, MOVIE_FIELDS, Movie, movie_text
from rar.corpus.schema import (
    EMBEDDING_META_FILE,
    EMBEDDINGS_DIR,
    INDEX_FILE,
    LINKS_DIR,
    MANIFEST_FILE,
    MOVIES_FILE,
    VECTORS_FILE,
)
from rar.errors import InputError, MissingPathError, UnknownKeyError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class Corpus:
    """A corpus directory: `movies.parquet`, `links/*.parquet`, `embeddings/`, `index.faiss`.

    Row i of `movies` is row i of `vectors()` and FAISS id i (and retriever token i + 1).
    A corpus made in memory (`from_movies`) has no directory: links, index and embedder are
    absent, vectors are whatever it was given.
    """

    def __init__(
        self,
        path: Path | None,
        movies: pd.DataFrame,
        manifest: dict,
        vectors: np.ndarray | None = None,
    ):
        self.path = path
        self.movies = movies
        self.manifest = manifest
        self.ids: list[str] = movies["corpus_id"].tolist()
        self._row = {cid: i for i, cid in enumerate(self.ids)}
        self._links: dict[str, dict[str, str]] = {}
        self._vectors = vectors
        self._index = None
        self._model: SentenceTransformer | None = None

    @classmethod
    def load(cls, path: str | Path) -> Corpus:
        path = Path(path)
        movies_path = path / MOVIES_FILE
        if not movies_path.exists():
            raise MissingPathError(
                f"{path} is not a corpus directory (no {MOVIES_FILE}); build one with `rar build-corpus`"
            )
        manifest_path = path / MANIFEST_FILE
        manifest = _read_json(manifest_path, path) if manifest_path.exists() else {}
        movies = _typed_frame(_read_parquet(movies_path, path, _NEEDED_COLUMNS))
        return cls(path, movies, manifest)

    @classmethod
    def from_movies(cls, movies: Sequence[Movie], vectors: np.ndarray | None = None) -> Corpus:
        """An in-memory corpus of `movies` (row order kept): small tools and tests, no directory."""
        frame = pd.DataFrame(
            {name: [getattr(m, name) for m in movies] for name in MOVIE_FIELDS},
            columns=list(MOVIE_FIELDS),
        )
        if vectors is not None:
            vectors = np.asarray(vectors, dtype=np.float32)
            if vectors.shape[0] != len(movies):
                raise ValueError(f"{vectors.shape[0]} vectors for {len(movies)} movies")
        return cls(None, _typed_frame(frame), {}, vectors)

    def __len__(self) -> int:
        return len(self.ids)

    def _where(self) -> str:
        return str(self.path) if self.path is not None else "the in-memory corpus"

    def _dir(self) -> Path:
        if self.path is None:
            raise MissingPathError(
                "an in-memory corpus has no directory (links, embeddings, index)"
            )
        return self.path

    def index_of(self, corpus_id: str) -> int:
        try:
            return self._row[corpus_id]
        except KeyError:
            raise UnknownKeyError(f"corpus id {corpus_id!r} is not in {self._where()}") from None

    def movie(self, i: int) -> Movie:
        """Row i as a typed record."""
        return Movie.from_row(self.movies.iloc[int(i)].to_dict())

    def movie_text(self, i: int, fields: Sequence[str] | None = None) -> str:
        """The movie as 'key: value' lines (the embedder's input when fields match)."""
        if fields is None:
            fields = self.embedding_meta.get("fields", DEFAULT_TEXT_FIELDS)
        return movie_text(self.movie(i), fields)

    @property
    def datasets(self) -> list[str]:
        if self.path is None:
            return []
        return sorted(p.stem for p in (self.path / LINKS_DIR).glob("*.parquet"))

    def link_frame(self, dataset: str) -> pd.DataFrame:
        path = self._dir() / LINKS_DIR / f"{dataset}.parquet"
        if not path.exists():
            raise UnknownKeyError(
                f"no link table for dataset {dataset!r} in {self.path} (have: {', '.join(self.datasets)})"
            )
        return _read_parquet(path, self.path, ("key", "corpus_id"))

    def link_table(self, dataset: str) -> dict[str, str]:
        """Mention.key -> corpus_id for every linked key of `dataset`."""
        if dataset not in self._links:
            frame = self.link_frame(dataset)
            frame = frame[frame["corpus_id"].notna()]
            self._links[dataset] = dict(
                zip(frame["key"].tolist(), frame["corpus_id"].tolist(), strict=True)
            )
        return self._links[dataset]

    @cached_property
    def embedding_meta(self) -> dict:
        if self.path is None:
            return {}
        path = self.path / EMBEDDINGS_DIR / EMBEDDING_META_FILE
        return _read_json(path, self.path) if path.exists() else {}

    def vectors(self) -> np.ndarray:
        """float32 [N, d] L2-normalised movie vectors (memory-mapped)."""
        if self._vectors is None:
            path = self._dir() / EMBEDDINGS_DIR / VECTORS_FILE
            if not path.exists():
                raise MissingPathError(
                    f"{self.path} has no embeddings (built with embedding.enabled=false?)"
                )
            vectors = _read_vectors(path, self._dir())
            if vectors.shape[0] != len(self):
                raise InputError(
                    f"{path} has {vectors.shape[0]} rows but the corpus has {len(self)} movies; "
                    f"{_REBUILD.format(dir=self.path)}"
                )
            self._vectors = vectors
        return self._vectors

    def index(self):
        if self._index is None:
            path = self._dir() / INDEX_FILE
            if not path.exists():
                raise MissingPathError(f"{self.path} has no {INDEX_FILE}")
            index = _read_index(path, self._dir())
            if index.ntotal != len(self):
                raise InputError(
                    f"{path} holds {index.ntotal} vectors but the corpus has {len(self)} movies; "
                    f"{_REBUILD.format(dir=self.path)}"
                )
            self._index = index
        return self._index

    def embedder(self) -> SentenceTransformer:
        """The sentence-transformers model that made the vectors."""
        if self._model is None:
            meta = self.embedding_meta
            self._model = load_model(meta.get("model"), meta.get("max_seq_length", 128))
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(
            self.embedder().encode(
                texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            ),
            dtype=np.float32,
        )

    def search(self, query: str | np.ndarray, k: int = 10) -> list[tuple[int, float]]:
        """Top-k (row, cosine score) for a free-text query or a query vector (the index is
        read first: a damaged one fails before the embedder loads)."""
        index = self.index()
        vector = (
            self.encode([query]) if isinstance(query, str) else np.asarray(query, dtype=np.float32)
        )
        scores, rows = search(index, vector, k)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def find(self, id_or_title: str, limit: int = 5) -> list[int]:
        """Rows for a corpus id, IMDb id, or title (best title matches first)."""
        if id_or_title in self._row:
            return [self._row[id_or_title]]
        hits = self.movies.index[self.movies["imdb_id"] == id_or_title].tolist()
        if hits:
            return hits
        return [m.index for m in self.title_matcher.candidates(id_or_title, limit=limit)]

    @cached_property
    def title_matcher(self):
        """A TitleMatcher over the corpus titles (years and votes break ties), built once."""
        from rar.matching import TitleMatcher

        return TitleMatcher(
            self.movies["title"].tolist(),
            self.movies["year"].tolist(),
            popularity=self.movies["votes"].fillna(0).astype(float).tolist(),
        )


# what every reader of movies.parquet relies on (the other MOVIE_FIELDS may be absent)
_NEEDED_COLUMNS = ("corpus_id", "title", "year", "votes", *LIST_FIELDS)
_REBUILD = "rebuild the corpus with `rar build-corpus --out {dir}`"


def _damaged(path: Path, corpus_dir: Path | None, problem: object) -> InputError:
    """A damaged corpus file is the user's to rebuild, not a bug: one line naming the file, its
    size (a truncation shows there) and the way out."""
    size = f"{path.stat().st_size:,} bytes" if path.exists() else "missing"
    detail = " ".join(str(problem).split())[:160]
    return InputError(
        f"{path} is unreadable ({size}; truncated or corrupt: {detail}); "
        + _REBUILD.format(dir=corpus_dir)
    )


def _read_json(path: Path, corpus_dir: Path | None) -> dict:
    """A corpus JSON file (manifest, embedding meta). A build never replaces a directory whose
    manifest it cannot read, so the way out there is a new directory."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        data = exc
    if isinstance(data, dict):
        return data
    problem = data if isinstance(data, Exception) else f"expected a JSON object, got {data!r}"
    if path.name != MANIFEST_FILE:
        raise _damaged(path, corpus_dir, problem)
    raise InputError(
        f"{path} is unreadable (truncated or corrupt: {' '.join(str(problem).split())[:160]}); "
        f"rebuild the corpus into a new directory with `rar build-corpus --out NEW_DIR` (a "
        f"directory whose manifest is unreadable is never replaced: remove {corpus_dir} "
        "yourself to rebuild it there)"
    )


def _read_parquet(path: Path, corpus_dir: Path | None, columns: Sequence[str]) -> pd.DataFrame:
    """A corpus parquet table with the columns the readers need."""
    try:
        frame = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _damaged(path, corpus_dir, exc) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise _damaged(path, corpus_dir, f"no column {', '.join(missing)}")
    return frame


def _read_vectors(path: Path, corpus_dir: Path) -> np.ndarray:
    """The memory-mapped [N, d] vectors; a short file fails here, not mid-training."""
    try:
        vectors = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        raise _damaged(path, corpus_dir, exc) from None
    if vectors.ndim != 2:
        raise _damaged(path, corpus_dir, f"expected [movies, dim] vectors, got {vectors.shape}")
    return vectors


def _read_index(path: Path, corpus_dir: Path):
    """The FAISS index; faiss reports a short or corrupt file as a RuntimeError."""
    try:
        return read_index(path)
    except (RuntimeError, OSError, ValueError) as exc:
        raise _damaged(path, corpus_dir, exc) from None


def _typed_frame(movies: pd.DataFrame) -> pd.DataFrame:
    """List columns as lists, year and votes as nullable ints (what every reader expects)."""
    for name in LIST_FIELDS:
        movies[name] = movies[name].map(lambda v: list(v) if v is not None else [])
    movies["year"] = movies["year"].astype("Int64")
    movies["votes"] = movies["votes"].astype("Int64")
    return movies
