"""Gemini ranker via the official `google-genai` SDK (`http_options.base_url` for other
endpoints and tests); thinking on/off and budget. SDK retries are off (ours count)."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import TYPE_CHECKING, Any

from rar.rankers.limits import parse_retry_after
from rar.rankers.openai_ranker import read_api_key
from rar.rankers.prompt_ranker import CallError, Completion, PromptRanker
from rar.rankers.ranker_config import RankerConfig

if TYPE_CHECKING:
    from google.genai import Client

    from rar.corpus import Corpus

DEFAULT_KEY_ENV = "GEMINI_API_KEY"


def _http_error_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """Timeout and transport exception classes of the HTTP stacks google-genai may use."""
    timeouts: list[type] = []
    transport: list[type] = []
    for name in ("httpx", "httpx2"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        timeouts.append(mod.TimeoutException)
        transport.append(mod.TransportError)
    return tuple(timeouts), tuple(transport)


def reply_text(resp: Any) -> str:
    """The reply's text; no candidates (e.g. a blocked prompt) or no text is an empty reply,
    which is not retried."""
    if not resp.candidates:
        feedback = resp.prompt_feedback
        reason = feedback.block_reason if feedback is not None else None
        raise CallError(f"empty reply (no candidates, block_reason={reason})", False, kind="empty")
    if not resp.text:
        reason = resp.candidates[0].finish_reason
        raise CallError(f"empty reply (finish_reason={reason})", retryable=False, kind="empty")
    return str(resp.text)


class GeminiRanker(PromptRanker):
    backend = "gemini"

    def __init__(self, config: RankerConfig, corpus: Corpus):
        super().__init__(config, corpus)
        self._secret = read_api_key(config.api_key_env, DEFAULT_KEY_ENV, None, "")
        self._client: Client | None = None  # per event loop: `_open` to `_aclose`

    def thinking_budget(self) -> int | None:
        c = self.config
        if c.thinking is False:
            return 0
        return c.thinking_budget

    def generation_params(self) -> dict[str, Any]:
        c = self.config
        return {
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
            "thinking_budget": self.thinking_budget(),
            "base_url": c.base_url,
        }

    async def _open(self) -> None:
        from google import genai
        from google.genai import types

        lim = self.config.limits
        http = types.HttpOptions(
            base_url=self.config.base_url,
            api_version="v1beta",
            timeout=int((max(lim.timeout_s, lim.max_timeout_s) + 5) * 1000),
            retry_options=None,
        )
        self._client = genai.Client(api_key=self._secret, http_options=http)

    async def _aclose(self) -> None:
        if self._client is not None:
            aclose = getattr(self._client.aio, "aclose", None)  # older SDKs have none
            if aclose is not None:
                await aclose()
            self._client = None

    async def _complete(self, prompt: str) -> Completion:
        from google.genai import types

        c = self.config
        cfg: dict[str, Any] = {}
        if c.temperature is not None:
            cfg["temperature"] = c.temperature
        if c.max_tokens is not None:
            cfg["max_output_tokens"] = c.max_tokens
        cfg["automatic_function_calling"] = types.AutomaticFunctionCallingConfig(disable=True)
        budget = self.thinking_budget()
        if budget is not None:
            cfg["thinking_config"] = types.ThinkingConfig(thinking_budget=budget)
        assert self._client is not None, "_complete runs between _open and _aclose"
        resp = await self._client.aio.models.generate_content(
            model=c.model, contents=prompt, config=types.GenerateContentConfig(**cfg)
        )
        text = reply_text(resp)
        meta = resp.usage_metadata
        prompt_tokens = int(getattr(meta, "prompt_token_count", 0) or 0)
        completion_tokens = int(getattr(meta, "candidates_token_count", 0) or 0) + int(
            getattr(meta, "thoughts_token_count", 0) or 0
        )
        return Completion(
            text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )

    def _classify(self, exc: BaseException) -> CallError:
        from google.genai import errors

        if isinstance(exc, CallError):
            return exc
        timeouts, transport = _http_error_types()
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError, *timeouts)):
            return CallError(
                f"timeout after {self.config.limits.timeout_s}s", retryable=True, kind="timeout"
            )
        if isinstance(exc, (ConnectionError, *transport)):
            return CallError(f"connection error: {exc}", retryable=True, kind="connection")
        if isinstance(exc, errors.APIError):
            status = int(exc.code or 0)
            headers = getattr(getattr(exc, "response", None), "headers", None) or {}
            retry_after = parse_retry_after(headers.get("retry-after"))
            retryable = status in (408, 409, 429) or status >= 500
            return CallError(
                f"HTTP {status}: {exc.message or exc.status}",
                retryable=retryable,
                retry_after=retry_after,
                kind="http",
                status=status,
            )
        if isinstance(exc, (json.JSONDecodeError, ValueError)):
            return CallError(f"malformed response: {exc}", retryable=True, kind="malformed")
        return super()._classify(exc)
