"""What a `rar train` run loads before it trains (:func:`load_inputs`): the linked
conversation splits, the policy it starts from (fresh or pretrained, with its RL dropout,
optional ID embedding and co-occurrence prior), the initial policy, the corpus and the ranker.
:class:`rar.rl.trainer.RLTrainer` is handed these objects; it loads nothing itself."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rar.checkpoints import seed_everything
from rar.data.linking import LinkedSample, expand_rows, link_samples
from rar.errors import InputError
from rar.rl.train_config import TrainConfig

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.data.types import Turn
    from rar.rankers.base import Ranker
    from rar.retrievers import Retriever

log = logging.getLogger("rar.rl")


@dataclass
class LinkedSplits:
    """A run's linked conversation samples: training, validation and (with
    `data.evaluate_test`) test rows, and the linking statistics metrics.json reports."""

    train: list[LinkedSample]
    val: list[LinkedSample] = field(default_factory=list)
    test: list[LinkedSample] = field(default_factory=list)
    link_stats: dict[str, Any] = field(default_factory=dict)

    def contexts(self) -> Iterator[list[Turn]]:
        """Every row's conversation so far (training, validation, test)."""
        for split in (self.train, self.val, self.test):
            for s in split:
                yield s.sample.context


@dataclass
class TrainerInputs:
    """What :class:`rar.rl.trainer.RLTrainer` is handed, loaded from a config: the policy to
    train (fitted to the training split), the initial policy, the data, the corpus and the
    ranker (None when the run asks none: SFT without validation)."""

    policy: Retriever
    reference: Retriever
    data: LinkedSplits
    corpus: Corpus
    ranker: Ranker | None


def subsample(items: Sequence[Any], size: int | None, seed: int) -> list[Any]:
    """A seeded subset of `size` items in their original order (all when size is None/larger)."""
    items = list(items)
    if size is None or size >= len(items):
        return items
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=size, replace=False))
    return [items[i] for i in keep]


def with_dropout(model: Retriever, dropout: float, item_vectors: torch.Tensor) -> Retriever:
    """The same weights in a retriever rebuilt with another dropout rate (paper: 0.1-0.2 for RL)."""
    from rar.retrievers import build_retriever

    config = model.config.model_copy(update={"dropout": float(dropout)})
    rebuilt = build_retriever(config, item_vectors)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.turn_encoder = model.turn_encoder
    return rebuilt


def load_policy(config: TrainConfig, corpus: Corpus, vectors: torch.Tensor) -> Retriever:
    """The policy a run starts from: a fresh `config.retriever`, or the `pretrained_run`'s,
    rebuilt with `retriever_dropout` when that is set and reading `config.towers` when that is
    set; a text tower gets the corpus's frozen turn embedder."""
    from rar.retrievers import (
        attach_turn_encoder,
        build_retriever,
        load_pretrained_run,
        with_towers,
    )

    if config.pretrained_run is None:
        model = build_retriever(config.retriever, vectors)
    else:
        model = load_pretrained_run(config.pretrained_run, corpus)
    if config.retriever_dropout is not None:
        model = with_dropout(model, config.retriever_dropout, vectors)
    if config.towers is not None:
        model = with_towers(model, config.towers, vectors)
    return attach_turn_encoder(model, corpus)


def frozen_copy(model: Retriever) -> Retriever:
    """A copy in eval mode with no gradients (the initial policy: KL logging, optional ref);
    the frozen turn embedder is shared, not copied."""
    reference = copy.deepcopy(model, {id(model.turn_encoder): model.turn_encoder}).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    return reference


def with_seen_ids(
    model: Retriever,
    samples: Sequence[LinkedSample],
    row_of: dict[str, int],
    vectors: torch.Tensor,
) -> Retriever:
    """The hybrid item table: an ID embedding for the items seen in `samples` (training)."""
    from rar.retrievers import with_id_embedding

    seen = {row_of[c] for s in samples for c in s.history_ids + s.target_ids}
    return with_id_embedding(model, sorted(seen), vectors)


def with_training_prior(
    model: Retriever,
    samples: Sequence[LinkedSample],
    row_of: dict[str, int],
    vectors: torch.Tensor,
) -> Retriever:
    """The co-occurrence prior fitted on the training dialogues (every movie each mentions)."""
    from rar.retrievers import with_cooc_prior

    per_dialogue: dict[tuple[str, str], set[int]] = {}
    for s in samples:
        key = (s.sample.dataset, s.sample.dialogue_id)
        per_dialogue.setdefault(key, set()).update(row_of[c] for c in s.history_ids + s.target_ids)
    items = [np.asarray(sorted(v), dtype=np.int64) for _, v in sorted(per_dialogue.items())]
    return with_cooc_prior(model, items, vectors)


def load_splits(config: TrainConfig, corpus: Corpus) -> LinkedSplits:
    """Linked train/val(/test) samples of `config.data`, subsampled with the fixed data seed,
    with the linking statistics (samples dropped because no target is in the corpus)."""
    from rar.data.registry import load_conversation_samples
    from rar.paths import resolve_data_dir

    d = config.data
    data_dir = resolve_data_dir(d.data_dir)
    sizes = {"train": d.train_size, "val": d.val_size, "test": d.test_size}
    wanted = ["train", "val"] + (["test"] if d.evaluate_test else [])
    out: dict[str, list[LinkedSample]] = {}
    link_stats: dict[str, Any] = {}
    for split in wanted:
        raw = load_conversation_samples(d.dataset, data_dir, split)
        linked, stats = link_samples(raw, corpus)
        link_stats[split] = stats.as_dict()
        out[split] = subsample(linked, sizes[split], d.subsample_seed)
        if split != "train":  # validation and test rows follow the evaluation protocol
            out[split] = expand_rows(out[split], config.eval_protocol)
            link_stats[split]["protocol"] = config.eval_protocol
        link_stats[split]["rows"] = len(out[split])
        log.info(
            "%s/%s: %d samples, %d linked (%d dropped: no target in the corpus), %d used",
            d.dataset,
            split,
            len(raw),
            len(linked),
            stats.dropped_no_linked_target,
            len(out[split]),
        )
    return LinkedSplits(out["train"], out["val"], out.get("test", []), link_stats)


def check_inputs(config: TrainConfig, data: LinkedSplits, n_items: int) -> None:
    """The data and corpus can train this run: some training rows, and k within the corpus."""
    if not data.train:
        raise InputError(f"no linked training samples for dataset '{config.data.dataset}'")
    if config.rl.k > n_items:
        raise InputError(f"rl.k={config.rl.k} exceeds the corpus size {n_items}")


def fit_to_training_data(
    policy: Retriever,
    config: TrainConfig,
    train: Sequence[LinkedSample],
    corpus: Corpus,
    vectors: torch.Tensor,
) -> Retriever:
    """The policy with the parts fitted on the training split that `config` asks for: the
    hybrid item table's ID embedding (`id_embedding`) and the co-occurrence prior
    (`cooc_prior`). `vectors` are the corpus's item vectors."""
    row_of = {cid: i for i, cid in enumerate(corpus.ids)}
    if config.id_embedding:  # an ID embedding for the items seen in training
        policy = with_seen_ids(policy, train, row_of, vectors)
    if config.cooc_prior:  # fitted on the training dialogues only
        policy = with_training_prior(policy, train, row_of, vectors)
    return policy


def load_inputs(
    config: TrainConfig,
    corpus: Corpus | None = None,
    ranker: Ranker | None = None,
    data: LinkedSplits | None = None,
    progress: bool = True,
) -> TrainerInputs:
    """Load what `config` trains with; a `corpus`, `ranker` or `data` given is used as it is.

    First the process is set up (`threads`, every RNG seeded with `seed`), so a fresh policy's
    initial weights are the same in every process. The initial policy is the loaded one, before
    the parts fitted on the training split; every turn is embedded once, up front, for a text
    tower; the ranker is built last, and only when the run asks it anything."""
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    if corpus is None:
        from rar.corpus import Corpus

        corpus = Corpus.load(config.corpus)
    vectors = torch.tensor(np.asarray(corpus.vectors(), dtype=np.float32))
    policy = load_policy(config, corpus, vectors)
    reference = frozen_copy(policy)  # the initial policy (KL logging, optional ref)
    if data is None:
        data = load_splits(config, corpus)
    check_inputs(config, data, len(corpus.ids))
    policy = fit_to_training_data(policy, config, data.train, corpus, vectors)
    if policy.turn_encoder is not None:
        policy.turn_encoder.warm_contexts(data.contexts(), progress=progress)
    if ranker is None and (config.rl.has_rl_term or data.val):
        from rar.rankers import build_ranker

        ranker = build_ranker(config.ranker, corpus)
    return TrainerInputs(policy, reference, data, corpus, ranker)
