"""How a prompt ranker's model calls go out: one call under the adaptive concurrency gate and
the RPM/TPM rate limits, with a timeout that grows on timeouts and shrinks back after fast
answers; retries with backoff within the retry budget; waiting out an outage (a restart, a
model still loading) behind one probe at a time; the circuit breaker that stops the run when
the server is down. `RankerCalls` holds that state for one ranker, across every batch;
`Completion` is a reply, `CallError` a failed call (what every backend raises)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any, Literal

from rar.rankers.base import RankerStats
from rar.rankers.concurrency import (
    AdaptiveGate,
    AIMDController,
    CircuitBreaker,
    RankerHung,
    RankerUnavailable,
    RetryBudget,
    ThroughputMeter,
)
from rar.rankers.limits import AsyncRateLimiter, RetryPolicy
from rar.rankers.ranker_config import LimitsConfig

log = logging.getLogger("rar.rankers")


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


CallKind = Literal["timeout", "connection", "http", "malformed", "empty", "other"]


@dataclass(eq=False)
class CallError(Exception):
    """A backend call failed; `retryable` says whether trying again may help.

    `kind` says what failed and `status` the HTTP status, so the concurrency controller and the
    circuit breaker can tell an overloaded or dead server from a bad request; `attempts` is how
    many calls the request made before it gave up (set by `RankerCalls`).
    """

    message: str
    retryable: bool
    retry_after: float | None = None
    kind: CallKind = "other"
    status: int | None = None
    attempts: int = 1

    def __post_init__(self) -> None:
        super().__init__(self.message)  # str(err) is the message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[CallError], tuple[Any, ...]]:
        """Pickle by fields (Exception's default would rebuild from the message alone)."""
        return type(self), tuple(getattr(self, f.name) for f in fields(self))

    @property
    def overload(self) -> bool:
        """The server is saturated: send less (timeouts, 429, 503, connection errors)."""
        return self.kind in ("timeout", "connection") or self.status in (429, 503)

    @property
    def outage(self) -> bool:
        """The server is not there or not ready (connection refused/reset, 502/503/504, e.g.
        a restart or a model still loading): wait for it instead of spending retries."""
        return self.kind == "connection" or self.status in (502, 503, 504)

    @property
    def unavailable(self) -> bool:
        """The server may be down (connection refused, 5xx, timeouts): counts for the breaker."""
        return self.kind in ("timeout", "connection") or (self.status or 0) >= 500


def classify(exc: BaseException, timeout_s: float) -> CallError:
    """Map an exception to retryable or not (timeouts and connection errors retry): the
    default every backend's `_classify` falls back to."""
    if isinstance(exc, CallError):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return CallError(f"timeout after {timeout_s}s", retryable=True, kind="timeout")
    if isinstance(exc, ConnectionError):
        return CallError(f"{type(exc).__name__}: {exc}", retryable=True, kind="connection")
    return CallError(f"{type(exc).__name__}: {exc}", retryable=False)


@dataclass
class CallClock:
    """One request's wait for a reply against `limits.max_call_s`: the time its attempts and
    backoffs took (not its waits at our own gate, rate limits or outage probes), and when its
    first attempt went out (a server silent since then may be hung)."""

    max_s: float
    spent: float = 0.0
    first_sent: float | None = None

    @property
    def left(self) -> float:
        return self.max_s - self.spent


class RankerCalls:
    """One ranker's call state: rate limiters, learned capacity, retry budget, breaker and the
    current timeout persist across batches. The ranker passes in how to classify a backend
    exception, scrub secrets from messages and name its server; calls, retries and outage
    waits are counted in its `stats`."""

    def __init__(
        self,
        limits: LimitsConfig,
        ceiling: int,
        stats: RankerStats,
        classify: Callable[[BaseException], CallError],
        scrub: Callable[[str], str],
        server_url: Callable[[], str],
    ):
        lim = self.limits = limits
        self._stats = stats
        self._classify = classify
        self._scrub = scrub
        self._server_url = server_url
        self.retry = RetryPolicy(
            lim.max_retries,
            lim.backoff_base_s,
            lim.backoff_max_s,
            lim.jitter,
            lim.max_retry_after_s,
        )
        self._rng = random.Random(0)
        self.rpm = AsyncRateLimiter(lim.rpm) if lim.rpm else None  # shared by every batch
        self.tpm = AsyncRateLimiter(lim.tpm) if lim.tpm else None
        if lim.adaptive:
            self.controller = AIMDController(ceiling=ceiling, initial=lim.initial_in_flight)
        else:  # fixed: floor = ceiling, so it never grows or shrinks
            self.controller = AIMDController(ceiling=ceiling, initial=ceiling, floor=ceiling)
        self.gate = AdaptiveGate(self.controller)
        self.retry_budget = RetryBudget(
            lim.retry_budget_ratio, lim.retry_budget_min, lim.retry_budget_window_s
        )
        self.breaker = CircuitBreaker(
            lim.breaker_failures, lim.breaker_open_after_s, lim.probe_base_s, lim.probe_max_s
        )
        self.timeout_s = lim.timeout_s  # the current per-call timeout (grows on timeouts)
        self._probe_locks: dict[int, asyncio.Lock] = {}  # per event loop: one probe at a time
        self.meter = ThroughputMeter()

    async def send(
        self,
        complete: Callable[[], Awaitable[Completion]],
        estimate: float,
        clock: CallClock | None = None,
    ) -> Completion:
        """One call under the concurrency gate and rate limits. The timeout counts from the
        send (waiting for our own gate or rate limiter never eats into it) and is cut to what
        is left of the request's `clock`."""
        clock = clock or CallClock(self.limits.max_call_s)
        await self.gate.acquire()
        try:
            if self.breaker.failing and self.breaker.enabled:
                await self.wait_for_server()  # the server is down: queue behind the probe
            if self.rpm is not None:
                await self.rpm.acquire(1)
            if self.tpm is not None:
                await self.tpm.acquire(estimate)
            sent_at = time.monotonic()
            clock.first_sent = clock.first_sent or sent_at
            self._stats.calls += 1
            timeout = min(self.timeout_s, clock.left)
            try:
                reply = await asyncio.wait_for(complete(), timeout)
            except Exception as exc:  # classified; only the breaker's exception escapes
                clock.spent += time.monotonic() - sent_at
                if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
                    err = CallError(f"timeout after {timeout:g}s", retryable=True, kind="timeout")
                    if timeout >= self.timeout_s:  # not cut short by the request's clock
                        self.grow_timeout(timeout)
                else:
                    err = self._classify(exc)
                self.on_call_failed(err, sent_at)
                raise err from None
            latency = time.monotonic() - sent_at
            self.timeout_s = max(self.limits.timeout_s, min(self.timeout_s, 4 * latency))
            self.controller.on_success(latency, sent_at)
            self.breaker.on_success()
            used = reply.prompt_tokens + reply.completion_tokens
            self.meter.record(used)
            if self.tpm is not None and used and used < estimate:
                self.tpm.refund(estimate - used)
            return reply
        finally:
            await self.gate.release()

    def grow_timeout(self, used: float) -> None:
        """A call timed out after `used` s: give later calls longer (a slow, not a dead,
        server answers them; a dead one refuses connections and meets the breaker)."""
        lim = self.limits
        grown = min(lim.max_timeout_s, max(self.timeout_s, used * lim.timeout_growth))
        if grown > self.timeout_s:
            log.warning("ranker call timed out after %gs; timeout raised to %gs", used, grown)
            self.timeout_s = grown

    def on_call_failed(self, err: CallError, sent_at: float) -> None:
        """Feed a failed call to the controller and the breaker; raise when the server is down."""
        if err.overload:
            self.controller.on_overload(sent_at)
        if not err.unavailable:
            self.breaker.on_success()  # the server answered (e.g. HTTP 400): it is up
        elif self.breaker.on_unavailable(self._scrub(str(err))):
            failures, seconds = self.breaker.trip_reset()
            raise RankerUnavailable(self._server_url(), failures, self._scrub(str(err)), seconds)

    def probe_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._probe_locks.get(id(loop))
        if lock is None:
            self._probe_locks = {id(loop): (lock := asyncio.Lock())}  # old loops are gone
        return lock

    async def wait_for_server(self) -> None:
        """The server refused or is not ready: wait for the next probe slot. One request
        waits per probe interval (doubling up to `limits.probe_max_s`); the others queue
        behind it and go at once when a call succeeds, closing the failure streak."""
        async with self.probe_lock():
            if self.breaker.failing:
                await asyncio.sleep(self.breaker.probe_delay())

    async def call_with_retries(
        self, complete: Callable[[], Awaitable[Completion]], estimate: float
    ) -> tuple[Completion, int]:
        """Call until success, a non-retryable error, or the retry limit, `limits.max_call_s` or
        the retry budget is spent; returns (reply, attempts). `complete` makes one fresh
        backend call."""
        self.retry_budget.record_attempt(time.monotonic())
        clock = CallClock(self.limits.max_call_s)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.send(complete, estimate, clock), attempt
            except CallError as exc:
                err = exc
            if err.retryable and err.outage and self.breaker.enabled and clock.left > 0:
                # a restart or a dead server: no retry of our own (nor retry budget); wait
                # for a probe slot until the server answers or the breaker trips
                self._stats.outage_retries += 1
                attempt -= 1
                log.info("ranker server unavailable (%s); waiting for it", self._scrub(str(err)))
                continue
            delay = self.retry_delay(err, attempt, clock)  # or the error that ends the request
            self._stats.retries += 1
            log.info(
                "ranker call failed (%s); retry %d in %.2fs", self._scrub(str(err)), attempt, delay
            )
            clock.spent += delay
            await asyncio.sleep(delay)

    def retry_delay(self, err: CallError, attempt: int, clock: CallClock) -> float:
        """The backoff before retrying after failed attempt `attempt`. Raises the error that
        ends the request instead: not retryable, retries spent, no time left within
        `limits.max_call_s`, or the retry budget spent (RankerHung when the server is hung)."""
        final = err
        if err.retryable and attempt <= self.retry.max_retries:
            delay = self.retry.delay(attempt, err.retry_after, self._rng)
            if clock.left <= delay:
                limit = f"limits.max_call_s = {self.limits.max_call_s:g} s"
                final = CallError(f"{err}; no reply within {limit}", False, kind=err.kind)
            elif not self.retry_budget.try_retry(time.monotonic()):
                self._stats.retries_denied += 1
                final = CallError(f"{err} (retry budget spent)", retryable=False, kind=err.kind)
            else:
                return delay
        final.attempts = attempt
        self.check_hung(final, clock)
        raise final

    def check_hung(self, err: CallError, clock: CallClock) -> None:
        """A request that ends on a timeout while the server has answered no call since its
        first attempt, for at least `breaker_open_after_s`, meets a server that accepts
        connections and never answers: stop the run (its timeouts only grow)."""
        if err.kind != "timeout" or not self.breaker.enabled or clock.first_sent is None:
            return
        silent = self.breaker.silent_since(clock.first_sent)
        if silent is not None and silent >= self.limits.breaker_open_after_s:
            failures, _ = self.breaker.trip_reset()
            raise RankerHung(self._server_url(), failures, self._scrub(str(err)), silent)
