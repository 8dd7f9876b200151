"""How long a follower's unshipped count (the ``aigw_gov_audit_unshipped`` gauge) takes at
a backlog of 1 and 3 million events, uncapped and capped (``audit.unshipped_count``), on a
private PostgreSQL cluster started as the tests start it (vacuumed: an index-only count).
Results: ``bench/audit-shipping.md``.

    .venv/bin/python bench/unshipped_count.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway_app.governance import audit
from gateway_app.governance.storage import Database
from tests.gateway.governance.services import PostgresServer

QUERIES = (
    ("uncapped", "SELECT COUNT(*) AS n FROM audit_events WHERE shipped_at IS NULL", ()),
    ("cap 1,000,000", None, (1_000_000,)),
    ("cap 100,000", None, (100_000,)),
)


def main() -> None:
    """Fill a backlog, then time each count (best of 3)."""
    server = PostgresServer()
    server.start()
    try:
        db = Database(server.url)
        db.migrate()
        audit.set_cloud("gcp")
        total = 0
        for target in (1_000_000, 3_000_000):
            while total < target:
                events = [
                    audit.event("request", key_id="k", team_id="t", model="m", latency_ms=5.0)
                    for _ in range(50_000)
                ]
                audit.insert_events(db, events)
                total += len(events)
            db.execute("VACUUM ANALYZE audit_events")
            for label, sql, cap in QUERIES:
                best = float("inf")
                for _ in range(3):
                    started = time.perf_counter()
                    n = db.fetch(sql)[0]["n"] if sql else audit.unshipped_count(db, *cap)
                    best = min(best, time.perf_counter() - started)
                print(f"backlog {total:>9,}: {label:14} counted {n:>9,} in {best * 1000:6.1f} ms")
        db.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
