"""The resumable state of a `rar train` run, one object the trainer owns and its checkpoint
(`checkpoints/last.pt`, format CHECKPOINT_FORMAT, on the shared :mod:`rar.checkpoints`) saves
and restores whole: the policy and the initial policy, optimiser, schedule, the sampling
generator and (at save time) the global RNGs, the step, model selection (the best validation
and early-stopping state) and the run's ranker counters. The trainer adds where the data
stream stands and what identifies the training data (a run never resumes on other data)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from rar.checkpoints import DataOrder, TrainingCheckpoint
from rar.optim import adamw, cosine_with_warmup
from rar.rl.ranker_totals import RankerTotals
from rar.rl.selection import ModelSelection

if TYPE_CHECKING:
    from rar.rankers.base import Ranker
    from rar.retrievers import Retriever
    from rar.rl.train_config import TrainConfig
    from rar.tracking import Run

# v2: the data order (epoch, position) is stored, by rar.checkpoints
CHECKPOINT_FORMAT = "rar-rl-trainer-v2"


@dataclass
class TrainerState:
    """Everything of a run that changes as it trains and that a resume must restore."""

    policy: Retriever
    reference: Retriever  # the initial policy, frozen
    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    generator: torch.Generator  # the candidate-set sampler's
    selection: ModelSelection
    ranker_totals: RankerTotals
    step: int = 0

    @classmethod
    def start(
        cls,
        policy: Retriever,
        reference: Retriever,
        config: TrainConfig,
        total_steps: int,
        ranker: Ranker | None,
    ) -> TrainerState:
        """Step 0: AdamW over the policy's trainable parameters with a cosine schedule (after
        warm-up) over `total_steps`, the sampler's generator seeded with `config.seed`, no
        validation yet, and the ranker's counters taken from now on."""
        o = config.optim
        optimizer = adamw([p for p in policy.parameters() if p.requires_grad], o)
        scheduler = LambdaLR(
            optimizer,
            lambda s: cosine_with_warmup(s, o.warmup_steps, total_steps, o.min_lr_ratio),
        )
        return cls(
            policy,
            reference,
            optimizer,
            scheduler,
            torch.Generator().manual_seed(config.seed),
            ModelSelection(config.select_metric, config.patience),
            RankerTotals(ranker),
        )

    def _checkpoint(self, run: Run) -> TrainingCheckpoint:
        return TrainingCheckpoint(
            run,
            CHECKPOINT_FORMAT,
            "rar train",
            {"model": self.policy, "initial_model": self.reference},
            self.optimizer,
            self.scheduler,
            self.generator,
        )

    def save(self, run: Run, order: DataOrder, data: dict[str, Any]) -> Path:
        """Write the run's last.pt (atomically, prev.pt kept) with every RNG, the data `order`
        and `data` (what identifies the training data, checked on resume)."""
        return self._checkpoint(run).save(
            self.step,
            order,
            data=data,
            ranker_counters=self.ranker_totals.totals(),
            **self.selection.state(),
        )

    def load(self, run: Run, data: dict[str, Any]) -> None:
        """Continue from the run's last.pt: weights, optimiser, schedule, RNGs, step, model
        selection, ranker counters. Refused when its `data` entries differ from the given."""
        resumed = self._checkpoint(run).load(data=data)
        self.step = resumed.step
        self.ranker_totals.resume_from(resumed.state.get("ranker_counters"))
        self.selection.restore(resumed.state)
