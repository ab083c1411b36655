"""Build a retriever by name, checking its config against the corpus vectors."""

from __future__ import annotations

import numpy as np
import torch

from rar.errors import InputError
from rar.retrievers.base import Retriever
from rar.retrievers.bert4rec import BERT4Rec
from rar.retrievers.fmlp import FMLPRec
from rar.retrievers.gru4rec import GRU4Rec
from rar.retrievers.lru import LRURec
from rar.retrievers.retriever_config import RETRIEVER_NAMES, RetrieverConfig
from rar.retrievers.sasrec import SASRec

RETRIEVERS: dict[str, type[Retriever]] = {
    "lrurec": LRURec,
    "sasrec": SASRec,
    "gru4rec": GRU4Rec,
    "bert4rec": BERT4Rec,
    "fmlprec": FMLPRec,
}
assert set(RETRIEVERS) == set(RETRIEVER_NAMES)


def build_retriever(config: RetrieverConfig, item_vectors: torch.Tensor | np.ndarray) -> Retriever:
    """A fresh retriever of `config.name` whose item table projects `item_vectors` [N, d_text]."""
    if config.name not in RETRIEVERS:
        raise InputError(
            f"unknown retriever '{config.name}'; choose one of: {', '.join(RETRIEVER_NAMES)}"
        )
    if isinstance(item_vectors, np.ndarray):
        item_vectors = torch.from_numpy(np.array(item_vectors, dtype=np.float32, copy=True))
    if item_vectors.ndim != 2 or item_vectors.shape[0] == 0:
        raise ValueError(
            f"item vectors must be a non-empty [N, d_text] matrix, got shape {tuple(item_vectors.shape)}"
        )
    if config.d_text is not None and int(item_vectors.shape[1]) != config.d_text:
        raise InputError(
            f"dimension mismatch: retriever config expects d_text={config.d_text} but the corpus "
            f"vectors have {item_vectors.shape[1]} dimensions (was the corpus embedded with another model?)"
        )
    if config.name in ("sasrec", "bert4rec") and config.d_model % config.attn_heads:
        raise InputError(
            f"d_model={config.d_model} must be divisible by attn_heads={config.attn_heads}"
        )
    config = config.model_copy(update={"d_text": int(item_vectors.shape[1])})
    return RETRIEVERS[config.name](config, item_vectors)


def with_id_embedding(
    model: Retriever, seen_rows: torch.Tensor | list[int], item_vectors: torch.Tensor | np.ndarray
) -> Retriever:
    """The hybrid item table: `model` with a learned ID embedding for `seen_rows` added to the
    text projection (cold items stay text-only). A model without an ID embedding gets one
    initialised to zero, so its scores are unchanged until training moves it; a model that
    already has one keeps it and marks the extra rows as seen (their ID part starts at zero
    when they were unseen, like every never-trained row of an embedding initialised here)."""
    rows = torch.as_tensor(seen_rows, dtype=torch.long)
    if model.config.use_id_embedding:
        model.items.mark_seen(rows)
        return model
    rebuilt = build_retriever(
        model.config.model_copy(update={"use_id_embedding": True}), item_vectors
    )
    missing, unexpected = rebuilt.load_state_dict(model.state_dict(), strict=False)
    if unexpected or set(missing) - {"items.id_embedding.weight", "items.seen"}:
        raise ValueError(f"cannot add an ID embedding: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        rebuilt.items.id_embedding.weight.zero_()
    rebuilt.items.mark_seen(rows)
    rebuilt.turn_encoder = model.turn_encoder
    rebuilt.train(model.training)
    return rebuilt


def with_towers(
    model: Retriever, towers: str, item_vectors: torch.Tensor | np.ndarray
) -> Retriever:
    """`model` rebuilt to read `towers` ('item', 'text' or 'fused'), every weight it has kept.
    A new text tower starts from its initialisation (pooled cosine similarity); dropping the
    text tower drops its weights. The turn encoder stays attached."""
    if towers == model.config.towers:
        return model
    rebuilt = build_retriever(model.config.model_copy(update={"towers": towers}), item_vectors)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("text.")}
    missing, unexpected = rebuilt.load_state_dict(state, strict=False)
    if model.text is not None and rebuilt.text is not None:
        rebuilt.text.load_state_dict(model.text.state_dict())
    if unexpected or any(not k.startswith("text.") for k in missing):
        raise ValueError(f"cannot change towers: missing {missing}, unexpected {unexpected}")
    rebuilt.turn_encoder = model.turn_encoder
    rebuilt.train(model.training)
    return rebuilt


def with_cooc_prior(
    model: Retriever,
    dialogue_items: list[np.ndarray],
    item_vectors: torch.Tensor | np.ndarray,
) -> Retriever:
    """`model` plus a co-occurrence prior fitted on the training dialogues' items (each a
    dialogue's corpus rows); a model that has one keeps it as it is (a resumed or post-trained
    policy keeps the prior it was fitted with)."""
    from rar.retrievers.cooc_prior import fit_cooc_prior

    if model.cooc is not None and model.cooc.weight.numel():
        return model
    config = model.config
    rebuilt = model
    if model.cooc is None:
        rebuilt = build_retriever(config.model_copy(update={"cooc_prior": True}), item_vectors)
        missing, unexpected = rebuilt.load_state_dict(model.state_dict(), strict=False)
        if unexpected or any(not k.startswith("cooc.") for k in missing):
            raise ValueError(f"cannot add the prior: missing {missing}, unexpected {unexpected}")
        rebuilt.turn_encoder = model.turn_encoder
        rebuilt.train(model.training)
    assert rebuilt.cooc is not None  # built with cooc_prior above
    rebuilt.cooc.set_weights(
        *fit_cooc_prior(dialogue_items, rebuilt.num_items, config.cooc_l2, config.cooc_neighbours)
    )
    return rebuilt
