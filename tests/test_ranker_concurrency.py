"""The AIMD concurrency controller, retry budget, circuit breaker and throughput meter as pure
classes: time is passed in, so every step is deterministic."""

from __future__ import annotations

import asyncio

import pytest

from rar.rankers.concurrency import (
    AdaptiveGate,
    AIMDController,
    CircuitBreaker,
    RetryBudget,
    ThroughputMeter,
)


def test_starts_low_and_max_in_flight_is_only_a_ceiling():
    c = AIMDController(ceiling=16, initial=2)
    assert c.allowed == 2
    assert AIMDController(ceiling=1, initial=2).allowed == 1


def test_slow_start_then_additive_growth_while_latency_holds():
    c = AIMDController(ceiling=16, initial=2)
    for t in range(4):  # slow start: +1 per fast success
        c.on_success(1.0, sent_at=float(t))
    assert c.allowed == 6 and c.slow_start
    c.on_success(1.6, sent_at=5.0)  # above 1.5 x best: queueing begins, slow start ends
    assert not c.slow_start and c.allowed == 6
    for t in range(6):  # congestion avoidance: +1/limit per success, about +1 per round trip
        c.on_success(1.0, sent_at=10.0 + t)
    assert c.allowed == 6 and c.limit == pytest.approx(7.0, abs=0.1)
    for t in range(200):
        c.on_success(1.0, sent_at=100.0 + t)
    assert c.allowed == 16  # never past the ceiling


def test_overload_halves_once_per_round_trip_down_to_the_floor():
    c = AIMDController(ceiling=16, initial=8)
    c.on_overload(sent_at=10.0)
    assert c.allowed == 4
    c.on_overload(sent_at=9.0)  # sent before the cut: it saw the old limit, no second cut
    assert c.allowed == 4
    c.on_overload(sent_at=10.5)
    assert c.allowed == 2
    for t in range(5):
        c.on_overload(sent_at=11.0 + t)
    assert c.allowed == 1  # the floor


def test_one_slot_server_settles_at_two():
    """A one-slot server answers in c x S with c requests in flight: the limit must not grow
    past the point where replies queue (3 x best eases it back)."""
    service = 1.0
    c = AIMDController(ceiling=16, initial=2)
    now = 0.0
    seen = []
    for _ in range(60):
        in_flight = c.allowed
        latency = service * in_flight if seen else service  # the first reply found no queue
        now += service
        c.on_success(latency, sent_at=now - latency)
        seen.append(c.allowed)
    assert max(seen[10:]) <= 3 and seen[-1] in (2, 3)


def test_fixed_mode_never_moves():
    c = AIMDController(ceiling=16, initial=16, floor=16)
    c.on_overload(sent_at=1.0)
    c.on_success(100.0, sent_at=2.0)
    assert c.allowed == 16


def test_retry_budget_caps_retries_over_a_sliding_window():
    b = RetryBudget(ratio=0.2, min_retries=3, window_s=60.0)
    for _ in range(10):
        b.record_attempt(now=0.0)
    granted = sum(b.try_retry(now=1.0) for _ in range(100))
    assert granted == 5  # 0.2 x 10 + 3
    assert not b.try_retry(now=59.0)
    assert b.try_retry(now=61.5)  # the window slid past the old retries (and attempts)
    assert sum(b.try_retry(now=61.5) for _ in range(10)) == 2  # min_retries only, now


def test_breaker_trips_after_consecutive_failures_and_a_success_resets_it():
    br = CircuitBreaker(threshold=3, open_after_s=0.0)
    assert not br.on_unavailable("e1", now=0.0) and not br.on_unavailable("e2", now=0.0)
    br.on_success()
    assert not br.on_unavailable("e3", now=1.0) and not br.on_unavailable("e4", now=1.0)
    assert br.on_unavailable("connection refused", now=1.0)
    assert br.last_error == "connection refused"
    assert br.trip_reset() == (3, 0.0) and br.consecutive == 0  # reset for a later run
    never = CircuitBreaker(threshold=0)
    assert not any(never.on_unavailable("x", now=float(t)) for t in range(100))


def test_breaker_needs_failures_that_persist_for_open_after_s():
    """A burst of errors (a restart refusing connections) does not trip it; a streak that
    lasts open_after_s with at least threshold failures does, and a success in between resets
    the clock."""
    br = CircuitBreaker(threshold=10, open_after_s=60.0)
    assert not any(br.on_unavailable("refused", now=0.1 * i) for i in range(50))  # 5 s burst
    br.on_success()  # the restarted server answered
    assert br.elapsed(now=100.0) == 0.0 and not br.failing
    trips = [br.on_unavailable("refused", now=100.0 + 5 * i) for i in range(14)]
    assert trips.index(True) == 12  # t = 160: 60 s after the streak began, 13 failures
    slow = CircuitBreaker(threshold=10, open_after_s=60.0)  # 60 s but only 3 failures
    assert not any(slow.on_unavailable("refused", now=t) for t in (0.0, 30.0, 61.0))


def test_breaker_probe_delays_back_off_to_a_ceiling():
    br = CircuitBreaker(probe_base_s=0.5, probe_max_s=5.0)
    assert [br.probe_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    br.on_unavailable("x", now=0.0)
    br.on_success()
    assert br.probe_delay() == 0.5  # a new streak starts from the base again


def test_throughput_meter_rates_over_the_window():
    m = ThroughputMeter(window_s=60.0)
    m.start(now=0.0)
    for t in range(10):
        m.record(300, now=3.0 * (t + 1))
    per_min, tok_s = m.rates(now=30.0)
    assert per_min == pytest.approx(20.0) and tok_s == pytest.approx(100.0)
    per_min, _ = m.rates(now=200.0)
    assert per_min == 0.0


def test_gate_admits_up_to_the_current_limit_and_follows_it():
    c = AIMDController(ceiling=8, initial=2)
    gate = AdaptiveGate(c)
    peak = 0

    async def one() -> None:
        nonlocal peak
        await gate.acquire()
        peak = max(peak, gate.in_flight)
        await asyncio.sleep(0.01)
        await gate.release()

    async def run(n: int) -> None:
        await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(run(10))
    assert peak == 2
    c.limit = 5.0
    peak = 0
    asyncio.run(run(10))  # a new event loop, the same learned limit
    assert peak == 5
