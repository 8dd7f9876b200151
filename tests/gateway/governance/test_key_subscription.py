"""The key change subscription while Redis is down: a doubling wait, one line per attempt.

Before, a replica whose Redis was unreachable resubscribed every second and logged a
full traceback each time (60 a minute per pod for an operator to read through).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway_app.governance import keys as keys_module
from gateway_app.governance.keys import Registry
from tests.gateway.conftest import drop_cancellation


class FakePubSub:
    def __init__(self, owner: FakeRedis) -> None:
        self.owner = owner
        self.closed = False

    async def subscribe(self, channel: str) -> None:
        self.owner.subscribes += 1
        if self.owner.failures_left > 0:
            self.owner.failures_left -= 1
            raise RedisConnectionError(
                "Error 111 connecting to 127.0.0.1:6379. Connection refused."
            )

    async def listen(self) -> Any:
        yield {"type": "subscribe", "data": 1}
        # The connection drops once more after the subscription was restored.
        self.owner.failures_left = self.owner.second_outage
        self.owner.second_outage = 0
        raise RedisConnectionError("Connection closed by server.")

    async def aclose(self) -> None:
        self.closed = True


class FakeRedis:
    def __init__(self, failures: int, second_outage: int) -> None:
        self.failures_left = failures
        self.second_outage = second_outage
        self.subscribes = 0
        self.pubsubs: list[FakePubSub] = []

    def pubsub(self) -> FakePubSub:
        self.pubsubs.append(FakePubSub(self))
        return self.pubsubs[-1]


async def _run(registry: Registry, redis: FakeRedis, until: int, monkeypatch: Any) -> list[float]:
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, *args: Any) -> None:
        if delay:  # the subscription's wait; anything else sleeps as usual
            delays.append(delay)
            if redis.subscribes >= until:
                registry._stopping = True
        await real_sleep(0)

    monkeypatch.setattr(keys_module.asyncio, "sleep", sleep)
    async with asyncio.timeout(5):
        await registry._listen()
    return delays


def test_resubscribing_waits_longer_each_time_and_logs_the_traceback_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    redis = FakeRedis(failures=8, second_outage=2)
    registry = Registry(store=None, secret=b"s", redis=redis)  # type: ignore[arg-type]
    caplog.set_level(logging.WARNING, logger="gateway_app.governance")
    # 8 failed subscribes; the 9th holds until the connection drops; 2 more fail; the
    # 12th holds until the connection drops again.
    delays = asyncio.run(_run(registry, redis, until=12, monkeypatch=monkeypatch))

    assert delays == [1, 2, 4, 8, 16, 30, 30, 30, 1, 2, 4, 1]
    lost = [r for r in caplog.records if "subscription lost" in r.getMessage()]
    assert len(lost) == len(delays)
    # A traceback for the first failure of each outage only, every line names the error.
    assert [bool(r.exc_info) for r in lost] == [True] + [False] * 7 + [True, False, False, True]
    assert all(
        "Connection" in r.getMessage() and "resubscribing in" in r.getMessage() for r in lost
    )
    restored = [r.getMessage() for r in caplog.records if "restored" in r.getMessage()]
    assert restored == [
        "key change subscription restored after 8 failures",
        "key change subscription restored after 3 failures",
    ]
    # Every failed subscription's connection was released.
    assert all(p.closed for p in redis.pubsubs)


class DroppingPubSub(FakePubSub):
    """``subscribe`` drops a cancellation arriving while it runs, as redis-py's send does
    on Python 3.11 (``gateway_app/aio.py``); ``listen`` then waits for a message that
    never comes."""

    def __init__(self, owner: FakeRedis, subscribing: asyncio.Event) -> None:
        super().__init__(owner)
        self.subscribing = subscribing

    async def subscribe(self, channel: str) -> None:
        self.owner.subscribes += 1
        self.subscribing.set()
        await drop_cancellation()

    async def listen(self) -> Any:
        await asyncio.Event().wait()
        yield {}


def test_a_cancellation_dropped_while_subscribing_stops_the_subscription() -> None:
    async def main() -> tuple[bool, bool]:
        redis = FakeRedis(failures=0, second_outage=0)
        subscribing = asyncio.Event()
        redis.pubsub = lambda: DroppingPubSub(redis, subscribing)  # type: ignore[method-assign]
        registry = Registry(store=None, secret=b"s", redis=redis)  # type: ignore[arg-type]
        task = asyncio.get_running_loop().create_task(registry._listen())
        await subscribing.wait()
        task.cancel()  # lands in subscribe, which drops it
        done, _ = await asyncio.wait([task], timeout=1.0)
        if not done:
            task.cancel()
            await asyncio.wait([task])
        return bool(done), task.cancelled()

    assert asyncio.run(main()) == (True, True)
