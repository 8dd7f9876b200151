"""Audit retention: the day partitions of ``audit_events`` and how long they are kept.

One row per request is 4.3 billion rows a day at 50,000 requests/s: deleting old rows
at that rate is not an option (bloat, vacuum). On PostgreSQL the table is therefore
range-partitioned by ``day`` (migration 9), one partition per UTC day, and retention
drops whole days. :func:`maintain` is the one idempotent operation that keeps it so,
run by ``python -m gateway_app audit-maintain`` (a daily Kubernetes CronJob, with the
schema owner's credentials: the serving role owns no table) and by ``migrate``:

- it creates the partitions of today and the next ``ahead_days`` days, and of any day
  whose rows landed in the DEFAULT partition meanwhile (they are moved into it);
- it rolls up the closed days (:mod:`gateway_app.governance.rollup`: what the analytics
  read once a day is gone) and folds in the events that arrived late for them;
- with ``governance.audit_retention_days`` = N, it drops every partition whose days all
  lie before ``today - N`` (today and the N days before it are kept) and are rolled up,
  the partition of the rows stored before migration 9 included once its last day is
  past; never the DEFAULT partition (its expired rows are deleted) and never today's.

Each change is its own short transaction under an advisory lock (two runners at once
take turns, and the second finds the work done) with a ``lock_timeout``: a drop waits
for no long query, so inserts never queue behind it; a change that times out is
reported and made by the next run.

SQLite (the embedded database, owned by the gateway's own process) keeps a plain
table: :class:`Sweeper` deletes the expired days in the gateway itself, in chunks.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from gateway_app.aio import pause
from gateway_app.governance import rollup
from gateway_app.governance.storage import Database, DatabaseError, Transaction

log = logging.getLogger("gateway_app.governance")

AHEAD_DAYS = 14
"""Partitions made ahead of today: two weeks of daily runs may fail before the DEFAULT
partition takes a day's rows."""

MAINTENANCE_LOCK = rollup.MAINTENANCE_LOCK
"""The advisory lock every change to the partitions and their late-event triggers takes
(715100: migrations; the roll-ups' aggregates take their own)."""

ROLLUP_BUDGET_S = 7200.0
"""``audit-maintain`` starts no roll-up of a day after this many seconds (the rest waits
for the next run): the first roll-up of years of rows spreads over several runs."""

LOCK_TIMEOUT = "5s"
"""How long a change waits for its table locks before giving up until the next run."""

SWEEP_INTERVAL_S = 3600.0
"""SQLite: how often the gateway deletes expired days."""

SWEEP_CHUNK = 5000
"""SQLite: rows deleted per transaction (the drainer's writes wait at most one chunk)."""

TABLE = "audit_events"
DEFAULT_PARTITION = "audit_events_default"

_BOUND = re.compile(r"FROM \((?:MINVALUE|'([^']*)')\) TO \((?:MAXVALUE|'([^']*)')\)")


@dataclass(frozen=True)
class Partition:
    """One partition of ``audit_events``: the days ``[lower, upper)`` it holds (None: no
    bound, MINVALUE/MAXVALUE); both None for the DEFAULT partition."""

    name: str
    lower: str | None
    upper: str | None
    default: bool = False

    def covers(self, day: str) -> bool:
        """Whether rows of ``day`` (YYYY-MM-DD) belong here (never the DEFAULT's)."""
        if self.default:
            return False
        return (self.lower is None or self.lower <= day) and (
            self.upper is None or day < self.upper
        )


@dataclass
class Maintenance:
    """What :func:`maintain` did."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved: int = 0  # rows moved from the DEFAULT partition into their day's
    deleted: int = 0  # expired rows deleted (SQLite; PostgreSQL: from the DEFAULT partition)
    failed: list[str] = field(default_factory=list)  # changes left for the next run
    rolled_up: rollup.Rollup = field(default_factory=rollup.Rollup)
    kept: list[str] = field(default_factory=list)  # expired, kept until rolled up


def utc_today() -> date:
    """Today in UTC, the clock every event's ``day`` is written in."""
    return datetime.now(UTC).date()


def cutoff_day(today: date, retention_days: int) -> date:
    """The oldest day kept with ``retention_days``: days before it are dropped.

    Today and the ``retention_days`` days before it are kept, so an event is kept at
    least ``retention_days`` full days. ValueError if ``retention_days`` < 1 (today's
    partition is never dropped).
    """
    if retention_days < 1:
        raise ValueError(
            f"governance.audit_retention_days is {retention_days}: set it to 1 or more "
            "days (or leave it unset to keep every event)"
        )
    return today - timedelta(days=retention_days)


def partition_name(day: date) -> str:
    """The name of ``day``'s partition: ``audit_events_p20261206``."""
    return f"{TABLE}_p{day:%Y%m%d}"


def expired(partition: Partition, cutoff: date) -> bool:
    """Whether every day ``partition`` holds lies before ``cutoff`` (never the DEFAULT,
    never an unbounded one)."""
    return (
        not partition.default
        and partition.upper is not None
        and partition.upper <= cutoff.isoformat()
    )


def parse_bound(name: str, bound: str) -> Partition:
    """A partition from PostgreSQL's ``pg_get_expr(relpartbound)`` text."""
    if bound.strip().upper() == "DEFAULT":
        return Partition(name, None, None, default=True)
    match = _BOUND.search(bound)
    if match is None:
        raise DatabaseError(f"partition {name} of {TABLE} has an unexpected bound: {bound}")
    return Partition(name, match.group(1), match.group(2))


def partitions(tx: Transaction) -> list[Partition]:
    """The partitions of ``audit_events`` (PostgreSQL); DatabaseError if the table is not
    partitioned (migration 9 not applied: run ``migrate`` first)."""
    kind = tx.fetch(f"SELECT relkind FROM pg_class WHERE oid = to_regclass('{TABLE}')")
    if not kind or kind[0]["relkind"] != "p":
        raise DatabaseError(
            f"{TABLE} is not partitioned by day: run `python -m gateway_app migrate` first"
        )
    rows = tx.fetch(
        "SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        f"WHERE i.inhparent = to_regclass('{TABLE}') ORDER BY c.relname"
    )
    return [parse_bound(row["name"], row["bound"]) for row in rows]


def maintain(
    db: Database,
    retention_days: int | None = None,
    *,
    ahead_days: int = AHEAD_DAYS,
    today: date | None = None,
    keep_unshipped: bool = False,
    roll_up: bool = True,
    rollup_budget_s: float | None = None,
) -> Maintenance:
    """Create the coming days' partitions, roll up the closed days (``roll_up``; at most
    ``rollup_budget_s`` seconds of starting them) and drop (SQLite: delete) the expired
    days that are rolled up.

    Idempotent and safe with several runners at once. ``retention_days`` None keeps
    every event. ``keep_unshipped`` (a follower of the global governance plane): an
    expired partition holding an event the home does not have yet is kept (reported in
    ``failed``) until the event is shipped. An expired day not rolled up yet is kept
    (reported in ``kept``) until it is. Run with the schema owner's credentials on
    PostgreSQL.
    """
    today = today or utc_today()
    cutoff = cutoff_day(today, retention_days) if retention_days is not None else None
    if db.kind == "sqlite":
        done = Maintenance()
        if roll_up:
            done.rolled_up = rollup.roll_up(db, today, budget_s=rollup_budget_s)
            done.failed += done.rolled_up.failed
        deletable = rolled_cutoff(db, cutoff) if cutoff else None
        done.deleted = delete_expired(db, deletable) if deletable else 0
        if cutoff and (deletable is None or deletable < cutoff):
            done.kept.append(f"days before {cutoff}: kept until they are rolled up")
        return done
    done = Maintenance()
    listed = db.transaction(partitions)
    default_days = [
        row["day"]
        for row in db.fetch(f"SELECT DISTINCT day FROM {DEFAULT_PARTITION}")
        if _is_day(row["day"])
    ]
    wanted = {(today + timedelta(days=n)).isoformat() for n in range(ahead_days + 1)}
    wanted |= {day for day in default_days if cutoff is None or day >= cutoff.isoformat()}
    for day in sorted(wanted):
        if not any(p.covers(day) for p in listed):
            _change(db, done, partition_name(date.fromisoformat(day)), _creator(day, done, today))
    if roll_up:
        done.rolled_up = rollup.roll_up(db, today, late_partitions, budget_s=rollup_budget_s)
        done.failed += done.rolled_up.failed
    if cutoff is None:
        return done
    deletable = rolled_cutoff(db, cutoff)
    for partition in listed:
        if not expired(partition, cutoff):
            continue
        if deletable is None or not expired(partition, deletable):
            done.kept.append(f"{partition.name}: expired, kept until its days are rolled up")
            continue
        _change(db, done, partition.name, _dropper(partition, deletable, done, keep_unshipped))

    def delete_from_default(tx: Transaction) -> None:
        assert deletable is not None
        done.deleted += tx.execute(
            f"DELETE FROM {DEFAULT_PARTITION} WHERE day < ?", (deletable.isoformat(),)
        )

    if deletable is not None and any(day < deletable.isoformat() for day in default_days):
        _change(db, done, DEFAULT_PARTITION, delete_from_default)
    return done


def late_partitions(tx: Transaction, day: str) -> list[str]:
    """The partitions whose late-event trigger rolling up ``day`` must (re)install: the
    one holding ``day`` (if there is one) and the DEFAULT partition (for when there is
    none), whose triggers then take every day up to ``day``; and any partition of
    earlier days without one yet (made ahead before the first event: the first roll-up
    starts at the oldest event's day)."""
    triggered = {
        row["name"]
        for row in tx.fetch(
            "SELECT c.relname AS name FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = 'audit_rollup_late'"
        )
    }
    return [
        p.name
        for p in partitions(tx)
        if p.default
        or p.covers(day)
        or ((p.lower is None or p.lower <= day) and p.name not in triggered)
    ]


def rolled_cutoff(db: Database, cutoff: date) -> date | None:
    """The oldest day kept: ``cutoff``, or the day after the last day rolled up if that
    is earlier (a day's events go only once its roll-up has them); None: keep all."""
    through = rollup.watermark(db)
    if through is None or not _is_day(through):
        return None
    return min(cutoff, date.fromisoformat(through) + timedelta(days=1))


def _is_day(text: object) -> bool:
    try:
        return isinstance(text, str) and date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _change(
    db: Database, done: Maintenance, name: str, work: Callable[[Transaction], None]
) -> None:
    """Run one change in its own transaction, under the lock and the lock timeout."""

    def run(tx: Transaction) -> None:
        tx.lock(MAINTENANCE_LOCK)
        tx.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        work(tx)

    try:
        db.transaction(run)
    except DatabaseError as exc:
        log.warning("audit partitions: %s not changed (next run retries): %s", name, exc)
        done.failed.append(f"{name}: {exc}")


def _creator(day: str, done: Maintenance, today: date) -> Callable[[Transaction], None]:
    """Create ``day``'s partition, moving its rows out of the DEFAULT partition."""
    name = partition_name(date.fromisoformat(day))
    upper = (date.fromisoformat(day) + timedelta(days=1)).isoformat()

    def create(tx: Transaction) -> None:
        if any(p.covers(day) for p in partitions(tx)):
            return  # another runner made it meanwhile
        # A standalone table attached afterwards: ATTACH takes a lighter lock on the
        # parent than CREATE ... PARTITION OF, so the inserts of other days go on. The
        # DEFAULT partition is locked first, so no row of this day lands there meanwhile.
        tx.execute(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE")
        tx.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        moved = tx.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE day >= ? AND day < ? "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            (day, upper),
        )
        tx.execute(
            f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{day}') TO ('{upper}')"
        )
        if day < today.isoformat():
            # A closed day (rolled up, or to be: its roll-up may have installed its
            # triggers already): its events from now on are late ones.
            rollup.trigger_partition(tx, name, day)
        done.created.append(name)
        done.moved += max(moved, 0)

    return create


def _dropper(
    partition: Partition, cutoff: date, done: Maintenance, keep_unshipped: bool
) -> Callable[[Transaction], None]:
    """Drop ``partition`` if it is still there and still expired (and, with
    ``keep_unshipped``, holds no event the home does not have yet)."""

    def drop(tx: Transaction) -> None:
        now = {p.name: p for p in partitions(tx)}
        if partition.name not in now or not expired(now[partition.name], cutoff):
            return
        if keep_unshipped and tx.fetch(
            f"SELECT 1 FROM {partition.name} WHERE shipped_at IS NULL LIMIT 1"
        ):
            done.failed.append(
                f"{partition.name}: kept, it holds events not yet shipped to the home "
                "(aigw_gov_audit_unshipped); dropped once they are"
            )
            return
        tx.execute(f"DROP TABLE {partition.name}")
        done.dropped.append(partition.name)

    return drop


def delete_expired(db: Database, cutoff: date) -> int:
    """SQLite: delete the events of the days before ``cutoff`` in chunks; how many."""
    deleted = 0
    while True:
        chunk = db.execute(
            f"DELETE FROM {TABLE} WHERE rowid IN "
            f"(SELECT rowid FROM {TABLE} WHERE day < ? LIMIT {SWEEP_CHUNK})",
            (cutoff.isoformat(),),
        )
        deleted += chunk
        if chunk < SWEEP_CHUNK:
            return deleted


class Sweeper:
    """SQLite: deletes the expired days every :data:`SWEEP_INTERVAL_S` in the gateway
    (which owns its database file), first at start."""

    def __init__(
        self, db: Database, retention_days: int, interval_s: float = SWEEP_INTERVAL_S
    ) -> None:
        cutoff_day(utc_today(), retention_days)  # fail now on a bad value, not at the first run
        self.db = db
        self.retention_days = retention_days
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the periodic deletion on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def sweep(self) -> int:
        """Roll up the closed days, then delete the expired days rolled up; how many
        events were deleted."""
        today = utc_today()
        cutoff = cutoff_day(today, self.retention_days)
        done = await asyncio.to_thread(maintain, self.db, self.retention_days, today=today)
        deleted = done.deleted
        if deleted:
            log.info("audit retention: deleted %d events of days before %s", deleted, cutoff)
        return deleted

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("audit retention failed (%s); retrying in %.0fs", exc, self.interval_s)
            await pause(self.interval_s)

    async def stop(self) -> None:
        """Stop (a deletion under way finishes its chunk)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5.0)
            self._task = None
