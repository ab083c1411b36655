"""SQLite response cache: reruns are free, reproducible, and survive killed processes.

WAL mode + a busy timeout make it safe with many writers (threads and processes); every
insert commits on its own, so a killed run keeps everything it already paid for.
The key hashes backend, model, full prompt and generation parameters; no secrets ever go in.
A cache that cannot be used (a damaged file, a read-only directory, a directory where the file
should be) is one `InputError` naming the file and the way out, never a traceback.
"""

from __future__ import annotations

import errno
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rar.errors import InputError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    reply TEXT NOT NULL,
    usage TEXT NOT NULL,
    latency_s REAL NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(backend: str, model: str, prompt: str, params: dict[str, Any]) -> str:
    """Stable hash of everything that determines a reply."""
    payload = json.dumps(
        {"backend": backend, "model": model, "prompt": prompt, "params": params},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class CachedReply:
    reply: str
    usage: dict[str, Any] = field(default_factory=dict)
    latency_s: float = 0.0


def _check_writable(conn: sqlite3.Connection) -> None:
    """Write a row and roll it back: a read-only cache (one next to its -wal and -shm files in
    a read-only directory) opens and reads fine, and would fail only at the first reply."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR REPLACE INTO replies VALUES ('', '', '', '', '{}', 0, 0)")
    finally:
        conn.execute("ROLLBACK")


def unusable(path: Path, exc: Exception) -> InputError:
    """The one-line error for a cache file that cannot be used: what is wrong, and the way out."""
    way_out = "set ranker.cache.path to another file (or ranker.cache.enabled=false: no cache)"
    text = str(exc)
    if path.is_dir():
        return InputError(f"ranker cache {path} is a directory, not a file: {way_out}")
    denied = isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    if denied or "readonly" in text or "unable to open" in text:
        return InputError(
            f"ranker cache {path} cannot be written ({text}): make {path.parent} and the file "
            f"writable, or {way_out}"
        )
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return InputError(
            f"ranker cache {path} is damaged ({text}): move it aside (a new cache is started "
            f"and the replies are asked for again), or {way_out}"
        )
    return InputError(f"ranker cache {path} cannot be used ({text}): {way_out}")


class ResponseCache:
    """A key -> reply store in one SQLite file; one connection per thread."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 60_000):
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.writes = 0
        with self._usable():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connect()  # create the schema eagerly so errors surface at construction

    @contextmanager
    def _usable(self) -> Iterator[None]:
        """SQLite and file-system errors become one InputError naming the file."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise unusable(self.path, exc) from None

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None
            )
            try:
                conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                _check_writable(conn)
            except sqlite3.Error:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def get(self, key: str) -> CachedReply | None:
        with self._usable():
            row = (
                self._connect()
                .execute("SELECT reply, usage, latency_s FROM replies WHERE key = ?", (key,))
                .fetchone()
            )
        with self._lock:
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return CachedReply(reply=row[0], usage=json.loads(row[1]), latency_s=float(row[2]))

    def put(self, key: str, backend: str, model: str, reply: CachedReply) -> None:
        row = (key, backend, model, reply.reply, json.dumps(reply.usage), reply.latency_s)
        with self._usable():
            self._connect().execute(
                "INSERT OR REPLACE INTO replies "
                "(key, backend, model, reply, usage, latency_s, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*row, time.time()),
            )
        with self._lock:
            self.writes += 1

    def __len__(self) -> int:
        with self._usable():
            return int(self._connect().execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def stats(self) -> dict[str, int]:
        return {"cache_hits": self.hits, "cache_misses": self.misses, "cache_writes": self.writes}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
