"""Redis circuit breakers: successes while closed are batched, failures still trip at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway_app.state.circuit import CircuitState
from gateway_app.state.circuit_redis import RedisCircuitBreakerStore
from tests.gateway.conftest import run_async
from tests.gateway.resp_traffic import counting_client
from tests.gateway.test_circuit_contract import CONFIG, redis_url  # noqa: F401 (fixture)

WRITES: list[tuple[str, ...]] = []


CountingClient = counting_client(WRITES)


def store(url: str, prefix: str, now: list[float], **kwargs: Any) -> RedisCircuitBreakerStore:
    return RedisCircuitBreakerStore(
        CountingClient.from_url(url), CONFIG, prefix=prefix, clock=lambda: now[0], **kwargs
    )


def test_successes_are_sent_in_one_call_with_their_count(redis_url: str) -> None:  # noqa: F811
    prefix = f"test:{time.monotonic_ns()}:"
    now = [7000.5]

    async def main() -> None:
        breakers = store(redis_url, prefix, now, refresh_s=60, flush_s=3600)
        assert await breakers.acquire("d")  # first use: reads the state (one script call)
        await breakers.record("d", True)
        await breakers.flush()  # loads the record script if this Redis does not know it
        WRITES.clear()
        for _ in range(50):
            assert await breakers.acquire("d")
            await breakers.record("d", True)
        assert WRITES == []  # no round trip per request while closed
        await breakers.flush()
        assert WRITES == [("EVALSHA",)]
        window = await breakers.client.execute("HGETALL", prefix + "d:w")
        assert dict(zip(window[::2], window[1::2], strict=True)) == {b"7000:c": b"51"}
        # a failure carries the successes not sent yet, so the rate is over every call
        for _ in range(3):
            await breakers.record("d", True)
        await breakers.record("d", False)
        window = await breakers.client.execute("HGETALL", prefix + "d:w")
        assert dict(zip(window[::2], window[1::2], strict=True)) == {
            b"7000:c": b"55",
            b"7000:f": b"1",
        }
        await breakers.close()

    run_async(main())


def test_failure_rate_trips_across_replicas_with_batched_successes(
    redis_url: str,  # noqa: F811
) -> None:
    prefix = f"test:{time.monotonic_ns()}:"
    now = [8000.0]

    async def main() -> None:
        # refresh_s=0: every acquire reads Redis, so the test sees each transition at once.
        first = store(redis_url, prefix, now, refresh_s=0, flush_s=3600)
        second = store(redis_url, prefix, now, refresh_s=0, flush_s=3600)
        for _ in range(6):
            assert await first.acquire("d")
            await first.record("d", True)
        await first.flush()
        # 5 failures of 11 calls: under the 50% rate, thanks to the first replica's successes
        for _ in range(5):
            assert await second.acquire("d")
            await second.record("d", False)
        assert await second.refresh("d") is CircuitState.CLOSED
        assert await second.acquire("d")
        await second.record("d", False)  # 6 of 12: opens
        assert second.is_open("d")
        # the first replica still has the circuit closed in its copy: its next successes
        # are batched, and must not count as half-open probes when they arrive
        await first.record("d", True)
        await first.record("d", True)
        now[0] += 31
        assert await second.acquire("d")  # the first probe
        await first.flush()
        await second.record("d", True)  # one probe success of the two needed
        assert await second.refresh("d") is CircuitState.HALF_OPEN
        assert await first.acquire("d") and first.state("d") is CircuitState.HALF_OPEN
        await first.close()
        await second.close()

    run_async(main())


def test_background_refresh_sees_another_replica_open_the_circuit(
    redis_url: str,  # noqa: F811
) -> None:
    prefix = f"test:{time.monotonic_ns()}:"
    now = [9000.0]

    async def main() -> None:
        watcher = store(redis_url, prefix, now, refresh_s=0.2, flush_s=0.05)
        tripper = store(redis_url, prefix, now, refresh_s=0)
        assert await watcher.acquire("d")
        for _ in range(4):
            await tripper.acquire("d")
            await tripper.record("d", False)
        # The watcher keeps answering from its copy (no blocking read) and sees the
        # open circuit once its background pass has re-read the state.
        for _ in range(500):
            if not await watcher.acquire("d"):
                break
            await asyncio.sleep(0.01)
        assert watcher.is_open("d")
        await watcher.close()
        await tripper.close()

    run_async(main())


def test_successes_counted_after_a_loop_closed_are_sent_by_a_ticker_on_the_new_one(
    redis_url: str,  # noqa: F811
) -> None:
    """The background pass that sends counted successes runs on the loop in use: one left
    pending on a loop since closed (each ``asyncio.run`` closes its own) is replaced, where
    a live one is only checked (no ``get_running_loop``, a system call, per request)."""
    prefix = f"test:{time.monotonic_ns()}:"
    now = [9000.5]
    breakers = store(redis_url, prefix, now, refresh_s=60, flush_s=0.05)

    async def first() -> asyncio.Task[None] | None:
        assert await breakers.acquire("d")
        await breakers.record("d", True)
        return breakers._ticker

    ticker = run_async(first())
    assert ticker is not None and not ticker.done() and ticker.get_loop().is_closed()

    async def second() -> dict[bytes, bytes]:
        await breakers.client.aclose()  # (its connection belonged to the closed loop)
        breakers.client = CountingClient.from_url(redis_url)
        breakers._record = breakers.client.script(breakers._record.source)
        breakers._acquire = breakers.client.script(breakers._acquire.source)
        for _ in range(4):
            assert await breakers.acquire("d")
            await breakers.record("d", True)
        assert breakers._ticker is not ticker
        assert breakers._ticker is not None
        assert breakers._ticker.get_loop() is asyncio.get_running_loop()
        await asyncio.sleep(0.4)  # a few passes of 0.05 s
        window = await breakers.client.execute("HGETALL", prefix + "d:w")
        await breakers.close()
        return dict(zip(window[::2], window[1::2], strict=True))

    # The success of the first loop's call and the four of the second: all sent.
    assert run_async(second()) == {b"9000:c": b"5"}
