"""One recommender turn of the demo: the retriever's candidates, then the chosen ranker.

A turn records both stages: the retriever's list (what the retriever proposed, in its order) and
the ranker's list over the same candidates, with the ranker's latency, tokens and cost. A ranker
that fails, times out or is unavailable gives a record with `error` set and *no* ranked list:
the retriever's order is never presented as the ranker's.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rar.data.types import Turn
from rar.demo.linking import ChatLinker, MovieOption
from rar.demo.session import TurnRecord
from rar.errors import UnknownKeyError

if TYPE_CHECKING:
    from rar.corpus import Corpus

RETRIEVER_ONLY = "retriever only"
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)


def scrub_secrets(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with the value of every secret-looking environment variable replaced by ***."""
    environ = os.environ if environ is None else environ
    for name, value in environ.items():
        if _SECRET_NAME.search(name) and value and len(value) >= 6 and value in text:
            text = text.replace(value, "***")
    return text


class CandidateFinder(Protocol):
    """Where a demo turn's candidates come from: corpus ids and how they were found."""

    def candidates(self, turns: list[Turn], k: int) -> tuple[list[str], str]: ...


class DemoEngine:
    """Retrieve -> rank for chat turns, one :class:`rar.pipeline.System` per backend.

    Every backend label shown in the page is a System: the run's retriever (shared) and that
    label's ranker (None for "retriever only"). `rankers` maps a label to a RankerConfig (the
    ranker is built on first use) or to a ready ranker object (tests). Candidates come from
    `source` (default: :class:`rar.pipeline.ConversationRetrieval`, the one retrieval step of
    `rar rank` and `rar recommend`: the retriever, or corpus search before a movie is named).
    """

    def __init__(
        self,
        corpus: Corpus,
        run_dir: str | Path | None,
        rankers: dict[str, Any],
        candidates: int = 20,
        timeout_s: float = 60.0,
        source: CandidateFinder | None = None,
    ):
        from rar.pipeline import ConversationRetrieval, System

        self.corpus = corpus
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.source = source if source is not None else ConversationRetrieval(corpus, run_dir)
        retriever = (
            self.source.retriever if isinstance(self.source, ConversationRetrieval) else None
        )
        origin = str(self.run_dir) if self.run_dir is not None else "corpus search"
        self.configs: dict[str, Any] = {}
        self.systems: dict[str, System] = {}
        for label, value in rankers.items():
            ready = hasattr(value, "rank")
            self.configs[label] = getattr(value, "config", None) if ready else value
            self.systems[label] = System(label, retriever, value if ready else None, origin)
        self.systems[RETRIEVER_ONLY] = System(RETRIEVER_ONLY, retriever, None, origin)
        self.candidates = int(candidates)
        self.timeout_s = float(timeout_s)
        self.linker = ChatLinker(corpus)
        self._build_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rar-demo-rank")

    @property
    def backends(self) -> list[str]:
        return [*self.configs, RETRIEVER_ONLY]

    def backend_kind(self, label: str) -> str:
        """The ranker backend behind a label ("semantic", "openai", ...), or "retriever"."""
        if label == RETRIEVER_ONLY:
            return "retriever"
        config = self.configs.get(label)
        system = self.systems.get(label)
        ranker = system.ranker if system is not None else None
        return str(getattr(config, "backend", None) or getattr(ranker, "backend", label))

    def is_llm(self, label: str) -> bool:
        from rar.rankers.registry import LLM_RANKER_NAMES

        return self.backend_kind(label) in LLM_RANKER_NAMES

    def ranker(self, label: str):
        """The ranker of a label's System, built once (local models load here, on first use)."""
        with self._build_lock:
            system = self.systems.get(label)
            if system is None or label == RETRIEVER_ONLY:
                raise UnknownKeyError(f"unknown ranker {label!r}; choose one of {self.backends}")
            if system.ranker is None:
                from rar.rankers import build_ranker

                system.ranker = build_ranker(self.configs[label], self.corpus)
            return system.ranker

    def warm_up(self, label: str) -> None:
        """Build a ranker and load the sentence encoder before the first visitor waits."""
        if label != RETRIEVER_ONLY:
            self.ranker(label)
        encode = getattr(self.corpus, "encode", None)
        if encode is not None:
            encode(["warm up"])

    def movie_option(self, corpus_id: str) -> MovieOption:
        return self.linker.movie(corpus_id)

    def recommend(
        self, turns: list[Turn], backend: str, k: int, sample_id: str = "demo"
    ) -> TurnRecord:
        """Both stages for the conversation so far (ending with the seeker's turn)."""
        k = max(1, int(k))
        ids, how = self.source.candidates(turns, max(self.candidates, k))
        record = TurnRecord(
            backend=backend, k=k, retriever_ids=list(ids), how=how, is_llm=self.is_llm(backend)
        )
        if not ids:
            record.error = "no candidates: name a movie or describe what you like"
            return record
        if backend == RETRIEVER_ONLY:
            return record
        from rar.rankers.types import RankRequest

        request = RankRequest(sample_id, list(turns), list(ids))
        start = time.perf_counter()
        try:
            ranker = self.ranker(backend)
            future = self._pool.submit(ranker.rank, [request])
            [result] = future.result(timeout=self.timeout_s)
        except FutureTimeout:
            record.latency_s = time.perf_counter() - start
            record.error = f"no answer within {self.timeout_s:g} s"
            return record
        except Exception as exc:  # shown on the page: the ranker failed, the app goes on
            record.latency_s = time.perf_counter() - start
            record.error = scrub_secrets(f"{type(exc).__name__}: {exc}")
            return record
        wall = time.perf_counter() - start
        usage = dict(result.usage or {})
        record.latency_s = wall  # what the user waited for this stage (a cached reply: ~0)
        record.cached = bool(result.cached)
        if record.is_llm:
            record.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            record.completion_tokens = int(usage.get("completion_tokens") or 0)
            record.cost_usd = float(usage.get("cost_usd") or 0.0)
        if result.error:
            record.error = scrub_secrets(str(result.error))
            return record
        record.ranked_ids = list(result.ranked_ids)
        record.n_model_ranked = result.n_model_ranked
        return record

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for system in self.systems.values():
            if system.ranker is not None:
                with contextlib.suppress(Exception):  # closing is best effort at shutdown
                    system.ranker.close()
