"""The audit path after the request, per event, of two trees: the batcher's appends and the
drainer's passes (read, build, ``COPY``, acknowledgement), CPU of the gateway process.

Each tree is a source checkout (``git archive BASE | tar -x -C /tmp/base``), measured in
its own interpreter (this script run as a child with ``--child PATH``), alternately, so
both see the same machine load:

    .venv/bin/python bench/audit_entries.py --tree base=/tmp/base --tree branch=. \\
        --redis-url redis://127.0.0.1:PORT/0 --database-url postgresql://...@127.0.0.1:PORT/DB \\
        --rounds 3 --events 20000 --per-flush 1,16,64 --batch 50,500

A round, per tree and setting: ``--events`` request events as the gateway buffers them on
PostgreSQL (their ``COPY`` lines, :func:`~gateway_app.governance.audit.request_line`)
are queued in the settle batcher and flushed ``--per-flush`` at a time (what a replica's
requests queue in one ``governance.settle_interval_s``: one at a trickle, tens to
hundreds under load), then drained by the tree's own ``AuditDrainer`` in batches of
``--batch`` (``governance.audit_batch``) into PostgreSQL. ``time.process_time`` (every
thread: the database writes run in a worker thread) around the flushes and around the
drain, per event; the servers are yours, on loopback (bounded: a round is a few seconds).
Prints one JSON object: per tree, per ``per_flush/batch``, each round's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from audit_sample import REQUEST_FIELDS


def _lines(audit: Any, events: int, tag: str) -> list[bytes]:
    return [audit.request_line(f"bench-{tag}-{i:012x}", *REQUEST_FIELDS) for i in range(events)]


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, args.child)
    from gateway_app.governance import audit
    from gateway_app.governance.audit import AuditDrainer
    from gateway_app.governance.storage import Database
    from gateway_app.state.governance_redis import RedisGovernanceState

    db = Database(args.database_url)
    db.migrate()
    out: dict[str, Any] = {}
    for per_flush in (int(n) for n in args.per_flush.split(",")):
        for batch in (int(n) for n in args.batch.split(",")):
            tag = secrets.token_hex(4)
            state = RedisGovernanceState.from_url(
                args.redis_url,
                prefix=f"{{bench-{tag}}}:",
                flush_interval_s=3600,
                flush_items=10**9,
            )
            drainer = AuditDrainer(state, db, batch=batch, block_s=0.01)
            for line in _lines(audit, 200, tag + "w"):  # warm-up: connections, scripts
                state.batcher.add((), line)
            await state.batcher.drain()
            while await drainer.drain_once():
                pass
            lines = _lines(audit, args.events, tag)
            started = time.process_time()
            for at in range(0, len(lines), per_flush):
                for line in lines[at : at + per_flush]:
                    state.batcher.add((), line)
                await state.batcher.drain()
            flushed = time.process_time()
            drained = passes = 0
            while drained < args.events:
                drained += await drainer.drain_once()
                passes += 1
            done = time.process_time()
            await state.close()
            out[f"{per_flush}/{batch}"] = {
                "append_us_per_event": round((flushed - started) / args.events * 1e6, 2),
                "drain_us_per_event": round((done - flushed) / args.events * 1e6, 2),
                "passes": passes,
            }
    db.execute("DELETE FROM audit_events WHERE request_id LIKE ?", ("bench-%",))
    db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH (repeat)")
    parser.add_argument("--redis-url", required=True, help="a redis-server on loopback")
    parser.add_argument("--database-url", required=True, help="a PostgreSQL on loopback")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-flush", default="1,16,64", help="events per batcher flush")
    parser.add_argument("--batch", default="50,500", help="governance.audit_batch values")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import uvloop  # the gateway's event loop

        print(json.dumps(uvloop.run(_child(args))))
        return
    trees = dict(item.split("=", 1) for item in args.tree)
    results: dict[str, Any] = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_before": os.getloadavg(),
        "events": args.events,
        "trees": {name: [] for name in trees},
    }
    for _ in range(args.rounds):
        for name, path in trees.items():
            command = [sys.executable, __file__, "--child", str(Path(path).resolve())]
            command += ["--redis-url", args.redis_url, "--database-url", args.database_url]
            command += ["--events", str(args.events), "--per-flush", args.per_flush]
            command += ["--batch", args.batch]
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
            if done.returncode:
                raise RuntimeError(f"{name}: {done.stderr[-2000:]}")
            results["trees"][name].append(json.loads(done.stdout.splitlines()[-1]))
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
