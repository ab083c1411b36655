"""Save and reload retrievers. The frozen corpus vectors are not stored: they come from the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rar.atomic_files import atomic_torch_save, load_torch_file
from rar.errors import InputError, MissingPathError
from rar.retrievers.base import Retriever
from rar.retrievers.fusion import has_link_parts, read_fusion_file
from rar.retrievers.registry import build_retriever
from rar.retrievers.retriever_config import RetrieverConfig

if TYPE_CHECKING:
    from rar.corpus import Corpus

FORMAT = "rar-retriever-v1"


def retriever_state(model: Retriever) -> dict[str, Any]:
    """What a checkpoint holds: config, weights and the corpus shape they were trained for."""
    return {
        "format": FORMAT,
        "config": model.config.model_dump(mode="json"),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "num_items": model.num_items,
        "d_text": model.items.d_text,
    }


def save_retriever(model: Retriever, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = retriever_state(model)
    if extra:
        payload["extra"] = extra
    return atomic_torch_save(payload, path)


BIAS_KEY = "items.bias"


def load_weights(
    model: Retriever, state_dict: dict[str, torch.Tensor], source: str = "checkpoint"
) -> None:
    """Load weights strictly, except that a missing item bias (checkpoints written before the
    bias existed) loads as zeros, which gives exactly the old scores."""
    state_dict = dict(state_dict)
    bias = model.items.bias
    if bias is not None and BIAS_KEY not in state_dict:
        state_dict[BIAS_KEY] = torch.zeros_like(bias)
    if bias is None and BIAS_KEY in state_dict:
        raise InputError(
            f"{source} holds a learned item bias but the retriever config has item_bias=false"
        )
    model.load_state_dict(state_dict)


def retriever_from_state(
    payload: dict[str, Any], item_vectors: torch.Tensor | np.ndarray, source: str = "checkpoint"
) -> Retriever:
    """Rebuild a retriever from a checkpoint payload over the given corpus vectors."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{source} is not a RAR retriever checkpoint (expected format {FORMAT})")
    n_items = int(item_vectors.shape[0])
    if payload["num_items"] != n_items:
        raise InputError(
            f"{source} was trained over a corpus of {payload['num_items']} items but the given "
            f"corpus has {n_items}; load it with the corpus it was trained on"
        )
    config = RetrieverConfig.model_validate(payload["config"])
    model = build_retriever(config, item_vectors)
    load_weights(model, payload["state_dict"], source)
    model.eval()
    return model


def load_retriever(
    path: str | Path, item_vectors: torch.Tensor | np.ndarray, map_location: str = "cpu"
) -> Retriever:
    """Load a checkpoint written by :func:`save_retriever` (model in eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"retriever checkpoint not found: {path}")
    payload = load_torch_file(path, weights_only=True, map_location=map_location)
    return retriever_from_state(payload, item_vectors, source=str(path))


def load_pretrained_run(run_dir: str | Path, corpus: Corpus, fusion: bool = True) -> Retriever:
    """The best checkpoint of a run directory (`rar pretrain` or `rar train`), over `corpus` (a
    Corpus or its path), with the fusion weights of the run's fusion.json when it has one
    (`fusion=False`: the weights as saved in the checkpoint)."""
    run_dir = Path(run_dir)
    best = run_dir / "checkpoints" / "best.pt"
    if not best.is_file():
        raise MissingPathError(
            f"{run_dir} has no checkpoints/best.pt; is it a finished `rar pretrain` run directory?"
        )
    if isinstance(corpus, (str, Path)):
        from rar.corpus import Corpus

        corpus = Corpus.load(corpus)
    model = attach_turn_encoder(load_retriever(best, corpus.vectors()), corpus)
    weights = read_fusion_file(run_dir) if fusion else None
    if weights is not None:
        if has_link_parts(weights) and not model.links.is_built:
            model.links.build(corpus)
        model.fusion.set(weights)
    return model


def attach_turn_encoder(model: Retriever, corpus: Corpus) -> Retriever:
    """Give a retriever with a text tower the frozen turn embedder of `corpus` (a no-op for
    item-only retrievers, so every loader can call it)."""
    if model.text is not None and model.turn_encoder is None:
        from rar.corpus.turn_encoder import corpus_turn_encoder

        model.turn_encoder = corpus_turn_encoder(corpus)
    return model
