"""Shared fixtures: the real datasets in ../shared/data (or $RAR_DATA_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("RAR_DATA_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.fail(f"real data not found at {path}; set RAR_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory, data_dir):
    """A small but real corpus (real metadata, real MiniLM embeddings, real FAISS index),
    built once per test session by the corpus builder's own code."""
    from corpus_builder.testing import build_small_corpus

    return build_small_corpus(tmp_path_factory.mktemp("corpus"), data_dir)


@pytest.fixture(scope="session")
def pretrained_run(small_corpus, data_dir, tmp_path_factory):
    """A tiny LRURec pretrained through the pretraining API on the small corpus, once per
    session: the RL, convergence and real-engine tests all start from it."""
    from rar.config import load_config
    from rar.retrievers.pretrain import pretrain
    from rar.retrievers.pretrain_config import PretrainConfig

    runs = tmp_path_factory.mktemp("pre_runs")
    cfg = load_config(
        PretrainConfig,
        ROOT / "configs" / "pretrain_quickstart.yaml",
        [
            f"corpus={small_corpus}",
            f"tracking.runs_dir={runs}",
            "name=pre",
            "threads=1",
            "epochs=1",
            "max_steps_per_epoch=5",
            "data.max_eval_sessions=200",
        ],
    )
    pretrain(cfg, data_dir, overwrite=True, progress=False)
    return runs / "pre"
