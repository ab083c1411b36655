"""`RankerStats` is the one type of the ranker counters: `+` and `-` work field by field, and
every field reaches evaluation.json (what one system spent) and an RL run's metrics.json (what
the run spent, summed across resumes) with its rates recomputed from the summed counters."""

from __future__ import annotations

from dataclasses import asdict, fields

import pytest

from rar.corpus import Corpus, Movie
from rar.data.types import Mention, Sample, Turn
from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.evaluator import Evaluator
from rar.pipeline import System
from rar.rankers.base import RankerStats
from rar.rankers.types import RankResult
from rar.rl.ranker_totals import STEP_COUNTERS, RankerTotals, step_counters, step_increase

NAMES = [f.name for f in fields(RankerStats)]


def every_counter(scale: int) -> RankerStats:
    """Every counter set to a different value (so a dropped or swapped one shows)."""
    return RankerStats(**{name: scale * (i + 1) for i, name in enumerate(NAMES)})


class CountingRanker:
    """Every request adds `every_counter(1)`: a ranker whose counters all move."""

    def __init__(self) -> None:
        self.counted = RankerStats()

    def rank(self, requests, progress=False):
        self.counted = self.counted + every_counter(len(requests))
        return [RankResult(r.sample_id, list(r.candidate_ids)) for r in requests]

    def stats(self) -> RankerStats:
        return self.counted

    def info(self) -> dict:
        return {"backend": "counting", "model": "m"}


def test_plus_and_minus_are_field_by_field_and_rates_come_from_the_counters():
    a, b = every_counter(3), every_counter(1)
    assert asdict(a - b) == asdict(every_counter(2)) and asdict(a + b) == asdict(every_counter(4))
    stats = RankerStats(hallucinations=1, items_parsed=4, candidates=10, appended=5)
    block = stats.as_dict()
    assert set(NAMES) <= set(block)
    assert block["hallucination_rate"] == 0.25 and block["appended_share"] == 0.5
    assert {"non_title_rate", "prompt_tokens_per_call", "counted_tokens_per_prompt"} <= set(block)
    assert asdict(RankerStats.from_dict({"calls": 2, "not_a_counter": 1})) == asdict(
        RankerStats(calls=2)
    )


def test_every_counter_reaches_the_evaluation_block_as_spent_by_that_system():
    corpus = Corpus.from_movies([Movie(corpus_id=m, title=f"Movie {m}") for m in "ABCD"])
    sample = Sample("toy", "d1", 2, [Turn("seeker", "hi")], [Mention("D", "Movie D")], [Mention("A", "Movie A")])  # fmt: skip
    ranker = CountingRanker()
    ranker.counted = every_counter(100)  # an earlier system's share is not this one's
    evaluator = Evaluator(corpus, EvaluateConfig(k=3, ks=[10]), progress=False)
    linked, _ = evaluator.link([sample])
    result = evaluator.evaluate(System("s", "given", ranker), linked, [list("ABC")])
    block = result.ranker
    assert block["backend"] == "counting" and block["model"] == "m"
    assert {name: block[name] for name in NAMES} == asdict(every_counter(1))
    assert block["hallucination_rate"] == every_counter(1).hallucination_rate


def test_rl_totals_add_up_every_counter_across_a_resume():
    first = CountingRanker()
    totals = RankerTotals(first)
    first.counted = first.counted + every_counter(2)
    saved = totals.totals()  # what the checkpoint stores
    assert saved == asdict(every_counter(2))
    second = CountingRanker()
    second.counted = every_counter(7)  # a ranker that already counted before the run used it
    resumed = RankerTotals(second)
    resumed.resume_from(saved)
    second.counted = second.counted + every_counter(3)
    report = resumed.report()
    assert {name: report[name] for name in NAMES} == asdict(every_counter(5))
    assert report["backend"] == "counting"
    assert report["appended_share"] == every_counter(5).appended_share
    assert RankerTotals(None).report() == {}


def test_a_step_row_reports_the_increase_of_its_counters():
    ranker = CountingRanker()
    before = step_counters(ranker)
    ranker.counted = every_counter(2)
    row = step_increase(before, step_counters(ranker))
    assert set(STEP_COUNTERS) <= set(NAMES)
    assert row == {
        f"ranker_{k}": pytest.approx(getattr(every_counter(2), k)) for k in STEP_COUNTERS
    }
    assert step_counters(None) == {}
