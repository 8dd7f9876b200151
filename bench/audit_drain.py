"""The audit path after the request, per event: CPU of the gateway process, two trees.

Every governed request leaves one audit event. After the response it is queued,
appended to the Redis stream by the settlement batcher (its ``MULTI``/``EXEC``
pipeline), read back by a drainer, written to PostgreSQL in a batch and
acknowledged. None of it is on a request's latency, but all of it is CPU of the
gateway process, governance-only, and ``bench/hook_path.py`` sees little of it
(the drainer's database thread is outside cProfile).

This runs each tree's own code (``RedisGovernanceState``'s batcher and
``AuditDrainer.drain_once``, the calls the gateway makes) on a real Redis and
PostgreSQL you started on loopback, on uvloop as the gateway, with events of the
gateway's shape (``audit.request_line``: a request's ``COPY`` line). Per round:
``--events`` events queued, appended (``batcher.drain``) and drained in batches of
``--batch`` (``governance.audit_batch``: 50), ``time.process_time`` around each
part (the database write runs in a worker thread, as in the gateway; process time
counts it), and Redis' ``INFO commandstats`` calls per event. Trees alternate, each
in a fresh interpreter, so both see the same machine load:

    git -C /work/main archive main | tar -x -C /tmp/main-tree
    .venv/bin/python bench/audit_drain.py --tree main=/tmp/main-tree --tree branch=. \\
        --redis-url redis://127.0.0.1:PORT/0 \\
        --database-url postgresql://postgres@127.0.0.1:PORT/DB --rounds 5

Prints per tree the median CPU µs per event of the append and the drain over the
rounds (the first round of each interpreter is a warm-up, not counted) and the
Redis commands per event; ``--out`` writes them as JSON. The database's
``audit_events`` rows this writes are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from trees import run_in_tree

_CHILD = r"""
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[1])
import redis, uvloop
from gateway_app.governance import audit
from gateway_app.governance.storage import Database
from gateway_app.state.governance_redis import RedisGovernanceState

redis_url, db_url = sys.argv[2], sys.argv[3]
events, batch, rounds = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
PREFIX = "{aigw-bench-drain}:"
run = f"{time.time_ns():x}"


def line(i):
    return audit.request_line(
        f"req-{run}-{i:08x}", "key_0123456789abcdef", "team-a", "project-a", None,
        "gpt-4o-mini", "gpt-4o-mini-openai", "openai", 200, 9, 3, 3.15e-06, 1.234,
        None, None, "reported", None,
    )


def calls(client):
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in client.info("commandstats").items()
    }


async def main():
    db = Database(db_url)
    db.migrate()
    state = RedisGovernanceState.from_url(
        redis_url, prefix=PREFIX, flush_interval_s=3600, flush_items=10**9
    )
    drainer = audit.AuditDrainer(state, db, batch=batch, block_s=0.05)
    counter = redis.Redis.from_url(redis_url)
    out = []
    n = 0
    try:
        for _ in range(rounds + 1):
            lines = [line(n + i) for i in range(events)]
            n += events
            for payload in lines:  # the request path's part: queue (no round trip)
                state.batcher.add((), payload)
            before = calls(counter)
            started = time.process_time()
            await state.batcher.drain()
            appended = time.process_time()
            done = 0
            while done < events:
                done += await drainer.drain_once()
            drained = time.process_time()
            after = calls(counter)
            out.append({
                "append_us": (appended - started) / events * 1e6,
                "drain_us": (drained - appended) / events * 1e6,
                "redis_per_event": {
                    name: round((after[name] - before.get(name, 0)) / events, 4)
                    for name in after
                    if name not in ("info", "config|resetstat")
                    and after[name] != before.get(name, 0)
                },
            })
    finally:
        await state.close()
        counter.close()
        db.execute("DELETE FROM audit_events WHERE request_id LIKE ?", (f"req-{run}-%",))
        db.close()
    print(json.dumps(out[1:]))


uvloop.run(main())
"""


def _child(tree: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One interpreter's rounds for ``tree`` (its own gateway_app)."""
    argv = [args.redis_url, args.database_url, str(args.events), str(args.batch)]
    rounds: list[dict[str, Any]] = run_in_tree(
        tree, _CHILD, [*argv, str(args.rounds_per_run)], timeout=600
    )
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH (repeat)")
    parser.add_argument("--redis-url", required=True, help="a redis-server on loopback")
    parser.add_argument("--database-url", required=True, help="a PostgreSQL on loopback")
    parser.add_argument("--events", type=int, default=5000, help="events per round")
    parser.add_argument("--batch", type=int, default=50, help="governance.audit_batch")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the trees")
    parser.add_argument("--rounds-per-run", type=int, default=3, help="rounds per interpreter")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.tree)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, path in trees.items():
            runs[name] += _child(str(Path(path).resolve()), args)
    summary: dict[str, Any] = {"events": args.events, "batch": args.batch, "trees": {}}
    for name, rounds in runs.items():
        commands = sorted({c for r in rounds for c in r["redis_per_event"]})
        figures = {
            "append_us": [round(r["append_us"], 2) for r in rounds],
            "drain_us": [round(r["drain_us"], 2) for r in rounds],
            "append_us_median": round(statistics.median(r["append_us"] for r in rounds), 2),
            "drain_us_median": round(statistics.median(r["drain_us"] for r in rounds), 2),
            "redis_per_event": {
                c: statistics.median(r["redis_per_event"].get(c, 0.0) for r in rounds)
                for c in commands
            },
        }
        summary["trees"][name] = figures
        print(
            f"{name}: append {figures['append_us_median']:.2f} + drain "
            f"{figures['drain_us_median']:.2f} CPU µs per event (medians of {len(rounds)}: "
            f"drain {figures['drain_us']}); Redis per event "
            + ", ".join(f"{c} {v:g}" for c, v in figures["redis_per_event"].items())
        )
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
