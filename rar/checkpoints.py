"""Resumable training checkpoints, one format for `rar pretrain` and `rar train`.

A checkpoint (`checkpoints/last.pt`, its previous version `prev.pt`) holds everything a killed
run needs to continue bit-identically: the weights of every trained module, optimiser and
scheduler state, the python / numpy / torch RNG states (and the trainer's own generator), and
where the data stream stands (shuffle seed, epoch, position within the epoch). It is written
atomically, and a damaged one is one error line naming it (both via :mod:`rar.tracking`).
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rar.atomic_files import atomic_torch_save
from rar.errors import InputError
from rar.tracking import Run


def seed_everything(seed: int) -> None:
    """Seed the python, numpy and torch RNGs at the start of a run, so two processes of the same
    run hold the same RNG states (and a resumed one the same as an uninterrupted one)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG a training step may draw from (the global ones and `generator`)."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Put back what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if generator is not None:
        generator.set_state(state["generator"])


def canonical(value: Any) -> Any:
    """`value` with its containers rebuilt and its strings interned, so that pickle (which
    memoises objects by identity) writes the same bytes for equal payloads, whether their objects
    were made in this process or loaded from a checkpoint: a resumed run's last.pt is then
    byte-identical to an uninterrupted run's. Tensors and arrays are kept as they are."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        return {canonical(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(canonical(v) for v in value)
    return value


@dataclass(frozen=True)
class DataOrder:
    """Where the data stream stands: `position` batches into `epoch`, whose order is a
    permutation seeded by (`seed`, `epoch`), so the rest of the epoch is reproducible."""

    seed: int
    epoch: int
    position: int

    @classmethod
    def at_step(cls, seed: int, step: int, steps_per_epoch: int) -> DataOrder:
        """The order after `step` optimiser steps of `steps_per_epoch` each epoch."""
        epoch, position = divmod(step, steps_per_epoch)
        return cls(seed, epoch, position)

    def permutation(self, n: int) -> np.ndarray:
        """This epoch's order of `n` training examples (the same in every process)."""
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def batch(self, n: int, batch_size: int) -> np.ndarray:
        """Indices of the batch at `position` in this epoch's order of `n` examples."""
        start = self.position * batch_size
        return self.permutation(n)[start : start + batch_size]


@dataclass
class Resumed:
    """What a loaded checkpoint gives back besides the restored modules and RNGs."""

    step: int
    order: DataOrder
    state: dict[str, Any]  # the whole payload, for the trainer's own entries (best, counters)


class TrainingCheckpoint:
    """Saves and restores one trainer's resumable state in its run's `last.pt`.

    `modules` maps a payload key to each trained (or otherwise changing) module. `format` tags
    the payload (bumped when its layout changes), so a trainer never resumes from another's
    checkpoint or an older layout; `command` names the trainer in error messages."""

    def __init__(
        self,
        run: Run,
        format: str,
        command: str,
        modules: dict[str, torch.nn.Module],
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        generator: torch.Generator | None = None,
    ):
        self.run = run
        self.format = format
        self.command = command
        self.modules = modules
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.generator = generator

    @property
    def path(self) -> Path:
        return self.run.last_checkpoint

    def save(
        self, step: int, order: DataOrder, data: dict[str, Any] | None = None, **extra: Any
    ) -> Path:
        """Write last.pt atomically, keeping the one before as prev.pt. `data` identifies the
        training data (checked on resume); `extra` holds the trainer's own entries."""
        state: dict[str, Any] = {
            "format": self.format,
            "step": step,
            **{name: module.state_dict() for name, module in self.modules.items()},
            "optimizer": self.optimizer.state_dict(),
            "rng": rng_state(self.generator),
            "data": {
                "seed": order.seed,
                "epoch": order.epoch,
                "position": order.position,
                **(data or {}),
            },
            **extra,
        }
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return atomic_torch_save(canonical(state), self.path, keep_previous=True)

    def load(self, data: dict[str, Any] | None = None) -> Resumed:
        """Restore modules, optimiser, scheduler and RNGs from last.pt. Refuses a checkpoint of
        another trainer, or one whose `data` entries differ from the given ones (the data or
        config changed, so continuing would not be the same run)."""
        path = self.path
        state = self.run.load_last_checkpoint(weights_only=False)
        if not isinstance(state, dict) or state.get("format") != self.format:
            raise InputError(
                f"{path} is not a `{self.command}` checkpoint of this version ({self.format}); "
                "pass --overwrite to start the run again"
            )
        for key, value in (data or {}).items():
            if state["data"].get(key) != value:
                raise InputError(
                    f"{path}: the training data differ from the checkpoint's ({key}; data or "
                    "config changed); start a new run instead of resuming"
                )
        for name, module in self.modules.items():
            module.load_state_dict(state[name])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        restore_rng(state["rng"], self.generator)
        d = state["data"]
        return Resumed(int(state["step"]), DataOrder(d["seed"], d["epoch"], d["position"]), state)
