"""Shared fixtures and the two data tiers of the suite.

- With the real datasets (../shared/data, or $RAR_DATA_DIR) every test runs on them.
- Without them, `data_dir` is a tiny data directory in the same official formats that the
  tests write themselves (`fixtures.datadir`), so the corpus build, pretraining, RL training,
  rankers and evaluation still run; tests marked `needs_data` (counts and facts of the real
  files) are skipped with the reason. Set RAR_REQUIRE_DATA=1 (CI) to make absent data an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The files of ../shared/data that the `needs_data` tests read: the real data counts as present
# only when all of them are, so a half-copied directory is reported, not half-used.
REAL_DATA_FILES = (
    "redial/train_part_a.jsonl",
    "redial/train_part_b.jsonl",
    "redial/train_part_c.jsonl",
    "redial/movies_with_mentions.csv",
    "inspired/dialog_data/dev.tsv",
    "inspired/dev_annotated.jsonl",
    "inspired/context_targets/train.csv",
    "movielens/ml-latest-small/ratings.csv",
    "movielens/ml-100k/u.data",
    "movielens/ml-1m-movies.dat",
    "metadata/redial_id2info.json",
    "metadata/redial_movie_db.jsonl",
    "metadata/imdb_top_1000.csv",
    "metadata/imdb_titles_ggplot2movies.csv",
    "metadata/wikipedia_movie_summaries.json",
    "reddit_movie/entity2id.json",
)


def shared_data_dir() -> Path:
    """Absolute, so tests that run commands from another working directory find it too."""
    env = os.environ.get("RAR_DATA_DIR")
    return (Path(env) if env else ROOT.parent / "shared" / "data").resolve()


def missing_real_data() -> list[str]:
    """The real-data files absent from `shared_data_dir()` (all of them if it does not exist)."""
    root = shared_data_dir()
    return [name for name in REAL_DATA_FILES if not (root / name).is_file()]


HAVE_REAL_DATA = not missing_real_data()


def _no_data_reason() -> str:
    root = shared_data_dir()
    missing = missing_real_data()
    where = f"{root} does not exist" if not root.is_dir() else f"{root} lacks {missing[0]}"
    return f"needs the real data ({where}; set RAR_DATA_DIR)"


def pytest_configure(config):
    if not HAVE_REAL_DATA and os.environ.get("RAR_REQUIRE_DATA") not in (None, "", "0"):
        raise pytest.UsageError(f"RAR_REQUIRE_DATA is set but the suite {_no_data_reason()}")


def pytest_report_header(config):
    if HAVE_REAL_DATA:
        return f"data: real datasets in {shared_data_dir()}"
    return (
        f"data: fixture data written by tests/fixtures (real data absent: {shared_data_dir()}); "
        "tests marked needs_data are skipped"
    )


def pytest_collection_modifyitems(config, items):
    if HAVE_REAL_DATA:
        return
    skip = pytest.mark.skip(reason=_no_data_reason())
    for item in items:
        if "needs_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fixture_data_dir(tmp_path_factory) -> Path:
    """The tiny official-format data directory of `fixtures.datadir`, written once per session."""
    from fixtures.datadir import write_fixture_data_dir

    return write_fixture_data_dir(tmp_path_factory.mktemp("fixture_data") / "data")


@pytest.fixture(scope="session")
def data_dir(request) -> Path:
    """The real data when present, else the fixture data directory (same layout and formats).
    Tests whose assertions hold only on the real files carry `@pytest.mark.needs_data`."""
    if HAVE_REAL_DATA:
        return shared_data_dir()
    return request.getfixturevalue("fixture_data_dir")


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory, data_dir):
    """A small but real corpus (real metadata, real MiniLM embeddings, real FAISS index),
    built once per test session by the corpus builder's own code (on the fixture data when
    the real data is absent: about 120 movies instead of 1,500)."""
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
        ROOT / "rar" / "configs" / "pretrain_quickstart.yaml",
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
