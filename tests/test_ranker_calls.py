"""`rar.rankers.ranker_calls`: the typed `CallError` and how one request's attempts are bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
import re
from pathlib import Path

import pytest

from rar.rankers.base import RankerStats
from rar.rankers.ranker_calls import CallError, Completion, RankerCalls
from rar.rankers.ranker_config import LimitsConfig

RANKERS = Path(__file__).resolve().parents[1] / "rar" / "rankers"


def test_call_error_has_typed_fields_not_monkeypatched_attributes():
    names = {f.name: f.type for f in dataclasses.fields(CallError)}
    assert names["attempts"] == "int" and names["kind"] == "CallKind"
    err = CallError("HTTP 500: boom", retryable=True, kind="http", status=500, attempts=3)
    assert str(err) == "HTTP 500: boom" and err.attempts == 3
    back = pickle.loads(pickle.dumps(err))
    assert (back.message, back.status, back.attempts, back.kind) == (
        "HTTP 500: boom",
        500,
        3,
        "http",
    )
    # nothing reads a CallError's fields back by duck typing or sets one the type does not declare
    for path in RANKERS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"getattr\(err\w*,", text), path
        assert "attempts = attempt  # type: ignore" not in text, path


def calls(**limits) -> RankerCalls:
    lim = LimitsConfig(backoff_base_s=0.0, jitter=0.0, **limits)
    return RankerCalls(lim, 1, RankerStats(), lambda e: e, lambda s: s, lambda: "http://x")


def test_attempts_are_counted_on_the_error_that_ends_a_request():
    async def fail() -> Completion:
        raise CallError("HTTP 500: boom", retryable=True, kind="http", status=500)

    rc = calls(max_retries=2, breaker_failures=0)
    with pytest.raises(CallError) as info:
        asyncio.run(rc.call_with_retries(fail, 1.0))
    assert info.value.attempts == 3
