"""A request's audit event buffered as the line its batch's ``COPY`` takes (PostgreSQL).

The line is escaped by the gateway, not by psycopg, so PostgreSQL itself judges it: every
awkward value goes through the real ``COPY`` and reads back as the JSON event's row would.
A batcher flush's events are one entry of ``{aigw}:audit-v3`` (the lines concatenated):
replicas of the release before read and write ``{aigw}:audit-v2`` (one event per entry),
those before that ``{aigw}:audit``, and this version drains all three, so a rolling update
stores every event once; a re-delivered batch of lines is stored once too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway_app.governance import audit
from gateway_app.governance.audit import AuditDrainer, RowBatch, insert_rows, store_rows
from gateway_app.governance.storage import AsyncAppender, ConnectionName, Database
from gateway_app.state.governance import InProcessGovernanceState
from gateway_app.state.governance_redis import GROUP, RedisGovernanceState
from tests.gateway.conftest import run_async

AWKWARD = [
    "tab\there",
    "newline\nthere",
    "carriage\rreturn",
    "back\\slash",
    "a backslash before n: \\N",  # not the null marker
    "\\N",  # the null marker's text, as a value
    "\\.",  # COPY's end-of-data marker, as a value
    "ends in a backslash\\",
    "quotes ' \" and a comma,",
    "unicode: żółć 東京 🚀 \u2028 \u00a0",
    "NUL \x00 inside",  # stored as U+FFFD (text cannot hold a NUL)
    "",
    " leading and trailing spaces ",
]


def _fields(i: int, value: str) -> dict[str, Any]:
    """A request's event fields, ``value`` in every text column a caller or a request
    sets; every other event null where it can be."""
    full = i % 2 == 0
    return {
        "request_id": f"req-{i}-{value}",
        "key_id": f"key-{value}",
        "team_id": f"team-{value}",
        "project_id": value if full else None,
        "customer": value if full else None,
        "model": value,
        "deployment": f"dep/{value}" if full else None,
        "provider": value if full else None,
        "status": 200 if full else None,
        "prompt_tokens": 9 + i,
        "completion_tokens": 2**40 + i,
        "cost_usd": 7.05e-06 * (i + 1) if full else None,
        "latency_ms": 1.234 + i,
        "cache_outcome": value if full else None,
        "rejection": f"rate_limit:{value}" if not full else None,
        "usage_source": "reported" if full else None,
        "detail": {"request": value, "nested": [value, None]} if i % 3 == 0 else None,
    }


def _line_and_row(i: int, value: str) -> tuple[bytes, tuple[Any, ...]]:
    """The event as its line, and as the row its JSON object gives (the same ids/times)."""
    fields = _fields(i, value)
    line = audit.request_line(*fields.values())
    values = audit.parse_line(line)
    data = dict(zip(audit.COLUMNS, values, strict=True))
    # The JSON event of the same request, with the line's id and time.
    event = audit.request_event(*fields.values())
    event.update({c: data[c] for c in ("event_id", "ts", "day", "month", "cloud")})
    return line, audit.row(orjson.loads(orjson.dumps(event)))


@pytest.mark.parametrize(
    ("latency_ms", "written"),
    [
        (0.0, "0.000"),
        (0.0004, "0.000"),
        (0.0006, "0.001"),
        (1.234, "1.234"),
        (12.3456, "12.346"),
        (999.9996, "1000.000"),
        (3_600_000.25, "3600000.250"),
        (-3.5, "-3.500"),  # (no clock here goes back; written as it is all the same)
    ],
)
def test_a_lines_time_and_latency_are_fixed_point_to_the_microsecond(
    monkeypatch: pytest.MonkeyPatch, latency_ms: float, written: str
) -> None:
    """The line's ``ts`` (seconds) and ``latency_ms`` in fixed notation, six and three
    decimals, built from integer microseconds rather than formatted as floats: the
    digits of each group of three, a leading zero kept, a carry into the whole part."""
    fields = _fields(0, "v")
    fields["latency_ms"] = latency_ms
    for now, ts in [
        (1_796_630_400.000_001, "1796630400.000001"),
        (1_796_630_400.012_345, "1796630400.012345"),
        (1_796_630_400.999_999_7, "1796630401.000000"),
        (1_796_630_459.5, "1796630459.500000"),
    ]:
        monkeypatch.setattr(audit.time, "time", lambda now=now: now)
        parts = audit.request_line(*fields.values()).decode().split("\t")
        assert parts[audit.COLUMNS.index("ts")] == ts
        assert parts[audit.COLUMNS.index("latency_ms")] == written
        line = audit.request_line(*fields.values())
        values = dict(zip(audit.COLUMNS, audit.parse_line(line), strict=True))
        assert values["ts"] == pytest.approx(now, abs=1e-6)
        assert values["latency_ms"] == pytest.approx(latency_ms, abs=0.0005 + 1e-9)


@pytest.fixture(params=["postgres", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    else:
        database = Database(request.getfixturevalue("postgres_server").new_database("rows"))
    database.migrate()
    yield database
    database.close()


def _on_the_loop(db: Database, rows: Any, copy_text: Any = None) -> None:
    """:func:`store_rows` (the drain's path on PostgreSQL) over an appender of its own."""

    async def main() -> None:
        appender = AsyncAppender.of(db)
        try:
            await store_rows(appender, rows, copy_text)
        finally:
            await appender.close()

    run_async(main())


# How a batch reaches PostgreSQL: in a worker thread on the gateway's connection
# (insert_rows), or on the event loop over the drain's own (store_rows).
WRITERS = pytest.mark.parametrize("write", [insert_rows, _on_the_loop], ids=["thread", "loop"])


def _stored(db: Database) -> dict[str, tuple[Any, ...]]:
    rows = db.fetch(f"SELECT {', '.join(audit.COLUMNS)} FROM audit_events")
    return {row["event_id"]: tuple(row[c] for c in audit.COLUMNS) for row in rows}


def test_awkward_values_round_trip_through_the_databases_copy(db: Database) -> None:
    """Tabs, newlines, carriage returns, backslashes (the null and end-of-data markers'
    text among them), quotes, unicode, empty strings, NULs and nulls: the lines go into
    the batch's COPY text as they are and PostgreSQL stores exactly what the JSON event's
    row holds (a NUL as U+FFFD); SQLite stores the lines read back, the same."""
    pairs = [_line_and_row(i, value) for i, value in enumerate(AWKWARD)]
    batch = RowBatch(db)
    for line, _ in pairs:
        batch.add_line(line)
    if db.kind == "postgres":
        assert batch.copy_text is not None
        assert bytes(batch.copy_text.data) == b"".join(line for line, _ in pairs)
    insert_rows(db, batch.rows, batch.copy_text)
    stored = _stored(db)
    assert len(stored) == len(AWKWARD)
    for line, expected in pairs:
        assert stored[expected[0]] == expected, line
    nul = next(row for _, row in pairs if "NUL" in row[audit.COLUMNS.index("model")])
    assert stored[nul[0]][audit.COLUMNS.index("customer")] == "NUL \ufffd inside"


def _redelivered(db: Database, write: Any) -> None:
    """A replica stored a batch and died before acknowledging it: the batch comes back
    with new events in it (and once more, whole). Its COPY fails on the stored ones, and
    the lines are read back and inserted one by one, skipping those: every event stored
    once."""
    lines = [_line_and_row(i, f"v{i}")[0] for i in range(6)]
    first = RowBatch(db)
    for line in lines[:4]:
        first.add_line(line)
    write(db, first.rows, first.copy_text)
    again = RowBatch(db)
    for line in lines:  # the four stored, re-delivered, and two new
        again.add_line(line)
    write(db, again.rows, again.copy_text)
    write(db, again.rows, again.copy_text)  # and once more, whole
    stored = _stored(db)
    assert sorted(stored) == sorted(audit.parse_line(line)[0] for line in lines)
    count = db.fetch("SELECT COUNT(*) AS n FROM audit_events")[0]["n"]
    assert count == len(lines)


def test_a_redelivered_batch_of_lines_is_stored_once(db: Database) -> None:
    """:func:`_redelivered` through insert_rows, on PostgreSQL and SQLite."""
    _redelivered(db, insert_rows)


@WRITERS
def test_a_value_the_database_refuses_is_kept_with_the_rest_of_its_batch(
    postgres_server: Any,
    write: Any,
) -> None:
    """A line whose token count is beyond the column's range (PostgreSQL's BIGINT) fails
    the batch's COPY; the batch is stored row by row from the lines read back, and the
    refused event is kept with its values in ``detail``."""
    db = Database(postgres_server.new_database("refused"))
    db.migrate()
    good = _line_and_row(0, "fine")[0]
    fields = _fields(1, "huge")
    fields["prompt_tokens"] = 2**70
    bad = audit.request_line(*fields.values())
    batch = RowBatch(db)
    batch.add_line(good)
    batch.add_line(bad)
    write(db, batch.rows, batch.copy_text)
    stored = _stored(db)
    assert set(stored) == {audit.parse_line(good)[0], audit.parse_line(bad)[0]}
    kept = stored[audit.parse_line(bad)[0]]
    detail = orjson.loads(kept[audit.COLUMNS.index("detail")])
    assert "refused_by_database" in detail and detail["event"]["key_id"] == "key-huge"
    db.close()


def test_a_malformed_line_is_dropped_not_stored() -> None:
    """A line with a field too few, or without its newline, never reaches the COPY."""
    line = _line_and_row(0, "x")[0]
    batch = RowBatch(Database("sqlite:///:memory:"))
    for broken in (line[:-1], line.replace(b"\tx\t", b"\t", 1), b"not an event\n"):
        with pytest.raises(ValueError, match="fields"):
            batch.add_line(broken)
    assert batch.rows == []


@WRITERS
def test_a_line_the_database_cannot_read_is_dropped_and_the_batch_stored(
    postgres_server: Any, write: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A line of the right shape with a value that is not one (a status of ``abc``: no
    release writes that) fails the COPY; the batch is stored row by row and that line is
    dropped with an error naming it, instead of failing every retry and stopping the drain."""
    db = Database(postgres_server.new_database("unreadable"))
    db.migrate()
    good = _line_and_row(0, "fine")[0]
    fields = good.split(b"\t")
    fields[0], fields[audit.COLUMNS.index("status")] = b"junk-1", b"abc"
    junk = b"\t".join(fields)
    batch = RowBatch(db)
    batch.add_line(good)
    batch.add_line(junk)
    write(db, batch.rows, batch.copy_text)
    assert set(_stored(db)) == {audit.parse_line(good)[0]}
    assert "dropped an unreadable audit line" in caplog.text and "junk-1" in caplog.text
    db.close()


@pytest.fixture
def redis_state(redis_server: Any) -> Any:
    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"
    return lambda **kw: RedisGovernanceState.from_url(redis_server.url, prefix=prefix, **kw)


def _old_replica_event(n: int) -> bytes:
    """A request's event as the version before buffered it (a JSON object)."""
    event = audit.request_event(*_fields(n, f"old{n}").values())
    return orjson.dumps(event)


def test_a_rolling_update_stores_the_old_and_the_new_streams_events_once(
    redis_state: Any, postgres_server: Any
) -> None:
    """Replicas of two releases before, on ``{aigw}:audit`` (JSON objects), and of the
    release before, on ``{aigw}:audit-v2`` (one line or JSON object per entry), each with
    an entry it read and never acknowledged (it died), and this version's flush, one entry
    on ``{aigw}:audit-v3``: a new replica's drainer stores each event once, in the same
    passes; the depth gauge (events) and the oldest-event time count every stream until
    they are empty."""
    db = Database(postgres_server.new_database("roll"))
    db.migrate()

    async def main() -> None:
        state = redis_state(claim_idle_s=0.05)
        client = state.client
        legacy, v2 = state.legacy_stream, state.v2_stream
        assert legacy.endswith(":audit") and v2.endswith(":audit-v2")
        assert state.stream.endswith(":audit-v3")
        # The oldest replica: its group, one event it read and died with, two not yet read.
        await client.xgroup_create(legacy, GROUP, id="0", mkstream=True)
        first_id = await client.xadd(legacy, {"e": _old_replica_event(0)}, id="1000-0")
        await client.xreadgroup(GROUP, "old-replica", {legacy: ">"}, count=1)
        for n in (1, 2):
            await client.xadd(legacy, {"e": _old_replica_event(n)})
        # The release before: a line it read and died with, a line and an admin event.
        await client.xgroup_create(v2, GROUP, id="0", mkstream=True)
        await client.xadd(v2, {"e": _line_and_row(30, "v2-read")[0]})
        await client.xreadgroup(GROUP, "v2-replica", {v2: ">"}, count=1)
        await client.xadd(v2, {"e": _line_and_row(31, "v2-unread")[0]})
        admin = audit.event("admin", actor="admin_key", action="key.revoke", detail={"id": "k"})
        await client.xadd(v2, {"e": orjson.dumps(admin)})
        # This version's requests: their lines, one flush.
        lines = [_line_and_row(10 + i, f"new{i}")[0] for i in range(3)]
        for line in lines:
            await state.settle(None, 0, 0, line)
        await state.batcher.drain()
        assert await client.xlen(state.stream) == 1
        assert await state.audit_depth() == 9
        assert await state.oldest_audit_s() == 1.0  # the legacy stream's oldest entry
        await asyncio.sleep(0.1)  # the dead replicas' entries are idle past claim_idle_s
        drainer = AuditDrainer(state, db, batch=50, block_s=0.01)
        written = 0
        for _ in range(10):
            written += await drainer.drain_once()
        await drainer.close()
        assert written == 9
        assert await state.audit_depth() == 0
        assert await state.oldest_audit_s() is None
        for stream in (legacy, v2, state.stream):
            assert (await client.xpending(stream, GROUP))["pending"] == 0, stream
            assert await client.xlen(stream) == 0, stream
        stored = _stored(db)
        assert len(stored) == 9
        request_ids = sorted(
            row[audit.COLUMNS.index("request_id")] for row in stored.values() if row[1] != "admin"
        )
        assert request_ids == sorted(
            [f"req-{n}-old{n}" for n in range(3)]
            + [f"req-{10 + i}-new{i}" for i in range(3)]
            + ["req-30-v2-read", "req-31-v2-unread"]
        )
        assert stored[admin["event_id"]][audit.COLUMNS.index("action")] == "key.revoke"
        assert first_id == b"1000-0"
        await state.close()

    try:
        run_async(main())
    finally:
        db.close()


def test_a_batch_acknowledged_late_is_stored_once_from_every_stream(
    redis_state: Any, postgres_server: Any
) -> None:
    """The drainer stored a batch (an old replica's event, one of the release before, and
    a flush's entry of lines) and its acknowledgement failed (Redis dropped the connection;
    the replica died): the entries stay pending, the next pass reads them again, its COPY
    fails on the key and the row-by-row insert stores none twice."""
    db = Database(postgres_server.new_database("late"))
    db.migrate()

    async def main() -> None:
        state = redis_state()
        await state.read_audit(1, 0.01)  # the groups exist on every stream
        await state.client.xadd(state.legacy_stream, {"e": _old_replica_event(0)})
        await state.client.xadd(state.v2_stream, {"e": _line_and_row(40, "v2")[0]})
        for i in range(4):
            await state.settle(None, 0, 0, _line_and_row(20 + i, f"late{i}")[0])
        await state.batcher.drain()
        drainer = AuditDrainer(state, db, batch=50, block_s=0.01)
        real_ack = state.ack

        async def lost_ack(ids: list[str]) -> None:
            raise ConnectionError("connection reset")

        state.ack = lost_ack
        with pytest.raises(ConnectionError):
            await drainer.drain_once()
        assert len(_stored(db)) == 6
        state.ack = real_ack
        assert await drainer.drain_once() == 6  # its own pending entries, again
        assert await drainer.drain_once() == 0
        await drainer.close()
        assert await state.audit_depth() == 0
        assert db.fetch("SELECT COUNT(*) AS n FROM audit_events")[0]["n"] == 6
        await state.close()

    try:
        run_async(main())
    finally:
        db.close()


def test_the_in_process_buffer_drains_lines_and_json_alike(db: Database) -> None:
    """Embedded mode (one process, its buffer in memory): a request's line and an admin
    event's JSON object in one batch, each stored once."""
    state = InProcessGovernanceState()
    line, expected = _line_and_row(0, "embedded")
    admin = audit.event("admin", actor="admin_key", action="key.create", detail={"id": "k1"})

    async def main() -> int:
        await state.settle(None, 0, 0, line)
        await state.append(orjson.dumps(admin))
        drainer = AuditDrainer(state, db, block_s=0.01)
        try:
            return await drainer.drain_once()
        finally:
            await drainer.close()

    assert run_async(main()) == 2
    stored = _stored(db)
    assert stored[expected[0]] == expected
    assert stored[admin["event_id"]][audit.COLUMNS.index("action")] == "key.create"


def _flushed(state: Any) -> list[tuple[Any, ...]]:
    """Record the commands of ``state``'s batcher flushes (their pipelines)."""
    sent: list[tuple[Any, ...]] = []
    pipeline = state.hot.pipeline

    async def recorded(commands: Any) -> Any:
        sent.extend(tuple(command) for command in commands)
        return await pipeline(commands)

    state.hot.pipeline = recorded
    return sent


def test_a_flush_is_one_stream_entry_and_every_event_is_stored_once_as_sent(
    redis_state: Any, db: Database
) -> None:
    """A flush of N request lines (every awkward value) is one ``XADD`` of one entry; the
    drainer appends the entry's block to its COPY as it is (one slice, no line split or
    parsed on PostgreSQL) and each event is stored once, byte for byte what the JSON
    event's row would hold (tabs, newlines, backslashes, unicode, NUL as U+FFFD, JSON
    detail); SQLite reads the same lines back."""
    pairs = [_line_and_row(i, value) for i, value in enumerate(AWKWARD * 4)]

    async def main() -> AuditDrainer:
        state = redis_state()
        sent = _flushed(state)
        for line, _ in pairs:
            await state.settle(None, 0, 0, line)
        await state.batcher.drain()
        xadds = [command for command in sent if command[0] == "XADD"]
        assert len(xadds) == 1 and xadds[0][3:5] == ("n", len(pairs))
        assert await state.client.xlen(state.stream) == 1
        assert await state.audit_depth() == len(pairs)
        drainer = AuditDrainer(state, db, batch=500, block_s=0.01, slice_events=8)
        if db.kind == "postgres":  # the block goes into the COPY whole: nothing parsed
            real_parse = audit.parse_line

            def no_parse(line: bytes) -> tuple[Any, ...]:
                raise AssertionError("a line was read back on the COPY path")

            audit.parse_line = no_parse  # type: ignore[assignment]
            try:
                assert await drainer.drain_once() == len(pairs)
            finally:
                audit.parse_line = real_parse  # type: ignore[assignment]
        else:
            assert await drainer.drain_once() == len(pairs)
        await drainer.close()
        assert await state.audit_depth() == 0
        await state.close()
        return drainer

    drainer = run_async(main())
    if db.kind == "postgres":
        assert drainer.slices == 1  # 52 lines, slices of 8 events: appended as one block
    stored = _stored(db)
    assert len(stored) == len(pairs)
    for line, expected in pairs:
        assert stored[expected[0]] == expected, line


def test_orjson_never_writes_a_raw_newline() -> None:
    """An entry's JSON events are newline-terminated: that is only sound if a JSON event
    never holds a raw newline itself (orjson escapes control characters, and writes the
    line and paragraph separators, which are not ``\\n``, as they are)."""
    awkward = {value: [value, {value: value}] for value in [*AWKWARD, "\n\r\n", "\u0085"]}
    dumped = orjson.dumps({"detail": awkward, "event": audit.event("admin", detail=awkward)})
    assert b"\n" not in dumped
    assert orjson.loads(dumped)["detail"] == awkward


def test_an_entry_of_json_objects_and_lines_is_stored_whole(redis_state: Any, db: Database) -> None:
    """A flush holding JSON objects (an admin action, a request's event on SQLite) and
    lines: one entry, stored line by line, every event once."""
    line, expected = _line_and_row(0, "mixed")
    admin = audit.event("admin", actor="admin_key", action="key.create", detail={"a": "x\ny"})
    request = audit.request_event(*_fields(1, "json").values())

    async def main() -> None:
        state = redis_state()
        sent = _flushed(state)
        state.batcher.add((), orjson.dumps(admin))
        await state.settle(None, 0, 0, line)
        await state.settle(None, 0, 0, orjson.dumps(request))
        await state.batcher.drain()
        assert [command[0] for command in sent].count("XADD") == 1
        drainer = AuditDrainer(state, db, batch=50, block_s=0.01)
        assert await drainer.drain_once() == 3
        await drainer.close()
        assert await state.audit_depth() == 0
        await state.close()

    run_async(main())
    stored = _stored(db)
    assert len(stored) == 3
    assert stored[expected[0]] == expected
    assert orjson.loads(stored[admin["event_id"]][audit.COLUMNS.index("detail")]) == {"a": "x\ny"}
    assert stored[request["event_id"]][audit.COLUMNS.index("request_id")] == "req-1-json"


def test_an_entry_whose_count_does_not_match_is_stored_line_by_line_and_logged(
    redis_state: Any, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry that says 5 events and holds 3 lines (and one that holds a line that is
    not one): nothing readable is lost, the mismatch and the bad line are logged, the
    drain goes on and acknowledges the entries."""
    lines = [_line_and_row(i, f"count{i}")[0] for i in range(4)]

    async def main() -> None:
        state = redis_state()
        await state.read_audit(1, 0.01)  # the groups exist
        await state.client.xadd(state.stream, {"n": 5, "b": b"".join(lines[:3])})
        await state.client.xadd(state.stream, {"n": 2, "b": lines[3] + b"not an event\n"})
        drainer = AuditDrainer(state, db, batch=50, block_s=0.01)
        assert await drainer.drain_once() == 7  # as the entries said
        assert await drainer.drain_once() == 0
        await drainer.close()
        assert await state.client.xlen(state.stream) == 0
        await state.close()

    run_async(main())
    assert sorted(_stored(db)) == sorted(audit.parse_line(line)[0] for line in lines)
    assert "says it holds 5 events and its block has 3 lines" in caplog.text
    assert "dropping an unreadable audit event" in caplog.text and "not an event" in caplog.text


def test_the_depth_gauge_counts_events_exactly_after_a_double_acknowledgement(
    redis_state: Any,
) -> None:
    """Two flushes (5 and 3 events) and an admin action: 9 events in 3 entries. A drainer
    reads them and stalls; another claims them and acknowledges; the first acknowledges
    too (late): the gauge says 0, not -9, and the stream's counter is 0."""

    async def main() -> None:
        first = redis_state(claim_idle_s=0.05)
        for size in (5, 3):
            for i in range(size):
                await first.settle(None, 0, 0, b'{"n":%d}' % i)
            await first.batcher.drain()
        await first.append(b'{"admin":1}')
        assert await first.client.xlen(first.stream) == 3
        assert await first.audit_depth() == 9
        read = await first.read_audit_entries(50, 0.01)
        assert [entry.events for entry in read] == [5, 3, 1]
        assert await first.audit_depth() == 9  # read, not yet in the database
        await asyncio.sleep(0.1)
        other = redis_state(claim_idle_s=0.05)
        claimed = await other.read_audit_entries(50, 0.01)
        assert [entry.id for entry in claimed] == [entry.id for entry in read]
        await other.ack([entry.id for entry in claimed])
        assert await first.audit_depth() == 0
        await first.ack([entry.id for entry in read])  # the stalled drainer, late
        assert await first.audit_depth() == 0
        assert int(await first.client.get(first.depth_key)) == 0
        await first.close()
        await other.close()

    run_async(main())


def test_stop_drains_past_an_entry_that_says_it_holds_no_events(
    redis_state: Any, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A gateway stopping writes what the buffer holds: an entry saying 0 events (and
    holding lines) first is not taken for the end of the buffer."""
    lines = [_line_and_row(i, f"zero{i}")[0] for i in range(3)]

    async def main() -> None:
        state = redis_state()
        await state.read_audit(1, 0.01)  # the groups exist
        await state.client.xadd(state.stream, {"n": 0, "b": lines[0]})
        await state.client.xadd(state.stream, {"n": 2, "b": b"".join(lines[1:])})
        drainer = AuditDrainer(state, db, batch=1, block_s=0.01)  # one entry per pass
        await drainer.stop()
        assert await state.client.xlen(state.stream) == 0
        await state.close()

    run_async(main())
    assert sorted(_stored(db)) == sorted(audit.parse_line(line)[0] for line in lines)
    assert "says it holds 0 events and its block has 1 lines" in caplog.text


def test_a_redelivered_batch_is_stored_once_on_the_loop(postgres_server: Any) -> None:
    """:func:`_redelivered` through store_rows (the drain's path on PostgreSQL)."""
    db = Database(postgres_server.new_database("redelivered"))
    db.migrate()
    _redelivered(db, _on_the_loop)
    db.close()


def test_a_batch_larger_than_libpqs_buffer_is_stored_whole_on_the_loop(
    postgres_server: Any,
) -> None:
    """The drain's COPY sends its rows with libpq's own calls (``_copy_data_async``): a
    batch of megabytes (an outage's backlog: ``audit_batch`` up to 10,000 events, here
    12,000 events, ~2.5 MB) goes through libpq's buffer and the socket's waits, and every
    event is stored, as sent. The awkward values (tabs, backslashes, NULs, unicode) too."""
    db = Database(postgres_server.new_database("large"))
    db.migrate()
    pairs = [_line_and_row(i, value) for i, value in enumerate(AWKWARD)]
    lines = [line for line, _ in pairs]
    lines += [
        _line_and_row(len(AWKWARD) + i, f"bulk-{i:06d}-" + "x" * 64)[0] for i in range(12_000)
    ]
    batch = RowBatch(db)
    for line in lines:
        batch.add_line(line)
    assert batch.copy_text is not None and len(batch.copy_text.data) > 2_000_000
    _on_the_loop(db, batch.rows, batch.copy_text)
    stored = _stored(db)
    assert len(stored) == len(lines)
    for line, expected in pairs:
        assert stored[expected[0]] == expected, line
    db.close()


def test_a_refused_copy_leaves_the_drains_connection_idle_and_usable(
    postgres_server: Any,
) -> None:
    """A ``COPY`` the server refuses, at its start (no such table) or at its end (a row
    stored before), raises psycopg's error class for the SQLSTATE once every result of
    the statement is read: the same connection then runs the next statement (the
    row-by-row insert after a duplicate, the next batch)."""
    import psycopg
    from psycopg import errors

    from gateway_app.governance.storage import _copy_data_async, _copy_statement

    db = Database(postgres_server.new_database("refused_copy"))
    db.migrate()
    line = _line_and_row(0, "once")[0]

    async def main() -> tuple[str, str, int]:
        conn = await psycopg.AsyncConnection.connect(db.url, autocommit=True)
        try:
            missing = _copy_statement("no_such_table", ("a",), conn.info.encoding)
            with pytest.raises(errors.UndefinedTable) as at_start:
                await _copy_data_async(conn.pgconn, missing, b"1\n", conn.info.encoding)
            statement = _copy_statement("audit_events", tuple(audit.COLUMNS), "utf-8")
            await _copy_data_async(conn.pgconn, statement, line, "utf-8")
            with pytest.raises(errors.UniqueViolation) as at_end:
                await _copy_data_async(conn.pgconn, statement, line, "utf-8")
            cursor = await conn.execute("SELECT COUNT(*) FROM audit_events")
            row = await cursor.fetchone()
            assert row is not None
            return str(at_start.value), str(at_end.value), int(row[0])
        finally:
            await conn.close()

    at_start, at_end, count = run_async(main())
    assert "no_such_table" in at_start
    assert "duplicate key" in at_end
    assert count == 1
    db.close()


def test_under_load_a_batch_is_acknowledged_with_the_next_read(
    redis_server: Any, postgres_server: Any
) -> None:
    """The running drainer, reading full batch after full batch, sends each batch's
    acknowledgement with its next read, in one write (one round trip for both, not two),
    but the first (alone: the script may need loading); the last, partial batch is
    acknowledged on its own before the drainer waits. Every event is stored once (none
    read again) and the stream ends empty, its event counter at 0."""
    from tests.gateway.resp_traffic import counting_client

    sent: list[tuple[str, ...]] = []
    prefix = f"{{t{uuid.uuid4().hex[:8]}}}:"
    db = Database(postgres_server.new_database("ack_later"))
    db.migrate()
    lines = [_line_and_row(i, f"ack{i}")[0] for i in range(95)]  # 9 entries of 10, one of 5

    async def main() -> tuple[int, int, int]:
        state = RedisGovernanceState.from_url(
            redis_server.url,
            prefix=prefix,
            reader=counting_client(sent).from_url(redis_server.url),
        )
        await state.read_audit(1, 0.01)  # the groups exist
        for at in range(0, len(lines), 10):
            part = lines[at : at + 10]
            await state.client.xadd(state.stream, {"n": len(part), "b": b"".join(part)})
        await state.client.incrby(state.depth_key, len(lines))
        del sent[:]
        drainer = AuditDrainer(state, db, batch=10, block_s=0.05, interval_s=0.25)
        drainer.start()
        for _ in range(200):  # bounded: 10 s
            if drainer.written >= len(lines):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # the last batch's acknowledgement
        await drainer.stop()
        left = await state.client.xlen(state.stream)
        depth = int(await state.client.get(state.depth_key) or 0)
        await state.close()
        return drainer.written, left, depth

    written, left, depth = run_async(main())
    assert (written, left, depth) == (len(lines), 0, 0)
    assert sorted(_stored(db)) == sorted(audit.parse_line(line)[0] for line in lines)
    # (The next read is an XREADGROUP, or the periodic XAUTOCLAIM when one falls due.)
    reads = {("EVALSHA", "XREADGROUP"), ("EVALSHA", "XAUTOCLAIM")}
    with_read = [s for s in sent if s in reads]
    alone = [s for s in sent if s == ("EVALSHA",)]
    # Of the nine full batches' acknowledgements the first went alone (Redis may not
    # hold the script yet: EVALSHA, then EVAL on NOSCRIPT, before any read rides on it),
    # the other eight with the next read; the partial tenth alone, before the pause.
    assert len(with_read) == 8, sent
    assert len(alone) == 2, sent
    db.close()


def test_an_acknowledgement_lost_with_its_read_is_made_again(
    redis_state: Any, postgres_server: Any
) -> None:
    """A batch stored and queued for acknowledgement with the next read, whose write
    then fails (the connection breaks): nothing was acknowledged, so the next read
    returns the batch again (this reader's pending entries), it is stored again (each
    row stored before is skipped) and acknowledged: every event once in the database,
    the stream empty. The same when the first acknowledgement, sent alone, fails."""
    db = Database(postgres_server.new_database("ack_lost"))
    db.migrate()
    lines = [_line_and_row(i, f"lost{i}")[0] for i in range(10)]

    def store(entries: list[Any]) -> None:
        batch = RowBatch(db)
        for entry in entries:
            batch.add_lines(entry.block, entry.events)
        insert_rows(db, batch.rows, batch.copy_text, batch.events)

    async def main() -> tuple[list[str], list[str], int]:
        state = redis_state()
        await state.read_audit(1, 0.01)  # the groups exist
        for part in (lines[:5], lines[5:]):
            await state.client.xadd(state.stream, {"n": 5, "b": b"".join(part)})
        store(first := await state.read_audit_entries(5, 0.01))
        state.ack_later([entry.id for entry in first])
        script = state._ack  # the first acknowledgement, sent alone, fails too

        async def refused(keys: Any, args: Any) -> Any:
            raise ConnectionError("connection reset")

        state._ack = refused
        with pytest.raises(ConnectionError):
            await state.read_audit_entries(5, 0.01)
        state._ack = script
        store(again_first := await state.read_audit_entries(5, 0.01))
        assert [e.id for e in again_first] == [e.id for e in first]
        state.ack_later([entry.id for entry in again_first])
        store(second := await state.read_audit_entries(5, 0.01))  # (the first acknowledged)
        state.ack_later([entry.id for entry in second])
        pipeline = state.reader.pipeline

        async def broken(commands: Any) -> Any:
            raise ConnectionError("connection reset")

        state.reader.pipeline = broken  # type: ignore[method-assign]
        with pytest.raises(ConnectionError):
            await state.read_audit_entries(5, 0.01)
        state.reader.pipeline = pipeline  # type: ignore[method-assign]
        store(again := await state.read_audit_entries(5, 0.01))
        await state.ack([entry.id for entry in again])
        left = await state.client.xlen(state.stream)
        await state.close()
        return [e.id for e in second], [e.id for e in again], left

    second, again, left = run_async(main())
    assert again == second and left == 0
    assert sorted(_stored(db)) == sorted(audit.parse_line(line)[0] for line in lines)
    db.close()


def test_the_drain_writes_postgres_on_the_loop_over_its_own_connection(
    redis_state: Any, postgres_server: Any
) -> None:
    """On PostgreSQL the drainer's COPY runs on the event loop: the loop never starts a
    worker thread for it (its default executor stays unmade), and the writes go over a
    connection of the drain's own, named ``aigw-audit-drain`` in ``pg_stat_activity``
    (not the gateway's ``aigw-gateway``, whose key lookups no longer wait behind a COPY),
    which :meth:`AuditDrainer.stop` closes."""
    url = postgres_server.new_database("loop")
    db = Database(url)
    db.migrate()
    watcher = Database(url)
    lines = [_line_and_row(i, f"loop{i}")[0] for i in range(40)]

    def drain_connections(until: int | None = None) -> int:
        """This database's drain connections (once they are ``until``: a closed one
        leaves pg_stat_activity when its server process has exited, a moment later)."""
        for _ in range(100):  # bounded: 5 s
            rows = watcher.fetch(
                "SELECT COUNT(*) AS n FROM pg_stat_activity "
                "WHERE application_name = ? AND datname = current_database()",
                (ConnectionName.AUDIT_DRAIN.value,),
            )
            count = int(rows[0]["n"])
            if until is None or count == until:
                break
            time.sleep(0.05)
        return count

    async def main() -> tuple[int, int, bool]:
        state = redis_state()
        await state.read_audit(1, 0.01)  # the groups exist
        for at in range(0, len(lines), 10):
            await state.client.xadd(state.stream, {"n": 10, "b": b"".join(lines[at : at + 10])})
        drainer = AuditDrainer(state, db, batch=10, block_s=0.01)
        while await drainer.drain_once():
            pass
        held = drain_connections()
        threadless = asyncio.get_running_loop()._default_executor is None  # type: ignore[attr-defined]
        await drainer.stop()
        await state.close()
        return held, drain_connections(until=0), threadless

    held, after_stop, threadless = run_async(main())
    assert (held, after_stop, threadless) == (1, 0, True)
    assert sorted(_stored(db)) == sorted(audit.parse_line(line)[0] for line in lines)
    watcher.close()
    db.close()


def test_the_drain_stores_every_event_once_across_a_postgres_restart(redis_state: Any) -> None:
    """PostgreSQL restarts under a draining gateway (a managed database's failover or
    maintenance): the drain's connection breaks, its write fails and nothing is
    acknowledged; once the server is back the drain connects again and every event,
    those sent during the outage included, is stored exactly once."""
    from tests.gateway.governance.services import PostgresServer

    server = PostgresServer()
    try:
        db = Database(server.new_database("restart"))
        db.migrate()
        db.close()  # (its connection would not outlive the restart: opened again to check)
        lines = [_line_and_row(i, f"restart{i}")[0] for i in range(30)]

        async def send(part: list[bytes]) -> None:
            await state.client.xadd(state.stream, {"n": len(part), "b": b"".join(part)})

        async def main() -> tuple[int, str]:
            await state.read_audit(1, 0.01)  # the groups exist
            drainer = AuditDrainer(state, db, batch=10, block_s=0.01)
            await send(lines[:10])
            assert await drainer.drain_once() == 10  # connected, stored, acknowledged
            await asyncio.to_thread(server.stop)
            await send(lines[10:20])
            failure = ""
            try:
                await drainer.drain_once()
            except Exception as exc:  # the running drainer logs this and retries
                failure = type(exc).__name__
            await asyncio.to_thread(server.start)
            await send(lines[20:])
            drained = 0
            for _ in range(50):  # the failed batch is read again first, then the new one
                stored = await drainer.drain_once()
                if not stored:
                    break
                drained += stored
            await drainer.stop()
            return drained, failure

        state = redis_state()
        drained, failure = run_async(main())
        assert failure == "DatabaseError"
        assert drained == 20
        assert sorted(_stored(db)) == sorted(audit.parse_line(line)[0] for line in lines)
        assert db.fetch("SELECT COUNT(*) AS n FROM audit_events")[0]["n"] == len(lines)
        db.close()
    finally:
        server.destroy()


def test_an_appender_moved_to_another_loop_writes_there(postgres_server: Any) -> None:
    """Appends that wait for each other on one loop, then on another (a test's next
    loop, a process that started again): the second loop's appends are not refused for
    the first loop's lock or connection, and every line is stored once."""
    db = Database(postgres_server.new_database("loops"))
    db.migrate()
    lines = [_line_and_row(i, f"loops{i}")[0] for i in range(8)]
    appender = AsyncAppender.of(db)

    def batch(part: list[bytes]) -> RowBatch:
        rows = RowBatch(db)
        for line in part:
            rows.add_line(line)
        return rows

    async def two_at_once(first: RowBatch, second: RowBatch) -> None:
        await asyncio.gather(
            store_rows(appender, first.rows, first.copy_text),
            store_rows(appender, second.rows, second.copy_text),
        )

    run_async(two_at_once(batch(lines[0:2]), batch(lines[2:4])))
    run_async(two_at_once(batch(lines[4:6]), batch(lines[6:8])))
    run_async(appender.close())
    assert sorted(_stored(db)) == sorted(audit.parse_line(line)[0] for line in lines)
    db.close()


def test_the_line_and_the_json_event_hold_the_latency_and_time_to_the_microsecond() -> None:
    """Settle passes the latency as measured; the buffered forms (PostgreSQL's line, SQLite's
    JSON object) both write it to the microsecond (correctly rounded, as ``round(x, 3)``),
    and the line writes the time in fixed notation to the microsecond."""
    fields = _fields(0, "x")
    for measured, written in (
        (1.2344999, 1.234),
        (1.2345001, 1.235),
        (3_600_000.0004, 3_600_000.0),
    ):
        fields["latency_ms"] = measured
        before = time.time()
        line = audit.request_line(*fields.values())
        after = time.time()
        data = dict(zip(audit.COLUMNS, audit.parse_line(line), strict=True))
        assert data["latency_ms"] == written == round(measured, 3)
        assert orjson.loads(audit.request_event_json(*fields.values()))["latency_ms"] == written
        text = line.split(b"\t")[audit.COLUMNS.index("ts")].decode()
        assert len(text.split(".")[1]) == 6  # fixed, six decimals
        assert round(before, 6) - 1e-6 <= data["ts"] <= round(after, 6) + 1e-6
