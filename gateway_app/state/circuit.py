"""Per-deployment circuit breakers.

Closed: calls flow; outcomes are counted in a sliding time window (one-second
buckets). When the window holds at least ``min_calls`` calls and the failure
share reaches ``failure_rate``, the circuit opens. Open: calls are refused
until ``cooldown_s`` has passed; then the circuit is half-open and lets
``half_open_probes`` calls through; if they all succeed it closes (with an empty
window), and any failure re-opens it for another cooldown.

Only outcomes that say something about the deployment count: success,
timeouts, connection errors, 429 and 5xx. Other 4xx are the caller's fault and
are not recorded.

The store is an async Protocol so a Redis implementation (issue 12: one Lua
script per acquire/record, state shared by replicas) drops in; ``is_open`` is a
synchronous hint for routing strategies, served from local memory in both.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from gateway_app.config import CircuitBreakerConfig


class CircuitState(StrEnum):
    """The breaker's three states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreakerStore(Protocol):
    """Circuit state of every deployment, keyed by deployment id."""

    async def acquire(self, key: str) -> bool:
        """Whether a call may go to ``key`` now (closed, or a free half-open probe slot)."""
        ...

    async def record(self, key: str, success: bool) -> None:
        """Record the outcome of a call that ``acquire`` let through."""
        ...

    async def release(self, key: str) -> None:
        """Give back an acquired slot whose call ended without a countable outcome."""
        ...

    async def trip(self, key: str) -> None:
        """Open the circuit now, whatever the window says (a credential the provider
        rejected: every call would fail the same way until an operator fixes it)."""
        ...

    def retry_in(self, key: str) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        ...

    def state(self, key: str) -> CircuitState:
        """The current state (cooldown expiry shows as half-open)."""
        ...

    def is_open(self, key: str) -> bool:
        """Fast local hint: refuse calls now? (used by routing strategies)."""
        ...

    async def close(self) -> None:
        """Send what is batched and release connections (at shutdown)."""
        ...


@dataclass(slots=True)
class _Breaker:
    state: CircuitState = CircuitState.CLOSED
    buckets: deque[list[float]] = field(default_factory=deque)  # [second, calls, failures]
    opened_at: float = 0.0
    probes_in_flight: int = 0
    probe_successes: int = 0


class InProcessCircuitBreakerStore:
    """Circuit breakers in this process's memory (the embedded default)."""

    def __init__(
        self, config: CircuitBreakerConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.clock = clock
        self._breakers: dict[str, _Breaker] = {}

    def _get(self, key: str) -> _Breaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = _Breaker()
        return breaker

    def _cooled(self, breaker: _Breaker, now: float) -> bool:
        return now - breaker.opened_at >= self.config.cooldown_s

    async def acquire(self, key: str) -> bool:
        breaker = self._get(key)
        if breaker.state is CircuitState.CLOSED:
            return True
        now = self.clock()
        if breaker.state is CircuitState.OPEN:
            if not self._cooled(breaker, now):
                return False
            breaker.state = CircuitState.HALF_OPEN
            breaker.probes_in_flight = 0
            breaker.probe_successes = 0
        if breaker.probes_in_flight + breaker.probe_successes >= self.config.half_open_probes:
            return False
        breaker.probes_in_flight += 1
        return True

    async def release(self, key: str) -> None:
        breaker = self._get(key)
        if breaker.state is CircuitState.HALF_OPEN and breaker.probes_in_flight:
            breaker.probes_in_flight -= 1

    async def record(self, key: str, success: bool) -> None:
        breaker = self._get(key)
        now = self.clock()
        if breaker.state is CircuitState.HALF_OPEN:
            breaker.probes_in_flight = max(0, breaker.probes_in_flight - 1)
            if not success:
                self._open(breaker, now)
                return
            breaker.probe_successes += 1
            if breaker.probe_successes >= self.config.half_open_probes:
                breaker.state = CircuitState.CLOSED
                breaker.buckets.clear()
            return
        if breaker.state is CircuitState.OPEN:
            return  # a call that started before the circuit opened
        second = float(int(now))
        buckets = breaker.buckets
        if buckets and buckets[-1][0] == second:
            bucket = buckets[-1]
        else:
            bucket = [second, 0.0, 0.0]
            buckets.append(bucket)
        bucket[1] += 1
        if success:
            horizon = now - self.config.window_s
            while buckets and buckets[0][0] + 1 <= horizon:
                buckets.popleft()
            return
        bucket[2] += 1
        horizon = now - self.config.window_s
        while buckets and buckets[0][0] + 1 <= horizon:
            buckets.popleft()
        calls = sum(b[1] for b in buckets)
        failures = sum(b[2] for b in buckets)
        if calls >= self.config.min_calls and failures / calls >= self.config.failure_rate:
            self._open(breaker, now)

    async def trip(self, key: str) -> None:
        self._open(self._get(key), self.clock())

    def retry_in(self, key: str) -> float:
        breaker = self._breakers.get(key)
        if breaker is None or breaker.state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self.config.cooldown_s - (self.clock() - breaker.opened_at))

    def _open(self, breaker: _Breaker, now: float) -> None:
        breaker.state = CircuitState.OPEN
        breaker.opened_at = now
        breaker.buckets.clear()
        breaker.probes_in_flight = 0
        breaker.probe_successes = 0

    def state(self, key: str) -> CircuitState:
        breaker = self._get(key)
        if breaker.state is CircuitState.OPEN and self._cooled(breaker, self.clock()):
            return CircuitState.HALF_OPEN
        return breaker.state

    def is_open(self, key: str) -> bool:
        breaker = self._breakers.get(key)
        if breaker is None or breaker.state is CircuitState.CLOSED:
            return False
        return breaker.state is CircuitState.OPEN and not self._cooled(breaker, self.clock())

    async def close(self) -> None:
        """Nothing to release: the breakers live in this process."""
