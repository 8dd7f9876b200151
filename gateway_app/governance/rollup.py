"""Roll-ups of the audit log: what the analytics API reads for the days that are closed.

At 50,000 requests/s ``audit_events`` takes 4.3 billion rows a day, and retention drops
whole days of them, though budgets and chargeback need months. So each closed UTC day
(before today) is rolled up once, by ``audit-maintain``, into two small tables, and the
analytics read those for the days rolled up and the raw table only for the rest:

- ``audit_rollup``: per day and group (the day, month and every dimension the API
  groups by), the requests, tokens, USD and last request time of its request events;
- ``audit_rollup_latency``: per day, group and latency bucket (:data:`GAMMA`), the
  requests and the errors (status >= 500) among them; ``audit_rollup_latency_coarse``
  the same without key and customer, for the answers not grouped by them.

``audit_rollup_state`` holds the watermark: every day up to ``through`` is rolled up, the
days after it are read raw. A roll-up of day D is exactly its raw rows, each once:

1. Late events. An event of a day already rolled up (a drainer back from a database
   outage, a follower of the global plane shipping a day's events to the home) fires a
   trigger on its partition (PostgreSQL; SQLite: on the table) that copies it into
   ``audit_rollup_late`` in the inserting transaction; the analytics read that table as
   raw rows, and the next ``audit-maintain`` folds it into the roll-up (in one
   transaction: added and deleted together). The trigger is on the partitions of days
   rolled up only, so today's inserts pay nothing; a re-delivered event stored before
   is skipped by the insert (``ON CONFLICT DO NOTHING``), so it fires nothing.
2. Rolling day D first installs that trigger for D (a short transaction: ``CREATE
   TRIGGER`` waits for the inserts into D's partition under way, and every later one
   fires it), then, in a second transaction, aggregates D's rows except those the
   trigger copied meanwhile and advances the watermark. So an event is in the roll-up
   or in the late table, never both, never neither.

A day is rolled up in its own pair of transactions (the trigger's under the partitions'
maintenance lock, the aggregate under the roll-ups' own lock), oldest first, so the first roll-up of years of rows is chunked by day and resumes
where it stopped. Retention drops (SQLite: deletes) a day only once it is rolled up.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from gateway_app.governance.storage import Database, DatabaseError, Transaction

log = logging.getLogger("gateway_app.governance")

STATE_NAME = "audit_events"
"""The watermark's row in ``audit_rollup_state``."""

MAINTENANCE_LOCK = 715102
"""The advisory lock of every change to the audit partitions (the same as
:data:`gateway_app.governance.retention.MAINTENANCE_LOCK`): installing a late-event
trigger takes it, so no partition is made meanwhile without one."""

ROLLUP_LOCK = 715103
"""The advisory lock of the roll-ups' aggregates and folds: they take turns, and a long
aggregate (a busy day) holds up no partition change (``migrate`` at a deploy)."""

LOCK_TIMEOUT = "5s"
"""How long installing a trigger waits for the inserts into a partition under way."""

GROUP_COLUMNS = (
    "team_id",
    "project_id",
    "key_id",
    "customer",
    "model",
    "provider",
    "deployment",
    "cloud",
)
"""The dimensions a roll-up keeps, besides ``day`` and ``month`` (every one the analytics
API groups by): a group is exact for any of them and any combination."""

PER_CALLER_COLUMNS = ("key_id", "customer")
"""The dimensions ``audit_rollup_latency_coarse`` leaves out: the many keys and customers
of a route share its histogram there (a group's buckets fill up with volume, so the
full histogram is about 100 rows a group a day at 50,000 requests/s)."""

COARSE_COLUMNS = tuple(c for c in GROUP_COLUMNS if c not in PER_CALLER_COLUMNS)

LATE_COLUMNS = (
    "event_id",
    "day",
    "month",
    "ts",
    *GROUP_COLUMNS,
    "status",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
)
"""What ``audit_rollup_late`` keeps of a late request event: what the roll-ups need."""

ACCURACY = 0.01
"""The relative error bound of a latency percentile read from the roll-up's histogram."""

GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
"""The latency buckets' ratio: bucket i holds the latencies in (GAMMA^(i-1), GAMMA^i] ms
(a logarithmic histogram, as DDSketch's). A percentile read from it is the rank's bucket's
value 2 GAMMA^i / (GAMMA + 1), within :data:`ACCURACY` (1 %) of every latency in the
bucket, so within 1 % of the exact (nearest-rank) percentile. 116 buckets a decade: one
group's latencies from 1 ms to 100 s fill at most 581."""

MIN_LATENCY_MS = 0.01
"""Latencies below it (10 µs) share :data:`ZERO_BUCKET`, read as 0 ms (absolute error
below 0.01 ms)."""

ZERO_BUCKET = -1_000_000
MAX_LATENCY_MS = 1e9
"""Latencies at or above it (11 days: never a real request's) share the top bucket."""

BUCKET_SQL = (
    f"(CASE WHEN latency_ms < {MIN_LATENCY_MS!r} THEN {ZERO_BUCKET} "
    f"WHEN latency_ms >= {MAX_LATENCY_MS!r} THEN "
    f"{math.ceil(math.log(MAX_LATENCY_MS) / math.log(GAMMA))} "
    f"ELSE CAST(CEIL(LN(latency_ms) / {math.log(GAMMA)!r}) AS INTEGER) END)"
)
"""A row's latency bucket, in SQL (both databases)."""

ERROR_SQL = "(CASE WHEN status >= 500 THEN 1 ELSE 0 END)"

WATERMARK_SQL = f"(SELECT through FROM audit_rollup_state WHERE name = '{STATE_NAME}')"
"""The last day rolled up (NULL: none), read in the same statement as the data."""


def bucket_value(bucket: int) -> float:
    """The latency (ms) a bucket stands for: within :data:`ACCURACY` of each in it."""
    if bucket == ZERO_BUCKET:
        return 0.0
    return 2 * GAMMA**bucket / (GAMMA + 1)


def histogram_percentile(histogram: Sequence[tuple[int, int]], share: float) -> float:
    """The nearest-rank percentile ``share`` of a histogram (``(bucket, count)`` pairs, any
    order): the value of the bucket holding the rank ``ceil(share * n)``."""
    ordered = sorted(histogram)
    total = sum(count for _, count in ordered)
    if total == 0:
        return 0.0
    rank = max(1, min(total, math.ceil(share * total)))
    seen = 0
    for bucket, count in ordered:
        seen += count
        if seen >= rank:
            return bucket_value(bucket)
    return bucket_value(ordered[-1][0])  # (unreachable: seen reaches total)


@dataclass
class Rollup:
    """What :func:`roll_up` did."""

    days: list[str] = field(default_factory=list)  # days rolled up now, oldest first
    rows: int = 0  # request events rolled up now
    folded: int = 0  # late events folded into the roll-up
    pending: list[str] = field(default_factory=list)  # closed days left for the next run
    failed: list[str] = field(default_factory=list)  # why it stopped early (next run goes on)


def watermark(db: Database | Transaction) -> str | None:
    """The last day rolled up (every day up to it is), None before the first."""
    rows = db.fetch(WATERMARK_SQL.strip("()"))
    return str(rows[0]["through"]) if rows else None


def lag_days(db: Database, today: date) -> int:
    """Closed days (before ``today``) holding events that the roll-up has not reached:
    0 once yesterday is rolled up (or nothing is stored before today). What the
    ``aigw_audit_rollup_lag_days`` gauge reports and ``AigwAuditRollupBehind`` alerts on
    (blocking; two index lookups)."""
    yesterday = today - timedelta(days=1)
    through = watermark(db)
    if through is None:
        rows = db.fetch("SELECT MIN(day) AS first FROM audit_events WHERE day < ?", (str(today),))
        first = rows[0]["first"] if rows else None
        if first is None:
            return 0
        return (yesterday - date.fromisoformat(str(first))).days + 1
    return max(0, (yesterday - date.fromisoformat(through)).days)


PartitionsOf = Callable[[Transaction, str], list[str]]
"""PostgreSQL: the partitions a late event of a day may land in (its own, if any, and the
DEFAULT one): :func:`gateway_app.governance.retention.late_partitions`."""


def roll_up(
    db: Database,
    today: date,
    partitions_of: PartitionsOf | None = None,
    *,
    budget_s: float | None = None,
    clock: Any = time.monotonic,
) -> Rollup:
    """Fold the late events in, then roll up each closed day (before ``today``) not rolled
    up yet, oldest first, each in its own transactions (see the module's docstring).
    With ``budget_s``, no day is started once that many seconds have passed (the rest
    is left for the next run, in ``pending``). Blocking; idempotent; several runners take
    turns on the maintenance lock. ``partitions_of``: required on PostgreSQL."""
    done = Rollup()
    started = clock()
    try:
        done.folded = fold_late(db)
        _roll_closed_days(db, today, partitions_of, done, lambda: clock() - started, budget_s)
    except DatabaseError as exc:
        log.warning("audit roll-up stopped (the next run goes on): %s", exc)
        done.failed.append(f"roll-up: {exc}")
    return done


def _roll_closed_days(
    db: Database,
    today: date,
    partitions_of: PartitionsOf | None,
    done: Rollup,
    elapsed: Callable[[], float],
    budget_s: float | None,
) -> None:
    through = watermark(db)
    if through is None:
        first = db.fetch("SELECT MIN(day) AS day FROM audit_events WHERE kind = 'request'")
        oldest = first[0]["day"] if first else None
        if oldest is None or oldest >= today.isoformat():
            return
        day = _parse_day(oldest)
    else:
        day = _parse_day(through) + timedelta(days=1)
    while day < today:
        if budget_s is not None and elapsed() >= budget_s:
            done.pending = [
                (day + timedelta(days=n)).isoformat() for n in range((today - day).days)
            ]
            break
        rows = roll_day(db, day.isoformat(), partitions_of)
        if rows is not None:
            done.days.append(day.isoformat())
            done.rows += rows
        day += timedelta(days=1)


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        # A day that is not a date (an event refused and kept as text): start the
        # roll-ups at the first real day after it sorts.
        return date(2000, 1, 1)


def roll_day(db: Database, day: str, partitions_of: PartitionsOf | None = None) -> int | None:
    """Roll up ``day``: install its late-event trigger, then aggregate it and advance the
    watermark to it. The request events rolled up; None if the watermark is not the day
    before (another runner did it, or a day before it is not rolled up yet)."""
    db.transaction(lambda tx: install_late_trigger(tx, day, partitions_of))

    def aggregate(tx: Transaction) -> int | None:
        tx.lock(ROLLUP_LOCK)
        through = watermark(tx)
        if through is not None and through >= day:
            return None
        if through is not None and _parse_day(through) + timedelta(days=1) != _parse_day(day):
            return None
        # Every event of the day except those the trigger copied (they are folded later).
        source = (
            "audit_events e WHERE e.kind = 'request' AND e.day = ? AND NOT EXISTS "
            "(SELECT 1 FROM audit_rollup_late l WHERE l.event_id = e.event_id AND l.day = ?)"
        )
        _insert_rollups(tx, source, (day, day))
        counted = tx.fetch("SELECT SUM(requests) AS n FROM audit_rollup WHERE day = ?", (day,))
        tx.execute(
            "INSERT INTO audit_rollup_state (name, through, rolled_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET through = excluded.through, "
            "rolled_at = excluded.rolled_at",
            (STATE_NAME, day, time.time()),
        )
        return int(counted[0]["n"] or 0)

    return db.transaction(aggregate)


_GROUP = ", ".join(("day", "month", *GROUP_COLUMNS))


WORK_MEM = "512MB"
"""PostgreSQL: the memory a roll-up's aggregate may hash in (one maintenance session):
a day's groups x latency buckets, which at the default 4 MB spill to disk."""


def _insert_rollups(tx: Transaction, source: str, params: Sequence[Any]) -> None:
    """Add the roll-up rows of the events ``FROM {source}`` (a table and its ``WHERE``
    clause): their usage per group and their latency histogram per group.

    One scan of the events, into a temporary table per group and bucket (PostgreSQL may
    run it with parallel workers, which an ``INSERT ... SELECT`` never gets); both
    roll-ups are then summed from that small table."""
    if tx.kind == "postgres":
        tx.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    tx.execute("DROP TABLE IF EXISTS audit_rollup_fine")
    tx.execute(
        f"CREATE TEMPORARY TABLE audit_rollup_fine AS SELECT {_GROUP}, {BUCKET_SQL} AS bucket, "
        "COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, "
        "SUM(completion_tokens) AS completion_tokens, SUM(cost_usd) AS cost_usd, "
        f"MAX(ts) AS last_ts, SUM({ERROR_SQL}) AS errors FROM {source} "
        f"GROUP BY {_GROUP}, {BUCKET_SQL}",
        params,
    )
    tx.execute(
        f"INSERT INTO audit_rollup ({_GROUP}, requests, prompt_tokens, completion_tokens, "
        f"cost_usd, last_ts) SELECT {_GROUP}, SUM(requests), COALESCE(SUM(prompt_tokens), 0), "
        "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_usd), 0), MAX(last_ts) "
        f"FROM audit_rollup_fine GROUP BY {_GROUP}"
    )
    tx.execute(
        f"INSERT INTO audit_rollup_latency ({_GROUP}, bucket, requests, errors) "
        f"SELECT {_GROUP}, bucket, requests, errors FROM audit_rollup_fine "
        "WHERE bucket IS NOT NULL"
    )
    coarse = ", ".join(("day", "month", *COARSE_COLUMNS))
    tx.execute(
        f"INSERT INTO audit_rollup_latency_coarse ({coarse}, bucket, requests, errors) "
        f"SELECT {coarse}, bucket, SUM(requests), SUM(errors) FROM audit_rollup_fine "
        f"WHERE bucket IS NOT NULL GROUP BY {coarse}, bucket"
    )
    tx.execute("DROP TABLE audit_rollup_fine")


def fold_late(db: Database) -> int:
    """Move the late events of the days rolled up into the roll-up (added and deleted in
    one transaction, under the maintenance lock); how many."""

    def fold(tx: Transaction) -> int:
        tx.lock(ROLLUP_LOCK)
        if tx.kind == "postgres":
            # No late event is copied between the reads and the delete below.
            tx.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            tx.execute("LOCK TABLE audit_rollup_late IN EXCLUSIVE MODE")
        through = watermark(tx)
        if through is None:
            return 0
        late = tx.fetch("SELECT COUNT(*) AS n FROM audit_rollup_late WHERE day <= ?", (through,))
        count = int(late[0]["n"])
        if count:
            _insert_rollups(tx, "audit_rollup_late WHERE day <= ?", (through,))
            tx.execute("DELETE FROM audit_rollup_late WHERE day <= ?", (through,))
        return count

    return db.transaction(fold)


def install_late_trigger(
    tx: Transaction, day: str, partitions_of: PartitionsOf | None = None
) -> None:
    """Make every request event of ``day`` or before stored from now on also go to
    ``audit_rollup_late``: on PostgreSQL, a trigger on each of ``partitions_of(day)`` (the
    partition holding ``day`` and the DEFAULT partition, where the rows of a day whose
    partition is gone land); on SQLite, on the table."""
    tx.lock(MAINTENANCE_LOCK)
    when = f"NEW.kind = 'request' AND NEW.day <= '{_literal(day)}'"
    if tx.kind == "sqlite":
        values = ", ".join(f"NEW.{column}" for column in LATE_COLUMNS)
        tx.execute("DROP TRIGGER IF EXISTS audit_rollup_late")
        tx.execute(
            f"CREATE TRIGGER audit_rollup_late AFTER INSERT ON audit_events WHEN {when} "
            f"BEGIN INSERT INTO audit_rollup_late ({', '.join(LATE_COLUMNS)}) "
            f"VALUES ({values}); END"
        )
        return
    if partitions_of is None:
        raise ValueError("PostgreSQL roll-ups need the partitions of a day (partitions_of)")
    tx.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    for name in partitions_of(tx, day):
        trigger_partition(tx, name, day)


def trigger_partition(tx: Transaction, partition: str, through: str) -> None:
    """PostgreSQL: the late-event trigger on ``partition`` for the days up to ``through``
    (replacing the one it has)."""
    tx.execute(
        f"CREATE OR REPLACE TRIGGER audit_rollup_late AFTER INSERT ON {partition} "
        f"FOR EACH ROW WHEN (NEW.kind = 'request' AND NEW.day <= '{_literal(through)}') "
        "EXECUTE FUNCTION audit_rollup_record_late()"
    )


def _literal(day: str) -> str:
    return day.replace("'", "''")
