"""The audit roll-ups on a real PostgreSQL: what rolling up a day costs per million events,
and what a month's analytics cost read from the roll-up instead of the raw events.

Fills a fresh database (on the server of ``--database-url``, dropped at the end) with
``--days`` days of ``--rows-per-day`` request events each, generated in SQL with a fixed
shape (``--keys`` keys, 1,000 by default, in 50 teams and 200 projects, 4 models (and
deployments) on 2 providers, 3 clouds, a third of the requests naming one of 2
customers: 12 groups a key a day, whatever the volume; status 502 for 2 %; latencies log-uniform over
150 ms .. 1.1 s), as
the gateway stores them (day partitions, the same indexes). Then, per day, oldest
first, it times :func:`gateway_app.governance.rollup.roll_day` (the trigger step and the
aggregate step), and times the analytics over every day (a "month" of ``--days`` days)
read raw (before the roll-up) and from the roll-up (after):

    .venv/bin/python bench/audit_rollup.py \\
        --database-url postgresql://postgres@127.0.0.1:PORT/postgres \\
        --days 5 --rows-per-day 1000000 --out bench/audit-rollup.json

Prints seconds and rows per step; with ``--out``, writes them as JSON. Run it under the
exclusive bench lock (``flock -x /work/bench.lock``) and note the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway_app.governance import analytics, retention, rollup
from gateway_app.governance.storage import Database

FILL = """
INSERT INTO audit_events (event_id, kind, ts, day, month, key_id, team_id, project_id,
    customer, model, provider, deployment, cloud, status, prompt_tokens, completion_tokens,
    cost_usd, latency_ms)
SELECT 'bench.' || %(day)s || '.' || g, 'request', %(start)s + g * 86400.0 / %(rows)s,
    %(day)s, %(month)s, 'k' || (g %% %(keys)s), 't' || ((g %% %(keys)s) %% 50),
    'p' || ((g %% %(keys)s) %% 200), CASE WHEN g %% 3 = 0 THEN 'c' || (g %% 2) END,
    'm' || ((g / %(keys)s) %% 4), 'v' || (((g / %(keys)s) %% 4) %% 2),
    'd' || ((g / %(keys)s) %% 4), 'cloud' || ((g / (4 * %(keys)s)) %% 3), CASE WHEN g %% 50 = 0 THEN 502 ELSE 200 END,
    100 + g %% 900, 10 + g %% 300, (g %% 100) * 0.0001, exp(5.0 + random() * 2.0)
FROM generate_series(1, %(rows)s) AS g
"""


def timed(work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--rows-per-day", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=1000, help="virtual keys (12 groups each)")
    parser.add_argument("--rounds", type=int, default=3, help="timings of each query")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    name = "rollup_bench_" + uuid.uuid4().hex[:8]
    admin = Database(args.database_url)
    admin.execute(f"CREATE DATABASE {name}")
    url = args.database_url.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    result: dict[str, Any] = {
        "days": args.days,
        "rows_per_day": args.rows_per_day,
        "keys": args.keys,
        "loadavg_start": os.getloadavg(),
    }
    try:
        db.migrate()
        today = date(2026, 11, 1) + timedelta(days=args.days)
        days = [today - timedelta(days=n) for n in range(args.days, 0, -1)]
        retention.maintain(db, None, ahead_days=args.days, today=days[0], roll_up=False)
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for day in days:
                conn.execute(
                    FILL,
                    {
                        "day": day.isoformat(),
                        "month": f"{day:%Y-%m}",
                        "start": time.mktime(day.timetuple()),
                        "rows": args.rows_per_day,
                        "keys": args.keys,
                    },
                )
            conn.execute("VACUUM ANALYZE audit_events")

        def month_queries() -> dict[str, float]:
            out = {}
            for label, query in (
                ("usage_by_team", lambda: analytics.usage(db, "team")),
                ("usage_by_key_model", lambda: analytics.usage(db, "key,model")),
                ("latency_by_deployment", lambda: analytics.latency(db, "deployment")),
            ):
                out[label] = statistics.median(timed(query)[0] for _ in range(args.rounds))
            return out

        result["raw_month_queries_s"] = month_queries()
        per_day = []
        for day in days:
            seconds, rows = timed(
                lambda day=day: rollup.roll_day(db, day.isoformat(), retention.late_partitions)
            )
            per_day.append({"day": day.isoformat(), "seconds": seconds, "events": rows})
        result["roll_day"] = per_day
        seconds = [d["seconds"] for d in per_day]
        result["roll_day_s_per_million_events"] = statistics.median(seconds) / (
            args.rows_per_day / 1e6
        )
        db.execute("ANALYZE audit_rollup")
        db.execute("ANALYZE audit_rollup_latency")
        result["rolled_month_queries_s"] = month_queries()
        for table in ("audit_rollup", "audit_rollup_latency", "audit_rollup_latency_coarse"):
            count = db.fetch(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
            size = db.fetch(f"SELECT pg_total_relation_size('{table}') AS b")[0]["b"]
            result[f"{table}_rows_per_day"] = int(count) / args.days
            result[f"{table}_bytes_per_day"] = int(size) / args.days
        partition = retention.partition_name(days[0])
        size = db.fetch(f"SELECT pg_total_relation_size('{partition}') AS b")[0]["b"]
        result["raw_bytes_per_day"] = int(size)
        result["loadavg_end"] = os.getloadavg()
    finally:
        db.close()
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
