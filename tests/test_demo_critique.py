"""The demo reads critiques: a fused policy, after a few action films, answers "something
darker, like The Silence of the Lambs" with dark genres, in a real browser (issue 25)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DARK = {"thriller", "horror", "crime"}
ACTION = ("Die Hard", "Mad Max: Fury Road", "The Terminator", "Speed")


@pytest.fixture(scope="module")
def fused_run(small_corpus, pretrained_run, data_dir, tmp_path_factory):
    """A fused policy (item tower + text tower) SFT-trained briefly on ReDial."""
    from rar.config import load_config
    from rar.rl.train_config import TrainConfig
    from rar.rl.trainer import train

    runs = tmp_path_factory.mktemp("fused_runs")
    overrides = [
        "name=fused",
        f"pretrained_run={pretrained_run}",
        f"corpus={small_corpus}",
        f"data.data_dir={data_dir}",
        "data.dataset=redial",
        "data.train_size=800",
        "data.val_size=100",
        "data.evaluate_test=false",
        "towers=fused",
        "id_embedding=true",
        "rl.method=sft",
        "rl.k=10",
        "optim.batch_size=16",
        "optim.lr=0.001",
        "optim.warmup_steps=5",
        "max_steps=100",
        "val_every=50",
        "select_metric=retriever/ndcg@10",
        "ranker.backend=semantic",
        "threads=2",
        f"tracking.runs_dir={runs}",
    ]
    train(load_config(TrainConfig, None, overrides), progress=False)
    return runs / "fused"


def _movie(corpus, title: str) -> dict | None:
    found = corpus.title_matcher.candidates(title, limit=1)
    if not found:
        return None
    movie = corpus.movie(found[0].index)
    if movie.title.lower() != title.lower():
        return None
    return {"id": corpus.ids[found[0].index], "display": movie.display}


def _dark(corpus, ids: list[str]) -> int:
    genres = corpus.movies.set_index("corpus_id")["genres"]
    return sum(1 for cid in ids if DARK & {str(g).lower() for g in genres.loc[cid]})


@pytest.mark.slow
@pytest.mark.needs_data
def test_demo_answers_a_critique_with_dark_genres(small_corpus, fused_run, tmp_path):
    from rar.corpus import Corpus
    from rar.demo.browser import (
        DemoPage,
        chromium_driver,
        chromium_paths,
        free_port,
        start_demo,
        stop_demo,
        wait_for_http,
    )

    if chromium_paths()[1] is None:
        pytest.fail("chromedriver not installed: apt-get install chromium chromium-driver")
    corpus = Corpus.load(small_corpus)
    lambs = _movie(corpus, "The Silence of the Lambs")
    action = [m for m in (_movie(corpus, t) for t in ACTION) if m is not None][:2]
    assert lambs is not None and len(action) == 2, "the small corpus lacks the test's movies"
    port = free_port()
    log = tmp_path / "demo.log"
    env = {"GRADIO_ANALYTICS_ENABLED": "False", "OPENAI_API_KEY": "", "GEMINI_API_KEY": ""}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    server = start_demo(
        ["--run", str(fused_run), "--corpus", str(small_corpus), "--port", str(port),
         "--k", "5", "--candidates", "15"],
        cwd=tmp_path, log=log, env=env,
    )  # fmt: skip
    driver = None
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, server, timeout=300, log=log)
        driver = chromium_driver(download_dir=tmp_path)
        page = DemoPage(driver, url)
        page.open()
        page.type(
            f'I love action movies like "{action[0]["display"]}" and "{action[1]["display"]}"'
        )
        page.wait_chips(2)
        page.send()
        page.wait_turn(1)
        page.type(f'Something darker, like "{lambs["display"]}"?')
        page.wait_chips(1)
        page.send()
        page.wait_turn(2)
        retrieved, ranked = page.ids("retriever"), page.ids("ranker")
        assert len(retrieved) == 5 and len(ranked) == 5
        assert _dark(corpus, retrieved) >= 2, page.titles("retriever")
        assert _dark(corpus, ranked) >= 2, page.titles("ranker")
        assert lambs["id"] not in retrieved  # a named movie is not recommended back
        if os.environ.get("RAR_DEMO_SCREENSHOT"):
            page.screenshot(os.environ["RAR_DEMO_SCREENSHOT"])
    finally:
        if driver is not None:
            driver.quit()
        stop_demo(server)
    assert "Traceback" not in log.read_text(encoding="utf-8"), log.read_text(encoding="utf-8")
