"""The learned per-item output bias: applied on every scoring path, exact in FAISS, loadable
from checkpoints written without it, and it learns popularity from a skewed dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rar.retrievers import RETRIEVER_NAMES, RetrieverConfig, build_retriever, load_retriever
from rar.retrievers.checkpoint import save_retriever
from rar.retrievers.serving import FaissTopK
from rar.retrievers.training_loss import next_item_loss

N_ITEMS, D_TEXT = 50, 12


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def vectors() -> torch.Tensor:
    v = torch.randn(N_ITEMS, D_TEXT, generator=torch.Generator().manual_seed(3))
    return v / v.norm(dim=1, keepdim=True)


def _model(name: str, vectors: torch.Tensor, **kw):
    torch.manual_seed(2)
    cfg = RetrieverConfig(name=name, d_model=16, max_len=10, dropout=0.0, **kw)
    return build_retriever(cfg, vectors).eval()


def _random_bias(n: int, scale: float = 3.0) -> torch.Tensor:
    return scale * torch.randn(n, generator=torch.Generator().manual_seed(7))


def _set_bias(model, bias: torch.Tensor) -> None:
    """Set the effective bias (the parameter times item_bias_scale), in place."""
    with torch.no_grad():
        model.items.bias.copy_(bias / model.config.item_bias_scale)


HISTORY = torch.tensor([[0, 0, 5, 7, 1], [2, 3, 4, 5, 6], [0, 0, 0, 0, 0]])


def test_bias_is_on_by_default_zero_initialised_and_optional(vectors):
    model = _model("lrurec", vectors)
    assert model.item_bias() is not None and model.item_bias().shape == (N_ITEMS,)
    assert torch.count_nonzero(model.item_bias()) == 0
    assert any(p is model.items.bias for p in model.parameters())  # trained by the optimiser
    plain = _model("lrurec", vectors, item_bias=False)
    assert plain.item_bias() is None
    with torch.no_grad():
        torch.testing.assert_close(
            plain.logits(HISTORY), plain.encode(HISTORY) @ plain.item_table().T
        )


@pytest.mark.parametrize("name", RETRIEVER_NAMES)
def test_bias_shifts_every_score_by_exactly_the_bias(name, vectors):
    model = _model(name, vectors)
    bias = _random_bias(N_ITEMS)
    with torch.no_grad():
        logits0, scores0 = model.logits(HISTORY), model.scores(HISTORY)
        _set_bias(model, bias)  # in place: the cached table must not hide the change
        logits1, scores1 = model.logits(HISTORY), model.scores(HISTORY)
    torch.testing.assert_close(logits1 - logits0, bias.expand_as(logits0), rtol=0, atol=1e-5)
    finite = torch.isfinite(scores0)
    assert torch.equal(finite, torch.isfinite(scores1))  # history masking unchanged
    torch.testing.assert_close(
        scores1[finite] - scores0[finite], bias.expand_as(scores0)[finite], rtol=0, atol=1e-5
    )
    rows, values = model.topk(HISTORY, 8)
    expected = scores1.topk(8, dim=1)
    torch.testing.assert_close(values, expected.values)
    assert torch.equal(rows, expected.indices)


@pytest.mark.parametrize("name", ["lrurec", "bert4rec"])
def test_training_losses_use_the_bias(name, vectors):
    """Sampled and full-softmax losses equal cross-entropy over the biased scores."""
    model = _model(name, vectors)
    _set_bias(model, _random_bias(N_ITEMS))
    seq = torch.tensor([[3, 9, 14, 20, 2], [0, 0, 8, 30, 41]])
    g = torch.Generator().manual_seed(0)
    inputs, targets = model.training_pairs(seq, g)
    valid = targets > 0
    with torch.no_grad():
        h = model.hidden_states(inputs)[valid]
        logits = h @ model.item_table().T + model.item_bias()
    target_rows = targets[valid] - 1
    full = next_item_loss(model, inputs, targets, "full_softmax")
    torch.testing.assert_close(full, F.cross_entropy(logits, target_rows), rtol=1e-5, atol=1e-5)
    # In-batch negatives only: the candidate set is deterministic.
    sampled = next_item_loss(model, inputs, targets, "sampled", num_negatives=0)
    neg = target_rows.unique()
    cand = logits[:, neg].masked_fill(neg[None, :] == target_rows[:, None], float("-inf"))
    manual = torch.cat([logits.gather(1, target_rows[:, None]), cand], dim=1)
    expected = F.cross_entropy(manual, torch.zeros(len(manual), dtype=torch.long))
    torch.testing.assert_close(sampled, expected, rtol=1e-5, atol=1e-5)
    sampled.backward()
    assert model.items.bias.grad is not None
    assert torch.count_nonzero(model.items.bias.grad[neg]) == len(neg)


def test_faiss_topk_is_exact_with_a_bias(vectors):
    model = _model("lrurec", vectors)
    _set_bias(model, _random_bias(N_ITEMS, scale=5.0))
    plain_rows, _ = FaissTopK(_model("lrurec", vectors)).topk(HISTORY, 10)
    exact_rows, exact_scores = model.topk(HISTORY, 10)
    rows, scores = FaissTopK(model).topk(HISTORY, 10)
    np.testing.assert_array_equal(rows, exact_rows.numpy())
    np.testing.assert_allclose(scores, exact_scores.numpy(), rtol=1e-5, atol=1e-5)
    assert not np.array_equal(rows, plain_rows)  # the bias really changed the ranking


def test_faiss_topk_folds_in_fusion_weights_and_refuses_what_it_cannot_serve(vectors):
    model = _model("lrurec", vectors)
    _set_bias(model, _random_bias(N_ITEMS, scale=5.0))
    model.fusion.set({"item": 3.0, "bias": 0.25})
    exact_rows, exact_scores = model.topk(HISTORY, 10)
    rows, scores = FaissTopK(model).topk(HISTORY, 10)
    np.testing.assert_array_equal(rows, exact_rows.numpy())
    np.testing.assert_allclose(scores, exact_scores.numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="item tower only"):
        FaissTopK(_model("lrurec", vectors, cooc_prior=True))
    linked = _model("lrurec", vectors)
    linked.links.people.set_weights(np.array([0]), np.array([1]), np.array([2.0]))
    with pytest.raises(ValueError, match="item tower only"):
        FaissTopK(linked)  # the links are scores FAISS cannot fold into the item table


def test_checkpoint_round_trip_keeps_the_bias(tmp_path, vectors):
    model = _model("sasrec", vectors)
    _set_bias(model, _random_bias(N_ITEMS))
    reloaded = load_retriever(save_retriever(model, tmp_path / "m.pt"), vectors)
    torch.testing.assert_close(reloaded.item_bias(), model.item_bias(), rtol=0, atol=0)
    torch.testing.assert_close(reloaded.scores(HISTORY), model.scores(HISTORY), rtol=0, atol=0)


def test_checkpoint_without_bias_loads_with_zero_bias(tmp_path, vectors):
    """A checkpoint written before the bias existed: no state entry, no config key."""
    old = _model("lrurec", vectors, item_bias=False)
    with torch.no_grad():
        for p in old.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = save_retriever(old, tmp_path / "old.pt")
    payload = torch.load(path, weights_only=True)
    del payload["config"]["item_bias"]
    assert "items.bias" not in payload["state_dict"]
    torch.save(payload, path)
    loaded = load_retriever(path, vectors)
    assert loaded.config.item_bias and torch.count_nonzero(loaded.item_bias()) == 0
    torch.testing.assert_close(loaded.scores(HISTORY), old.scores(HISTORY), rtol=0, atol=0)
    # The reverse mismatch is an error, not a silent drop of learned weights.
    with_bias = save_retriever(_model("lrurec", vectors), tmp_path / "new.pt")
    payload = torch.load(with_bias, weights_only=True)
    payload["config"]["item_bias"] = False
    torch.save(payload, with_bias)
    with pytest.raises(ValueError, match="item bias.*item_bias=false"):
        load_retriever(with_bias, vectors)


@pytest.mark.parametrize("loss", ["full_softmax", "sampled"])
def test_nll_training_learns_popularity_in_the_bias(loss, vectors):
    """Next items drawn from a Zipf law regardless of history: only the bias can fit that, and
    it must end up ordered by popularity (popular items get larger bias)."""
    rng = np.random.default_rng(0)
    popularity = 1.0 / np.arange(1, N_ITEMS + 1) ** 1.2
    popularity /= popularity.sum()
    order = rng.permutation(N_ITEMS)  # popular items are random rows, not the first ones
    seqs = torch.from_numpy(order[rng.choice(N_ITEMS, (64, 6), p=popularity)] + 1)
    torch.manual_seed(0)
    model = build_retriever(
        RetrieverConfig(name="lrurec", d_model=8, max_len=6, dropout=0.0), vectors
    )
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        inputs, targets = model.training_pairs(seqs, g)
        out = next_item_loss(
            model,
            inputs,
            targets,
            loss,
            num_negatives=N_ITEMS,
            in_batch_negatives=False,
            generator=g,
        )
        opt.zero_grad()
        out.backward()
        opt.step()
    bias = model.item_bias().detach()[order]  # in popularity order
    assert bias[:5].mean() > bias[-20:].mean() + 1.0
    counts = np.bincount(seqs.flatten().numpy() - 1, minlength=N_ITEMS)[order]
    rank_corr = np.corrcoef(np.argsort(np.argsort(-counts)), np.argsort(np.argsort(-bias.numpy())))
    assert rank_corr[0, 1] > 0.6
