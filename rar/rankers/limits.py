"""Rate limits and retry timing for remote rankers (requests/min, tokens/min, backoff)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass


class AsyncRateLimiter:
    """Token bucket refilled at `per_minute / 60` units per second (capacity = one minute).

    The bucket outlives event loops (the sync `rank()` runs one loop per call), so a limit
    holds across many small batches; only the lock is per loop.
    """

    def __init__(self, per_minute: float, capacity: float | None = None):
        self.rate = per_minute / 60.0
        self.capacity = capacity if capacity is not None else per_minute
        self.level = self.capacity
        self.updated = time.monotonic()
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    async def acquire(self, amount: float = 1.0) -> float:
        """Wait until `amount` units are available and take them; returns seconds waited."""
        amount = min(amount, self.capacity)  # one huge request must still pass eventually
        waited = 0.0
        async with self._loop_lock():
            while True:
                self._refill()
                if self.level >= amount:
                    self.level -= amount
                    return waited
                delay = (amount - self.level) / self.rate
                await asyncio.sleep(delay)
                waited += delay

    def refund(self, amount: float) -> None:
        """Give back units reserved for an estimate that turned out too high."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)


@dataclass
class RetryPolicy:
    max_retries: int = 4
    base_s: float = 1.0
    max_s: float = 30.0
    jitter: float = 0.25
    max_retry_after_s: float = 120.0

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Delay before retry number `attempt` (1-based): exponential + jitter, or the server's
        Retry-After when it asks for longer."""
        draw = rng.random() if rng is not None else random.random()
        backoff = min(self.max_s, self.base_s * (2.0 ** (attempt - 1)))
        backoff *= 1.0 + self.jitter * (2 * draw - 1)
        if retry_after is not None:
            return max(backoff, min(retry_after, self.max_retry_after_s))
        return max(0.0, backoff)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or HTTP date), else None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
