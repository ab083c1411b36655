"""RLConfig: which objective, how candidate sets are sampled, and the loss weights."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rar.config import ConfigModel
from rar.rl.objectives import OBJECTIVES

METHOD_NAMES = tuple(OBJECTIVES)
Method = Literal[METHOD_NAMES]  # type: ignore[valid-type]


class RLConfig(ConfigModel):
    """The RL part of post-training (Algorithm 1): sampling, reward, objective."""

    method: Method = Field(
        "dpo",
        description=", ".join(f"{name} ({m.about})" for name, m in OBJECTIVES.items()) + ".",
    )
    k: int = Field(25, ge=1, description="Candidate set size shown to the ranker (paper: 25).")
    group_size: int = Field(
        8,
        ge=2,
        description="Sets sampled per sample for GRPO (paper: 8), distill and label_credit; DPO/SimPO "
        "always use 2.",
    )
    temperature: float = Field(
        1.0, gt=0, description="Plackett-Luce temperature of the sampling policy."
    )
    sampler: Literal["auto", "top_down", "gumbel", "sequential"] = Field(
        "auto",
        description="Exact Plackett-Luce sampler (all equal in distribution); auto = gumbel for "
        "small corpora, top_down at scale.",
    )
    head_size: int = Field(
        512, ge=0, description="top_down sampler: items given explicit Gumbel noise."
    )
    beta: float = Field(
        0.05, gt=0, description="DPO/SimPO beta (paper searches 0.05, 0.1, 0.2); GRPO KL weight."
    )
    gamma: float = Field(0.5, ge=0, description="SimPO target margin gamma.")
    use_reference: bool = Field(
        False,
        description="DPO: divide by a frozen reference policy; GRPO: add beta*KL to it (paper: off).",
    )
    max_resamples: int = Field(
        2,
        ge=0,
        description="DPO/SimPO: resample a pair this many times when no set holds a label; then skip.",
    )
    nll_weight: float = Field(1.0, ge=0, description="Weight of the supervised NLL term.")
    rl_weight: float = Field(1.0, ge=0, description="Weight of the RL term.")
    reward_cutoff: int | None = Field(
        None, ge=1, description="NDCG cutoff of the reward (None = the whole ranked list)."
    )
    candidate_order: Literal["retriever", "shuffled", "sampled"] = Field(
        "retriever",
        description="Order of a sampled set handed to the ranker: retriever (by the policy's "
        "current scores, as at evaluation), shuffled (seeded by the set itself) or sampled (the "
        "Plackett-Luce draw order; makes the reward depend on the draw, see docs/rl.md).",
    )
    order_seed: int = Field(0, description="Seed of candidate_order=shuffled (mixed with the set).")
    max_failed_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Stop the run (exit 3) when more than this share of a step's ranked sets "
        "failed (their ranker call failed after its retries). Failed sets never reach the loss: "
        "GRPO averages each group over its other sets, DPO/SimPO skip the pair.",
    )
    shuffle_rewards: bool = Field(
        False,
        description="Control run: permute the ranker's rewards across the samples of a batch "
        "(seeded; no sample keeps its own) before DPO pairs / GRPO advantages are formed.",
    )

    @property
    def sets_per_sample(self) -> int:
        return self.group_size if OBJECTIVES[self.method].group else 2

    @property
    def has_rl_term(self) -> bool:
        """False for a method that trains on NLL alone (sft): no sets are sampled or ranked."""
        return OBJECTIVES[self.method].term is not None
