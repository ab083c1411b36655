"""`rar demo`: mention chips, session -> custom format (read back by the loader and by
`rar evaluate`), moved up/down, failed rankers shown as failed, and the page in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from rar.data.custom import load_custom
from rar.demo.cards import chips_html, costs_html, first_line, stages_html
from rar.demo.engine import RETRIEVER_ONLY, DemoEngine, scrub_secrets
from rar.demo.linking import ChatLinker, linked_movies
from rar.demo.session import Session, TurnRecord, dropped_out, movement
from rar.rankers.types import RankResult

ROOT = Path(__file__).resolve().parents[1]

MOVIES = [
    ("m1", "Heat", 1995, ["Michael Mann"], 600_000),
    ("m2", "Heat", 1986, ["Dick Richards"], 5_000),
    ("m3", "The Dark Knight", 2008, ["Christopher Nolan"], 2_000_000),
    ("m4", "Alien", 1979, ["Ridley Scott"], 800_000),
    ("m5", "The Thing", 1982, ["John Carpenter"], 400_000),
    ("m6", "The Thing", 2011, ["Matthijs van Heijningen Jr."], 400_000),
    ("m7", "Inception", 2010, ["Christopher Nolan"], 2_000_000),
    ("m8", "Love Actually", 2003, ["Richard Curtis"], 400_000),
    ("m9", "Up", 2009, ["Pete Docter"], 900_000),
    ("m10", "Thanks", 2001, ["Nobody"], 10),
    ("m11", "Se7en", 1995, ["David Fincher"], 1_500_000),
    ("m12", "Blade Runner", 1982, ["Ridley Scott"], 700_000),
]


def tiny_corpus(movies=MOVIES):
    """An in-memory corpus of the movies above (no directory, no vectors)."""
    from rar.corpus import Corpus, Movie

    return Corpus.from_movies(
        [
            Movie(
                cid,
                title,
                year,
                genres=("drama", "crime", "thriller"),
                directors=tuple(directors),
                plot=f"First sentence about {title}. Second sentence.",
                votes=votes,
            )
            for cid, title, year, directors, votes in movies
        ]
    )


@pytest.fixture(scope="module")
def linker() -> ChatLinker:
    return ChatLinker(tiny_corpus())


# ---------------------------------------------------------------------- linking chips
def test_quoted_and_title_case_mentions_link_to_corpus_movies(linker):
    mentions = linker.link('I loved "Heat" and The Dark Knight. Also Alien (1979)!')
    assert [m.text for m in mentions] == ["Heat", "The Dark Knight", "Alien (1979)"]
    assert [m.chosen_id for m in mentions] == ["m1", "m3", "m4"]  # Heat: the popular one
    assert [m.quoted for m in mentions] == [True, False, False]
    html = chips_html(mentions)
    assert "Heat (1995)" in html and "The Dark Knight (2008)" in html and "Alien (1979)" in html
    assert 'data-corpus-id="m3"' in html


def test_same_title_different_years_is_ambiguous_until_the_user_chooses(linker):
    [thing] = linker.link('something like "The Thing"')
    assert thing.ambiguous and thing.needs_choice
    assert {o.corpus_id for o in thing.options} == {"m5", "m6"}
    assert "ambiguous" in chips_html([thing])
    [chosen] = linker.link('something like "The Thing"', {thing.key: "m6"})
    assert chosen.chosen_id == "m6" and chosen.confirmed and not chosen.needs_choice
    assert chosen.movie.label == "The Thing (2011)"
    # a year in the text settles it without asking
    [dated] = linker.link('"The Thing (1982)"')
    assert dated.chosen_id == "m5" and not dated.ambiguous


def test_ordinary_words_are_not_movies_but_quotes_make_them_one(linker):
    assert linker.link("Thanks! I love movies, up to you.") == []
    assert linker.link("I love it") == []  # "Love Actually" needs both words
    [up] = linker.link('I cried at "Up"')
    assert up.chosen_id == "m9"
    [missing] = linker.link('what about "Zzyzx Nowhere"')
    assert missing.movie is None and "not in the corpus" in chips_html([missing])


def test_typos_in_quotes_match_fuzzily_and_ask(linker):
    [m] = linker.link('"Blade Runer" was great')
    assert m.chosen_id == "m12" and m.options[0].method == "fuzzy"


def test_chips_escape_what_the_user_typed(linker):
    [m] = linker.link('"<script>alert(1)</script>"')
    html = chips_html([m])
    assert "<script>" not in html and "&lt;script&gt;" in html


# ---------------------------------------------------------------------- moved up / down
def test_movement_and_movies_pushed_out():
    retriever = ["a", "b", "c", "d", "e"]
    ranked = ["c", "a", "e", "b", "d"]
    assert movement(retriever, ranked) == {"c": 2, "a": -1, "e": 2, "b": -2, "d": -1}
    assert movement(["a"], ["z"]) == {"z": None}
    assert dropped_out(retriever, ranked, k=3) == ["b"]  # b was retriever top-3, not ranker top-3


def _record(backend="semantic", ranked=("m3", "m1", "m4"), **kw) -> TurnRecord:
    return TurnRecord(
        backend=backend,
        k=3,
        retriever_ids=["m1", "m3", "m4", "m7"],
        how="retriever over 1 mentioned movie(s)",
        ranked_ids=list(ranked) if ranked is not None else None,
        **kw,
    )


def test_stages_show_both_lists_and_the_moves():
    corpus = tiny_corpus()

    def movie_of(cid):
        return corpus.movie(corpus.index_of(cid))

    html = stages_html(_record(ranked=("m7", "m1", "m3", "m4")), movie_of, 1)
    assert html.count('data-stage="ranker"') == 3 and html.count('data-stage="retriever"') == 3
    assert "▲ 3 (from #4)" in html  # Inception moved from retriever rank 4 to 1
    assert "Moved out of the top-3" in html and "Alien (1979)" in html
    assert "First sentence about Inception." in html and "Second sentence" not in html
    assert "dir. Christopher Nolan" in html


def test_a_failed_llm_call_is_shown_as_failed_not_as_the_retriever_order():
    corpus = tiny_corpus()
    record = _record("openai (gpt-5-mini)", ranked=None, error="timeout", is_llm=True)
    html = stages_html(record, lambda c: corpus.movie(corpus.index_of(c)), 1)
    assert 'data-status="failed"' in html and "The ranker call failed" in html
    assert 'data-stage="ranker"' not in html  # no ranked cards at all
    assert record.status == "failed"


def test_first_line_of_plot():
    assert first_line("One. Two.") == "One."
    assert first_line(None) == ""
    assert first_line("word " * 100).endswith("…") and len(first_line("word " * 100)) <= 180


# ---------------------------------------------------------------------- engine
class FixedSource:
    def __init__(self, ids):
        self.ids = ids

    def candidates(self, turns, k):
        return list(self.ids[:k]), "retriever over 1 mentioned movie(s)"


class FakeRanker:
    backend = "openai"
    config = None

    def __init__(self, behaviour):
        self.behaviour = behaviour

    def rank(self, requests):
        [request] = requests
        if self.behaviour == "raise":
            raise RuntimeError(f"401 bad key {os.environ['DEMO_TEST_API_KEY']}")
        if self.behaviour == "slow":
            time.sleep(3)
        if self.behaviour == "error":
            return [RankResult(request.sample_id, list(request.candidate_ids), error="HTTP 503")]
        ranked = list(reversed(request.candidate_ids))
        usage = {"prompt_tokens": 812, "completion_tokens": 95, "cost_usd": 0.00039}
        return [RankResult(request.sample_id, ranked, usage=usage, latency_s=1.5, n_model_ranked=2)]


def _engine(behaviour: str, timeout_s: float = 30.0) -> DemoEngine:
    return DemoEngine(
        tiny_corpus(),
        None,
        {"llm": FakeRanker(behaviour)},
        candidates=4,
        timeout_s=timeout_s,
        source=FixedSource(["m1", "m3", "m4", "m7"]),
    )


def test_engine_reports_llm_tokens_cost_and_model_placed_items():
    engine = _engine("ok")
    assert engine.backends == ["llm", RETRIEVER_ONLY] and engine.is_llm("llm")
    record = engine.recommend([], "llm", 3)
    assert record.ranked_ids == ["m7", "m4", "m3", "m1"] and record.status == "ok"
    assert (record.prompt_tokens, record.completion_tokens, record.cost_usd) == (812, 95, 0.00039)
    html = stages_html(record, lambda c: engine.corpus.movie(engine.corpus.index_of(c)), 1)
    assert "812 + 95 tokens" in html and "$0.00039" in html
    assert "the model ranked 2 of 4" in html and "appended" in html
    only = engine.recommend([], RETRIEVER_ONLY, 3)
    assert only.ranked_ids is None and only.error is None and only.shown_ids == ["m1", "m3", "m4"]
    engine.close()


@pytest.mark.parametrize("behaviour", ["raise", "error", "slow"])
def test_engine_failures_give_no_ranking_and_hide_the_key(behaviour, monkeypatch):
    monkeypatch.setenv("DEMO_TEST_API_KEY", "sk-secret-123456")
    engine = _engine(behaviour, timeout_s=0.5)
    record = engine.recommend([], "llm", 3)
    assert record.error and record.ranked_ids is None and record.status == "failed"
    assert "sk-secret-123456" not in record.error
    assert record.shown_ids == ["m1", "m3", "m4"]  # what the retriever column lists
    session = Session()
    session.add_recommendation(record, "failed", [])
    assert "failed" in costs_html(session) and "sk-secret" not in costs_html(session)
    engine.close()


def test_scrub_secrets():
    env = {"OPENAI_API_KEY": "sk-abcdef", "HOME": "/root", "SHORT_KEY": "abc"}
    assert scrub_secrets("key sk-abcdef in /root abc", env) == "key *** in /root abc"


# ---------------------------------------------------------------------- session -> custom format
def _conversation(linker: ChatLinker) -> Session:
    """Three recommender turns: one with ticked cards, one answered by naming a movie, one
    with no reaction (left out of the export)."""
    session = Session(session_id="t1")
    rec = [linker.movie(c) for c in ("m7", "m11", "m12")]

    def seeker(text):
        session.add_seeker(text, linked_movies(linker.link(text)))

    seeker('I loved "Heat" and The Dark Knight')
    r1 = _record(ranked=("m7", "m11", "m12"))
    r1.picks = ["m11"]
    session.add_recommendation(r1, "You might like Inception, Se7en, Blade Runner", rec)
    seeker("Seen those. Something scarier?")
    session.add_recommendation(
        _record(ranked=("m4", "m8", "m9")), "Try Alien", [linker.movie("m4")]
    )
    seeker('Alien it is! Any more like "The Thing (1982)"?')
    session.add_recommendation(_record(ranked=("m12", "m9", "m8")), "Try Blade Runner", [])
    return session


def test_session_exports_the_custom_format_the_loader_reads_back(linker, tmp_path):
    session = _conversation(linker)
    path, rows, skipped = session.write_custom(tmp_path / "chat.jsonl", linker.movie)
    assert (rows, skipped) == (2, 1)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["targets"] == ["Se7en (1995)"]  # the ticked card
    assert lines[0]["history"] == ["Heat (1995)", "The Dark Knight (2008)"]
    assert lines[1]["targets"] == ["Alien (1979)"]  # named in the next message
    assert lines[1]["history"][-3:] == ["Inception (2010)", "Se7en (1995)", "Blade Runner (1982)"]

    [dialogue] = load_custom(path)
    assert dialogue.dialogue_id == "demo-t1" and dialogue.dropped == 0
    first, second = dialogue.samples
    assert [t.role for t in first.context] == ["seeker"]
    assert first.context[0].text == 'I loved "Heat" and The Dark Knight'
    assert [m.title for m in first.history] == ["Heat (1995)", "The Dark Knight (2008)"]
    assert [m.title for m in first.targets] == ["Se7en (1995)"]
    assert [t.role for t in second.context] == ["seeker", "recommender", "seeker"]
    assert [m.title for m in second.targets] == ["Alien (1979)"]

    # the titles link back to exactly the movies that were shown
    from rar.data.linking import link_samples

    linked, stats = link_samples(dialogue.samples, tiny_corpus())
    assert [s.target_ids for s in linked] == [["m11"], ["m4"]]
    assert linked[0].history_ids == ["m1", "m3"] and stats.targets_unlinked == 0


def test_rerank_replaces_the_last_turn_and_keeps_picks_still_shown(linker):
    session = _conversation(linker)
    session.records[-1].picks = ["m12", "m9"]
    session.replace_last_recommendation(_record(ranked=("m9", "m1", "m3")), "again", [])
    assert session.records[-1].picks == ["m9"] and len(session.records) == 3
    assert session.turns[-1].text == "again"


def test_a_failed_turn_is_a_notice_the_rankers_and_the_export_never_read(linker, tmp_path):
    session = Session(session_id="f")
    session.add_seeker('I loved "Heat"', linked_movies(linker.link('I loved "Heat"')))
    failed = _record("openai (m)", ranked=None, error="HTTP 500")
    session.add_recommendation(failed, "the ranker failed", [])
    session.add_seeker('"Alien" then', linked_movies(linker.link('"Alien" then')))
    ok = _record(ranked=("m7", "m11", "m12"), picks=["m7"])
    session.add_recommendation(ok, "You might like Inception", [linker.movie("m7")])
    assert [t.text for t in session.pipeline_turns()] == [
        'I loved "Heat"',
        '"Alien" then',
        "You might like Inception",
    ]
    assert [t.text for t in session.pipeline_turns(upto=3)] == ['I loved "Heat"', '"Alien" then']
    [row] = session.custom_rows(linker.movie)
    assert [c["text"] for c in row["context"]] == ['I loved "Heat"', '"Alien" then']


def test_app_callbacks_hold_a_conversation_without_a_browser(tmp_path):
    """The page's callbacks on their own: as-typed chips, "did you mean", send, re-rank."""
    pytest.importorskip("gradio")
    from rar.demo.app import DemoApp

    engine = DemoEngine(
        tiny_corpus(),
        None,
        {"llm": FakeRanker("ok")},
        candidates=4,
        source=FixedSource(["m1", "m3", "m4", "m7"]),
    )
    app = DemoApp(engine, k=3)
    session = Session(session_id="cb")
    chips, meant, session = app.on_type('I want "The Thing"', session)
    assert "The Thing (1982)" in chips and meant["visible"] is True
    assert [v for _, v in meant["choices"]] == ["m5", "m6"] and meant["value"] == "m5"
    chips, meant, session = app.on_meant("m6", 'I want "The Thing"', session)
    assert "The Thing (2011)" in chips and meant["visible"] is False
    out = app.on_send('I want "The Thing"', "llm", 3, session)
    text, chips, meant, chat, stages, costs, turn, picks, download, note, session = out
    assert text == "" and session.turns[0].movies[0].corpus_id == "m6"
    assert chat[0]["role"] == "user" and chat[1]["role"] == "assistant"
    assert "Inception (2010)" in chat[1]["content"]  # the fake ranker reverses: m7 first
    assert 'data-stage="ranker"' in stages and "812 / 95" in costs and turn["value"] == 1
    assert [v for _, v in picks["choices"]] == ["m7", "m4", "m3"]
    chat, stages, costs, *_ = app.on_rerank(RETRIEVER_ONLY, 2, session)
    assert len(session.records) == 1 and session.records[0].backend == RETRIEVER_ONLY
    assert 'data-status="skipped"' in stages and "Heat (1995)" in chat[1]["content"]
    download, note, session = app.on_picks(["m1"], 1, session)
    assert download["value"].endswith(".jsonl") and "1 labelled" in note
    [row] = [json.loads(x) for x in Path(download["value"]).read_text().splitlines()]
    assert row["targets"] == ["Heat (1995)"] and row["history"] == ["The Thing (2011)"]
    app.close()
    engine.close()


def test_chat_shows_typed_text_and_corpus_titles_as_text_never_as_markup(tmp_path):
    """Gradio's chat renders markdown and HTML: user text, titles and errors are escaped for
    it, while the rankers and the export keep the text as typed (issue 24, item 8)."""
    pytest.importorskip("gradio")
    from rar.demo.app import DemoApp
    from rar.demo.cards import plain

    bad = "Heat <img src=/x.png> ![y](/y.png) [z](/z)"
    movies = [(cid, bad if cid == "m7" else t, y, d, v) for cid, t, y, d, v in MOVIES]
    engine = DemoEngine(
        tiny_corpus(movies),
        None,
        {"llm": FakeRanker("ok")},
        candidates=4,
        source=FixedSource(["m1", "m3", "m4", "m7"]),
    )
    app = DemoApp(engine, k=3, export_dir=tmp_path / "exports")
    typed = "I loved it <img src=/u.png> ![u](/u2.png) *b* `c` $x$"
    out = app.on_send(typed, "llm", 3, Session(session_id="xss"))
    chat, session = out[3], out[-1]
    for message in chat:
        # no tag, and no link or image syntax left unescaped
        assert "<" not in message["content"]
        assert not re.search(r"(?<!\\)[\[\]!]", message["content"]), message["content"]
    assert chat[0]["content"] == plain(typed)
    assert (
        "&lt;img src=/u.png&gt; \\!\\[u\\](/u2.png) \\*b\\* \\`c\\` \\$x\\$" in chat[0]["content"]
    )
    assert f"**{plain(bad)} (2010)**" in chat[1]["content"]  # m7 first: the fake reverses
    assert session.turns[0].text == typed  # what the rankers read and the export writes
    assert f"{bad} (2010)" in session.turns[1].text and "&lt;" not in session.turns[1].text
    engine.close()


def test_the_export_is_private_and_the_apps_own_directory_goes_on_close(linker, tmp_path):
    session = _conversation(linker)
    path = tmp_path / "chat.jsonl"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o644)  # an older export: rewritten and made private
    session.write_custom(path, linker.movie)
    assert path.stat().st_mode & 0o777 == 0o600
    pytest.importorskip("gradio")
    from rar.demo.app import DemoApp

    app = DemoApp(_engine("ok"), k=3)
    assert app.export_dir.stat().st_mode & 0o777 == 0o700
    app.close()
    assert not app.export_dir.exists()
    given = DemoApp(_engine("ok"), k=3, export_dir=tmp_path / "given")
    given.export_dir.mkdir()
    given.close()
    assert given.export_dir.is_dir()  # the caller's directory is the caller's to remove


# ---------------------------------------------------------------------- command helpers
def test_resolve_run_accepts_the_quickstart_directory(tmp_path):
    from rar.commands.demo_cmd import resolve_run

    run = tmp_path / "qs" / "runs" / "quickstart-dpo"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.pt").write_bytes(b"")
    assert resolve_run(tmp_path / "qs") == run and resolve_run(run) == run
    with pytest.raises(FileNotFoundError):
        resolve_run(tmp_path)


def test_a_quickstart_directory_offers_the_ranker_it_fitted(tmp_path):
    from rar.commands.demo_cmd import quickstart_ranker, ranker_configs

    assert quickstart_ranker(tmp_path / "qs") is None
    ranker_dir = tmp_path / "qs" / "runs" / "ranker-redial"
    ranker_dir.mkdir(parents=True)
    (ranker_dir / "config.json").write_text("{}")
    assert quickstart_ranker(tmp_path / "qs") == ranker_dir
    configs = ranker_configs([], quickstart_ranker(tmp_path / "qs"), 30.0)
    assert configs["trained"].trained.path == str(ranker_dir)


def test_ranker_choices_come_from_flags_and_the_environment(monkeypatch, tmp_path):
    from rar.commands.demo_cmd import bind_warning, ranker_configs
    from rar.errors import InputError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    assert list(ranker_configs([], None, 30)) == ["semantic"]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-shown-anywhere")
    configs = ranker_configs([], tmp_path, 30)
    assert list(configs) == ["semantic", "trained", "openai (gpt-5-mini)"]
    assert configs["openai (gpt-5-mini)"].limits.timeout_s == 30
    assert "sk-not-shown" not in repr(configs)  # keys are read from the env by the ranker only
    with pytest.raises(InputError):
        ranker_configs(["gpt"], None, 30)
    with pytest.raises(InputError):
        ranker_configs(["trained"], None, 30)
    assert bind_warning("127.0.0.1") is None and bind_warning("localhost") is None
    assert "anyone who can reach" in bind_warning("0.0.0.0")


def test_demo_is_a_registered_command():
    from typer.testing import CliRunner

    from rar.cli import app

    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0 and "--host" in result.output and "--ranker" in result.output


# ---------------------------------------------------------------------- slow: real corpus, run, browser
def _two_movies(corpus_dir: Path) -> list[dict]:
    """Two well-known, unambiguous movies of the corpus (single-match titles with a year)."""
    import pandas as pd

    from rar.corpus import Corpus

    corpus = Corpus.load(corpus_dir)
    frame = corpus.movies.sort_values("votes", ascending=False, na_position="last")
    picked = []
    for row in frame.itertuples():
        if pd.isna(row.year) or len(str(row.title)) < 4:
            continue
        found = corpus.title_matcher.candidates(f"{row.title} ({row.year})", limit=3)
        if len(found) == 1 and corpus.ids[found[0].index] == row.corpus_id:
            picked.append({"id": row.corpus_id, "title": row.title, "year": int(row.year)})
        if len(picked) == 2:
            return picked
    raise AssertionError("no two unambiguous movies in the small corpus")


@pytest.mark.slow
def test_exported_conversation_evaluates_with_rar_evaluate(small_corpus, pretrained_run, tmp_path):
    """Session -> JSONL -> `rar evaluate --dataset custom --data FILE` scores it."""
    from typer.testing import CliRunner

    from rar.cli import app
    from rar.corpus import Corpus

    corpus = Corpus.load(small_corpus)
    chat = ChatLinker(corpus)
    a, b = _two_movies(small_corpus)
    session = Session(session_id="eval")
    text = f'I loved "{a["title"]} ({a["year"]})"'
    session.add_seeker(text, linked_movies(chat.link(text)))
    assert [m.corpus_id for m in session.turns[0].movies] == [a["id"]]
    record = TurnRecord("semantic", 5, [b["id"]], "test", [b["id"]], picks=[b["id"]])
    session.add_recommendation(record, f"You might like {b['title']}", [])
    path, rows, _ = session.write_custom(tmp_path / "demo.jsonl", chat.movie)
    assert rows == 1
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        app,
        [
            "evaluate", "--run", str(pretrained_run), "--corpus", str(small_corpus),
            "--dataset", "custom", "--data", str(path), "--ranker", "semantic",
            "--set", "ranker.cache.enabled=false", "-k", "10", "--json", str(out),
            "--out", str(tmp_path / "eval"), "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert (
        report["samples"]["samples_evaluated"] == 1 and report["samples"]["targets_unlinked"] == 0
    )
    assert all(v["num_samples"] == 1 for v in report["systems"].values())


@pytest.mark.slow
def test_demo_in_headless_chromium(small_corpus, pretrained_run, tmp_path):
    """A real `python -m rar demo` process and a real browser: two turns mentioning corpus
    movies, chips and cards checked, the ranker switched, a screenshot taken."""
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
    from rar.corpus import Corpus

    corpus = Corpus.load(small_corpus)
    titles = set(corpus.movies["title"])
    a, b = _two_movies(small_corpus)
    port = free_port()
    log = tmp_path / "demo.log"
    env = {"GRADIO_ANALYTICS_ENABLED": "False", "OPENAI_API_KEY": "", "GEMINI_API_KEY": ""}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    server = start_demo(
        ["--run", str(pretrained_run), "--corpus", str(small_corpus), "--port", str(port),
         "--k", "5", "--candidates", "15"],
        cwd=tmp_path, log=log, env=env,
    )  # fmt: skip
    driver = None
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, server, timeout=300, log=log)
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        driver = chromium_driver(download_dir=downloads)
        page = DemoPage(driver, url)
        page.open()

        # turn 1: a quoted mention, linked as typed
        page.type(f'Hi! I loved "{a["title"]} ({a["year"]})", what else should I watch?')
        [chip] = page.wait_chips(1)
        assert chip["corpus_id"] == a["id"] and f"{a['title']} ({a['year']})" in chip["text"]
        page.send()
        page.wait_turn(1)
        first = page.titles("ranker")
        assert len(first) == 5 and set(first) <= titles
        assert len(page.titles("retriever")) == 5 and set(page.titles("retriever")) <= titles

        # turn 2: another movie
        page.type(f'Also "{b["title"]} ({b["year"]})". Something darker?')
        [chip] = page.wait_chips(1)
        assert chip["corpus_id"] == b["id"]
        page.send()
        page.wait_turn(2)
        semantic_ids = page.ids("ranker")
        assert len(semantic_ids) == 5 and page.ranker_status() == "ok"
        assert {a["id"], b["id"]}.isdisjoint(
            semantic_ids
        )  # mentioned movies are not re-recommended
        rows = page.cost_rows()
        assert [r[1] for r in rows] == ["semantic", "semantic"] and rows[-1][2] == "ok"

        # switch the ranker: the latest turn is redone and the list shown changes
        page.select_ranker(RETRIEVER_ONLY)
        page.wait_ranker(RETRIEVER_ONLY, status="skipped")
        retriever_ids = page.ids("retriever")
        assert page.ids("ranker") == [] and len(retriever_ids) == 5
        assert retriever_ids != semantic_ids
        page.select_ranker("semantic")
        page.wait_ranker("semantic", status="ok")
        assert page.ids("ranker") == semantic_ids  # same ranker, same conversation, same list
        # tick a recommendation and download the conversation: the custom format, read back
        liked = corpus.movie(corpus.index_of(semantic_ids[0])).display
        page.tick(liked)
        [dialogue] = load_custom(page.download(downloads))
        [sample] = dialogue.samples  # turn 1 had no accepted movie: left out
        assert [m.title for m in sample.targets] == [liked]
        assert {f"{a['title']} ({a['year']})", f"{b['title']} ({b['year']})"} <= {
            m.title for m in sample.history
        }
        assert [t.role for t in sample.context] == ["seeker", "recommender", "seeker"]
        shot = page.screenshot(tmp_path / "demo.png")
        assert shot.stat().st_size > 10_000
        if os.environ.get("RAR_DEMO_SCREENSHOT"):
            page.screenshot(os.environ["RAR_DEMO_SCREENSHOT"])
        assert "OPENAI_API_KEY" not in driver.page_source
    finally:
        if driver is not None:
            driver.quit()
        stop_demo(server)
    assert "Traceback" not in log.read_text(encoding="utf-8"), log.read_text(encoding="utf-8")


@pytest.mark.slow
def test_demo_llm_ranker_shows_cost_and_failures_in_the_browser(
    small_corpus, pretrained_run, tmp_path
):
    """An OpenAI-compatible ranker (a loopback server): per-turn tokens and cost shown; a 500
    shows the turn as failed with no ranked list; the API key appears nowhere."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from servers.llm_server import FakeLLMServer, Fault

    from rar.demo.browser import (
        DemoPage,
        chromium_driver,
        free_port,
        start_demo,
        stop_demo,
        wait_for_http,
    )

    a, b = _two_movies(small_corpus)
    secret = "sk-demo-fake-secret-424242"
    with FakeLLMServer() as llm:
        config = tmp_path / "ranker_fake.yaml"
        config.write_text(
            "backend: openai\nmodel: fake-gpt\n"
            f"base_url: {llm.openai_base_url}\napi_key_env: RAR_DEMO_FAKE_KEY\n"
            "temperature: 0.0\nmax_tokens: 256\ncache: {enabled: false}\n"
            "limits: {max_retries: 0, timeout_s: 20, breaker_failures: 0}\n"
            "price: {prompt_per_1m: 0.25, completion_per_1m: 2.0}\n",
            encoding="utf-8",
        )
        port, log = free_port(), tmp_path / "demo.log"
        env = {
            "RAR_DEMO_FAKE_KEY": secret,
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        server = start_demo(
            ["--run", str(pretrained_run), "--corpus", str(small_corpus), "--port", str(port),
             "--k", "5", "--candidates", "10", "--ranker", str(config)],
            cwd=tmp_path, log=log, env=env,
        )  # fmt: skip
        driver = None
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_for_http(url, server, timeout=300, log=log)
            driver = chromium_driver()
            page = DemoPage(driver, url)
            page.open()
            page.type(f'I loved "{a["title"]} ({a["year"]})"')
            page.wait_chips(1)
            page.send()
            page.wait_turn(1)
            assert page.ranker_status() == "ok"
            [row] = page.cost_rows()
            assert row[1] == "openai (fake-gpt)" and row[2] == "ok"
            assert row[4] != "–" and row[5].startswith("$") and float(row[5][1:]) > 0
            assert len(page.ids("ranker")) == 5 and page.ids("ranker") != page.ids("retriever")

            llm.push(*[Fault("status", status=500)] * 5)
            page.type(f'And "{b["title"]} ({b["year"]})"?')
            page.wait_chips(1)
            page.send()
            page.wait_turn(2)
            assert page.ranker_status() == "failed"
            assert page.ids("ranker") == [] and len(page.ids("retriever")) == 5
            assert page.cost_rows()[-1][2].startswith("failed")
            assert "ranker failed" in driver.find_element("css selector", "#rar-chat").text
            page.screenshot(tmp_path / "demo_llm_failed.png")
            assert secret not in driver.page_source
        finally:
            if driver is not None:
                driver.quit()
            stop_demo(server)
    text = log.read_text(encoding="utf-8")
    assert secret not in text and "Traceback" not in text, text
    assert llm.n_hits >= 2
