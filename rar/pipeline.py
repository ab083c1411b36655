"""The one retrieve -> rank -> score path: `rar evaluate`, RL validation and test, the
baselines, `rar rank`, the reports and the experiment scripts all call these functions.

Why one module: the copies this replaced differed in batching, chunking and filtering, so the
evaluation table and the paper-table scripts computed their figures through different code.

- :func:`retrieve` -- each linked sample's top-k corpus ids from a retriever or a fitted
  baseline (history masked, exact over the whole corpus), in batches bounded by memory;
- :func:`rank` -- the ranker's results for those candidates, in chunks of `ranker_batch`;
- :func:`scored_ranking` / :func:`score` -- what is scored (a failed call is a miss, never its
  retriever-order fallback; `parser.score_appended` decides the appended tail) and the metrics;
- :func:`run_pipeline` -- all three, with the retriever's own order scored beside the ranker's;
- :class:`System` -- a retriever or baseline, an optional ranker and a name: the one system type;
- :class:`ConversationRetrieval` -- the retrieval step for one conversation a user typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from rar.data.conversation import conversation_query, mentioned_rows
from rar.data.linking import LinkedSample
from rar.data.types import Turn
from rar.metrics import sample_metrics
from rar.progress import progress_bar
from rar.rankers.types import RankRequest
from rar.retrievers.retrieval_batch import CandidateSource, RetrievalBatch

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.rankers.base import Ranker
    from rar.rankers.llm_only import LLMOnlyResult
    from rar.rankers.types import RankResult
    from rar.retrievers import Retriever

RETRIEVE_BATCH = 256  # histories per retriever forward pass
RANKER_BATCH = 512  # requests handed to the ranker at a time (bounds memory)
SCORE_CELLS = 20_000_000  # bound on the [B, N] score matrix (~80 MB of float32)


def retrieve_rows(
    source: CandidateSource,
    histories: Sequence[Sequence[int]],
    k: int,
    batch_size: int = RETRIEVE_BATCH,
    progress: bool = False,
    contexts: Sequence[Sequence[Turn]] | None = None,
) -> list[list[int]]:
    """Each history's (corpus rows, oldest first) top-k corpus rows, history items excluded,
    exact over the corpus, from a retriever or a fitted baseline (`CandidateSource.top_rows`).
    `contexts` are the conversations so far (read by sources with a text tower).

    The batch is capped so the [B, N] score matrix stays near 80 MB whatever the corpus size."""
    if contexts is not None and len(contexts) != len(histories):
        raise ValueError(f"{len(contexts)} conversations for {len(histories)} histories")
    batch = max(1, min(batch_size, SCORE_CELLS // max(1, int(source.num_items))))
    bar = progress_bar(len(histories), f"retrieve top-{k}", "sample", enabled=progress)
    out: list[list[int]] = []
    try:
        with torch.no_grad():
            for start in range(0, len(histories), batch):
                chunk = RetrievalBatch.from_rows(
                    histories[start : start + batch],
                    None if contexts is None else contexts[start : start + batch],
                    source.max_history,
                )
                rows, _ = source.top_rows(chunk, k)
                out.extend([r for r in row if r >= 0] for row in rows.tolist())
                bar.update(len(chunk))
    finally:
        bar.close()
    return out


def retrieve(
    source: CandidateSource,
    linked: Sequence[LinkedSample],
    corpus: Corpus,
    k: int,
    batch_size: int = RETRIEVE_BATCH,
    progress: bool = False,
) -> list[list[str]]:
    """Each linked sample's top-k corpus ids (its history excluded), from its history and its
    conversation so far. A fitted baseline first refuses samples from the dialogues it was
    fitted on."""
    source.check_unseen(linked)
    histories = [[corpus.index_of(cid) for cid in item.history_ids] for item in linked]
    contexts = [item.sample.context for item in linked]
    ids = corpus.ids
    rows = retrieve_rows(source, histories, k, batch_size, progress, contexts)
    return [[ids[r] for r in row] for row in rows]


def rank(
    ranker: Ranker,
    linked: Sequence[LinkedSample],
    candidates: Sequence[Sequence[str]],
    ranker_batch: int = RANKER_BATCH,
    progress: bool = False,
) -> list[RankResult]:
    """The ranker's RankResult for each sample's candidates, in request order.

    Per-item rows of one turn (same `turn_id`, same candidates) are one request: the ranker
    sees the same input for each, so it is asked once and every row scores that answer."""
    requests: list[RankRequest] = []
    where: list[int] = []  # row -> its request
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    for item, cands in zip(linked, candidates, strict=True):
        key = (item.turn_id, tuple(cands)) if item.turn_id is not None else None
        if key is not None and key in seen:
            where.append(seen[key])
            continue
        if key is not None:
            seen[key] = len(requests)
        where.append(len(requests))
        sample_id = item.turn_id or item.sample.sample_id
        requests.append(
            RankRequest(sample_id, item.sample.context, list(cands), list(item.history_ids))
        )
    results: list[RankResult] = []
    for start in range(0, len(requests), ranker_batch):
        results.extend(ranker.rank(requests[start : start + ranker_batch], progress=progress))
    return [results[i] for i in where]


def scored_ranking(result: RankResult | LLMOnlyResult) -> list[str]:
    """What a RankResult (or LLM-only result) is scored on: what the model ranked itself
    (`scored_ids`), or nothing (a miss, 0 on every metric) when the call failed --
    never the retriever-order fallback, whatever `parser.score_appended` says."""
    return [] if result.error is not None else list(result.scored_ids)


def first_error(results: Sequence[RankResult | LLMOnlyResult]) -> str | None:
    """The first failed call's message (one example to show the user)."""
    return next((r.error for r in results if r.error is not None), None)


def score(
    rankings: Sequence[Sequence[str]], linked: Sequence[LinkedSample], ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per-sample metrics (`ndcg@k`, `recall@k`, `mrr@k`, `hit@k`) of rankings vs targets."""
    targets = [item.target_ids for item in linked]
    per_sample = sample_metrics([list(r) for r in rankings], targets, ks=tuple(ks))
    return {name: np.asarray(v, dtype=float) for name, v in per_sample.items()}


@dataclass
class PipelineResult:
    """One pass of retrieve -> rank -> score over linked samples."""

    sample_ids: list[str]
    candidates: list[list[str]]  # the retriever's top-k, its own order
    results: list[RankResult] | None  # None: no ranker, the retriever order is final
    per_sample: dict[str, np.ndarray]  # e.g. "ndcg@10" (final) and "retriever/ndcg@10"
    metrics: dict[str, float] = field(default_factory=dict)  # means, plus ranker_* shares

    @property
    def rankings(self) -> list[list[str]]:
        """What was scored: the ranker's scored order, else the retriever's."""
        if self.results is None:
            return [list(c) for c in self.candidates]
        return [scored_ranking(r) for r in self.results]

    @property
    def ranker_failures(self) -> int:
        return sum(1 for r in self.results or () if r.error is not None)

    @property
    def first_error(self) -> str | None:
        return first_error(self.results or ())


@dataclass
class System:
    """A recommender system: a candidate source (a retriever or a fitted baseline), optionally
    a ranker over its top-k, and a name. No retriever and a ranker is an LLM-only system (the
    ranker names the movies itself). `rar evaluate`, RL validation, the quickstart and the demo
    all build this one type."""

    name: str
    retriever: CandidateSource | None = None
    ranker: Ranker | None = None
    source: str = ""  # e.g. the run directory, recorded in the output

    @property
    def kind(self) -> str:
        if self.retriever is None and self.ranker is None:
            raise ValueError(f"system '{self.name}' has neither a retriever nor a ranker")
        if self.retriever is None:
            return "llm-only"
        return "retriever" if self.ranker is None else "retriever+ranker"

    def run(
        self,
        linked: Sequence[LinkedSample],
        corpus: Corpus,
        k: int,
        ks: Sequence[int] = (5, 10),
        candidates: Sequence[Sequence[str]] | None = None,
        batch_size: int = RETRIEVE_BATCH,
        ranker_batch: int = RANKER_BATCH,
        progress: bool = False,
    ) -> PipelineResult:
        """:func:`run_pipeline` with this system's retriever and ranker."""
        if self.retriever is None:
            raise ValueError(
                f"system '{self.name}' is LLM-only: it has no candidates to rank "
                "(rar.evaluation.evaluator evaluates it)"
            )
        return run_pipeline(
            linked, corpus, self.retriever, self.ranker, k, ks, candidates, batch_size,
            ranker_batch, progress,
        )  # fmt: skip


def run_pipeline(
    linked: Sequence[LinkedSample],
    corpus: Corpus,
    retriever: CandidateSource,
    ranker: Ranker | None,
    k: int,
    ks: Sequence[int] = (5, 10),
    candidates: Sequence[Sequence[str]] | None = None,
    batch_size: int = RETRIEVE_BATCH,
    ranker_batch: int = RANKER_BATCH,
    progress: bool = False,
) -> PipelineResult:
    """Retrieve top-k (or reuse `candidates`), rank them (when a ranker is given) and score.

    `per_sample` holds the final order's metrics and, under "retriever/", the retriever's own
    order on the same samples; `metrics` their means plus the ranker's failed and appended
    shares (a failed call is a miss, counted in `ranker_failures`)."""
    if candidates is None:
        candidates = retrieve(retriever, linked, corpus, k, batch_size, progress)
    cands = [list(c) for c in candidates]
    results = rank(ranker, linked, cands, ranker_batch, progress) if ranker is not None else None
    out = PipelineResult([s.sample.sample_id for s in linked], cands, results, {})
    out.per_sample = score(out.rankings, linked, ks)
    for name, values in score(cands, linked, ks).items():
        out.per_sample[f"retriever/{name}"] = values
    out.metrics = {n: float(v.mean()) if len(v) else 0.0 for n, v in out.per_sample.items()}
    if results is not None:
        failures = out.ranker_failures
        total = sum(len(c) for c in cands)
        appended = sum(r.n_appended for r in results)
        out.metrics["ranker_failures"] = float(failures)
        out.metrics["ranker_appended_share"] = appended / total if total else 0.0
        out.metrics["ranker_failed_share"] = failures / len(results) if results else 0.0
    return out


class ConversationRetrieval:
    """Top-k candidate corpus ids for one conversation (`rar rank`, interactive chat): a
    pretrained retriever over the movies mentioned so far, else corpus search over the text."""

    def __init__(self, corpus: Corpus, run_dir: str | Path | None = None):
        self.corpus = corpus
        self.retriever: Retriever | None = None
        if run_dir is not None:
            from rar.retrievers import load_pretrained_run

            self.retriever = load_pretrained_run(run_dir, corpus).eval()

    def candidates(self, turns: list[Turn], k: int) -> tuple[list[str], str]:
        """(corpus ids, how they were found). Movies already mentioned are excluded."""
        history = mentioned_rows(self.corpus, turns)
        reads_text = self.retriever is not None and self.retriever.reads_conversation
        if self.retriever is not None and (history or reads_text):
            [rows] = retrieve_rows(self.retriever, [history], k, contexts=[turns])
            how = f"retriever over {len(history)} mentioned movie(s)"
            if reads_text:
                how += " and the conversation text"
            return [self.corpus.ids[r] for r in rows], how
        hits = self.corpus.search(conversation_query(turns), k + len(history))
        rows = [r for r, _ in hits if r not in set(history)][:k]
        how = "corpus search over the conversation"
        if self.retriever is not None:
            how += " (no movie mentioned yet for the retriever)"
        return [self.corpus.ids[r] for r in rows], how
