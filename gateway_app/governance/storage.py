"""Durable records: SQLite (embedded default) or PostgreSQL (production, TLS).

Both speak the same small SQL subset (``?`` placeholders, ``ON CONFLICT``), so
keys, limits and the audit log have one code path. The drivers are blocking;
callers run them in a thread (``asyncio.to_thread``) and never on the request's
hot path: the hot path reads keys and limits from memory and writes audit
events to a buffer.

Schema changes are numbered migrations applied in order inside a transaction
and recorded in ``schema_migrations``; ``python -m gateway_app migrate`` applies
them to PostgreSQL (SQLite databases are migrated at start-up). Run with the
owner's credentials, it also creates the gateway's own least-privileged role
(:meth:`Database.ensure_app_role`): the serving pods never hold the owner's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from gateway_app.environment import Environment

log = logging.getLogger("gateway_app.governance")


class Dialect(NamedTuple):
    """A migration statement for one database kind only (``postgres`` or ``sqlite``)."""

    kind: str
    sql: str


_ROLLUP_GROUP = (
    "day TEXT NOT NULL, month TEXT NOT NULL, team_id TEXT, project_id TEXT, key_id TEXT, "
    "customer TEXT, model TEXT, provider TEXT, deployment TEXT, cloud TEXT,"
)
"""Migration 10: a roll-up's group (gateway_app.governance.rollup.GROUP_COLUMNS)."""

MIGRATIONS: tuple[tuple[int, str, tuple[str | Dialect, ...]], ...] = (
    (
        1,
        "virtual keys, limits, audit events",
        (
            """CREATE TABLE IF NOT EXISTS virtual_keys (
                id TEXT PRIMARY KEY,
                key_hash TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL DEFAULT '',
                team_id TEXT NOT NULL,
                project_id TEXT NOT NULL,
                role TEXT NOT NULL DEFAULT 'member',
                models TEXT,
                expires_at DOUBLE PRECISION,
                metadata TEXT NOT NULL DEFAULT '{}',
                created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION
            )""",
            "CREATE INDEX IF NOT EXISTS virtual_keys_team ON virtual_keys (team_id)",
            """CREATE TABLE IF NOT EXISTS limits (
                scope TEXT NOT NULL,
                scope_id TEXT NOT NULL,
                daily_usd DOUBLE PRECISION,
                monthly_usd DOUBLE PRECISION,
                rpm BIGINT,
                tpm BIGINT,
                team_id TEXT,
                PRIMARY KEY (scope, scope_id)
            )""",
            """CREATE TABLE IF NOT EXISTS audit_events (
                event_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                day TEXT NOT NULL,
                month TEXT NOT NULL,
                request_id TEXT,
                key_id TEXT,
                team_id TEXT,
                project_id TEXT,
                customer TEXT,
                model TEXT,
                deployment TEXT,
                provider TEXT,
                status INTEGER,
                prompt_tokens BIGINT,
                completion_tokens BIGINT,
                cost_usd DOUBLE PRECISION,
                latency_ms DOUBLE PRECISION,
                cache_outcome TEXT,
                rejection TEXT,
                actor TEXT,
                action TEXT,
                detail TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS audit_events_day ON audit_events (day, team_id)",
        ),
    ),
    (
        2,
        "projects belong to one team (the first to claim them)",
        (
            """CREATE TABLE IF NOT EXISTS projects (
                id TEXT PRIMARY KEY,
                team_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS projects_team ON projects (team_id)",
            # Existing projects go to the team of their oldest key; a project that other
            # teams' keys also named stays that team's (their requests skip its limits).
            """INSERT INTO projects (id, team_id, created_at)
                SELECT k.project_id, k.team_id, k.created_at FROM virtual_keys k
                WHERE k.created_at = (
                    SELECT MIN(o.created_at) FROM virtual_keys o WHERE o.project_id = k.project_id
                )
                ON CONFLICT (id) DO NOTHING""",
            """INSERT INTO projects (id, team_id, created_at)
                SELECT scope_id, team_id, 0 FROM limits
                WHERE scope = 'project' AND team_id IS NOT NULL
                ON CONFLICT (id) DO NOTHING""",
        ),
    ),
    (
        3,
        "audit events say where their token counts come from",
        ("ALTER TABLE audit_events ADD COLUMN usage_source TEXT",),
    ),
    (
        4,
        "the change feed of keys, limits and projects (the global governance plane)",
        (
            # Every write of control data appends its row image here in the same
            # transaction; seq is allocated under a lock, so commit order = seq order.
            """CREATE TABLE IF NOT EXISTS governance_changes (
                seq BIGINT PRIMARY KEY,
                epoch INTEGER NOT NULL,
                committed_at DOUBLE PRECISION NOT NULL,
                kind TEXT NOT NULL,
                entity_id TEXT NOT NULL,
                op TEXT NOT NULL,
                body TEXT
            )""",
            # A follower's position in the home's feed, advanced with each applied batch.
            """CREATE TABLE IF NOT EXISTS governance_cursor (
                feed TEXT PRIMARY KEY,
                epoch INTEGER NOT NULL,
                applied_seq BIGINT NOT NULL,
                applied_at DOUBLE PRECISION NOT NULL
            )""",
            # What existed before the feed: one change per row, so a follower starting
            # from 0 receives every key, limit and project.
            """INSERT INTO governance_changes (seq, epoch, committed_at, kind, entity_id, op, body)
                SELECT ROW_NUMBER() OVER (ORDER BY created_at, id), 1, created_at, 'key', id,
                       'upsert', NULL
                FROM virtual_keys""",
            """INSERT INTO governance_changes (seq, epoch, committed_at, kind, entity_id, op, body)
                SELECT (SELECT COUNT(*) FROM virtual_keys)
                       + ROW_NUMBER() OVER (ORDER BY created_at, id), 1, created_at,
                       'project', id, 'upsert', NULL
                FROM projects""",
            """INSERT INTO governance_changes (seq, epoch, committed_at, kind, entity_id, op, body)
                SELECT (SELECT COUNT(*) FROM virtual_keys) + (SELECT COUNT(*) FROM projects)
                       + ROW_NUMBER() OVER (ORDER BY scope, scope_id), 1, 0,
                       'limit', scope || '/' || scope_id, 'upsert', NULL
                FROM limits""",
        ),
    ),
    (
        5,
        "the escrow ledger of budgets (the global governance plane's home)",
        (
            # Per budget (scope|period|period id) and cloud: what the home has granted the
            # cloud (cumulative) and what the cloud last reported spent (spend plus open
            # reservations). Invariant: the sum of granted over clouds <= the limit.
            """CREATE TABLE IF NOT EXISTS budget_ledger (
                budget TEXT NOT NULL,
                cloud TEXT NOT NULL,
                limit_nusd BIGINT NOT NULL,
                granted_nusd BIGINT NOT NULL,
                spent_nusd BIGINT NOT NULL,
                reported_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (budget, cloud)
            )""",
        ),
    ),
    (
        6,
        "audit events say which cloud served them and when they were shipped to the home",
        (
            "ALTER TABLE audit_events ADD COLUMN cloud TEXT",
            # Set in a follower once the home has stored the event; at the home, when it
            # received the event from its cloud.
            "ALTER TABLE audit_events ADD COLUMN shipped_at DOUBLE PRECISION",
            "CREATE INDEX IF NOT EXISTS audit_events_unshipped ON audit_events (ts) "
            "WHERE shipped_at IS NULL",
            # At the home: per cloud, the time before which all its events are here.
            """CREATE TABLE IF NOT EXISTS audit_shipping (
                cloud TEXT PRIMARY KEY,
                complete_through DOUBLE PRECISION NOT NULL,
                reported_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    (
        7,
        "budget lease returns and overdrafts; rate limits' shares per cloud (global plane)",
        (
            # Cumulative, like granted: what the cloud gave back, and what it overdrew
            # while cut off (partition_overdraft_leases). It holds granted - returned +
            # overdraft; invariant (no overdraft): the sum over clouds <= the limit.
            "ALTER TABLE budget_ledger ADD COLUMN returned_nusd BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE budget_ledger ADD COLUMN overdraft_nusd BIGINT NOT NULL DEFAULT 0",
            # Per rate limit (scope|kind) and cloud, in parts per million of the limit:
            # the share last granted (gen counts the changes), and what the ledger counts
            # as held: at least the granted share, and the old share while a lowering is
            # not yet acknowledged or still in the cloud's window. Invariant: the sum of
            # held over clouds <= one million.
            """CREATE TABLE IF NOT EXISTS rate_shares (
                rate TEXT NOT NULL,
                cloud TEXT NOT NULL,
                granted_ppm BIGINT NOT NULL,
                held_ppm BIGINT NOT NULL,
                gen BIGINT NOT NULL,
                demand DOUBLE PRECISION NOT NULL,
                reported_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (rate, cloud)
            )""",
        ),
    ),
    (
        8,
        "the budget ledger after a home promotion: rows per epoch, holdings adopted",
        (
            # The epoch of the home that wrote the row: a row of an earlier tenure as home
            # is stale (re-adopted from the cloud's report). adopted_nusd: what the cloud
            # held (granted - returned + overdraft) when this home adopted its report.
            "ALTER TABLE budget_ledger ADD COLUMN epoch BIGINT NOT NULL DEFAULT 1",
            "ALTER TABLE budget_ledger ADD COLUMN adopted_nusd BIGINT NOT NULL DEFAULT 0",
            # When this database's ledger first served as home at each epoch (promotion).
            """CREATE TABLE IF NOT EXISTS ledger_epochs (
                epoch BIGINT PRIMARY KEY,
                since DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    (
        9,
        "audit events partitioned by day (PostgreSQL): retention drops whole days",
        (
            # PostgreSQL: the table becomes range-partitioned by day, one partition per day
            # (made ahead by ``audit-maintain``: gateway_app.governance.retention) and a
            # DEFAULT partition for a day that has none yet. The key must hold the
            # partition key: (event_id, day); an event re-delivered has the same day, so
            # it is still stored once. The rows stored so far stay where they are: the old
            # table becomes the partition of every day before the cut-over (the day after
            # the newest row, tomorrow at the earliest); attaching it scans it once and
            # builds its (event_id, day) key index once (its event_id key is dropped).
            # An empty old table is dropped instead.
            Dialect("postgres", "ALTER TABLE audit_events RENAME TO audit_events_legacy"),
            Dialect("postgres", "ALTER INDEX audit_events_pkey RENAME TO audit_events_legacy_pkey"),
            Dialect("postgres", "ALTER INDEX audit_events_day RENAME TO audit_events_legacy_day"),
            Dialect(
                "postgres",
                "ALTER INDEX audit_events_unshipped RENAME TO audit_events_legacy_unshipped",
            ),
            Dialect(
                "postgres",
                """CREATE TABLE audit_events (
                    LIKE audit_events_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                    PRIMARY KEY (event_id, day)
                ) PARTITION BY RANGE (day)""",
            ),
            Dialect("postgres", "CREATE INDEX audit_events_day ON audit_events (day, team_id)"),
            Dialect(
                "postgres",
                "CREATE INDEX audit_events_unshipped ON audit_events (ts) WHERE shipped_at IS NULL",
            ),
            Dialect(
                "postgres", "CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT"
            ),
            Dialect(
                "postgres",
                """DO $migration$
                DECLARE
                    newest TEXT := (SELECT MAX(day) FROM audit_events_legacy);
                    cutover DATE := (now() AT TIME ZONE 'UTC')::date + 1;
                BEGIN
                    IF newest IS NULL THEN
                        DROP TABLE audit_events_legacy;
                    ELSE
                        cutover := GREATEST(cutover, newest::date + 1);
                        -- Its key becomes the partitioned table's (event_id, day).
                        ALTER TABLE audit_events_legacy DROP CONSTRAINT audit_events_legacy_pkey;
                        ALTER TABLE audit_events_legacy ALTER COLUMN event_id SET NOT NULL;
                        EXECUTE format(
                            'ALTER TABLE audit_events ATTACH PARTITION audit_events_legacy '
                            'FOR VALUES FROM (MINVALUE) TO (%L)',
                            to_char(cutover, 'YYYY-MM-DD')
                        );
                    END IF;
                END
                $migration$""",
            ),
            # SQLite keeps its plain table (retention is a DELETE there); the key that
            # ON CONFLICT names must be a unique index of its own.
            Dialect(
                "sqlite",
                "CREATE UNIQUE INDEX IF NOT EXISTS audit_events_key ON audit_events (event_id, day)",
            ),
        ),
    ),
    (
        10,
        "roll-ups of the audit log per closed day, and the late events of rolled-up days",
        (
            # gateway_app.governance.rollup: what the analytics read for the days rolled
            # up. Append-only (a day's rows, then its folded late events' rows): readers
            # sum them, so a NULL dimension needs no unique key. Filled by audit-maintain,
            # not here: the first roll-up of years of rows goes a day at a time.
            f"""CREATE TABLE IF NOT EXISTS audit_rollup (
                {_ROLLUP_GROUP}
                requests BIGINT NOT NULL,
                prompt_tokens BIGINT NOT NULL,
                completion_tokens BIGINT NOT NULL,
                cost_usd DOUBLE PRECISION NOT NULL,
                last_ts DOUBLE PRECISION
            )""",
            "CREATE INDEX IF NOT EXISTS audit_rollup_day ON audit_rollup (day, team_id)",
            # Per group and latency bucket (rollup.GAMMA): requests and errors (5xx).
            f"""CREATE TABLE IF NOT EXISTS audit_rollup_latency (
                {_ROLLUP_GROUP}
                bucket INTEGER NOT NULL,
                requests BIGINT NOT NULL,
                errors BIGINT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS audit_rollup_latency_day "
            "ON audit_rollup_latency (day, team_id)",
            # The same without key and customer (a group holds every key and customer of
            # its route): what a latency answer not by key or customer reads, far smaller.
            f"""CREATE TABLE IF NOT EXISTS audit_rollup_latency_coarse (
                {_ROLLUP_GROUP.replace("key_id TEXT, customer TEXT, ", "")}
                bucket INTEGER NOT NULL,
                requests BIGINT NOT NULL,
                errors BIGINT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS audit_rollup_latency_coarse_day "
            "ON audit_rollup_latency_coarse (day, team_id)",
            # Request events stored after their day was rolled up (copied by a trigger in
            # the inserting transaction), until audit-maintain folds them in.
            """CREATE TABLE IF NOT EXISTS audit_rollup_late (
                event_id TEXT NOT NULL,
                day TEXT NOT NULL,
                month TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                team_id TEXT,
                project_id TEXT,
                key_id TEXT,
                customer TEXT,
                model TEXT,
                provider TEXT,
                deployment TEXT,
                cloud TEXT,
                status INTEGER,
                prompt_tokens BIGINT,
                completion_tokens BIGINT,
                cost_usd DOUBLE PRECISION,
                latency_ms DOUBLE PRECISION,
                PRIMARY KEY (event_id, day)
            )""",
            # The watermark: every day up to `through` is rolled up.
            """CREATE TABLE IF NOT EXISTS audit_rollup_state (
                name TEXT PRIMARY KEY,
                through TEXT NOT NULL,
                rolled_at DOUBLE PRECISION NOT NULL
            )""",
            # The trigger function; audit-maintain puts its trigger on the partitions of
            # the days rolled up only (SQLite: a trigger on the table, made the same way).
            Dialect(
                "postgres",
                """CREATE OR REPLACE FUNCTION audit_rollup_record_late() RETURNS trigger
                LANGUAGE plpgsql AS $function$
                BEGIN
                    INSERT INTO audit_rollup_late (
                        event_id, day, month, ts, team_id, project_id, key_id, customer,
                        model, provider, deployment, cloud, status, prompt_tokens,
                        completion_tokens, cost_usd, latency_ms
                    ) VALUES (
                        NEW.event_id, NEW.day, NEW.month, NEW.ts, NEW.team_id,
                        NEW.project_id, NEW.key_id, NEW.customer, NEW.model, NEW.provider,
                        NEW.deployment, NEW.cloud, NEW.status, NEW.prompt_tokens,
                        NEW.completion_tokens, NEW.cost_usd, NEW.latency_ms
                    );
                    RETURN NULL;
                END
                $function$""",
            ),
        ),
    ),
)
"""(version, description, statements): append new versions; never edit an applied one.
A statement is SQL for both databases, or a :class:`Dialect` for one of them."""

T = TypeVar("T")


class DatabaseError(Exception):
    """The database is unreachable or refused a statement."""


class QueryTimedOut(DatabaseError):
    """A statement of a :class:`Database` with a ``statement_timeout_s`` ran past it and
    was cancelled (the connection stays usable)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"the query ran past its {timeout_s:g} s limit and was cancelled")
        self.timeout_s = timeout_s


class RejectedData(DatabaseError):
    """The database refused a value (PostgreSQL's data exceptions, class 22, such as a
    number beyond its column's range; SQLite's integer overflow): retrying the same rows
    cannot succeed."""


def _database_error(kind: str, exc: Exception) -> DatabaseError:
    """``exc`` of a statement as the error callers handle: :class:`RejectedData` for a
    value the database refuses (psycopg's ``DataError``; on SQLite a Python int beyond 64
    bits raises ``OverflowError``), :class:`DatabaseError` for anything else."""
    refused = isinstance(exc, OverflowError) or any(
        c.__name__ == "DataError" for c in type(exc).__mro__
    )
    return (RejectedData if refused else DatabaseError)(f"{kind}: {exc}")


class CopyText:
    """Rows in PostgreSQL's ``COPY ... FROM STDIN`` text format, formatted with psycopg's
    own row formatter (C) and its default adapters, without a connection.

    What it buys: formatting a batch costs a few µs per row under the GIL. Done in the
    database thread, that thread holds the GIL for milliseconds and every request that
    arrives meanwhile waits up to the interpreter's switch interval (5 ms) for it; done
    by the caller in slices on its event loop, the thread only sends the bytes
    (:meth:`Database.append_new`). One instance per batch; share ``adapt`` (the psycopg
    ``Transformer``, which caches a dumper per type) between batches.
    """

    encoding = "utf-8"  # what the default adapters encode to (a non-UTF8 server: rows)

    def __init__(self, adapt: Any = None) -> None:
        from psycopg import adapt as psycopg_adapt
        from psycopg._copy_base import format_row_text

        self.adapt = adapt if adapt is not None else psycopg_adapt.Transformer()
        self._format = format_row_text
        self.data = bytearray()

    def add(self, row: Sequence[Any]) -> None:
        """Append one row (values in the ``COPY`` statement's column order)."""
        self._format(row, self.adapt, self.data)

    @classmethod
    def create(cls, adapt: Any = None) -> CopyText | None:
        """A new instance, or None when this psycopg has no row formatter where this
        class looks for it (``psycopg._copy_base`` is not public API: uv.lock pins the
        version, but a different install must not stop the audit drain). Without it the
        database thread formats the rows, as :meth:`Database.append_new` does then."""
        try:
            return cls(adapt)
        except ImportError as exc:
            global _COPY_TEXT_WARNED
            if not _COPY_TEXT_WARNED:
                _COPY_TEXT_WARNED = True
                log.warning(
                    "psycopg's COPY row formatter not found (%s): rows formatted "
                    "in the database thread",
                    exc,
                )
            return None


_COPY_TEXT_WARNED = False


class ConnectionName(StrEnum):
    """The PostgreSQL ``application_name`` of each connection the gateway opens, by what
    holds it: ``pg_stat_activity`` shows who holds which of the server's connection slots
    (docs/operations/sizing.md, "PostgreSQL connections"). Sent as libpq's
    ``fallback_application_name``, so an ``application_name`` in the URL (or
    ``PGAPPNAME``) wins."""

    GATEWAY = "aigw-gateway"
    """A gateway process's own: key lookups, the change feed, leases, the global plane's
    ledger and receiving side, the roll-up lag gauge."""
    AUDIT_DRAIN = "aigw-audit-drain"
    """A gateway process's audit drain on PostgreSQL: its ``COPY`` of each batch, on the
    event loop (:class:`AsyncAppender`), away from the key lookups' connection."""
    ADMIN_REPORTS = "aigw-admin-reports"
    """The admin API's analytics and audit search (:meth:`Database.for_reports`)."""
    AUDIT_SHIPPER = "aigw-audit-shipper"
    """A follower cloud's audit shipper's marks (the replica holding the shipper lease)."""
    MIGRATE = "aigw-migrate"
    """``python -m gateway_app migrate`` (the migration Job)."""
    AUDIT_MAINTAIN = "aigw-audit-maintain"
    """``python -m gateway_app audit-maintain`` (the CronJob)."""


class Database:
    """One connection to SQLite or PostgreSQL, used from worker threads under a lock.

    ``statement_timeout_s``: every statement run through this instance is cancelled after
    that long (PostgreSQL: ``statement_timeout`` set for each call's own transaction, so
    it holds through a transaction-pooling proxy; SQLite: interrupted by a progress
    handler) and raises :class:`QueryTimedOut`.

    ``name``: the connection's PostgreSQL ``application_name`` (:class:`ConnectionName`;
    None: libpq's default, none)."""

    def __init__(
        self,
        url: str,
        *,
        ca_file: str | None = None,
        statement_timeout_s: float | None = None,
        name: ConnectionName | None = None,
    ) -> None:
        self.url = url
        self.ca_file = ca_file
        self.name = name
        self.kind = "postgres" if url.startswith(("postgres://", "postgresql://")) else "sqlite"
        self.statement_timeout_s = statement_timeout_s
        self._lock = threading.Lock()
        self._conn: Any = None

    def for_reports(self, timeout_s: float) -> Database:
        """Another connection to the same database, each statement cancelled after
        ``timeout_s``: for long read-only queries (the admin API's analytics and audit
        search), so they wait for no other work of the replica and none waits for them
        (this instance's lock serializes its connection: a query of minutes there would
        hold up key lookups and the change feed). An in-memory SQLite
        database cannot be opened twice: it is this instance."""
        if self.kind == "sqlite" and ":memory:" in self.url:
            return self
        return self.another(ConnectionName.ADMIN_REPORTS, statement_timeout_s=timeout_s)

    def another(
        self, name: ConnectionName, *, statement_timeout_s: float | None = None
    ) -> Database:
        """Another connection to the same database, named ``name``. Each is one more of
        the PostgreSQL connections the plan budgets per process
        (``CONNECTIONS_PER_PROCESS`` in infra/decisions/postgres.py, the table in
        docs/operations/sizing.md, "PostgreSQL connections"): a new use must be counted
        there, or the tests that hold the gateway to the budget fail."""
        return Database(
            self.url, ca_file=self.ca_file, statement_timeout_s=statement_timeout_s, name=name
        )

    @classmethod
    def from_environment(cls, env: Environment, default_sqlite: str | os.PathLike[str]) -> Database:
        """``AIGW_DATABASE_URL`` (+ ``AIGW_DATABASE_CA_FILE``), else SQLite at
        ``default_sqlite``: a gateway process's own connection (:attr:`ConnectionName.GATEWAY`)."""
        url = env.database_url or f"sqlite:///{default_sqlite}"
        return cls(url, ca_file=env.database_ca_file, name=ConnectionName.GATEWAY)

    def _connect(self) -> Any:
        if self.kind == "sqlite":
            path = self.url.removeprefix("sqlite:///").removeprefix("sqlite://")
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=5000")
            return conn
        import psycopg

        return psycopg.connect(
            postgres_dsn(self.url, self.ca_file, self.name), autocommit=True, connect_timeout=5
        )

    def _sql(self, sql: str) -> str:
        return sql if self.kind == "sqlite" else sql.replace("?", "%s")

    def _run(self, work: Any) -> Any:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                if self.statement_timeout_s is None:
                    return work(self._conn)
                return self._bounded(work, self.statement_timeout_s)
            except QueryTimedOut:
                raise  # cancelled by its own limit: the connection is fine
            except Exception as exc:
                if self.kind == "postgres":
                    self._drop()
                raise _database_error(self.kind, exc) from exc

    def _bounded(self, work: Any, timeout_s: float) -> Any:
        """``work(conn)`` cancelled after ``timeout_s`` (:class:`QueryTimedOut`)."""
        conn = self._conn
        if self.kind == "sqlite":
            deadline = time.monotonic() + timeout_s
            # Called every 10,000 virtual machine instructions (~1 ms); non-zero interrupts.
            conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
            try:
                return work(conn)
            except sqlite3.OperationalError as exc:
                if str(exc) == "interrupted":
                    raise QueryTimedOut(timeout_s) from exc
                raise
            finally:
                conn.set_progress_handler(None, 10_000)
        from psycopg import errors

        try:
            with conn.transaction():
                # SET LOCAL: for this transaction only (a pooled session is never left
                # with it); it counts lock waits too.
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, true)",
                    (f"{max(1, round(timeout_s * 1000))}ms",),
                )
                return work(conn)
        except errors.QueryCanceled as exc:
            raise QueryTimedOut(timeout_s) from exc

    def _drop(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        except Exception:
            pass
        self._conn = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""

        def work(conn: Any) -> int:
            cursor = conn.execute(self._sql(sql), tuple(params))
            return cursor.rowcount

        return self._run(work)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run one statement per row, in one transaction; the number of rows it changed."""
        if not rows:
            return 0

        def work(conn: Any) -> int:
            if self.kind == "sqlite":
                conn.execute("BEGIN")
                try:
                    cursor = conn.executemany(self._sql(sql), [tuple(r) for r in rows])
                    conn.execute("COMMIT")
                except Exception:
                    conn.execute("ROLLBACK")
                    raise
                return int(cursor.rowcount)
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(self._sql(sql), [tuple(r) for r in rows])
                return int(cursor.rowcount)

        return int(self._run(work))

    def append_new(
        self,
        table: str,
        columns: Sequence[str],
        key: str,
        rows: Sequence[Sequence[Any]],
        copy_text: CopyText | None = None,
    ) -> int:
        """Store ``rows`` (values in ``columns`` order) in one transaction, skipping a row
        whose ``key`` column value is stored already; how many were stored.

        PostgreSQL: one ``COPY`` (a few client µs per row; ``executemany`` of an insert
        costs the client ~5x that: ``bench/audit_drain.py``). COPY has no ``ON CONFLICT``:
        a row stored before (a re-delivered batch) fails the whole COPY, which rolls back,
        and the batch is then inserted row by row with ``ON CONFLICT (key) DO NOTHING``.
        So a batch is stored exactly once either way, with no session state (a staging
        table would not survive a transaction-pooling proxy). SQLite: that insert.

        ``copy_text``: the same ``rows`` already in ``COPY`` text form (:class:`CopyText`,
        formatted by the caller, e.g. on its event loop in slices): the ``COPY`` then sends
        it as it is, and this thread does little but I/O (which releases the GIL).
        :meth:`Transaction.append_new` does the same inside a larger transaction.
        """
        if not rows:
            return 0
        if self.kind == "sqlite":
            return self.executemany(_insert_new_sql(table, columns, key), rows)
        return int(self._run(lambda conn: _copy_new(conn, table, columns, key, rows, copy_text)))

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts."""

        def work(conn: Any) -> list[dict[str, Any]]:
            cursor = conn.execute(self._sql(sql), tuple(params))
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return self._run(work)

    def transaction(self, work: Callable[[Transaction], T]) -> T:
        """Run ``work`` in one transaction (committed when it returns, rolled back if it
        raises) and return what it returns. SQLite takes its write lock at the start
        (``BEGIN IMMEDIATE``), so transactions that read then write do not interleave."""

        def run(conn: Any) -> T:
            if self.kind == "sqlite":
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(Transaction(self, conn))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return result
            with conn.transaction():
                return work(Transaction(self, conn))

        return self._run(run)

    def migrate(self) -> list[int]:
        """Apply pending migrations; the versions applied now."""

        def work(conn: Any) -> list[int]:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, description TEXT, applied_at DOUBLE PRECISION)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            applied = []
            for version, description, all_statements in MIGRATIONS:
                if version in done:
                    continue
                statements = [
                    s if isinstance(s, str) else s.sql
                    for s in all_statements
                    if isinstance(s, str) or s.kind == self.kind
                ]
                if self.kind == "sqlite":
                    conn.execute("BEGIN")
                    try:
                        for statement in statements:
                            conn.execute(statement)
                        conn.execute(
                            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                            (version, description, time.time()),
                        )
                        conn.execute("COMMIT")
                    except Exception:
                        conn.execute("ROLLBACK")
                        raise
                else:
                    with conn.transaction():
                        # Two replicas migrating at once: the second waits, then sees it done.
                        conn.execute("SELECT pg_advisory_xact_lock(715100)")
                        if conn.execute(
                            "SELECT 1 FROM schema_migrations WHERE version = %s", (version,)
                        ).fetchone():
                            continue
                        for statement in statements:
                            conn.execute(statement)
                        conn.execute(
                            "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                            (version, description, time.time()),
                        )
                applied.append(version)
            return applied

        return self._run(work)

    def ensure_app_role(self, app_url: str) -> str:
        """Create or update the login role of ``app_url`` with data access only; what was done.

        Run as the schema owner (the managed server's admin). The role may read and
        write rows of the gateway's tables and nothing else: no DDL, no other
        database, no role management, and no writes to ``schema_migrations``. Its
        password is sent as a SCRAM-SHA-256 verifier computed here (libpq's
        ``PQencryptPasswordConn``), so the server's statement and audit logs
        (``log_statement=ddl``, pgAudit) never see the password itself. Run again
        with a new password, it rotates it. Returns ``created``, ``updated`` or
        ``unchanged`` (the role is the owner itself: nothing to do).
        """
        if self.kind != "postgres":
            raise DatabaseError("an app role exists only on PostgreSQL")
        user, password = app_credentials(app_url)

        def work(conn: Any) -> str:
            from psycopg import sql

            if user == conn.info.user:
                return "unchanged"
            verifier = conn.pgconn.encrypt_password(
                password.encode(), user.encode(), b"scram-sha-256"
            ).decode()
            role = sql.Identifier(user)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(715101)")
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
                verb = "updated" if exists.fetchone() else "created"
                statement = "ALTER ROLE {} WITH" if verb == "updated" else "CREATE ROLE {} WITH"
                conn.execute(
                    sql.SQL(
                        statement + " LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE "
                        "NOREPLICATION NOBYPASSRLS"
                    ).format(role, sql.Literal(verifier))
                )
                database = sql.Identifier(conn.info.dbname)
                for grant in (
                    "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}",
                    "GRANT USAGE ON SCHEMA public TO {role}",
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
                    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
                    "REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM {role}",
                    # Tables a later migration adds are readable and writable too.
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
                ):
                    conn.execute(sql.SQL(grant).format(db=database, role=role))
            return verb

        return self._run(work)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._drop()


class AsyncAppender:
    """The audit drain's own PostgreSQL connection: psycopg's asyncio connection, so each
    batch's ``COPY`` (:meth:`Database.append_new`) runs on the event loop instead of in a
    worker thread.

    The drain thread took the GIL back from the loop at each step of a ``COPY`` while
    requests were served: its hand-offs cost every governed request CPU and put the
    slowest requests behind a batch (``bench/partial-async-drain.md``). Its writes also
    queued the key lookups that shared the process's ``aigw-gateway`` connection behind
    them. Named :attr:`ConnectionName.AUDIT_DRAIN`; opened at the first append and again
    after a failure (then closed, as :meth:`Database._run` drops its connection); one
    append at a time."""

    def __init__(
        self,
        url: str,
        ca_file: str | None = None,
        name: ConnectionName = ConnectionName.AUDIT_DRAIN,
    ) -> None:
        self.url = url
        self.ca_file = ca_file
        self.name = name
        self._conn: Any = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # of the lock and connection

    @classmethod
    def of(cls, db: Database) -> AsyncAppender:
        """An appender to ``db``'s PostgreSQL database (its URL and CA file)."""
        return cls(db.url, db.ca_file)

    async def append_new(
        self,
        table: str,
        columns: Sequence[str],
        key: str,
        rows: Sequence[Sequence[Any]],
        copy_text: CopyText | None = None,
    ) -> int:
        """:meth:`Database.append_new` on the event loop: one ``COPY`` (all its rows or
        none), row by row with ``ON CONFLICT DO NOTHING`` when some are stored already;
        how many were stored. :class:`RejectedData` for a value the database refuses,
        :class:`DatabaseError` for anything else (the connection is then closed)."""
        if not rows:
            return 0
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            # The first append, or one on another loop than the last (a test's, or a
            # process that started again): a lock and a connection of this loop's.
            await self.close()
            self._lock, self._loop = asyncio.Lock(), loop
        async with self._lock:
            done = False
            try:
                if self._conn is None:
                    import psycopg

                    self._conn = await psycopg.AsyncConnection.connect(
                        postgres_dsn(self.url, self.ca_file, self.name),
                        autocommit=True,
                        connect_timeout=5,
                    )
                stored = await _copy_new_async(self._conn, table, columns, key, rows, copy_text)
                done = True
                return stored
            except Exception as exc:
                raise _database_error("postgres", exc) from exc
            finally:
                if not done:
                    # Failed or cancelled (the drainer stopping) mid-COPY: a connection
                    # in an unknown state is not used again.
                    await self.close()

    async def close(self) -> None:
        """Close the connection (a later append opens another)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class Transaction:
    """Statements inside :meth:`Database.transaction` (the same SQL subset as the database)."""

    def __init__(self, db: Database, conn: Any) -> None:
        self.kind = db.kind
        self._sql = db._sql
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return self._conn.execute(self._sql(sql), tuple(params)).rowcount

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts."""
        cursor = self._conn.execute(self._sql(sql), tuple(params))
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def lock(self, name: int) -> None:
        """Serialise with every other transaction taking the same lock (PostgreSQL: an
        advisory transaction lock; SQLite's ``BEGIN IMMEDIATE`` already serialises)."""
        if self.kind == "postgres":
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (name,))

    def append_new(
        self,
        table: str,
        columns: Sequence[str],
        key: str,
        rows: Sequence[Sequence[Any]],
        copy_text: CopyText | None = None,
    ) -> int:
        """:meth:`Database.append_new` in this transaction (PostgreSQL: the ``COPY`` runs
        in a savepoint, so a duplicate rolls back only the ``COPY`` before the row-by-row
        insert, not the statements before it); how many rows were stored."""
        if not rows:
            return 0
        if self.kind == "sqlite":
            insert = _insert_new_sql(table, columns, key)
            cursor = self._conn.executemany(insert, [tuple(r) for r in rows])
            return int(cursor.rowcount)
        return _copy_new(self._conn, table, columns, key, rows, copy_text)


def _insert_new_sql(table: str, columns: Sequence[str], key: str) -> str:
    """An insert of one row that skips it when its ``key`` is stored (``?`` placeholders)."""
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({key}) DO NOTHING"
    )


def _copy_new(
    conn: Any,
    table: str,
    columns: Sequence[str],
    key: str,
    rows: Sequence[Sequence[Any]],
    copy_text: CopyText | None,
) -> int:
    """PostgreSQL's :meth:`Database.append_new` on ``conn``: the ``COPY`` alone on an
    autocommit connection outside a transaction (one statement is one transaction: all its
    rows or none), or in a savepoint when ``conn`` is in a transaction already (psycopg
    nests ``conn.transaction()``).

    The ``COPY`` alone is two round trips to the server where ``BEGIN``, ``COPY`` and
    ``COMMIT`` are four: about 100 µs of the gateway's CPU less per audit batch
    (``bench/partial-audit-round-trips.md``)."""
    from psycopg import errors, pq

    statement = _copy_statement(table, tuple(columns), conn.info.encoding)
    standalone = conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE
    try:
        with (
            contextlib.nullcontext() if standalone else conn.transaction(),
            conn.cursor() as cursor,
            cursor.copy(statement) as copy,
        ):
            if copy_text is not None and conn.info.encoding == copy_text.encoding:
                copy.write(copy_text.data)
            else:
                for row in rows:
                    copy.write_row(row)
        return len(rows)
    except errors.UniqueViolation:
        pass  # some are stored already (re-delivered): insert those that are not
    insert = _insert_new_sql(table, columns, key).replace("?", "%s")
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(insert, [tuple(r) for r in rows])
        return int(cursor.rowcount)


async def _copy_new_async(
    conn: Any,
    table: str,
    columns: Sequence[str],
    key: str,
    rows: Sequence[Sequence[Any]],
    copy_text: CopyText | None,
) -> int:
    """:func:`_copy_new` on an asyncio connection of its own (autocommit, never in a
    transaction: the ``COPY`` is its own)."""
    from psycopg import errors

    encoding = conn.info.encoding
    statement = _copy_statement(table, tuple(columns), encoding)
    try:
        if copy_text is not None and encoding == copy_text.encoding:
            await _copy_data_async(conn.pgconn, statement, copy_text.data, encoding)
        else:
            async with conn.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    await copy.write_row(row)
        return len(rows)
    except errors.UniqueViolation:
        pass  # some are stored already (re-delivered): insert those that are not
    insert = _insert_new_sql(table, columns, key).replace("?", "%s")
    async with conn.transaction(), conn.cursor() as cursor:
        await cursor.executemany(insert, [tuple(r) for r in rows])
        return int(cursor.rowcount)


async def _copy_data_async(
    pgconn: Any, statement: bytes, data: bytes | bytearray, encoding: str
) -> None:
    """``statement`` (a ``COPY ... FROM STDIN``) with ``data`` (its rows in ``COPY``
    text form), on the libpq connection of an asyncio psycopg connection that nothing
    else uses meanwhile (the audit drain's own, autocommit, idle).

    libpq's own calls, as psycopg's asyncio ``COPY`` makes them, without its cursor,
    ``Copy`` object, generators and waits around each: the audit drain writes ~50
    batches a second under load and psycopg's layers were a third of each write's CPU
    or more (~336 -> ~236 µs for 100 rows, ~524 -> ~312 for 250:
    ``bench/partial-lean-copy.md``). Two round trips, as
    before: the ``COPY`` statement, then the rows and their end. A statement the server
    refuses raises psycopg's error class for its SQLSTATE (``UniqueViolation``: a row
    stored before), once the connection is idle again; a broken connection raises
    psycopg's ``OperationalError``."""
    from psycopg import errors, pq

    loop = asyncio.get_running_loop()
    if not pgconn.nonblocking:
        pgconn.nonblocking = 1
    fd = pgconn.socket
    pgconn.send_query(statement)
    await _pq_flush(pgconn, loop, fd)
    result = await _pq_result(pgconn, loop, fd)
    if result is not None and result.status == pq.ExecStatus.COPY_IN:
        # (put_copy_data and put_copy_end queue in libpq's buffer, growing it: 0, "not
        # queued", only when it cannot grow; -1 raises.)
        while not pgconn.put_copy_data(data):
            await _pq_ready(loop, fd, write=True)
            pgconn.flush()
        while not pgconn.put_copy_end(None):
            await _pq_ready(loop, fd, write=True)
            pgconn.flush()
        await _pq_flush(pgconn, loop, fd)
        result = await _pq_result(pgconn, loop, fd)
    refused: Exception | None = None
    if result is None or result.status != pq.ExecStatus.COMMAND_OK:
        refused = _pq_error(result, encoding, errors)
    # Every result of the statement read (libpq's None): the connection is idle again.
    while result is not None:
        result = await _pq_result(pgconn, loop, fd)
    if refused is not None:
        raise refused


def _pq_error(result: Any, encoding: str, errors: Any) -> Exception:
    """psycopg's error for a statement's failed ``result`` (its class by SQLSTATE)."""
    from psycopg import pq

    if result is None:
        return errors.OperationalError("the COPY ended without a result")
    message = (result.error_message or b"").decode(encoding, "replace").strip()
    sqlstate = result.error_field(pq.DiagnosticField.SQLSTATE)
    if sqlstate is None:
        return errors.DatabaseError(message or f"COPY answered {result.status!r}")
    try:
        cls = errors.lookup(sqlstate.decode())
    except KeyError:
        cls = errors.DatabaseError
    return cls(message)


def _pq_wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _pq_ready(loop: asyncio.AbstractEventLoop, fd: int, write: bool = False) -> None:
    """Wait until the socket ``fd`` is readable (or writable)."""
    future = loop.create_future()
    if write:
        loop.add_writer(fd, _pq_wake, future)
    else:
        loop.add_reader(fd, _pq_wake, future)
    try:
        await future
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def _pq_flush(pgconn: Any, loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Send what libpq holds (nonblocking: wait while the socket cannot take more)."""
    while pgconn.flush():
        await _pq_ready(loop, fd, write=True)


async def _pq_result(pgconn: Any, loop: asyncio.AbstractEventLoop, fd: int) -> Any:
    """libpq's next result, waiting for the server while it is busy (None: no more)."""
    pgconn.consume_input()
    while pgconn.is_busy():
        await _pq_ready(loop, fd)
        pgconn.consume_input()
    return pgconn.get_result()


@functools.lru_cache(maxsize=64)
def _copy_statement(table: str, columns: tuple[str, ...], encoding: str) -> bytes:
    """``COPY table (columns) FROM STDIN`` with quoted identifiers, as the bytes psycopg
    sends: composed once per table, columns and connection encoding, not per batch."""
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    return statement.as_string().encode(encoding)


def app_credentials(url: str) -> tuple[str, str]:
    """(user, password) of a ``postgresql://`` URL; an error naming what is missing."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise DatabaseError(
            f"AIGW_DATABASE_URL is not a postgresql:// URL (scheme {parts.scheme!r})"
        )
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not user or not password:
        raise DatabaseError(
            "AIGW_DATABASE_URL must carry the gateway role's user and password "
            "(postgresql://USER:PASSWORD@HOST/DB) for migrate to create that role"
        )
    return user, password


def postgres_dsn(url: str, ca_file: str | None, name: ConnectionName | None = None) -> str:
    """The URL with TLS settings: a CA file means ``sslmode=verify-full`` against it.

    Without a CA file and without an explicit ``sslmode``, non-loopback hosts get
    ``sslmode=require`` (every managed PostgreSQL here enforces TLS). ``name`` becomes
    libpq's ``fallback_application_name``: the ``application_name`` the server shows
    unless the URL's own ``application_name`` (or ``PGAPPNAME``) says otherwise.
    """
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if name is not None:
        query.setdefault("fallback_application_name", name.value)
    if ca_file:
        query.setdefault("sslrootcert", ca_file)
        query.setdefault("sslmode", "verify-full")
    elif "sslmode" not in query and parts.hostname not in ("127.0.0.1", "localhost", "::1", None):
        query["sslmode"] = "require"
    return urlunsplit(parts._replace(query=urlencode(query)))
