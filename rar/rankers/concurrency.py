"""Client-side protection for servers whose capacity we do not know: an AIMD concurrency
controller, a retry budget and a circuit breaker.

A one-slot server (llama.cpp and Ollama by default) answers one request at a time; sending
16 at once only queues them on the server, where their client timeouts expire and their
retries queue again. So the client starts low and finds the capacity itself:

- :class:`AIMDController` grows the number of requests in flight while replies come back
  about as fast as the fastest one seen (the server is not queueing them), holds or eases
  off when latency shows queueing, and halves on overload signals (timeouts, 429, 503,
  connection errors). `max_in_flight` is only a ceiling.
- :class:`RetryBudget` caps retries at a share of first attempts over a sliding window, so a
  slow or dead server never gets a retry storm.
- :class:`CircuitBreaker` counts consecutive "server unavailable" failures with no success
  in between; once they persist (at least `threshold` failures and `open_after_s` seconds)
  the run stops with :class:`RankerUnavailable`. Until then requests wait for backoff probes,
  so a server restart of a few seconds is ridden out. A server that accepts connections and
  never answers gives only timeouts, which grow: it stops the run as :class:`RankerHung` once a
  request has spent its retries or `limits.max_call_s` on them with no reply to any call for
  `open_after_s` (`rar.rankers.ranker_calls`).

The three classes are pure (time is passed in), so they are tested deterministically;
:class:`AdaptiveGate` is the asyncio side that admits requests up to the current limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from rar.errors import RarError


class RankerUnavailable(RarError, RuntimeError):
    """The ranker's server is clearly down: stop the run (replies so far are cached)."""

    exit_code = 3

    def __init__(self, url: str, failures: int, last_error: str, seconds: float | None = None):
        self.url = url
        self.failures = failures
        self.last_error = last_error
        self.seconds = seconds
        super().__init__(self.describe())

    def describe(self) -> str:
        """The one line the CLI prints."""
        over = f" over {self.seconds:.0f} s" if self.seconds is not None else ""
        return (
            f"ranker server {self.url} is unavailable: {self.failures} consecutive failed calls"
            f"{over} with no success (last error: {self.last_error}); start the server and rerun "
            "to resume from the cache"
        )


class RankerHung(RankerUnavailable):
    """The server accepts connections but answers nothing: a request spent its retries or its
    `limits.max_call_s` on timeouts while no call got a reply for `breaker_open_after_s`."""

    def describe(self) -> str:
        return (
            f"ranker server {self.url} accepts connections but answered no call for "
            f"{self.seconds or 0:.0f} s ({self.failures} failed calls, last error: "
            f"{self.last_error}); restart the server (if it is only slow, raise "
            "ranker.limits.timeout_s or max_call_s) and rerun to resume from the cache"
        )


@dataclass
class AIMDController:
    """Additive-increase / multiplicative-decrease limit on requests in flight.

    Slow start: +1 per fast success until the first sign of congestion (the limit then
    doubles per round trip on a server with spare slots); afterwards +1/limit per fast
    success (about +1 per round trip). A success is *fast* when its latency is at most
    `grow_tolerance` x the best latency observed. A success slower than `queue_tolerance` x
    best means the server queues our requests: the limit eases by `queue_backoff`.
    Overload (timeout, 429, 503, connection error) multiplies the limit by `backoff`.
    Decreases apply at most once per round trip: only requests sent after the last decrease
    may cause another (the ones already in flight saw the old limit).
    """

    ceiling: int
    initial: int = 2
    floor: int = 1
    grow_tolerance: float = 1.5
    queue_tolerance: float = 3.0
    queue_backoff: float = 0.9
    backoff: float = 0.5

    def __post_init__(self) -> None:
        self.ceiling = max(1, self.ceiling)
        self.floor = max(1, min(self.floor, self.ceiling))
        self.limit = float(min(self.ceiling, max(self.floor, self.initial)))
        self.best_latency: float | None = None
        self.slow_start = True
        self.last_decrease_at = float("-inf")

    @property
    def allowed(self) -> int:
        """Requests that may be in flight now."""
        return max(self.floor, min(self.ceiling, int(self.limit)))

    def on_success(self, latency_s: float, sent_at: float) -> None:
        if self.best_latency is None or latency_s < self.best_latency:
            self.best_latency = latency_s
        best = max(self.best_latency, 1e-6)
        if latency_s <= self.grow_tolerance * best:
            step = 1.0 if self.slow_start else 1.0 / max(self.limit, 1.0)
            self.limit = min(float(self.ceiling), self.limit + step)
            return
        self.slow_start = False
        if latency_s >= self.queue_tolerance * best:
            self._decrease(self.queue_backoff, sent_at)

    def on_overload(self, sent_at: float) -> None:
        """A timeout, 429, 503 or connection error."""
        self.slow_start = False
        self._decrease(self.backoff, sent_at)

    def _decrease(self, factor: float, sent_at: float) -> None:
        if sent_at < self.last_decrease_at:
            return  # already cut for this round trip
        self.limit = max(float(self.floor), self.limit * factor)
        self.last_decrease_at = sent_at


@dataclass
class RetryBudget:
    """Retries allowed over the last `window_s` seconds: `ratio` x first attempts + `min_retries`."""

    ratio: float = 0.2
    min_retries: int = 10
    window_s: float = 60.0

    def __post_init__(self) -> None:
        self._attempts: deque[float] = deque()  # times of first attempts
        self._retries: deque[float] = deque()  # times of granted retries

    def _expire(self, now: float) -> None:
        for times in (self._attempts, self._retries):
            while times and times[0] <= now - self.window_s:
                times.popleft()

    def record_attempt(self, now: float) -> None:
        """A request's first call."""
        self._expire(now)
        self._attempts.append(now)

    def try_retry(self, now: float) -> bool:
        """Take one retry from the budget; False when it is spent (fail the request instead)."""
        self._expire(now)
        if len(self._retries) >= self.ratio * len(self._attempts) + self.min_retries:
            return False
        self._retries.append(now)
        return True


@dataclass
class CircuitBreaker:
    """Opens when the server has been failing for a while, not after a burst of errors.

    A failure streak starts at the first "unavailable" failure (connection error, 5xx,
    timeout) after a success. The breaker trips only when the streak is both at least
    `threshold` failures long and at least `open_after_s` seconds old, so a server restart of a
    few seconds (connection refused, then 503 while the model loads) is ridden out, while a
    dead server stops the run about `open_after_s` after it went away. `threshold` 0 = never.

    While a streak lasts, requests do not retry on their own schedule: they wait for a probe
    slot (:meth:`probe_delay`: `probe_base_s`, doubling up to `probe_max_s`), so a down server
    sees about one request per probe interval instead of a retry storm, and the first success
    closes the streak for every waiting request.
    """

    threshold: int = 10
    open_after_s: float = 60.0
    probe_base_s: float = 0.5
    probe_max_s: float = 5.0

    def __post_init__(self) -> None:
        self.consecutive = 0
        self.first_failure_at: float | None = None
        self.last_error = ""
        self.probes = 0  # probe delays handed out in this streak
        self.streak_s = 0.0  # the streak's length at its last failure
        self.answered_at: float | None = None  # the server's last answer (None = none yet)

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    @property
    def failing(self) -> bool:
        """A failure streak is open (no success since the last unavailability failure)."""
        return self.consecutive > 0

    def on_success(self, now: float | None = None) -> None:
        """The server answered (a reply, or an error that only a live server gives)."""
        self.answered_at = time.monotonic() if now is None else now
        self._reset()

    def silent_since(self, since: float, now: float | None = None) -> float | None:
        """Seconds from `since` to now when the server answered nothing in between, else None."""
        if self.answered_at is not None and self.answered_at >= since:
            return None
        return max(0.0, (time.monotonic() if now is None else now) - since)

    def _reset(self) -> None:
        self.consecutive = 0
        self.first_failure_at = None
        self.probes = 0
        self.streak_s = 0.0

    def on_unavailable(self, error: str, now: float | None = None) -> bool:
        """Count one failure; True when the breaker trips (then it resets for a later run)."""
        now = time.monotonic() if now is None else now
        if self.first_failure_at is None:
            self.first_failure_at = now
        self.consecutive += 1
        self.last_error = error
        self.streak_s = self.elapsed(now)
        return (
            self.enabled
            and self.consecutive >= self.threshold
            and (self.streak_s >= self.open_after_s)
        )

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the streak's first failure (0 without a streak)."""
        if self.first_failure_at is None:
            return 0.0
        now = time.monotonic() if now is None else now
        return max(0.0, now - self.first_failure_at)

    def trip_reset(self) -> tuple[int, float]:
        """(failures, seconds) of the streak that tripped; resets for a later run."""
        out = (self.consecutive, self.streak_s)
        self._reset()
        return out

    def probe_delay(self) -> float:
        """Seconds the next probe waits: `probe_base_s` doubling per probe, up to `probe_max_s`."""
        delay = min(self.probe_max_s, self.probe_base_s * (2.0 ** min(self.probes, 30)))
        self.probes += 1
        return delay


class AdaptiveGate:
    """Admits requests while fewer than `controller.allowed` are in flight.

    The controller (the learned capacity) outlives event loops: the sync `rank()` runs one
    loop per batch, so only the condition variable is per loop.
    """

    def __init__(self, controller: AIMDController):
        self.controller = controller
        self.in_flight = 0
        self._cond: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _condition(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._cond is None or self._loop is not loop:
            self._cond, self._loop = asyncio.Condition(), loop
            self.in_flight = 0  # a new loop: nothing of an old loop is still running
        return self._cond

    async def acquire(self) -> None:
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < self.controller.allowed)
            self.in_flight += 1

    async def release(self) -> None:
        cond = self._condition()
        async with cond:
            self.in_flight -= 1
            cond.notify_all()  # the limit may have grown by more than one

    async def notify(self) -> None:
        """Wake waiters after the limit changed."""
        cond = self._condition()
        async with cond:
            cond.notify_all()


class ThroughputMeter:
    """Successful calls and tokens over the last `window_s` seconds (the progress bar's
    server-throughput figures)."""

    def __init__(self, window_s: float = 60.0):
        self.window_s = window_s
        self._events: deque[tuple[float, int]] = deque()  # (time, tokens)
        self._started: float | None = None

    def record(self, tokens: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._started is None:
            self._started = now
        self._events.append((now, tokens))
        while self._events and self._events[0][0] <= now - self.window_s:
            self._events.popleft()

    def start(self, now: float | None = None) -> None:
        """Begin measuring (a batch starts); earlier events stay in the window."""
        now = time.monotonic() if now is None else now
        if self._started is None or not self._events:
            self._started = now

    def rates(self, now: float | None = None) -> tuple[float, float]:
        """(calls per minute, tokens per second) over the window (or since the start)."""
        now = time.monotonic() if now is None else now
        while self._events and self._events[0][0] <= now - self.window_s:
            self._events.popleft()
        if self._started is None:
            return 0.0, 0.0
        span = max(1e-6, min(self.window_s, now - self._started))
        tokens = sum(t for _, t in self._events)
        return 60.0 * len(self._events) / span, tokens / span
