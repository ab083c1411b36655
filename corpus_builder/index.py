"""Building the FAISS index over movie vectors: exact inner product (default) or HNSW.

Reading and searching it is the runtime's part (`rar.corpus.index`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from corpus_builder.corpus_config import IndexConfig


def build_index(vectors: np.ndarray, config: IndexConfig):
    """Inner-product index over L2-normalised vectors (so scores are cosine similarities)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if config.type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(vectors)
    return index


def write_index(index, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))
