"""The interface every retriever shares: encode a history, score the whole corpus, take top-k.

Token convention: corpus row i <-> token i + 1; 0 is padding; histories are left-padded so the
most recent item is always at the last position.

`config.towers` says what it reads: the history through the sequence model ('item', the
paper's retriever), the conversation through a :class:`TextTower` ('text'), or both with their
scores added ('fused'). Every scoring entry point takes a :class:`RetrievalBatch` (a bare token
tensor is a batch without conversations), so samplers, `log_prob` and every objective work on
all three unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from rar.corpus.turn_encoder import TurnEncoder
from rar.retrievers.cooc_prior import CoocPrior
from rar.retrievers.fusion import FusionWeights, combine
from rar.retrievers.item_encoder import ItemEncoder
from rar.retrievers.metadata_links import MetadataLinks
from rar.retrievers.retrieval_batch import RetrievalBatch, as_batch
from rar.retrievers.retriever_config import RetrieverConfig
from rar.retrievers.text_tower import TextTower

if TYPE_CHECKING:
    from rar.data.linking import LinkedSample


class Retriever(nn.Module):
    """Base class: subclasses implement :meth:`hidden_states` (one output per position)."""

    #: whether position t's output only depends on positions <= t (shifted-sequence training).
    causal: bool = True

    def __init__(self, config: RetrieverConfig, item_vectors: torch.Tensor):
        super().__init__()
        self.config = config
        self.items = ItemEncoder(
            item_vectors,
            config.d_model,
            config.use_id_embedding,
            config.item_bias,
            config.item_bias_scale,
        )
        self.text: TextTower | None = None
        if config.towers != "item":
            self.text = TextTower(
                int(item_vectors.shape[1]), config.text_max_turns, config.text_scale
            )
        self.cooc: CoocPrior | None = CoocPrior(self.num_items) if config.cooc_prior else None
        #: people and title links from the corpus metadata, built by the fusion fit
        self.links = MetadataLinks(self.num_items)
        #: one weight per part of the score, fitted on validation after SFT (fusion.py)
        self.fusion = FusionWeights()
        #: frozen turn embedder of the text tower (not a parameter; attached by the loader)
        self.turn_encoder: TurnEncoder | None = None

    @property
    def num_items(self) -> int:
        return self.items.num_items

    @property
    def max_history(self) -> int:
        return self.config.max_len

    @property
    def reads_conversation(self) -> bool:
        return self.text is not None

    # ---- to implement -------------------------------------------------------------------
    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, L] tokens (left-padded) -> [B, L, d] outputs; padding must not affect real positions."""
        raise NotImplementedError

    # ---- shared -------------------------------------------------------------------------
    def check_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Validate a token batch: 2-D integer tensor with values in [0, N]."""
        if tokens.ndim != 2:
            raise ValueError(f"history must be a [B, L] tensor, got shape {tuple(tokens.shape)}")
        if tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"history must hold integer tokens, got dtype {tokens.dtype}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) > self.num_items):
            raise ValueError(
                f"history tokens must be in [0, {self.num_items}] (corpus row + 1, 0 = pad); "
                f"got values in [{int(tokens.min())}, {int(tokens.max())}]"
            )
        if tokens.shape[1] == 0:  # empty histories: one padding column, so there is a last position
            tokens = tokens.new_zeros(tokens.shape[0], 1)
        return tokens.long()

    def truncate(self, history: torch.Tensor) -> torch.Tensor:
        """Keep the most recent `max_len` positions (left padding keeps the newest at the end)."""
        return history[:, -self.config.max_len :]

    def encode(self, history: torch.Tensor) -> torch.Tensor:
        """[B, L] left-padded history -> [B, d] user state (the output at the last position)."""
        history = self.truncate(self.check_tokens(history))
        return self.hidden_states(history)[:, -1]

    def item_table(self) -> torch.Tensor:
        """[N, d] vectors of every corpus item (row i = corpus row i), without the bias."""
        return self.items.table()

    def item_bias(self) -> torch.Tensor | None:
        """[N] learned output bias per corpus item, or None (config.item_bias = false)."""
        return self.items.bias_values()

    def score_states(self, states: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of user states [..., d] against every item ([..., N]) or the 1-D `rows`:
        <state, item_table[i]> + item_bias[i]. Every scoring path goes through here."""
        return self.items.score(states, rows)

    def text_scores(self, batch: RetrievalBatch) -> torch.Tensor:
        """[B, N] the text tower's scores of every corpus item for the batch's conversations."""
        if self.text is None:
            raise ValueError("this retriever has no text tower (config.towers = 'item')")
        if batch.contexts is None:
            raise ValueError(
                f"a '{self.config.towers}' retriever reads the conversation: the RetrievalBatch "
                "needs `contexts`"
            )
        if self.turn_encoder is None:
            raise RuntimeError(
                "the text tower has no turn encoder: load the retriever with its corpus "
                "(load_pretrained_run) or call attach_turn_encoder"
            )
        turns = self.turn_encoder(batch.contexts, self.text.max_turns)
        return self.text.scores(turns, self.items.vectors)

    def score_parts(self, batch: RetrievalBatch) -> dict[str, torch.Tensor]:
        """The unweighted parts of the score ([B, N] each; the bias [N]): 'item' (the item
        tower without its bias), 'bias', 'text', 'prior', and the metadata links 'people' and
        'title' once built, those this retriever has."""
        parts: dict[str, torch.Tensor] = {}
        if self.config.towers != "text":
            parts["item"] = self.items.score(self.encode(batch.history), with_bias=False)
        bias = self.item_bias()
        if bias is not None:
            parts["bias"] = bias
        if self.text is not None:
            parts["text"] = self.text_scores(batch)
        if self.cooc is not None:
            parts["prior"] = self.cooc.scores(self.check_tokens(batch.history))
        if self.links.is_built:
            parts |= self.links.scores(self.check_tokens(batch.history))
        return parts

    def logits(self, inputs: RetrievalBatch | torch.Tensor) -> torch.Tensor:
        """[B, N] raw scores over the corpus, history items NOT masked (for losses): the parts
        summed with the fusion weights (all ones until fitted on validation)."""
        return combine(self.score_parts(as_batch(inputs)), self.fusion.as_dict())

    def scores(self, inputs: RetrievalBatch | torch.Tensor) -> torch.Tensor:
        """[B, N] scores over the whole corpus with items already in the history set to -inf."""
        batch = as_batch(inputs)
        history = self.check_tokens(batch.history)
        return mask_history(self.logits(batch), history)

    def top_rows(self, batch: RetrievalBatch, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`topk` in eval mode (no dropout), the mode restored afterwards: the
        `CandidateSource` entry point."""
        was_training = self.training
        self.eval()
        try:
            return self.topk(batch, k)
        finally:
            self.train(was_training)

    def check_unseen(self, samples: Sequence[LinkedSample]) -> None:
        """Retrievers may score any sample (training data is the caller's concern)."""

    @torch.no_grad()
    def topk(
        self, inputs: RetrievalBatch | torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact top-k corpus rows (not tokens) and their scores, history excluded: ([B, k], [B, k])."""
        batch = as_batch(inputs)
        history = self.check_tokens(batch.history)
        scores = self.logits(batch)
        b, pos = (history > 0).nonzero(as_tuple=True)
        scores[b, history[b, pos] - 1] = float("-inf")  # in place: no second [B, N] copy
        k = min(k, scores.shape[1])
        values, rows = scores.topk(k, dim=1)
        return rows, values

    def training_pairs(
        self, sequences: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shifted-sequence training: input positions :-1 predict the next item (targets 0 = ignore)."""
        return sequences[:, :-1], sequences[:, 1:]


def mask_history(scores: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
    """Set the scores of history items to -inf (padding tokens are ignored)."""
    rows = (history - 1).clamp(min=0)
    fill = torch.where(history > 0, float("-inf"), 0.0).to(scores.dtype)
    # scatter_add of -inf on pad rows would be 0 + 0; real rows get -inf.
    return scores.scatter_add(1, rows, fill)
