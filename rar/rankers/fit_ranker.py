"""Fit the trained offline ranker (`rar.rankers.trained_ranker`) on a training split.

What is learned, and from which data:
- W, scale and pop_weight: a softmax over every corpus movie (history excluded) of
  (conversation -> recommended movie) pairs from the **training split only**. The guard
  :func:`check_split` refuses any sample whose dialogue is not in that split.
- the epoch to keep (early stopping) and `retriever_weight`: chosen on the validation split,
  whose targets are only ever scored, never fitted.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rar.data.splits import split_of
from rar.data.types import Sample
from rar.evaluation.linking import LinkedSample, link_samples
from rar.rankers.ranker_config import RankerConfig
from rar.rankers.semantic_ranker import SemanticRanker
from rar.rankers.trained_ranker import TrainedModel, TrainedRanker

log = logging.getLogger("rar.rankers.fit")

RETRIEVER_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)


@dataclass
class FitSettings:
    """The few knobs of fitting (defaults measured on the ReDial validation split)."""

    epochs: int = 30
    lr: float = 3e-3
    l2: float = 1e-2  # pull of W towards the identity (the untrained semantic ranker)
    batch_size: int = 256
    init_scale: float = 20.0
    seed: int = 0
    split_seed: int = 0  # the seed `rar.data.splits` assigned the dialogues with


def check_split(samples: Sequence[Sample], split: str, split_seed: int = 0) -> None:
    """Raise if any sample's dialogue is not in `split` (fitting must never see val/test)."""
    for s in samples:
        actual = split_of(s.dataset, s.dialogue_id, split_seed)
        if actual != split:
            raise ValueError(
                f"sample {s.sample_id} belongs to the {actual!r} split; the trained ranker "
                f"may only be fitted on {split!r} samples"
            )


def context_matrix(ranker: SemanticRanker, linked: Sequence[LinkedSample]) -> np.ndarray:
    """[n, d] conversation vectors (zeros for a sample without text)."""
    texts = [t.text.strip() for x in linked for t in x.sample.context if t.text and t.text.strip()]
    vecs = ranker.embed_texts(texts)
    d = ranker._vectors.shape[1]
    out = np.zeros((len(linked), d), dtype=np.float32)
    for i, x in enumerate(linked):
        v = ranker.conversation_vector(x.sample.context, vecs)
        if v is not None:
            out[i] = v
    return out


def popularity(linked: Sequence[LinkedSample]) -> dict[str, float]:
    counts = Counter(cid for x in linked for cid in x.target_ids)
    return {cid: float(np.log1p(n)) for cid, n in counts.items()}


def _pairs(linked: Sequence[LinkedSample], corpus: Any) -> tuple[np.ndarray, np.ndarray]:
    """(sample index, target row) for every target of every sample."""
    idx, rows = [], []
    for i, x in enumerate(linked):
        for cid in x.target_ids:
            idx.append(i)
            rows.append(corpus.index_of(cid))
    return np.array(idx, dtype=np.int64), np.array(rows, dtype=np.int64)


def _history_mask(linked: Sequence[LinkedSample], corpus: Any) -> list[list[int]]:
    return [[corpus.index_of(c) for c in x.history_ids] for x in linked]


def fit_trained_ranker(
    train_samples: Sequence[Sample],
    corpus: Any,
    settings: FitSettings | None = None,
    val_samples: Sequence[Sample] | None = None,
    ranker_config: RankerConfig | None = None,
    embedder: SemanticRanker | None = None,
) -> TrainedModel:
    """Fit W, scale and pop_weight on training samples; keep the epoch with the best
    validation log-likelihood when `val_samples` are given (else the last epoch)."""
    import torch

    settings = settings or FitSettings()
    check_split(train_samples, "train", settings.split_seed)
    if val_samples:
        check_split(val_samples, "val", settings.split_seed)
    config = ranker_config or RankerConfig(backend="semantic")
    embedder = embedder or SemanticRanker(config, corpus)  # callers may share its text cache
    train, train_stats = link_samples(train_samples, corpus)
    if not train:
        raise ValueError("no training sample has a target in the corpus; nothing to fit")
    pop = popularity(train)
    ids = list(corpus.ids)
    pop_vec = torch.tensor([pop.get(cid, 0.0) for cid in ids], dtype=torch.float32)
    V = torch.from_numpy(np.array(embedder._vectors, dtype=np.float32))
    d = V.shape[1]

    def prepare(linked: Sequence[LinkedSample]):
        X = torch.from_numpy(context_matrix(embedder, linked))
        idx, rows = _pairs(linked, corpus)
        return X, torch.from_numpy(idx), torch.from_numpy(rows), _history_mask(linked, corpus)

    X, p_idx, p_row, hist = prepare(train)
    val = None
    if val_samples:
        val_linked, _ = link_samples(val_samples, corpus)
        if val_linked:
            val = prepare(val_linked)

    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    eye = torch.eye(d)
    W = torch.nn.Parameter(eye.clone())
    log_scale = torch.nn.Parameter(torch.tensor(float(np.log(settings.init_scale))))
    pop_w = torch.nn.Parameter(torch.tensor(0.0))
    opt = torch.optim.Adam([W, log_scale, pop_w], lr=settings.lr)

    def nll(Xs, idx, rows, hist_rows) -> torch.Tensor:
        logits = log_scale.exp() * (Xs[idx] @ W) @ V.T + pop_w * pop_vec
        mask = torch.zeros_like(logits, dtype=torch.bool)
        for j, i in enumerate(idx.tolist()):
            if hist_rows[i]:
                mask[j, hist_rows[i]] = True
        mask[torch.arange(len(rows)), rows] = False
        logits = logits.masked_fill(mask, float("-inf"))
        return torch.nn.functional.cross_entropy(logits, rows)

    def val_nll() -> float:
        Xv, iv, rv, hv = val
        with torch.no_grad():
            return float(
                sum(
                    nll(Xv, iv[s : s + 512], rv[s : s + 512], hv) * len(iv[s : s + 512])
                    for s in range(0, len(iv), 512)
                )
                / len(iv)
            )

    history: list[dict[str, float]] = []
    best = (float("inf"), None, -1)
    start_val = val_nll() if val is not None else None
    for epoch in range(1, settings.epochs + 1):
        perm = torch.randperm(len(p_idx), generator=gen)
        total = 0.0
        for s in range(0, len(perm), settings.batch_size):
            b = perm[s : s + settings.batch_size]
            loss = nll(X, p_idx[b], p_row[b], hist) + settings.l2 * ((W - eye) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        row = {"epoch": epoch, "train_loss": total / len(perm)}
        if val is not None:
            row["val_nll"] = val_nll()
            if row["val_nll"] < best[0]:
                best = (row["val_nll"], (W.detach().clone(), float(log_scale), float(pop_w)), epoch)
        history.append(row)
        log.info("epoch %d %s", epoch, row)
    if best[1] is not None:
        W_best, scale_log, pop_best = best[1]
    else:
        W_best, scale_log, pop_best = W.detach().clone(), float(log_scale), float(pop_w)
    return TrainedModel(
        W=W_best.numpy(),
        scale=float(np.exp(scale_log)),
        pop_weight=pop_best,
        retriever_weight=0.0,
        popularity=pop,
        meta={
            "semantic": config.semantic.model_dump(
                include={"recency_decay", "seeker_weight", "recommender_weight"}
            ),
            "fit": {k: v for k, v in vars(settings).items()},
            "train_samples": len(train),
            "train_pairs": int(len(p_idx)),
            "datasets": sorted({x.sample.dataset for x in train}),
            "corpus_size": len(ids),
        },
        metrics={
            "train_link": train_stats.as_dict(),
            "val_nll_before": start_val,
            "best_epoch": best[2] if best[1] is not None else settings.epochs,
            "best_val_nll": best[0] if best[1] is not None else None,
            "epochs": history,
        },
    )


def select_retriever_weight(
    model: TrainedModel,
    corpus: Any,
    linked: Sequence[LinkedSample],
    candidates: Sequence[list[str]],
    weights: Sequence[float] = RETRIEVER_WEIGHTS,
    k: int = 10,
    split_seed: int = 0,
) -> tuple[float, dict[float, float]]:
    """The weight of the retriever position with the best validation N@k on re-ranked
    candidates (ties: the smaller weight). Returns (best weight, N@k per weight)."""
    from rar.evaluation.metrics import ndcg_at_k
    from rar.rankers.types import RankRequest

    check_split([x.sample for x in linked], "val", split_seed)
    ranker = TrainedRanker(RankerConfig(backend="trained"), corpus, model=model)
    requests = [
        RankRequest(x.sample.sample_id, x.sample.context, list(c))
        for x, c in zip(linked, candidates, strict=True)
    ]
    table: dict[float, float] = {}
    for w in weights:
        ranker.retriever_weight = float(w)
        results = ranker.rank_sync(requests)
        table[float(w)] = float(
            np.mean(
                [
                    ndcg_at_k(r.ranked_ids, x.target_ids, k)
                    for r, x in zip(results, linked, strict=True)
                ]
            )
        )
    best = max(table, key=lambda w: (table[w], -w))
    return best, table


def retrieve_top_k(run_dir: str, corpus: Any, linked: Sequence[LinkedSample], k: int) -> list:
    """A trained retriever run's top-k corpus ids per sample (history excluded)."""
    from rar.evaluation.evaluate_config import EvaluateConfig
    from rar.evaluation.evaluator import Evaluator
    from rar.retrievers import load_pretrained_run

    retriever = load_pretrained_run(run_dir, corpus)
    return Evaluator(corpus, EvaluateConfig(k=k), progress=False).retrieve(retriever, linked, k)


def fit_from_data(
    dataset: str,
    data_dir: Any,
    corpus: Any,
    settings: FitSettings | None = None,
    run_dir: str | None = None,
    k: int = 25,
    embedder: SemanticRanker | None = None,
) -> TrainedModel:
    """Fit on `dataset`'s training split (early stopping on its validation split) and, with a
    retriever run, choose `retriever_weight` on that run's validation top-k."""
    from pathlib import Path

    from rar.data.registry import load_conversation_samples

    settings = settings or FitSettings()
    train = load_conversation_samples(dataset, Path(data_dir), "train", settings.split_seed)
    val = load_conversation_samples(dataset, Path(data_dir), "val", settings.split_seed)
    model = fit_trained_ranker(train, corpus, settings, val_samples=val, embedder=embedder)
    model.meta["dataset"] = dataset
    if run_dir is not None:
        val_linked, _ = link_samples(val, corpus)
        candidates = retrieve_top_k(run_dir, corpus, val_linked, k)
        best, table = select_retriever_weight(
            model, corpus, val_linked, candidates, split_seed=settings.split_seed
        )
        model.retriever_weight = best
        model.meta["retriever_run"] = str(run_dir)
        model.metrics["val_ndcg@10_by_retriever_weight"] = {str(w): v for w, v in table.items()}
        model.metrics["val_samples"] = len(val_linked)
    return model
