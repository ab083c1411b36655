"""Configuration of `rar pretrain`: retriever pretraining on MovieLens sessions over the corpus."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rar.config import ConfigModel
from rar.retrievers.retriever_config import RetrieverConfig
from rar.tracking import TrackingConfig


class PretrainDataConfig(ConfigModel):
    """Which MovieLens release and corpus to train over."""

    movielens: str = Field(
        "movielens/ml-latest-small",
        description="MovieLens directory, relative to the data dir (or absolute); its name is the variant.",
    )
    corpus: str = Field(
        "corpus", description="Corpus directory (movies.parquet, embeddings, links)."
    )
    max_eval_sessions: int | None = Field(
        None, ge=1, description="Evaluate on at most this many val/test sessions (None = all)."
    )


class PretrainTrainingConfig(ConfigModel):
    """Optimisation and early stopping."""

    loss: Literal["sampled", "full_softmax"] = Field(
        "sampled",
        description="sampled: NLL over the target, sampled and in-batch negatives; full_softmax: over all items.",
    )
    num_negatives: int = Field(
        100, ge=0, description="Uniformly sampled corpus negatives per step."
    )
    in_batch_negatives: bool = Field(
        True, description="Also use other targets in the batch as negatives."
    )
    max_in_batch_negatives: int = Field(
        256, ge=1, description="Cap on in-batch negatives per step."
    )
    batch_size: int = Field(128, ge=1, description="Sequences per step.")
    eval_batch_size: int = Field(256, ge=1, description="Histories per evaluation batch.")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    grad_clip: float = Field(1.0, gt=0, description="Gradient norm clipping.")
    max_epochs: int = Field(50, ge=1, description="Upper bound on epochs.")
    max_steps_per_epoch: int | None = Field(
        None, ge=1, description="Cap steps per epoch (budgeted runs)."
    )
    patience: int = Field(
        5, ge=1, description="Stop after this many evaluations without a better val NDCG@10."
    )
    min_session_length: int = Field(
        2, ge=2, description="Sessions with fewer linked items are dropped."
    )


class PretrainConfig(ConfigModel):
    """Everything `rar pretrain` needs; stored as config.yaml in the run directory."""

    name: str = Field("pretrain", description="Run directory name under tracking.runs_dir.")
    seed: int = Field(0, description="Seed for the split, initialisation, shuffling and negatives.")
    threads: int | None = Field(None, ge=1, description="torch threads (None = torch default).")
    retriever: RetrieverConfig = Field(
        default_factory=RetrieverConfig, description="Retriever architecture."
    )
    data: PretrainDataConfig = Field(
        default_factory=PretrainDataConfig, description="Data sources."
    )
    training: PretrainTrainingConfig = Field(
        default_factory=PretrainTrainingConfig, description="Optimisation."
    )
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig, description="Run directory and logging."
    )
