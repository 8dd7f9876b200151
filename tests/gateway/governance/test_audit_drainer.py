"""The audit drainer waits for a fuller batch after a partial one (fewer database writes)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gateway_app.governance.audit import AuditDrainer
from gateway_app.governance.storage import Database
from gateway_app.state.governance import InProcessGovernanceState
from tests.gateway.conftest import run_async


class CountingDatabase(Database):
    """Counts batch writes."""

    writes: list[int]

    def executemany(self, sql: str, rows: Any) -> None:
        rows = list(rows)
        self.writes.append(len(rows))
        super().executemany(sql, rows)


def _event(n: int) -> bytes:
    return b'{"event_id":"e%d","kind":"request","ts":1.0,"day":"2026-11-27","month":"2026-11"}' % n


async def _until(condition: Any) -> None:
    for _ in range(500):  # bounded: 5 s
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 5 s")


def _drain(tmp_path: Path, interval_s: float) -> list[int]:
    db = CountingDatabase(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    db.writes = []
    db.migrate()
    state = InProcessGovernanceState()

    async def main() -> None:
        drainer = AuditDrainer(state, db, batch=100, block_s=0.01, interval_s=interval_s)
        drainer.start()
        for n in range(3):
            await state.append(_event(n))
        await _until(lambda: drainer.written == 3)
        # Arrive one by one, as requests do, while the drainer waits after its partial batch.
        for n in range(3, 8):
            await state.append(_event(n))
            await asyncio.sleep(0.03)
        await _until(lambda: drainer.written == 8)
        await drainer.stop()

    run_async(main())
    rows = db.fetch("SELECT COUNT(*) AS n FROM audit_events")
    assert rows[0]["n"] == 8
    db.close()
    return db.writes


def test_a_partial_batch_waits_for_more_events(tmp_path: Path) -> None:
    assert _drain(tmp_path, interval_s=1.0) == [3, 5]


def test_without_an_interval_every_read_is_written_at_once(tmp_path: Path) -> None:
    # The contrast that makes the test above meaningful: events arriving 30 ms apart
    # are written in several small batches when the drainer does not wait.
    assert len(_drain(tmp_path, interval_s=0.0)) > 2


def test_drainer_recreates_the_group_after_redis_restarts_empty(tmp_path: Path) -> None:
    """Issue 20 item 10: Redis restarts without its data (the consumer group is gone).
    The drainer must recreate the group and store every event queued since, each once."""
    from gateway_app.state.governance_redis import RedisGovernanceState
    from tests.gateway.governance.services import RedisServer

    redis_server = RedisServer()
    db = Database(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    db.migrate()

    async def main() -> None:
        state = RedisGovernanceState.from_url(redis_server.url)
        drainer = AuditDrainer(state, db, batch=100, block_s=0.05)
        drainer.start()
        try:
            for n in range(5):
                await state.settle(None, 0, 0, _event(n))
            await _until(lambda: drainer.written == 5)
            redis_server.stop()
            redis_server.start()  # empty: no stream, no group
            for n in range(5, 12):
                await state.settle(None, 0, 0, _event(n))
            for _ in range(300):  # bounded: 15 s (the drainer backs off while Redis is down)
                if drainer.written >= 12:
                    break
                await asyncio.sleep(0.05)
        finally:
            await drainer.stop()
            await state.close()

    try:
        run_async(main())
        rows = db.fetch("SELECT event_id FROM audit_events ORDER BY event_id")
        assert sorted(r["event_id"] for r in rows) == sorted(f"e{n}" for n in range(12))
    finally:
        db.close()
        redis_server.stop()


def test_events_the_database_cannot_hold_do_not_stop_the_drain(postgres_server: Any) -> None:
    """The drainer and PostgreSQL together: a customer with a NUL (a caller's ``user``) and
    a status past INTEGER arrive between ordinary events; every event is stored once, the
    drain acknowledges them all and goes on with the next ones (before, the batch failed
    on every retry and stopped the audit of every request)."""
    import orjson

    from gateway_app.governance import audit

    db = Database(postgres_server.url)
    db.migrate()
    db.execute("DELETE FROM audit_events")
    state = InProcessGovernanceState()
    sent = [
        audit.event("request", team_id="t", status=200),
        audit.event("request", team_id="t", status=200, customer="a\x00b"),
        audit.event("request", team_id="t", status=2**40),
        audit.event("request", team_id="t", status=200),
    ]
    later = audit.event("request", team_id="t", status=201)

    async def main() -> None:
        drainer = AuditDrainer(state, db, batch=100, block_s=0.01)
        drainer.start()
        for event in sent:
            await state.append(orjson.dumps(event))
        await _until(lambda: drainer.written == len(sent))
        await state.append(orjson.dumps(later))
        await _until(lambda: drainer.written == len(sent) + 1)
        await drainer.stop()

    try:
        run_async(main())
        rows = {r["event_id"]: r for r in db.fetch("SELECT * FROM audit_events")}
    finally:
        db.close()
    assert set(rows) == {e["event_id"] for e in [*sent, later]}
    assert rows[sent[1]["event_id"]]["customer"] == "a\ufffdb"
    assert '"status": 1099511627776' in rows[sent[2]["event_id"]]["detail"]
    assert rows[later["event_id"]]["status"] == 201
