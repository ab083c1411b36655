"""Movie texts -> sentence-transformers vectors, cached by content hash.

A vector is reused when the same model saw the same text before: from the previous corpus at
the output path (`embeddings/hashes.npy` beside `vectors.npy`) and from an optional shared
cache directory (append-only `.npz` shards per model). A rebuild therefore embeds only new or
changed movies.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import queue
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corpus_builder.corpus_config import EmbeddingConfig
from rar.atomic_files import atomic_write
from rar.corpus.embedder import DEFAULT_MODEL_NAME, load_model
from rar.corpus.schema import EMBEDDING_META_FILE, EMBEDDINGS_DIR, HASHES_FILE, VECTORS_FILE

log = logging.getLogger(__name__)
HASH_BYTES = 16
MAX_WORKERS = 4  # model copies at most (each ~90 MB for MiniLM); more threads go inside each


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


def token_lengths(model, texts: Sequence[str]) -> np.ndarray:
    """Tokens per text as the model sees it (special tokens included, cut at its
    `max_seq_length`); character counts when the model has no tokenizer to ask."""
    tokenizer = getattr(model, "tokenizer", None)
    limit = getattr(model, "max_seq_length", None)
    if tokenizer is not None and limit:
        try:
            ids = tokenizer(list(texts), truncation=True, max_length=int(limit))["input_ids"]
            return np.array([len(x) for x in ids], dtype=np.int64)
        except (TypeError, ValueError, KeyError):  # not a Hugging Face tokenizer
            pass
    return np.array([len(t) for t in texts], dtype=np.int64)


def _copies(model, n: int) -> list:
    """`model` plus n - 1 deep copies (one per worker thread: a fast tokenizer must not be
    shared between threads); fewer when the model cannot be copied."""
    models = [model]
    for _ in range(n - 1):
        try:
            models.append(copy.deepcopy(model))
        except Exception as exc:  # noqa: BLE001 - any failure just means fewer workers
            log.info(
                "embedding with %d worker(s): the model cannot be copied (%s)", len(models), exc
            )
            break
    return models


def _encode_batch(
    free: queue.SimpleQueue, texts: Sequence[str], threads: int, batch: np.ndarray
) -> np.ndarray:
    """Vectors of `texts[batch]`, on a worker thread: a model copy taken from `free` (and put
    back), torch limited to `threads` threads in this thread (OpenMP's setting is per thread;
    `encode_texts` restores the caller's)."""
    import torch

    torch.set_num_threads(threads)
    worker_model = free.get()
    try:
        out = worker_model.encode(
            [texts[i] for i in batch],
            batch_size=len(batch),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    finally:
        free.put(worker_model)
    return np.asarray(out, dtype=np.float32)


def encode_texts(
    model,
    texts: Sequence[str],
    batch_size: int,
    threads: int | None = None,
    on_batch: Callable[[int], object] | None = None,
) -> np.ndarray:
    """L2-normalised float32 vectors of `texts` (row i = texts[i]) from `model.encode`.

    Faster than one `model.encode(texts)` on a small CPU, with the same vectors (within float
    rounding, ~2e-7): texts are sorted by token count over the whole list, so a batch pads to
    the length of texts like its own (sentence-transformers sorts only by characters, and only
    within one call); and the batches are shared by `threads` worker threads (default: torch's
    thread count) each running torch with one thread on its own copy of the model, instead of
    one torch op spread over all threads. torch releases the GIL inside its ops. On a busy
    2-core machine torch's own threads spend much of their CPU time waiting for each other.
    `on_batch(n)` is called from the calling thread after each finished batch of n texts.
    """
    import torch

    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    order = np.argsort(-token_lengths(model, texts), kind="stable")
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    previous = torch.get_num_threads()
    total = max(1, threads or previous)
    workers = max(1, min(total, MAX_WORKERS, len(batches)))
    models = _copies(model, workers)
    per_worker = max(1, total // len(models))
    free: queue.SimpleQueue = queue.SimpleQueue()
    for m in models:
        free.put(m)
    encode = functools.partial(_encode_batch, free, texts, per_worker)
    vectors: np.ndarray | None = None
    try:
        with ThreadPoolExecutor(len(models), thread_name_prefix="embed") as pool:
            futures = {pool.submit(encode, batch): batch for batch in batches}
            for future in as_completed(futures):
                part = future.result()
                if vectors is None:
                    vectors = np.zeros((len(texts), part.shape[1]), dtype=np.float32)
                vectors[futures[future]] = part
                if on_batch is not None:
                    on_batch(len(part))
    finally:
        torch.set_num_threads(previous)
    assert vectors is not None
    return vectors


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
        t0 = time.perf_counter()
        model = model if model is not None else load_model(config.model, config.max_seq_length)
        model_seconds = time.perf_counter() - t0
        order = list(unique.values())
        from rar.progress import progress_bar

        with progress_bar(len(order), "embedding movies", "movie", enabled=progress) as bar:
            vecs = encode_texts(
                model, [texts[i] for i in order], config.batch_size, config.num_threads, bar.update
            )
        for i, v in zip(order, vecs, strict=True):
            new_vectors[hashes[i].tobytes()] = v
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
