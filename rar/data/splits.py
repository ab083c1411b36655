"""Deterministic dialogue-level train/val/test assignment.

A dialogue's split depends only on (seed, dataset, dialogue id) through a hash, so it never
changes with file order, with which other files are present, or between runs and machines.
The 10 hash buckets give 8:1:1 in expectation; all samples of a dialogue share its split, so
no conversation leaks between training and evaluation.
"""

from __future__ import annotations

import hashlib

from rar.errors import InputError

SPLITS = ("train", "val", "test")
ALL = "all"
SPLIT_CHOICES = (*SPLITS, ALL)


def split_of(dataset: str, dialogue_id: str, seed: int = 0) -> str:
    """ "train" (8 of 10 buckets), "val" (1) or "test" (1) for this dialogue."""
    digest = hashlib.sha1(f"{seed}\x1f{dataset}\x1f{dialogue_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 10
    if bucket < 8:
        return "train"
    return "val" if bucket == 8 else "test"


def check_split(split: str) -> str:
    if split not in SPLIT_CHOICES:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_CHOICES)}")
    return split
