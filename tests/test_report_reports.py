"""Each report writes its markdown and PNG from real (small) evaluations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from servers.llm_server import FakeLLMServer, reverse_ranking
from test_eval_evaluator import llm_only_config, make_run, semantic_config
from typer.testing import CliRunner

from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.evaluator import evaluate_systems
from rar.pipeline import System
from rar.rankers import build_ranker

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG and path.stat().st_size > 1000


@pytest.fixture(scope="module")
def corpus(small_corpus):
    from rar.corpus import Corpus

    return Corpus.load(small_corpus)


@pytest.fixture(scope="module")
def runs(small_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return make_run(small_corpus, root / "run-a", seed=0), make_run(
        small_corpus, root / "run-b", seed=1
    )


@pytest.fixture(scope="module")
def evaluated(runs, corpus, small_corpus, data_dir, tmp_path_factory):
    """Two runs evaluated on the same 30 ReDial test samples (+ semantic ranker, + LLM-only)."""
    from rar.data.registry import load_conversation_samples
    from rar.retrievers import load_pretrained_run

    samples = load_conversation_samples("redial", data_dir, "test")
    cache = tmp_path_factory.mktemp("cache")
    semantic = build_ranker(semantic_config(cache), corpus)
    cfg = EvaluateConfig(k=15, max_samples=30)
    titles = corpus.movies["title"].tolist()
    llm_only_reply = (
        f"1. {titles[0]}\n2. {titles[1]}\n3. A Movie That Was Never Made At All\n"
        "Let me know if you'd like more suggestions!\n"
    )

    def responder(prompt: str) -> str:
        if "Candidate movies:" in prompt:
            # re-ranking: chatter, 12 of the 15 candidates reversed, one invention
            listed = "\n".join(reverse_ranking(prompt).splitlines()[:12])
            return (
                "I'm glad you enjoyed the conversation! Here is my ranking:\n"
                f"{listed}\n99. Zorblax Returns To Planet Nowhere\nHappy watching."
            )
        return llm_only_reply

    with FakeLLMServer(responder=responder) as server:
        llm = build_ranker(llm_only_config(server, cache), corpus)
        for run, extra in ((runs[0], True), (runs[1], False)):
            retriever = load_pretrained_run(run, corpus)
            systems = [
                System(run.name, retriever),
                System(f"{run.name} + semantic", retriever, semantic),
            ]
            if extra:
                systems.append(System(f"{run.name} + fake-llm", retriever, llm))
                systems.append(System("fake-llm only", None, llm))
            evaluate_systems(
                samples, corpus, systems, cfg, out_dir=run / "eval" / "redial-test", dataset="redial",
                progress=False, data_path=data_dir, corpus_dir=small_corpus,
            )  # fmt: skip
    return runs


@pytest.mark.slow
def test_hallucination_report(evaluated):
    from rar.evaluation.reports import hallucination_report

    written = hallucination_report([evaluated[0]])
    assert _is_png(written["rates"])
    md = written["markdown"].read_text()
    # LLM-only: 3 title attempts (1 invented) and 1 chatter line per reply; nothing appended
    assert (
        "| redial | fake-llm only | openai (fake-llm) | 30 | 90 | 30 | 33.33% | 30 | 30 | 25.00% "
        "| 0 | n/a | n/a | n/a |" in md
    )
    assert "| redial | run-a + semantic | semantic | 30 | " in md
    # re-ranking: 12 of 15 candidates + 1 invented title, 2 chatter lines per reply; the
    # chatter is not a hallucination, and the 3 left-out candidates are appended
    assert (
        "| redial | run-a + fake-llm | openai (fake-llm) | 30 | 390 | 30 | 7.69% | 30 | 60 | "
        "13.33% | 0 | 90 | 3.0 | 20.0% |" in md
    )
    assert "I'm glad you enjoyed the conversation! Here is my ranking:" in md
    assert "Zorblax Returns To Planet Nowhere" in md
    assert "A Movie That Was Never Made At All" in md
    assert written["markdown"].parent == evaluated[0] / "reports"


@pytest.mark.slow
def test_popularity_report_counts_training_frequency(evaluated, corpus, data_dir):
    from rar.data.registry import load_conversation_samples
    from rar.evaluation.reports import popularity_report
    from rar.evaluation.reports.popularity import bucket_of, training_frequency

    written = popularity_report([evaluated[0]])
    assert _is_png(written["redial_ndcg"]) and _is_png(written["redial_distribution"])
    md = written["markdown"].read_text()
    assert "| system | all | unseen | 1-2 | 3-10 | 11-50 | 51+ |" in md
    data = json.loads((evaluated[0] / "reports" / "popularity.json").read_text())["redial"]
    counts = training_frequency(load_conversation_samples("redial", data_dir, "train"), corpus)
    assert max(counts.values()) > 10  # real ReDial: some movies are recommended often
    assert sum(data["targets_per_bucket"]) == sum(
        len(r["targets"])
        for r in map(json.loads, (evaluated[0] / "eval/redial-test/samples/run-a.jsonl").open())
    )
    assert [bucket_of(f) for f in (0, 1, 2, 3, 10, 11, 50, 51, 999)] == [0, 1, 1, 2, 2, 3, 3, 4, 4]
    for system in data["systems"].values():
        assert sum(system["recommended_share"]) == pytest.approx(1.0)


@pytest.mark.slow
def test_compare_report_cli(evaluated):
    from rar.cli import app

    a, b = evaluated
    result = CliRunner().invoke(
        app,
        [
            "report",
            "compare",
            str(a),
            str(b),
            "--system-a",
            "run-a + semantic",
            "--resamples",
            "500",
            "--out",
            str(a / "cmp"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert _is_png(a / "cmp" / "compare_diff.png")
    data = json.loads((a / "cmp" / "compare.json").read_text())
    assert data["shared_samples"] == 30
    assert "run-a + semantic" in data["a"] and "run-b + semantic" in data["b"]
    for row in data["rows"]:
        assert row["diff"] == pytest.approx(row["b"] - row["a"])
        assert 0 < row["p_value"] <= 1 and row["ci_low"] <= row["diff"] <= row["ci_high"]
    same = CliRunner().invoke(app, ["report", "compare", str(a), str(a)])
    assert same.exit_code == 2 and "pick --system-a/--system-b" in " ".join(same.output.split())


@pytest.mark.slow
def test_recall_vs_k_report(runs, corpus, data_dir, tmp_path):
    from rar.data.registry import load_conversation_samples
    from rar.evaluation.reports import recall_vs_k_report
    from rar.retrievers import load_pretrained_run

    samples = load_conversation_samples("redial", data_dir, "test")
    ranker = build_ranker(semantic_config(tmp_path), corpus)
    written = recall_vs_k_report(
        samples, corpus, load_pretrained_run(runs[0], corpus), tmp_path / "rk", ranker, ks=(5, 10, 20),
        config=EvaluateConfig(max_samples=20), progress=False,
    )  # fmt: skip
    assert _is_png(written["curve"])
    rows = json.loads((tmp_path / "rk" / "recall_vs_k.json").read_text())
    assert [r["k"] for r in rows] == [5, 10, 20]
    # with k <= 10 the ranker only reorders the same items: R@10 equals the retriever's
    assert rows[0]["ranked/recall@10"] == pytest.approx(rows[0]["retriever/recall@10"])
    assert rows[0]["retriever/recall@10"] <= rows[1]["retriever/recall@10"]


def test_report_on_a_directory_without_evaluation_is_a_clear_error(tmp_path):
    from rar.cli import app

    result = CliRunner().invoke(app, ["report", "hallucination", str(tmp_path)])
    assert result.exit_code == 2 and "no evaluation found" in " ".join(result.output.split())


@pytest.mark.slow
def test_standard_reports_bundle(evaluated, tmp_path):
    from rar.evaluation.reports import standard_reports

    written = standard_reports(evaluated[0], out_dir=tmp_path / "all", n_resamples=300)
    compares = sorted(k for k in written if k.startswith("compare_"))
    # the first system (retriever alone) against each of the three others
    assert compares == [
        "compare_run-a_vs_fake-llm_only",
        "compare_run-a_vs_run-a_fake-llm",
        "compare_run-a_vs_run-a_semantic",
    ]
    assert _is_png(written["hallucination"]["rates"])
    assert _is_png(written["popularity"]["redial_ndcg"])
    assert all(_is_png(written[k]["diff"]) for k in compares)
