"""A TCP server on 127.0.0.1 that accepts every connection, reads what it is sent and never
answers: a hung engine (deadlocked, swapped out, stuck behind a debugger). Connections stay
open until the client gives up or the server stops.

Run in-process (`with SilentServer() as server:`) or as its own process for CLI tests
(`python silent_server.py` prints the port and serves until stdin closes)."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from typing import Any


class SilentServer:
    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._port = int(self._sock.getsockname()[1])  # still known after stop()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0  # connections accepted
        self.received = 0  # bytes read (requests that were sent and never answered)
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        return self._port

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def gemini_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SilentServer:
        self._sock.listen(128)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed by stop()
            with self._lock:
                self._conns.append(conn)
                self.accepted += 1
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        """Read the request (so the client's send completes) and never write a byte."""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.received += len(data)

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                conn.close()

    def __enter__(self) -> SilentServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main() -> None:
    with SilentServer() as server:
        print(server.port, flush=True)
        sys.stdin.read()  # the parent closes our stdin (or exits) to stop us


if __name__ == "__main__":
    main()
