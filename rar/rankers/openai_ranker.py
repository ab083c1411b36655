"""OpenAI Chat Completions ranker (any OpenAI-compatible server via `base_url`: vLLM, Ollama,
llama.cpp). The SDK's own retries are off so our retry policy is the one that counts."""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any

from rar.errors import InputError
from rar.rankers.limits import parse_retry_after
from rar.rankers.prompt_ranker import CallError, Completion, PromptRanker
from rar.rankers.ranker_config import RankerConfig

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from rar.corpus import Corpus

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
PLACEHOLDER_KEY = "not-needed"  # sent to local servers that need no key


def read_api_key(
    env_name: str | None, default_env: str, base_url: str | None, placeholder: str
) -> str:
    """The API key from the environment only. Local servers (base_url set) may need none."""
    name = env_name or default_env
    key = os.environ.get(name)
    if key:
        return key
    if env_name is None and base_url:
        return placeholder  # local OpenAI-compatible servers usually ignore the key
    raise InputError(f"API key not found: set the environment variable {name} (ranker.api_key_env)")


def reply_text(resp: Any) -> str:
    """The reply's text; an answer without text (no choices, empty content) is an empty reply,
    which the server gave on purpose and is not retried."""
    if isinstance(resp, str):  # the SDK hands back a body it could not parse as JSON
        raise CallError(f"malformed response: {resp[:200]!r}", retryable=True, kind="malformed")
    if not resp.choices:
        raise CallError("empty reply (the server returned no choices)", False, kind="empty")
    choice = resp.choices[0]
    if not choice.message.content:
        reason = choice.finish_reason
        raise CallError(f"empty reply (finish_reason={reason})", retryable=False, kind="empty")
    return str(choice.message.content)


class OpenAIRanker(PromptRanker):
    backend = "openai"

    def __init__(self, config: RankerConfig, corpus: Corpus):
        super().__init__(config, corpus)
        self._api_key = read_api_key(
            config.api_key_env, DEFAULT_KEY_ENV, config.base_url, PLACEHOLDER_KEY
        )
        # a real key is a secret (scrubbed from messages and replies); the placeholder is not
        self._secret = None if self._api_key == PLACEHOLDER_KEY else self._api_key
        self._client: AsyncOpenAI | None = None  # per event loop: `_open` to `_aclose`

    def generation_params(self) -> dict[str, Any]:
        c = self.config
        return {
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
            "reasoning_effort": c.reasoning_effort,
            "base_url": c.base_url,
            "extra_body": dict(c.extra_body) or None,
        }

    async def _open(self) -> None:
        from openai import AsyncOpenAI

        self._client = AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.config.base_url,
            max_retries=0,
            timeout=max(self.config.limits.timeout_s, self.config.limits.max_timeout_s) + 5,
        )

    async def _aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _complete(self, prompt: str) -> Completion:
        c = self.config
        kwargs: dict[str, Any] = {
            "model": c.model,
            "messages": [{"role": "user", "content": prompt}],
        }
        if c.temperature is not None and c.reasoning_effort is None:
            kwargs["temperature"] = c.temperature
        if c.reasoning_effort is not None:
            kwargs["reasoning_effort"] = c.reasoning_effort
            if c.max_tokens is not None:
                kwargs["max_completion_tokens"] = c.max_tokens
        elif c.max_tokens is not None:
            kwargs["max_tokens"] = c.max_tokens
        if c.extra_body:
            kwargs["extra_body"] = dict(c.extra_body)  # engine-specific fields, e.g. cache_prompt
        assert self._client is not None, "_complete runs between _open and _aclose"
        resp = await self._client.chat.completions.create(**kwargs)
        usage = resp.usage
        return Completion(
            text=reply_text(resp),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )

    def _classify(self, exc: BaseException) -> CallError:
        import openai

        if isinstance(exc, CallError):
            return exc
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError, openai.APITimeoutError)):
            return CallError(
                f"timeout after {self.config.limits.timeout_s}s", retryable=True, kind="timeout"
            )
        if isinstance(exc, openai.APIConnectionError):
            return CallError(f"connection error: {exc}", retryable=True, kind="connection")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
            retryable = status in (408, 409, 429) or status >= 500
            return CallError(
                f"HTTP {status}: {exc.message}",
                retryable=retryable,
                retry_after=retry_after,
                kind="http",
                status=status,
            )
        if isinstance(exc, (openai.APIResponseValidationError, json.JSONDecodeError, ValueError)):
            return CallError(f"malformed response: {exc}", retryable=True, kind="malformed")
        return super()._classify(exc)
