"""One source per vocabulary: every list of names (config validation, CLI help, docs) comes
from its registry, and every registered name builds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
from typer.testing import CliRunner

from rar.cli import app
from rar.config import ConfigError, load_config
from rar.data.datasets import (
    CONVERSATION_DATASETS,
    DATASET_NAMES,
    STATS_DATASETS,
    check_dataset,
)
from rar.data.registry import READERS
from rar.errors import InputError
from rar.rankers.base import Ranker
from rar.rankers.ranker_config import RankerConfig
from rar.rankers.registry import LLM_RANKER_NAMES, RANKER_NAMES, RANKERS, ranker_class
from rar.rl.objectives import OBJECTIVES
from rar.rl.rl_config import RLConfig
from rar.rl.train_config import DataConfig, TrainConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", RANKER_NAMES)
def test_every_registered_ranker_names_a_ranker_class(name):
    cls = ranker_class(name)
    assert issubclass(cls, Ranker) and cls.backend == name


def test_ranker_config_accepts_exactly_the_registered_backends():
    assert get_args(RankerConfig.model_fields["backend"].annotation) == RANKER_NAMES
    assert set(LLM_RANKER_NAMES) == {"openai", "gemini", "local", "llamacpp"}
    with pytest.raises(InputError, match="expected openai | gemini"):
        ranker_class("gpt")


def test_cli_help_and_docs_list_every_ranker_backend():
    for command in ("rank", "recommend", "evaluate"):
        text = " ".join(CliRunner().invoke(app, [command, "--help"]).output.split())
        assert all(name in text for name in RANKERS), (command, text)
    docs = (REPO / "docs" / "rankers.md").read_text(encoding="utf-8")
    assert f"backend: {' | '.join(RANKER_NAMES)}" in " ".join(docs.split())


def test_reading_the_ranker_table_loads_no_backend():
    # `rar --help` imports every command module (and so the table); it must stay instant
    code = "import sys, rar.cli; print(sorted(m for m in ('numpy', 'rar.rankers.base') if m in sys.modules))"
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_every_conversation_dataset_has_a_reader_and_the_configs_accept_exactly_those():
    assert tuple(READERS) == DATASET_NAMES == tuple(CONVERSATION_DATASETS)
    assert get_args(DataConfig.model_fields["dataset"].annotation) == DATASET_NAMES
    with pytest.raises(ConfigError, match="data.dataset"):
        load_config(TrainConfig, None, ["data.dataset=movies"])
    with pytest.raises(InputError, match="unknown dataset 'movies'; expected one of redial"):
        check_dataset("movies")


def test_cli_help_lists_every_dataset():
    for command, names in (
        (["evaluate"], DATASET_NAMES),
        (["fit-ranker"], DATASET_NAMES),
        (["report", "recall-vs-k"], DATASET_NAMES),
        (["data", "stats"], STATS_DATASETS),
    ):
        text = " ".join(CliRunner().invoke(app, [*command, "--help"]).output.split())
        assert all(name in text for name in names), (command, text)


def test_rl_method_accepts_exactly_the_objectives_table():
    assert get_args(RLConfig.model_fields["method"].annotation) == tuple(OBJECTIVES)
    assert set(OBJECTIVES) == {"sft", "dpo", "simpo", "grpo", "distill", "label_credit"}
    help_text = RLConfig.model_fields["method"].description or ""
    assert all(name in help_text for name in OBJECTIVES)
    with pytest.raises(ConfigError, match="rl.method"):
        load_config(TrainConfig, None, ["rl.method=ppo"])


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_every_objective_sets_how_much_it_samples(name):
    rl = RLConfig(method=name, group_size=8)
    entry = OBJECTIVES[name]
    assert rl.has_rl_term == (entry.term is not None)
    assert rl.sets_per_sample == (8 if entry.group else 2)
    assert (name == "sft") == (not rl.has_rl_term)  # sft alone trains on NLL only
