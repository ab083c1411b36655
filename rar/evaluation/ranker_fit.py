"""The fitting driver of the trained offline ranker: load a dataset's training and validation
splits, fit (`rar.rankers.fit_ranker`), and with a retriever run choose `retriever_weight` on
that run's validation top-k. It retrieves through `rar.pipeline`, so it sits above it, beside
the evaluation runner; `rar fit-ranker` and the experiment scripts call it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rar.data.linking import LinkedSample, link_samples
from rar.rankers.fit_ranker import FitSettings, fit_trained_ranker, select_retriever_weight
from rar.rankers.semantic_ranker import SemanticRanker
from rar.rankers.trained_ranker import TrainedModel

if TYPE_CHECKING:
    from rar.corpus import Corpus


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
