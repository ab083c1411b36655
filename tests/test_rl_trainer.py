"""The RL trainer: schedule, data plumbing, all four methods end to end, kill -9 and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from rar.config import ConfigError, load_config
from rar.data.linking import LinkedSample
from rar.data.types import Mention, Sample
from rar.optim import cosine_with_warmup
from rar.rl.batches import make_batch
from rar.rl.inputs import subsample
from rar.rl.train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def test_cosine_with_warmup():
    assert cosine_with_warmup(0, 4, 20) == pytest.approx(0.25)
    assert cosine_with_warmup(3, 4, 20) == pytest.approx(1.0)
    assert cosine_with_warmup(4, 4, 20) == pytest.approx(1.0)
    assert cosine_with_warmup(12, 4, 20) == pytest.approx(0.5)  # half-way through the cosine
    assert cosine_with_warmup(20, 4, 20) == pytest.approx(0.0)
    assert cosine_with_warmup(20, 4, 20, floor=0.1) == pytest.approx(0.1)


def test_subsample_is_seeded_and_keeps_order():
    items = list(range(100))
    a, b = subsample(items, 10, seed=3), subsample(items, 10, seed=3)
    assert a == b and a == sorted(a) and len(set(a)) == 10
    assert subsample(items, 10, seed=4) != a
    assert subsample(items, None, seed=0) == items
    assert subsample(items, 500, seed=0) == items


def _linked(history: list[str], targets: list[str]) -> LinkedSample:
    sample = Sample(
        "redial", "d1", 3, [], [Mention(h, h) for h in history], [Mention(t, t) for t in targets]
    )
    return LinkedSample(sample, history, targets)


def test_make_batch_left_pads_histories_and_pads_targets():
    row_of = {"a": 0, "b": 1, "c": 2, "d": 3}
    batch = make_batch(
        [_linked(["a", "b", "c"], ["d"]), _linked([], ["a", "b"])], row_of, max_len=2
    )
    assert batch.history.tolist() == [[2, 3], [0, 0]]  # newest two kept, tokens = row + 1
    assert batch.targets.tolist() == [[3, 0], [0, 1]]
    assert batch.target_mask.tolist() == [[True, False], [True, True]]
    assert batch.target_ids == [["d"], ["a", "b"]]


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="rl.method"):
        load_config(TrainConfig, None, ["pretrained_run=x", "rl.method=ppo"])
    with pytest.raises(ConfigError, match="did you mean 'rl.beta'"):
        load_config(TrainConfig, None, ["pretrained_run=x", "rl.betta=0.1"])
    cfg = load_config(
        TrainConfig, ROOT / "rar" / "configs" / "redial_dpo_semantic.yaml", ["rl.method=grpo"]
    )
    assert cfg.rl.method == "grpo" and cfg.rl.sets_per_sample == 8


def test_fresh_retriever_with_hybrid_item_table(tmp_path):
    """pretrained_run: null builds a fresh retriever; id_embedding adds a zero-initialised ID
    embedding for the training split's movies only, and an SFT step moves only those."""
    import numpy as np

    from rar.rl.inputs import LinkedSplits
    from rar.rl.trainer import RLTrainer
    from rar.tracking import Run

    class TinyCorpus:
        ids = [f"m{i}" for i in range(12)]

        def vectors(self):
            v = np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

    train = [_linked(["m0", "m1"], ["m2"]), _linked(["m3"], ["m4", "m5"])]
    cfg = load_config(
        TrainConfig,
        None,
        [
            "pretrained_run=null",
            "id_embedding=true",
            "retriever.d_model=8",
            "retriever.max_len=4",
            "rl.method=sft",
            "rl.k=4",
            "optim.batch_size=2",
            "optim.warmup_steps=0",
            "max_steps=1",
        ],
    )
    trainer = RLTrainer.from_config(
        cfg, Run(tmp_path, cfg), corpus=TinyCorpus(), data=LinkedSplits(train)
    )
    items = trainer.model.items
    assert trainer.model.config.use_id_embedding
    assert items.seen.nonzero().flatten().tolist() == [0, 1, 2, 3, 4, 5]
    assert torch.count_nonzero(items.id_embedding.weight) == 0  # scores unchanged at start
    trainer.train_step(trainer.batch_for_step(0))
    moved = items.id_embedding.weight.detach().abs().sum(1)
    assert (moved[:6] > 0).any() and torch.count_nonzero(moved[6:]) == 0  # cold: text only


# ---------------------------------------------------------------- end to end (slow)


def _train_overrides(
    small_corpus, pretrained_run, data_dir, runs_dir, method: str, name: str
) -> list[str]:
    return [
        f"name={name}",
        f"pretrained_run={pretrained_run}",
        f"corpus={small_corpus}",
        f"data.data_dir={data_dir}",
        "data.dataset=inspired",
        "data.train_size=24",
        "data.val_size=8",
        "data.test_size=8",
        "optim.batch_size=4",
        "max_steps=4",
        "val_every=4",
        "validate_at_start=false",
        "checkpoint_every=2",
        f"tracking.runs_dir={runs_dir}",
        "tracking.log_every=1",
        f"rl.method={method}",
        "rl.k=8",
        "rl.group_size=3",
        "rl.max_resamples=1",
        "threads=1",
        "optim.warmup_steps=1",
    ]


@pytest.fixture(scope="module")
def dpo_run(small_corpus, pretrained_run, data_dir, tmp_path_factory):
    """One uninterrupted DPO run (in-process, its own ranker as in a fresh `rar train`)."""
    from rar.rl.trainer import train

    runs = tmp_path_factory.mktemp("rl_runs")
    cfg = load_config(
        TrainConfig,
        None,
        _train_overrides(small_corpus, pretrained_run, data_dir, runs, "dpo", "full"),
    )
    train(cfg, progress=False)
    return runs / "full"


def _check_run(run: Path, method: str, initial: dict[str, torch.Tensor]) -> None:
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["steps"] == 4 and saved["method"] == method
    for key in ("val/ndcg@10", "test/ndcg@10", "test/retriever/ndcg@10", "test/recall@5"):
        assert 0.0 <= saved[key] <= 1.0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all(r["loss_nll"] > 0 and "kl_top1_to_initial" in r for r in steps)
    if method != "sft":
        assert all("reward_mean" in r and r["ranker_requests"] > 0 for r in steps)
    if method == "grpo":
        assert all(0.0 <= r["zero_variance_frac"] <= 1.0 for r in steps)
    if method in ("dpo", "simpo"):
        assert all(0.0 <= r["pairs_skipped_frac"] <= 1.0 for r in steps)
    if method == "distill":
        assert all(r["distill_sets"] > 0 and 0 <= r["distill_top1_agree"] <= 1 for r in steps)
    if method == "label_credit":
        assert all("credited_labels" in r for r in steps)
    assert (run / "checkpoints" / "best.pt").exists() and (run / "test_per_sample.json").exists()
    # the last checkpoint holds weights that moved away from the pretrained ones
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert any(not torch.equal(state["model"][k], v) for k, v in initial.items())


@pytest.mark.slow
def test_all_methods_train_end_to_end(small_corpus, pretrained_run, data_dir, dpo_run, tmp_path):
    from rar.corpus import Corpus
    from rar.rankers import RankerConfig, build_ranker
    from rar.retrievers import load_pretrained_run
    from rar.rl.trainer import train

    corpus = Corpus.load(small_corpus)
    ranker = build_ranker(RankerConfig(backend="semantic"), corpus)  # shared: loads the model once
    initial = load_pretrained_run(pretrained_run, corpus).state_dict()
    _check_run(dpo_run, "dpo", initial)
    for method in ("sft", "simpo", "grpo", "distill", "label_credit"):
        overrides = _train_overrides(
            small_corpus, pretrained_run, data_dir, tmp_path, method, method
        )
        if method in ("distill", "label_credit"):  # the new objectives on the fused policy
            overrides.append("towers=fused")
        final = train(
            load_config(TrainConfig, None, overrides), corpus=corpus, ranker=ranker, progress=False
        )
        _check_run(Path(final["run_dir"]), method, initial)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_final_metrics(
    small_corpus, pretrained_run, data_dir, dpo_run, tmp_path
):
    overrides = _train_overrides(small_corpus, pretrained_run, data_dir, tmp_path, "dpo", "killed")
    path = tmp_path / "killed.yaml"
    path.write_text(
        yaml.safe_dump(load_config(TrainConfig, None, overrides).model_dump(mode="json"))
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAR_DATA_DIR=str(data_dir))
    cmd = [sys.executable, "-m", "rar.cli", "train", "--quiet", "--config", str(path)]
    # SIGKILL as soon as the first checkpoint exists (step 2 of 4), then resume
    proc = subprocess.Popen(cmd, env=env)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "metrics.json").exists()
    assert 2 <= torch.load(last, weights_only=False)["step"] < 4
    subprocess.run([*cmd, "--resume"], check=True, env=env, timeout=300)

    full = json.loads((dpo_run / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    keys = [k for k in full if k.startswith(("val/", "test/"))] + ["best_step", "steps"]
    keys += ["ranker.requests", "ranker.calls", "ranker.failures"]  # the whole run's, not the
    assert {k: full[k] for k in keys} == {k: resumed[k] for k in keys}  # resumed process's

    # the logged training curve is identical too (no duplicated or missing steps)
    def curve(run: Path) -> list[tuple[int, float, float | None]]:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [(r["step"], r["loss"], r.get("reward_mean")) for r in rows if "loss" in r]

    assert curve(dpo_run) == curve(tmp_path / "killed")
