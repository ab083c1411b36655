"""Fitting the trained offline ranker (`rar.rankers.trained_ranker` serves it), all in one
module: from a dataset's splits (`fit_from_data`, what `rar fit-ranker` and the quickstart call)
to the closed-form fit (`fit_trained_ranker`) and the choice of `retriever_weight` on a
retriever run's validation top-k (`select_retriever_weight`). Choosing that weight retrieves
through `rar.pipeline`, so this module sits above it, beside the evaluation runner.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rar.data.linking import LinkedSample, link_samples
from rar.data.splits import split_of
from rar.data.types import Sample
from rar.errors import InputError
from rar.rankers.ranker_config import RankerConfig
from rar.rankers.semantic_ranker import SemanticRanker
from rar.rankers.trained_ranker import TrainedModel, TrainedRanker

if TYPE_CHECKING:
    from rar.corpus import Corpus

log = logging.getLogger("rar.rankers.fit")

RETRIEVER_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
COOC_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)  # in units of the co-occurrence score's spread


@dataclass
class FitSettings:
    """The few knobs of fitting; `l2` values are tried in turn and chosen on validation."""

    l2: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0)  # pull of W towards the identity
    calibration_steps: int = 50  # LBFGS iterations for scale and pop_weight
    cooc: bool = True  # fit the co-occurrence term (EASE on the training dialogues)
    cooc_l2: float = 200.0  # its EASE λ (the value validation chose for the EASE baseline)
    split_seed: int = 0  # the seed `rar.data.splits` assigned the dialogues with


def check_split(samples: Sequence[Sample], split: str, split_seed: int = 0) -> None:
    """Raise if any sample's dialogue is not in `split` (fitting must never see val/test)."""
    for s in samples:
        actual = split_of(s.dataset, s.dialogue_id, split_seed)
        if actual != split:
            raise InputError(
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


def _pairs(linked: Sequence[LinkedSample], corpus: Corpus) -> tuple[np.ndarray, np.ndarray]:
    """(sample index, target row) for every target of every sample."""
    idx, rows = [], []
    for i, x in enumerate(linked):
        for cid in x.target_ids:
            idx.append(i)
            rows.append(corpus.index_of(cid))
    return np.array(idx, dtype=np.int64), np.array(rows, dtype=np.int64)


@dataclass
class _Split:
    """Context vectors, (sample, target row) pairs and history rows of linked samples."""

    X: np.ndarray
    idx: np.ndarray
    rows: np.ndarray
    history: list[list[int]]

    @classmethod
    def of(cls, embedder: SemanticRanker, linked: Sequence[LinkedSample], corpus: Corpus) -> _Split:
        idx, rows = _pairs(linked, corpus)
        history = [[corpus.index_of(c) for c in x.history_ids] for x in linked]
        return cls(context_matrix(embedder, linked), idx, rows, history)


def cooc_matrix(
    train: Sequence[LinkedSample], corpus: Corpus, l2: float
) -> tuple[list[str], np.ndarray]:
    """EASE's item-item matrix B over the movies of the training dialogues, divided by the
    standard deviation of the scores it gives those dialogues, so that a cooc_weight of 1
    means one typical spread whatever λ and the data size."""
    from rar.baselines.ease import EASE, EASEConfig

    ease = EASE(EASEConfig(l2=l2)).fit(train, corpus)
    per_dialogue: dict[tuple[str, str], set[int]] = {}
    for x in train:
        rows = [corpus.index_of(c) for c in (*x.history_ids, *x.target_ids)]
        per_dialogue.setdefault((x.sample.dataset, x.sample.dialogue_id), set()).update(rows)
    dialogues = [np.array(sorted(rows), dtype=np.int64) for rows in per_dialogue.values()]
    spread = float(ease.score_histories(dialogues)[:, ease.seen_rows].std()) or 1.0
    B = np.asarray(ease.weights, dtype=np.float64)
    ids = [corpus.ids[int(r)] for r in ease.seen_rows]
    return ids, (B / spread).astype(np.float32)


def ridge_map(X: np.ndarray, Y: np.ndarray, l2: float) -> np.ndarray:
    """W = argmin ||X W - Y||^2 + l2 ||W - I||^2: the map from conversation vectors to the
    vectors of the movies recommended next, shrunk towards the identity (= semantic ranker)."""
    d = X.shape[1]
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    A = X64.T @ X64 + l2 * np.eye(d)
    return np.linalg.solve(A, X64.T @ Y64 + l2 * np.eye(d)).astype(np.float32)


def _similarities(split: _Split, W: np.ndarray, V: np.ndarray):
    """[n, N] scores (x W) . v, and an additive mask: -inf on history items (kept apart from
    the scores so the gradients of scale stay finite)."""
    import torch

    S = torch.from_numpy(split.X @ W) @ torch.from_numpy(V).T
    mask = torch.zeros_like(S)
    for i, hist in enumerate(split.history):
        if hist:
            mask[i, hist] = float("-inf")
    return S, mask


def _nll(S, pop, idx, rows, scale, pop_w):
    """Mean -log softmax of the target over the whole corpus (history excluded)."""
    import torch

    S, mask = S
    logits = scale * S + pop_w * pop + mask
    lse = torch.logsumexp(logits, dim=1)
    return (lse[idx] - logits[idx, rows]).mean()


def _calibrate(S, pop, idx, rows, steps: int) -> tuple[float, float]:
    """Fit scale and pop_weight by maximum likelihood (a convex 2-parameter problem)."""
    import torch

    log_scale = torch.tensor(float(np.log(20.0)), requires_grad=True)
    pop_w = torch.tensor(0.0, requires_grad=True)
    opt = torch.optim.LBFGS([log_scale, pop_w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = _nll(S, pop, idx, rows, log_scale.exp(), pop_w)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_scale.detach().exp()), float(pop_w.detach())


def fit_trained_ranker(
    train_samples: Sequence[Sample],
    corpus: Corpus,
    settings: FitSettings | None = None,
    val_samples: Sequence[Sample] | None = None,
    ranker_config: RankerConfig | None = None,
    embedder: SemanticRanker | None = None,
) -> TrainedModel:
    """Fit W (closed-form ridge), then scale and pop_weight (softmax likelihood) on training
    samples, for each `settings.l2`; keep the l2 with the best validation log-likelihood when
    `val_samples` are given (else the first l2). Deterministic: no random state."""
    import torch

    settings = settings or FitSettings()
    check_split(train_samples, "train", settings.split_seed)
    if val_samples:
        check_split(val_samples, "val", settings.split_seed)
    config = ranker_config or RankerConfig(backend="semantic")
    embedder = embedder or SemanticRanker(config, corpus)  # callers may share its text cache
    train, train_stats = link_samples(train_samples, corpus)
    if not train:
        raise InputError("no training sample has a target in the corpus; nothing to fit")
    pop = popularity(train)
    pop_vec = torch.tensor([pop.get(cid, 0.0) for cid in corpus.ids], dtype=torch.float32)
    V = np.array(embedder._vectors, dtype=np.float32)
    tr = _Split.of(embedder, train, corpus)
    va = None
    if val_samples:
        val_linked, _ = link_samples(val_samples, corpus)
        if val_linked:
            va = _Split.of(embedder, val_linked, corpus)
    trials, (W, scale, pop_w, l2) = _choose_l2(settings, tr, va, V, pop_vec)
    cooc_ids, cooc = cooc_matrix(train, corpus, settings.cooc_l2) if settings.cooc else ([], None)
    return TrainedModel(
        W=W,
        scale=scale,
        pop_weight=pop_w,
        retriever_weight=0.0,
        popularity=pop,
        cooc_weight=0.0,  # chosen with retriever_weight on a retriever's validation top-k
        cooc_ids=cooc_ids,
        cooc=cooc,
        meta=_model_meta(config, settings, l2, train, tr, corpus),
        metrics={"train_link": train_stats.as_dict(), "trials": trials, "chosen_l2": l2},
    )


def _choose_l2(
    settings: FitSettings, tr: _Split, va: _Split | None, V: np.ndarray, pop_vec: Any
) -> tuple[list[dict[str, float]], tuple[np.ndarray, float, float, float]]:
    """For each l2 of the grid: W, then scale and pop_weight, and the training (and validation)
    NLL. Returns every trial and the (W, scale, pop_weight, l2) of the lowest validation NLL;
    without validation only the first l2 is tried."""
    import torch

    X_pairs, Y_pairs = tr.X[tr.idx], V[tr.rows]
    t_idx, t_rows = torch.from_numpy(tr.idx), torch.from_numpy(tr.rows)
    trials: list[dict[str, float]] = []
    best: tuple[float, np.ndarray, float, float, float] | None = None
    for l2 in settings.l2:
        W = ridge_map(X_pairs, Y_pairs, l2)
        S = _similarities(tr, W, V)
        scale, pop_w = _calibrate(S, pop_vec, t_idx, t_rows, settings.calibration_steps)
        trial = {"l2": l2, "scale": scale, "pop_weight": pop_w}
        trial["train_nll"] = float(_nll(S, pop_vec, t_idx, t_rows, scale, pop_w))
        del S
        if va is not None:
            Sv = _similarities(va, W, V)
            v_idx, v_rows = torch.from_numpy(va.idx), torch.from_numpy(va.rows)
            trial["val_nll"] = float(_nll(Sv, pop_vec, v_idx, v_rows, scale, pop_w))
            del Sv
        trials.append(trial)
        log.info("l2 %s: %s", l2, trial)
        key = trial.get("val_nll", 0.0)
        if best is None or key < best[0]:
            best = (key, W, scale, pop_w, l2)
        if va is None:
            break
    assert best is not None
    return trials, best[1:]


def _model_meta(
    config: RankerConfig,
    settings: FitSettings,
    l2: float,
    train: Sequence[LinkedSample],
    tr: _Split,
    corpus: Corpus,
) -> dict[str, Any]:
    """What the model was fitted with and on: the semantic settings it scores with, the l2
    chosen and its grid, and the size and datasets of the training data."""
    return {
        "semantic": config.semantic.model_dump(
            include={"recency_decay", "seeker_weight", "recommender_weight"}
        ),
        "l2": l2,
        "fit": {
            "l2_grid": list(settings.l2),
            "split_seed": settings.split_seed,
            "cooc_l2": settings.cooc_l2 if settings.cooc else None,
        },
        "train_samples": len(train),
        "train_pairs": int(len(tr.idx)),
        "datasets": sorted({x.sample.dataset for x in train}),
        "corpus_size": len(corpus.ids),
    }


def select_retriever_weight(
    model: TrainedModel,
    corpus: Corpus,
    linked: Sequence[LinkedSample],
    candidates: Sequence[list[str]],
    weights: Sequence[float] = RETRIEVER_WEIGHTS,
    k: int = 10,
    split_seed: int = 0,
    cooc_weights: Sequence[float] | None = None,
) -> tuple[float, dict[float, float]]:
    """The weight of the retriever position with the best validation N@k on re-ranked
    candidates (ties: the smaller weight), and with it the co-occurrence weight when the model
    has a co-occurrence term (`cooc_weights`, default COOC_WEIGHTS; set on `model.cooc_weight`;
    ties: the smaller). Returns (best retriever weight, N@k per retriever weight at the chosen
    co-occurrence weight); the whole grid goes to `model.metrics["val_ndcg@10_grid"]`."""
    from rar.metrics import ndcg_at_k
    from rar.rankers.types import RankRequest

    check_split([x.sample for x in linked], "val", split_seed)
    if cooc_weights is None:
        cooc_weights = COOC_WEIGHTS if model.cooc is not None else (model.cooc_weight,)
    ranker = TrainedRanker(RankerConfig(backend="trained"), corpus, model=model)
    requests = [
        RankRequest(x.sample.sample_id, x.sample.context, list(c), list(x.history_ids))
        for x, c in zip(linked, candidates, strict=True)
    ]
    grid: dict[tuple[float, float], float] = {}
    for a in cooc_weights:
        ranker.cooc_weight = float(a)
        for w in weights:
            ranker.retriever_weight = float(w)
            results = ranker.rank_sync(requests)
            grid[(float(w), float(a))] = float(
                np.mean(
                    [
                        ndcg_at_k(r.ranked_ids, x.target_ids, k)
                        for r, x in zip(results, linked, strict=True)
                    ]
                )
            )
    best_w, best_a = max(grid, key=lambda wa: (grid[wa], -wa[1], -wa[0]))
    model.cooc_weight = best_a
    model.metrics["val_ndcg@10_grid"] = {f"{w}/{a}": v for (w, a), v in grid.items()}
    return best_w, {w: v for (w, a), v in grid.items() if a == best_a}


def retrieve_top_k(retriever: Any, corpus: Corpus, linked: Sequence[LinkedSample], k: int) -> list:
    """Top-k corpus ids per sample (history excluded) of a retriever, a baseline, or the
    run directory of a trained retriever."""
    from rar.pipeline import retrieve
    from rar.retrievers import load_pretrained_run

    if isinstance(retriever, (str, Path)):
        retriever = load_pretrained_run(retriever, corpus)
    return retrieve(retriever, linked, corpus, k)


def fit_from_data(
    dataset: str,
    data_dir: Any,
    corpus: Corpus,
    settings: FitSettings | None = None,
    run_dir: str | None = None,
    k: int = 25,
    embedder: SemanticRanker | None = None,
) -> TrainedModel:
    """Fit on `dataset`'s training split (ridge strength chosen on its validation split) and, with a
    retriever run, choose `retriever_weight` on that run's validation top-k."""
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
