"""Audit events: built on the request path, written to the database off it.

Every request (served, refused or failed) and every admin action becomes one
event with a unique ``event_id``. Events enter the state's durable buffer (a
Redis stream, or memory in embedded mode) and an :class:`AuditDrainer` in each
replica writes them in batches (PostgreSQL: one ``COPY`` per batch), acknowledging
only after the commit. A database outage leaves them pending; a crash between
commit and acknowledgement re-delivers them, and a batch holding an event stored
before is inserted with ``ON CONFLICT (event_id, day) DO NOTHING`` instead, which
skips the duplicates (a re-delivered event has the same day): every event is stored
exactly once.

A buffered event is a JSON object (:func:`decode`), or, for a request on PostgreSQL, the
line its batch's ``COPY`` takes (:func:`request_line`): the drainer appends such a line
to the batch as it is and reads it back (:func:`parse_line`) only when the batch is
stored row by row (``bench/partial-audit-rows.md``). A buffer entry holds the events of
one batcher flush (:class:`~gateway_app.state.governance.AuditEntry`): an entry of lines
only is appended whole (:meth:`RowBatch.add_block`; ``bench/partial-audit-entries.md``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import operator
import os
import re
import secrets
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway_app.aio import pause
from gateway_app.governance.storage import (
    AsyncAppender,
    CopyText,
    Database,
    RejectedData,
    Transaction,
)
from gateway_app.state.governance import AuditEntry, GovernanceState

log = logging.getLogger("gateway_app.governance")

COLUMNS = (
    "event_id",
    "kind",
    "ts",
    "day",
    "month",
    "request_id",
    "key_id",
    "team_id",
    "project_id",
    "customer",
    "model",
    "deployment",
    "provider",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "cache_outcome",
    "rejection",
    "usage_source",  # reported | estimated_reservation (usage never arrived) | null
    "cloud",  # the cloud that served it (the global governance plane; null otherwise)
    "actor",
    "action",
    "detail",
)
KEY = "event_id, day"
"""The audit table's key: the event's id and its day, PostgreSQL's partition key (a key of
a partitioned table must hold it; :mod:`gateway_app.governance.retention`)."""


# Event ids: 96 random bits per process plus a counter (unique across replicas
# and restarts without a uuid4 syscall per event); renewed in forked workers. In the
# global governance plane, ids start with the cloud's name (``gcp.``), so they are
# unique across clouds by construction and the home can tell whose an event is.
_CLOUD: str | None = None
_ID_PREFIX = secrets.token_hex(12)
_ID_COUNTER = itertools.count(1)
# (UTC day number, day id, month id, the two as a COPY line's fields): formatted once a
# day, not per event.
_DAY: tuple[int, str, str, str] = (-1, "", "", "")


def _new_id_prefix() -> None:
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX = (f"{_CLOUD}." if _CLOUD else "") + secrets.token_hex(12)
    _ID_COUNTER = itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)


def set_cloud(cloud: str | None) -> None:
    """Name this process's cloud in every event from now on (the global plane)."""
    global _CLOUD, _ID_PREFIX
    _CLOUD = cloud
    _ID_PREFIX = (f"{cloud}." if cloud else "") + _ID_PREFIX.rpartition(".")[2]


def _today(now: float) -> tuple[int, str, str, str]:
    """(UTC day number, day id, month id, both as a line's fields) of ``now``, formatted
    once a day."""
    global _DAY
    day = _DAY
    if day[0] != int(now) // 86400:
        moment = datetime.fromtimestamp(now, UTC)
        ymd, ym = moment.strftime("%Y-%m-%d"), moment.strftime("%Y-%m")
        day = _DAY = (int(now) // 86400, ymd, ym, f"{ymd}\t{ym}\t")
    return day


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A new event with its id and UTC day/month."""
    now = time.time()
    day = _today(now)
    return {
        "event_id": f"{_ID_PREFIX}{next(_ID_COUNTER):012x}",
        "kind": kind,
        "ts": now,
        "day": day[1],
        "month": day[2],
        "cloud": _CLOUD,
        **fields,
    }


def request_event(
    request_id: str,
    key_id: str | None,
    team_id: str | None,
    project_id: str | None,
    customer: str | None,
    model: str | None,
    deployment: str | None,
    provider: str | None,
    status: int | None,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float | None,
    latency_ms: float,
    cache_outcome: str | None,
    rejection: str | None,
    usage_source: str | None,
    detail: dict[str, Any] | None,
) -> dict[str, Any]:
    """A model request's event: every column of :data:`COLUMNS` (``actor`` and ``action``
    null), so :func:`decode` reads it in one call. The same JSON object as
    ``event("request", ...)`` with those fields (replicas of either version read it), built
    as one literal instead of the event and a store per field (part of settle's 24 -> 21
    µs, ``bench/partial-governance-cpu-5.md``)."""
    now = time.time()
    day = _DAY
    if day[0] != int(now) // 86400:
        day = _today(now)
    return {
        "event_id": f"{_ID_PREFIX}{next(_ID_COUNTER):012x}",
        "kind": "request",
        "ts": now,
        "day": day[1],
        "month": day[2],
        "cloud": _CLOUD,
        "request_id": request_id,
        "key_id": key_id,
        "team_id": team_id,
        "project_id": project_id,
        "customer": customer,
        "model": model,
        "deployment": deployment,
        "provider": provider,
        "status": status,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_usd": cost_usd,
        "latency_ms": latency_ms,
        "cache_outcome": cache_outcome,
        "rejection": rejection,
        "usage_source": usage_source,
        "detail": detail,
        "actor": None,
        "action": None,
    }


def request_event_json(*fields: Any) -> bytes:
    """:func:`request_event` as the buffer holds it on SQLite: its JSON object, the
    latency to the microsecond (as :func:`request_line` writes it)."""
    event = request_event(*fields)
    event["latency_ms"] = round(event["latency_ms"], 3)
    return orjson.dumps(event)


# A request's event as a line of PostgreSQL's ``COPY ... FROM STDIN`` text format (the
# buffer's form of it on PostgreSQL deployments: the drainer concatenates a batch's lines
# into its ``COPY`` and formats nothing, ``bench/partial-audit-rows.md``).
# https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2 (Text Format):
# fields are separated by a tab, a row ends with a newline, ``\N`` is null, and a
# backslash, newline, carriage return or tab in a value must be written with a
# backslash. A NUL cannot be stored in text at all: it becomes U+FFFD, as in :func:`row`.
NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\ufffd"})


def copy_field(value: str | None) -> str:
    """``value`` as one field of a ``COPY`` text line (``\\N`` for None)."""
    if value is None:
        return NULL
    # (isprintable() is False for every character that needs an escape but the
    # backslash: one C scan each, no copy, for the common value.)
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_ESCAPES)


# The columns that repeat per caller and route, as a line's escaped fields, formatted once
# (not per request) by the values they hold: (key_id, team_id, project_id, customer,
# model, deployment, provider) -> their fields; (cache_outcome, rejection, usage_source,
# cloud) -> theirs with cloud's, actor's and action's.
_CALLER_FIELDS: dict[tuple[str | None, ...], str] = {}
_OUTCOME_FIELDS: dict[tuple[str | None, ...], str] = {}
FIELDS_CACHED_MAX = 4096
"""Cached field sets at most, per cache (then it starts over: customers can be many)."""


def _fields(cache: dict[tuple[str | None, ...], str], values: tuple[str | None, ...]) -> str:
    if len(cache) >= FIELDS_CACHED_MAX:
        cache.clear()
    fields = cache[values] = "\t".join(
        copy_field(None if value is None else str(value)) for value in values
    )
    return fields


_DIGITS = tuple(f"{i:03d}" for i in range(1000))
"""0-999 as three digits: a fixed-point fraction's groups, looked up (:func:`request_line`)."""


def request_line(
    request_id: str,
    key_id: str | None,
    team_id: str | None,
    project_id: str | None,
    customer: str | None,
    model: str | None,
    deployment: str | None,
    provider: str | None,
    status: int | None,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float | None,
    latency_ms: float,
    cache_outcome: str | None,
    rejection: str | None,
    usage_source: str | None,
    detail: dict[str, Any] | None,
) -> bytes:
    """:func:`request_event` as the line its ``COPY`` takes (:data:`COLUMNS` order, UTF-8,
    ending in a newline): what a PostgreSQL deployment buffers. The columns that repeat
    per caller and route come from cached, escaped fragments; only the request's own
    values are formatted here. :func:`parse_line` reads it back."""
    now = time.time()
    day = _DAY
    if day[0] != int(now) // 86400:
        day = _today(now)
    caller = (key_id, team_id, project_id, customer, model, deployment, provider)
    fields = _CALLER_FIELDS.get(caller)
    if fields is None:
        fields = _fields(_CALLER_FIELDS, caller)
    outcome = (cache_outcome, rejection, usage_source, _CLOUD)
    outcome_fields = _OUTCOME_FIELDS.get(outcome)
    if outcome_fields is None:
        outcome_fields = _fields(_OUTCOME_FIELDS, outcome) + f"\t{NULL}\t{NULL}\t"
        _OUTCOME_FIELDS[outcome] = outcome_fields
    if not request_id.isprintable() or "\\" in request_id:
        request_id = copy_field(request_id)
    # The time and the latency to the microsecond, in fixed notation: whole part and
    # three-digit groups of the fraction (_DIGITS), a third of the cost of formatting
    # them as floats (``f"{now:.6f}"``: the float-to-decimal conversion and a format spec).
    us = int(now * 1_000_000 + 0.5)
    fraction = us % 1_000_000
    latency_us = int(latency_ms * 1000 + 0.5)
    latency = (
        f"{latency_us // 1000}.{_DIGITS[latency_us % 1000]}"
        if latency_us >= 0
        else f"{latency_ms:.3f}"  # (not from a clock that only goes forward)
    )
    return (
        f"{_ID_PREFIX}{next(_ID_COUNTER):012x}\trequest\t{us // 1_000_000}."
        f"{_DIGITS[fraction // 1000]}{_DIGITS[fraction % 1000]}\t{day[3]}{request_id}\t"
        f"{fields}\t{NULL if status is None else status}\t{prompt_tokens}\t"
        f"{completion_tokens}\t{NULL if cost_usd is None else repr(cost_usd)}\t{latency}\t"
        f"{outcome_fields}{NULL if detail is None else copy_field(orjson.dumps(detail).decode())}\n"
    ).encode()


LAYOUT = b"copy-%08x" % zlib.crc32("\t".join(COLUMNS).encode())
"""The layout of :func:`request_line`'s lines (its columns, in order): a buffer entry the
writer marked with it (:attr:`~gateway_app.state.governance.AuditEntry.layout`) holds such
lines only, and a drainer with the same layout appends it whole, unchecked
(:meth:`RowBatch.add_lines`). Another release's columns make another mark: its entries are
checked (:meth:`RowBatch.add_block`)."""

_INTEGERS = frozenset(COLUMNS.index(c) for c in ("status", "prompt_tokens", "completion_tokens"))
_FLOATS = frozenset(COLUMNS.index(c) for c in ("ts", "cost_usd", "latency_ms"))
_ESCAPED = re.compile(r"\\(.)")
_UNESCAPED = {"t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}


def parse_line(line: bytes) -> tuple[Any, ...]:
    """:func:`row` of a buffered ``COPY`` line (:func:`request_line`), ValueError if it is
    not one. Off the common path: SQLite, and a PostgreSQL batch stored row by row (one
    stored before, a value refused)."""
    text = line.decode()
    if not text.endswith("\n"):
        raise ValueError("an audit line ends with a newline")
    fields = text[:-1].split("\t")
    if len(fields) != len(COLUMNS):
        raise ValueError(f"an audit line has {len(COLUMNS)} fields, not {len(fields)}")
    values: list[Any] = []
    for i, field in enumerate(fields):
        if field == NULL:
            values.append(None)
            continue
        if "\\" in field:
            field = _ESCAPED.sub(lambda m: _UNESCAPED.get(m[1], m[1]), field)
        values.append(int(field) if i in _INTEGERS else float(field) if i in _FLOATS else field)
    return tuple(values)


class Redactor:
    """Replaces configured patterns (keys, card numbers, e-mails) in stored text."""

    def __init__(self, patterns: list[str]) -> None:
        self._pattern = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub("[REDACTED]", text) if self._pattern else text


_DETAIL = COLUMNS.index("detail")


def row(data: dict[str, Any]) -> tuple[Any, ...]:
    """The insert parameters of one event. A NUL character (PostgreSQL's text cannot hold
    one; a caller may send it in ``user``, the customer) is stored as U+FFFD.

    A tuple, not a list: the cyclic GC stops tracking a tuple of plain values the first
    time it meets it, so a batch being built (across several young collections, in
    slices) is not rescanned by the older generations' collections (pauses on the loop).
    """
    get = data.get
    values = [get(column) for column in COLUMNS]
    detail = values[_DETAIL]
    if detail is not None:
        values[_DETAIL] = orjson.dumps(detail).decode()  # (JSON escapes a NUL)
    return _without_nul(values)


def _without_nul(values: list[Any]) -> tuple[Any, ...]:
    for i, value in enumerate(values):
        if value.__class__ is str and "\x00" in value:
            values[i] = value.replace("\x00", "\ufffd")
    return tuple(values)


# Every column's value of an event that has them all (a request's: see Governance.settle).
_ALL_COLUMNS = operator.itemgetter(*COLUMNS)


def decode(payload: bytes) -> tuple[Any, ...]:
    """:func:`row` of a buffered event (its JSON object), ValueError if it is not one.

    The same row, with less work per column on the drainer's loop (4.1 instead of 6.7 µs
    per request event, ``bench/partial-governance-cpu-3.md``): an event that has every column
    (a request's) is read in one C call, not a lookup per column, and the NUL scan of
    each value runs only when the payload holds one (orjson writes it as ``\\u0000``).
    (A request's event on PostgreSQL is a ``COPY`` line instead: :func:`request_line`.)"""
    data = orjson.loads(payload)
    if data.__class__ is not dict:
        raise ValueError("an audit event is a JSON object")
    try:
        values: tuple[Any, ...] = _ALL_COLUMNS(data)
    except KeyError:
        return row(data)  # an admin event (no request columns)
    detail = values[_DETAIL]
    if detail is not None or b"\\u0000" in payload:
        return row(data)
    return values


def _refused(values: Sequence[Any], error: RejectedData) -> list[Any]:
    """An event the database refused, kept: its identity and time in their columns, every
    value (as JSON) and the database's reason in ``detail``."""
    kept: list[Any] = [None] * len(COLUMNS)
    for column in ("event_id", "kind", "ts", "day", "month"):
        kept[COLUMNS.index(column)] = values[COLUMNS.index(column)]
    everything = {c: v for c, v in zip(COLUMNS, values, strict=True) if v is not None}
    reason = str(error)[:500]
    # (json, not orjson: a refused value may be an integer beyond 64 bits.)
    kept[_DETAIL] = json.dumps({"refused_by_database": reason, "event": everything}, default=repr)
    return kept


def insert_events(db: Database, events: list[dict[str, Any]]) -> None:
    """Idempotent batch insert (blocking): each event stored once, however often it is
    delivered (PostgreSQL: one ``COPY``; see :meth:`Database.append_new`)."""
    batch = RowBatch(db)
    for data in events:
        batch.add(data)
    insert_rows(db, batch.rows, batch.copy_text, batch.events)


def store_unbuffered(db: Database, payloads: Sequence[bytes]) -> int:
    """Store buffered events (as the gateway buffers them: JSON objects or ``COPY`` lines)
    straight in the database (blocking): what a replica could not write to the shared
    buffer before it stopped. Each is stored once, even if its buffered copy reached the
    drainers after all; one that is not an event is logged and skipped. How many were
    stored or already there."""
    batch = RowBatch(db)
    for payload in payloads:
        try:
            batch.add_payload(payload)
        except ValueError as exc:
            log.error("dropped an unreadable audit event at shutdown (%s): %r", exc, payload[:200])
    insert_rows(db, batch.rows, batch.copy_text, batch.events)
    return len(batch.rows)


class RowBatch:
    """A batch's insert parameters (:func:`row`, or a buffered ``COPY`` line as it is) and,
    for PostgreSQL, the same rows in ``COPY`` text form, built one event at a time (so a
    caller can build it in slices)."""

    def __init__(self, db: Database, adapt: Any = None) -> None:
        self.rows: list[tuple[Any, ...] | bytes] = []
        self.copy_text = CopyText.create(adapt) if db.kind == "postgres" else None
        self.events = 0  # rows: a block of lines (:meth:`add_block`) is one item of ``rows``

    def add(self, data: dict[str, Any]) -> None:
        """Add the event ``data`` (as :func:`event` gives it)."""
        self.add_row(row(data))

    def add_row(self, values: tuple[Any, ...]) -> None:
        """Add an event's row (:func:`row`, :func:`decode`)."""
        self.rows.append(values)
        self.events += 1
        if self.copy_text is not None:
            try:
                self.copy_text.add(values)
            except Exception:
                # A value psycopg's default adapters cannot format here: the database
                # thread formats the batch itself (and reports what it refuses).
                self.copy_text = None

    def add_line(self, line: bytes) -> None:
        """Add a request's buffered ``COPY`` line (:func:`request_line`): appended to the
        ``COPY`` text as it is, read back (:func:`parse_line`) only if the batch is stored
        row by row. ValueError if it is not one: a newline only at its end and one field
        per column (a tab inside a value is escaped), checked without decoding it."""
        if line[-1:] != b"\n" or line.count(9) != _TABS or line.count(10) != 1:
            raise ValueError(f"an audit line has {len(COLUMNS)} fields and ends in a newline")
        self.rows.append(line)
        self.events += 1
        if self.copy_text is not None:
            self.copy_text.data += line

    def add_lines(self, block: bytes, events: int) -> None:
        """Add a buffer entry's ``events`` ``COPY`` lines whole, unchecked: an entry its
        writer marked with :data:`LAYOUT` (:meth:`add_block` scans each byte of a block
        three times, ~0.9 µs an event)."""
        self.rows.append(block)
        self.events += events
        if self.copy_text is not None:
            self.copy_text.data += block

    def add_block(self, block: bytes, events: int) -> bool:
        """Add a buffer entry's ``events`` events (:class:`AuditEntry`) whole, if its block
        is ``COPY`` lines only: as many newlines as events, 24 tabs each, a newline at the
        end and no JSON object (none starts with ``{``), checked in C without splitting it
        (a line's tabs and newline are checked only if the batch is stored row by row:
        :func:`parse_line`). False, and nothing added, otherwise."""
        if (
            events < 1
            or block[-1:] != b"\n"
            or block.count(10) != events
            or block.count(9) != _TABS * events
            or block[:1] == b"{"
            or b"\n{" in block
        ):
            return False
        self.rows.append(block)
        self.events += events
        if self.copy_text is not None:
            self.copy_text.data += block
        return True

    def add_entry(self, entry: AuditEntry) -> None:
        """Add a buffer entry: whole (:meth:`add_block`), or else event by event
        (:func:`entry_events`); an unreadable event is logged and skipped."""
        if not self.add_block(entry.block, entry.events):
            for payload in entry_events(entry):
                self.add_logged(payload)

    def add_logged(self, payload: bytes) -> None:
        """:meth:`add_payload`, an unreadable event logged and skipped."""
        try:
            self.add_payload(payload)
        except ValueError as exc:  # (orjson.JSONDecodeError is one)
            log.error("dropping an unreadable audit event (%s): %r", exc, payload[:200])

    def add_payload(self, payload: bytes) -> None:
        """Add a buffered event, a ``COPY`` line or a JSON object; ValueError if it is
        neither."""
        if payload[:1] == b"{":
            self.add_row(decode(payload))
        else:
            self.add_line(payload)


_TABS = len(COLUMNS) - 1


def entry_events(entry: AuditEntry) -> list[bytes]:
    """A buffer entry's events one by one: its block's lines, a ``COPY`` line with its
    newline, a JSON object without. A count that does not match the lines is logged (the
    lines are what there is: each is stored or logged as unreadable, none lost silently)."""
    lines = entry.block.split(b"\n")
    if lines[-1] == b"":
        del lines[-1]
    if len(lines) != entry.events:
        log.error(
            "audit entry %s says it holds %d events and its block has %d lines: storing the lines",
            entry.id,
            entry.events,
            len(lines),
        )
    return [line if line[:1] == b"{" else line + b"\n" for line in lines]


class _Rows(Sequence[tuple[Any, ...]]):
    """A batch's rows with its ``COPY`` lines read back as they are used (a batch stored
    row by row, SQLite): the common ``COPY`` of the lines never parses them, nor splits
    a block of several (:meth:`RowBatch.add_block`)."""

    def __init__(self, rows: Sequence[Any], count: int | None = None) -> None:
        self._rows = rows
        self._lines: list[Any] | None = None  # with each block split into its lines
        # The rows, when the caller knows them (RowBatch.events): else each block's
        # newlines are counted (a scan of every byte of the batch).
        self._count = -1 if count is None else count

    def __len__(self) -> int:
        if self._count < 0:
            self._count = sum(
                value.count(10) if isinstance(value, bytes | bytearray) else 1
                for value in self._rows
            )
        return self._count

    def _split(self) -> list[Any]:
        if self._lines is None:
            lines: list[Any] = []
            for value in self._rows:
                if isinstance(value, bytes | bytearray) and value.count(10) > 1:
                    lines += [line + b"\n" for line in bytes(value).split(b"\n")[:-1]]
                else:
                    lines.append(value)
            self._lines = lines
        return self._lines

    def raw(self, index: int) -> Any:
        """The row at ``index`` as the batch holds it (a line unparsed)."""
        return self._split()[index]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        value = self._split()[index]
        return parse_line(bytes(value)) if isinstance(value, bytes | bytearray) else value


def insert_rows(
    db: Database,
    rows: Sequence[tuple[Any, ...] | bytes] | Sequence[Sequence[Any]],
    copy_text: CopyText | None = None,
    count: int | None = None,
) -> None:
    """:func:`insert_events` of rows already built (blocking); ``copy_text``: the same rows
    in ``COPY`` text form (:class:`RowBatch`). A row may be a buffered ``COPY`` line
    (:meth:`RowBatch.add_line`): read back only where the rows themselves are stored.
    ``count``: how many rows that is, when known (:attr:`RowBatch.events`).

    An event whose value the database refuses (:class:`RejectedData`: a number beyond
    its column's range) would fail its batch on every retry and stop the drain: the
    batch is then stored event by event, and an event refused on its own is stored in
    the form :func:`_refused` gives (nothing lost, the drain goes on) and logged."""
    parsed = _Rows(rows, count)
    try:
        db.append_new("audit_events", COLUMNS, KEY, parsed, copy_text)
        return
    except RejectedData:
        pass
    for values in _one_by_one(parsed):
        try:
            db.append_new("audit_events", COLUMNS, KEY, [values])
        except RejectedData as exc:
            db.append_new("audit_events", COLUMNS, KEY, [_refused_logged(values, exc)])


async def store_rows(
    appender: AsyncAppender,
    rows: Sequence[tuple[Any, ...] | bytes] | Sequence[Sequence[Any]],
    copy_text: CopyText | None = None,
    count: int | None = None,
) -> None:
    """:func:`insert_rows` on the event loop, through the audit drain's own asyncio
    connection (PostgreSQL): the same one ``COPY``, and the same event-by-event
    storing when the database refuses a value."""
    parsed = _Rows(rows, count)
    try:
        await appender.append_new("audit_events", COLUMNS, KEY, parsed, copy_text)
        return
    except RejectedData:
        pass
    for values in _one_by_one(parsed):
        try:
            await appender.append_new("audit_events", COLUMNS, KEY, [values])
        except RejectedData as exc:
            await appender.append_new("audit_events", COLUMNS, KEY, [_refused_logged(values, exc)])


def _one_by_one(parsed: _Rows) -> Iterator[tuple[Any, ...]]:
    """Each row of a batch the database refused whole; a line that cannot be read back
    is logged and skipped (the ``COPY`` refused it, and so would every retry)."""
    for i in range(len(parsed)):
        try:
            values = parsed[i]
        except ValueError as exc:
            # A line of the right shape whose values are not (not one the gateway wrote).
            log.error("dropped an unreadable audit line (%s): %r", exc, bytes(parsed.raw(i))[:200])
            continue
        yield values


def _refused_logged(values: Sequence[Any], exc: RejectedData) -> list[Any]:
    """:func:`_refused` of an event the database refused on its own, logged."""
    log.error(
        "audit event %s refused by the database (%s): stored with its values in detail",
        values[0],
        exc,
    )
    return _refused(values, exc)


_SHIPPED_BODY = tuple(column for column in COLUMNS if column != "cloud")
"""A shipped event's columns as its cloud sent them (the home sets ``cloud`` itself)."""
_SHIPPED_COLUMNS = (*_SHIPPED_BODY, "cloud", "shipped_at")


def unshipped(
    db: Database, limit: int, after: tuple[float, str] | None = None
) -> list[dict[str, Any]]:
    """The oldest events the home does not have yet, as stored, in (``ts``, ``event_id``)
    order; ``after``: only those past that (``ts``, ``event_id``), so the next batch can
    be selected while the one before is being marked shipped (blocking)."""
    params: tuple[Any, ...]
    if after is None:
        where, params = "", (limit,)
    else:
        # (``ts >= ?`` first: the range the unshipped index on ts can seek to.)
        where = " AND ts >= ? AND (ts > ? OR event_id > ?)"
        params = (after[0], after[0], after[1], limit)
    return db.fetch(
        f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE shipped_at IS NULL{where} "
        "ORDER BY ts, event_id LIMIT ?",
        params,
    )


UNSHIPPED_COUNT_CAP = 1_000_000
"""The follower's backlog gauge counts unshipped events up to this many: ~0.1 s on
PostgreSQL (an index-only count, ~70 ms per million events), where a backlog of an hour's
outage at 16,500 events/s (60 million) would take seconds at every scrape."""


def unshipped_count(db: Database, cap: int = UNSHIPPED_COUNT_CAP) -> int:
    """How many events the home does not have yet, counted up to ``cap`` (blocking)."""
    rows = db.fetch(
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM audit_events WHERE shipped_at IS NULL "
        "LIMIT ?) AS backlog",
        (cap,),
    )
    return int(rows[0]["n"])


def mark_shipped(db: Database, events: Sequence[Mapping[str, Any]], when: float) -> None:
    """The home has stored these events, as :func:`unshipped` returned them (blocking).

    The update names the events' days as well as their ids: on PostgreSQL the table is
    partitioned by day, and only the partitions of those days are searched (by id alone,
    every day's partition kept by retention would be probed for each id). PostgreSQL
    gets the ids as one array (``= ANY(?)``), not a list of parameters: a cached generic
    plan over a list of parameters compares every row it scans with every id, which
    took 300 ms per batch of 200 on a day's partition not yet analysed, against 10 ms
    (0.2 ms analysed) for the array (``bench/audit-shipping.md``)."""
    if not events:
        return
    ids = [event["event_id"] for event in events]
    days = sorted({event["day"] for event in events})
    if db.kind == "postgres":
        db.execute(
            "UPDATE audit_events SET shipped_at = ? WHERE day = ANY(?) AND event_id = ANY(?)",
            (when, days, ids),
        )
        return
    db.execute(
        f"UPDATE audit_events SET shipped_at = ? WHERE day IN ({', '.join('?' * len(days))}) "
        f"AND event_id IN ({', '.join('?' * len(ids))})",
        (when, *days, *ids),
    )


def shipped_through(db: Database, clouds: list[str]) -> dict[str, float]:
    """At the home: for each of ``clouds``, the time before which it has shipped all its
    events (0: it never reported). Blocking."""
    rows = db.fetch("SELECT cloud, complete_through FROM audit_shipping")
    known = {row["cloud"]: float(row["complete_through"]) for row in rows}
    return {cloud: known.get(cloud, 0.0) for cloud in clouds}


def complete_through(db: Database, clouds: list[str]) -> float:
    """At the home: the time before which every one of ``clouds`` has shipped all its
    events (0: one of them never reported). Blocking."""
    return min(shipped_through(db, clouds).values(), default=time.time())


def store_shipped(
    db: Database, cloud: str, rows: list[dict[str, Any]], through: float | None = None
) -> tuple[int, int]:
    """At the home: a batch of ``cloud``'s stored events, each stored once whatever the
    retries, and ``through``, the time before which the cloud has now shipped everything,
    in one transaction (``through`` never advances without the events): (stored,
    duplicates). ValueError naming the first event that is not ``cloud``'s (nothing is
    stored then).

    PostgreSQL stores the batch with one ``COPY`` (:meth:`Transaction.append_new`: the
    home's PostgreSQL spent 7 ms of CPU per 1,000 events, against 73 ms for an insert per
    event, its gateway 12 against 96: ``bench/audit-shipping.md``);
    a batch holding an event stored before (the answer to an earlier send was lost) is
    then inserted event by event with ``ON CONFLICT (event_id, day) DO NOTHING``, which
    counts the duplicates exactly."""
    now = time.time()
    values = []
    for data in rows:
        event_id = data.get("event_id")
        # A peer ships only its own events; ids from before the plane (no cloud prefix)
        # are accepted as the sender's (an id already stored is never overwritten).
        if not isinstance(event_id, str) or not (
            event_id.startswith(f"{cloud}.") or (event_id and "." not in event_id)
        ):
            raise ValueError(f"event {event_id!r} is not {cloud}'s (ids start with {cloud}.)")
        get = data.get
        values.append((*(get(column) for column in _SHIPPED_BODY), cloud, now))

    def work(tx: Transaction) -> int:
        stored = tx.append_new("audit_events", _SHIPPED_COLUMNS, KEY, values)
        if through is not None:
            tx.execute(
                "INSERT INTO audit_shipping (cloud, complete_through, reported_at) "
                "VALUES (?, ?, ?) ON CONFLICT (cloud) DO UPDATE SET complete_through = "
                "excluded.complete_through, reported_at = excluded.reported_at",
                (cloud, through, now),
            )
        return stored

    stored = db.transaction(work)
    return stored, len(rows) - stored


class AuditDrainer:
    """Moves events from the buffer to the database in batches; retries until it can."""

    def __init__(
        self,
        state: GovernanceState,
        db: Database,
        *,
        batch: int = 500,
        block_s: float = 0.2,
        interval_s: float = 0.0,
        slice_s: float = 0.0002,
        slice_events: int = 64,
    ) -> None:
        self.state = state
        self.db = db
        self.batch = batch
        self.block_s = block_s
        # The drainer shares the event loop with the requests: it decodes and formats a
        # batch in slices of at most ``slice_s`` (and ``slice_events``), yielding to the
        # loop between them, so a request that arrives meanwhile waits one slice, not the
        # whole batch (~10 µs per event: 5 ms for 500). Its database thread then only
        # sends the formatted rows (``bench/partial-p99-tail.md``).
        self.slice_s = slice_s
        self.slice_events = slice_events
        self.slices = 0  # slices run (the yields to the loop are one fewer per batch)
        self._adapt: Any = None
        # After a partial batch, wait for more events before reading again: under
        # load each pass then writes hundreds of events, not a handful (a pass costs
        # a stream read, a database round trip and an acknowledgement).
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0
        # PostgreSQL: the batches' COPY on the event loop, over a connection of the
        # drain's own (AsyncAppender); SQLite: in a worker thread, on ``db``.
        self.appender = AsyncAppender.of(db) if db.kind == "postgres" else None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def drain_once(self) -> int:
        """Write one batch (at most ``batch`` events, or one buffer entry's); the number
        of events acknowledged (as the entries say)."""
        return (await self._drain())[1]

    async def _drain(self, running: bool = False) -> tuple[int, int]:
        """:meth:`drain_once`: the entries read, and the events they say they hold (an
        entry may say 0 and hold lines: stored line by line, :func:`entry_events`).

        ``running`` (the drain's loop): when the loop reads again at once (a full batch,
        or more waiting), the batch is acknowledged with that read
        (:meth:`~gateway_app.state.governance.GovernanceState.ack_later`: one round trip
        less per batch, ~50 a second under load); else, and for :meth:`drain_once`, now."""
        entries = await self.state.read_audit_entries(self.batch, self.block_s)
        if not entries:
            return 0, 0
        batch = await self._build(entries)
        if self.appender is not None:
            await store_rows(self.appender, batch.rows, batch.copy_text, batch.events)
        else:
            await asyncio.to_thread(insert_rows, self.db, batch.rows, batch.copy_text, batch.events)
        events = sum(entry.events for entry in entries)
        ids = [entry.id for entry in entries]
        if running and not self._pauses(events):
            self.state.ack_later(ids)
        else:
            await self.state.ack(ids)
        self.written += batch.events
        return len(entries), events

    def _pauses(self, drained: int) -> bool:
        """Whether the loop waits ``interval_s`` after a pass of ``drained`` events (a
        partial batch with nothing more waiting) before it reads again."""
        return 0 < drained < self.batch and bool(self.interval_s) and not self.state.audit_more

    async def _build(self, entries: list[AuditEntry]) -> RowBatch:
        """Decode and format ``entries`` in slices, yielding to the loop between them (an
        entry of ``COPY`` lines only is appended whole: nothing to format)."""
        if self._adapt is None and self.db.kind == "postgres":
            # One psycopg Transformer for every batch: its dumpers are cached.
            copy_text = CopyText.create()
            self._adapt = copy_text.adapt if copy_text is not None else None
        batch = RowBatch(self.db, self._adapt)
        clock = time.perf_counter
        budget, most = self.slice_s, self.slice_events
        started, taken = clock(), 0
        self.slices += 1
        for entry in entries:
            if entry.layout == LAYOUT:
                batch.add_lines(entry.block, entry.events)  # marked by its writer
                continue
            if batch.add_block(entry.block, entry.events):
                continue  # lines only: one append, nothing to format
            for payload in entry_events(entry):  # JSON objects (or a bad count)
                if taken >= most or clock() - started >= budget:
                    await asyncio.sleep(0)
                    started, taken = clock(), 0
                    self.slices += 1
                taken += 1
                batch.add_logged(payload)
        return batch

    async def _run(self) -> None:
        backoff = 0.5
        while not self._stopping:
            try:
                drained = (await self._drain(running=True))[1]
                backoff = 0.5
                # (a pass stopped at the bound, the next entry not fitting, is no partial
                # batch: the buffer may hold a backlog, read on at once)
                if self._pauses(drained):
                    await pause(self.interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # redis-py may turn the cancellation of a blocked read into another
                # error: the flag, not the exception type, says we are stopping.
                if self._stopping:
                    return
                # Database or Redis down: nothing is acknowledged, so nothing is lost.
                log.warning("audit drain failed (%s); retrying in %.1fs", exc, backoff)
                await pause(backoff)
                backoff = min(backoff * 2, 10.0)

    async def stop(self, flush_s: float = 2.0) -> None:
        """Stop after writing what can be written within ``flush_s``."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5.0)
            self._task = None
        deadline = time.monotonic() + flush_s
        while time.monotonic() < deadline:
            try:
                # Until the buffer is empty: an entry saying 0 events is no end.
                async with asyncio.timeout(flush_s):
                    drained = (await self._drain())[0]
                if drained == 0:
                    break
            except Exception:
                break
        await self.close()

    async def close(self) -> None:
        """Close the drain's own database connection (PostgreSQL), if open."""
        if self.appender is not None:
            await self.appender.close()
