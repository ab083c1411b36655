"""`rar quickstart` end to end on the real data, with the small test corpus and tiny budgets."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rar.cli import app


@pytest.mark.slow
def test_quickstart_runs_every_stage_and_prints_the_table(tmp_path, data_dir, small_corpus):
    out = tmp_path / "qs"
    args = [
        "quickstart",
        "--data-dir", str(data_dir),
        "--out", str(out),
        "--corpus", str(small_corpus),
        "--quiet",
        "--set-pretrain", "epochs=1",
        "--set-pretrain", "max_steps_per_epoch=5",
        "--set-pretrain", "data.max_eval_sessions=100",
        "--set-train", "max_steps=4",
        "--set-train", "val_every=2",
        "--set-train", "checkpoint_every=2",
        "--set-train", "data.train_size=40",
        "--set-train", "data.val_size=20",
        "--set-train", "optim.warmup_steps=1",
        "--set-train", "optim.batch_size=4",
        "--set-evaluate", "max_samples=40",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for stage in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert stage in result.output
    assert "RAR (DPO) + ranker" in result.output
    assert "per-turn protocol, " in " ".join(result.output.split())  # the table names it

    runs = out / "runs"
    for run in ("pretrain-quickstart", "quickstart-sft", "quickstart-dpo"):
        assert (runs / run / "metrics.json").exists(), run
        assert (runs / run / "config.yaml").exists(), run
    # the SFT and DPO runs really were those methods, from the pretrained run
    dpo_config = (runs / "quickstart-dpo" / "config.yaml").read_text()
    assert "method: dpo" in dpo_config and "pretrain-quickstart" in dpo_config

    evaluation = json.loads((out / "evaluation" / "evaluation.json").read_text())
    systems = evaluation["systems"]
    assert list(systems) == [
        "most-popular",
        "ItemKNN",
        "LRURec (retriever only)",
        "LRURec + ranker (no post-training)",
        "SFT (retriever only)",
        "SFT + ranker",
        "RAR (DPO) + ranker",
    ]
    for system in systems.values():
        assert 0 < system["num_samples"] <= 40
        assert 0.0 <= system["metrics"]["ndcg@10"] <= 1.0
    fits = json.loads((out / "evaluation" / "baselines.json").read_text())
    assert [f["baseline"] for f in fits] == ["most-popular", "itemknn"]
    assert all(f["fit_split"] == "train" for f in fits)
    reports = out / "reports"
    assert (reports / "hallucination.md").exists()
    assert (reports / "popularity.md").exists()
    assert list(reports.glob("compare_SFT*RAR*/compare.md"))

    # a second run reuses every finished stage
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "pretrained retriever: reusing" in again.output
    assert "SFT: reusing" in again.output and "DPO: reusing" in again.output


def test_quickstart_without_data_says_where_to_get_it(tmp_path):
    result = CliRunner().invoke(app, ["quickstart", "--data-dir", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "rar download" in result.output
