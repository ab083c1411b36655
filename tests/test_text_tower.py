"""The conversation-aware retriever: text tower, fused scores, turn cache, no test leakage."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from rar.corpus.turn_encoder import TurnEncoder
from rar.data.types import Turn
from rar.retrievers import RetrievalBatch, RetrieverConfig, build_retriever, with_towers
from rar.rl.losses import nll_loss
from rar.rl.policy import log_prob, sample_ranked_sets

N, D = 60, 16


def _vectors(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(N, D, generator=g)
    return v / v.norm(dim=1, keepdim=True)


class FakeEmbedder:
    """Text 'movie 7 please' embeds as movie 7's vector; anything else as noise. Counts texts."""

    def __init__(self, vectors: torch.Tensor):
        self.vectors = vectors.numpy()
        self.seen: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.seen += texts
        out = []
        for text in texts:
            words = text.split()
            if words[:1] == ["movie"]:
                out.append(self.vectors[int(words[1])])
            else:
                rng = np.random.default_rng(zlib.crc32(text.encode()))
                v = rng.normal(size=D)
                out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)


def _model(towers: str, vectors: torch.Tensor, embedder: FakeEmbedder):
    torch.manual_seed(0)
    config = RetrieverConfig(
        name="lrurec", d_model=8, n_layers=1, towers=towers, dropout=0.0, text_scale=30.0
    )
    model = build_retriever(config, vectors)
    model.turn_encoder = TurnEncoder(embedder, D)
    return model


def _convo(*texts: str) -> list[Turn]:
    return [Turn("seeker" if i % 2 == 0 else "recommender", t) for i, t in enumerate(texts)]


def test_cold_movie_is_retrieved_through_its_text():
    vectors = _vectors()
    for towers in ("text", "fused"):
        model = _model(towers, vectors, FakeEmbedder(vectors))
        # movie 41 was never trained on (no ID, no bias); only its text can find it
        batch = RetrievalBatch(torch.tensor([[3, 5]]), [_convo("hi", "movie 41 please")])
        rows, _ = model.top_rows(batch, 5)
        assert rows[0, 0].item() == 41, towers
    item_only = _model("item", vectors, FakeEmbedder(vectors))
    rows, _ = item_only.top_rows(batch, 5)
    assert 41 not in rows[0].tolist()  # the item tower alone cannot see it


def test_text_tower_reads_the_conversation_and_needs_it():
    vectors = _vectors()
    model = _model("fused", vectors, FakeEmbedder(vectors))
    history = torch.tensor([[1, 2]])
    a = model.scores(RetrievalBatch(history, [_convo("movie 10 please")]))
    b = model.scores(RetrievalBatch(history, [_convo("movie 20 please")]))
    assert a[0, 10] > b[0, 10] and b[0, 20] > a[0, 20]
    assert torch.isneginf(a[0, 0]) and torch.isneginf(a[0, 1])  # history masked
    with pytest.raises(ValueError, match="contexts"):
        model.scores(history)
    empty = model.scores(RetrievalBatch(history, [[]]))  # no text: the item tower alone
    assert torch.isfinite(empty[0, 2:]).all()


def test_text_tower_gradients_reach_every_parameter():
    vectors = _vectors()
    model = _model("fused", vectors, FakeEmbedder(vectors)).train()
    batch = RetrievalBatch(
        torch.tensor([[0, 3], [4, 5]]),
        [_convo("movie 7", "hello"), _convo("movie 9", "no", "movie 11 maybe")],
    )
    scores = model.scores(batch)
    loss = nll_loss(scores, torch.tensor([[8], [12]]), torch.tensor([[True], [True]]))
    loss.backward()
    for name in ("text.mix.weight", "text.turn_logits", "text.log_scale", "items.proj.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_samplers_and_log_prob_work_unchanged_on_fused_scores():
    vectors = _vectors()
    model = _model("fused", vectors, FakeEmbedder(vectors))
    batch = RetrievalBatch(torch.tensor([[1, 2]]), [_convo("movie 30 please")])
    scores = model.scores(batch)
    sets = sample_ranked_sets(scores, 5, 3, generator=torch.Generator().manual_seed(0))
    assert sets.shape == (1, 3, 5) and not ({0, 1} & set(sets.flatten().tolist()))
    lp = log_prob(scores, sets)
    assert torch.isfinite(lp).all()
    lp.sum().backward()
    assert model.text.mix.weight.grad is not None


def test_with_towers_keeps_the_item_weights():
    vectors = _vectors()
    item = _model("item", vectors, FakeEmbedder(vectors)).eval()
    fused = with_towers(item, "fused", vectors).eval()
    history = torch.tensor([[1, 2, 3]])
    batch = RetrievalBatch(history, [_convo("movie 5")])
    expected = item.logits(history) + fused.text_scores(batch)
    assert torch.allclose(fused.logits(batch), expected, atol=1e-5)
    assert fused.turn_encoder is item.turn_encoder


def test_turn_encoder_embeds_each_text_once_and_caches_on_disk(tmp_path):
    vectors = _vectors()
    first = FakeEmbedder(vectors)
    enc = TurnEncoder(first, D, cache_dir=tmp_path)
    convos = [_convo("movie 1", "hello"), _convo("hello", "movie 2")]
    a = enc(convos, max_turns=4)
    assert sorted(first.seen) == ["hello", "movie 1", "movie 2"]
    second = FakeEmbedder(vectors)
    b = TurnEncoder(second, D, cache_dir=tmp_path)(convos, max_turns=4)
    assert second.seen == []  # read from the shards
    assert torch.equal(a.vectors, b.vectors) and torch.equal(a.roles, b.roles)
    assert a.roles.tolist() == [[1, 2], [1, 2]]
    short = enc([_convo("a", "b", "movie 3")], max_turns=2)  # newest turns kept
    assert short.roles.shape == (1, 2)
    assert np.allclose(short.vectors[0, 1].numpy(), vectors[3].numpy(), atol=1e-3)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")  # a damaged shard is only a lost cache
    assert TurnEncoder(FakeEmbedder(vectors), D, cache_dir=tmp_path).cached == 5  # "a" was cut


def test_fused_sft_weights_do_not_depend_on_test_conversations(
    small_corpus, pretrained_run, data_dir, tmp_path
):
    """Training reads train (and validation) conversations only: rewriting every test
    conversation leaves the trained policy bit-identical."""
    from dataclasses import replace

    from rar.config import load_config
    from rar.corpus import Corpus
    from rar.rl.inputs import load_splits
    from rar.rl.train_config import TrainConfig
    from rar.rl.trainer import RLTrainer
    from rar.tracking import Run

    corpus = Corpus.load(small_corpus)
    overrides = [
        f"pretrained_run={pretrained_run}",
        f"corpus={small_corpus}",
        f"data.data_dir={data_dir}",
        "data.dataset=inspired",
        "data.train_size=24",
        "data.val_size=8",
        "data.test_size=8",
        "optim.batch_size=4",
        "max_steps=3",
        "val_every=3",
        "validate_at_start=false",
        "rl.method=sft",
        "rl.k=8",
        "threads=1",
        "towers=fused",
        "ranker.backend=semantic",
        f"tracking.runs_dir={tmp_path}",
    ]
    states = []
    for variant in ("real", "rewritten"):
        cfg = load_config(TrainConfig, None, [*overrides, f"name={variant}"])
        splits = load_splits(cfg, corpus)
        if variant == "rewritten":
            splits.test = [
                replace(s, sample=replace(s.sample, context=_convo(f"movie {i} leak")))
                for i, s in enumerate(splits.test)
            ]
        trainer = RLTrainer.from_config(
            cfg, Run(tmp_path / variant, cfg), corpus=corpus, data=splits, progress=False
        )
        for step in range(3):
            trainer.train_step(trainer.batch_for_step(step))
        states.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
        assert any(k.startswith("text.") for k in states[-1])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_cooc_prior_equals_ease_and_survives_a_checkpoint(tmp_path):
    from rar.retrievers import load_retriever, save_retriever, with_cooc_prior
    from rar.retrievers.cooc_prior import ease_weights

    vectors = _vectors()
    dialogues = [np.array([1, 2, 3]), np.array([2, 3, 7]), np.array([1, 7, 9]), np.array([3, 9])]
    model = with_cooc_prior(_model("fused", vectors, FakeEmbedder(vectors)), dialogues, vectors)
    model.eval()
    history = torch.tensor([[0, 2, 4]])  # rows 1 and 3
    prior = model.cooc.scores(history)[0]
    seen = np.array([1, 2, 3, 7, 9])
    x = np.zeros((4, 5))
    for i, d in enumerate(dialogues):
        x[i, np.searchsorted(seen, d)] = 1
    b = ease_weights(x, model.config.cooc_l2)
    expected = np.zeros(N)
    expected[seen] = b[[0, 2]].sum(0)  # rows of movies 1 and 3
    assert np.allclose(prior.detach().numpy(), expected * model.cooc.scale.item(), atol=1e-5)
    batch = RetrievalBatch(history, [_convo("movie 5")])
    path = save_retriever(model, tmp_path / "p.pt")
    again = load_retriever(path, vectors)
    again.turn_encoder = model.turn_encoder
    assert torch.allclose(again.logits(batch), model.logits(batch), atol=1e-5)
    # the scale learns: it has a gradient
    model.train()
    model.logits(batch)[0, 7].backward()
    assert model.cooc.scale_param.grad is not None
