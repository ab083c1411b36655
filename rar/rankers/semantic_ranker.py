"""Offline semantic ranker: embed the conversation (recent turns weigh more, seeker turns
more than recommender turns) and rank candidates by cosine similarity to their corpus
vectors, optionally blended with the retriever order by reciprocal ranks.

It reads the conversation text, which the retriever never sees, so it adds real signal; it
uses the same sentence-transformers model the corpus vectors were made with.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rar.data.types import Turn
from rar.rankers.base import Ranker
from rar.rankers.ranker_config import RankerConfig
from rar.rankers.types import RankRequest, RankResult

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from rar.corpus import Corpus


class SemanticRanker(Ranker):
    backend = "semantic"

    def __init__(self, config: RankerConfig, corpus: Corpus, max_cached_texts: int = 100_000):
        super().__init__(config, corpus)
        self._vectors = np.asarray(corpus.vectors(), dtype=np.float32)
        self._model: SentenceTransformer | None = None
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max_cached = max_cached_texts

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            self._model = self.corpus.embedder()
        return self._model

    def embed_texts(self, texts: list[str]) -> dict[str, np.ndarray]:
        """L2-normalised vectors for texts, memoised here and in the corpus's shared turn
        encoder (`rar.corpus.turn_encoder`): the conversation-aware retriever and every ranker
        of a process embed each turn once, and the encoder's disk cache spares later runs."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            from rar.corpus.turn_encoder import corpus_turn_encoder

            encoder = corpus_turn_encoder(self.corpus)
            encoder.warm(missing)
            for text in missing:
                self._text_cache[text] = encoder.vector(text)
            while len(self._text_cache) > self._max_cached:
                self._text_cache.popitem(last=False)
        return {t: self._text_cache[t] for t in texts}

    def turn_weights(self, context: list[Turn]) -> np.ndarray:
        s = self.config.semantic
        n = len(context)
        w = np.array([s.recency_decay ** (n - 1 - i) for i in range(n)], dtype=np.float32)
        role = np.array(
            [s.seeker_weight if t.role == "seeker" else s.recommender_weight for t in context],
            dtype=np.float32,
        )
        return w * role

    def conversation_vector(
        self, context: list[Turn], vecs: dict[str, np.ndarray]
    ) -> np.ndarray | None:
        turns = [t for t in context if t.text and t.text.strip()]
        if not turns:
            return None
        w = self.turn_weights(turns)
        if w.sum() <= 0:
            return None
        mat = np.stack([vecs[t.text.strip()] for t in turns])
        v = (w[:, None] * mat).sum(0)
        norm = float(np.linalg.norm(v))
        return v / norm if norm > 0 else None

    def order(self, conv: np.ndarray | None, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of candidates in ranked order, and their similarity scores."""
        n = len(rows)
        if conv is None or n == 0:
            return np.arange(n), np.zeros(n, dtype=np.float32)
        sims = self._vectors[rows] @ conv
        s = self.config.semantic
        if s.retriever_weight > 0:
            sem_rank = np.empty(n)
            sem_rank[np.argsort(-sims, kind="stable")] = np.arange(1, n + 1)
            ret_rank = np.arange(1, n + 1)
            score = (1 - s.retriever_weight) / (s.rrf_k + sem_rank) + s.retriever_weight / (
                s.rrf_k + ret_rank
            )
            return np.argsort(-score, kind="stable"), sims
        return np.argsort(-sims, kind="stable"), sims

    def order_candidates(
        self, conv: np.ndarray | None, rows: np.ndarray, request: RankRequest
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ranking of one request's candidates and their scores (subclasses rescore here)."""
        return self.order(conv, rows)

    def rank_sync(self, requests: Sequence[RankRequest]) -> list[RankResult]:
        texts = [t.text.strip() for r in requests for t in r.context if t.text and t.text.strip()]
        start = time.perf_counter()
        vecs = self.embed_texts(texts)
        results = []
        for r in requests:
            t0 = time.perf_counter()
            try:
                rows = np.array(
                    [self.corpus.index_of(cid) for cid in r.candidate_ids], dtype=np.int64
                )
            except (KeyError, IndexError) as exc:
                self._stats.failures += 1
                results.append(
                    RankResult(r.sample_id, [], error=f"bad request: unknown candidate {exc}")
                )
                continue
            conv = self.conversation_vector(r.context, vecs)
            order, sims = self.order_candidates(conv, rows, r)
            results.append(
                RankResult(
                    sample_id=r.sample_id,
                    ranked_ids=[r.candidate_ids[i] for i in order],
                    usage={"scores": [round(float(sims[i]), 5) for i in order]},
                    latency_s=time.perf_counter() - t0,
                )
            )
        self._stats.calls += len(requests)
        self._stats.latency_s += time.perf_counter() - start
        return results

    async def _rank_many(self, requests: Sequence[RankRequest], progress: bool) -> list[RankResult]:
        return await asyncio.to_thread(self.rank_sync, requests)
