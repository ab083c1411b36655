"""A stdlib HTTP server on 127.0.0.1 speaking the OpenAI Chat Completions
(`POST /v1/chat/completions`) and Gemini `generateContent`
(`POST /v1beta/models/{model}:generateContent`) JSON wire formats, with fault injection.

The official SDKs are pointed at it by base URL. Each request consumes the next scripted
`Fault` (if any), else gets the default reply from `responder(prompt)`. Every request is
recorded in `hits` (path, headers, body) so tests can count calls and inspect what was sent.

`slots=1` models a one-slot engine (llama.cpp and Ollama defaults): requests queue and are
computed one at a time, `latency_s` each, and a request whose client gave up while queued
is still computed (as a real engine does), so queueing eats into client timeouts.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_GEMINI_PATH = re.compile(r"^/v1beta/models/([^/:]+):generateContent$")


@dataclass
class Fault:
    """One scripted reply. kind: "status" (HTTP error, optional Retry-After), "malformed"
    (invalid JSON body), "slow" (sleep `delay` then reply normally), "text" (reply `text`),
    "json" (HTTP 200 with `payload` as the body, verbatim)."""

    kind: str
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    text: str = ""
    payload: Any = None


def prompt_candidates(prompt: str) -> list[str]:
    """Candidate display titles listed in a RAR prompt (between the two section headers)."""
    try:
        block = prompt.split("Candidate movies:\n", 1)[1].split("\n\nConversation history:", 1)[0]
    except IndexError:
        return []
    return [line[2:].split(" | ", 1)[0] for line in block.splitlines() if line.startswith("- ")]


def reverse_ranking(prompt: str) -> str:
    """Default responder: a numbered list of the prompt's candidates, last first."""
    titles = prompt_candidates(prompt)[::-1]
    return "\n".join(f"{i}. {t}" for i, t in enumerate(titles, 1))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = (
        1024  # listen() backlog: the default 5 drops bursts of connects (1 s SYN retry)
    )


class FakeLLMServer:
    """Run with `with FakeLLMServer() as server:`; use `openai_base_url` / `gemini_base_url`."""

    def __init__(
        self,
        latency_s: float = 0.0,
        responder: Callable[[str], str] = reverse_ranking,
        slots: int | None = None,
        port: int = 0,
        loading_s: float = 0.0,
    ):
        self.latency_s = latency_s
        self.requested_port = port  # 0 = any free port; a fixed one survives a restart
        self.loading_s = loading_s  # answer 503 "loading model" this long after start
        self.started_at = 0.0
        self.responder = responder
        self.slots = slots
        self._slots = threading.Semaphore(slots) if slots else None
        self.computed = 0  # requests the server finished computing (answered or abandoned)
        self.script: deque[Fault] = deque()
        self.hits: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0  # highest number of requests being handled at once
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> FakeLLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                server._handle(self)

        self._httpd = _Server(("127.0.0.1", self.requested_port), Handler)
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def gemini_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *faults: Fault) -> None:
        with self._lock:
            self.script.extend(faults)

    @property
    def n_hits(self) -> int:
        with self._lock:
            return len(self.hits)

    # --- request handling ----------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._respond(h)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _respond(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        with self._lock:
            self.hits.append(
                {
                    "path": h.path,
                    "headers": dict(h.headers.items()),
                    "body": body,
                    "time": time.monotonic(),
                }
            )
            fault = self.script.popleft() if self.script else None
            if fault is None and time.monotonic() - self.started_at < self.loading_s:
                fault = Fault("status", 503)  # like llama-server while its model loads
        gemini = _GEMINI_PATH.match(h.path.split("?", 1)[0])
        if h.path.split("?", 1)[0] == "/v1/chat/completions":
            model = body.get("model", "")
            messages = body.get("messages") or [{}]
            prompt = str(messages[-1].get("content", ""))
        elif gemini:
            model = gemini.group(1)
            try:
                prompt = body["contents"][0]["parts"][0]["text"]
            except (KeyError, IndexError, TypeError):
                prompt = ""
        else:
            self._send(h, 404, {"error": {"message": f"no route {h.path}", "code": 404}})
            return
        delay = self.latency_s + (fault.delay if fault and fault.kind == "slow" else 0.0)
        if self._slots is not None:
            with self._slots:  # queue for a slot, then compute
                time.sleep(delay)
                with self._lock:
                    self.computed += 1
        elif delay:
            time.sleep(delay)
        try:
            if fault is not None and fault.kind == "status":
                headers = (
                    {"Retry-After": f"{fault.retry_after:g}"}
                    if fault.retry_after is not None
                    else {}
                )
                payload = (
                    {
                        "error": {
                            "code": fault.status,
                            "message": "injected fault",
                            "status": "UNAVAILABLE",
                        }
                    }
                    if gemini
                    else {
                        "error": {
                            "message": "injected fault",
                            "type": "server_error",
                            "code": fault.status,
                        }
                    }
                )
                self._send(h, fault.status, payload, headers)
                return
            if fault is not None and fault.kind == "json":
                self._send(h, 200, fault.payload)
                return
            if fault is not None and fault.kind == "malformed":
                self._send_raw(h, 200, b'{"choices": [ this is not json', {})
                return
            text = (
                fault.text if fault is not None and fault.kind == "text" else self.responder(prompt)
            )
            p_tok, c_tok = max(1, len(prompt) // 4), max(1, len(text) // 4)
            if gemini:
                payload = {
                    "candidates": [
                        {
                            "content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": "STOP",
                            "index": 0,
                        }
                    ],
                    "usageMetadata": {
                        "promptTokenCount": p_tok,
                        "candidatesTokenCount": c_tok,
                        "totalTokenCount": p_tok + c_tok,
                    },
                    "modelVersion": model,
                }
            else:
                payload = {
                    "id": f"chatcmpl-{len(self.hits)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": p_tok,
                        "completion_tokens": c_tok,
                        "total_tokens": p_tok + c_tok,
                    },
                }
            self._send(h, 200, payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to answer

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        FakeLLMServer._send_raw(h, status, json.dumps(payload).encode(), headers or {})

    @staticmethod
    def _send_raw(
        h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str]
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()


def main() -> None:
    """Run the server in its own process (benchmarks): prints the port, serves until stdin closes."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="Loopback fake OpenAI/Gemini server.")
    ap.add_argument("--latency", type=float, default=0.0, help="Seconds to wait before each reply.")
    ap.add_argument("--slots", type=int, default=None, help="Requests computed at once (queue).")
    ap.add_argument("--port", type=int, default=0, help="Port to listen on (0 = any free one).")
    ap.add_argument("--loading-s", type=float, default=0.0, help="Answer 503 this long at start.")
    args = ap.parse_args()
    with FakeLLMServer(
        latency_s=args.latency, slots=args.slots, port=args.port, loading_s=args.loading_s
    ) as server:
        print(server.port, flush=True)
        sys.stdin.read()  # the parent closes our stdin (or exits) to stop us


if __name__ == "__main__":
    main()
