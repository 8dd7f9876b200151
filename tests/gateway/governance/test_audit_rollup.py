"""Audit roll-ups (issue 24, analytics at 50,000 requests/s): the analytics answer the same
from the roll-up of the closed days as from their raw events, each event counted once
(re-delivered batches, late events, events stored while a day is being rolled up), on
PostgreSQL (the suite's real server) and SQLite.

Facts of PostgreSQL relied on and checked here: an ``AFTER INSERT ... FOR EACH ROW``
trigger fires for the rows actually inserted, not for those ``ON CONFLICT DO NOTHING``
skips (https://www.postgresql.org/docs/15/sql-insert.html, "ON CONFLICT Clause", and
https://www.postgresql.org/docs/15/trigger-definition.html), and ``CREATE TRIGGER``
takes a SHARE ROW EXCLUSIVE lock on its table, which waits for the inserts under way
(https://www.postgresql.org/docs/15/explicit-locking.html, "Table-Level Locks").
``percentile_disc`` returns "the first input value whose position in the ordering equals
or exceeds the specified fraction": the nearest rank
(https://www.postgresql.org/docs/15/functions-aggregate.html, table 9.62).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway_app.governance import analytics, audit, retention, rollup
from gateway_app.governance.storage import MIGRATIONS, Database

TODAY = date(2026, 12, 6)
DAYS = [TODAY - timedelta(days=n) for n in (3, 2, 1, 0)]

# The answers compared: every dimension, combinations, a team's view, day ranges that
# start, end and split at the boundary of the days rolled up.
USAGE_QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("", {}),
    ("day", {}),
    ("month", {}),
    ("team", {}),
    ("team,model", {}),
    ("key,customer", {}),
    ("provider,deployment,cloud", {}),
    ("project", {"team_id": "t1"}),
    ("day", {"since": DAYS[1].isoformat(), "until": DAYS[2].isoformat()}),
    ("team", {"since": DAYS[2].isoformat()}),
    ("team", {"until": DAYS[2].isoformat()}),
]


def events_of(day: date, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` request events of ``day`` spread over its groups; costs are binary
    fractions, so any order of summing gives the same USD."""
    chance = random.Random(seed)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    out = []
    for i in range(count):
        latency = chance.lognormvariate(math.log(300), 1.0)
        out.append(
            {
                **audit.event(
                    "request",
                    team_id=chance.choice(["t1", "t2", "t3"]),
                    project_id=chance.choice(["p1", "p2"]),
                    key_id=chance.choice(["k1", "k2", "k3"]),
                    customer=chance.choice([None, "c1", "c2"]),
                    model=chance.choice(["gpt", "claude"]),
                    provider=chance.choice(["openai", "anthropic"]),
                    deployment=chance.choice(["d1", "d2", None]),
                    status=chance.choice([200, 200, 200, 429, 502, None]),
                    prompt_tokens=chance.randrange(0, 5000),
                    completion_tokens=chance.choice([None, chance.randrange(0, 900)]),
                    cost_usd=chance.choice([None, 0.25, 0.5, 1.125]),
                    latency_ms=chance.choice([None, latency, latency, latency]),
                ),
                "ts": start + i * (86399 / count),
                "day": day.isoformat(),
                "month": f"{day:%Y-%m}",
                "cloud": chance.choice(["aws", None]),
            }
        )
    # An admin event of the day: never in the request analytics.
    out.append({**audit.event("admin", actor="a", action="key.create", team_id="t1")})
    out[-1] |= {"ts": start, "day": day.isoformat(), "month": f"{day:%Y-%m}"}
    return out


def new_database(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> Database:
    """An empty, migrated database of ``kind`` with the partitions of :data:`DAYS`."""
    if kind == "sqlite":
        database = Database(f"sqlite:///{tmp_path / ('u' + uuid.uuid4().hex[:10])}.sqlite3")
    else:
        database = Database(request.getfixturevalue("postgres_server").new_database("u"))
    database.migrate()
    if database.kind == "postgres":
        retention.maintain(database, None, ahead_days=3, today=DAYS[0], roll_up=False)
    return database


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = new_database(request, tmp_path, request.param)
    yield database
    database.close()


def answers(db: Database) -> tuple[list[Any], list[Any]]:
    """Every usage answer, and the latency answers' groups, requests and errors (their
    percentiles are compared within the histogram's bound)."""
    usage = [analytics.usage(db, group, **filters) for group, filters in USAGE_QUERIES]
    latency = [
        [
            {k: v for k, v in row.items() if not k.endswith("_ms")}
            for row in analytics.latency(db, group, **filters)
        ]
        for group, filters in USAGE_QUERIES
    ]
    return usage, latency


def maintain(db: Database, today: date = TODAY, **kw: Any) -> retention.Maintenance:
    done = retention.maintain(db, kw.pop("retention_days", None), today=today, **kw)
    assert done.failed == []
    return done


def test_the_analytics_answer_the_same_from_the_rollup_and_after_retention(
    db: Database,
) -> None:
    """Raw before, rolled up after (the three closed days; today stays raw), and the same
    again once retention has dropped the raw events of the rolled days: the roll-up alone
    answers for them. A day counted twice, or the boundary day read from both the roll-up
    and the raw table (or from neither), changes an answer."""
    for n, day in enumerate(DAYS):
        audit.insert_events(db, events_of(day, 300, seed=n))
    before = answers(db)
    assert before[0][0][0]["requests"] == 1200
    done = maintain(db)
    assert done.rolled_up.days == [d.isoformat() for d in DAYS[:3]]
    assert done.rolled_up.rows == 900 and rollup.watermark(db) == DAYS[2].isoformat()
    assert answers(db) == before
    # The roll-up of the three days holds far fewer rows than their events.
    assert 0 < db.fetch("SELECT COUNT(*) AS n FROM audit_rollup")[0]["n"] < 900
    # Retention of 1 day keeps TODAY-1 and TODAY: TODAY-3 and TODAY-2 go, answers stay.
    dropped = maintain(db, retention_days=1)
    assert sorted({r["day"] for r in db.fetch("SELECT day FROM audit_events")}) == [
        DAYS[2].isoformat(),
        DAYS[3].isoformat(),
    ]
    assert dropped.rolled_up.days == []
    assert answers(db) == before
    # Idempotent: nothing rolled up twice.
    assert maintain(db).rolled_up.days == [] and answers(db) == before


def test_late_and_redelivered_events_are_counted_once(
    db: Database, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """After TODAY-1 is rolled up: a re-delivered batch of it (stored before: skipped, no
    trigger), new events of it (late: copied by the trigger, read at once, folded in by
    the next run), and late events of a day whose raw events retention has dropped (on
    PostgreSQL they land in the DEFAULT partition). Each counts once, before and after
    the fold, and the fold empties the late table."""
    first = {day: events_of(day, 200, seed=10 + n) for n, day in enumerate(DAYS)}
    for batch in first.values():
        audit.insert_events(db, batch)
    maintain(db, retention_days=2)  # TODAY-3 dropped (rolled up first), TODAY-2.. kept
    late = events_of(DAYS[2], 50, seed=20) + events_of(DAYS[0], 40, seed=21)
    truth = new_database(request, tmp_path, db.kind)  # every event raw, once
    for batch in (*first.values(), late):
        audit.insert_events(truth, batch)
    expected = answers(truth)
    truth.close()
    audit.insert_events(db, first[DAYS[2]][:120])  # re-delivered: stored once already
    audit.insert_events(db, late)
    audit.insert_events(db, late[:30])  # and the late ones re-delivered too
    stored_late = db.fetch("SELECT COUNT(*) AS n FROM audit_rollup_late")[0]["n"]
    assert stored_late == 90  # request events only, each once
    assert answers(db) == expected
    done = maintain(db, retention_days=2)
    assert done.rolled_up.folded == 90 and done.rolled_up.days == []
    assert db.fetch("SELECT COUNT(*) AS n FROM audit_rollup_late")[0]["n"] == 0
    assert answers(db) == expected
    # The late events of the dropped day were deleted from the raw table; counted still.
    assert not db.fetch("SELECT 1 FROM audit_events WHERE day = ?", (DAYS[0].isoformat(),))


def test_events_stored_while_a_day_is_rolled_up_count_once(db: Database) -> None:
    """The two steps of a day's roll-up with events of that day stored between them (the
    trigger installed, the aggregate not run yet): they go to the late table, and the
    aggregate leaves them out. Without that exclusion they would count twice."""
    day = DAYS[2].isoformat()
    batch = events_of(DAYS[2], 100, seed=30)
    audit.insert_events(db, batch[:60])
    expected = 100  # request events (the admin one is not)
    partitions_of = retention.late_partitions if db.kind == "postgres" else None
    db.transaction(lambda tx: rollup.install_late_trigger(tx, day, partitions_of))
    audit.insert_events(db, batch[60:])
    # Before the watermark moves, the day is read raw: every event once.
    assert analytics.usage(db, "")[0]["requests"] == expected
    db.execute(
        "INSERT INTO audit_rollup_state (name, through, rolled_at) VALUES (?, ?, 0)",
        (rollup.STATE_NAME, DAYS[1].isoformat()),
    )  # (the days before are rolled up: an empty store)
    assert rollup.roll_day(db, day, partitions_of) == 60
    assert analytics.usage(db, "")[0]["requests"] == expected
    assert rollup.fold_late(db) == 40
    assert analytics.usage(db, "")[0]["requests"] == expected
    assert rollup.roll_day(db, day, partitions_of) is None  # done once


def test_percentiles_from_the_histogram_are_within_one_percent(db: Database) -> None:
    """Each percentile read from the roll-up's histogram is within ``ACCURACY`` (1 %) of
    the exact nearest-rank one, per group and over all; read from raw days only it is
    exact (PostgreSQL: ``percentile_disc``). A bucket edge off by one (floor instead of
    ceiling, or the bucket's bound instead of its middle) breaks the bound."""
    chance = random.Random(7)
    batch = events_of(DAYS[1], 600, seed=40) + events_of(DAYS[2], 600, seed=41)
    for event in batch[:40]:
        event["latency_ms"] = chance.choice([0.0, 0.004, 1.0, 10.0, 250.0, 3_600_000.0])
    audit.insert_events(db, batch)
    exact = {group: analytics.latency(db, group) for group in ("", "team", "day,model", "customer")}
    for rows in exact.values():  # raw only: the same nearest rank as before
        for row in rows:
            values = sorted(
                e["latency_ms"]
                for e in batch
                if e["kind"] == "request"
                and e["latency_ms"] is not None
                and all(e[c] == row[c] for c in row if c in analytics.DIMENSIONS.values())
            )
            assert row["p50_ms"] == analytics.percentile(values, 0.5)
            assert row["p99_ms"] == analytics.percentile(values, 0.99)
    maintain(db)
    for group, rows in exact.items():
        rolled = analytics.latency(db, group)
        assert len(rolled) == len(rows)
        for estimate, truth in zip(rolled, rows, strict=True):
            assert estimate["requests"] == truth["requests"]
            assert estimate["errors"] == truth["errors"]
            for name in analytics.SHARES:
                bound = rollup.ACCURACY * truth[name] + (
                    rollup.MIN_LATENCY_MS if truth[name] < rollup.MIN_LATENCY_MS else 1e-9
                )
                assert abs(estimate[name] - truth[name]) <= bound, (group, name, estimate)


def test_every_latency_is_within_one_percent_of_its_bucket(db: Database) -> None:
    """The bucket each database computes (the SQL the roll-up uses) stands for a value
    within 1 % of the latency, over a sweep that hits bucket edges."""
    values = [v for k in range(1400) if (v := 0.01 * rollup.GAMMA**k) < rollup.MAX_LATENCY_MS]
    values += [v * (1 + 1e-12) for v in values[::50]] + [math.nextafter(1.0, 0), 1.0, 42.0]
    sql = f"SELECT {rollup.BUCKET_SQL} AS bucket FROM (SELECT ? AS latency_ms) AS v"
    for value in values:
        bucket = int(db.fetch(sql, (value,))[0]["bucket"])
        assert abs(rollup.bucket_value(bucket) - value) <= rollup.ACCURACY * value * (1 + 1e-9)
    assert db.fetch(sql, (0.0,))[0]["bucket"] == rollup.ZERO_BUCKET


def test_an_expired_day_is_kept_until_it_is_rolled_up(db: Database) -> None:
    """Retention never drops (SQLite: deletes) a day whose roll-up has not got it yet:
    ``migrate`` does not roll up, so its retention waits for ``audit-maintain``'s."""
    for n, day in enumerate(DAYS):
        audit.insert_events(db, events_of(day, 20, seed=50 + n))
    before = answers(db)
    done = maintain(db, retention_days=1, roll_up=False)
    assert done.kept and done.dropped == [] and done.deleted == 0
    assert len({r["day"] for r in db.fetch("SELECT day FROM audit_events")}) == 4
    done = maintain(db, retention_days=1, rollup_budget_s=0.0)  # no time: nothing rolled
    assert done.rolled_up.pending == [d.isoformat() for d in DAYS[:3]] and done.kept
    done = maintain(db, retention_days=1)
    assert done.kept == [] and answers(db) == before
    assert len({r["day"] for r in db.fetch("SELECT day FROM audit_events")}) == 2


def test_an_exact_latency_answer_raced_by_a_rollup_and_retention_loses_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exact answer (every day asked for raw) reads the watermark and then the raw
    table: a roll-up and a retention run landing in between (the day rolled up, then its
    raw events dropped) make it fall back to the one-snapshot statement, so the answer
    still counts every request of the day."""
    day = DAYS[0]
    audit.insert_events(db, events_of(day, 30, seed=7))
    expected = analytics.usage(db, "day", since=day.isoformat())
    exact = analytics._exact_latency

    def raced(*args: Any) -> Any:
        maintain(db, retention_days=1)  # rolls the closed days up, then drops them
        assert db.fetch("SELECT event_id FROM audit_events WHERE day = ?", (day.isoformat(),)) == []
        return exact(*args)

    monkeypatch.setattr(analytics, "_exact_latency", raced)
    [row] = analytics.latency(db, "day", since=day.isoformat())
    assert row["requests"] == sum(
        1
        for e in events_of(day, 30, seed=7)
        if e.get("latency_ms") is not None and e["kind"] == "request"
    )
    assert analytics.usage(db, "day", since=day.isoformat()) == expected


def test_the_rollup_lag_counts_the_closed_days_not_rolled_up(db: Database) -> None:
    """:func:`rollup.lag_days` (the ``aigw_audit_rollup_lag_days`` gauge): 0 on an empty
    table and once yesterday is rolled up; before the first roll-up, the days from the
    oldest stored day to yesterday; after, the days after the watermark up to yesterday.
    Today's events never count (today is not closed)."""
    assert rollup.lag_days(db, TODAY) == 0
    audit.insert_events(db, events_of(TODAY, 3, seed=1))
    assert rollup.lag_days(db, TODAY) == 0
    audit.insert_events(db, events_of(DAYS[0], 3, seed=2))  # 3 days before TODAY
    assert rollup.lag_days(db, TODAY) == 3
    maintain(db, today=DAYS[1])  # rolls up to DAYS[0]
    assert rollup.lag_days(db, TODAY) == 2
    maintain(db)
    assert rollup.lag_days(db, TODAY) == 0
    assert rollup.lag_days(db, TODAY + timedelta(days=1)) == 1


def test_the_first_rollup_of_an_existing_table_goes_a_day_at_a_time(
    tmp_path: Path, postgres_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade with history (PostgreSQL, rows stored before migration 9: one legacy
    partition for all their days): the first roll-up stops when its budget is spent and
    the next run goes on from the day after the last one rolled up; an event arriving
    late for a legacy day rolled up is counted once, one for a legacy day not rolled up
    yet is read raw and rolled up with its day."""
    from gateway_app.governance import storage

    db = Database(postgres_server.new_database("v"))
    monkeypatch.setattr(storage, "MIGRATIONS", MIGRATIONS[:8])
    db.migrate()
    history = [TODAY - timedelta(days=n) for n in range(12, 0, -1)]
    for n, day in enumerate(history):
        audit.insert_events(db, events_of(day, 30, seed=60 + n))
    monkeypatch.setattr(storage, "MIGRATIONS", MIGRATIONS)
    assert db.migrate() == [9, 10]
    before = answers(db)
    ticks = iter(range(1000))
    done = rollup.roll_up(
        db, TODAY, retention.late_partitions, budget_s=4, clock=lambda: float(next(ticks))
    )
    # The clock ticks a second per read: days started at 1, 2 and 3 s, none at 4.
    assert done.days == [d.isoformat() for d in history[:3]]
    assert done.pending == [d.isoformat() for d in history[3:]]
    assert answers(db) == before
    late_rolled = events_of(history[1], 7, seed=70)
    late_raw = events_of(history[8], 5, seed=71)
    audit.insert_events(db, late_rolled + late_raw)
    assert db.fetch("SELECT COUNT(*) AS n FROM audit_rollup_late")[0]["n"] == 7
    expected = answers(db)
    assert expected[0][0][0]["requests"] == 12 * 30 + 7 + 5
    rest = rollup.roll_up(db, TODAY, retention.late_partitions)
    assert rest.folded == 7 and rest.days == [d.isoformat() for d in history[3:]]
    assert answers(db) == expected
    db.close()


def test_a_partition_made_later_for_a_rolled_up_day_counts_its_late_events(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """PostgreSQL: a rolled-up day with no partition (it had no events) gets late events
    in the DEFAULT partition; the next run makes the day's partition and moves them there.
    Later events of that day land in the new partition, whose trigger still copies them:
    each is counted once (without it they would be read nowhere)."""
    db = new_database(request, tmp_path, "postgres")
    quiet = TODAY - timedelta(days=4)  # no partition: the fixture's start at TODAY-3
    audit.insert_events(db, events_of(TODAY - timedelta(days=5), 10, seed=80))
    maintain(db, ahead_days=0)
    assert rollup.watermark(db) == DAYS[2].isoformat()
    first, later = events_of(quiet, 6, seed=81), events_of(quiet, 4, seed=82)
    audit.insert_events(db, first)  # -> DEFAULT, copied by its trigger
    done = maintain(db, ahead_days=0)
    assert done.created == [retention.partition_name(quiet)] and done.moved == 7
    audit.insert_events(db, later)  # -> the new partition
    assert analytics.usage(db, "")[0]["requests"] == 10 + 6 + 4
    maintain(db, ahead_days=0)
    assert analytics.usage(db, "day")[1] == {
        **analytics.usage(db, "day")[1],
        "day": quiet.isoformat(),
        "requests": 10,
    }
    db.close()


def test_a_late_event_of_a_day_before_the_first_rollup_counts(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """PostgreSQL: the partitions of TODAY-3 and TODAY-2 were made ahead and stayed
    empty; the first roll-up starts at the oldest event's day (TODAY-1). A follower then
    ships an event of TODAY-3: it is a day rolled up (empty), so it must count, through
    the trigger the roll-up put on those earlier partitions too."""
    db = new_database(request, tmp_path, "postgres")
    audit.insert_events(db, events_of(DAYS[2], 10, seed=90))
    assert maintain(db, ahead_days=0).rolled_up.days == [DAYS[2].isoformat()]
    audit.insert_events(db, events_of(DAYS[0], 3, seed=91))
    assert analytics.usage(db, "")[0]["requests"] == 13
    maintain(db, ahead_days=0)
    assert [r["requests"] for r in analytics.usage(db, "day")] == [3, 10]
    db.close()
