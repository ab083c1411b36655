"""The evaluation protocol is stated and selectable: per_turn (one row per recommender turn) or
per_item (He et al. 2023: one row per ground-truth movie of a turn). Row counts on a real
ReDial file, the metrics of both protocols on a hand-made example, the protocol named in every
table, the RL trainer's validation rows, and `rar evaluate --protocol` end to end."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from rich.console import Console
from servers.redial_corpus import redial_metadata_corpus
from typer.testing import CliRunner

from rar.corpus import Corpus, Movie
from rar.data.linking import expand_rows, link_samples
from rar.data.types import Mention, Sample, Turn
from rar.errors import InputError
from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.evaluator import Evaluator
from rar.evaluation.result_table import summary_table
from rar.evaluation.results import EvaluationReport
from rar.pipeline import System
from rar.rankers.base import RankerStats
from rar.rankers.types import RankResult

REDIAL_FILE = "redial/train_part_c.jsonl"  # 100 real dialogues


@pytest.fixture(scope="module")
def redial_corpus(data_dir) -> Corpus:
    """Every ReDial movie (ids m<ReDial id>), in memory: ReDial titles link exactly."""
    return redial_metadata_corpus(data_dir, n=100_000)


@pytest.fixture(scope="module")
def redial_linked(redial_corpus, data_dir):
    from rar.data.registry import load_samples_from_file

    samples = load_samples_from_file(data_dir / REDIAL_FILE, dataset="redial")
    linked, _ = link_samples(samples, redial_corpus)
    return linked


@pytest.mark.needs_data
def test_per_item_has_one_row_per_target_of_a_real_redial_file(redial_linked):
    per_turn = expand_rows(redial_linked, "per_turn")
    per_item = expand_rows(redial_linked, "per_item")
    assert per_turn == redial_linked
    assert len(per_item) == sum(len(t.target_ids) for t in redial_linked) > len(per_turn)
    # Pretty in Pink and Sixteen Candles are recommended in the same turn: two rows
    turn = next(t for t in redial_linked if t.sample.sample_id == "redial:17795:4")
    assert turn.target_ids == ["m75918", "m196481"]
    rows = [r for r in per_item if r.turn_id == "redial:17795:4"]
    assert [r.sample.sample_id for r in rows] == ["redial:17795:4#1", "redial:17795:4#2"]
    assert [r.target_ids for r in rows] == [["m75918"], ["m196481"]]
    for row in rows:  # the same history and conversation as the turn
        assert row.history_ids == turn.history_ids and row.sample.context is turn.sample.context
        assert row.sample.dialogue_id == turn.sample.dialogue_id
    single = next(t for t in redial_linked if len(t.target_ids) == 1)
    [row] = [r for r in per_item if r.turn_id == single.sample.sample_id]
    assert row.sample.sample_id == single.sample.sample_id  # a one-movie turn keeps its id
    assert len({r.sample.sample_id for r in per_item}) == len(per_item)
    with pytest.raises(InputError, match="unknown evaluation protocol 'per_target'"):
        expand_rows(redial_linked, "per_target")


# ---- a hand-made example with known figures ---------------------------------------------
MOVIES = ["A", "B", "C", "D", "X", "Y"]


class FixedRanker:
    """A ranker that puts the candidates in a fixed order and counts its requests."""

    def __init__(self, order: list[str]):
        self.order = order
        self.requests: list[str] = []

    def rank(self, requests, progress=False):
        self.requests += [r.sample_id for r in requests]
        return [
            RankResult(r.sample_id, [c for c in self.order if c in r.candidate_ids])
            for r in requests
        ]

    def stats(self):
        return RankerStats(calls=len(self.requests))

    def info(self):
        return {"backend": "fixed"}


def toy_corpus() -> Corpus:
    return Corpus.from_movies([Movie(corpus_id=m, title=f"Movie {m}") for m in MOVIES])


def toy_sample(turn: int, history: list[str], targets: list[str]) -> Sample:
    mention = lambda m: Mention(m, f"Movie {m}")  # noqa: E731
    return Sample(
        "toy",
        "d1",
        turn,
        [Turn("seeker", "something fun")],
        [mention(m) for m in history],
        [mention(m) for m in targets],
    )


def evaluate_toy(protocol: str, tmp_path: Path | None = None):
    # turn 2 has two targets, A and B; the ranker puts B first, then X, then A: under per_item,
    # B is not a hit for A's row (and the rows are asked once, as one turn)
    samples = [toy_sample(2, ["D"], ["A", "B"]), toy_sample(4, ["D"], ["C"])]
    ranker = FixedRanker(["B", "X", "A", "Y", "C"])
    cfg = EvaluateConfig(k=5, ks=[1, 10], protocol=protocol)
    spec = System("fixed ranker", retriever="candidates given", ranker=ranker)
    evaluator = Evaluator(toy_corpus(), cfg, progress=False)
    linked, stats = evaluator.link(samples)
    result = evaluator.evaluate(spec, linked, [list("ABCXY") for _ in linked])
    return result, stats, ranker


def test_per_item_scores_each_target_alone_and_weighs_turns_by_their_targets():
    turn, turn_stats, turn_ranker = evaluate_toy("per_turn")
    item, item_stats, item_ranker = evaluate_toy("per_item")
    log2 = math.log2
    # per turn: turn 2 finds A (rank 3) and B (rank 1); turn 4 finds C at rank 5
    ndcg_turn2 = (1 + 1 / log2(4)) / (1 + 1 / log2(3))
    assert turn.num_samples == 2 and turn_stats.rows == 2
    assert turn.metrics["ndcg@10"] == pytest.approx((ndcg_turn2 + 1 / log2(6)) / 2)
    assert turn.metrics["recall@1"] == pytest.approx((0.5 + 0) / 2)
    assert turn.metrics["hit@1"] == pytest.approx(0.5)
    # per item: rows A (rank 3: B ahead of it is not masked, and is no hit for A), B, C
    assert item.num_samples == 3 and item_stats.rows == 3 and item_stats.samples_evaluated == 2
    ids = [r["sample_id"] for r in item.records]
    assert ids == ["toy:d1:2#1", "toy:d1:2#2", "toy:d1:4"]
    assert [r["targets"] for r in item.records] == [["A"], ["B"], ["C"]]
    assert [r["metrics"]["recall@1"] for r in item.records] == [0.0, 1.0, 0.0]
    assert [r["metrics"]["ndcg@10"] for r in item.records] == pytest.approx(
        [1 / log2(4), 1.0, 1 / log2(6)]
    )
    assert item.metrics["ndcg@10"] == pytest.approx((0.5 + 1 + 1 / log2(6)) / 3)
    assert item.metrics["recall@1"] == pytest.approx(1 / 3)
    assert item.records[0]["turn_id"] == "toy:d1:2"
    # the two rows of turn 2 share one ranker request
    assert turn_ranker.requests == item_ranker.requests == ["toy:d1:2", "toy:d1:4"]


def test_every_table_names_the_protocol_and_its_rows(tmp_path):
    corpus = toy_corpus()
    samples = [toy_sample(2, ["D"], ["A", "B"]), toy_sample(4, ["D"], ["C"])]
    for protocol, caption in [
        ("per_turn", "per-turn protocol, 2 rows"),
        ("per_item", "per-item protocol (He et al. 2023), 3 rows from 2 turns"),
    ]:
        evaluator = Evaluator(corpus, EvaluateConfig(k=5, protocol=protocol), progress=False)
        linked, stats = evaluator.link(samples)
        result = evaluator.score("fixed", "retriever", linked, [list("BXAYC")] * len(linked))
        report = EvaluationReport("toy", "test", "", 5, [5, 10], stats, [result], protocol=protocol)
        out = report.save(tmp_path / protocol)
        data = json.loads((out / "evaluation.json").read_text())
        assert data["protocol"] == protocol and data["rows"] == len(linked)
        assert data["samples"]["protocol"] == protocol
        assert f"Protocol: {caption}." in (out / "evaluation.md").read_text()
        text = io.StringIO()
        Console(file=text, width=200, color_system=None).print(summary_table(data))
        assert caption in text.getvalue()


def test_the_paired_comparison_names_the_protocol_and_never_mixes_two(tmp_path):
    from rar.evaluation.reports import compare_report

    samples = [toy_sample(2, ["D"], ["A", "B"]), toy_sample(4, ["D"], ["C"])]
    dirs = {}
    for protocol in ("per_turn", "per_item"):
        evaluator = Evaluator(toy_corpus(), EvaluateConfig(k=5, protocol=protocol), progress=False)
        linked, stats = evaluator.link(samples)
        results = [
            evaluator.score(name, "retriever", linked, [order] * len(linked))
            for name, order in (("first", list("BXAYC")), ("second", list("ABCXY")))
        ]
        report = EvaluationReport("toy", "test", "", 5, [5, 10], stats, results, protocol=protocol)
        dirs[protocol] = report.save(tmp_path / protocol)
    d = dirs["per_item"]
    compare_report(d, d, "first", "second", metrics=["ndcg@10"], n_resamples=200, out_dir=d / "c")
    assert (
        "protocol: per-item (one row per ground-truth movie" in (d / "c" / "compare.md").read_text()
    )
    assert json.loads((d / "c" / "compare.json").read_text())["shared_samples"] == 3
    with pytest.raises(InputError, match="same protocol"):
        compare_report(dirs["per_turn"], d, "first", "second", out_dir=tmp_path / "mixed")


def test_an_old_evaluation_json_is_read_as_per_turn():
    from rar.evaluation.markdown import protocol_caption

    data = {"samples": {"samples_evaluated": 7}, "systems": {"s": {"num_samples": 7}}}
    assert protocol_caption(data) == "per-turn protocol, 7 rows"


def test_the_llm_only_path_asks_once_per_turn():
    class LLMOnly:
        def __init__(self):
            self.asked: list[str] = []

        def recommend(self, items, n, threshold, progress):
            from types import SimpleNamespace

            self.asked += [sid for sid, _ in items]
            return [
                SimpleNamespace(
                    ranked_ids=["B", "A"], scored_ids=["B", "A"], error=None, predicted=[],
                    hallucinations=[], non_titles=[], cached=False, usage={},
                )
                for _ in items
            ]  # fmt: skip

        def stats(self):
            return RankerStats(calls=len(self.asked))

        def info(self):
            return {}

    llm = LLMOnly()
    evaluator = Evaluator(toy_corpus(), EvaluateConfig(k=5, protocol="per_item"), progress=False)
    linked, _ = evaluator.link([toy_sample(2, ["D"], ["A", "B"])])
    result = evaluator.evaluate(System("llm", None, llm), linked)
    assert llm.asked == ["toy:d1:2"] and result.num_samples == 2
    assert [r["metrics"]["ndcg@10"] for r in result.records] == pytest.approx(
        [1 / math.log2(3), 1.0]
    )


def test_an_llm_label_it_did_not_output_is_a_miss_and_the_appended_share_is_reported(tmp_path):
    """parser.score_appended is false unless asked: the appended tail never scores, and the
    share of appended candidates is in evaluation.json, evaluation.md and the terminal footer."""
    from rar.evaluation.result_table import appended_note
    from rar.rankers import RankerConfig

    assert RankerConfig().parser.score_appended is False

    class NamesOne(FixedRanker):  # an LLM that names one candidate; the rest is appended
        def rank(self, requests, progress=False):
            self.requests += [r.sample_id for r in requests]
            return [
                RankResult(r.sample_id, ["X", "A", "B", "C", "Y"], n_model_ranked=1)
                for r in requests
            ]

        def stats(self):
            n = len(self.requests)
            return RankerStats(calls=n, candidates=5 * n, appended=4 * n)

        def info(self):
            return {"backend": "llm"}

    evaluator = Evaluator(toy_corpus(), EvaluateConfig(k=5, ks=[10]), progress=False)
    linked, stats = evaluator.link([toy_sample(2, ["D"], ["A"])])
    result = evaluator.evaluate(System("llm", "given", NamesOne([])), linked, [list("XABCY")])
    [record] = result.records
    assert record["ranking"] == ["X"] and record["metrics"]["ndcg@10"] == 0.0  # A was appended
    assert record["n_model_ranked"] == 1 and record["n_appended"] == 4
    report = EvaluationReport("toy", "test", "", 5, [10], stats, [result])
    out = report.save(tmp_path)
    data = json.loads((out / "evaluation.json").read_text())
    assert data["systems"]["llm"]["ranker"]["appended_share"] == pytest.approx(0.8)
    assert "| 80.0% |" in (out / "evaluation.md").read_text()
    assert appended_note(data).endswith("llm 80.0%")


@pytest.mark.needs_data
def test_rl_validation_and_test_rows_follow_eval_protocol(redial_corpus):
    """`eval_protocol` expands validation and test (after their subsampling), never training."""
    from rar.config import load_config
    from rar.rl.inputs import load_splits
    from rar.rl.train_config import TrainConfig

    assert TrainConfig.model_fields["eval_protocol"].default == "per_turn"
    got = {}
    for protocol in ("per_turn", "per_item"):
        keys = ["name=p", "pretrained_run=none", "data.dataset=redial", "data.train_size=50"]
        cfg = load_config(
            TrainConfig, None, [*keys, "data.val_size=100", f"eval_protocol={protocol}"]
        )
        got[protocol] = load_splits(cfg, redial_corpus)
    turn, item = got["per_turn"], got["per_item"]
    turn_stats, item_stats = turn.link_stats, item.link_stats
    assert turn_stats["val"]["protocol"] == "per_turn" and turn_stats["val"]["rows"] == 100
    assert turn.train == item.train and len(turn.val) == 100
    assert {r.turn_id for r in item.val} == {r.sample.sample_id for r in turn.val}
    for split, turn_rows, item_rows in (
        ("val", turn.val, item.val),
        ("test", turn.test, item.test),
    ):
        assert len(item_rows) == sum(len(r.target_ids) for r in turn_rows) > len(turn_rows)
        assert item_stats[split]["protocol"] == "per_item"
        assert item_stats[split]["rows"] == len(item_rows)
        assert all(len(r.target_ids) == 1 for r in item_rows)


# ---- end to end ---------------------------------------------------------------------------
@pytest.mark.needs_data
def test_rar_evaluate_protocol_flag_end_to_end(redial_corpus, data_dir, tmp_path):
    from rar.cli import app

    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    redial_corpus.movies.to_parquet(corpus_dir / "movies.parquet")
    outs = {}
    for protocol in ("per_turn", "per_item"):
        outs[protocol] = tmp_path / protocol
        result = CliRunner().invoke(
            app,
            [
                "evaluate", "--baseline", "most-popular", "--corpus", str(corpus_dir),
                "--dataset", "redial", "--data", str(data_dir), "--max-samples", "120",
                "--set", "tune_baselines=false", "--protocol", protocol,
                "--out", str(outs[protocol]), "--quiet",
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert protocol.replace("_", "-") + " protocol" in " ".join(result.output.split())
    turn = json.loads((outs["per_turn"] / "evaluation.json").read_text())
    item = json.loads((outs["per_item"] / "evaluation.json").read_text())
    assert turn["protocol"] == "per_turn" and item["protocol"] == "per_item"
    # the same 120 turns; per_item has a row per target
    assert turn["rows"] == turn["samples"]["samples_evaluated"] == 120
    assert item["samples"]["samples_evaluated"] == 120 and item["rows"] > 120
    records = [
        json.loads(line)
        for line in (outs["per_item"] / "samples" / "most-popular.jsonl").read_text().splitlines()
    ]
    assert len(records) == item["rows"] and all(len(r["targets"]) == 1 for r in records)
    turns = {r.get("turn_id", r["sample_id"]) for r in records}
    assert len(turns) == 120
    assert "per-item protocol (He et al. 2023)" in (outs["per_item"] / "evaluation.md").read_text()
    bad = CliRunner().invoke(
        app,
        ["evaluate", "--baseline", "most-popular", "--corpus", str(corpus_dir), "--data",
         str(data_dir), "--protocol", "per_target"],
    )  # fmt: skip
    assert bad.exit_code == 2 and "protocol" in bad.output
