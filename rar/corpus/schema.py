"""The on-disk format of a corpus directory: file names, parquet schemas, the manifest marker.

`corpus_builder` writes exactly this and `Corpus` reads exactly this, so both import it here.
"""

from __future__ import annotations

import pyarrow as pa

from rar.corpus.movie import LIST_FIELDS, MOVIE_FIELDS

CORPUS_FORMAT = "rar-corpus"  # manifest.json "format": what proves a directory is a corpus
MANIFEST_FILE = "manifest.json"
BUILD_LOG_FILE = "build_log.json"
MOVIES_FILE = "movies.parquet"
LINKS_DIR = "links"  # one <dataset>.parquet per linked dataset
EMBEDDINGS_DIR = "embeddings"
VECTORS_FILE = "vectors.npy"  # in EMBEDDINGS_DIR: float32 [N, d], row i = movie i
HASHES_FILE = "hashes.npy"  # in EMBEDDINGS_DIR: content hash per row (the builder's cache key)
EMBEDDING_META_FILE = "meta.json"  # in EMBEDDINGS_DIR: model, max_seq_length, fields, dim
INDEX_FILE = "index.faiss"
# Everything a build writes into a corpus directory; anything else there is someone else's.
CORPUS_ENTRIES = frozenset(
    {MANIFEST_FILE, BUILD_LOG_FILE, MOVIES_FILE, LINKS_DIR, EMBEDDINGS_DIR, INDEX_FILE}
)

_TEXT_LIST = pa.list_(pa.string())
_COLUMN_TYPES = {
    "year": pa.int64(),
    "runtime": pa.float64(),
    "rating": pa.float64(),
    "votes": pa.int64(),
    **{name: _TEXT_LIST for name in LIST_FIELDS},
}
MOVIES_SCHEMA = pa.schema([(name, _COLUMN_TYPES.get(name, pa.string())) for name in MOVIE_FIELDS])
LINKS_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("title", pa.string()),
        ("corpus_id", pa.string()),
        ("score", pa.float64()),
        ("method", pa.string()),
        ("mentions", pa.int64()),
    ]
)
