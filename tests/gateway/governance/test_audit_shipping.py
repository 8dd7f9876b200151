"""Audit shipping at scale (issue 24): the home stores a follower's batch with one ``COPY``
and its ``through`` in the same transaction, counting duplicates exactly; one replica per
cloud ships (a Redis lease), another takes over when it stops or dies.

The rate a follower ships at, before and after, is measured in ``bench/audit_shipping.py``
(``bench/audit-shipping.md``), not timed here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import redis.asyncio as aioredis

from gateway_app.governance import audit
from gateway_app.governance.shipping import AuditShipper, ShipperLease
from gateway_app.governance.storage import Database, DatabaseError
from tests.gateway.conftest import drop_cancellation, run_async


def _events(n: int, cloud: str = "gcp") -> list[dict[str, Any]]:
    """``n`` request events of ``cloud``, as its gateway records them."""
    audit.set_cloud(cloud)
    try:
        return [audit.event("request", key_id="k", cost_usd=0.5) for _ in range(n)]
    finally:
        audit.set_cloud(None)


def _new_postgres(server: Any) -> Database:
    """A new, migrated database on the session's PostgreSQL server."""
    db = Database(server.new_database("ship"))
    db.migrate()
    return db


@pytest.fixture(params=["sqlite", "postgres"])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The home's database: SQLite (the embedded store) or a new PostgreSQL database."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'home.db'}")
        db.migrate()
    else:
        db = _new_postgres(request.getfixturevalue("postgres_server"))
    yield db
    db.close()


class Statements:
    """The ``COPY`` and ``executemany`` calls psycopg's cursors make (the real ones run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.copies: list[str] = []
        self.executemany = 0
        copy, executemany = psycopg.Cursor.copy, psycopg.Cursor.executemany

        def spy_copy(cursor: psycopg.Cursor[Any], statement: Any, *args: Any, **kw: Any) -> Any:
            text = statement if isinstance(statement, bytes) else None
            self.copies.append(
                text.decode() if text is not None else statement.as_string(cursor.connection)
            )
            return copy(cursor, statement, *args, **kw)

        def spy_executemany(cursor: psycopg.Cursor[Any], *args: Any, **kw: Any) -> Any:
            self.executemany += 1
            return executemany(cursor, *args, **kw)

        monkeypatch.setattr(psycopg.Cursor, "copy", spy_copy)
        monkeypatch.setattr(psycopg.Cursor, "executemany", spy_executemany)


def _through(db: Database) -> dict[str, float]:
    rows = db.fetch("SELECT cloud, complete_through FROM audit_shipping")
    return {row["cloud"]: float(row["complete_through"]) for row in rows}


def test_the_home_stores_a_batch_with_one_copy_and_counts_duplicates_exactly(
    home: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _events(40)
    statements = Statements(monkeypatch)
    assert audit.store_shipped(home, "gcp", events[:30], through=100.0) == (30, 0)
    if home.kind == "postgres":
        # One COPY of the whole batch, no insert per event.
        assert len(statements.copies) == 1 and statements.executemany == 0
        assert statements.copies[0].startswith('COPY "audit_events" (')
    # The answer was lost: the same batch again stores nothing and says so.
    assert audit.store_shipped(home, "gcp", events[:30], through=100.0) == (0, 30)
    # A batch of old and new events: only the new ones, counted exactly.
    assert audit.store_shipped(home, "gcp", events[20:], through=200.0) == (10, 10)
    if home.kind == "postgres":
        # The COPYs of the re-sent batches failed on the key: row by row then.
        assert len(statements.copies) == 3 and statements.executemany == 2
    rows = home.fetch("SELECT event_id, cloud, shipped_at FROM audit_events")
    assert sorted(row["event_id"] for row in rows) == sorted(e["event_id"] for e in events)
    assert {row["cloud"] for row in rows} == {"gcp"}
    assert all(row["shipped_at"] is not None for row in rows)
    assert _through(home) == {"gcp": 200.0}


def test_through_never_advances_without_the_events(home: Database) -> None:
    """The events and ``through`` commit together: a batch the database refuses, or one
    holding another cloud's event, stores nothing and leaves ``through`` where it was."""
    assert audit.store_shipped(home, "gcp", _events(3), through=100.0) == (3, 0)
    # A value beyond its column (bigint): refused, the batch rolled back with through.
    refused = _events(5)
    refused[3]["prompt_tokens"] = 2**70
    with pytest.raises((DatabaseError, OverflowError)):
        audit.store_shipped(home, "gcp", refused, through=500.0)
    foreign = _events(1, cloud="azure")[0]
    with pytest.raises(ValueError, match=r"is not gcp's \(ids start with gcp\.\)"):
        audit.store_shipped(home, "gcp", [*_events(2), foreign], through=600.0)
    assert len(home.fetch("SELECT event_id FROM audit_events")) == 3
    assert _through(home) == {"gcp": 100.0}


def test_the_backlog_is_counted_up_to_a_cap(home: Database) -> None:
    """``aigw_gov_audit_unshipped``: the events not shipped yet, counted up to a cap (a
    long outage's backlog is not counted row by row at every scrape)."""
    events = _events(8)
    audit.insert_events(home, events)
    stored = home.fetch("SELECT event_id, day FROM audit_events ORDER BY event_id")
    audit.mark_shipped(home, stored[:2], 100.0)
    assert audit.unshipped_count(home) == 6
    assert audit.unshipped_count(home, cap=100) == 6
    assert audit.unshipped_count(home, cap=5) == 5


# -- one shipper per cloud

TTL_S, RENEW_S = 1.0, 0.1  # the lease's bounds here (production: 5 s and 1 s)


class Replica:
    """One replica of follower gcp: its own connection to gcp's database, its own lease
    token, shipping to the home's real ``store_shipped``."""

    def __init__(self, follower_url: str, home: Database, redis: Any, key: str) -> None:
        self.db = Database(follower_url)
        self.home = home
        self.stored = self.duplicates = 0
        lease = ShipperLease(redis, key, ttl_s=TTL_S, renew_s=RENEW_S) if key else None
        self.shipper = AuditShipper(
            self.db, self.post, lease, batch=500, interval_s=0.05, max_body=1 << 20
        )
        self.task: asyncio.Task[None] | None = None

    async def post(self, body: bytes) -> None:
        batch = orjson.loads(body)
        stored, duplicates = await asyncio.to_thread(
            audit.store_shipped, self.home, "gcp", batch["events"], batch["through"]
        )
        self.stored += stored
        self.duplicates += duplicates

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.shipper.run())

    async def halt(self, release: bool) -> None:
        """Stop shipping: as at shutdown (the lease given up) or as a crash (not)."""
        assert self.task is not None
        self.task.cancel()
        await asyncio.wait([self.task])
        if release:
            await self.shipper.stop()

    async def close(self) -> None:
        """Stop (if running), then close its connections."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.wait([self.task])
        await self.shipper.stop()  # (gives the lease up only if still held)
        self.db.close()


async def _until(condition: Any, within_s: float, what: str) -> float:
    """Wait for ``condition`` (at most ``within_s``); the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within_s, f"{what}: not within {within_s} s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def _storing_at(home: Database, throughs: list[float]) -> Callable[[bytes], Awaitable[None]]:
    """A shipper's ``post`` that stores each batch at ``home`` as gcp's, as the home's
    endpoint does, and records the ``through`` each batch claimed."""

    async def post(body: bytes) -> None:
        batch = orjson.loads(body)
        throughs.append(batch["through"])
        await asyncio.to_thread(audit.store_shipped, home, "gcp", batch["events"], batch["through"])

    return post


def _lone_shipper(
    db: Database,
    post: Callable[[bytes], Awaitable[None]],
    lag_s: float,
    oldest: Callable[[], Awaitable[float | None]],
) -> AuditShipper:
    """A shipper without a lease (the only one), batches of 100, reading the buffer's
    oldest event through ``oldest`` and allowing it ``lag_s``."""
    return AuditShipper(
        db,
        post,
        None,
        batch=100,
        interval_s=0.05,
        max_body=1 << 20,
        buffer_lag_s=lag_s,
        oldest_buffered=oldest,
    )


def _unshipped(db: Database) -> int:
    return len(db.fetch("SELECT event_id FROM audit_events WHERE shipped_at IS NULL"))


@pytest.fixture
def follower_and_home(postgres_server: Any) -> Iterator[tuple[Database, Database]]:
    follower, home = _new_postgres(postgres_server), _new_postgres(postgres_server)
    yield follower, home
    follower.close()
    home.close()


@pytest.mark.parametrize("how", ["stopped", "died"])
def test_one_replica_ships_and_another_takes_over_within_the_bound(
    follower_and_home: tuple[Database, Database], redis_server: Any, how: str
) -> None:
    follower, home = follower_and_home
    events = _events(2000)
    audit.insert_events(follower, events[:1500])
    key = f"{{t-{uuid.uuid4().hex[:8]}}}:audit-shipper"

    async def main() -> None:
        redis = aioredis.Redis.from_url(redis_server.url)
        a, b = (Replica(follower.url, home, redis, key) for _ in range(2))
        try:
            a.start()
            await _until(lambda: a.shipper.shipping, 1.0, "a takes the free lease")
            b.start()
            await _until(lambda: _unshipped(follower) == 0, 10.0, "the backlog shipped")
            await asyncio.sleep(3 * RENEW_S)  # b had every chance to take the lease
            assert (a.stored, a.duplicates) == (1500, 0)
            assert b.shipper.batches == 0 and not b.shipper.shipping
            # a stops (or dies, leaving its lease to lapse): b ships what arrives next.
            await a.halt(release=how == "stopped")
            audit.insert_events(follower, events[1500:])
            bound = RENEW_S if how == "stopped" else TTL_S + RENEW_S
            # (Room for a loaded machine; a stopped holder's release still shows: well
            # under the lease's TTL_S.)
            took = await _until(lambda: b.shipper.shipping, bound + 1.0, "b takes over")
            assert how == "died" or took <= RENEW_S + 0.4, took
            await _until(lambda: _unshipped(follower) == 0, 10.0, "the rest shipped")
            assert b.stored == 500
        finally:
            for replica in (a, b):
                await replica.close()
            await redis.aclose()

    run_async(main())
    stored = home.fetch("SELECT event_id FROM audit_events")
    assert sorted(row["event_id"] for row in stored) == sorted(e["event_id"] for e in events)


def test_two_shippers_at_once_store_each_event_once(
    follower_and_home: tuple[Database, Database],
) -> None:
    """What a takeover may briefly cause (the old shipper's last batch still on its way):
    two shippers of the same events at once. The home stores each once and counts the
    copies it refused; both mark the events shipped."""
    follower, home = follower_and_home
    events = _events(3000)
    audit.insert_events(follower, events)

    async def main() -> tuple[Replica, Replica]:
        a, b = (Replica(follower.url, home, None, "") for _ in range(2))  # no lease
        a.start()
        b.start()
        try:
            await _until(lambda: _unshipped(follower) == 0, 20.0, "the backlog shipped")
            await _until(lambda: a.shipper.caught_up and b.shipper.caught_up, 5.0, "idle")
        finally:
            for replica in (a, b):
                await replica.close()
        return a, b

    a, b = run_async(main())
    assert a.duplicates + b.duplicates > 0  # they did ship the same events
    assert a.stored + b.stored == 3000
    assert a.shipper.shipped + b.shipper.shipped == 3000 + a.duplicates + b.duplicates
    stored = home.fetch("SELECT event_id FROM audit_events")
    assert len(stored) == 3000
    assert {row["event_id"] for row in stored} == {e["event_id"] for e in events}


def test_through_never_claims_an_event_the_home_lacks(
    follower_and_home: tuple[Database, Database],
) -> None:
    """A batch is selected past the one before while that one is being marked; an event a
    slow drainer stores late, older than batches already sent, is not in the sweep. Each
    batch's ``through`` (the time before which the home has every event) stays before
    it, and the next sweep ships it."""
    follower, home = follower_and_home
    backlog = _events(1200)
    audit.insert_events(follower, backlog)
    late = {**_events(1)[0], "ts": backlog[0]["ts"] - 1.0}  # within the buffer lag
    claims: list[tuple[float, float]] = []  # (through, the oldest event the home lacks)

    class Checking(Replica):
        async def post(self, body: bytes) -> None:
            await super().post(body)
            if self.shipper.batches == 0:
                audit.insert_events(follower, [late])  # stored late, behind the sweep
            here = {
                r["event_id"]: r["ts"]
                for r in follower.fetch("SELECT event_id, ts FROM audit_events")
            }
            there = {r["event_id"] for r in home.fetch("SELECT event_id FROM audit_events")}
            lacking = [ts for event_id, ts in here.items() if event_id not in there]
            if lacking:
                claims.append((orjson.loads(body)["through"], min(lacking)))

    async def main() -> Replica:
        shipper = Checking(follower.url, home, None, "")
        shipper.start()
        try:
            await _until(lambda: _unshipped(follower) == 0, 10.0, "everything shipped")
        finally:
            await shipper.close()
        return shipper

    shipper = run_async(main())
    assert shipper.stored == 1201 and shipper.shipper.batches >= 4  # 3 + the late sweep
    assert any(lacks == late["ts"] for _, lacks in claims)  # the late event was behind
    assert all(through < lacks for through, lacks in claims), claims


def test_through_stays_before_the_events_still_in_the_clouds_buffer(
    follower_and_home: tuple[Database, Database], redis_server: Any
) -> None:
    """While the cloud's PostgreSQL was down its events waited in the buffer (Redis), and
    the drainers take a while to catch up once it is back: a sweep that finds the
    database's events all shipped must not claim the cloud complete past the oldest event
    still buffered; once the drainers stored it (and deleted it from the stream), the
    claim moves on."""
    from gateway_app.state.governance_redis import RedisGovernanceState

    follower, home = follower_and_home
    lag_s = 2.0
    throughs: list[float] = []
    post = _storing_at(home, throughs)

    async def main() -> None:
        state = RedisGovernanceState.from_url(redis_server.url, prefix="{ship-buffer}:")
        try:
            assert await state.oldest_audit_s() is None  # nothing buffered
            # An event buffered as the gateway buffers one: its entry's time is now.
            await state.settle(None, 0, 0, orjson.dumps(_events(1)[0]))
            await state.flush()
            buffered = await state.oldest_audit_s()
            assert buffered is not None and abs(buffered - time.time()) < 2
            await state.client.delete(state.stream)
            # One buffered a minute ago, during the outage, not stored yet.
            old_s = time.time() - 60
            entry = await state.client.xadd(state.stream, {"e": b"{}"}, id=f"{int(old_s * 1000)}-0")
            assert await state.oldest_audit_s() == int(old_s * 1000) / 1000
            audit.insert_events(follower, _events(5))  # what the database has now
            shipper = _lone_shipper(follower, post, lag_s, state.oldest_audit_s)
            assert await shipper.ship_once() == 5 and shipper.caught_up
            assert throughs[-1] <= old_s - lag_s
            await state.client.xdel(state.stream, entry)  # a drainer stored it
            before = time.time()
            assert await shipper.ship_once() == 0
            assert throughs[-1] >= before - lag_s
            await shipper.stop()
        finally:
            await state.close()

    run_async(main())
    assert _through(home)["gcp"] == throughs[-1]


class _CutLink:
    """A replica's hot Redis client behind a switch: while ``cut``, every call fails as
    an unreachable Redis does (the other replicas still reach it)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.cut = False

    async def pipeline(self, commands: Any) -> Any:
        if self.cut:
            raise ConnectionError("Redis unreachable from this replica")
        return await self.real.pipeline(commands)

    async def execute(self, *args: Any) -> Any:
        if self.cut:
            raise ConnectionError("Redis unreachable from this replica")
        return await self.real.execute(*args)


def test_through_stays_before_the_events_a_replica_holds_while_redis_is_unreachable_from_it(
    follower_and_home: tuple[Database, Database], redis_server: Any
) -> None:
    """A replica that cannot reach the cloud's Redis holds its events in memory and adds
    them to the stream later, under new ids: neither the stream's oldest entry nor the
    buffer's lag covers them. Its floor, recorded while it could reach Redis, holds the
    cloud's completeness claim back until they are stored; a clean shutdown removes the
    floor, and a floor not renewed for FLOOR_STALE_S is dropped as a replica gone."""
    from gateway_app.governance.audit import AuditDrainer
    from gateway_app.state import governance_redis
    from gateway_app.state.governance_redis import RedisGovernanceState

    follower, home = follower_and_home
    lag_s = 0.2
    throughs: list[float] = []
    post = _storing_at(home, throughs)

    async def main() -> None:
        prefix = "{ship-floor}:"
        shipping = RedisGovernanceState.from_url(redis_server.url, prefix=prefix)
        cut_off = RedisGovernanceState.from_url(redis_server.url, prefix=prefix)
        link = _CutLink(cut_off.batcher.client)
        cut_off.batcher.client = link  # type: ignore[assignment]
        floors = prefix + "audit-floor"
        try:
            shipping.record_floors(every_s=0.05)
            cut_off.record_floors(every_s=0.05)
            while len(await shipping.client.hgetall(floors)) < 2:
                await asyncio.sleep(0.01)
            link.cut = True
            await asyncio.sleep(0.1)  # its last floor is now before what it holds next
            held = _events(1)[0]
            await cut_off.settle(None, 0, 0, orjson.dumps(held))
            assert cut_off.batcher.held == 1
            await asyncio.sleep(4 * lag_s)  # the shipping replica's floor moves on
            audit.insert_events(follower, _events(3))
            shipper = _lone_shipper(follower, post, lag_s, shipping.oldest_audit_s)
            assert await shipper.ship_once() == 3 and shipper.caught_up
            assert throughs[-1] < held["ts"], (throughs[-1], held["ts"])
            # Redis is reachable again: the held event enters the stream, a drainer
            # stores it, the shipper ships it and the claim moves past it.
            link.cut = False
            await _until(lambda: cut_off.batcher.held == 0, 5, "the held event written")
            drainer = AuditDrainer(shipping, follower, batch=100, block_s=0.05)
            assert await drainer.drain_once() == 1
            await drainer.close()
            before = time.time()
            await asyncio.sleep(0.1)  # both replicas record a floor past ``before``
            assert await shipper.ship_once() == 1
            assert throughs[-1] >= before - lag_s > held["ts"]
            # A clean shutdown removes the replica's floor.
            await cut_off.close()
            assert set(await shipping.client.hgetall(floors)) == {shipping.consumer.encode()}
            # A floor not renewed for FLOOR_STALE_S (a replica that died) is dropped.
            gone = time.time() - governance_redis.FLOOR_STALE_S - 1
            await shipping.client.hset(floors, "dead-replica", repr(gone))
            oldest = await shipping.oldest_audit_s()
            assert oldest is not None and oldest > gone + 300
            assert b"dead-replica" not in await shipping.client.hgetall(floors)
            await shipper.stop()
        finally:
            await cut_off.close()
            await shipping.close()

    run_async(main())


class _Lease:
    """A lease the test hands out and takes back (``held``), renewed as the real one."""

    renew_s = 0.02

    def __init__(self) -> None:
        self.held = True
        self.token = "test-lease"

    async def renew(self) -> bool:
        return self.held

    async def release(self) -> None:
        self.held = False


def test_a_mark_failing_as_the_lease_goes_leaves_the_replica_a_shipper(
    follower_and_home: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last batch's mark fails (the database) just as the lease is lost: the replica
    logs it and stays in the running; given the lease again it ships the rest, and the
    batch whose mark failed is stored once at the home."""
    follower, home = follower_and_home
    events = _events(300)
    audit.insert_events(follower, events[:100])
    lease = _Lease()
    mark = audit.mark_shipped
    failing = {"left": 0}

    def flaky_mark(db: Database, rows: Any, at: float) -> None:
        if failing["left"]:
            failing["left"] -= 1
            lease.held = False  # the lease goes while this mark fails
            raise DatabaseError("postgres: the server closed the connection")
        mark(db, rows, at)

    monkeypatch.setattr(audit, "mark_shipped", flaky_mark)
    stored: list[int] = []

    async def post(body: bytes) -> None:
        data = orjson.loads(body)
        stored.append(audit.store_shipped(home, "gcp", data["events"], data["through"])[0])

    async def main() -> None:
        shipper = AuditShipper(
            follower,
            post,
            lease,
            batch=100,
            interval_s=0.02,
            max_body=1 << 20,  # type: ignore[arg-type]
        )
        task = asyncio.get_running_loop().create_task(shipper.run())
        try:
            await _until(lambda: _unshipped(follower) == 0, 10.0, "the first batch shipped")
            failing["left"] = 1
            audit.insert_events(follower, events[100:200])
            await _until(lambda: not lease.held, 10.0, "the mark fails, the lease goes")
            await asyncio.sleep(10 * _Lease.renew_s)  # the replica, not shipping, goes on
            assert not task.done(), task
            audit.insert_events(follower, events[200:])
            lease.held = True
            await _until(lambda: _unshipped(follower) == 0, 10.0, "the rest shipped")
        finally:
            task.cancel()
            await asyncio.wait([task])
            await shipper.stop()

    run_async(main())
    rows = home.fetch("SELECT event_id FROM audit_events")
    assert sorted(row["event_id"] for row in rows) == sorted(e["event_id"] for e in events)
    assert sum(stored) == 300


class _DroppingLease:
    """A lease whose renewal drops a cancellation arriving during it, as redis-py's
    command does on Python 3.11 (``gateway_app/aio.py``); never held."""

    ttl_s, renew_s, token, held = 1.0, 0.02, "dropping", False

    def __init__(self) -> None:
        self.renewals = 0
        self.renewing = asyncio.Event()

    async def renew(self) -> bool:
        self.renewals += 1
        self.renewing.set()
        await drop_cancellation()  # the command on its way
        return False

    async def release(self) -> None:
        """Nothing held."""


def test_a_stopped_shipper_renews_no_more_when_the_renewal_drops_its_cancellation(
    tmp_path: Path,
) -> None:
    """The shipper's lease renewer, cancelled with its shipper during a renewal whose
    Redis call drops the cancellation, stops at its next pause: it does not go on
    renewing (and taking) a lease no one ships under."""
    db = Database(f"sqlite:///{tmp_path / 'follower.db'}")
    db.migrate()
    lease = _DroppingLease()

    async def post(body: bytes) -> None:
        raise AssertionError("never holds the lease: ships nothing")

    async def main() -> tuple[int, int, list[str]]:
        shipper = AuditShipper(db, post, lease, batch=100, interval_s=0.05, max_body=1 << 20)  # type: ignore[arg-type]
        task = asyncio.get_running_loop().create_task(shipper.run())
        await lease.renewing.wait()
        task.cancel()  # the renewer is cancelled during its renewal
        await asyncio.wait([task], timeout=5.0)
        renewals = lease.renewals
        await asyncio.sleep(10 * lease.renew_s)
        left = [repr(t) for t in asyncio.all_tasks() if "_keep_lease" in repr(t)]
        await shipper.stop()
        return renewals, lease.renewals, left

    try:
        then, later, left = run_async(main())
    finally:
        db.close()
    assert (then, later, left) == (1, 1, [])
