"""The five retrievers: padding invariance, causality, history masking, overfitting, bad configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rar.config import ConfigError, load_config
from rar.retrievers import RETRIEVER_NAMES, RetrieverConfig, build_retriever, with_id_embedding
from rar.retrievers.serving import FaissTopK
from rar.retrievers.training_loss import next_item_loss

N_ITEMS, D_TEXT = 60, 16


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest single-threaded (and the machine is shared)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def vectors() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    v = torch.randn(N_ITEMS, D_TEXT, generator=g)
    return v / v.norm(dim=1, keepdim=True)


def _model(name: str, vectors: torch.Tensor, **kw):
    torch.manual_seed(1)
    cfg = RetrieverConfig(name=name, d_model=16, max_len=12, dropout=0.0, **kw)
    return build_retriever(cfg, vectors).eval()


@pytest.mark.parametrize("name", RETRIEVER_NAMES)
def test_padding_never_changes_outputs(name, vectors):
    model = _model(name, vectors)
    short = torch.tensor([[4, 9, 2, 30]])
    padded = torch.tensor([[0, 0, 0, 0, 0, 4, 9, 2, 30]])
    batch = torch.cat([padded, torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9]])])
    with torch.no_grad():
        ref = model.encode(short)
        torch.testing.assert_close(model.encode(padded), ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.encode(batch)[:1], ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in RETRIEVER_NAMES if n != "bert4rec"])
def test_causal_models_do_not_see_the_future(name, vectors):
    model = _model(name, vectors)
    a = torch.tensor([[3, 4, 5, 6, 7]])
    b = torch.tensor([[3, 4, 5, 50, 51]])
    with torch.no_grad():
        ha, hb = model.hidden_states(a), model.hidden_states(b)
    torch.testing.assert_close(ha[:, :3], hb[:, :3], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(ha[:, 3:], hb[:, 3:])


@pytest.mark.parametrize("name", RETRIEVER_NAMES)
def test_history_items_are_masked(name, vectors):
    model = _model(name, vectors)
    history = torch.tensor([[0, 0, 5, 7, 1], [0, 0, 0, 0, 60]])
    scores = model.scores(history)
    assert scores.shape == (2, N_ITEMS)
    assert torch.isinf(scores[0, [4, 6, 0]]).all() and torch.isfinite(scores[0, [1, 2, 3]]).all()
    assert torch.isinf(scores[1, 59]) and torch.isfinite(scores[1, :59]).all()
    rows, values = model.topk(history, 10)
    assert not set(rows[0].tolist()) & {4, 6, 0} and torch.isfinite(values).all()


@pytest.mark.parametrize("name", RETRIEVER_NAMES)
def test_empty_history_scores_every_item(name, vectors):
    model = _model(name, vectors)
    for history in (torch.zeros(2, 0, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)):
        scores = model.scores(history)
        assert scores.shape == (2, N_ITEMS) and torch.isfinite(scores).all()


def test_faiss_topk_matches_exact_topk(vectors):
    model = _model("lrurec", vectors)
    history = torch.tensor([[0, 3, 8, 11], [1, 2, 3, 4], [0, 0, 0, 9]])
    exact_rows, exact_scores = model.topk(history, 7)
    server = FaissTopK(model)
    rows, scores = server.topk(history, 7)
    np.testing.assert_array_equal(rows, exact_rows.numpy())
    np.testing.assert_allclose(scores, exact_scores.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", RETRIEVER_NAMES)
def test_each_model_overfits_a_tiny_dataset(name, vectors):
    torch.manual_seed(0)
    model = build_retriever(RetrieverConfig(name=name, d_model=32, max_len=8, dropout=0.0), vectors)
    sequences = torch.tensor([[11, 22, 33, 44, 55], [0, 5, 15, 25, 35], [0, 0, 2, 4, 6]])
    history, target_rows = sequences[:, :-1], sequences[:, -1] - 1

    def held_out_nll() -> float:
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(model.logits(history), target_rows).item()

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    before = held_out_nll()
    for _ in range(60):
        inputs, targets = model.training_pairs(sequences, g)
        loss = next_item_loss(model, inputs, targets, "sampled", num_negatives=20, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert held_out_nll() < 0.2 * before
    rows, _ = model.topk(history, 1)
    assert rows[:, 0].tolist() == target_rows.tolist()


def test_full_softmax_loss_trains(vectors):
    torch.manual_seed(0)
    model = build_retriever(
        RetrieverConfig(name="lrurec", d_model=16, max_len=8, dropout=0.0), vectors
    )
    seq = torch.tensor([[1, 2, 3, 4]])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = next_item_loss(model, seq[:, :-1], seq[:, 1:], "full_softmax")
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_id_embedding_only_for_seen_items(vectors):
    model = _model("lrurec", vectors, use_id_embedding=True)
    with torch.no_grad():
        model.items.id_embedding.weight.normal_()
    text_only = model.items.proj(vectors)
    model.items.mark_seen(torch.tensor([0, 5]))
    table = model.item_table()
    torch.testing.assert_close(table[1:5], text_only[1:5])
    assert not torch.allclose(table[0], text_only[0])


def test_hybrid_item_table_added_to_a_text_only_model(vectors):
    """with_id_embedding: same scores at first (zero init), then only seen items move."""
    model = _model("lrurec", vectors)
    history = torch.tensor([[0, 3, 7], [2, 5, 9]])
    before = model.scores(history)
    hybrid = with_id_embedding(model, [2, 4, 6], vectors).eval()
    assert hybrid.config.use_id_embedding and int(hybrid.items.seen.sum()) == 3
    torch.testing.assert_close(hybrid.scores(history), before)
    opt = torch.optim.SGD([hybrid.items.id_embedding.weight], lr=1.0)
    hybrid.train()
    loss = -torch.log_softmax(hybrid.logits(history), -1)[:, 4].mean()
    loss.backward()
    opt.step()
    with torch.no_grad():
        moved = hybrid.item_table() - model.item_table()
    assert moved[4].abs().sum() > 0
    cold = [i for i in range(N_ITEMS) if i not in (2, 4, 6)]
    assert torch.count_nonzero(moved[cold]) == 0  # cold items stay text-only


def test_hybrid_item_table_keeps_an_existing_id_embedding(vectors):
    model = _model("lrurec", vectors, use_id_embedding=True)
    model.items.mark_seen(torch.tensor([1]))
    same = with_id_embedding(model, [3], vectors)
    assert same is model and same.items.seen[[1, 3]].all() and int(same.items.seen.sum()) == 2


def test_item_table_cache_follows_parameter_updates(vectors):
    model = _model("sasrec", vectors)
    with torch.no_grad():
        before = model.item_table().clone()
        model.items.proj.weight.add_(1.0)
        after = model.item_table()
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, model.items.proj(vectors))


def test_unknown_retriever_name_is_a_clear_error(tmp_path):
    from rar.retrievers.pretrain_config import PretrainConfig

    path = tmp_path / "c.yaml"
    path.write_text("retriever:\n  name: transformer9000\n")
    with pytest.raises(ConfigError, match="retriever.name"):
        load_config(PretrainConfig, path)
    with pytest.raises(ValueError, match="lrurec"):
        RetrieverConfig(name="nope")


def test_dimension_mismatch_is_a_clear_error(vectors):
    with pytest.raises(ValueError, match="dimension mismatch.*d_text=384.*16"):
        build_retriever(RetrieverConfig(d_text=384), vectors)
    with pytest.raises(ValueError, match="divisible"):
        build_retriever(RetrieverConfig(name="sasrec", d_model=10, attn_heads=4), vectors)


def test_out_of_range_tokens_are_rejected(vectors):
    model = _model("gru4rec", vectors)
    with pytest.raises(ValueError, match=r"\[0, 60\]"):
        model.encode(torch.tensor([[1, 61]]))
