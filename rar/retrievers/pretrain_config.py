"""Configuration of `rar pretrain`: retriever pretraining on MovieLens sessions over the corpus.

Same shape as `rar train` (`corpus`, `data.*`, `optim.*`, then the budget at top level), so
one set of keys drives both trainers.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from rar.config import ConfigModel
from rar.optim import OptimConfig
from rar.retrievers.retriever_config import RetrieverConfig
from rar.run_guard import RunName
from rar.tracking import TrackingConfig


class PretrainDataConfig(ConfigModel):
    """Which MovieLens release to train over, and which of its sessions count."""

    movielens: str = Field(
        "movielens/ml-latest-small",
        description="MovieLens directory, relative to the data dir (or absolute); its name is the variant.",
    )
    max_eval_sessions: int | None = Field(
        None, ge=1, description="Evaluate on at most this many val/test sessions (None = all)."
    )
    min_session_length: int = Field(
        2, ge=2, description="Sessions with fewer linked items are dropped."
    )


class PretrainLossConfig(ConfigModel):
    """The next-item objective: which negatives the NLL is taken over."""

    kind: Literal["sampled", "full_softmax"] = Field(
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


class PretrainOptimConfig(OptimConfig):
    """AdamW for pretraining (larger batches and learning rate than post-training)."""

    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    batch_size: int = Field(128, ge=1, description="Sequences per step.")


class PretrainConfig(ConfigModel):
    """Everything `rar pretrain` needs; stored as config.yaml in the run directory."""

    # keys of the config shape before `rar train` and `rar pretrain` were made to agree
    moved_keys: ClassVar[dict[str, str]] = {
        "data.corpus": "corpus",
        "training.loss": "loss.kind",
        "training.num_negatives": "loss.num_negatives",
        "training.in_batch_negatives": "loss.in_batch_negatives",
        "training.max_in_batch_negatives": "loss.max_in_batch_negatives",
        "training.batch_size": "optim.batch_size",
        "training.lr": "optim.lr",
        "training.weight_decay": "optim.weight_decay",
        "training.grad_clip": "optim.grad_clip",
        "training.eval_batch_size": "eval_batch_size",
        "training.max_epochs": "epochs",
        "training.max_steps_per_epoch": "max_steps_per_epoch",
        "training.patience": "patience",
        "training.min_session_length": "data.min_session_length",
    }

    name: RunName = Field("pretrain", description="Run directory name under tracking.runs_dir.")
    seed: int = Field(0, description="Seed for the split, initialisation, shuffling and negatives.")
    threads: int | None = Field(None, ge=1, description="torch threads (None = torch default).")
    corpus: str = Field(
        "corpus", description="Corpus directory (movies.parquet, embeddings, links)."
    )
    retriever: RetrieverConfig = Field(
        default_factory=RetrieverConfig, description="Retriever architecture."
    )
    data: PretrainDataConfig = Field(
        default_factory=PretrainDataConfig, description="MovieLens sessions."
    )
    loss: PretrainLossConfig = Field(
        default_factory=PretrainLossConfig, description="Next-item objective."
    )
    optim: PretrainOptimConfig = Field(
        default_factory=PretrainOptimConfig, description="Optimiser."
    )
    epochs: int = Field(50, ge=1, description="Upper bound on epochs (early stopping ends sooner).")
    max_steps_per_epoch: int | None = Field(
        None, ge=1, description="Cap steps per epoch (budgeted runs)."
    )
    patience: int = Field(
        5, ge=1, description="Stop after this many evaluations without a better val NDCG@10."
    )
    eval_batch_size: int = Field(256, ge=1, description="Histories per evaluation batch.")
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig, description="Run directory and logging."
    )
