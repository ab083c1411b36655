"""RL training to convergence: the RL term carries gradient, the reward ignores the draw order,
the shuffled-reward control, and early stopping that restores the best model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rar.config import load_config
from rar.rl.candidate_order import cross_sample_permutation, order_set
from rar.rl.train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- pure parts (fast)


def test_retriever_and_shuffled_orders_depend_only_on_the_set():
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    drawn, redrawn = [4, 1, 2, 3], [2, 3, 4, 1]  # one set, two draw orders
    assert order_set(drawn, "retriever", scores) == [1, 3, 2, 4]
    assert order_set(redrawn, "retriever", scores) == [1, 3, 2, 4]
    a = order_set(drawn, "shuffled", key="s1", seed=3)
    assert a == order_set(redrawn, "shuffled", key="s1", seed=3) and sorted(a) == [1, 2, 3, 4]
    assert order_set(drawn, "sampled") == drawn and order_set(redrawn, "sampled") == redrawn


def test_cross_sample_permutation_moves_every_reward():
    for n in (2, 3, 16):
        perm = cross_sample_permutation(n, [0, 5, 1])
        assert sorted(perm.tolist()) == list(range(n))
        assert all(perm[i] != i for i in range(n))
    assert cross_sample_permutation(16, [0, 5, 1]).tolist() == (
        cross_sample_permutation(16, [0, 5, 1]).tolist()
    )
    assert cross_sample_permutation(1, [0]).tolist() == [0]


# ---------------------------------------------------------------- with a real trainer (slow)


@pytest.fixture(scope="module")
def corpus(small_corpus):
    from rar.corpus import Corpus

    return Corpus.load(small_corpus)


@pytest.fixture(scope="module")
def ranker(corpus):
    """The semantic ranker blending in the given order, so it is order-sensitive."""
    from rar.rankers import RankerConfig, build_ranker

    config = RankerConfig.model_validate(
        {"backend": "semantic", "semantic": {"retriever_weight": 0.7}, "cache": {"enabled": False}}
    )
    built = build_ranker(config, corpus)
    yield built
    built.close()


def _config(small_corpus, pretrained_run, data_dir, runs_dir, *extra: str) -> TrainConfig:
    return load_config(
        TrainConfig,
        None,
        [
            "name=conv",
            f"pretrained_run={pretrained_run}",
            f"corpus={small_corpus}",
            f"data.data_dir={data_dir}",
            "data.dataset=inspired",
            "data.train_size=32",
            "data.val_size=8",
            "data.test_size=8",
            "optim.batch_size=8",
            "threads=1",
            "optim.warmup_steps=0",
            f"tracking.runs_dir={runs_dir}",
            "tracking.log_every=1",
            "ranker.backend=semantic",
            *extra,
        ],
    )


def _trainer(config: TrainConfig, corpus, ranker):
    from rar.rl.trainer import RLTrainer
    from rar.tracking import Run

    run = Run.create(config.name, config, config.tracking.runs_dir, overwrite=True)
    return RLTrainer.from_config(config, run, corpus=corpus, ranker=ranker, progress=False)


@pytest.mark.needs_data
@pytest.mark.slow
def test_a_dpo_steps_rl_term_alone_moves_the_retriever(
    small_corpus, pretrained_run, data_dir, corpus, ranker, tmp_path
):
    """NLL weight 0: every gradient on the retriever comes from the DPO term."""
    config = _config(
        small_corpus,
        pretrained_run,
        data_dir,
        tmp_path,
        "rl.method=dpo",
        "rl.k=300",  # large sets, so pairs are decided on this weak retriever
        "rl.max_resamples=4",
        "rl.nll_weight=0",
        "optim.grad_clip=null",
    )
    trainer = _trainer(config, corpus, ranker)
    for step in range(4):
        out = trainer.train_step(trainer.batch_for_step(step))
        if out["pairs_decided_frac"] > 0:
            break
    assert out["pairs_decided_frac"] > 0, "no decided pair in 4 batches; the test cannot judge"
    assert out["loss_dpo"] > 0
    grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
    assert grads, "the RL loss reached no retriever parameter"
    assert sum(float(g.abs().sum()) for g in grads) > 0, "the RL term gave a zero gradient"
    for key in ("label_in_set_rate", "reward_var", "reward_var_within", "kl_top1_to_initial"):
        assert np.isfinite(out[key]), key
    assert 0 < out["label_in_set_rate"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("order", ["retriever", "shuffled"])
def test_the_reward_does_not_depend_on_the_draw_order(
    small_corpus, pretrained_run, data_dir, corpus, ranker, tmp_path, order
):
    config = _config(
        small_corpus,
        pretrained_run,
        data_dir,
        tmp_path,
        "rl.method=dpo",
        "rl.k=12",
        f"rl.candidate_order={order}",
    )
    trainer = _trainer(config, corpus, ranker)
    batch = trainer.batch_for_step(0)
    with torch.no_grad():
        scores = trainer.model.scores(batch.history)
    b = 0
    target = trainer.row_of[batch.samples[b].target_ids[0]]
    # a set holding the label, drawn in the policy's order and again in the reverse order
    others = [int(r) for r in torch.argsort(scores[b], descending=True) if int(r) != target]
    drawn = torch.tensor([target, *others[:11]])
    sets = torch.stack([drawn, drawn.flip(0)])[None]  # [1, 2, k]
    rewards, ranks, _, _ = trainer.rank_sets(batch, [b], sets, scores[[b]])
    assert rewards[0, 0] > 0
    assert rewards[0, 0] == rewards[0, 1] and ranks[0][0] == ranks[0][1]

    # the same check sees the dependence when the draw order is handed over
    trainer.rl = trainer.rl.model_copy(update={"candidate_order": "sampled"})
    rewards, _, _, _ = trainer.rank_sets(batch, [b], sets, scores[[b]])
    assert rewards[0, 0] != rewards[0, 1], "the ranker ignores order here; the test cannot judge"


@pytest.mark.needs_data
@pytest.mark.slow
def test_shuffled_rewards_are_logged_and_permute_grpo_rewards(
    small_corpus, pretrained_run, data_dir, corpus, ranker, tmp_path
):
    config = _config(
        small_corpus,
        pretrained_run,
        data_dir,
        tmp_path,
        "rl.method=grpo",
        "rl.group_size=3",
        "rl.k=300",
        "rl.shuffle_rewards=true",
    )
    trainer = _trainer(config, corpus, ranker)
    ranked: list[np.ndarray] = []
    used: list[np.ndarray] = []
    real_rank_sets = trainer.rank_sets

    def recording_rank_sets(*args):
        verdicts = real_rank_sets(*args)
        ranked.append(verdicts.rewards.copy())
        return verdicts

    import rar.rl.objectives as objectives_module

    real_grpo = objectives_module.grpo_loss

    def recording_grpo(logp, rewards, *args):
        used.append(rewards.numpy().copy())
        return real_grpo(logp, rewards, *args)

    trainer.rank_sets = recording_rank_sets
    objectives_module.grpo_loss = recording_grpo
    try:
        for step in range(4):
            out = trainer.train_step(trainer.batch_for_step(step))
            trainer.state.step += 1
            if ranked[-1].sum() > 0:
                break
    finally:
        objectives_module.grpo_loss = real_grpo
    assert out["shuffle_rewards"] == 1.0
    assert ranked[-1].sum() > 0, "no reward in 4 batches; the test cannot judge"
    perm = cross_sample_permutation(len(ranked[-1]), [config.seed, trainer.state.step - 1, 1])
    np.testing.assert_allclose(used[-1], ranked[-1][perm], rtol=1e-6)  # float32 in the loss
    assert not np.array_equal(used[-1], ranked[-1])


@pytest.mark.slow
def test_early_stopping_restores_the_best_model(
    small_corpus, pretrained_run, data_dir, corpus, ranker, tmp_path
):
    """Validation improves until step 2 and worsens after it: training stops after `patience`
    worse validations and the final model (and its test metrics) is the step-2 checkpoint."""
    from rar.retrievers import load_retriever
    from rar.rl.trainer import RLTrainer

    class WorseningValidation(RLTrainer):
        """The real pipeline evaluation, with the selection metric scripted to peak at step 2."""

        def evaluate(self, samples, *args, **kwargs):
            result = super().evaluate(samples, *args, **kwargs)
            if samples is self.data.val:
                result.metrics["ndcg@10"] = 1.0 - abs(self.state.step - 2) / 10
            return result

    config = _config(
        small_corpus,
        pretrained_run,
        data_dir,
        tmp_path,
        "rl.method=sft",
        "optim.lr=0.01",
        "val_every=1",
        "patience=2",
        "epochs=10",
        "checkpoint_every=100",
    )
    from rar.tracking import Run

    run = Run.create(config.name, config, config.tracking.runs_dir, overwrite=True)
    trainer = WorseningValidation.from_config(
        config, run, corpus=corpus, ranker=ranker, progress=False
    )
    final = trainer.train()

    assert final["best_step"] == 2 and final["stopped_early"] is True
    assert final["steps"] == 4 < final["budget_steps"]
    best = load_retriever(run.path / "checkpoints" / "best.pt", corpus.vectors())
    last = torch.load(run.path / "checkpoints" / "last.pt", weights_only=False)["model"]
    for name, value in best.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[name], value), name
    assert any(not torch.equal(last[k], v) for k, v in best.state_dict().items())
    # the test figures are those of the best model
    expected = trainer.evaluate(trainer.data.test).metrics
    saved = json.loads((run.path / "metrics.json").read_text())
    assert saved["test/ndcg@10"] == pytest.approx(expected["ndcg@10"])
    assert saved["stopped_early"] is True and saved["best_step"] == 2
