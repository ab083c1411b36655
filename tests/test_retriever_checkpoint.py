"""Checkpoints reload to identical scores and refuse the wrong corpus."""

from __future__ import annotations

import pytest
import torch

from rar.retrievers import (
    RETRIEVER_NAMES,
    RetrieverConfig,
    build_retriever,
    load_retriever,
    save_retriever,
)


@pytest.mark.parametrize("name", RETRIEVER_NAMES)
def test_reload_gives_identical_scores(tmp_path, name):
    torch.manual_seed(0)
    vectors = torch.randn(40, 8)
    model = build_retriever(
        RetrieverConfig(name=name, d_model=8, max_len=6, use_id_embedding=True), vectors
    )
    model.items.mark_seen(torch.tensor([1, 2, 3]))
    with torch.no_grad():  # move weights away from their init so the test means something
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.eval()
    history = torch.tensor([[0, 0, 1, 2, 3], [4, 5, 6, 7, 8]])
    path = save_retriever(model, tmp_path / "ckpt" / "best.pt")
    reloaded = load_retriever(path, vectors)
    assert not reloaded.training
    assert reloaded.config == model.config
    torch.testing.assert_close(reloaded.scores(history), model.scores(history), rtol=0, atol=0)


def test_wrong_corpus_and_missing_file_are_clear_errors(tmp_path):
    vectors = torch.randn(40, 8)
    path = save_retriever(build_retriever(RetrieverConfig(d_model=8), vectors), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="40 items but the given corpus has 39"):
        load_retriever(path, vectors[:39])
    with pytest.raises(ValueError, match="dimension mismatch"):
        load_retriever(path, torch.randn(40, 9))
    with pytest.raises(FileNotFoundError, match="not found"):
        load_retriever(tmp_path / "nope.pt", vectors)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a RAR retriever checkpoint"):
        load_retriever(tmp_path / "other.pt", vectors)
