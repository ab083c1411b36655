"""The evaluator on a real small corpus, real ReDial/INSPIRED samples, a tiny real retriever,
the offline semantic ranker and (LLM-only) the OpenAI SDK against a loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from servers.llm_server import FakeLLMServer
from typer.testing import CliRunner

from rar.evaluation.evaluate_config import EvaluateConfig
from rar.evaluation.evaluator import evaluate_systems
from rar.evaluation.results import load_records
from rar.metrics import ndcg_at_k, recall_at_k
from rar.pipeline import System
from rar.rankers import RankerConfig, build_ranker

N_SAMPLES = 40


def make_run(corpus_dir: Path, run_dir: Path, seed: int = 0) -> Path:
    """A run directory like `rar pretrain` leaves: config.yaml naming the corpus + best.pt."""
    from rar.corpus import Corpus
    from rar.retrievers import RetrieverConfig, build_retriever, save_retriever

    corpus = Corpus.load(corpus_dir)
    torch.manual_seed(seed)
    model = build_retriever(
        RetrieverConfig(name="lrurec", d_model=16, n_layers=1, max_len=16),
        torch.from_numpy(np.array(corpus.vectors(), dtype=np.float32)),
    )
    save_retriever(model, run_dir / "checkpoints" / "best.pt")
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"corpus": str(corpus_dir)}))
    return run_dir


def semantic_config(tmp: Path) -> RankerConfig:
    return RankerConfig(backend="semantic", cache={"enabled": False, "path": str(tmp / "c.sqlite")})


@pytest.fixture(scope="module")
def corpus(small_corpus):
    from rar.corpus import Corpus

    return Corpus.load(small_corpus)


@pytest.fixture(scope="module")
def run_dir(small_corpus, tmp_path_factory) -> Path:
    return make_run(small_corpus, tmp_path_factory.mktemp("run") / "tiny-lrurec")


@pytest.fixture(scope="module")
def redial_samples(data_dir):
    from rar.data.registry import load_conversation_samples

    return load_conversation_samples("redial", data_dir, "test")


@pytest.fixture(scope="module")
def two_systems(corpus, run_dir, redial_samples, tmp_path_factory):
    """Retriever-only and retriever + semantic ranker, sharing one retrieval pass."""
    from rar.retrievers import load_pretrained_run

    retriever = load_pretrained_run(run_dir, corpus)
    ranker = build_ranker(semantic_config(tmp_path_factory.mktemp("cache")), corpus)
    out = tmp_path_factory.mktemp("eval") / "redial-test"
    report = evaluate_systems(
        redial_samples,
        corpus,
        [System("LRURec", retriever), System("LRURec + semantic", retriever, ranker)],
        EvaluateConfig(k=25, max_samples=N_SAMPLES),
        out_dir=out,
        dataset="redial",
        progress=False,
    )
    return report, out


@pytest.mark.slow
def test_json_shape_and_metric_values(two_systems):
    report, out = two_systems
    data = json.loads((out / "evaluation.json").read_text())
    assert set(data["systems"]) == {"LRURec", "LRURec + semantic"}
    for system in data["systems"].values():
        assert system["num_samples"] == N_SAMPLES
        for key in ("ndcg@5", "recall@5", "ndcg@10", "recall@10", "ndcg@1", "recall@20", "mrr@20"):
            assert 0.0 <= system["metrics"][key] <= 1.0
            ci = system["metrics_ci"][key]
            assert ci["ci_low"] <= system["metrics"][key] <= ci["ci_high"] and ci["se"] >= 0
    ranker = data["systems"]["LRURec + semantic"]["ranker"]
    assert ranker["backend"] == "semantic" and ranker["requests"] == N_SAMPLES
    assert ranker["failures"] == 0
    stats = data["samples"]
    assert stats["samples_kept"] + stats["dropped_no_linked_target"] == stats["samples_in"]
    assert stats["samples_evaluated"] == N_SAMPLES < stats["samples_kept"]  # the table's count
    md = (out / "evaluation.md").read_text()
    assert "| LRURec + semantic |" in md and "N@10" in md and "95% CI" in md
    assert f"; {N_SAMPLES} samples evaluated (of {stats['samples_kept']} linked;" in md


@pytest.mark.slow
def test_per_sample_records_reproduce_the_means(two_systems):
    report, out = two_systems
    base = load_records(out, "LRURec")
    ranked = load_records(out, "LRURec + semantic")
    assert len(base) == len(ranked) == N_SAMPLES
    for b, r in zip(base, ranked, strict=True):
        assert b["sample_id"] == r["sample_id"]
        assert len(b["ranking"]) == 25 and not set(b["ranking"]) & set(b["history"])
        # the ranker permutes exactly the retriever's candidates
        assert sorted(r["ranking"]) == sorted(b["ranking"]) == sorted(r["candidates"])
        assert r["metrics"]["ndcg@10"] == pytest.approx(ndcg_at_k(r["ranking"], r["targets"], 10))
    mean = np.mean([recall_at_k(r["ranking"], r["targets"], 10) for r in ranked])
    assert report.system("LRURec + semantic").metrics["recall@10"] == pytest.approx(mean)


@pytest.mark.slow
def test_deterministic_given_seed(two_systems, corpus, run_dir, redial_samples):
    from rar.retrievers import load_pretrained_run

    report, _ = two_systems
    again = evaluate_systems(
        redial_samples,
        corpus,
        [System("LRURec", load_pretrained_run(run_dir, corpus))],
        EvaluateConfig(k=25, max_samples=N_SAMPLES),
        progress=False,
    )
    assert again.system("LRURec").metrics == report.system("LRURec").metrics


@pytest.mark.slow
def test_cli_evaluates_a_file_in_a_supported_format(run_dir, data_dir, tmp_path):
    """Any supported file: INSPIRED's context/targets CSV, linked by title to the corpus."""
    from rar.cli import app

    json_out, md_out = tmp_path / "out.json", tmp_path / "out.md"
    result = CliRunner().invoke(
        app,
        [
            "evaluate", "--run", str(run_dir), "--dataset", "inspired",
            "--data", str(data_dir / "inspired" / "context_targets" / "train.csv"),
            "--ranker", "semantic", "--set", "ranker.cache.enabled=false",
            "--max-samples", "25", "-k", "10", "--json", str(json_out), "--markdown", str(md_out),
            "--out", str(tmp_path / "eval"), "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(json_out.read_text())
    assert data["k"] == 10 and data["dataset"] == "inspired"
    assert set(data["systems"]) == {"tiny-lrurec", "tiny-lrurec + semantic"}
    assert all(v["num_samples"] == 25 for v in data["systems"].values())
    assert "25 samples evaluated (of " in " ".join(result.output.split())  # the footer
    assert "| tiny-lrurec + semantic |" in md_out.read_text()
    assert (tmp_path / "eval" / "samples" / "tiny-lrurec_semantic.jsonl").exists()


@pytest.mark.slow
def test_summary_counts_the_evaluated_subset_not_the_split(run_dir, data_dir, tmp_path):
    """`--max-samples 15`: the footer, evaluation.md and evaluation.json say 15 evaluated."""
    from rar.cli import app

    result = CliRunner().invoke(
        app,
        [
            "evaluate", "--run", str(run_dir), "--dataset", "redial", "--data-dir", str(data_dir),
            "--max-samples", "15", "--out", str(tmp_path / "eval"), "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["samples"]
    assert stats["samples_evaluated"] == 15 and stats["samples_kept"] > 15
    expected = (
        f"15 samples evaluated (of {stats['samples_kept']} linked; "
        f"{stats['samples_in']} loaded, {stats['dropped_no_linked_target']} dropped"
    )
    assert expected in " ".join(result.output.split())
    assert expected in (tmp_path / "eval" / "evaluation.md").read_text()
    assert "per-turn protocol, 15 rows" in result.output.split("\n")[0]  # the table's title


@pytest.mark.slow
def test_cli_errors_are_one_clear_line(run_dir, tmp_path):
    from rar.cli import app

    missing = CliRunner().invoke(
        app, ["evaluate", "--run", str(tmp_path / "nope"), "--data", str(tmp_path)]
    )
    assert missing.exit_code == 2 and "run directory not found" in " ".join(missing.output.split())
    bad = CliRunner().invoke(
        app, ["evaluate", "--run", str(run_dir), "--dataset", "movies", "--data", str(tmp_path)]
    )
    assert bad.exit_code == 2 and "unknown dataset 'movies'" in " ".join(bad.output.split())


def llm_only_config(server: FakeLLMServer, tmp: Path) -> RankerConfig:
    return RankerConfig(
        backend="openai", model="fake-llm", base_url=server.openai_base_url,
        cache={"path": str(tmp / "llm.sqlite")},
        limits={"timeout_s": 5.0, "max_retries": 1, "backoff_base_s": 0.01},
        price={"prompt_per_1m": 1.0, "completion_per_1m": 2.0},
    )  # fmt: skip


@pytest.mark.slow
def test_llm_only_matches_titles_to_the_corpus_and_counts_hallucinations(
    corpus, redial_samples, tmp_path
):
    titles = corpus.movies["title"].tolist()[:3]
    years = corpus.movies["year"].tolist()[:3]
    reply = "\n".join(
        [
            f"{i}. {t} ({y})" if y is not None and y == y else f"{i}. {t}"
            for i, (t, y) in enumerate(zip(titles, years, strict=True), 1)
        ]
        + ["4. Zzyzx Qwerty Spaceship Ballet 3000 (2031)"]
    )
    with FakeLLMServer(responder=lambda prompt: reply) as server:
        ranker = build_ranker(llm_only_config(server, tmp_path), corpus)
        cfg = EvaluateConfig(max_samples=6, llm_only_items=4)
        report = evaluate_systems(
            redial_samples,
            corpus,
            [System("LLM only", None, ranker)],
            cfg,
            out_dir=tmp_path / "e",
            progress=False,
        )
        first_hits = server.n_hits
        prompt = server.hits[0]["body"]["messages"][-1]["content"]
        again = evaluate_systems(
            redial_samples, corpus, [System("LLM only", None, ranker)], cfg, progress=False
        )
        assert server.n_hits == first_hits  # second pass served from the response cache
    assert "recommend 4 movies" in prompt and "Candidate movies" not in prompt
    result = report.system("LLM only")
    assert result.kind == "llm-only" and result.num_samples == 6
    for rec in result.records:
        assert rec["ranking"] == corpus.ids[:3]
        assert rec["hallucinations"] == ["Zzyzx Qwerty Spaceship Ballet 3000 (2031)"]
        assert rec["n_predicted"] == 4
    assert result.ranker["calls"] == 6 and result.ranker["prompt_tokens"] > 0
    assert result.ranker["hallucination_rate"] == pytest.approx(0.25)
    assert result.ranker["cost_usd"] > 0
    assert again.system("LLM only").ranker["cache_hits"] == 6


@pytest.mark.slow
def test_llm_only_refuses_the_semantic_ranker(corpus, redial_samples, tmp_path):
    ranker = build_ranker(semantic_config(tmp_path), corpus)
    with pytest.raises(ValueError, match="needs an LLM backend"):
        evaluate_systems(
            redial_samples,
            corpus,
            [System("x", None, ranker)],
            EvaluateConfig(max_samples=2),
            progress=False,
        )
