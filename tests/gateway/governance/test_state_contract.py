"""One contract for both governance states: in-process and Redis (a real redis-server)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from gateway_app.state.governance import BudgetItem, InProcessGovernanceState, RateItem
from tests.gateway.conftest import run_async


@pytest.fixture(params=["in-process", "redis", "rediss-private-ca"])
def make_state(request: pytest.FixtureRequest) -> Any:
    if request.param == "in-process":
        shared = InProcessGovernanceState()
        return lambda **_: shared
    from gateway_app.state.governance_redis import RedisGovernanceState

    tls = request.param.startswith("rediss")
    server = request.getfixturevalue("redis_tls_server" if tls else "redis_server")
    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"
    # Fewer TLS connections: 64 simultaneous handshakes are slow on a busy 2-core machine.
    options = {"max_connections": 8} if tls else {}
    return lambda **kw: RedisGovernanceState.from_url(
        server.url, server.ca_file, prefix=prefix, **options, **kw
    )


def test_rediss_requires_the_private_ca(redis_tls_server: Any) -> None:
    from gateway_app.state.governance_redis import redis_client

    async def ping(ca_file: str | None) -> Any:
        client = redis_client(redis_tls_server.url, ca_file)
        try:
            return await client.ping()
        finally:
            await client.aclose()

    assert run_async(ping(redis_tls_server.ca_file)) is True
    with pytest.raises(Exception, match=r"(?i)certificate"):
        run_async(ping(None))  # the system trust store does not know the private CA


def budget(limit: int, amount: int, scope: str = "team:t1") -> BudgetItem:
    return BudgetItem(scope, "daily", "2026-11-27", limit, amount, 3600)


def test_concurrent_reservations_never_exceed_the_budget(make_state: Any) -> None:
    async def main() -> list[bool]:
        state = make_state()
        now = time.time()
        decisions = await asyncio.gather(
            *(state.reserve((), (budget(1000, 100),), now) for _ in range(200))
        )
        spent = await state.spent_nusd("team:t1", "daily", "2026-11-27")
        await state.close()
        assert spent == 1000
        return [d.allowed for d in decisions]

    allowed = run_async(main())
    assert allowed.count(True) == 10


def test_refusal_names_the_level_and_reserves_nothing(make_state: Any) -> None:
    async def main() -> None:
        state = make_state()
        now = time.time()
        levels = (budget(10_000, 600, "org:*"), budget(1000, 600, "project:p1"))
        assert (await state.reserve((), levels, now)).allowed
        refused = await state.reserve((), levels, now)
        assert not refused.allowed
        assert refused.refused == levels[1]
        assert refused.used == 600
        # all-or-nothing: the org level was not charged by the refused request
        assert await state.spent_nusd("org:*", "daily", "2026-11-27") == 600
        await state.close()

    run_async(main())


def test_settle_corrects_budget_and_tokens(make_state: Any) -> None:
    async def main() -> None:
        state = make_state()
        now = 1_800_000_010.0  # 10 s into a minute
        tpm = RateItem("key:k1", "tpm", 1000, 800)
        first = await state.reserve((tpm,), (budget(1000, 900),), now)
        assert first.allowed
        # the request used 100 tokens and cost 50 of its 900 reservation
        await state.settle(first, 100 - 800, 50 - 900, b"{}")
        await state.flush()  # Redis: settlements are queued and written in batches
        assert await state.spent_nusd("team:t1", "daily", "2026-11-27") == 50
        second = await state.reserve((tpm,), (budget(1000, 900),), now + 1)
        assert second.allowed
        assert second.rate_used == [100.0]
        third = await state.reserve((tpm,), (), now + 2)
        assert not third.allowed and third.refused == tpm
        # 900 tokens this minute: room for 800 only once they weigh 200 or less, well into
        # the next minute (48 s left of this one, then 7/9 of the next).
        assert third.retry_after_s == pytest.approx(48 + 60 * (1 - 200 / 900))
        await state.close()

    run_async(main())


def test_settle_nowait_settles_as_settle_does(make_state: Any) -> None:
    """The request path settles with ``settle_nowait`` (no coroutine): the same correction
    and the same audit event as ``settle``, queued by the time it returns."""

    async def main() -> None:
        state = make_state()
        now = 1_800_000_010.0
        tpm = RateItem("key:k1", "tpm", 1000, 800)
        first = await state.reserve((tpm,), (budget(1000, 900),), now)
        assert first.allowed
        assert state.settle_nowait(first, 100 - 800, 50 - 900, b'{"n":1}') is None
        state.settle_nowait(None, 0, 0, b'{"n":2}')  # a refused request: its event only
        assert await state.audit_depth() == 2  # both held (Redis: for the next flush)
        await state.flush()
        assert await state.spent_nusd("team:t1", "daily", "2026-11-27") == 50
        second = await state.reserve((tpm,), (), now + 1)
        assert second.allowed and second.rate_used == [100.0]
        events = await state.read_audit(10, 0.05)
        assert [payload for _, payload in events] == [b'{"n":1}', b'{"n":2}']
        await state.close()

    run_async(main())


def test_sliding_window_weights_the_previous_minute(make_state: Any) -> None:
    async def main() -> None:
        state = make_state()
        base = 1_800_000_000.0  # a minute boundary
        rpm = RateItem("team:t1", "rpm", 4, 1)
        for i in range(4):
            assert (await state.reserve((rpm,), (), base + 50 + i)).allowed
        assert not (await state.reserve((rpm,), (), base + 55)).allowed
        # 30 s into the next minute, half of the previous minute still counts: 2 of 4 used
        decision = await state.reserve((rpm,), (), base + 90)
        assert decision.allowed and decision.rate_used == [2.0]
        assert (await state.reserve((rpm,), (), base + 90)).allowed
        assert not (await state.reserve((rpm,), (), base + 90)).allowed
        await state.close()

    run_async(main())


def test_audit_buffer_redelivers_until_acknowledged(make_state: Any) -> None:
    async def main() -> None:
        state = make_state(claim_idle_s=0.05) if True else None
        for i in range(5):
            await state.append(f'{{"n":{i}}}'.encode())
        first = await state.read_audit(3, 0.05)
        assert [p for _, p in first] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
        # not acknowledged (the database write failed): the same events come back
        again = await state.read_audit(3, 0.05)
        assert [i for i, _ in again] == [i for i, _ in first]
        await state.ack([i for i, _ in first])
        rest = await state.read_audit(10, 0.05)
        assert [p for _, p in rest] == [b'{"n":3}', b'{"n":4}']
        # a second reader (another replica) takes over what the first left pending
        other = make_state(claim_idle_s=0.05)
        await asyncio.sleep(0.1)
        taken = await other.read_audit(10, 0.05)
        assert [p for _, p in taken] == [b'{"n":3}', b'{"n":4}']
        await other.ack([i for i, _ in taken])
        assert await other.read_audit(10, 0.05) == []
        await state.close()
        if other is not state:
            await other.close()

    run_async(main())


def test_audit_depth_counts_events_until_acknowledged(make_state: Any) -> None:
    async def main() -> None:
        state = make_state()
        assert await state.audit_depth() == 0
        for i in range(3):
            await state.settle(None, 0, 0, f'{{"n":{i}}}'.encode())
        await state.append(b'{"n":3}')
        assert await state.audit_depth() == 4  # held for the next flush or buffered
        await state.flush()
        assert await state.audit_depth() == 4
        batch = await state.read_audit(10, 0.05)
        assert await state.audit_depth() == 4  # read but not yet in the database
        await state.ack([i for i, _ in batch])
        assert await state.audit_depth() == 0
        await state.close()

    run_async(main())


def test_retry_after_points_at_a_free_slot_of_the_sliding_window(make_state: Any) -> None:
    """Issue 20 item 12: a client that waits exactly Retry-After (whole seconds, as the
    header says) is admitted; not the next clock minute, where this minute still counts."""
    import math

    async def main() -> None:
        state = make_state()
        base = 1_800_000_000.0  # a minute boundary
        rpm = RateItem(f"key:{uuid.uuid4().hex[:8]}", "rpm", 4, 1)
        for i in range(4):
            assert (await state.reserve((rpm,), (), base + 10 + i)).allowed
        refused = await state.reserve((rpm,), (), base + 20)
        assert not refused.allowed
        obeyed = base + 20 + math.ceil(refused.retry_after_s)
        assert not (await state.reserve((rpm,), (), obeyed - 1.5)).allowed  # not too long
        assert (await state.reserve((rpm,), (), obeyed)).allowed
        # Within the minute, as the previous minute's weight decays.
        tpm = RateItem(f"key:{uuid.uuid4().hex[:8]}", "tpm", 100, 30)
        assert (await state.reserve((tpm,), (), base + 50)).allowed
        assert (await state.reserve((tpm,), (), base + 55)).allowed
        assert (await state.reserve((tpm,), (), base + 58)).allowed
        refused = await state.reserve((tpm,), (), base + 65)
        assert not refused.allowed and refused.retry_after_s < 55
        assert (
            await state.reserve((tpm,), (), base + 65 + math.ceil(refused.retry_after_s))
        ).allowed
        await state.close()

    run_async(main())
