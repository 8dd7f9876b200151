"""The per-replica batcher of settlements and audit events (Redis governance state)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from typing import Any

import pytest
import redis

from gateway_app.state import governance_redis
from gateway_app.state.governance import BudgetItem, Decision, RateItem
from gateway_app.state.governance_redis import RedisGovernanceState
from gateway_app.state.resp import RespClient, _Protocol
from tests.gateway.conftest import run_async
from tests.gateway.governance.services import RedisServer

TPM = RateItem("key:k1", "tpm", 10**6, 100)
BUDGET = BudgetItem("team:t1", "daily", "2026-11-27", 10**12, 1000, 3600)


def entry_events(fields: dict[bytes, bytes]) -> list[bytes]:
    """An audit stream entry's events (each newline-terminated in its block: the events
    of these tests hold no newline of their own)."""
    lines = fields[b"b"].split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == int(fields[b"n"]), fields
    return lines[:-1]


def stream_events(url: str, stream: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return [event for _, fields in client.xrange(stream) for event in entry_events(fields)]
    finally:
        client.close()


def test_settlements_are_summed_per_key_and_flushed_on_stop(redis_server: Any) -> None:
    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"

    async def main() -> None:
        # Flushes only at N items or on stop: the test decides when the batch is written.
        state = RedisGovernanceState.from_url(
            redis_server.url, prefix=prefix, flush_interval_s=3600, flush_items=1000
        )
        decisions: list[Decision] = []
        for _ in range(5):
            decision = await state.reserve((TPM,), (BUDGET,), 1_800_000_010.0)
            assert decision.allowed
            decisions.append(decision)
        for i, decision in enumerate(decisions):
            await state.settle(decision, -10, -100 - i, f'{{"n":{i}}}'.encode())
        assert state.batcher.held == 5
        # nothing written yet: the reservation is still whole
        assert await state.spent_nusd("team:t1", "daily", "2026-11-27") == 5000
        await state.flush()
        assert state.batcher.held == 0 and state.batcher.flushes == 1
        assert await state.spent_nusd("team:t1", "daily", "2026-11-27") == 5000 - 510
        used = await state.reserve((TPM,), (), 1_800_000_011.0)
        assert used.rate_used == [5 * 100 - 5 * 10]
        await state.settle(None, 0, 0, b'{"n":5}')  # a refused request: its event only
        await state.close()  # stop flushes what is queued
        assert stream_events(redis_server.url, prefix + "audit-v3") == [
            f'{{"n":{i}}}'.encode() for i in range(6)
        ]

    run_async(main())


def test_a_full_batch_is_written_without_waiting_for_the_interval(redis_server: Any) -> None:
    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"

    async def main() -> None:
        state = RedisGovernanceState.from_url(
            redis_server.url, prefix=prefix, flush_interval_s=3600, flush_items=4
        )
        for i in range(4):
            await state.settle(None, 0, 0, f"{i}".encode())
        for _ in range(200):  # the flush runs as soon as the loop gets to it
            if state.batcher.flushes:
                break
            await asyncio.sleep(0.01)
        assert state.batcher.flushes == 1 and state.batcher.held == 0
        assert len(stream_events(redis_server.url, prefix + "audit-v3")) == 4
        await state.close()

    run_async(main())


def test_events_survive_a_redis_restart_and_the_bound_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisServer()
    stream = "{aigw}:audit-v3"
    try:

        async def main() -> None:
            state = RedisGovernanceState.from_url(server.url, flush_interval_s=0.005, max_held=5)
            await state.settle(None, 0, 0, b"before")
            await state.flush()
            server.stop()
            for i in range(7):  # Redis is down: 5 are held, 2 dropped
                await state.settle(None, 0, 0, f"held-{i}".encode())
                await asyncio.sleep(0.01)
            assert state.batcher.held == 5 and state.batcher.dropped == 2
            server.start()  # a fresh, empty Redis on the same port
            await state.flush()
            assert state.batcher.held == 0
            await state.close()

        with caplog.at_level(logging.WARNING, logger="gateway_app.governance"):
            run_async(main())
        assert stream_events(server.url, stream) == [f"held-{i}".encode() for i in range(5)]
        full = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any("holding 5 events" in m and "dropped 1 events" in m for m in full), full
    finally:
        server.stop()


def test_stop_writes_everything_held_beyond_one_batch(redis_server: Any) -> None:
    """More events than one flush takes (``max_batch``) with a flush in flight: the
    flush starts the next batch itself, and stopping waits for it (it used to log the
    rest as lost)."""
    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"

    async def main() -> None:
        state = RedisGovernanceState.from_url(
            redis_server.url, prefix=prefix, flush_interval_s=3600, flush_items=4
        )
        state.batcher.max_batch = 10
        for i in range(25):  # the 4th starts a flush; it takes 10 when it runs
            state.batcher.add([], f"{i}".encode())
        assert state.batcher._task is not None
        await state.flush()
        assert state.batcher.held == 0 and state.batcher.flushes == 3
        await state.close()
        events = stream_events(redis_server.url, prefix + "audit-v3")
        assert events == [f"{i}".encode() for i in range(25)]

    run_async(main())


def test_what_a_dark_redis_does_not_take_by_shutdown_is_handed_back_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis stops answering (the process frozen: connections open, no reply, as a
    network partition looks): shutdown retries until its deadline, then hands the audit
    events back in order (the flush in flight's first) for the gateway to store in its
    database, logs the counter corrections Redis did not confirm, and the close that
    follows neither waits again nor reports a loss."""
    server = RedisServer()
    try:

        async def main() -> None:
            state = RedisGovernanceState.from_url(server.url, flush_interval_s=0.005)
            state.batcher.drain_timeout_s = 0.5
            for _ in range(2):  # (admission then holds a chunk of each counter)
                warm = await state.reserve((TPM,), (BUDGET,), 1_800_000_010.0)
                await state.settle(warm, -10, -100, b"before")
            await asyncio.sleep(0.05)
            assert state.batcher.held == 0
            server.process.send_signal(signal.SIGSTOP)
            decision = await state.reserve((TPM,), (BUDGET,), 1_800_000_010.0)
            assert decision.allowed  # from the chunks admission holds: no round trip
            await state.settle(decision, -10, -100, b"first")
            await asyncio.sleep(0.05)  # its flush is in flight, unanswered
            assert state.batcher._task is not None
            state.batcher.add([("{aigw}:x", 3)], b"second")
            started = time.monotonic()
            assert await state.flush() == [b"first", b"second"]
            assert time.monotonic() - started < 2
            assert state.batcher.held == 0
            started = time.monotonic()
            await state.close()
            assert time.monotonic() - started < 1

        with caplog.at_level(logging.WARNING, logger="gateway_app.governance"):
            run_async(main())
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, errors
        assert "counter corrections Redis did not confirm" in errors[0], errors
    finally:
        with contextlib.suppress(ProcessLookupError):
            server.process.send_signal(signal.SIGCONT)
        server.stop()


def test_the_flush_interval_is_the_configured_one(
    redis_server: Any, fake_openai: Any, fake_anthropic: Any, tmp_path: Any
) -> None:
    """``governance.settle_interval_s`` reaches the batcher of a replica built from its
    environment (the bound on what a crash loses); out of range, the config names it."""
    from gateway_app.config import ConfigError, parse
    from gateway_app.environment import Environment
    from gateway_app.governance.service import Governance
    from tests.gateway.conftest import STANDARD_MODELS, providers

    raw: dict[str, Any] = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {
            "enabled": True,
            "settle_interval_s": 0.05,
            "sqlite_path": str(tmp_path / "gov.sqlite3"),
        },
        "redis": {"buffer_below_memory": 0.8},
    }
    env = Environment(redis_url=redis_server.url, key_hash_secret="s")
    governance = Governance.from_environment(parse(raw), env)
    try:
        assert isinstance(governance.state, RedisGovernanceState)
        assert governance.state.batcher.interval_s == 0.05
        assert governance.state.batcher.memory_below == 0.8  # (redis.buffer_below_memory)
    finally:
        run_async(governance.stop())
    raw["governance"]["settle_interval_s"] = 5
    with pytest.raises(ConfigError, match="settle_interval_s"):
        parse(raw)
    raw["governance"]["settle_interval_s"] = 0.05
    raw["redis"] = {"buffer_below_memory": 0.5}  # below store_below_memory (0.7)
    with pytest.raises(ConfigError, match="buffer_below_memory"):
        parse(raw)


def test_a_nearly_full_redis_gets_no_audit_events_and_keeps_its_budget_counters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While PostgreSQL is down the audit stream grows, and a full Redis evicts keys with a
    lifetime (``volatile-lru``, every managed Redis' policy: docs/operations/sizing.md,
    "Redis memory"), budget counters included. At ``buffer_below_memory`` of
    ``maxmemory`` the batcher appends no events: it holds them (then drops past
    ``max_held``, logged) and still writes the counters' corrections; once Redis has room
    the held events are appended, in order; a shutdown meanwhile hands them back."""
    server = RedisServer()
    admin = redis.Redis.from_url(server.url)
    prefix = "{full}:"
    stream = prefix + governance_redis.STREAM
    budget = prefix + "b:team:t1:monthly:2026-12"

    def full(share: float) -> None:
        """Redis at ``share`` of a maxmemory set just above what it holds now."""
        admin.config_set("maxmemory", int(int(admin.info("memory")["used_memory"]) / share))

    try:
        admin.config_set("maxmemory-policy", "volatile-lru")
        admin.set(budget, 5_000, ex=31 * 86400)
        for n in range(16):  # other data, without a lifetime
            admin.set(f"ballast:{n}", b"b" * (256 << 10))
        full(0.97)

        async def main() -> list[bytes]:
            state = RedisGovernanceState.from_url(
                server.url,
                prefix=prefix,
                flush_interval_s=0.01,
                max_held=30,
                buffer_below_memory=0.9,
            )
            batcher = state.batcher
            batcher.memory_check_s = 0.05
            for n in range(25):
                batcher.add([(budget, -10)], b'{"n":%d}' % n)
                await asyncio.sleep(0.01)
            deadline = time.monotonic() + 5
            while int(admin.get(budget) or 0) != 5_000 - 250:  # corrections go through
                assert time.monotonic() < deadline, admin.get(budget)
                await asyncio.sleep(0.02)
            assert batcher.memory_full and (batcher.memory_ratio or 0) >= 0.9
            assert batcher.held == 25 and admin.xlen(stream) == 0
            for n in range(25, 35):
                batcher.add((), b'{"n":%d}' % n)
            assert batcher.held == 30 and batcher.dropped == 5  # the bound, then drops
            admin.delete(*(f"ballast:{n}" for n in range(16)))
            while int(admin.get(batcher.depth_key) or 0) < 30 or batcher.held:  # room again
                assert time.monotonic() < deadline + 5
                await asyncio.sleep(0.02)
            assert not batcher.memory_full and batcher.held == 0
            full(0.97)
            await asyncio.sleep(0.1)  # (a reading is due at the next flush)
            batcher.add((), b'{"n":"at-shutdown"}')
            await asyncio.sleep(0.2)
            assert batcher.memory_full and batcher.held == 1
            handed_back = await batcher.drain(timeout_s=2)
            await state.close()
            return handed_back

        with caplog.at_level(logging.ERROR, logger="gateway_app.governance"):
            handed_back = run_async(main())
        assert [e for _, fields in admin.xrange(stream) for e in entry_events(fields)] == [
            b'{"n":%d}' % n for n in range(30)
        ]
        assert int(admin.info("stats")["evicted_keys"]) == 0
        assert int(admin.get(budget) or 0) == 5_000 - 250
        assert handed_back == [b'{"n":"at-shutdown"}']
        messages = [r.getMessage() for r in caplog.records]
        assert any("buffer_below_memory" in m for m in messages)
        assert any("short of memory; dropped 1 events" in m for m in messages)
    finally:
        admin.close()
        server.stop()


def test_dropped_audit_events_are_counted_in_the_metrics(redis_governed_app: Any) -> None:
    """Every event a replica's batcher drops (it held ``max_held`` already) is counted in
    ``aigw_audit_events_dropped_total`` of the gateway built from its environment."""
    app = redis_governed_app
    batcher = app.admin.governance.state.batcher
    batcher.max_held = 0

    async def drop_two() -> None:
        batcher.add((), b'{"n":1}')
        batcher.add((), b'{"n":2}')

    run_async(drop_two())
    assert batcher.dropped == 2
    text = app.metrics.render().decode()
    assert "aigw_audit_events_dropped_total 2.0" in text


def test_events_held_through_an_outage_go_out_as_entries_of_at_most_max_entry(
    redis_server: Any,
) -> None:
    """A flush of events held while Redis was unreachable (up to ``max_batch``) is several
    stream entries of at most ``ENTRY_EVENTS_MAX`` events each, in order, counted once in
    the depth counter: a drainer's write, which takes an entry whole, stays bounded."""
    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"
    most = governance_redis.ENTRY_EVENTS_MAX

    async def main() -> None:
        state = RedisGovernanceState.from_url(
            redis_server.url, prefix=prefix, flush_interval_s=3600, flush_items=10**6
        )
        for i in range(2 * most + 88):  # held: no flush until asked
            state.batcher.add([], f"{i}".encode())
        await state.flush()
        assert state.batcher.flushes == 1
        assert await state.audit_depth() == 2 * most + 88
        await state.close()

    run_async(main())
    client = redis.Redis.from_url(redis_server.url)
    try:
        entries = client.xrange(prefix + "audit-v3")
    finally:
        client.close()
    assert [int(fields[b"n"]) for _, fields in entries] == [most, most, 88]
    events = [event for _, fields in entries for event in entry_events(fields)]
    assert events == [f"{i}".encode() for i in range(2 * most + 88)]


class _LateReplies(_Protocol):
    """Replies handed to the client 30 ms after they arrive (a slow network's)."""

    def data_received(self, data: bytes) -> None:
        asyncio.get_running_loop().call_later(0.03, super().data_received, data)


class _LateClient(RespClient):
    protocol = _LateReplies


def test_audit_depth_counts_a_flush_in_flight_once(redis_server: Any) -> None:
    """The depth gauge read while a flush is on its way counts each event once.

    The gauge is Redis' counter plus what this process has not written yet. Read on
    another connection than the flush's, the two raced: with the flush's reply slow to
    come back, the read saw the flush applied while its events were still held here
    (counted twice), and the other way round none; a CI run failed so (``assert 0 ==
    2``). Read on the flush's own connection, Redis runs whatever was written before
    the read, and the events not written are this process's."""
    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"

    async def main() -> None:
        state = RedisGovernanceState(
            governance_redis.redis_client(redis_server.url, None),
            _LateClient.from_url(redis_server.url),
            prefix=prefix,
            flush_interval_s=3600,
            flush_items=10**6,
        )
        total = 0
        for round_ in range(6):
            for i in range(3):
                state.batcher.add([], f"{round_}-{i}".encode())
            total += 3
            flushing = asyncio.create_task(state.flush())
            for _ in range(round_ % 3):  # before the flush is written, just after, or later
                await asyncio.sleep(0)
            depths = await asyncio.gather(state.audit_depth(), state.audit_depth())
            assert depths == [total, total], (round_, depths, total)
            await flushing
            assert await state.audit_depth() == total
        assert state.batcher.flushes == 6
        await state.close()

    run_async(main())
