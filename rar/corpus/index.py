"""Reading and searching a corpus's FAISS index (the builder writes it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_index(path: Path):
    import faiss

    return faiss.read_index(str(path))


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the k nearest movies per query; rows are -1 where fewer exist."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    k = max(1, min(int(k), index.ntotal))
    return index.search(queries, k)
