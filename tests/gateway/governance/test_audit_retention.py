"""Audit retention: PostgreSQL's audit table partitioned by day, the partitions made ahead
and dropped past retention (``audit-maintain``); SQLite's expired days deleted.

The partition facts checked here are PostgreSQL's: a unique key of a partitioned table
must include the partition key, a DEFAULT partition takes rows no other partition takes,
and attaching a table as a partition scans it once
(https://www.postgresql.org/docs/15/ddl-partitioning.html, "Limitations" and
"Partition Maintenance").
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway_app.governance import analytics, audit, retention, storage
from gateway_app.governance.storage import MIGRATIONS, Database

TODAY = date(2026, 12, 6)


def on_day(day: date, count: int, team: str = "t") -> list[dict[str, Any]]:
    """``count`` request events of ``day`` (noon UTC onwards), as the gateway writes them."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()
    return [
        {
            **audit.event(
                "request", team_id=team, model="m", cost_usd=0.5, prompt_tokens=i, latency_ms=i
            ),
            "ts": noon + i,
            "day": day.isoformat(),
            "month": f"{day:%Y-%m}",
        }
        for i in range(count)
    ]


def days_stored(db: Database) -> dict[str, int]:
    rows = db.fetch("SELECT day, COUNT(*) AS n FROM audit_events GROUP BY day ORDER BY day")
    return {row["day"]: int(row["n"]) for row in rows}


def partition_map(db: Database) -> dict[str, retention.Partition]:
    return {p.name: p for p in db.transaction(retention.partitions)}


@pytest.fixture
def pg_url(postgres_server: Any) -> str:
    """A new, empty database on the session's PostgreSQL server."""
    return str(postgres_server.new_database("r"))


@pytest.fixture
def pg(pg_url: str) -> Iterator[Database]:
    db = Database(pg_url)
    db.migrate()
    yield db
    db.close()


def test_an_existing_table_is_partitioned_and_keeps_every_row(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at migration 8 with rows: migration 9 keeps them all, answers the same
    queries the same, stores a re-delivered batch once, and its old table (now the
    partition of every day before the cut-over) goes only once all its days expire."""
    db = Database(pg_url)
    # (With the roll-up tables of migration 10, which the analytics read.)
    monkeypatch.setattr(storage, "MIGRATIONS", MIGRATIONS[:8] + MIGRATIONS[9:])
    db.migrate()
    today = retention.utc_today()
    old = on_day(today - timedelta(days=40), 3, "a") + on_day(today, 4, "b")
    audit.insert_events(db, old)
    queries = (
        lambda: analytics.usage(db, "team"),
        lambda: analytics.latency(db, "team"),
        lambda: analytics.audit_events(db, {"limit": "1000"}),
        lambda: audit.unshipped(db, 100),
    )
    before = [query() for query in queries]
    monkeypatch.setattr(storage, "MIGRATIONS", MIGRATIONS)
    assert db.migrate() == [9]
    assert [query() for query in queries] == before
    assert days_stored(db) == {(today - timedelta(days=40)).isoformat(): 3, today.isoformat(): 4}
    key = db.fetch(
        "SELECT pg_get_constraintdef(oid) AS key FROM pg_constraint "
        "WHERE conrelid = 'audit_events'::regclass AND contype = 'p'"
    )
    assert key == [{"key": "PRIMARY KEY (event_id, day)"}]
    cutover = (today + timedelta(days=1)).isoformat()
    parts = partition_map(db)
    assert parts["audit_events_legacy"] == retention.Partition("audit_events_legacy", None, cutover)
    assert parts["audit_events_default"].default

    # Exactly once: the whole batch again (COPY fails, row-by-row ON CONFLICT), and again
    # with new events of today and tomorrow in it.
    tomorrow = on_day(today + timedelta(days=1), 2, "b")
    audit.insert_events(db, old)
    audit.insert_events(db, old + tomorrow)
    audit.insert_events(db, tomorrow)
    assert sum(days_stored(db).values()) == len(old) + len(tomorrow)
    assert db.fetch("SELECT COUNT(*) AS n FROM audit_events_default") == [{"n": 2}]

    # The maintenance moves tomorrow's rows out of the DEFAULT partition into their own.
    done = retention.maintain(db, 60, ahead_days=2, today=today)
    assert done.failed == [] and done.moved == 2
    assert done.created == [
        retention.partition_name(today + timedelta(days=n)) for n in (1, 2)
    ]  # today's days are the old table's until the cut-over
    assert db.fetch("SELECT COUNT(*) AS n FROM audit_events_default") == [{"n": 0}]
    # The old table holds a day 40 days back and today: kept while today is kept.
    last_kept = date.fromisoformat(cutover) + timedelta(days=59)
    assert retention.maintain(db, 60, ahead_days=0, today=last_kept).dropped == []
    done = retention.maintain(db, 60, ahead_days=0, today=last_kept + timedelta(days=1))
    assert done.dropped == ["audit_events_legacy"]
    assert days_stored(db) == {(today + timedelta(days=1)).isoformat(): 2}
    db.close()


def test_retention_drops_exactly_the_expired_days(pg: Database) -> None:
    """Retention 3 days on TODAY keeps TODAY-3 (the cut-off day) and drops TODAY-4:
    an off-by-one either way fails. Rows that landed in the DEFAULT partition (no
    partition yet) get their day's partition, or are deleted if already expired."""
    per_day = {TODAY - timedelta(days=n): n + 1 for n in range(6)}  # TODAY-5 .. TODAY
    audit.insert_events(pg, [e for day, n in per_day.items() for e in on_day(day, n)])
    done = retention.maintain(pg, 3, ahead_days=2, today=TODAY)
    kept = {day.isoformat(): n for day, n in per_day.items() if day >= TODAY - timedelta(days=3)}
    assert done.failed == [] and done.dropped == []
    assert done.moved == sum(kept.values()) and done.deleted == 5 + 6  # TODAY-4, TODAY-5
    assert days_stored(pg) == kept
    expected = {retention.partition_name(TODAY + timedelta(days=n)) for n in range(-3, 3)}
    assert set(done.created) == expected
    assert set(partition_map(pg)) == expected | {"audit_events_default"}
    assert pg.fetch("SELECT COUNT(*) AS n FROM audit_events_default") == [{"n": 0}]
    # Each row sits in its own day's partition.
    for day, n in kept.items():
        name = retention.partition_name(date.fromisoformat(day))
        assert pg.fetch(f"SELECT COUNT(*) AS n FROM {name}") == [{"n": n}]

    # A day later: exactly TODAY-3's partition goes; the new last day's is made.
    done = retention.maintain(pg, 3, ahead_days=2, today=TODAY + timedelta(days=1))
    assert done.dropped == [retention.partition_name(TODAY - timedelta(days=3))]
    assert done.created == [retention.partition_name(TODAY + timedelta(days=3))]
    assert days_stored(pg) == {d: n for d, n in kept.items() if d != str(TODAY - timedelta(3))}
    # Idempotent: nothing more to do the same day.
    again = retention.maintain(pg, 3, ahead_days=2, today=TODAY + timedelta(days=1))
    assert (again.created, again.dropped, again.failed) == ([], [], [])
    # No retention: every day stays.
    assert (
        retention.maintain(pg, None, ahead_days=0, today=TODAY + timedelta(days=40)).dropped == []
    )


def test_two_maintainers_at_once_both_succeed(pg_url: str, pg: Database) -> None:
    """Two runs at the same moment (a CronJob and a migrate, two clusters): each change
    is made once, neither run fails."""
    audit.insert_events(pg, on_day(TODAY - timedelta(days=9), 2) + on_day(TODAY, 3))
    # The two days' partitions (TODAY's: its rows were in the DEFAULT partition).
    assert len(retention.maintain(pg, None, ahead_days=0, today=TODAY - timedelta(9)).created) == 2
    results: list[retention.Maintenance] = []
    start = threading.Barrier(2)

    def run() -> None:
        db = Database(pg_url)
        start.wait()
        results.append(retention.maintain(db, 5, ahead_days=7, today=TODAY))
        db.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2 and all(r.failed == [] for r in results)
    created = [name for r in results for name in r.created]
    dropped = [name for r in results for name in r.dropped]
    assert sorted(created) == [retention.partition_name(TODAY + timedelta(n)) for n in range(1, 8)]
    assert dropped == [retention.partition_name(TODAY - timedelta(days=9))]
    assert days_stored(pg) == {TODAY.isoformat(): 3}


def test_sqlite_retention_deletes_exactly_the_expired_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}")
    db.migrate()
    today = retention.utc_today()
    per_day = {today - timedelta(days=n): n + 1 for n in range(5)}
    events = [e for day, n in per_day.items() for e in on_day(day, n)]
    audit.insert_events(db, events)
    audit.insert_events(db, events)  # re-delivered: stored once (ON CONFLICT (event_id, day))
    assert sum(days_stored(db).values()) == len(events)
    monkeypatch.setattr(retention, "SWEEP_CHUNK", 2)  # several chunks
    sweeper = retention.Sweeper(db, 2)
    from tests.gateway.conftest import run_async

    assert run_async(sweeper.sweep()) == 4 + 5  # today-3 and today-4
    assert days_stored(db) == {
        day.isoformat(): n for day, n in per_day.items() if day >= today - timedelta(days=2)
    }
    assert retention.maintain(db, 1, today=today).deleted == 3  # today-2
    assert retention.maintain(db, None, today=today + timedelta(days=99)).deleted == 0
    db.close()


def test_retention_setting_is_validated() -> None:
    from gateway_app.config import ConfigError, parse

    raw = {
        "providers": {"openai": {"type": "openai"}},
        "models": {"m": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}},
        "governance": {"audit_retention_days": 0},
    }
    with pytest.raises(ConfigError, match=r"governance\.audit_retention_days"):
        parse(raw)
    with pytest.raises(ValueError, match="audit_retention_days is 0"):
        retention.cutoff_day(TODAY, 0)
    assert retention.cutoff_day(TODAY, 1) == TODAY - timedelta(days=1)


def test_audit_maintain_command(pg_url: str, tmp_path: Path) -> None:
    """What the CronJob runs: partitions ahead, retention from the config file; a second
    run finds nothing to do; a database never migrated gets a clear error."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "providers: {openai: {type: openai}}\n"
        "models: {m: {deployments: [{provider: openai, model: gpt-4o-mini}]}}\n"
        "governance: {audit_retention_days: 30}\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway_app", *args],
            env={"AIGW_DATABASE_URL": pg_url, "AIGW_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )

    unmigrated = run("audit-maintain")
    assert unmigrated.returncode == 1
    assert "not partitioned by day: run `python -m gateway_app migrate` first" in (
        unmigrated.stderr
    )
    migrated = run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "audit partitions: 15 created, 0 dropped" in migrated.stdout
    assert "(retention: 30 days)" in migrated.stdout
    db = Database(pg_url)
    today = retention.utc_today()
    expected = {retention.partition_name(today + timedelta(days=n)) for n in range(15)}
    assert set(partition_map(db)) == expected | {"audit_events_default"}
    # Yesterday's events (in the DEFAULT partition: no partition was made for it): the
    # run gives them their partition and rolls the day up (migrate left that to it).
    audit.insert_events(db, on_day(today - timedelta(days=1), 3))
    assert "roll-ups" not in migrated.stdout
    db.close()
    again = run("audit-maintain", "--ahead-days", "16")
    assert again.returncode == 0, again.stderr
    assert "audit partitions: 3 created, 0 dropped, 3 rows moved" in again.stdout
    assert "audit roll-ups: 1 days rolled up (3 events), 0 late events folded in" in again.stdout
    config.write_text("governance: {audit_retention_days: -1}\n")
    bad = run("audit-maintain")
    assert bad.returncode == 2 and "governance.audit_retention_days" in bad.stderr


def test_a_follower_keeps_an_expired_day_until_the_home_has_it(pg: Database) -> None:
    """In the global governance plane a follower ships its events to the home: an
    expired day still holding an event not yet shipped is kept (and reported) until the
    event is shipped, then dropped."""
    events = on_day(TODAY - timedelta(days=5), 3)
    audit.insert_events(pg, events)
    retention.maintain(pg, None, ahead_days=0, today=TODAY - timedelta(days=5))
    kept = retention.maintain(pg, 2, ahead_days=0, today=TODAY, keep_unshipped=True)
    name = retention.partition_name(TODAY - timedelta(days=5))
    assert kept.dropped == [] and len(kept.failed) == 1 and "not yet shipped" in kept.failed[0]
    audit.mark_shipped(pg, events[:2], 1.0)
    assert retention.maintain(pg, 2, ahead_days=0, today=TODAY, keep_unshipped=True).failed
    audit.mark_shipped(pg, events[2:], 1.0)
    done = retention.maintain(pg, 2, ahead_days=0, today=TODAY, keep_unshipped=True)
    assert (done.dropped, done.failed) == ([name], [])


def test_marking_events_shipped_searches_only_their_days_partitions(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A follower marks each shipped batch: the update names the events' days, so
    PostgreSQL prunes it to those days' partitions (by id alone it would search every
    day kept, one index probe per partition per id; partition pruning applies to
    conditions on the partition key: https://www.postgresql.org/docs/15/ddl-partitioning.html,
    "Partition Pruning"). Only the shipped events are marked."""
    days = [TODAY - timedelta(days=n) for n in range(4)]
    retention.maintain(pg, None, ahead_days=0, today=days[-1])
    retention.maintain(pg, None, ahead_days=3, today=days[-1])
    events = {day: on_day(day, 3) for day in days}
    audit.insert_events(pg, [e for batch in events.values() for e in batch])
    shipped = [*events[days[1]][:2], *events[days[2]][:1]]
    statements: list[tuple[str, tuple[Any, ...]]] = []
    execute = pg.execute

    def recorded(sql: str, params: Any = ()) -> int:
        statements.append((sql, tuple(params)))
        return execute(sql, params)

    monkeypatch.setattr(pg, "execute", recorded)
    audit.mark_shipped(pg, shipped, 7.0)
    monkeypatch.undo()
    [(sql, params)] = statements
    plan = "\n".join(row["QUERY PLAN"] for row in pg.fetch("EXPLAIN " + sql, params))
    searched = {name for name in partition_map(pg) if name in plan}
    assert searched == {retention.partition_name(days[1]), retention.partition_name(days[2])}
    marked = pg.fetch("SELECT event_id FROM audit_events WHERE shipped_at = 7.0")
    assert {row["event_id"] for row in marked} == {e["event_id"] for e in shipped}
    assert len(audit.unshipped(pg, 100)) == 12 - 3


def test_an_embedded_gateway_applies_its_retention_itself(tmp_path: Path) -> None:
    """SQLite: the gateway owns its file; governance started with
    governance.audit_retention_days deletes the expired days at once (then hourly)."""
    from gateway_app.governance.service import Governance
    from gateway_app.state.governance import InProcessGovernanceState
    from tests.gateway.conftest import run_async
    from tests.gateway.governance.services import one_model_config

    db = Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}")
    db.migrate()
    today = retention.utc_today()
    audit.insert_events(db, on_day(today - timedelta(days=8), 2) + on_day(today, 1))
    gov = Governance(
        one_model_config(audit_retention_days=7),
        state=InProcessGovernanceState(),
        db=db,
        admin_key="adm",
        secret=b"s",
    )

    async def main() -> None:
        await gov.start()
        for _ in range(100):
            if days_stored(db) == {today.isoformat(): 1}:
                break
            await asyncio.sleep(0.05)
        await gov.stop()

    run_async(main())
    assert days_stored(Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}")) == {today.isoformat(): 1}
