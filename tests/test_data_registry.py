"""Datasets by name, deterministic dialogue-level splits, and the `rar data stats` command."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from rar.cli import app
from rar.data.errors import DataFormatError
from rar.data.registry import load_conversation_data, load_conversation_samples, mention_counts
from rar.data.splits import split_of


@pytest.fixture(scope="module")
def redial_all(data_dir):
    return load_conversation_data("redial", data_dir, "all")


@pytest.mark.needs_data
def test_redial_splits_partition_the_dialogues(redial_all, data_dir):
    stats = redial_all.split_stats
    assert stats["all"].dialogues == 4101 and stats["all"].duplicates == 50
    parts = {s: load_conversation_samples("redial", data_dir, s) for s in ("train", "val", "test")}
    assert sum(len(v) for v in parts.values()) == len(redial_all.samples) == stats["all"].samples
    ids = {s: {x.dialogue_id for x in v} for s, v in parts.items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"]
    assert not ids["val"] & ids["test"]
    assert 0.7 < stats["train"].dialogues / stats["all"].dialogues < 0.9
    assert all(split_of("redial", x.dialogue_id) == "val" for x in parts["val"])


def test_split_depends_only_on_dialogue_id_not_file_order(tmp_path, data_dir):
    # the same conversations, split across files named in the other order
    source = data_dir / "redial"
    folder = tmp_path / "redial"
    folder.mkdir()
    lines = (source / "train_part_c.jsonl").read_text().splitlines()
    (folder / "train_part_z.jsonl").write_text("\n".join(lines[:50]) + "\n")
    (folder / "train_part_a.jsonl").write_text("\n".join(lines[50:]) + "\n")
    reordered = {s.sample_id for s in load_conversation_samples("redial", tmp_path, "test")}
    shutil.rmtree(folder)
    folder.mkdir()
    shutil.copy(source / "train_part_c.jsonl", folder / "train_data.jsonl")
    original = {s.sample_id for s in load_conversation_samples("redial", tmp_path, "test")}
    assert reordered == original and original
    other_seed = {s.sample_id for s in load_conversation_samples("redial", tmp_path, "test", 1)}
    assert other_seed != original


@pytest.mark.needs_data
def test_inspired_pools_dev_tsv_and_train_csv_without_double_counting(data_dir):
    data = load_conversation_data("inspired", data_dir, "train")
    assert set(data.sources) == {
        "inspired/dialog_data/dev.tsv",
        "inspired/context_targets/train.csv",
    }  # dev_annotated.jsonl holds the same dialogues as dev.tsv: not read
    total = data.split_stats["all"]
    assert total.dialogues == 99 + data.sources["inspired/context_targets/train.csv"].dialogues
    assert data.stats.samples == len(data.samples) > 1000


def test_reddit_and_custom_directories(tmp_path):
    folder = tmp_path / "reddit_movie"
    folder.mkdir()
    rows = [
        {"dialog_id": f"t{i}", "context": [f"like Heat? {i}"], "rec": [f"Movie {i}"]}
        for i in range(40)
    ]
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    samples = {
        s: load_conversation_samples("reddit", tmp_path, s) for s in ("train", "val", "test")
    }
    assert sum(len(v) for v in samples.values()) == 40
    assert all(s.dataset == "reddit" for v in samples.values() for s in v)

    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "mine.csv").write_text("context,targets\n\"User: hi\nSystem: \",['Alien']\n")
    (sample,) = load_conversation_samples("custom", tmp_path, "all")
    assert sample.dataset == "custom" and sample.targets[0].key == "Alien"


def test_registry_errors(tmp_path, data_dir):
    with pytest.raises(ValueError, match="unknown dataset 'movies'"):
        load_conversation_samples("movies", data_dir)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        load_conversation_samples("redial", data_dir, "dev")
    with pytest.raises(FileNotFoundError, match="no Reddit-Movie turn JSONL files"):
        load_conversation_samples("reddit", data_dir)
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "none.csv").write_text("context,targets\n")
    with pytest.raises(DataFormatError, match="custom in .*: no samples"):
        load_conversation_samples("custom", tmp_path)


@pytest.mark.needs_data
def test_cli_data_stats_table_and_json(tmp_path, data_dir):
    out = tmp_path / "stats.json"
    result = CliRunner().invoke(
        app, ["data", "stats", "--data-dir", str(data_dir), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "redial" in result.output and "ml-latest-small" in result.output
    stats = json.loads(out.read_text())
    assert set(stats) == {"redial", "inspired", "movielens-ml-100k", "movielens-ml-latest-small"}
    for name in ("redial", "inspired"):
        assert {"dialogues", "samples", "movies", "dropped"} <= set(stats[name])
    assert stats["redial"]["dialogues"] == 4101 and stats["redial"]["duplicates"] == 50
    small = stats["movielens-ml-latest-small"]
    assert (small["users"], small["interactions"]) == (671, 100_004)
    assert {"sessions", "movies", "dropped"} <= set(small)


def test_cli_data_stats_bad_directory_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(app, ["data", "stats", "--data-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())  # rich wraps at 80 columns
    empty = CliRunner().invoke(app, ["data", "stats", "--data-dir", str(tmp_path)])
    assert empty.exit_code == 2 and "no dataset found" in " ".join(empty.output.split())


def test_mention_counts_cover_movies_outside_samples(tmp_path):
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "c.csv").write_text(
        "dialogue_id,context,targets,history\n"
        "a,\"User: hi\nSystem: \",['Alien'],['Jaws']\n"
        "b,\"User: Jaws?\nSystem: \",['Jaws'],['Jaws']\n"
    )
    counts, titles = mention_counts("custom", tmp_path)
    assert counts == {"Alien": 1, "Jaws": 2}  # 'b' yields no sample, Jaws still counted
    assert titles["Jaws"] == "Jaws"
