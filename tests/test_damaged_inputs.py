"""Damaged files the user points a command at are one line naming the file and the way out,
exit 2, never a traceback (issue 24, item 5): a corrupt `movies.parquet` or `manifest.json`, a
truncated `index.faiss` or `embeddings/vectors.npy`, a conversation file that is not UTF-8.

Every case damages a copy of a real corpus (built by the corpus builder) and runs the real
`python -m rar` command in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _rar(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rar", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def _one_line(result: subprocess.CompletedProcess) -> str:
    """The single `error: ...` line of a refused command (exit 2, no traceback)."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def corpus_copy(small_corpus, tmp_path) -> Path:
    return Path(shutil.copytree(small_corpus, tmp_path / "corpus"))


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _scribble(path: Path) -> None:
    """Random-looking bytes over the middle of the file (same size)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle - 64 : middle + 64] = bytes(range(128))
    path.write_bytes(bytes(data[:middle]) + b"\x00garbage\xff" * 8 + bytes(data[middle + 88 :]))


@pytest.mark.parametrize("damage", [_truncate, _scribble], ids=["truncated", "scribbled"])
def test_a_damaged_movies_parquet_is_one_line_naming_it_and_the_rebuild(corpus_copy, damage):
    damage(corpus_copy / "movies.parquet")
    line = _one_line(_rar("corpus", "stats", str(corpus_copy), cwd=corpus_copy.parent))
    assert f"{corpus_copy / 'movies.parquet'} is unreadable" in line and " bytes;" in line
    assert f"rar build-corpus --out {corpus_copy}" in line


def test_a_corrupt_manifest_is_one_line_and_says_to_rebuild_elsewhere(corpus_copy):
    _truncate(corpus_copy / "manifest.json", keep=0.3)
    line = _one_line(_rar("corpus", "show", str(corpus_copy), "x", cwd=corpus_copy.parent))
    assert f"{corpus_copy / 'manifest.json'} is unreadable" in line
    # the builder refuses to replace a directory whose manifest it cannot read: say so
    assert "rar build-corpus --out NEW_DIR" in line and f"remove {corpus_copy}" in line
    (corpus_copy / "manifest.json").write_text("[1, 2]", encoding="utf-8")
    line = _one_line(_rar("corpus", "stats", str(corpus_copy), cwd=corpus_copy.parent))
    assert "manifest.json is unreadable" in line and "expected a JSON object" in line


def test_a_truncated_faiss_index_is_one_line_before_the_model_loads(corpus_copy):
    _truncate(corpus_copy / "index.faiss")
    result = _rar("corpus", "search", str(corpus_copy), "time travel", cwd=corpus_copy.parent)
    line = _one_line(result)
    assert f"{corpus_copy / 'index.faiss'} is unreadable" in line
    assert f"rar build-corpus --out {corpus_copy}" in line


def _conversation(tmp_path: Path) -> Path:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps([{"role": "seeker", "text": "a heist movie"}]), encoding="utf-8")
    return path


@pytest.mark.parametrize("keep", [0.5, 0.01], ids=["data-cut", "header-cut"])
def test_truncated_vectors_are_one_line_naming_the_file(corpus_copy, tmp_path, keep):
    _truncate(corpus_copy / "embeddings" / "vectors.npy", keep=keep)
    result = _rar(
        "rank", "--conversation", str(_conversation(tmp_path)), "--corpus", str(corpus_copy),
        "--ranker", "semantic", "--set", "cache.enabled=false", cwd=tmp_path,
    )  # fmt: skip
    line = _one_line(result)
    assert f"{corpus_copy / 'embeddings' / 'vectors.npy'} is unreadable" in line
    assert f"rar build-corpus --out {corpus_copy}" in line


def test_a_conversation_that_is_not_utf8_names_the_file_line_and_byte(tmp_path):
    path = tmp_path / "chat.json"
    path.write_bytes(b'[\n {"role": "seeker",\n  "text": "Am\xe9lie"}\n]\n')  # latin-1
    result = _rar("rank", "--conversation", str(path), "--corpus", str(tmp_path), cwd=tmp_path)
    line = _one_line(result)
    assert line.startswith(f"error: {path}:3: not UTF-8 text (byte 0xe9 at offset 35)")
    assert "save the conversation as UTF-8" in line


def test_a_utf8_bom_is_read_as_utf8(tmp_path):
    from rar.data.conversation import load_conversation

    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([{"text": "Am\u00e9lie"}]).encode("utf-8"))
    [turn] = load_conversation(path)
    assert turn.text == "Am\u00e9lie"
