"""Typed YAML configs (rar.config): error messages, `--set` overrides, round trips."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest
import yaml
from pydantic import Field

from rar.config import (
    ConfigError,
    ConfigModel,
    describe_type,
    dump_config,
    load_config,
    packaged_configs,
    parse_override,
    read_yaml,
    resolve_config,
    save_config,
)


class OptimConfig(ConfigModel):
    """Test-only nested section."""

    lr: float = Field(1e-3, description="Learning rate.")
    betas: list[float] = Field([0.9, 0.999], description="Adam betas.")


class ModelConfig(ConfigModel):
    """Test-only nested section."""

    dropout: float = Field(0.1, ge=0.0, le=1.0, description="Dropout.")
    kind: Literal["sasrec", "gru4rec"] = Field("sasrec", description="Architecture.")
    optim: OptimConfig = Field(default_factory=OptimConfig, description="Optimiser.")


class ExperimentConfig(ConfigModel):
    """Test-only top-level config."""

    name: str = Field("demo", description="Run name.")
    epochs: int = Field(3, ge=1, description="Epochs.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Model.")
    teacher: ModelConfig | None = Field(None, description="Optional second model.")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_full_file(tmp_path: Path) -> None:
    assert load_config(ExperimentConfig) == ExperimentConfig()
    path = write(
        tmp_path, "name: big\nepochs: 7\nmodel:\n  kind: gru4rec\n  optim:\n    lr: 0.01\n"
    )
    cfg = load_config(ExperimentConfig, path)
    assert (cfg.name, cfg.epochs, cfg.model.kind, cfg.model.optim.lr) == ("big", 7, "gru4rec", 0.01)
    assert cfg.model.dropout == 0.1  # untouched defaults stay
    assert load_config(ExperimentConfig, write(tmp_path, "")) == ExperimentConfig()


def test_unknown_key_names_key_file_and_closest_key(tmp_path: Path) -> None:
    path = write(tmp_path, "epochs: 2\nmodel:\n  dropuot: 0.3\n")
    with pytest.raises(ConfigError) as info:
        load_config(ExperimentConfig, path)
    message = str(info.value)
    assert str(path) in message
    assert "unknown key 'model.dropuot'" in message
    assert "did you mean 'model.dropout'?" in message
    assert "valid keys at model: dropout, kind, optim" in message

    with pytest.raises(ConfigError, match="unknown key 'epohcs'; did you mean 'epochs'"):
        load_config(ExperimentConfig, write(tmp_path, "epohcs: 2\n"))
    # nothing close: no guess, but the valid keys are listed
    with pytest.raises(ConfigError) as info:
        load_config(ExperimentConfig, write(tmp_path, "zzz: 1\n"))
    assert "did you mean" not in str(info.value)
    assert "valid keys at top level: name, epochs, model, teacher" in str(info.value)


def test_wrong_type_names_field_and_expected_type(tmp_path: Path) -> None:
    cases = {
        "epochs: three\n": ("'epochs'", "expected int", "got 'three'"),
        "model:\n  optim:\n    lr: fast\n": ("'model.optim.lr'", "expected float", "got 'fast'"),
        "model:\n  kind: bert\n": (
            "'model.kind'",
            "expected Literal['sasrec', 'gru4rec']",
            "'bert'",
        ),
        "model:\n  optim:\n    betas: [0.9, x]\n": (
            "'model.optim.betas.1'",
            "expected float",
            "'x'",
        ),
        "model: 5\n": ("'model'", "expected ModelConfig", "got 5"),
        "model:\n  dropout: 1.5\n": (
            "'model.dropout'",
            "less than or equal to 1",
            "expected float",
        ),
        "teacher:\n  dropout: high\n": ("'teacher.dropout'", "expected float", "'high'"),
    }
    for text, fragments in cases.items():
        path = write(tmp_path, text)
        with pytest.raises(ConfigError) as info:
            load_config(ExperimentConfig, path)
        message = str(info.value)
        assert str(path) in message, text
        for fragment in fragments:
            assert fragment in message, (text, message)


def test_yaml_parse_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: ok\nepochs: 3\nmodel:\n  kind: [sasrec\n  dropout: 0.1\n")
    with pytest.raises(ConfigError, match=r"cannot parse YAML at .*exp\.yaml:\d+") as info:
        load_config(ExperimentConfig, path)
    line = int(str(info.value).split("exp.yaml:")[1].split(":")[0])
    assert 4 <= line <= 6  # the unclosed "[" opened on line 4; pyyaml reports where it gave up
    with pytest.raises(ConfigError, match="exp.yaml:2"):
        read_yaml(write(tmp_path, "a: 1\n\tb: 2\n"))  # a tab indent on line 2
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        read_yaml(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        read_yaml(tmp_path / "missing.yaml")


def test_set_overrides_nested_and_typed(tmp_path: Path) -> None:
    path = write(tmp_path, "epochs: 2\nmodel:\n  dropout: 0.3\n")
    cfg = load_config(
        ExperimentConfig,
        path,
        [
            "model.dropout=0.2",
            "epochs=5",
            "model.optim.betas=[0.8, 0.9]",
            "model.kind=gru4rec",
            "teacher.dropout=0.05",
        ],
    )
    assert cfg.model.dropout == 0.2 and isinstance(cfg.model.dropout, float)
    assert cfg.epochs == 5 and isinstance(cfg.epochs, int)
    assert cfg.model.optim.betas == [0.8, 0.9]
    assert cfg.model.kind == "gru4rec"
    assert cfg.teacher is not None and cfg.teacher.dropout == 0.05
    # a str field keeps the text as typed, even when YAML would read a number or a date
    assert load_config(ExperimentConfig, None, ["name=123"]).name == "123"
    assert load_config(ExperimentConfig, None, ["name=2024-01-01"]).name == "2024-01-01"
    # later overrides win
    assert load_config(ExperimentConfig, None, ["epochs=4", "epochs=6"]).epochs == 6


def test_set_override_errors() -> None:
    with pytest.raises(
        ConfigError,
        match=r"--set model\.dropuot=0\.2: unknown key 'model\.dropuot'; did you mean 'model\.dropout'",
    ):
        load_config(ExperimentConfig, None, ["model.dropuot=0.2"])
    with pytest.raises(ConfigError, match="unknown key 'modle'; did you mean 'model'"):
        load_config(ExperimentConfig, None, ["modle.dropout=0.2"])
    with pytest.raises(ConfigError, match="must look like key.path=value"):
        load_config(ExperimentConfig, None, ["epochs"])
    with pytest.raises(ConfigError, match="empty key"):
        load_config(ExperimentConfig, None, ["=3"])
    with pytest.raises(ConfigError) as info:
        load_config(ExperimentConfig, None, ["epochs=many"])
    assert "with --set epochs=many" in str(info.value)
    assert "field 'epochs'" in str(info.value) and "expected int" in str(info.value)


def test_parse_override_values() -> None:
    assert parse_override("a.b=0.2") == (["a", "b"], 0.2)
    assert parse_override("flag=true") == (["flag"], True)
    assert parse_override("xs=[1, 2]") == (["xs"], [1, 2])
    assert parse_override("name=a=b") == (["name"], "a=b")
    assert parse_override("opt=null") == (["opt"], None)
    assert parse_override("text=") == (["text"], "")
    assert parse_override("bad=[1,") == (["bad"], "[1,")  # not YAML: kept as text


def test_dump_and_reload_round_trip(tmp_path: Path) -> None:
    cfg = load_config(ExperimentConfig, None, ["model.optim.lr=0.05", "teacher.kind=gru4rec"])
    out = tmp_path / "resolved.yaml"
    save_config(cfg, out)
    assert yaml.safe_load(out.read_text())["model"]["optim"]["lr"] == 0.05
    assert load_config(ExperimentConfig, out) == cfg
    assert dump_config(cfg).startswith("name: demo\n")  # field order kept


def test_validate_assignment_and_describe_type() -> None:
    cfg = ExperimentConfig()
    with pytest.raises(ValueError):
        cfg.epochs = "lots"  # type: ignore[assignment]
    assert describe_type(list[float]) == "list[float]"
    assert describe_type(ModelConfig | None) == "ModelConfig | None"
    assert describe_type(Literal["a", "b"]) == "Literal['a', 'b']"
    assert describe_type(dict[str, int]) == "dict[str, int]"


def test_errors_name_the_yaml_line_or_the_set_override(tmp_path: Path) -> None:
    """Misspelt keys and wrong types point at their line; overridden keys at their --set."""
    path = write(tmp_path, "name: run\n\nmodel:\n  kind: gru4rec\n  dropuot: 0.3\nepochs: many\n")
    with pytest.raises(ConfigError) as info:
        load_config(ExperimentConfig, path)
    message = str(info.value)
    assert f"{path}:5: unknown key 'model.dropuot'; did you mean 'model.dropout'?" in message
    assert f"{path}:6: field 'epochs'" in message and "expected int" in message

    nested = write(tmp_path, "model:\n  optim:\n    lr: fast\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(nested))}:3: field 'model\.optim\.lr'"):
        load_config(ExperimentConfig, nested)

    # the file says epochs: 2 (line 1) but --set replaced it: the error names the --set
    overridden = write(tmp_path, "epochs: 2\nname: run\n")
    with pytest.raises(ConfigError) as info:
        load_config(ExperimentConfig, overridden, ["epochs=lots"])
    assert "--set epochs=lots: field 'epochs'" in str(info.value)
    assert f"{overridden}:1" not in str(info.value)


def test_keys_of_the_old_trainer_layouts_say_where_they_moved(tmp_path: Path) -> None:
    from rar.retrievers.pretrain_config import PretrainConfig
    from rar.rl.train_config import TrainConfig

    old = tmp_path / "pretrain.yaml"
    old.write_text("data:\n  corpus: corpus\ntraining:\n  lr: 0.002\n  max_epochs: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(PretrainConfig, old)
    message = str(err.value)
    assert f"{old}:2: key 'data.corpus' has moved: write it as 'corpus'" in message
    assert f"{old}:4: key 'training.lr' has moved: write it as 'optim.lr'" in message
    assert f"{old}:5: key 'training.max_epochs' has moved: write it as 'epochs'" in message
    with pytest.raises(ConfigError, match="'training.lr' has moved: write it as 'optim.lr'"):
        load_config(PretrainConfig, None, ["training.lr=0.1"])

    rl = tmp_path / "train.yaml"
    rl.write_text("pretrained_run: runs/pre\nbatch_size: 16\n")
    with pytest.raises(
        ConfigError, match=rf"{rl}:2: key 'batch_size' has moved: write it as 'optim.batch_size'"
    ):
        load_config(TrainConfig, rl)
    assert (
        load_config(TrainConfig, None, ["pretrained_run=x", "optim.batch_size=4"]).optim.batch_size
        == 4
    )


def test_a_config_is_a_path_or_a_packaged_name(tmp_path: Path, monkeypatch) -> None:
    shipped = packaged_configs()
    assert {"redial_dpo_semantic", "ranker_openai", "corpus_quickstart"} <= set(shipped)
    monkeypatch.chdir(tmp_path)  # names resolve wherever the command runs
    assert resolve_config("redial_dpo_semantic") == shipped["redial_dpo_semantic"]
    assert resolve_config("redial_dpo_semantic.yaml") == shipped["redial_dpo_semantic"]
    (tmp_path / "redial_dpo_semantic.yaml").write_text("epochs: 1\n", encoding="utf-8")
    assert resolve_config("redial_dpo_semantic.yaml") == Path(
        "redial_dpo_semantic.yaml"
    )  # a file wins
    with pytest.raises(ConfigError, match=r"neither a file nor a packaged config \(packaged: "):
        resolve_config("no_such_config")
    with pytest.raises(ConfigError, match=r"not found: configs/train_quickstart.yaml \(packaged"):
        resolve_config("configs/train_quickstart.yaml")  # the old checkout path gets a hint
