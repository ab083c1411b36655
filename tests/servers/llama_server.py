"""A real OpenAI-compatible engine for tests and benchmarks: llama-cpp-python's server
(`python -m llama_cpp.server`) serving the packaged SmolLM2-135M GGUF on 127.0.0.1, with one
slot (its default, like llama.cpp's and Ollama's). It runs as a subprocess so a test can
SIGKILL it and start it again on the same port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_gguf() -> Path:
    from rar.rankers.local_ranker import packaged_smollm2

    folder, name = packaged_smollm2()
    return Path(folder) / name


class LlamaServer:
    """`python -m llama_cpp.server --model <gguf> --n_ctx N` on a fixed loopback port."""

    def __init__(
        self,
        model: Path | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        port: int | None = None,
        log_path: Path | None = None,
        extra_args: list[str] | None = None,
    ):
        self.model = Path(model) if model is not None else smollm2_gguf()
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.port = port or free_port()
        self.log_path = log_path
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
        ]
        if self.n_threads:
            cmd += ["--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]
        return cmd + self.extra_args

    def start(self, timeout: float = 120.0) -> LlamaServer:
        """Start the server and wait until `/v1/models` answers."""
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)
        )
        if log is not subprocess.DEVNULL:
            log.close()  # the child holds its own descriptor
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited with {self.proc.returncode} before answering "
                    f"(log: {self.log_path})"
                )
            if self.models() is not None:
                return self
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"llama_cpp.server did not answer /v1/models within {timeout:.0f}s")

    def models(self) -> list[str] | None:
        """The served model ids, or None when the server does not answer."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:
                return [m["id"] for m in json.load(resp)["data"]]
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
            return None

    def kill(self) -> None:
        """SIGKILL: the server dies mid-request without answering (a crash, an OOM kill)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
