"""EvaluateConfig: which systems to evaluate, on which samples, with which cut-offs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rar.config import ConfigModel
from rar.rankers.ranker_config import RankerConfig


class EvaluateConfig(ConfigModel):
    """Settings of `rar evaluate` (and of the evaluator's Python API)."""

    k: int = Field(
        25, ge=1, description="Candidates the retriever passes to the ranker (paper: 25)."
    )
    ks: list[int] = Field(
        default_factory=lambda: [1, 5, 10, 20],
        description="Metric cut-offs (N@k, R@k, MRR@k, Hit@k).",
    )
    protocol: Literal["per_turn", "per_item"] = Field(
        "per_turn",
        description="Rows the metrics average over: per_turn (one per recommender turn, all its "
        "new movies as targets) or per_item (He et al. 2023: one per ground-truth movie of a "
        "turn, same history and context; the turn's other movies are not masked).",
    )
    split: str = Field("test", description="Split of a dataset directory to evaluate on.")
    max_samples: int | None = Field(
        None, ge=1, description="Evaluate a seeded random subset of this many samples (None = all)."
    )
    seed: int = Field(0, description="Seed for the subset and the bootstrap.")
    retriever_only: bool = Field(True, description="Also report each retriever's own top-k order.")
    baselines: list[str] = Field(
        default_factory=list,
        description="Baselines to evaluate next to the runs (most-popular, itemknn, ease), "
        "fitted on the dataset's training split.",
    )
    tune_baselines: bool = Field(
        True, description="Choose the baselines' hyperparameters on the validation split."
    )
    ranker: RankerConfig | None = Field(
        None, description="Ranker re-ranking the retriever's top-k (None = retriever only)."
    )
    llm_only: bool = Field(
        False,
        description="Also evaluate the ranker without retrieval (it names movies from its own "
        "knowledge; LLM backends only).",
    )
    llm_only_items: int = Field(20, ge=1, description="Movies the LLM-only prompt asks for.")
    batch_size: int = Field(256, ge=1, description="Histories per retriever forward pass.")
    ranker_batch: int = Field(
        512, ge=1, description="Requests handed to the ranker at a time (bounds memory)."
    )
    bootstrap_resamples: int = Field(
        10000, ge=100, description="Bootstrap resamples for `rar report compare`."
    )
    max_failed_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="`rar evaluate` exits with status 3 when a system's share of samples whose "
        "ranker call failed exceeds this (None: any failure is a warning, all failed is an "
        "error). Failed samples are always scored as misses.",
    )
    match_threshold: float = Field(
        0.85,
        gt=0,
        le=1,
        description="Title similarity below which a predicted title is a hallucination.",
    )
