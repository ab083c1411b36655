"""The checkpoint of a `rar train` run (`checkpoints/last.pt`, format CHECKPOINT_FORMAT), on the
shared :mod:`rar.checkpoints`: the policy and the initial policy, optimiser, schedule, every RNG
and the data order, plus what the loop itself carries across a resume (the best validation and
early-stopping state, the run's ranker counters). The training data are identified by their
sample ids, so a run never resumes on other data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rar.checkpoints import DataOrder, TrainingCheckpoint

if TYPE_CHECKING:
    from rar.rl.trainer import RLTrainer

# v2: the data order (epoch, position) is stored, by rar.checkpoints
CHECKPOINT_FORMAT = "rar-rl-trainer-v2"


def _checkpoint(trainer: RLTrainer) -> TrainingCheckpoint:
    """The resumable state of this run (its `run` is replaced once the directory exists)."""
    return TrainingCheckpoint(
        trainer.run,
        CHECKPOINT_FORMAT,
        "rar train",
        {"model": trainer.model, "initial_model": trainer.reference},
        trainer.optimizer,
        trainer.scheduler,
        trainer.generator,
    )


def _data_identity(trainer: RLTrainer) -> dict[str, Any]:
    return {"train_ids": [s.sample.sample_id for s in trainer.train_samples]}


def save_checkpoint(trainer: RLTrainer) -> Path:
    """Write last.pt (atomically, prev.pt kept) with every RNG and the data order."""
    return _checkpoint(trainer).save(
        trainer.step,
        DataOrder.at_step(trainer.config.seed, trainer.step, trainer.steps_per_epoch),
        data=_data_identity(trainer)
        | {"steps_per_epoch": trainer.steps_per_epoch, "total_steps": trainer.total_steps},
        ranker_counters=trainer.ranker_totals.totals(),
        **trainer.selection.state(),
    )


def load_checkpoint(trainer: RLTrainer) -> None:
    """Continue from last.pt: weights, optimiser, schedule, RNGs, best model, counters."""
    resumed = _checkpoint(trainer).load(data=_data_identity(trainer))
    state = resumed.state
    trainer.step = resumed.step
    trainer.ranker_totals.resume_from(state.get("ranker_counters"))
    trainer.selection.restore(state)
