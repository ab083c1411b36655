"""Movie texts -> sentence-transformers vectors, cached by content hash.

A vector is reused when the same model saw the same text before: from the previous corpus at
the output path (`embeddings/hashes.npy` beside `vectors.npy`) and from an optional shared
cache directory (append-only `.npz` shards per model). A rebuild therefore embeds only new or
changed movies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corpus_builder.corpus_config import EmbeddingConfig
from rar.atomic_files import atomic_write
from rar.corpus.embedder import DEFAULT_MODEL_NAME, load_model
from rar.corpus.schema import EMBEDDING_META_FILE, EMBEDDINGS_DIR, HASHES_FILE, VECTORS_FILE

log = logging.getLogger(__name__)
HASH_BYTES = 16


def model_id(config: EmbeddingConfig) -> str:
    """What identifies the vectors a text gets: the model name (not its install path) + length."""
    name = config.model or DEFAULT_MODEL_NAME
    return f"{name}|max_seq_length={config.max_seq_length}"


def text_hashes(texts: Sequence[str], model: str) -> np.ndarray:
    """One 16-byte content hash per text (model identity included)."""
    out = np.empty(len(texts), dtype=f"S{HASH_BYTES}")
    prefix = model.encode() + b"\n"
    for i, text in enumerate(texts):
        out[i] = hashlib.sha256(prefix + text.encode()).digest()[:HASH_BYTES]
    return out


@dataclass
class VectorCache:
    """Known hash -> vector pairs gathered from earlier builds."""

    vectors: dict[bytes, np.ndarray] = field(default_factory=dict)

    def add(self, hashes: np.ndarray, vectors: np.ndarray) -> None:
        for h, v in zip(hashes.tolist(), vectors, strict=True):
            self.vectors.setdefault(h, v)

    def load_corpus(self, corpus_dir: Path, model: str) -> None:
        meta_path = corpus_dir / EMBEDDINGS_DIR / EMBEDDING_META_FILE
        hashes_path = corpus_dir / EMBEDDINGS_DIR / HASHES_FILE
        vectors_path = corpus_dir / EMBEDDINGS_DIR / VECTORS_FILE
        if not (meta_path.exists() and hashes_path.exists() and vectors_path.exists()):
            return
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("model_id") != model:
                return
            self.add(np.load(hashes_path), np.load(vectors_path))
        except (OSError, ValueError) as exc:  # a damaged old corpus is only a missed cache
            log.warning("ignoring vector cache in %s: %s", corpus_dir, exc)

    def load_dir(self, cache_dir: Path, model: str) -> None:
        for shard in sorted(cache_dir.glob(f"{_slug(model)}-*.npz")):
            try:
                with np.load(shard) as data:
                    self.add(data["hashes"], data["vectors"])
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring damaged cache shard %s: %s", shard, exc)


def _slug(model: str) -> str:
    return (
        re.sub(r"[^A-Za-z0-9]+", "_", model).strip("_")[-80:]
        + "-"
        + hashlib.sha1(model.encode()).hexdigest()[:8]
    )


def save_shard(cache_dir: Path, model: str, hashes: np.ndarray, vectors: np.ndarray) -> None:
    """Append new vectors to the shared cache as one content-named shard (atomic rename)."""
    if len(hashes) == 0:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(hashes.tobytes()).hexdigest()[:16]
    final = cache_dir / f"{_slug(model)}-{name}.npz"
    if final.exists():
        return
    atomic_write(final, lambda handle: np.savez(handle, hashes=hashes, vectors=vectors))


@dataclass
class EmbedResult:
    vectors: np.ndarray
    hashes: np.ndarray
    computed: int
    reused: int
    seconds: float
    model_seconds: float


def embed_texts(
    texts: Sequence[str],
    config: EmbeddingConfig,
    previous: list[Path] | None = None,
    progress: bool = True,
    model=None,
) -> EmbedResult:
    """L2-normalised float32 vectors for `texts`, reusing cached vectors by content hash."""
    start = time.perf_counter()
    mid = model_id(config)
    hashes = text_hashes(texts, mid)
    cache = VectorCache()
    for directory in previous or []:
        cache.load_corpus(directory, mid)
    if config.cache_dir:
        cache.load_dir(Path(config.cache_dir), mid)
    todo = [i for i, h in enumerate(hashes.tolist()) if h not in cache.vectors]
    # one text may occur twice: embed each distinct text once
    unique: dict[bytes, int] = {}
    for i in todo:
        unique.setdefault(hashes[i].tobytes(), i)
    new_vectors: dict[bytes, np.ndarray] = {}
    model_seconds = 0.0
    if unique:
        if config.num_threads:
            import torch

            torch.set_num_threads(config.num_threads)
        t0 = time.perf_counter()
        model = model if model is not None else load_model(config.model, config.max_seq_length)
        model_seconds = time.perf_counter() - t0
        order = list(unique.values())
        chunk = max(config.batch_size * 8, 256)
        from rar.progress import progress_bar

        with progress_bar(len(order), "embedding movies", "movie", enabled=progress) as bar:
            for s in range(0, len(order), chunk):
                part = order[s : s + chunk]
                vecs = model.encode(
                    [texts[i] for i in part],
                    batch_size=config.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                for i, v in zip(part, np.asarray(vecs, dtype=np.float32), strict=True):
                    new_vectors[hashes[i].tobytes()] = v
                bar.update(len(part))
        if config.cache_dir:
            keys = sorted(new_vectors)
            save_shard(
                Path(config.cache_dir), mid,
                np.array(keys, dtype=f"S{HASH_BYTES}"), np.stack([new_vectors[k] for k in keys]),
            )  # fmt: skip
    dim = (
        next(iter(new_vectors.values())).shape[0]
        if new_vectors
        else (next(iter(cache.vectors.values())).shape[0] if cache.vectors else 0)
    )
    vectors = np.zeros((len(texts), dim), dtype=np.float32)
    for i, h in enumerate(hashes.tolist()):
        vectors[i] = new_vectors[h] if h in new_vectors else cache.vectors[h]
    return EmbedResult(
        vectors, hashes, computed=len(unique), reused=len(texts) - len(todo),
        seconds=time.perf_counter() - start, model_seconds=model_seconds,
    )  # fmt: skip
