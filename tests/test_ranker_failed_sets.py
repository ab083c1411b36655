"""Ranker calls that fail inside an RL step: the failed sets are counted in the step's
metrics, kept out of the loss (GRPO averages each group over its other sets, DPO/SimPO skip
the pair), and past `rl.max_failed_share` the run stops with exit status 3. A step the
breaker interrupts leaves an event row in metrics.jsonl that a resume keeps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rar.rl.losses import group_advantages, grpo_loss

# ---------------------------------------------------------------- the masked GRPO loss (fast)


def test_masked_group_equals_the_group_without_the_failed_set():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.7]])
    logp = torch.tensor([[-2.0, -4.0, -3.0, -9.0]], requires_grad=True)
    mask = torch.tensor([[True, True, True, False]])  # the 4th set's call failed
    masked = grpo_loss(logp, rewards, mask=mask)
    alone = grpo_loss(logp[:, :3], rewards[:, :3])
    assert float(masked.loss.detach()) == pytest.approx(float(alone.loss.detach()), rel=1e-9)
    masked.loss.backward()
    assert logp.grad[0, 3] == 0.0  # no gradient through a set without a reward
    adv, valid = group_advantages(rewards, mask=mask)
    assert adv[0, 3] == 0.0 and valid.tolist() == [True]


def test_mask_of_all_true_is_the_unmasked_loss_and_one_set_left_is_no_signal():
    rewards = torch.tensor([[1.0, 0.0, 0.5], [0.2, 0.9, 0.1]])
    logp = torch.tensor([[-2.0, -4.0, -3.0], [-1.0, -5.0, -2.0]])
    full = grpo_loss(logp, rewards)
    same = grpo_loss(logp, rewards, mask=torch.ones(2, 3, dtype=torch.bool))
    assert float(same.loss) == pytest.approx(float(full.loss), rel=1e-9)
    lone = torch.tensor([[True, False, False], [True, True, True]])
    out = grpo_loss(logp, rewards, mask=lone)
    assert out.n_zero_variance == 1  # one reward is no comparison
    assert float(out.loss) == pytest.approx(float(grpo_loss(logp[1:], rewards[1:]).loss))
    assert math.isfinite(float(out.loss))


# ---------------------------------------------------------------- with a real trainer (slow)


class FlakyRanker:
    """Wraps a ranker; calls whose global index is in `fail` come back failed (as a real
    failed call does: retriever order as fallback, `error` set)."""

    def __init__(self, inner, fail):
        self.inner, self.fail, self.n = inner, fail, 0

    def rank(self, requests, progress=False):
        out = self.inner.rank(requests, progress)
        for res in out:
            if self.fail(self.n):
                res.error = "connection error: refused (injected)"
                res.n_model_ranked = 0
            self.n += 1
        return out

    def stats(self):
        return self.inner.stats()

    def info(self):
        return self.inner.info()

    def close(self):
        pass


@pytest.fixture(scope="module")
def semantic(small_corpus):
    from rar.rankers import RankerConfig, build_ranker

    built = build_ranker(
        RankerConfig.model_validate({"backend": "semantic", "cache": {"enabled": False}}),
        corpus_of(small_corpus),
    )
    yield built
    built.close()


def _trainer(small_corpus, pretrained_run, data_dir, runs, ranker, *extra):
    from rar.config import load_config
    from rar.rl.train_config import TrainConfig
    from rar.rl.trainer import RLTrainer
    from rar.tracking import Run

    config = load_config(
        TrainConfig,
        None,
        [
            "name=flaky",
            f"pretrained_run={pretrained_run}",
            f"corpus={small_corpus}",
            f"data.data_dir={data_dir}",
            "data.dataset=inspired",
            "data.train_size=16",
            "data.val_size=4",
            "data.test_size=4",
            "optim.batch_size=4",
            "threads=1",
            "rl.k=50",
            "optim.warmup_steps=0",
            f"tracking.runs_dir={runs}",
            "ranker.backend=semantic",
            *extra,
        ],
    )
    run = Run.create(config.name, config, runs, overwrite=True)
    return RLTrainer.from_config(
        config, run, corpus=corpus_of(small_corpus), ranker=ranker, progress=False
    )


_CORPORA: dict = {}


def corpus_of(path):
    from rar.corpus import Corpus

    if path not in _CORPORA:
        _CORPORA[path] = Corpus.load(path)
    return _CORPORA[path]


@pytest.mark.slow
def test_grpo_counts_failed_sets_and_keeps_them_out_of_the_loss(
    small_corpus, pretrained_run, data_dir, semantic, tmp_path
):
    flaky = FlakyRanker(semantic, lambda n: n % 4 == 3)  # 1 of every 4 sets fails
    trainer = _trainer(
        small_corpus, pretrained_run, data_dir, tmp_path, flaky, "rl.method=grpo",
        "rl.group_size=4",
    )  # fmt: skip
    import rar.rl.objectives as objectives_module

    masks = []
    real = objectives_module.grpo_loss

    def recording(logp, rewards, beta, ref, mask=None):
        masks.append(None if mask is None else mask.clone())
        return real(logp, rewards, beta, ref, mask)

    objectives_module.grpo_loss = recording
    try:
        out = trainer.train_step(trainer.batch_for_step(0))
    finally:
        objectives_module.grpo_loss = real
    assert out["failed_sets"] == 4 and out["failed_sets_share"] == pytest.approx(0.25)
    [mask] = masks
    assert mask is not None and (~mask).sum() == 4 and not mask[:, 3].any()
    assert np.isfinite(out["loss"])


@pytest.mark.slow
def test_dpo_skips_pairs_with_a_failed_set_and_stops_past_the_share(
    small_corpus, pretrained_run, data_dir, semantic, tmp_path
):
    from rar.evaluation.failed_calls import FailedCallsError

    flaky = FlakyRanker(semantic, lambda n: n == 0)  # the first set of the first pair
    trainer = _trainer(
        small_corpus, pretrained_run, data_dir, tmp_path, flaky, "rl.method=dpo",
        "rl.max_resamples=2",
    )  # fmt: skip
    out = trainer.train_step(trainer.batch_for_step(0))
    assert out["failed_sets"] == 1 and out["pairs_failed_frac"] == pytest.approx(0.25)
    assert out["pairs_decided_frac"] <= 0.75  # the broken pair never counts as decided

    dead = FlakyRanker(semantic, lambda n: True)
    trainer = _trainer(
        small_corpus, pretrained_run, data_dir, tmp_path / "dead", dead, "rl.method=dpo",
        "rl.max_failed_share=0.5",
    )  # fmt: skip
    with pytest.raises(FailedCallsError, match="max_failed_share = 0.5"):
        trainer.train_step(trainer.batch_for_step(0))


@pytest.mark.slow
def test_a_step_the_breaker_interrupts_is_logged_as_an_event_that_resume_keeps(
    small_corpus, pretrained_run, data_dir, semantic, tmp_path
):
    from rar.rankers.concurrency import RankerUnavailable

    class Down(FlakyRanker):
        batches = 0

        def rank(self, requests, progress=False):
            self.batches += 1
            if self.batches >= 3:  # steps 1-2 ranked (one batch each), then the server is gone
                raise RankerUnavailable("http://127.0.0.1:9/v1", 12, "connection refused", 61.0)
            return super().rank(requests, progress)

    trainer = _trainer(
        small_corpus, pretrained_run, data_dir, tmp_path, Down(semantic, lambda n: False),
        "rl.method=dpo", "rl.max_resamples=0", "tracking.log_every=1", "max_steps=4",
        "checkpoint_every=1", "validate_at_start=false", "val_every=100",
    )  # fmt: skip
    with pytest.raises(RankerUnavailable):
        trainer.train()
    rows = trainer.run.history()
    events = [r for r in rows if r.get("event") == "ranker_unavailable"]
    assert [r["step"] for r in events] == [3] and "connection refused" in events[0]["error"]
    trainer.run.truncate_history(2)  # what a resume from step 2 does
    assert [r for r in trainer.run.history() if r.get("event")] == events
