"""The one retrieve -> rank -> score path: `rar evaluate` and RL validation report the same
figures for the same run, samples and ranker (they once computed them through copies that
differed in batching, chunking and filtering)."""

from __future__ import annotations

import pytest

from rar.config import load_config
from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.evaluator import Evaluator
from rar.evaluation.runner import evaluate_runs, load_eval_samples
from rar.rankers import RankerConfig, build_ranker
from rar.rl.train_config import TrainConfig

K = 25
KS = (5, 10)
HEADLINE = [f"{m}@{k}" for k in KS for m in ("ndcg", "recall")]


@pytest.mark.needs_data
@pytest.mark.slow
def test_rar_evaluate_and_rl_validation_give_identical_figures(
    small_corpus, pretrained_run, data_dir, tmp_path
):
    from rar.corpus import Corpus
    from rar.rl.inputs import LinkedSplits
    from rar.rl.trainer import RLTrainer
    from rar.tracking import Run

    corpus = Corpus.load(small_corpus)
    ranker_cfg = RankerConfig(backend="semantic", cache={"enabled": False})
    eval_cfg = EvaluateConfig(k=K, ks=list(KS), max_samples=200, ranker=ranker_cfg)
    report = evaluate_runs(
        [pretrained_run], "redial", data_dir, eval_cfg, small_corpus, tmp_path / "eval", False
    )
    ranked = report.system(f"{pretrained_run.name} + semantic").metrics
    alone = report.system(pretrained_run.name).metrics

    # the same linked samples, validated by the RL trainer with its own ranker
    samples, _ = load_eval_samples("redial", data_dir, "test")
    linked, _ = Evaluator(corpus, eval_cfg, progress=False).link(samples)
    config = load_config(
        TrainConfig,
        None,
        [
            "name=identity",
            f"pretrained_run={pretrained_run}",
            f"corpus={small_corpus}",
            f"tracking.runs_dir={tmp_path / 'runs'}",
            f"rl.k={K}",
            f"eval_ks={list(KS)}",
            "ranker.backend=semantic",
            "ranker.cache.enabled=false",
            "threads=1",
        ],
    )
    run = Run.create(config.name, config, config.tracking.runs_dir, overwrite=True)
    ranker = build_ranker(config.ranker, corpus)
    data = LinkedSplits(train=linked[:4], val=linked)
    trainer = RLTrainer.from_config(
        config, run, corpus=corpus, ranker=ranker, data=data, progress=False
    )
    validated = trainer.evaluate(linked).metrics

    assert len(linked) == report.system(pretrained_run.name).num_samples == 200
    assert {m: validated[m] for m in HEADLINE} == {m: ranked[m] for m in HEADLINE}
    assert {m: validated[f"retriever/{m}"] for m in HEADLINE} == {m: alone[m] for m in HEADLINE}
    # the run finds targets: the comparison is not 0 == 0
    assert ranked["recall@10"] > 0 and alone["recall@10"] > 0
