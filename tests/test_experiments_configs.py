"""The paper-table sweeps in experiments/configs resolve to valid training configs, and runs that
are the same experiment (Table 3's DPO, Table 4's DPO, Table 5's beta = 0.05) share one run
directory, so the tables never train the same thing twice."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
sys.path.insert(0, str(EXPERIMENTS))

from _common import cell, markdown_table  # noqa: E402
from _rl_common import SweepConfig, resolve_config  # noqa: E402

from rar.config import ConfigError, load_config  # noqa: E402
from rar.metrics import summarize  # noqa: E402

SWEEPS = ("table_rl", "table3_dpo_vs_grpo", "table4_simpo_vs_dpo", "table5_beta_sweep")


def _args(quick: bool = False, **extra) -> argparse.Namespace:
    base = dict(
        corpus="corpus",
        pretrained_run="runs/pretrain",
        threads=1,
        data_dir=None,
        max_steps=None,
        quick=quick,
        set=[],
    )
    base.update(extra)
    return argparse.Namespace(**base)


def _resolve(sweep: SweepConfig, variant: str, args=None, dataset: str = "redial", seed: int = 0):
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)  # a base_config given as a path is relative to the repository root
    try:
        return resolve_config(args or _args(), sweep, dataset, variant, seed)
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("stem", SWEEPS)
def test_every_variant_resolves_to_the_intended_method(stem):
    sweep = load_config(SweepConfig, EXPERIMENTS / "configs" / f"{stem}.yaml")
    names = set()
    for variant, overrides in sweep.variants.items():
        cfg, name = _resolve(sweep, variant)
        method = next(o.split("=", 1)[1] for o in overrides if o.startswith("rl.method="))
        assert cfg.rl.method == method
        assert cfg.name == name and name.startswith(f"redial-{method}")
        names.add(name)
    assert len(names) == len(sweep.variants)  # every row is its own run
    assert sweep.compare_to in sweep.variants
    assert all(len(v) == 4 for v in sweep.paper.values())


def test_same_experiment_shares_a_run_across_tables():
    rl, t3, t4, t5 = (
        load_config(SweepConfig, EXPERIMENTS / "configs" / f"{s}.yaml") for s in SWEEPS
    )
    dpo3 = _resolve(t3, "DPO")[1]
    assert _resolve(rl, "DPO")[1] == dpo3  # the RL table's DPO row is Table 3's
    assert _resolve(t4, "DPO")[1] == dpo3
    assert _resolve(t5, "β = 0.05")[1] == dpo3
    assert _resolve(t5, "β = 0.1")[1] != dpo3
    assert _resolve(t3, "DPO", seed=1)[1] != dpo3
    assert _resolve(t3, "DPO", dataset="inspired")[1] != dpo3


def test_quick_budget_and_cli_overrides_apply():
    t3 = load_config(SweepConfig, EXPERIMENTS / "configs" / "table3_dpo_vs_grpo.yaml")
    full, full_name = _resolve(t3, "GRPO")
    quick, quick_name = _resolve(t3, "GRPO", _args(quick=True, max_steps=7))
    assert full.data.train_size is None  # every training sample
    assert full.max_steps is None or full.max_steps >= 1000  # a budget that converges
    assert full.patience is not None  # trained to convergence, early stopping
    assert quick.max_steps == 7 and quick.data.train_size == 1000
    assert quick.rl.group_size == 8 and quick_name != full_name


def test_bad_sweep_key_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\nvariants: {A: [rl.method=dpo]}\nseedz: [0]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="seedz"):
        load_config(SweepConfig, bad)


def test_cells_and_tables():
    s = summarize([0.1, 0.2, 0.3])
    assert s.mean == pytest.approx(0.2) and s.se == pytest.approx(0.0577350, rel=1e-5)
    assert cell(s.mean, s.se) == "0.2000 ± 0.0577"
    one = summarize([0.5])
    assert cell(one.mean, one.se) == "0.5000"  # one seed: no se
    table = markdown_table(["a", "b"], [["1", "2"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]
