"""Conversation turns -> frozen sentence vectors, the text tower's input.

Why frozen and cached: the text tower matches what the user says against every movie's text
vector, so turns must be embedded by the model that made the corpus vectors. That model does not
train; each distinct turn text is embedded once, kept in memory, and (with `cache_dir`) written
to append-only shards so later runs on the same corpus skip it. Nothing here is fitted on data,
so validation and test conversations can never leak into training through it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from rar.atomic_files import atomic_write
from rar.data.types import Turn

if TYPE_CHECKING:
    from rar.corpus import Corpus

ROLE_IDS = {"seeker": 1, "recommender": 2}  # 0 = padding
EmbedFn = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class TurnVectors:
    """The last turns of each conversation as vectors, newest last (left-padded)."""

    vectors: torch.Tensor  # [B, T, D] float32, zeros at padding
    roles: torch.Tensor  # [B, T] 0 = pad, 1 = seeker, 2 = recommender


def turn_text(turn: Turn) -> str:
    return (turn.text or "").strip()


def _key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


class TurnEncoder:
    """Embeds turn texts with a frozen model (memoised; optionally cached on disk)."""

    def __init__(
        self,
        embed: EmbedFn,
        dim: int,
        cache_dir: str | Path | None = None,
        batch_size: int = 256,
    ):
        self.embed = embed
        self.dim = int(dim)
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._memo: dict[bytes, np.ndarray] = {}
        self._load_shards()

    # ---- the cache ----------------------------------------------------------------------
    def _load_shards(self) -> None:
        if self.cache_dir is None or not self.cache_dir.is_dir():
            return
        for shard in sorted(self.cache_dir.glob("*.npz")):
            try:
                with np.load(shard) as data:
                    keys, vecs = data["keys"], data["vectors"]
            except (OSError, ValueError, KeyError):
                continue  # a damaged shard is only a lost cache: its texts are embedded again
            if vecs.ndim != 2 or vecs.shape[1] != self.dim:
                continue
            for k, v in zip(keys.tolist(), vecs.astype(np.float32), strict=True):
                self._memo[bytes(k)] = v

    def _save_shard(self, keys: list[bytes], vecs: np.ndarray) -> None:
        if self.cache_dir is None or not keys:
            return
        name = f"{hashlib.sha1(b''.join(keys)).hexdigest()[:16]}.npz"
        arrays = {"keys": np.array(keys, dtype="S20"), "vectors": vecs.astype(np.float16)}
        # an unwritable cache only costs the next run the embedding time (the ignore: numpy's
        # stub lets mypy think `**arrays` may fill the keyword-only `allow_pickle: bool`)
        with contextlib.suppress(OSError):
            atomic_write(self.cache_dir / name, lambda h: np.savez(h, **arrays))  # type: ignore[arg-type]

    @property
    def cached(self) -> int:
        return len(self._memo)

    def knows(self, text: str) -> bool:
        return _key(text) in self._memo

    def vector(self, text: str) -> np.ndarray:
        """The vector of a text already embedded (:meth:`warm`)."""
        return self._memo[_key(text)]

    # ---- embedding ----------------------------------------------------------------------
    def warm(self, texts: Iterable[str], progress: bool = False) -> int:
        """Embed every text not cached yet (sorted by length: fewer padded tokens); returns how
        many were embedded."""
        missing = {}
        for text in texts:
            if text and (k := _key(text)) not in self._memo:
                missing[k] = text
        if not missing:
            return 0
        from rar.progress import progress_bar

        order = sorted(missing, key=lambda k: len(missing[k]))
        bar = progress_bar(len(order), "embed conversation turns", "turn", enabled=progress)
        done_keys: list[bytes] = []
        chunks: list[np.ndarray] = []
        try:
            for start in range(0, len(order), self.batch_size):
                keys = order[start : start + self.batch_size]
                vecs = np.asarray(self.embed([missing[k] for k in keys]), dtype=np.float32)
                # rounded as the disk cache stores them: a cached run equals an uncached one
                vecs = vecs.astype(np.float16).astype(np.float32)
                for k, v in zip(keys, vecs, strict=True):
                    self._memo[k] = v
                done_keys += keys
                chunks.append(vecs)
                bar.update(len(keys))
        finally:
            bar.close()
            if chunks:
                self._save_shard(done_keys, np.concatenate(chunks))
        return len(done_keys)

    def warm_contexts(self, contexts: Iterable[Sequence[Turn]], progress: bool = False) -> int:
        return self.warm((turn_text(t) for c in contexts for t in c), progress)

    def __call__(self, contexts: Sequence[Sequence[Turn]], max_turns: int) -> TurnVectors:
        """The last `max_turns` non-empty turns of each conversation as vectors."""
        kept = [[t for t in c if turn_text(t)][-max_turns:] for c in contexts]
        self.warm(turn_text(t) for c in kept for t in c)
        width = max(1, max((len(c) for c in kept), default=1))
        vectors = np.zeros((len(kept), width, self.dim), dtype=np.float32)
        roles = np.zeros((len(kept), width), dtype=np.int64)
        for i, turns in enumerate(kept):
            offset = width - len(turns)
            for j, turn in enumerate(turns):
                vectors[i, offset + j] = self._memo[_key(turn_text(turn))]
                roles[i, offset + j] = ROLE_IDS.get(turn.role, 1)
        return TurnVectors(torch.from_numpy(vectors), torch.from_numpy(roles))


_SHARED: dict[str, TurnEncoder] = {}


def corpus_turn_encoder(corpus: Corpus) -> TurnEncoder:
    """The encoder of `corpus`'s embedding model, one per process and model (stages share its
    memo), cached on disk under :func:`turn_cache_dir`."""
    meta = corpus.embedding_meta
    dim = int(corpus.vectors().shape[1])
    tag = f"{meta.get('model') or 'packaged-all-MiniLM-L6-v2'}-{meta.get('max_seq_length', 128)}-{dim}"
    if tag not in _SHARED:
        _SHARED[tag] = TurnEncoder(corpus.encode, dim, turn_cache_dir(tag))
    return _SHARED[tag]


def turn_cache_dir(model_tag: str) -> Path:
    """$RAR_CACHE_DIR/turn_vectors/<model tag>, else ~/.cache/rar/...: one folder per embedder."""
    root = Path(os.environ.get("RAR_CACHE_DIR") or Path.home() / ".cache" / "rar")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_tag)[-80:]
    return root / "turn_vectors" / safe
