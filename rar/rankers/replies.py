"""What of a model's reply may be kept: the configured API key redacted and the size capped,
before the reply reaches the parser, the response cache, the results or the samples files.

A server that echoes the key back, or sends a 50 MB reply, must not get either written to disk
(issue 24, items 9 and 12). The reply is redacted first and cut second, so a cut can never leave
part of a key behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("rar.rankers")

REDACTED = "[redacted]"  # not "***", which the parser reads as markdown emphasis
MIN_SECRET_CHARS = 8  # shorter "keys" (placeholders for local servers) would mangle replies


@dataclass(frozen=True)
class StoredReply:
    """A reply as it may be stored: `text`, and what was done to it."""

    text: str
    original_chars: int  # the reply's length as received
    redacted: int = 0  # occurrences of the API key replaced by "[redacted]"
    truncated: bool = False  # cut to the configured maximum


@dataclass(frozen=True)
class ModelReply:
    """One model reply as a request receives it (`PromptRanker.cached_completion`): its stored
    text, tokens, cost and attempts (`usage`), latency, and whether it came from the cache."""

    text: str
    usage: dict[str, Any]
    latency_s: float
    cached: bool


def redact(text: str, secret: str | None) -> tuple[str, int]:
    """`text` with every occurrence of `secret` replaced by "[redacted]", and how many there were."""
    if not secret or len(secret) < MIN_SECRET_CHARS or secret not in text:
        return text, 0
    return text.replace(secret, REDACTED), text.count(secret)


def storable(text: str, secret: str | None, max_chars: int) -> StoredReply:
    """The reply redacted of `secret`, then cut to `max_chars` characters (both logged)."""
    clean, n = redact(text, secret)
    if n:
        log.warning("the ranker server echoed the API key in a reply; it was redacted")
    if len(clean) <= max_chars:
        return StoredReply(clean, len(text), n)
    log.warning(
        "a ranker reply of %d characters was cut to ranker.max_reply_chars=%d", len(text), max_chars
    )
    return StoredReply(clean[:max_chars], len(text), n, truncated=True)
