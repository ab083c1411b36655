"""Issue 24 item 5 (the ranker cache): a damaged cache file, a read-only cache directory, or a
cache path that is a directory make the real `rar rank` (a subprocess) print one line naming
the file and the way out, with exit status 2, instead of a traceback. The read-only directory
is a real read-only mount when the tests run as root (root ignores permission bits)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rar.rankers.cache import CachedReply, ResponseCache

DEAD_URL = "http://127.0.0.1:9/v1"  # never called: the cache is opened before any call


def rank(tmp_path: Path, corpus: Path, cache: Path, prefix: list[str] | None = None):
    conv = tmp_path / "conv.json"
    conv.write_text('[{"role": "seeker", "text": "A good heist movie?"}]', encoding="utf-8")
    cmd = [sys.executable, "-m", "rar", "rank", "--conversation", str(conv)]
    cmd += ["--corpus", str(corpus), "-k", "5", "--ranker", "openai", "--base-url", DEAD_URL]
    cmd += ["--set", f"cache.path={cache}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        (prefix or []) + cmd, capture_output=True, text=True, timeout=300, env=env
    )


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ranker cache "), proc.stderr
    return lines[0]


@pytest.mark.slow
def test_damaged_cache_file(small_corpus, tmp_path):
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"SQLite format 3\0" + os.urandom(4000))
    line = one_error_line(rank(tmp_path, small_corpus, cache))
    assert f"{cache} is damaged" in line and "move it aside" in line


@pytest.mark.slow
def test_cache_path_is_a_directory(small_corpus, tmp_path):
    cache = tmp_path / "cache.sqlite"
    cache.mkdir()
    line = one_error_line(rank(tmp_path, small_corpus, cache))
    assert f"{cache} is a directory, not a file" in line and "ranker.cache.path" in line


def read_only(directory: Path) -> list[str]:
    """A command prefix under which `directory` is read-only: its permission bits for a normal
    user, a read-only bind mount in a private mount namespace for root."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return []
    if shutil.which("unshare") is None:
        pytest.skip("root without unshare: no way to make a directory read-only")
    d = str(directory)
    script = f'mount --bind "{d}" "{d}" && mount -o remount,bind,ro "{d}" && exec "$@"'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", "true"], check=False)
    if probe.returncode != 0:
        pytest.skip("no private mount namespace here (unshare -m needs CAP_SYS_ADMIN)")
    return ["unshare", "-m", "sh", "-c", script, "sh"]


@pytest.mark.slow
@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "existing-cache"])
def test_read_only_cache_directory(small_corpus, tmp_path, existing):
    ro = tmp_path / "ro"
    ro.mkdir()
    cache = ro / "cache.sqlite"
    if existing:
        ResponseCache(cache).put("k", "openai", "m", CachedReply("1. A"))
    try:
        line = one_error_line(rank(tmp_path, small_corpus, cache, read_only(ro)))
    finally:
        ro.chmod(0o755)
    assert f"{cache} cannot be written" in line and f"make {ro} and the file writable" in line
