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
    for stage in range(1, 10):
        assert f"[{stage}/9]" in result.output
    text = " ".join(result.output.split())
    assert "RAR (fused + RL) + ranker" in text and "cold N@10" in text and "R@50" in text
    assert "Paired bootstrap on N@10" in result.output  # the paired tests
    assert "95% CI" in result.output
    assert "per-turn protocol, " in text  # the table names it

    runs = out / "runs"
    policies = {"quickstart-sft": "item", "quickstart-sft-text": "text",
                "quickstart-sft-fused": "fused"}  # fmt: skip
    for run in ("pretrain-quickstart", *policies, "quickstart-rar"):
        assert (runs / run / "metrics.json").exists(), run
        assert (runs / run / "config.yaml").exists(), run
    # each SFT starts from the pretrained run with its towers; RAR from the fused SFT run
    for run, towers in policies.items():
        sft_config = (runs / run / "config.yaml").read_text()
        assert "method: sft" in sft_config and "pretrain-quickstart" in sft_config
        assert f"towers: {towers}" in sft_config
        assert ("cooc_prior: true" in sft_config) == (towers == "fused")
    rar_config = (runs / "quickstart-rar" / "config.yaml").read_text()
    assert "method: distill" in rar_config and "runs/quickstart-sft-fused" in rar_config
    assert "backend: trained" in rar_config and "ranker-redial" in rar_config
    ranker = json.loads((runs / "ranker-redial" / "config.json").read_text())
    assert ranker["retriever_run"].endswith("quickstart-sft-fused")  # chosen on fused val
    assert ranker["cooc_weight"] >= 0 and ranker["train_samples"] > 0

    evaluation = json.loads((out / "evaluation" / "evaluation.json").read_text())
    systems = evaluation["systems"]
    policy_rows = [
        "LRURec SFT (item only, paper)",
        "Text tower SFT (PECRS-style)",
        "Fused SFT (recommended)",
        "RAR (fused + RL)",
    ]
    assert list(systems) == [
        "most-popular",
        "ItemKNN",
        "EASE",
        "EASE + ranker",
        *[row for name in policy_rows for row in (name, f"{name} + ranker")],
    ]
    for system in systems.values():
        assert 0 < system["num_samples"] <= 40
        assert 0.0 <= system["metrics"]["ndcg@10"] <= 1.0
    ceiling = json.loads((out / "evaluation" / "ceiling.json").read_text())
    assert set(ceiling["systems"]) == set(systems)
    for name, row in ceiling["systems"].items():
        assert 0.0 <= row["recall@25"] <= row["recall@50"] <= 1.0, name
    # a ranker reorders its retriever's top-k: the ceiling is the retriever's
    fused = "Fused SFT (recommended)"
    assert ceiling["systems"][fused] == {
        **ceiling["systems"][f"{fused} + ranker"],
        "cold/ndcg@10": ceiling["systems"][fused]["cold/ndcg@10"],
    }
    fits = json.loads((out / "evaluation" / "baselines.json").read_text())
    assert [f["baseline"] for f in fits] == ["most-popular", "itemknn", "ease"]
    assert all(f["fit_split"] == "train" for f in fits)
    reports = out / "reports"
    assert (reports / "hallucination.md").exists()
    assert (reports / "popularity.md").exists()
    assert list(reports.glob("compare_LRURec*_vs_Fused*/compare.md"))
    assert list(reports.glob("compare_EASE*_vs_Fused*/compare.md"))
    assert list(reports.glob("compare_Fused*_vs_RAR*/compare.md"))

    # a second run reuses every finished stage
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "pretrained retriever: reusing" in again.output
    assert "Fused SFT (recommended): reusing" in again.output
    assert "RAR (fused + RL): reusing" in again.output
    assert "trained ranker: reusing" in again.output


def test_quickstart_without_data_says_where_to_get_it(tmp_path):
    result = CliRunner().invoke(app, ["quickstart", "--data-dir", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "rar download" in result.output
