"""SQLite response cache: reruns are free, reproducible, and survive killed processes.

WAL mode + a busy timeout make it safe with many writers (threads and processes); every
insert commits on its own, so a killed run keeps everything it already paid for.
The key hashes backend, model, full prompt and generation parameters; no secrets ever go in.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


class ResponseCache:
    """A key -> reply store in one SQLite file; one connection per thread."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 60_000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self._connect()  # create the schema eagerly so errors surface at construction

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None
            )
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._local.conn = conn
        return conn

    def get(self, key: str) -> CachedReply | None:
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
        conn = self._connect()
        conn.execute(
            "INSERT OR REPLACE INTO replies (key, backend, model, reply, usage, latency_s, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                backend,
                model,
                reply.reply,
                json.dumps(reply.usage),
                reply.latency_s,
                time.time(),
            ),
        )
        with self._lock:
            self.writes += 1

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def stats(self) -> dict[str, int]:
        return {"cache_hits": self.hits, "cache_misses": self.misses, "cache_writes": self.writes}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
