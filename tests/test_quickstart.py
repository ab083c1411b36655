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
    for stage in ("[1/7]", "[2/7]", "[3/7]", "[4/7]", "[5/7]", "[6/7]", "[7/7]"):
        assert stage in result.output
    assert "RAR (DPO) + ranker" in result.output
    assert "Paired bootstrap on N@10" in result.output  # the paired test of RAR vs SFT
    assert "95% CI" in result.output
    assert "per-turn protocol, " in " ".join(result.output.split())  # the table names it

    runs = out / "runs"
    for run in ("pretrain-quickstart", "quickstart-sft", "quickstart-dpo"):
        assert (runs / run / "metrics.json").exists(), run
        assert (runs / run / "config.yaml").exists(), run
    # SFT starts from the pretrained run, DPO from the SFT run with the trained ranker's rewards
    sft_config = (runs / "quickstart-sft" / "config.yaml").read_text()
    assert "method: sft" in sft_config and "pretrain-quickstart" in sft_config
    dpo_config = (runs / "quickstart-dpo" / "config.yaml").read_text()
    assert "method: dpo" in dpo_config and "runs/quickstart-sft" in dpo_config
    assert "backend: trained" in dpo_config and "ranker-redial" in dpo_config
    ranker = json.loads((runs / "ranker-redial" / "config.json").read_text())
    assert ranker["retriever_run"].endswith("quickstart-sft")  # weights chosen on SFT's val
    assert ranker["cooc_weight"] >= 0 and ranker["train_samples"] > 0

    evaluation = json.loads((out / "evaluation" / "evaluation.json").read_text())
    systems = evaluation["systems"]
    assert list(systems) == [
        "most-popular",
        "ItemKNN",
        "EASE",
        "LRURec (retriever only)",
        "SFT (retriever only)",
        "SFT + ranker",
        "RAR (DPO)",
        "RAR (DPO) + ranker",
    ]
    for system in systems.values():
        assert 0 < system["num_samples"] <= 40
        assert 0.0 <= system["metrics"]["ndcg@10"] <= 1.0
    fits = json.loads((out / "evaluation" / "baselines.json").read_text())
    assert [f["baseline"] for f in fits] == ["most-popular", "itemknn", "ease"]
    assert all(f["fit_split"] == "train" for f in fits)
    reports = out / "reports"
    assert (reports / "hallucination.md").exists()
    assert (reports / "popularity.md").exists()
    assert list(reports.glob("compare_SFT*RAR*/compare.md"))

    # a second run reuses every finished stage
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "pretrained retriever: reusing" in again.output
    assert "SFT: reusing" in again.output and "RAR (DPO): reusing" in again.output
    assert "trained ranker: reusing" in again.output


def test_quickstart_without_data_says_where_to_get_it(tmp_path):
    result = CliRunner().invoke(app, ["quickstart", "--data-dir", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "rar download" in result.output
