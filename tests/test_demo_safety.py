"""`rar demo` as a real process (issue 24, items 5, 8 and 13): a busy port is refused in one
line before anything loads; in a real headless Chromium, HTML and markdown typed by the user or
held in a corpus title are shown as text and never fetched; the download is private (0600, in
a 0700 directory) and every temporary file is gone after the server stops."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARK = "rar-xss"  # every hostile URL holds it, so one scan finds any fetch or element


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    """A demo environment whose temporary directory is `tmp`, to see what it leaves there."""
    return {
        "TMPDIR": str(tmp),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "OPENAI_API_KEY": "",
        "GEMINI_API_KEY": "",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **extra,
    }


def _busy_port_demo(tmp_path: Path, tmp: Path) -> tuple[subprocess.CompletedProcess, int]:
    """`rar demo` on a port something listens on, with a run and a corpus that would fail to
    load: a refusal about them would mean loading began."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint")
    corpus = tmp_path / "corpus-not-loaded"
    corpus.mkdir(exist_ok=True)
    (corpus / "movies.parquet").write_bytes(b"not parquet")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "rar", "demo", "--run", str(run), "--corpus", str(corpus),
             "--port", str(port)],
            capture_output=True, text=True, env={**os.environ, **_env(tmp)}, cwd=tmp_path,
            timeout=300,
        )  # fmt: skip
    return result, port


def test_a_busy_port_is_refused_in_one_line_before_anything_loads(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    result, port = _busy_port_demo(tmp_path, tmp)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use (another `rar demo` or server?): "
        "pass --port with a free port, or stop the program using it"
    )
    assert "loading" not in result.stdout and "Traceback" not in result.stderr
    assert list(tmp.iterdir()) == []  # nothing was created


def _hostile_corpus(small_corpus: Path, out: Path, keep: str) -> Path:
    """A copy of the small corpus where every title but `keep`'s carries an <img> tag."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(small_corpus, out)
    table = pq.read_table(out / "movies.parquet")
    titles = [
        title if cid == keep else f"{title} <img src=/{MARK}-title-{i}.png>"
        for i, (cid, title) in enumerate(
            zip(table["corpus_id"].to_pylist(), table["title"].to_pylist(), strict=True)
        )
    ]
    column = table.schema.get_field_index("title")
    table = table.set_column(column, "title", pa.array(titles, type=pa.string()))
    pq.write_table(table, out / "movies.parquet")
    return out


def _fetched(driver) -> list[str]:
    return driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")


def _private_files(tmp: Path) -> list[Path]:
    return [p for p in tmp.rglob("*.jsonl") if p.is_file()]


@pytest.mark.slow
def test_demo_escapes_text_keeps_downloads_private_and_cleans_up(
    small_corpus, pretrained_run, tmp_path
):
    from test_demo import _two_movies

    from rar.demo.browser import (
        DemoPage,
        chromium_driver,
        chromium_paths,
        free_port,
        start_demo,
        wait_for_http,
    )

    if chromium_paths()[1] is None:
        pytest.fail("chromedriver not installed: apt-get install chromium chromium-driver")
    a, _ = _two_movies(small_corpus)
    corpus = _hostile_corpus(small_corpus, tmp_path / "corpus", keep=a["id"])
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port, log = free_port(), tmp_path / "demo.log"
    server = start_demo(
        ["--run", str(pretrained_run), "--corpus", str(corpus), "--port", str(port),
         "--k", "5", "--candidates", "15"],
        cwd=tmp_path, log=log, env=_env(tmp),
    )  # fmt: skip
    driver = None
    typed = (
        f'I loved "{a["title"]} ({a["year"]})" <img src=/{MARK}-user.png> '
        f"![u](/{MARK}-md.png) *not bold*"
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, server, timeout=300, log=log)
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        driver = chromium_driver(download_dir=downloads)
        page = DemoPage(driver, url)
        page.open()
        page.type(typed)
        page.wait_chips(1)
        page.send()
        page.wait_turn(1)
        chat = driver.find_element("css selector", "#rar-chat")
        page._wait(lambda: "You might like" in chat.text, what="the recommender's message")
        # shown as typed, in the user's message and in the titles the bot names
        assert typed in chat.text, chat.text
        assert f"<img src=/{MARK}-title-" in chat.text.split("You might like", 1)[1]
        images = [e.get_attribute("src") or "" for e in page._all("img")]
        assert not [s for s in images if MARK in s], images
        assert not [u for u in _fetched(driver) if MARK in u]
        assert not page._all("#rar-chat em")  # *not bold* stays text

        # the download: written 0600 in a 0700 directory, Gradio's copy included
        from rar.corpus import Corpus

        movies = Corpus.load(corpus)
        page.tick(movies.movie(movies.index_of(page.ids("ranker")[0])).display)
        assert page.download(downloads).stat().st_size > 0
        [root] = [p for p in tmp.iterdir()]  # one private directory holds everything
        assert root.name.startswith("rar-demo-") and stat.S_IMODE(root.stat().st_mode) == 0o700
        served = _private_files(tmp)
        assert len(served) >= 2 and any("gradio" in p.parts for p in served)  # ours + Gradio's
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in served), served
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    text = log.read_text(encoding="utf-8")
    assert "Traceback" not in text, text
    assert list(tmp.iterdir()) == [], list(tmp.rglob("*"))  # nothing left behind


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_our_own_dirs_of_dead_demos_are_removed(tmp_path):
    from rar.demo.launch import remove_stale_dirs

    dead = _dead_pid()
    stale = tmp_path / f"rar-demo-{dead}-abc123"
    (stale / "gradio" / "hash").mkdir(parents=True)
    (stale / "gradio" / "hash" / "chat.jsonl").write_text("{}")
    (stale / "exports").mkdir()
    live = tmp_path / f"rar-demo-{os.getpid()}-abc123"  # a demo still running
    (live / "exports").mkdir(parents=True)
    foreign = tmp_path / f"rar-demo-{dead}-xyz789"  # holds something a demo never writes
    (foreign / "exports").mkdir(parents=True)
    (foreign / "thesis.tex").write_text("mine")
    other = tmp_path / "rar-demo-notapid-abc123"
    other.mkdir()
    target = tmp_path / "elsewhere"
    (target / "exports").mkdir(parents=True)
    (tmp_path / f"rar-demo-{dead}-link").symlink_to(target)
    assert remove_stale_dirs(tmp_path) == [stale]
    assert not stale.exists()
    assert live.is_dir() and (foreign / "thesis.tex").is_file() and other.is_dir()
    assert (target / "exports").is_dir()


@pytest.mark.slow
def test_a_killed_demos_directory_is_removed_by_the_next_demo(
    small_corpus, pretrained_run, tmp_path
):
    """SIGKILL skips every `finally`: the next `rar demo` removes what it left."""
    from rar.demo.browser import free_port, start_demo, wait_for_http

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port, log = free_port(), tmp_path / "demo.log"
    server = start_demo(
        ["--run", str(pretrained_run), "--corpus", str(small_corpus), "--port", str(port)],
        cwd=tmp_path, log=log, env=_env(tmp),
    )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", server, timeout=300, log=log)
    finally:
        server.kill()
        server.wait(timeout=60)
    [left] = list(tmp.iterdir())
    assert left.name.startswith(f"rar-demo-{server.pid}-")
    result, _ = _busy_port_demo(tmp_path, tmp)  # the next demo, refused or not, cleans up
    assert result.returncode == 2 and "removed" in result.stderr + result.stdout
    assert list(tmp.iterdir()) == []


def test_a_port_taken_after_the_check_is_the_same_one_line(tmp_path):
    """The race check_port cannot close: Gradio's own failure is turned into that line."""
    pytest.importorskip("gradio")
    from test_demo import FakeRanker, FixedSource, tiny_corpus

    from rar.commands.demo_cmd import _serve
    from rar.demo.app import DemoApp
    from rar.demo.engine import DemoEngine
    from rar.errors import InputError

    engine = DemoEngine(
        tiny_corpus(), None, {"llm": FakeRanker("ok")}, candidates=4, source=FixedSource(["m1"])
    )
    app = DemoApp(engine, export_dir=tmp_path / "exports")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InputError, match=f"^port {port} on 127.0.0.1 is already in use"):
            _serve(app, "127.0.0.1", port)
    engine.close()
