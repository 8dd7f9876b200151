"""One audit batch's ``COPY``, client CPU: psycopg's ``Copy`` against libpq's own calls.

The audit drain writes each batch with one ``COPY`` on an asyncio connection of its own
(``gateway_app.governance.storage.AsyncAppender``). Before 2026-12-07 it went through
psycopg's cursor and ``AsyncCopy`` (``cursor.copy(statement)`` then ``copy.write(data)``);
now through ``storage._copy_data_async``: libpq's calls on the same connection, without
psycopg's cursor, ``Copy`` object, generators and waits. Both send the same bytes in the
same two round trips. This measures the CPU of this process per batch for each,
alternately, on uvloop as the gateway runs (``time.process_time`` around each write: the
server's work is not counted), with rows of the gateway's shape
(``audit.request_line``)::

    taskset -c 1 .venv/bin/python bench/audit_copy.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/postgres --rows 100

A database of its own is created on that server and dropped after. Prints, per method
and alternation, the mean CPU µs per batch; ``--out`` writes them as JSON. Results:
``bench/partial-lean-copy.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from audit_sample import REQUEST_FIELDS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _lines(run: str, start: int, count: int) -> bytes:
    from gateway_app.governance import audit

    return b"".join(
        audit.request_line(f"copy-{run}-{start + i:08x}", *REQUEST_FIELDS) for i in range(count)
    )


async def _measure(url: str, rows: int, reps: int, alternations: int) -> dict[str, list[float]]:
    import psycopg

    from gateway_app.governance.audit import COLUMNS
    from gateway_app.governance.storage import _copy_data_async, _copy_statement

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    statement = _copy_statement("audit_events", tuple(COLUMNS), conn.info.encoding)
    run, written = uuid.uuid4().hex[:8], 0
    results: dict[str, list[float]] = {"psycopg Copy": [], "libpq calls": []}
    try:
        for _ in range(alternations):
            for method in results:
                spent = 0.0
                for _ in range(reps):
                    data = _lines(run, written, rows)
                    written += rows
                    began = time.process_time()
                    if method == "psycopg Copy":
                        async with conn.cursor() as cursor, cursor.copy(statement) as copy:
                            await copy.write(data)
                    else:
                        await _copy_data_async(conn.pgconn, statement, data, conn.info.encoding)
                    spent += time.process_time() - began
                results[method].append(spent / reps * 1e6)
        cursor = await conn.execute("SELECT COUNT(*) FROM audit_events")
        stored = (await cursor.fetchone() or (0,))[0]
        if stored != written:
            raise RuntimeError(f"{stored} rows stored of {written}")
    finally:
        await conn.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL on loopback")
    parser.add_argument("--rows", type=int, default=100, help="rows per batch")
    parser.add_argument("--reps", type=int, default=200, help="batches per measurement")
    parser.add_argument("--alternations", type=int, default=3)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    import psycopg
    import uvloop

    from gateway_app.governance.storage import Database

    name = f"aigw_copy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = args.database_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        db = Database(url)
        db.migrate()
        db.close()
        results: Any = uvloop.run(_measure(url, args.rows, args.reps, args.alternations))
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    for method, figures in results.items():
        shown = ", ".join(f"{f:.1f}" for f in figures)
        print(
            f"{method}: {statistics.median(figures):.1f} CPU µs per batch of {args.rows} rows ({shown})"
        )
    if args.out:
        Path(args.out).write_text(
            json.dumps({"rows": args.rows, "reps": args.reps, **results}, indent=1)
        )


if __name__ == "__main__":
    main()
