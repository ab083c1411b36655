"""Sequential retrievers over the corpus: LRURec (parallel scan) and SASRec, GRU4Rec, BERT4Rec, FMLP-Rec.

Token convention: corpus row i <-> token i + 1, 0 = padding; histories are left-padded.
"""

from rar.retrievers.base import Retriever, mask_history
from rar.retrievers.checkpoint import (
    attach_turn_encoder,
    load_pretrained_run,
    load_retriever,
    save_retriever,
)
from rar.retrievers.registry import (
    RETRIEVERS,
    build_retriever,
    with_cooc_prior,
    with_id_embedding,
    with_towers,
)
from rar.retrievers.retrieval_batch import CandidateSource, RetrievalBatch
from rar.retrievers.retriever_config import RETRIEVER_NAMES, RetrieverConfig

__all__ = [
    "RETRIEVERS",
    "RETRIEVER_NAMES",
    "CandidateSource",
    "RetrievalBatch",
    "Retriever",
    "RetrieverConfig",
    "attach_turn_encoder",
    "build_retriever",
    "load_pretrained_run",
    "load_retriever",
    "mask_history",
    "save_retriever",
    "with_cooc_prior",
    "with_id_embedding",
    "with_towers",
]
