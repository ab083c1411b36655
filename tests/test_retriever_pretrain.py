"""Pretraining: session linking, windows, the training loop (early stopping, resume) and `rar pretrain`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rar.data.movielens_sessions import Session
from rar.retrievers import RetrieverConfig, build_retriever, load_retriever
from rar.retrievers.pretrain import PretrainData, Pretrainer, evaluate, evaluate_popularity
from rar.retrievers.pretrain_config import (
    PretrainConfig,
    PretrainLossConfig,
    PretrainOptimConfig,
)
from rar.retrievers.ranking_eval import ranking_metrics
from rar.retrievers.sequences import (
    SessionLinkStats,
    eval_examples,
    left_pad,
    link_sessions,
    training_windows,
)
from rar.tracking import Run

N_ITEMS = 30


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_link_sessions_drops_and_counts_unlinked_items():
    sessions = [
        Session("1", ["10", "11", "99", "12"], np.arange(4)),
        Session("2", ["99", "10"], np.arange(2)),
    ]
    stats = SessionLinkStats()
    seqs = link_sessions(sessions, {"10": 0, "11": 1, "12": 2}, min_length=2, stats=stats)
    assert seqs == [[1, 2, 3]]
    assert stats.as_dict() == {
        "items_total": 6,
        "items_unlinked": 2,
        "distinct_unlinked_movies": 1,
        "sessions_total": 2,
        "sessions_too_short": 1,
    }


def test_windows_examples_and_padding():
    seq = list(range(1, 12))  # 11 items
    windows = training_windows([seq, [5, 6]], max_len=4)
    assert (
        windows[0] == [1, 2, 3, 4, 5]
        and windows[1] == [5, 6, 7, 8, 9]
        and windows[2] == [9, 10, 11]
    )
    targets = [t for w in windows[:3] for t in w[1:]]
    assert targets == seq[1:]  # every next item predicted exactly once
    histories, targets = eval_examples([seq], max_len=4)
    assert histories == [[7, 8, 9, 10]] and targets == [11]
    assert left_pad([[1, 2], [3]]).tolist() == [[1, 2], [0, 3]]


def test_ranking_metrics_put_the_target_at_the_right_rank():
    # Item scores fall with the row index, so target row r has rank r (minus masked history rows).
    scores = torch.arange(40, 0, -1, dtype=torch.float32)
    histories, targets = [[1], [1], [1], [40]], [2, 3, 17, 32]  # ranks 0, 1, 15, 31
    m = ranking_metrics(lambda h: scores.expand(len(h), -1), histories, targets)
    assert m["recall@10"] == 0.5 and m["recall@20"] == 0.75
    assert m["ndcg@10"] == pytest.approx((1 + 1 / np.log2(3)) / 4)
    assert m["ndcg@20"] == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(17)) / 4)


def _walks(n: int, seed: int) -> list[list[int]]:
    """Sequences that step +1 through the catalogue: a pattern a sequence model can learn."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        start, length = rng.integers(0, N_ITEMS), rng.integers(3, 9)
        out.append([(start + i) % N_ITEMS + 1 for i in range(length)])
    return out


def _setup(tmp_path, name="lrurec", max_epochs=3):
    vectors = torch.randn(N_ITEMS, 8, generator=torch.Generator().manual_seed(0))
    data = PretrainData(_walks(200, 0), _walks(40, 1), _walks(40, 2), N_ITEMS)
    cfg = PretrainConfig(
        retriever=RetrieverConfig(name=name, d_model=16, max_len=8, dropout=0.1),
        loss=PretrainLossConfig(num_negatives=10),
        optim=PretrainOptimConfig(batch_size=32, lr=5e-3),
        epochs=max_epochs,
        patience=5,
    )
    return vectors, data, cfg


def _train(tmp_path, vectors, data, cfg, resume=False):
    torch.manual_seed(cfg.seed)
    model = build_retriever(cfg.retriever, vectors)
    run = Run.create("r", cfg, tmp_path / "runs", resume=resume)
    best = Pretrainer(model, data, cfg, run, progress=False).train(resume=resume)
    return run, best


def test_training_learns_beats_popularity_and_keeps_best(tmp_path):
    vectors, data, cfg = _setup(tmp_path)
    run, best = _train(tmp_path, vectors, data, cfg)
    rows = run.history()
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert best["val/ndcg@10"] == max(r["val/ndcg@10"] for r in rows)
    assert best["stopped_early"] is False  # the budget ran out first
    model = load_retriever(run.checkpoints / "best.pt", vectors)
    val = evaluate(model, data.val)
    assert val["ndcg@10"] == pytest.approx(best["val/ndcg@10"])
    assert val["ndcg@10"] > evaluate_popularity(data, data.val, 8)["ndcg@10"] + 0.2


def test_resume_continues_identically(tmp_path):
    vectors, data, cfg = _setup(tmp_path, max_epochs=3)
    straight, _ = _train(tmp_path / "a", vectors, data, cfg)
    short = cfg.model_copy(update={"epochs": 2})
    _train(tmp_path / "b", vectors, data, short)
    resumed, _ = _train(tmp_path / "b", vectors, data, cfg, resume=True)
    a, b = straight.history(), resumed.history()
    assert [r["epoch"] for r in b] == [0, 1, 2]
    assert [r["val/ndcg@10"] for r in a] == [r["val/ndcg@10"] for r in b]
    assert [r["train_loss"] for r in a] == pytest.approx([r["train_loss"] for r in b], rel=1e-6)


def test_early_stopping_stops_after_patience(tmp_path):
    vectors, data, cfg = _setup(tmp_path, max_epochs=30)
    cfg.optim.lr = 1e-12  # nothing improves after the first evaluation
    cfg.patience = 2
    run, best = _train(tmp_path, vectors, data, cfg)
    assert best["epoch"] == 0 and best["stopped_early"] is True
    assert best["step"] == run.history()[0]["step"]
    assert len(run.history()) == 3


@pytest.mark.slow
def test_rar_pretrain_end_to_end_on_small_corpus(tmp_path, small_corpus, data_dir):
    from typer.testing import CliRunner

    from rar.cli import app
    from rar.retrievers import load_pretrained_run

    config = tmp_path / "pretrain.yaml"
    config.write_text(
        "seed: 0\nthreads: 1\n"
        "retriever: {name: lrurec, d_model: 32, max_len: 16}\n"
        "data: {movielens: movielens/ml-100k, max_eval_sessions: 100}\n"
        "optim: {batch_size: 64}\nepochs: 2\nmax_steps_per_epoch: 5\n"
        f"tracking: {{runs_dir: {tmp_path / 'runs'}}}\n"
    )
    result = CliRunner().invoke(
        app,
        [
            "pretrain",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--corpus",
            str(small_corpus),
            "--name",
            "e2e",
            "--set",
            "retriever.name=sasrec",
        ],
    )
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "e2e"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for split in ("val", "test"):
        for key in ("ndcg@10", "recall@10", "ndcg@20", "recall@20"):
            assert 0.0 <= metrics[f"{split}/{key}"] <= 1.0
    assert metrics["retriever"] == "sasrec" and metrics["n_train_sessions"] > 100
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    model = load_pretrained_run(run_dir, small_corpus)
    assert model.config.name == "sasrec"
    bad = CliRunner().invoke(
        app,
        [
            "pretrain",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--corpus",
            str(small_corpus),
            "--set",
            "retriever.nme=x",
        ],
    )
    assert bad.exit_code == 2 and "retriever.name" in bad.output
