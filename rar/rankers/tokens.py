"""Prompt token counters: the model's own tokenizer where one is available, an estimate elsewhere.

The budget and the context-window check (`rar.rankers.budget`) need the size of a prompt before it
is sent. A counter is exact when it uses the model's tokenizer and chat template; the estimate
(characters / 4, plus the configured chat-template overhead) is what API models get, whose
tokenizers are not available offline.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rar.errors import InputError, MissingPathError

CHARS_PER_TOKEN = 4.0


@dataclass
class TokenCounter:
    """`count(prompt)` = tokens the model sees for the prompt as one user message."""

    name: str
    exact: bool  # True when the model's own tokenizer (and chat template) counts
    _count: Callable[[str], int]
    context_window: int | None = None  # the model's window, when the tokenizer knows it

    def count(self, prompt: str) -> int:
        return int(self._count(prompt))


def estimate_counter(overhead: int) -> TokenCounter:
    """characters / 4, rounded up, plus the chat-template overhead."""
    return TokenCounter(
        "estimate (chars/4)", False, lambda text: math.ceil(len(text) / CHARS_PER_TOKEN) + overhead
    )


def transformers_counter(tokenizer: Any, name: str, overhead: int) -> TokenCounter:
    """Counts with a transformers tokenizer; with its chat template when it has one (exact)."""
    if getattr(tokenizer, "chat_template", None):

        def count(text: str) -> int:
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=True, add_generation_prompt=True
            )
            if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                ids = ids["input_ids"]
            return len(ids)

        return TokenCounter(name, True, count)
    return TokenCounter(
        name, False, lambda text: len(tokenizer(text, add_special_tokens=True).input_ids) + overhead
    )


def gguf_counter(path: str | Path, overhead: int) -> TokenCounter:
    """Counts with a GGUF file's tokenizer and chat template, as llama-cpp-python's server does
    (vocabulary only: loads in well under a second); the window is the file's trained length."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"tokenizer GGUF file not found: {path} (ranker.prompt.tokenizer)")
    try:
        from llama_cpp import Llama
    except ImportError:
        raise ImportError(
            f"counting tokens with {path} needs llama-cpp-python; install it, or set "
            "ranker.prompt.tokenizer to a transformers tokenizer or 'estimate'"
        ) from None
    vocab = Llama(str(path), vocab_only=True, verbose=False)
    arch = vocab.metadata.get("general.architecture", "llama")
    trained = vocab.metadata.get(f"{arch}.context_length")
    window = int(trained) if trained else None
    template = vocab.metadata.get("tokenizer.chat_template")
    if not template:

        def count_text(text: str) -> int:
            return len(vocab.tokenize(text.encode("utf-8"), add_bos=True, special=False)) + overhead

        return TokenCounter(f"gguf:{path.name}", False, count_text, window)
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def token_text(token_id: int) -> str:
        return vocab._model.token_get_text(token_id) if token_id != -1 else ""

    # the same formatter llama-cpp-python's server applies to a chat request
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=token_text(vocab.token_eos()),
        bos_token=token_text(vocab.token_bos()),
    )

    def count_chat(text: str) -> int:
        result = formatter(messages=[{"role": "user", "content": text}])
        tokens = vocab.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        return len(tokens)

    return TokenCounter(f"gguf:{path.name}", True, count_chat, window)


def build_counter(spec: str | None, overhead: int) -> TokenCounter:
    """The counter `ranker.prompt.tokenizer` names (None and 'estimate' = the estimate)."""
    if spec is None or spec == "estimate":
        return estimate_counter(overhead)
    if spec.endswith(".gguf"):
        return gguf_counter(spec, overhead)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(spec)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"ranker.prompt.tokenizer {spec!r}: cannot load a tokenizer ({exc}); expected "
            "'estimate', a .gguf file or a transformers tokenizer id/directory"
        ) from None
    return transformers_counter(tokenizer, spec, overhead)
