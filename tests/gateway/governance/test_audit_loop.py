"""The audit drainer shares the event loop with the requests (issue 24 item 1: the p99).

A pass decodes and formats its batch on the loop in slices, yielding between them, and
its database thread only sends the formatted rows: a request that arrives meanwhile
waits one slice, not the batch (``bench/partial-p99-tail.md``).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway_app.governance import audit
from gateway_app.governance.audit import AuditDrainer
from gateway_app.governance.storage import CopyText, Database
from gateway_app.state.governance import InProcessGovernanceState
from tests.gateway.conftest import run_async

BATCH = 500  # a large batch (governance.audit_batch goes up to 10,000; the default is 50)


def _events(n: int) -> list[dict[str, Any]]:
    return [
        audit.event(
            "request",
            request_id=f"req-{i}",
            key_id="key_1",
            team_id="team-a",
            model="gpt-4o-mini",
            status=200,
            prompt_tokens=9,
            completion_tokens=3,
            cost_usd=3.15e-06,
            latency_ms=1.234,
            customer="tab\there, newline\nthere, backslash \\ and NUL \x00",
            detail={"note": "a\tb"} if i % 7 == 0 else None,
        )
        for i in range(n)
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    else:
        database = Database(request.getfixturevalue("postgres_server").url)
        database.migrate()
        database.execute("DELETE FROM audit_events")
    database.migrate()
    yield database
    database.close()


def _pass(db: Database, events: list[dict[str, Any]], drainer: AuditDrainer, probe: Any) -> int:
    """Queue ``events``, run one drain pass with ``probe`` running beside it; the count."""

    async def main() -> int:
        for data in events:
            await drainer.state.append(orjson.dumps(data))
        task = asyncio.get_running_loop().create_task(probe())
        try:
            return await drainer.drain_once()
        finally:
            task.cancel()
            await drainer.close()  # (PostgreSQL: its connection is of this loop)

    return run_async(main())


def test_a_pass_builds_its_batch_in_slices_and_stores_it_as_sent(db: Database) -> None:
    """500 events in slices of at most 50 (the time bound set out of reach): 10 slices,
    the loop runs between them, and every value is stored as it was sent (the COPY text
    psycopg formatted on the loop: tabs, newlines, backslashes, NUL as U+FFFD, JSON)."""
    events = _events(BATCH)
    drainer = AuditDrainer(InProcessGovernanceState(), db, slice_events=50, slice_s=60.0)
    turns = [0]

    async def probe() -> None:
        while True:
            turns[0] += 1
            await asyncio.sleep(0)

    assert _pass(db, events, drainer, probe) == BATCH
    assert drainer.slices == 10
    assert turns[0] >= 10  # at least once between slices, besides the awaits of I/O
    stored = {r["request_id"]: r for r in db.fetch("SELECT * FROM audit_events")}
    assert len(stored) == BATCH
    for sent in (events[0], events[1], events[-1]):
        row = stored[sent["request_id"]]
        assert row["customer"] == sent["customer"].replace("\x00", "\ufffd")
        assert row["cost_usd"] == sent["cost_usd"] and row["status"] == 200
        assert (orjson.loads(row["detail"]) if row["detail"] else None) == sent["detail"]


def test_a_pass_does_its_python_work_on_the_loop_in_short_slices(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each event made to cost 100 µs of Python (a slow machine, big events): 50 ms of
    work for 500. It all runs on the loop's thread, in slices of at most 0.2 ms (so at
    least 100 of them): none in the database thread, which would hold the GIL and make
    the loop wait up to the interpreter's switch interval (5 ms) again and again (the
    code before built and formatted the rows there). Counted, not timed: a loaded CI
    machine preempts the process at random."""
    row, add = audit.row, CopyText.add
    threads: list[int] = []

    def costly_row(data: dict[str, Any]) -> tuple[Any, ...]:
        threads.append(threading.get_ident())
        until = time.perf_counter() + 0.0001
        while time.perf_counter() < until:
            pass
        return row(data)

    def recorded_add(self: CopyText, values: Any) -> None:
        threads.append(threading.get_ident())
        add(self, values)

    monkeypatch.setattr(audit, "row", costly_row)
    monkeypatch.setattr(CopyText, "add", recorded_add)
    drainer = AuditDrainer(InProcessGovernanceState(), db)
    turns = [0]

    async def probe() -> None:
        while True:
            turns[0] += 1
            await asyncio.sleep(0)

    loop_thread = threading.get_ident()  # run_async runs the loop on this thread
    assert _pass(db, _events(BATCH), drainer, probe) == BATCH
    formatted = BATCH if db.kind == "postgres" else 0
    assert threads.count(loop_thread) == len(threads) == BATCH + formatted
    assert drainer.slices >= 100
    assert turns[0] >= 100


def test_a_batch_is_read_from_redis_in_replies_of_at_most_100_entries(redis_server: Any) -> None:
    """Each XREADGROUP reply is parsed on the loop: a 250-event batch arrives in replies of
    at most ``READ_CHUNK`` (100) entries, new ones and, read again before any
    acknowledgement (a failed database write), the same ones pending, in order, each once."""
    from gateway_app.state import governance_redis
    from gateway_app.state.governance_redis import RedisGovernanceState

    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"
    state = RedisGovernanceState.from_url(redis_server.url, prefix=prefix)
    replies: list[int] = []
    execute = state.reader.execute

    async def counted(*command: Any) -> Any:
        reply = await execute(*command)
        if command[0] == "XREADGROUP" and reply and reply[0][1]:
            replies.append(len(reply[0][1]))
        return reply

    state.reader.execute = counted  # type: ignore[method-assign]

    async def main() -> tuple[list[str], list[str], list[str]]:
        try:
            await state.client.xadd(state.stream, {"e": b"warm"})  # the stream exists
            first = await state.read_audit(BATCH, 0.05)
            await state.ack([entry_id for entry_id, _ in first])
            sent = []
            for n in range(250):
                sent.append((await state.client.xadd(state.stream, {"e": b"%d" % n})).decode())
            replies.clear()
            new = [entry_id for entry_id, _ in await state.read_audit(BATCH, 0.05)]
            again = [entry_id for entry_id, _ in await state.read_audit(BATCH, 0.05)]
            return sent, new, again
        finally:
            await state.close()

    sent, new, again = run_async(main())
    assert new == sent and again == sent
    assert replies == [100, 100, 50, 100, 100, 50]
    assert getattr(governance_redis, "READ_CHUNK", None) == 100


def test_without_psycopgs_row_formatter_the_write_formats_the_rows(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``CopyText`` uses psycopg's row formatter from a module that is not public API. An
    install where it is not found must not stop the audit: the drain stores every event,
    formatted row by row as the ``COPY`` is written (psycopg's ``write_row``), and says
    so once."""
    import builtins
    import importlib

    real_import = builtins.__import__

    def no_copy_base(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "psycopg._copy_base":
            raise ImportError("No module named 'psycopg._copy_base' (test)")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_copy_base)
    monkeypatch.setattr(
        importlib.import_module("gateway_app.governance.storage"), "_COPY_TEXT_WARNED", False
    )
    events = _events(120)
    drainer = AuditDrainer(InProcessGovernanceState(), db)

    async def probe() -> None:
        await asyncio.sleep(3600)

    with caplog.at_level("WARNING", logger="gateway_app.governance"):
        assert _pass(db, events, drainer, probe) == 120
    stored = {r["request_id"]: r for r in db.fetch("SELECT * FROM audit_events")}
    assert len(stored) == 120
    assert stored["req-7"]["customer"] == events[7]["customer"].replace("\x00", "\ufffd")
    warned = [r for r in caplog.records if "row formatter not found" in r.getMessage()]
    assert len(warned) == (1 if db.kind == "postgres" else 0)


_REQUEST = {
    "request_id": "req-1",
    "key_id": "key_1",
    "team_id": "team-a",
    "project_id": "proj-a",
    "customer": "tab\there, newline\nthere, backslash \\ and NUL \x00",
    "model": "gpt-4o-mini",
    "deployment": "openai/gpt-4o-mini",
    "provider": "openai",
    "status": 200,
    "prompt_tokens": 9,
    "completion_tokens": 3,
    "cost_usd": 3.15e-06,
    "latency_ms": 1.234,
    "cache_outcome": "miss",
    "rejection": None,
    "usage_source": "reported",
    "detail": None,
    "actor": None,  # Governance.settle's event has every column
    "action": None,
}


def test_decode_is_the_row_of_every_kind_of_buffered_event() -> None:
    """:func:`audit.decode` of a buffered event is :func:`audit.row` of it, whichever path
    it takes: every column and none to fix, a NUL (as U+FFFD), a literal backslash-u0000
    (kept), ``detail`` (JSON text), columns missing (an admin event, an older replica's
    request event), the global plane's ``cloud``; a payload that is not an object is a
    ValueError (the drainer drops it with an error)."""
    cases = [
        {**_REQUEST, "customer": "plain"},
        _REQUEST,
        {**_REQUEST, "customer": "a backslash-u0000: \\u0000"},
        {**_REQUEST, "customer": "plain", "detail": {"request": "a\tb"}},
        {**_REQUEST, "detail": {"request": "a\tb \x00"}},
        {k: v for k, v in _REQUEST.items() if k not in ("actor", "action")},
        {"actor": "admin:ops", "action": "key.create", "team_id": "t", "detail": {"id": 1}},
    ]
    for cloud in (None, "gcp"):
        audit.set_cloud(cloud)
        try:
            for fields in cases:
                data = audit.event("request", **fields)
                decoded = audit.decode(orjson.dumps(data))
                assert decoded == audit.row(data), fields
                assert decoded.__class__ is tuple and decoded[audit.COLUMNS.index("cloud")] == cloud
        finally:
            audit.set_cloud(None)
    assert audit.decode(orjson.dumps(_REQUEST))[audit.COLUMNS.index("customer")].endswith("\ufffd")
    for payload in (b"[1, 2]", b'"text"', b"{"):
        with pytest.raises(ValueError):
            audit.decode(payload)


def test_the_drainer_reads_an_event_with_every_column_in_one_call(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An event with every column and nothing to fix (a request's, as ``Governance.settle``
    buffers it) is stored without :func:`audit.row`'s lookup and scan per column (~5 µs
    per event on the loop before); the others (a NUL to replace, an older replica's event
    without the admin columns) go through it and are stored as well, and a payload that
    is not an event is dropped with an error, the rest stored."""
    calls = [0]
    row = audit.row

    def counted(data: dict[str, Any]) -> tuple[Any, ...]:
        calls[0] += 1
        return row(data)

    monkeypatch.setattr(audit, "row", counted)
    drainer = AuditDrainer(InProcessGovernanceState(), db)
    plain = {**_REQUEST, "customer": "tab\there, backslash \\"}
    events = [audit.event("request", **{**plain, "request_id": f"req-{i}"}) for i in range(20)]
    events.append(audit.event("request", **{**_REQUEST, "request_id": "nul"}))
    older = {k: v for k, v in plain.items() if k not in ("actor", "action")}
    events.append(audit.event("request", **{**older, "request_id": "older"}))

    async def main() -> int:
        for data in events:
            await drainer.state.append(orjson.dumps(data))
        await drainer.state.append(b"[1, 2]")
        try:
            return await drainer.drain_once()
        finally:
            await drainer.close()

    assert run_async(main()) == len(events) + 1  # the unreadable one is acknowledged too
    assert calls[0] == 2  # "nul" and "older" only
    assert "dropping an unreadable audit event" in caplog.text
    stored = {r["request_id"]: r for r in db.fetch("SELECT * FROM audit_events")}
    assert sorted(stored) == sorted([f"req-{i}" for i in range(20)] + ["nul", "older"])
    assert stored["nul"]["customer"] == _REQUEST["customer"].replace("\x00", "\ufffd")
    for request_id in ("req-0", "req-19", "older"):
        got = stored[request_id]
        assert got["customer"] == plain["customer"] and got["detail"] is None
        assert (got["project_id"], got["cache_outcome"], got["prompt_tokens"]) == (
            "proj-a",
            "miss",
            9,
        )


def _served_request_rows(url: str, gov: Any, requests: int) -> list[dict[str, Any]]:
    """``requests`` chat calls with a new key (the openai SDK), then their audit rows once
    the drainer has stored them (or what is stored after 5 s)."""
    from tests.gateway.governance.test_gateway_governance import Admin, chat

    key = Admin(url)("POST", "/admin/keys", json={"team_id": "a", "project_id": "p"}).json()
    for _ in range(requests):
        assert chat(url, key["key"]).http_response.status_code == 200
    deadline = time.monotonic() + 5
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(rows) < requests:
        rows = gov.db.fetch("SELECT * FROM audit_events WHERE kind = 'request'")
        time.sleep(0.05)
    return rows


def test_a_served_requests_event_is_buffered_with_every_column(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the gateway (the openai SDK): each request's event has every column, so the
    drainer reads it in one call; :func:`audit.row` runs for the admin events only."""
    from tests.gateway.governance.test_gateway_governance import governed

    kinds: list[str] = []
    row = audit.row

    def counted(data: dict[str, Any]) -> tuple[Any, ...]:
        kinds.append(data["kind"])
        return row(data)

    monkeypatch.setattr(audit, "row", counted)
    with governed(fake_openai, fake_anthropic, tmp_path) as (running, gov):
        rows = _served_request_rows(running.url, gov, 3)
    assert len(rows) == 3 and all(r["team_id"] == "a" and r["status"] == 200 for r in rows)
    assert kinds and set(kinds) == {"admin"}


def test_a_request_event_is_the_event_of_every_column() -> None:
    """:func:`audit.request_event` (settle's literal) is ``audit.event("request", ...)`` of
    the same fields: every column once, each value in its own column (a field passed to
    the wrong parameter fails), read by :func:`audit.decode` in one call."""
    fields = {
        name: f"v-{name}"
        for name in audit.COLUMNS
        if name not in ("event_id", "kind", "ts", "day", "month", "cloud", "actor", "action")
    }
    built = audit.request_event(**fields)
    reference = audit.event("request", **fields, actor=None, action=None)
    assert list(built) == [*reference]  # the same keys in the same order
    assert len(built) == len(audit.COLUMNS)
    for name in ("event_id", "ts"):  # a new id and time per event
        built.pop(name), reference.pop(name)
    assert built == reference
    payload = orjson.dumps(audit.request_event(**fields))
    assert audit.decode(payload) == audit.row(orjson.loads(payload))


def test_settling_looks_a_deployments_prices_up_once(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settling a served request prices it from a per-deployment cache: the price list is
    asked once per deployment, not once per request, and the cost stays the same."""
    from tests.gateway.governance.test_gateway_governance import governed

    with governed(fake_openai, fake_anthropic, tmp_path) as (running, gov):
        asked: list[str] = []
        prices = gov.pricing.prices

        def counted(deployment: Any, provider_type: str) -> Any:
            asked.append(deployment.id)
            return prices(deployment, provider_type)

        monkeypatch.setattr(gov.pricing, "prices", counted)
        rows = _served_request_rows(running.url, gov, 4)
    assert len(rows) == 4
    assert len(asked) == 1, asked
    costs = {r["cost_usd"] for r in rows}
    assert len(costs) == 1 and costs.pop() > 0


def test_a_write_holds_at_most_audit_batch_events_or_one_entry(redis_server: Any) -> None:
    """Flushes of 20, 20, 20, 100 and 5 events (one stream entry each) drained with
    ``audit_batch`` 50: each write holds at most 50 events, or the one entry of 100 alone;
    an entry read past the bound stays pending and is the next pass's first; every event
    is stored once."""
    from gateway_app.state.governance_redis import RedisGovernanceState

    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"
    sizes = [20, 20, 20, 100, 5]
    events = _events(sum(sizes))
    database = Database("sqlite:///:memory:")
    database.migrate()
    writes: list[int] = []
    real_insert = audit.insert_rows

    def recorded(db: Database, rows: Any, copy_text: Any = None, count: Any = None) -> None:
        writes.append(len(rows))
        real_insert(db, rows, copy_text, count)

    async def main() -> list[int]:
        state = RedisGovernanceState.from_url(
            redis_server.url, prefix=prefix, flush_interval_s=3600, flush_items=10**6
        )
        sent = iter(events)
        for size in sizes:
            for _ in range(size):
                await state.settle(None, 0, 0, orjson.dumps(next(sent)))
            await state.batcher.drain()
        assert await state.client.xlen(state.stream) == len(sizes)
        drainer = AuditDrainer(state, database, batch=50, block_s=0.01)
        passes = []
        while drained := await drainer.drain_once():
            passes.append(drained)
        assert await state.audit_depth() == 0
        await state.close()
        return passes

    audit_insert = audit.insert_rows
    audit.insert_rows = recorded  # type: ignore[assignment]
    try:
        passes = run_async(main())
    finally:
        audit.insert_rows = audit_insert  # type: ignore[assignment]
    assert passes == writes == [40, 20, 100, 5]
    stored = database.fetch("SELECT request_id FROM audit_events")
    assert sorted(r["request_id"] for r in stored) == sorted(e["request_id"] for e in events)
    database.close()


def test_a_pass_stopped_at_the_bound_is_followed_at_once_not_after_the_interval(
    redis_server: Any,
) -> None:
    """Six flushes of 30 events (a backlog, after an outage) drained with ``audit_batch``
    50: each pass holds one entry (30 events: the next does not fit), fewer than the
    batch, yet the buffer is not empty, so the drainer reads on at once instead of
    waiting ``governance.audit_interval_s`` as after a partial batch (here an hour: the
    backlog would wait that long per pass)."""
    from gateway_app.state.governance_redis import RedisGovernanceState

    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"
    events = _events(180)
    database = Database("sqlite:///:memory:")
    database.migrate()

    async def main() -> int:
        state = RedisGovernanceState.from_url(
            redis_server.url, prefix=prefix, flush_interval_s=3600, flush_items=10**6
        )
        for at in range(0, len(events), 30):
            for data in events[at : at + 30]:
                await state.settle(None, 0, 0, orjson.dumps(data))
            await state.batcher.drain()
        drainer = AuditDrainer(state, database, batch=50, block_s=0.01, interval_s=3600)
        drainer.start()
        deadline = time.monotonic() + 30
        while drainer.written < len(events) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await drainer.stop(flush_s=0)
        await state.close()
        return drainer.written

    assert run_async(main()) == len(events)
    assert database.fetch("SELECT COUNT(*) AS n FROM audit_events")[0]["n"] == len(events)
    database.close()


def test_a_writers_entries_of_copy_lines_are_marked_and_appended_unscanned(
    redis_server: Any, postgres_server: Any
) -> None:
    """On PostgreSQL a replica's flush of request lines only marks its entry with the lines'
    layout (``l``), and the drainer appends a marked entry whole (``RowBatch.add_lines``):
    no scan of its bytes. A flush with a JSON object among its events, and an entry
    marked with another release's layout, are unmarked or not trusted: checked
    (``add_block``), the JSON object stored from its own fields. Every event is stored
    once, awkward values intact."""
    from gateway_app.state.governance_redis import RedisGovernanceState

    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"
    database = Database(postgres_server.new_database("marked"))
    database.migrate()
    awkward = "tab\there, newline\nthere, backslash \\ and NUL \x00"

    def line(i: int) -> bytes:
        return audit.request_line(
            f"req-{i}", "key_1", "team-a", None, awkward, "m", "d", "openai", 200, 9, 3,
            3.15e-06, 1.234, None, None, "reported", {"note": "a\tb"} if i % 7 == 0 else None,
        )  # fmt: skip

    admin = orjson.dumps(audit.event("admin", actor="admin", action="key.create"))
    added, checked = [], []
    real_lines, real_block = audit.RowBatch.add_lines, audit.RowBatch.add_block

    def add_lines(batch: Any, block: bytes, events: int) -> None:
        added.append(events)
        real_lines(batch, block, events)

    def add_block(batch: Any, block: bytes, events: int) -> bool:
        checked.append(events)
        return real_block(batch, block, events)

    async def main() -> list[list[bytes]]:
        state = RedisGovernanceState.from_url(
            redis_server.url, prefix=prefix, flush_interval_s=3600, flush_items=10**6
        )
        state.mark_lines(audit.LAYOUT)
        for events in ([line(i) for i in range(30)], [line(30), admin, line(31)], [line(32)]):
            for event in events:
                await state.settle(None, 0, 0, event)
            await state.batcher.drain()
        # An entry of lines marked by a release whose columns differ: not trusted.
        foreign = line(33) + line(34)
        await state.client.xadd(state.stream, {"n": 2, "b": foreign, "l": b"copy-00000000"})
        await state.client.incrby(state.depth_key, 2)
        entries = await state.client.xrange(state.stream)
        drainer = AuditDrainer(state, database, batch=1000, block_s=0.01)
        while await drainer.drain_once():
            pass
        assert await state.audit_depth() == 0
        await drainer.close()
        await state.close()
        return [sorted(fields) for _, fields in entries]

    audit.RowBatch.add_lines = add_lines  # type: ignore[method-assign]
    audit.RowBatch.add_block = add_block  # type: ignore[method-assign]
    try:
        fields = run_async(main())
    finally:
        audit.RowBatch.add_lines = real_lines  # type: ignore[method-assign]
        audit.RowBatch.add_block = real_block  # type: ignore[method-assign]
    assert fields == [
        [b"b", b"l", b"n"],  # 30 lines: marked
        [b"b", b"n"],  # two lines and a JSON object: unmarked
        [b"b", b"l", b"n"],  # one line: marked again
        [b"b", b"l", b"n"],  # another layout's mark
    ]
    assert added == [30, 1]  # the marked entries: appended whole, unscanned
    assert checked == [3, 2]  # the unmarked one and the foreign mark's: checked
    rows = database.fetch("SELECT request_id, kind, customer, detail FROM audit_events")
    requests = sorted(r["request_id"] for r in rows if r["kind"] == "request")
    assert requests == sorted(f"req-{i}" for i in range(35))
    assert {r["customer"] for r in rows if r["kind"] == "request"} == {
        awkward.replace("\x00", "\ufffd")
    }
    assert [r["kind"] for r in rows].count("admin") == 1
    database.close()


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_governance_marks_its_buffers_lines_on_postgresql_only(
    kind: str, redis_server: Any, postgres_server: Any, tmp_path: Path
) -> None:
    """Its request events are ``COPY`` lines on PostgreSQL (``request_line``): the Redis
    buffer marks its entries of them. On SQLite they are JSON objects: no mark."""
    from gateway_app.governance.service import Governance
    from gateway_app.state.governance_redis import RedisGovernanceState
    from tests.gateway.governance.services import one_model_config

    async def main() -> bytes | None:
        state = RedisGovernanceState.from_url(redis_server.url, prefix=f"{{t{kind}}}:")
        url = (
            postgres_server.new_database("wired")
            if kind == "postgres"
            else f"sqlite:///{tmp_path / 'gov.sqlite3'}"
        )
        db = Database(url)
        db.migrate()
        Governance(one_model_config(), state=state, db=db, admin_key="adm", secret=b"s")
        layout = state.batcher.layout
        await state.close()
        db.close()
        return layout

    assert run_async(main()) == (audit.LAYOUT if kind == "postgres" else None)
