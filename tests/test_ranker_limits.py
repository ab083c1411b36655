"""Retry timing, Retry-After parsing and the rate limiter (token bucket)."""

from __future__ import annotations

import asyncio
import random
import time
from email.utils import formatdate

from rar.rankers.limits import AsyncRateLimiter, RetryPolicy, parse_retry_after


def test_backoff_is_exponential_capped_and_jittered():
    policy = RetryPolicy(max_retries=5, base_s=1.0, max_s=5.0, jitter=0.0)
    assert [policy.delay(a) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    jittered = RetryPolicy(base_s=1.0, jitter=0.25)
    rng = random.Random(0)
    delays = [jittered.delay(1, rng=rng) for _ in range(200)]
    assert 0.75 <= min(delays) < 0.8 and 1.2 < max(delays) <= 1.25


def test_retry_after_wins_when_longer_and_is_capped():
    policy = RetryPolicy(base_s=0.1, jitter=0.0, max_retry_after_s=10.0)
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=0.01) == 0.1
    assert policy.delay(1, retry_after=500.0) == 10.0


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert 8 <= parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10


def test_rate_limiter_spaces_requests():
    async def run() -> float:
        limiter = AsyncRateLimiter(per_minute=600, capacity=2)  # 10/s after a burst of 2
        start = time.monotonic()
        for _ in range(6):
            await limiter.acquire(1)
        return time.monotonic() - start

    elapsed = asyncio.run(run())
    assert elapsed >= 0.35  # 4 tokens beyond the burst at 10/s


def test_oversized_request_still_passes():
    async def run() -> float:
        limiter = AsyncRateLimiter(per_minute=6000, capacity=100)
        return await limiter.acquire(10_000)

    assert asyncio.run(run()) == 0.0


def test_bucket_state_carries_across_event_loops():
    limiter = AsyncRateLimiter(per_minute=600, capacity=2)
    asyncio.run(limiter.acquire(2))  # the burst is spent in one loop ...
    start = time.monotonic()
    asyncio.run(limiter.acquire(1))  # ... so the next loop has to wait for a refill
    assert time.monotonic() - start >= 0.05
