"""The optimiser both trainers use: one `optim:` config section, AdamW, gradient clipping and
the learning-rate schedule, so pretraining and post-training read the same keys."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from pydantic import Field

from rar.config import ConfigModel


class OptimConfig(ConfigModel):
    """AdamW over mini-batches (the keys shared by `rar pretrain` and `rar train`)."""

    lr: float = Field(1e-3, gt=0, description="AdamW (peak) learning rate.")
    batch_size: int = Field(128, ge=1, description="Examples per optimiser step.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    grad_clip: float | None = Field(1.0, gt=0, description="Clip the gradient norm (None = off).")


def adamw(params: Iterable[torch.nn.Parameter], config: OptimConfig) -> torch.optim.AdamW:
    """The optimiser of `config` over `params`."""
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def clip_gradients(model: torch.nn.Module, config: OptimConfig) -> float | None:
    """Clip the gradient norm to `config.grad_clip`; returns the norm before clipping (None
    when clipping is off)."""
    if config.grad_clip is None:
        return None
    return float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip))


def cosine_with_warmup(step: int, warmup: int, total: int, floor: float = 0.0) -> float:
    """LR multiplier: linear warm-up to 1 over `warmup` steps, then cosine decay to `floor`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
