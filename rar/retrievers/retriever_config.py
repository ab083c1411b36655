"""Configuration of a sequential retriever (LRURec and the four baselines share one schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rar.config import ConfigModel

RetrieverName = Literal["lrurec", "sasrec", "gru4rec", "bert4rec", "fmlprec"]
RETRIEVER_NAMES: tuple[str, ...] = ("lrurec", "sasrec", "gru4rec", "bert4rec", "fmlprec")
Towers = Literal["item", "text", "fused"]
TOWERS: tuple[str, ...] = ("item", "text", "fused")


class RetrieverConfig(ConfigModel):
    """Architecture of the retriever; the item table always comes from the corpus text vectors."""

    name: RetrieverName = Field(
        "lrurec", description="Model: lrurec, sasrec, gru4rec, bert4rec or fmlprec."
    )
    towers: Towers = Field(
        "item",
        description="What the retriever reads: 'item' = the movies named so far (the paper's "
        "LRURec), 'text' = the conversation turns only (a PECRS-style text tower over the "
        "corpus text vectors, plus the item bias), 'fused' = both, scores added (recommended "
        "for conversations: reaches cold movies and reads critiques).",
    )
    text_max_turns: int = Field(
        16, ge=1, description="Text tower: the most recent non-empty turns it reads."
    )
    text_scale: float = Field(
        10.0,
        gt=0.0,
        description="Text tower: initial scale of its cosine scores (learned from there).",
    )
    cooc_prior: bool = Field(
        False,
        description="Add a fixed co-occurrence prior: EASE item-item weights fitted on the "
        "training dialogues (pruned to cooc_neighbours per movie) times a learned scale.",
    )
    cooc_l2: float = Field(200.0, gt=0, description="Co-occurrence prior: EASE's L2 penalty.")
    cooc_neighbours: int = Field(
        200, ge=1, description="Co-occurrence prior: strongest neighbours kept per movie."
    )
    d_model: int = Field(
        64, ge=4, description="Hidden width d of the sequence model and item table."
    )
    n_layers: int = Field(
        2, ge=1, description="Number of blocks (LRU / attention / filter / GRU layers)."
    )
    dropout: float = Field(
        0.2, ge=0.0, lt=1.0, description="Dropout inside blocks (paper searches 0.2-0.4)."
    )
    attn_heads: int = Field(2, ge=1, description="Attention heads (SASRec, BERT4Rec).")
    max_len: int = Field(
        64, ge=2, description="Longest history the model reads; older items are cut."
    )
    d_text: int | None = Field(
        None, description="Width of the corpus text vectors; checked against them when set."
    )
    use_id_embedding: bool = Field(
        False,
        description="Add a learned ID embedding for items seen in training (text-only when false).",
    )
    item_bias: bool = Field(
        True,
        description="Add a learned per-item output bias (zero-initialised) to every score, so the "
        "retriever can learn item popularity; checkpoints without it load with zeros.",
    )
    item_bias_scale: float = Field(
        10.0,
        gt=0.0,
        description="The bias is this times its parameter: under Adam this multiplies the "
        "bias's learning rate, so short runs can learn popularity (several nats of range).",
    )
    r_min: float = Field(
        0.8, gt=0.0, lt=1.0, description="LRURec: smallest eigenvalue modulus at init."
    )
    r_max: float = Field(
        0.99, gt=0.0, lt=1.0, description="LRURec: largest eigenvalue modulus at init."
    )
    max_phase: float = Field(
        6.283185307179586, gt=0.0, description="LRURec: phases drawn from [0, max_phase)."
    )
    ffn_mult: int = Field(
        4, ge=1, description="Position-wise feed-forward width multiplier (d -> m*d -> d)."
    )
    mask_prob: float = Field(
        0.2, gt=0.0, lt=1.0, description="BERT4Rec: fraction of items masked in training."
    )
