"""`rar rank` and `rar recommend` end to end on the small real corpus."""

from __future__ import annotations

import json
import re

import pytest
from servers.llm_server import FakeLLMServer
from typer.testing import CliRunner

from rar.cli import app

runner = CliRunner()


def write_conversation(tmp_path, turns) -> str:
    path = tmp_path / "conv.json"
    path.write_text(json.dumps(turns), encoding="utf-8")
    return str(path)


CONVERSATION = [
    {"role": "seeker", "text": "Hi! I'm in the mood for an animated Disney movie for my kids."},
    {"role": "recommender", "text": "Do you like musicals?"},
    {
        "role": "seeker",
        "text": 'Yes, something with songs and princesses, like "The Little Mermaid".',
    },
]


def ranked_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.match(r"^\d+\. ", line)]


@pytest.mark.slow
def test_rank_semantic_prints_ranked_movies(small_corpus, tmp_path):
    conv = write_conversation(tmp_path, CONVERSATION)
    result = runner.invoke(
        app,
        [
            "rank",
            "--conversation",
            conv,
            "--corpus",
            str(small_corpus),
            "--ranker",
            "semantic",
            "-k",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = ranked_lines(result.output)
    assert len(lines) == 10 and lines[0].startswith("1. ")
    assert re.search(r"\(\d{4}\)", lines[0])  # Title (Year)
    assert "candidates from corpus search" in result.output
    assert "Little Mermaid" not in "\n".join(lines)  # mentioned movies are not recommended again


@pytest.mark.slow
def test_rank_through_openai_compatible_server(small_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("RAR_CLI_KEY", "sk-cli-test")
    conv = write_conversation(tmp_path, CONVERSATION)
    with FakeLLMServer() as server:
        args = [
            "rank",
            "--conversation",
            conv,
            "--corpus",
            str(small_corpus),
            "--ranker",
            "openai",
            "--model",
            "my-model",
            "--base-url",
            server.openai_base_url,
            "-k",
            "5",
            "--set",
            "api_key_env=RAR_CLI_KEY",
            "--set",
            f"cache.path={tmp_path / 'c.sqlite'}",
        ]
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        assert server.n_hits == 1 and server.hits[0]["body"]["model"] == "my-model"
        second = runner.invoke(app, args)
        assert second.exit_code == 0 and "(cached)" in second.output and server.n_hits == 1
    assert len(ranked_lines(first.output)) == 5
    assert ranked_lines(first.output) == ranked_lines(second.output)


@pytest.mark.slow
def test_recommend_interactive_chat(small_corpus):
    result = runner.invoke(
        app,
        ["recommend", "--corpus", str(small_corpus), "--top", "3"],
        input="I love space adventures with robots\nsomething funnier please\n\n",
    )
    assert result.exit_code == 0, result.output
    assert len(ranked_lines(result.output)) == 6  # two rounds of three recommendations
    assert result.output.rstrip().endswith("bye")


def test_bad_conversation_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "conv.json"
    bad.write_text('[{"role": "user", "text": "hi"}]')
    result = runner.invoke(app, ["rank", "--conversation", str(bad), "--corpus", str(tmp_path)])
    assert result.exit_code == 2
    assert "turn 0 has role 'user'" in result.output and "Traceback" not in result.output
    broken = tmp_path / "broken.json"
    broken.write_text('[{"role": "seeker",\n "text": }]')
    result = runner.invoke(app, ["rank", "--conversation", str(broken)])
    assert result.exit_code == 2 and "broken.json:2" in result.output


def test_bad_ranker_config_key_is_reported(tmp_path):
    conv = write_conversation(tmp_path, CONVERSATION)
    result = runner.invoke(app, ["rank", "--conversation", conv, "--set", "temprature=0.5"])
    assert result.exit_code == 2 and "temperature" in result.output


@pytest.mark.slow
def test_rank_with_candidates_from_a_retriever_run(small_corpus, tmp_path):
    """--run: candidates come from a saved LRURec checkpoint over the mentioned movies."""
    import torch

    from rar.corpus import Corpus
    from rar.retrievers import save_retriever
    from rar.retrievers.registry import build_retriever
    from rar.retrievers.retriever_config import RetrieverConfig

    torch.manual_seed(0)
    corpus = Corpus.load(small_corpus)
    model = build_retriever(RetrieverConfig(name="lrurec", d_model=32), corpus.vectors())
    save_retriever(model, tmp_path / "run" / "checkpoints" / "best.pt")
    turns = [
        *CONVERSATION,
        {"role": "seeker", "text": "I also liked that one", "mentions": ["Toy Story"]},
    ]
    conv = write_conversation(tmp_path, turns)
    result = runner.invoke(
        app,
        [
            "rank",
            "--conversation",
            conv,
            "--corpus",
            str(small_corpus),
            "--run",
            str(tmp_path / "run"),
            "-k",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "candidates from retriever over 2 mentioned movie(s)" in result.output
    lines = ranked_lines(result.output)
    assert len(lines) == 8 and not any("Toy Story (1995)" in line for line in lines)
