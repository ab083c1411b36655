"""SQLite response cache: hits/misses, concurrent writers (threads, processes), killed writers,
and one clear error for a cache that cannot be used (the CLI side: test_ranker_cache_cli.py)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rar.errors import InputError
from rar.rankers.cache import CachedReply, ResponseCache, cache_key

ROOT = Path(__file__).resolve().parents[1]


def test_key_depends_on_everything_that_changes_the_reply():
    base = cache_key("openai", "gpt", "prompt", {"temperature": 0.0})
    assert base == cache_key("openai", "gpt", "prompt", {"temperature": 0.0})
    assert base != cache_key("gemini", "gpt", "prompt", {"temperature": 0.0})
    assert base != cache_key("openai", "gpt-2", "prompt", {"temperature": 0.0})
    assert base != cache_key("openai", "gpt", "prompt!", {"temperature": 0.0})
    assert base != cache_key("openai", "gpt", "prompt", {"temperature": 0.5})


def test_roundtrip_and_hit_miss_counts(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    assert cache.get("k") is None
    cache.put("k", "openai", "m", CachedReply("1. A", {"prompt_tokens": 3}, 0.25))
    got = cache.get("k")
    assert got == CachedReply("1. A", {"prompt_tokens": 3}, 0.25)
    assert cache.stats() == {"cache_hits": 1, "cache_misses": 1, "cache_writes": 1}
    assert len(ResponseCache(tmp_path / "c.sqlite")) == 1  # persisted, visible to a new handle


def test_many_threads_write_and_read(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")

    def work(t: int) -> None:
        for i in range(100):
            cache.put(f"{t}-{i}", "openai", "m", CachedReply(f"reply {t} {i}"))
            assert cache.get(f"{t}-{i}").reply == f"reply {t} {i}"

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(cache) == 800 and cache.hits == 800


def _process_writer(path: str, worker: int) -> None:
    cache = ResponseCache(path)
    for i in range(100):
        cache.put(f"{worker}-{i}", "gemini", "m", CachedReply(str(i)))


def test_many_processes_write_concurrently(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_process_writer, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(ResponseCache(path)) == 400


def test_survives_a_killed_writer(tmp_path):
    path = tmp_path / "c.sqlite"
    code = (
        "import os, signal\n"
        "from rar.rankers.cache import ResponseCache, CachedReply\n"
        f"c = ResponseCache({str(path)!r})\n"
        "for i in range(50):\n"
        "    c.put(str(i), 'openai', 'm', CachedReply('x' * 1000))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ}, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    cache = ResponseCache(path)
    assert len(cache) == 50 and cache.get("49").reply == "x" * 1000


def test_a_damaged_cache_file_is_one_error_naming_it_and_is_left_alone(tmp_path):
    path = tmp_path / "c.sqlite"
    garbage = os.urandom(5000)
    path.write_bytes(garbage)
    with pytest.raises(InputError) as info:
        ResponseCache(path)
    message = str(info.value)
    assert f"ranker cache {path} is damaged" in message and "move it aside" in message
    assert "ranker.cache.path" in message and "\n" not in message
    assert path.read_bytes() == garbage  # never overwritten: the user decides


def test_a_cache_path_that_is_a_directory_is_one_error(tmp_path):
    (tmp_path / "c.sqlite").mkdir()
    with pytest.raises(
        InputError, match=r"c\.sqlite is a directory, not a file: set ranker\.cache"
    ):
        ResponseCache(tmp_path / "c.sqlite")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="ranker cache .*file/c.sqlite cannot be used"):
        ResponseCache(tmp_path / "file" / "c.sqlite")  # its parent is a file
