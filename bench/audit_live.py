"""A live audit roll-up (a trigger per insert, not shipped) measured on a real PostgreSQL.

What its trigger costs the drainer's inserts, with concurrent drainers on the same hot
groups, and what it saves a "usage by team over the last 30 days" answer that includes
a busy today; and (``--interval-rows``) what rolling up intervals of today set-based
costs instead. Results and verdict: ``bench/audit-live.md``.

1. Inserts: batches of request events (``--batches`` 50 and 500) stored through the
   drainer's own path (:func:`gateway_app.governance.audit.insert_rows` with the rows in
   ``COPY`` form, as :class:`~gateway_app.governance.audit.AuditDrainer` does), by 1 and
   4 concurrent inserters (threads, one connection each) on the same ~200 hot groups
   (10 teams, 50 keys, 2 models, 2 providers, a customer or none): without the trigger,
   with it (``LIVE_SHARDS`` rows a group), and with it on one row a group (every
   session on the same rows). Per configuration: wall time, the database's CPU per
   event (the inserting backends' user+system time from ``/proc``, clock ticks), lock
   waits seen (``pg_locks`` sampled every 5 ms: the share of samples with a waiter),
   deadlocks (``pg_stat_database``), failed batches (retried, as the drainer does) and
   a check that the live roll-up counts every event stored once.
2. The answer: 29 closed days of ``--rows-per-day`` events rolled up, and today with
   ``--today-rows`` events; "usage by team over 30 days" timed with today read raw (the
   cut-over day set to tomorrow: before this change) and from the live roll-up.

    flock -x /work/bench.lock .venv/bin/python bench/audit_live.py \\
        --database-url postgresql://postgres@127.0.0.1:PORT/postgres --out bench/audit-live.json

Prints and (``--out``) writes JSON. Run it under the exclusive bench lock and note the
load average (recorded in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_rollup import FILL

from gateway_app.governance import analytics, audit, retention, rollup
from gateway_app.governance.storage import Database, DatabaseError

TICKS = os.sysconf("SC_CLK_TCK")


_LIVE_GROUP = ("day", "month", *rollup.GROUP_COLUMNS)
"""A roll-up's group: the roll-ups' own (migration 10)."""

_LIVE_COARSE = ("day", "month", *rollup.COARSE_COLUMNS)

_LIVE_BUCKET = rollup.BUCKET_SQL

_LIVE_ERROR = rollup.ERROR_SQL

LIVE_SHARDS = 4
"""The live roll-up's rows per group a day (PostgreSQL): each inserting session adds to
the shard ``pg_backend_pid() % LIVE_SHARDS``, so concurrent drainers (one per replica)
mostly update different rows of a hot group instead of queueing on one row's lock until
each other's commit (its WAL flush); readers sum the shards."""


def _live_upsert(table: str, group: tuple[str, ...], latency: bool) -> str:
    """Add the statement's new request events of the live days
    (``inserted``, the trigger's transition table) into ``table``, in its conflict key's
    order (every session locks the rows it updates in the same order: no deadlock)."""
    key = ", ".join(group)
    if latency:
        key += ", bucket"
        columns, values = "requests, errors", f"COUNT(*), SUM({_LIVE_ERROR})"
        update = "requests = r.requests + excluded.requests, errors = r.errors + excluded.errors"
        select, where = f"{', '.join(group)}, {_LIVE_BUCKET}", " AND latency_ms IS NOT NULL"
    else:
        columns = "requests, prompt_tokens, completion_tokens, cost_usd, last_ts"
        values = (
            "COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
            "COALESCE(SUM(cost_usd), 0), MAX(ts)"
        )
        update = (
            "requests = r.requests + excluded.requests, "
            "prompt_tokens = r.prompt_tokens + excluded.prompt_tokens, "
            "completion_tokens = r.completion_tokens + excluded.completion_tokens, "
            "cost_usd = r.cost_usd + excluded.cost_usd, "
            "last_ts = GREATEST(r.last_ts, excluded.last_ts)"
        )
        select, where = ", ".join(group), ""
    order = ", ".join(str(n) for n in range(1, len(key.split(", ")) + 1))
    return (
        f"INSERT INTO {table} AS r ({key}, live_shard, {columns}) "
        f"SELECT {select}, shard, {values} FROM inserted "
        f"WHERE kind = 'request' AND day >= live_since{where} "
        f"GROUP BY {order} ORDER BY {order} "
        f"ON CONFLICT ({key}, live_shard) WHERE live_shard IS NOT NULL DO UPDATE SET {update};"
    )


_LIVE_TABLES = (
    ("audit_rollup", _LIVE_GROUP, False),
    ("audit_rollup_latency", _LIVE_GROUP, True),
    ("audit_rollup_latency_coarse", _LIVE_COARSE, True),
)


def candidate_schema() -> list[str]:
    """The design measured here (not shipped: see ``bench/audit-live.md``), on top of
    migration 10: a shard column and a unique key (NULLs equal) on each roll-up table
    for the live rows, and the table holding the cut-over day."""
    statements = [
        f"ALTER TABLE {table} ADD COLUMN live_shard SMALLINT" for table, _, _ in _LIVE_TABLES
    ]
    statements += [
        f"CREATE UNIQUE INDEX {table}_live_key ON {table} "
        f"({', '.join(group)}{', bucket' if latency else ''}, live_shard) "
        "NULLS NOT DISTINCT WHERE live_shard IS NOT NULL"
        for table, group, latency in _LIVE_TABLES
    ]
    statements.append(
        "CREATE TABLE audit_rollup_live (name TEXT PRIMARY KEY, since TEXT NOT NULL, "
        "installed_at DOUBLE PRECISION NOT NULL)"
    )
    statements.append("INSERT INTO audit_rollup_live VALUES ('audit_events', '9999-12-31', 0)")
    return statements


def live_sql() -> tuple[str, str]:
    """The candidate's trigger function and trigger: one statement-level trigger on the
    partitioned table, its new rows in a transition table, three upserts in a fixed
    order, each in its conflict key's order (no deadlock between single-statement
    inserts)."""
    function = (
        """CREATE OR REPLACE FUNCTION audit_rollup_add_live() RETURNS trigger
        LANGUAGE plpgsql AS $function$
        DECLARE
            live_since TEXT := (
                SELECT l.since FROM audit_rollup_live l WHERE l.name = 'audit_events'
            );
            shard SMALLINT := pg_backend_pid() % """
        + str(LIVE_SHARDS)
        + """;
        BEGIN
            IF live_since IS NULL THEN
                RETURN NULL;
            END IF;
            """
        + "\n            ".join(_live_upsert(*t) for t in _LIVE_TABLES)
        + """
            RETURN NULL;
        END
        $function$"""
    )
    trigger = (
        "CREATE TRIGGER audit_rollup_live AFTER INSERT ON audit_events "
        "REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT "
        "EXECUTE FUNCTION audit_rollup_add_live()"
    )
    return function, trigger


LIVE_SINCE = "(SELECT since FROM audit_rollup_live WHERE name = 'audit_events')"


def ddl(url: str, *statements: str) -> None:
    """Run ``statements`` as they are (no placeholders: the function body has ``%``)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


CANDIDATE_USAGE_BY_TEAM = f"""
SELECT team_id, COALESCE(SUM(requests), 0) AS requests,
    COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,
    COALESCE(SUM(completion_tokens), 0) AS completion_tokens,
    COALESCE(SUM(cost_usd), 0) AS cost_usd, MAX(last_ts) AS last_request_at FROM (
    SELECT team_id, requests, prompt_tokens, completion_tokens, cost_usd, last_ts
    FROM audit_rollup WHERE (day <= {rollup.WATERMARK_SQL} OR day >= {LIVE_SINCE}) AND day >= %s
    UNION ALL SELECT team_id, 1, prompt_tokens, completion_tokens, cost_usd, ts
    FROM audit_rollup_late WHERE day <= {rollup.WATERMARK_SQL} AND day >= %s
    UNION ALL SELECT team_id, 1, prompt_tokens, completion_tokens, cost_usd, ts
    FROM audit_events WHERE kind = 'request' AND day > COALESCE({rollup.WATERMARK_SQL}, '')
    AND ({LIVE_SINCE} IS NULL OR day < {LIVE_SINCE}) AND day >= %s
) AS sources GROUP BY team_id ORDER BY team_id
"""
"""The candidate's "usage by team since a day": the roll-up for the days up to the
watermark and the live days, the raw events only in between."""


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a server process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def events(count: int, chance: random.Random, day: date, keys: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        key = chance.randrange(keys)
        out.append(
            audit.event(
                "request",
                team_id=f"t{key % 10}",
                project_id=f"p{key % 20}",
                key_id=f"k{key}",
                customer=chance.choice([None, "c1"]),
                model=chance.choice(["gpt", "claude"]),
                provider=chance.choice(["openai", "anthropic"]),
                deployment="d1",
                status=chance.choice([200] * 49 + [502]),
                prompt_tokens=chance.randrange(10, 2000),
                completion_tokens=chance.randrange(10, 500),
                cost_usd=0.001,
                latency_ms=chance.lognormvariate(5.7, 0.6),
            )
            | {"day": day.isoformat(), "month": f"{day:%Y-%m}"}
        )
    return out


class LockSampler(threading.Thread):
    """Samples ``pg_locks`` for waiters every 5 ms until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.db = Database(url)
        self.samples = 0
        self.waiting = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            rows = self.db.fetch("SELECT COUNT(*) AS n FROM pg_locks WHERE NOT granted")
            self.samples += 1
            self.waiting += 1 if rows[0]["n"] else 0
            time.sleep(0.005)
        self.db.close()


def insert_run(
    url: str,
    db: Database,
    day: date,
    batch: int,
    inserters: int,
    total: int,
    seed: int,
    keys: int,
) -> dict[str, Any]:
    """``total`` events in batches of ``batch`` by ``inserters`` threads."""
    db.execute("TRUNCATE audit_events")
    db.execute("DELETE FROM audit_rollup WHERE live_shard IS NOT NULL")
    db.execute("DELETE FROM audit_rollup_latency WHERE live_shard IS NOT NULL")
    db.execute("DELETE FROM audit_rollup_latency_coarse WHERE live_shard IS NOT NULL")
    deadlocks_before = db.fetch(
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()"
    )[0]["n"]
    per_thread = total // inserters // batch
    work: list[list[audit.RowBatch]] = []
    for t in range(inserters):
        chance = random.Random(seed * 100 + t)
        batches = []
        for _ in range(per_thread):
            rows = audit.RowBatch(db)
            for e in events(batch, chance, day, keys):
                rows.add(e)
            batches.append(rows)
        work.append(batches)
    connections = [Database(url) for _ in range(inserters)]
    pids = [int(c.fetch("SELECT pg_backend_pid() AS p")[0]["p"]) for c in connections]
    cpu_before = [backend_cpu(p) for p in pids]
    latencies: list[float] = []
    failures = [0]
    barrier = threading.Barrier(inserters)

    def insert(conn: Database, batches: list[audit.RowBatch]) -> None:
        barrier.wait()
        for rows in batches:
            while True:
                started = time.perf_counter()
                try:
                    audit.insert_rows(conn, rows.rows, rows.copy_text)
                except DatabaseError:
                    failures[0] += 1  # the drainer retries the same batch: so do we
                    continue
                latencies.append(time.perf_counter() - started)
                break

    sampler = LockSampler(url)
    sampler.start()
    threads = [
        threading.Thread(target=insert, args=(c, b)) for c, b in zip(connections, work, strict=True)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    cpu = sum(backend_cpu(p) - b for p, b in zip(pids, cpu_before, strict=True))
    for c in connections:
        c.close()
    stored = per_thread * inserters * batch
    counted = db.fetch(
        "SELECT COALESCE(SUM(requests), 0) AS n FROM audit_rollup WHERE day = ?", (day.isoformat(),)
    )
    deadlocks = db.fetch(
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()"
    )[0]["n"]
    latencies.sort()
    return {
        "batch": batch,
        "inserters": inserters,
        "events": stored,
        "wall_s": wall,
        "events_per_s": stored / wall,
        "db_cpu_us_per_event": cpu * 1e6 / stored,
        "batch_p50_ms": 1000 * latencies[len(latencies) // 2],
        "batch_p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "lock_wait_share": sampler.waiting / max(1, sampler.samples),
        "deadlocks": int(deadlocks) - int(deadlocks_before),
        "failed_batches_retried": failures[0],
        "live_rollup_requests": int(counted[0]["n"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--events", type=int, default=100_000, help="per insert configuration")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    parser.add_argument("--today-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--configs",
        default="no_trigger,trigger,trigger_one_row",
        help="of no_trigger, trigger, trigger_one_row, trigger_usage_only, trigger_usage_coarse",
    )
    parser.add_argument("--batches", default="50,500")
    parser.add_argument(
        "--keys", type=int, default=50, help="hot keys (~4 groups each) the inserts spread over"
    )
    parser.add_argument("--inserters", default="1,4")
    parser.add_argument("--no-answer", action="store_true", help="the inserts only")
    parser.add_argument(
        "--interval-rows",
        type=int,
        default=0,
        help="the next candidate: today's events (no trigger) rolled up set-based in "
        "--intervals intervals of time, each timed",
    )
    parser.add_argument("--intervals", type=int, default=4)
    parser.add_argument(
        "--interval-mode",
        choices=("upsert", "append"),
        default="upsert",
        help="upsert into the keyed live rows, or append as the nightly roll-up does",
    )
    parser.add_argument(
        "--checks",
        action="store_true",
        help="first check the candidate counts once: re-deliveries, DEFAULT partition, days < L",
    )
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    name = "live_bench_" + uuid.uuid4().hex[:8]
    admin = Database(args.database_url)
    admin.execute(f"CREATE DATABASE {name}")
    url = args.database_url.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    today = datetime.now(UTC).date()
    result: dict[str, Any] = {"loadavg_start": os.getloadavg(), "today": today.isoformat()}
    function, trigger = live_sql()
    try:
        db.migrate()
        ddl(url, *candidate_schema())
        db.execute("UPDATE audit_rollup_live SET since = ?", (today.isoformat(),))
        retention.maintain(db, None, ahead_days=1, today=today - timedelta(days=30), roll_up=False)
        retention.maintain(db, None, ahead_days=1, today=today, roll_up=False)

        configs = {
            "no_trigger": lambda: db.execute(
                "DROP TRIGGER IF EXISTS audit_rollup_live ON audit_events"
            ),
            "trigger": lambda: ddl(url, function, trigger),
            "trigger_one_row": lambda: ddl(
                url, function.replace(f"pg_backend_pid() % {LIVE_SHARDS}", "0"), trigger
            ),
            # Where the cost goes: the usage roll-up alone, and with the coarse histogram.
            "trigger_usage_only": lambda: ddl(url, only(function, 1), trigger),
            "trigger_usage_coarse": lambda: ddl(url, only(function, 1, 3), trigger),
        }
        configs = {k: v for k, v in configs.items() if k in args.configs.split(",")}
        if args.checks:
            ddl(url, function, trigger)
            result["checks"] = exactly_once_checks(db, today)
            print(json.dumps(result["checks"]), flush=True)
        runs: list[dict[str, Any]] = []
        for round_ in range(args.rounds):
            for label, setup in configs.items():
                db.execute("DROP TRIGGER IF EXISTS audit_rollup_live ON audit_events")
                setup()
                for batch in map(int, args.batches.split(",")):
                    for inserters in map(int, args.inserters.split(",")):
                        run = insert_run(
                            url, db, today, batch, inserters, args.events, round_, args.keys
                        )
                        run |= {"config": label, "round": round_}
                        print(json.dumps(run), flush=True)
                        runs.append(run)
        result["inserts"] = runs
        result["inserts_median"] = summarise(runs)
        db.execute("DROP TRIGGER IF EXISTS audit_rollup_live ON audit_events")
        ddl(url, function, trigger)
        if not args.no_answer:
            result["answer"] = answer_run(db, url, today, args)
        if args.interval_rows:
            db.execute("DROP TRIGGER IF EXISTS audit_rollup_live ON audit_events")
            result["intervals"] = interval_run(db, url, today, args)
        result["loadavg_end"] = os.getloadavg()
    finally:
        db.close()
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()
    print(json.dumps({k: v for k, v in result.items() if k != "inserts"}, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def only(function: str, *keep: int) -> str:
    """The trigger function with only its upserts numbered ``keep`` (1: usage, 2: the
    histogram by key and customer, 3: the coarse histogram)."""
    lines = function.split("\n")
    upserts = [n for n, line in enumerate(lines) if line.strip().startswith("INSERT INTO")]
    return "\n".join(
        line for n, line in enumerate(lines) if n not in upserts or upserts.index(n) + 1 in keep
    )


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    keys = sorted({(r["config"], r["batch"], r["inserters"]) for r in runs})
    for config, batch, inserters in keys:
        same = [
            r
            for r in runs
            if (r["config"], r["batch"], r["inserters"]) == (config, batch, inserters)
        ]
        out.append(
            {
                "config": config,
                "batch": batch,
                "inserters": inserters,
                **{
                    k: statistics.median(r[k] for r in same)
                    for k in (
                        "events_per_s",
                        "db_cpu_us_per_event",
                        "batch_p50_ms",
                        "batch_p99_ms",
                        "lock_wait_share",
                    )
                },
                "deadlocks": sum(r["deadlocks"] for r in same),
                "failed_batches_retried": sum(r["failed_batches_retried"] for r in same),
                "counted_once": all(
                    r["config"] == "no_trigger" or r["live_rollup_requests"] == r["events"]
                    for r in same
                ),
            }
        )
    return out


def answer_run(db: Database, url: str, today: date, args: argparse.Namespace) -> dict[str, Any]:
    """29 closed days rolled up and a busy today: usage by team over 30 days, today raw
    (before) and live (after)."""
    import psycopg

    db.execute("TRUNCATE audit_events")
    for table in ("audit_rollup", "audit_rollup_latency", "audit_rollup_latency_coarse"):
        db.execute(f"DELETE FROM {table}")
    days = [today - timedelta(days=n) for n in range(29, 0, -1)]
    with psycopg.connect(url, autocommit=True) as conn:
        for day in [*days, today]:
            started = time.perf_counter()
            conn.execute(
                FILL,
                {
                    "day": day.isoformat(),
                    "month": f"{day:%Y-%m}",
                    "start": time.mktime(day.timetuple()),
                    "rows": args.today_rows if day == today else args.rows_per_day,
                    "keys": 1000,
                },
            )
            if day == today:
                fill_today_s = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE audit_events")
    for day in days:
        rollup.roll_day(db, day.isoformat(), retention.late_partitions)
    for table in ("audit_rollup", "audit_rollup_latency", "audit_rollup_latency_coarse"):
        db.execute(f"ANALYZE {table}")
    since = days[0].isoformat()

    def timed(query: Any) -> tuple[float, list[dict[str, Any]]]:
        times, rows = [], []
        for _ in range(3):
            started = time.perf_counter()
            rows = query()
            times.append(time.perf_counter() - started)
        return statistics.median(times), rows

    # Today raw: the shipped analytics (the roll-up up to the watermark, raw after it).
    raw_s, raw_rows = timed(lambda: analytics.usage(db, "team", since=since))
    live_s, live_rows = timed(lambda: db.fetch(CANDIDATE_USAGE_BY_TEAM, (since,) * 3))
    for row in live_rows:
        row |= {k: int(row[k]) for k in ("requests", "prompt_tokens", "completion_tokens")}
        row["cost_usd"] = float(row["cost_usd"])
    live_today = db.fetch(
        "SELECT COUNT(*) AS n FROM audit_rollup WHERE live_shard IS NOT NULL AND day = ?",
        (today.isoformat(),),
    )[0]["n"]
    return {
        "closed_days": len(days),
        "rows_per_closed_day": args.rows_per_day,
        "today_rows": args.today_rows,
        "fill_today_one_statement_s": fill_today_s,
        "live_rollup_rows_today": int(live_today),
        "usage_by_team_30d_today_raw_s": raw_s,
        "usage_by_team_30d_today_live_s": live_s,
        "same_answer": same(raw_rows, live_rows),
    }


def interval_run(
    db: Database, url: str, today: date, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """The next candidate's cost (``bench/audit-live.md``): today's events stored without
    a trigger, then rolled up an interval of time at a time, set-based as the nightly
    roll-up does (one scan into a temporary table of group x bucket cells, then the three
    upserts from it), into the same live rows. Only the cost: the exactly-once boundary
    of a real interval (insert order is not commit order) is not built."""
    import psycopg

    db.execute("TRUNCATE audit_events")
    for table in ("audit_rollup", "audit_rollup_latency", "audit_rollup_latency_coarse"):
        db.execute(f"DELETE FROM {table}")
    start = time.mktime(today.timetuple())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            FILL,
            {
                "day": today.isoformat(),
                "month": f"{today:%Y-%m}",
                "start": start,
                "rows": args.interval_rows,
                "keys": 1000,
            },
        )
        # An interval is found by time: a BRIN index (ts follows the insert order).
        conn.execute("CREATE INDEX audit_events_ts_brin ON audit_events USING brin (ts)")
        conn.execute("VACUUM ANALYZE audit_events")
    group = ", ".join(_LIVE_GROUP)
    coarse = ", ".join(_LIVE_COARSE)
    fine = (
        f"CREATE TEMPORARY TABLE fine AS SELECT {group}, {_LIVE_BUCKET} AS bucket, "
        "COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, "
        "SUM(completion_tokens) AS completion_tokens, SUM(cost_usd) AS cost_usd, "
        f"MAX(ts) AS last_ts, SUM({_LIVE_ERROR}) AS errors FROM audit_events "
        "WHERE kind = 'request' AND day = %s AND ts >= %s AND ts < %s "
        f"GROUP BY {group}, bucket"
    )
    key = "WHERE live_shard IS NOT NULL DO UPDATE SET requests = r.requests + excluded.requests"
    upserts = [
        f"INSERT INTO audit_rollup AS r ({group}, live_shard, requests, prompt_tokens, "
        "completion_tokens, cost_usd, last_ts) "
        f"SELECT {group}, 0, SUM(requests), COALESCE(SUM(prompt_tokens), 0), "
        "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_usd), 0), MAX(last_ts) "
        f"FROM fine GROUP BY {group} ORDER BY {group} "
        f"ON CONFLICT ({group}, live_shard) {key}, "
        "prompt_tokens = r.prompt_tokens + excluded.prompt_tokens, "
        "completion_tokens = r.completion_tokens + excluded.completion_tokens, "
        "cost_usd = r.cost_usd + excluded.cost_usd, "
        "last_ts = GREATEST(r.last_ts, excluded.last_ts)",
        f"INSERT INTO audit_rollup_latency AS r ({group}, bucket, live_shard, requests, errors) "
        f"SELECT {group}, bucket, 0, requests, errors FROM fine WHERE bucket IS NOT NULL "
        f"ORDER BY {group}, bucket ON CONFLICT ({group}, bucket, live_shard) {key}, "
        "errors = r.errors + excluded.errors",
        f"INSERT INTO audit_rollup_latency_coarse AS r ({coarse}, bucket, live_shard, "
        f"requests, errors) SELECT {coarse}, bucket, 0, SUM(requests), SUM(errors) FROM fine "
        f"WHERE bucket IS NOT NULL GROUP BY {coarse}, bucket ORDER BY {coarse}, bucket "
        f"ON CONFLICT ({coarse}, bucket, live_shard) {key}, errors = r.errors + excluded.errors",
    ]
    out = []
    step = 86400.0 / args.intervals
    with psycopg.connect(url, autocommit=True) as conn:
        pid = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        for n in range(args.intervals):
            low, high = start + n * step, start + (n + 1) * step
            if n == args.intervals - 1:
                high += step  # (the fill's last event is at the day's end exactly)
            if args.interval_mode == "append":
                # The nightly roll-up's own statements: rows appended, readers sum them.
                before = int(db.fetch("SELECT COUNT(*) AS n FROM audit_rollup_latency")[0]["n"])
                worker = int(db.fetch("SELECT pg_backend_pid() AS p")[0]["p"])
                cpu, started = backend_cpu(worker), time.perf_counter()
                db.transaction(
                    lambda tx, low=low, high=high: rollup._insert_rollups(
                        tx,
                        "audit_events WHERE kind = 'request' AND day = ? AND ts >= ? AND ts < ?",
                        (today.isoformat(), low, high),
                    )
                )
                wall, cpu = time.perf_counter() - started, backend_cpu(worker) - cpu
                after = int(db.fetch("SELECT COUNT(*) AS n FROM audit_rollup_latency")[0]["n"])
                cells, events = after - before, int(args.interval_rows / args.intervals)
            else:
                cpu, started = backend_cpu(pid), time.perf_counter()
                with conn.transaction():
                    conn.execute("SET LOCAL work_mem = '512MB'")
                    conn.execute(fine.replace("%s", "{}").format(f"'{today}'", low, high).encode())
                    events = int(
                        conn.execute("SELECT COALESCE(SUM(requests), 0) FROM fine").fetchone()[0]
                    )
                    cells = int(conn.execute("SELECT COUNT(*) FROM fine").fetchone()[0])
                    for upsert in upserts:
                        conn.execute(upsert.encode())
                    conn.execute("DROP TABLE fine")
                wall, cpu = time.perf_counter() - started, backend_cpu(pid) - cpu
            row = {
                "interval": n,
                "events": events,
                "cells": cells,
                "wall_s": wall,
                "db_cpu_s": cpu,
                "db_cpu_us_per_event": cpu * 1e6 / max(1, events),
            }
            print(json.dumps(row), flush=True)
            out.append(row)
    counted = db.fetch("SELECT SUM(requests) AS n FROM audit_rollup WHERE day = ?", (str(today),))
    by_team = (
        "SELECT team_id, {} AS requests, SUM(cost_usd) AS usd FROM {} "
        "WHERE day = ?{} GROUP BY team_id ORDER BY team_id"
    )
    reads = {}
    for label, sql in (
        (
            "today_by_team_raw_s",
            by_team.format("COUNT(*)", "audit_events", " AND kind = 'request'"),
        ),
        ("today_by_team_rollup_s", by_team.format("SUM(requests)", "audit_rollup", "")),
    ):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            db.fetch(sql, (str(today),))
            times.append(time.perf_counter() - started)
        reads[label] = statistics.median(times)
    rows = db.fetch("SELECT COUNT(*) AS n FROM audit_rollup WHERE day = ?", (str(today),))
    out.append(
        {
            "mode": args.interval_mode,
            "rolled_up_requests": int(counted[0]["n"] or 0),
            "stored": args.interval_rows,
            "audit_rollup_rows_today": int(rows[0]["n"]),
            **reads,
        }
    )
    return out


def exactly_once_checks(db: Database, today: date) -> dict[str, Any]:
    """The PostgreSQL facts the candidate relies on, checked on the real server through
    the drainer's path: a re-delivered batch (its ``COPY`` fails on the key, then each row
    is inserted with ``ON CONFLICT DO NOTHING``) adds nothing; a batch partly new adds the
    new events only; rows routed to the DEFAULT partition (a day without a partition) are
    in the parent's transition table; a day before the cut-over day is not counted."""
    chance = random.Random(99)

    def store(batch: list[dict[str, Any]]) -> None:
        rows = audit.RowBatch(db)
        for event in batch:
            rows.add(event)
        audit.insert_rows(db, rows.rows, rows.copy_text)

    def live(day: date) -> int:
        found = db.fetch(
            "SELECT COALESCE(SUM(requests), 0) AS n FROM audit_rollup "
            "WHERE live_shard IS NOT NULL AND day = ?",
            (day.isoformat(),),
        )
        return int(found[0]["n"])

    db.execute("TRUNCATE audit_events")
    db.execute("DELETE FROM audit_rollup WHERE live_shard IS NOT NULL")
    first = events(200, chance, today, 50)
    store(first)
    store(first)  # re-delivered whole
    store(first[:50] + events(30, chance, today, 50))  # re-delivered in part, 30 new
    later = today + timedelta(days=40)  # no partition: the DEFAULT one
    store(events(25, chance, later, 50))
    before = today - timedelta(days=1)  # a day before the cut-over day
    store(events(10, chance, before, 50))
    in_default = db.fetch(
        "SELECT COUNT(*) AS n FROM audit_events_default WHERE day = ?", (later.isoformat(),)
    )
    return {
        "redelivered_counted_once": live(today) == 230,
        "default_partition_counted": live(later) == 25 and int(in_default[0]["n"]) == 25,
        "day_before_cutover_not_counted": live(before) == 0,
    }


def same(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> bool:
    """The same answer: USD within float summation order (the fill's costs are decimal
    fractions, summed in another order by the roll-up), every other value exactly."""
    return len(left) == len(right) and all(
        {k: v for k, v in a.items() if k != "cost_usd"}
        == {k: v for k, v in b.items() if k != "cost_usd"}
        and abs(a["cost_usd"] - b["cost_usd"]) <= 1e-9 * max(1.0, abs(a["cost_usd"]))
        for a, b in zip(left, right, strict=True)
    )


if __name__ == "__main__":
    raise SystemExit(main())
