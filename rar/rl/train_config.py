"""TrainConfig: everything `rar train` needs (data, corpus, pretrained run, ranker, RL, optimiser)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from rar.config import ConfigModel
from rar.data.datasets import DATASET_NAMES, dataset_choices
from rar.optim import OptimConfig
from rar.rankers.ranker_config import RankerConfig
from rar.retrievers.retriever_config import RetrieverConfig, Towers
from rar.rl.rl_config import RLConfig
from rar.run_guard import RunName
from rar.tracking import TrackingConfig


class TrainOptimConfig(OptimConfig):
    """AdamW with a cosine schedule and linear warm-up."""

    lr: float = Field(1e-4, gt=0, description="Peak learning rate (paper searches 5e-5 and 1e-4).")
    batch_size: int = Field(16, ge=1, description="Conversation samples per optimiser step.")
    warmup_steps: int = Field(100, ge=0, description="Linear warm-up steps (paper: 100).")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="Cosine floor as a fraction of lr.")


class DataConfig(ConfigModel):
    """Which conversations train and validate the policy."""

    dataset: Literal[DATASET_NAMES] = Field(  # type: ignore[valid-type]
        "redial", description=f"Conversation dataset: {dataset_choices()}."
    )
    data_dir: str | None = Field(
        None, description="Data directory (None = $RAR_DATA_DIR, else ./data)."
    )
    train_size: int | None = Field(
        None,
        ge=1,
        description="Subsample the training split to this many samples (None = all; the paper "
        "caps at 2,500).",
    )
    val_size: int | None = Field(
        None,
        ge=1,
        description="Validation samples used for model selection (None = all; keep >= 500: "
        "fewer select noise).",
    )
    test_size: int | None = Field(
        None, ge=1, description="Test samples evaluated at the end (None = all)."
    )
    subsample_seed: int = Field(
        0,
        description="Seed of the train/val/test subsets (fixed across training seeds, so runs compare).",
    )
    evaluate_test: bool = Field(
        True, description="Evaluate the best checkpoint on the test split at the end."
    )


class TrainConfig(ConfigModel):
    """One RL post-training run of a pretrained retriever against a frozen ranker."""

    # keys of the config shape before `rar train` and `rar pretrain` were made to agree
    moved_keys: ClassVar[dict[str, str]] = {"batch_size": "optim.batch_size"}

    name: RunName = Field("train", description="Run name (directory under tracking.runs_dir).")
    seed: int = Field(0, description="Seed of data order, sampling, dropout and subsampling.")
    corpus: str = Field("corpus", description="Corpus directory (built by `rar build-corpus`).")
    pretrained_run: str | None = Field(
        ...,
        description="Run directory of `rar pretrain` (checkpoints/best.pt); null = no "
        "pretraining (a fresh retriever built from `retriever`).",
    )
    retriever: RetrieverConfig = Field(
        default_factory=RetrieverConfig,
        description="Architecture of the fresh retriever when pretrained_run is null (ignored "
        "otherwise: a pretrained run brings its own).",
    )
    towers: Towers | None = Field(
        None,
        description="What the policy reads (retriever.towers): 'item' (the paper's LRURec over the "
        "movies named so far), 'text' (the conversation only), 'fused' (both; recommended). A new "
        "text tower starts from pooled cosine similarity. None = keep the pretrained run's.",
    )
    cooc_prior: bool = Field(
        False,
        description="Add the co-occurrence prior (retriever.cooc_prior): EASE item-item weights "
        "fitted on the training split's dialogues, with a learned scale; a policy that has one "
        "keeps it.",
    )
    fit_fusion: bool = Field(
        True,
        description="After SFT (rl.method: sft) of a retriever that combines two or more "
        "sources (item tower, text tower, co-occurrence prior), re-weight the parts of its score "
        "on the validation split by N@10 and write fusion.json (rar/retrievers/fusion.py; "
        "docs/retrievers.md); false keeps the balance SFT learned.",
    )
    id_embedding: bool = Field(
        False,
        description="Hybrid item table: add a learned ID embedding (zero-initialised) for every "
        "corpus item in the training split's histories and targets; cold items stay text-only.",
    )
    retriever_dropout: float | None = Field(
        0.1,
        ge=0,
        lt=1,
        description="Override the retriever's dropout for RL (paper: 0.1-0.2; None = keep).",
    )
    data: DataConfig = Field(default_factory=DataConfig, description="Conversations.")
    ranker: RankerConfig = Field(
        default_factory=RankerConfig, description="The frozen ranker f_llm."
    )
    rl: RLConfig = Field(default_factory=RLConfig, description="Objective and sampling.")
    optim: TrainOptimConfig = Field(
        default_factory=TrainOptimConfig, description="Optimiser and schedule."
    )
    epochs: float = Field(
        10.0,
        gt=0,
        description="Budget in passes over the training set (early stopping ends sooner).",
    )
    max_steps: int | None = Field(
        None, ge=1, description="Cap on steps (the budget is min(epochs, max_steps))."
    )
    val_every: int = Field(
        50, ge=1, description="Validate (N@10 through the full pipeline) every N steps."
    )
    patience: int | None = Field(
        5,
        ge=1,
        description="Early stopping: stop after this many validations without a better "
        "select_metric, then restore the best checkpoint (None = run the whole budget).",
    )
    validate_at_start: bool = Field(
        True, description="Validate the pretrained policy at step 0 (it can win model selection)."
    )
    checkpoint_every: int = Field(
        25, ge=1, description="Write a resumable checkpoint every N steps."
    )
    eval_ks: list[int] = Field(
        default_factory=lambda: [5, 10], description="Cut-offs reported by validation/test."
    )
    eval_protocol: Literal["per_turn", "per_item"] = Field(
        "per_turn",
        description="Rows of validation and test (not of training): per_turn (one per "
        "recommender turn) or per_item (He et al. 2023: one per ground-truth movie of a turn); "
        "see docs/evaluation.md.",
    )
    select_metric: str = Field(
        "ndcg@10", description="Validation metric that picks the best checkpoint."
    )
    threads: int | None = Field(
        None, ge=1, description="torch.set_num_threads (None = leave as is)."
    )
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig, description="Run directory and W&B."
    )

    def step_budget(self, n_train: int) -> tuple[int, int]:
        """(steps per epoch, total steps): `epochs` passes over `n_train` training rows, capped
        at `max_steps`."""
        steps_per_epoch = math.ceil(n_train / self.optim.batch_size)
        total_steps = max(1, int(round(self.epochs * steps_per_epoch)))
        if self.max_steps is not None:  # a cap on the epoch budget
            total_steps = min(total_steps, self.max_steps)
        return steps_per_epoch, total_steps
