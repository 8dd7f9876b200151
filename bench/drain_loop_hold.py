"""How long an audit drain pass holds the event loop: what a request that arrives meanwhile waits.

The gateway's drainer shares the loop with the requests. This runs the gateway's own
:class:`~gateway_app.governance.audit.AuditDrainer` on uvloop against a real Redis and
PostgreSQL (loopback, servers you started), with a task beside it that yields to the
loop over and over (``await asyncio.sleep(0)``) and records the gap between its turns:
the longest step of anything else on the loop, as a request ready to run would wait
for it (a timer would not do: uvloop's timers have a 1 ms resolution). Each round
queues ``--batch`` events (``governance.audit_batch``: 500) through the settlement
batcher, then runs one drain pass (read, decode, rows, ``COPY``, acknowledge) with the
task turning. Prints the gaps during the passes (p50/p99/max, gaps over 0.3 and 1 ms),
the loop thread's own CPU within each gap (its work holding the loop: neither the
scheduler's preemption nor a wait for the GIL advances that clock), the pass's wall time
and the process CPU per event, and with ``--out`` writes them. The task keeps the loop
busy, as a loaded gateway's requests do, so the database thread competes with it for
the GIL.

The gateway code is the tree on ``sys.path`` first: ``AIGW_TREE=/path/to/checkout``
measures another checkout (e.g. main, before a change) with this script:

    AIGW_TREE=/tmp/main .venv/bin/python bench/drain_loop_hold.py \\
        --redis-url redis://127.0.0.1:PORT/0 \\
        --database-url postgresql://postgres@127.0.0.1:PORT/DB --rounds 20

A gap also counts the machine's own scheduling (another process on the CPU):
compare trees in the same session, alternately.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("AIGW_TREE", str(Path(__file__).resolve().parent.parent)))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from audit_drain import _event

from gateway_app.governance import audit
from gateway_app.governance.storage import Database
from gateway_app.state.governance_redis import RedisGovernanceState

_GC: dict[str, list[float]] = {}
_gc_started = [0.0]


def _gc_pause(phase: str, info: dict) -> None:
    """Each collection's pause, by generation (a gap the drainer's allocations caused)."""
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        pause = time.perf_counter() - _gc_started[0]
        _GC.setdefault(f"gen{info['generation']}", []).append(pause)


async def _round(drainer: audit.AuditDrainer, state: RedisGovernanceState, batch: int) -> dict:
    for i in range(batch):
        state.batcher.add([], _event(i))
    await state.batcher.drain()
    gaps: list[float] = []
    busy: list[float] = []  # the loop thread's own CPU in each gap
    running = True

    async def turns() -> None:
        last, last_cpu = time.perf_counter(), time.thread_time()
        while running:
            await asyncio.sleep(0)
            now, cpu = time.perf_counter(), time.thread_time()
            gaps.append(now - last)
            busy.append(cpu - last_cpu)
            last, last_cpu = now, cpu

    task = asyncio.get_running_loop().create_task(turns())
    await asyncio.sleep(0)  # the task is turning before the pass starts
    gaps.clear()
    busy.clear()
    started, cpu = time.perf_counter(), time.process_time()
    drained = await drainer.drain_once()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    running = False
    await task
    if drained != batch:
        raise RuntimeError(f"drained {drained} events, expected {batch}")
    return {"gaps": gaps, "busy": busy, "wall_s": wall, "cpu_s": cpu}


async def _main(args: argparse.Namespace) -> dict:
    state = RedisGovernanceState.from_url(args.redis_url)
    db = Database(args.database_url)
    await asyncio.to_thread(db.migrate)
    drainer = audit.AuditDrainer(state, db, batch=args.batch, block_s=0.05)
    try:
        await _round(drainer, state, args.batch)  # warm-up: connections, psycopg's adapters
        # As the gateway after its start-up (GatewayApp.startup): the cyclic GC does not
        # rescan the imported modules in every full collection.
        gc.collect()
        gc.freeze()
        gc.callbacks.append(_gc_pause)
        rounds = [await _round(drainer, state, args.batch) for _ in range(args.rounds)]
    finally:
        await state.close()
        await asyncio.to_thread(db.close)
    gaps = sorted(x for r in rounds for x in r["gaps"])
    busy = sorted(x for r in rounds for x in r["busy"])
    per_pass_max = [max(r["gaps"], default=0.0) for r in rounds]
    return {
        "tree": os.environ.get("AIGW_TREE", "this checkout"),
        "batch": args.batch,
        "rounds": args.rounds,
        "load": os.getloadavg(),
        "turns": len(gaps),
        "gap_ms": {
            "p50": round(gaps[len(gaps) // 2] * 1e3, 3),
            "p99": round(gaps[int(len(gaps) * 0.99)] * 1e3, 3),
            "p99_9": round(gaps[int(len(gaps) * 0.999)] * 1e3, 3),
            "max": round(gaps[-1] * 1e3, 3),
        },
        "gaps_over_0_3ms": sum(1 for x in gaps if x > 0.0003),
        "gaps_over_1ms": sum(1 for x in gaps if x > 0.001),
        # The loop thread's own CPU within a gap: its work (decoding, parsing) holding the
        # loop, whatever the scheduler or the GIL added (neither advances this clock).
        "loop_cpu_in_gap_ms": {
            "p99_9": round(busy[int(len(busy) * 0.999)] * 1e3, 3),
            "max": round(busy[-1] * 1e3, 3),
        },
        "gaps_with_loop_cpu_over_0_3ms": sum(1 for x in busy if x > 0.0003),
        "gaps_with_loop_cpu_over_1ms": sum(1 for x in busy if x > 0.001),
        "per_pass_longest_gap_ms_median": round(statistics.median(per_pass_max) * 1e3, 3),
        "gc_pauses_ms": {
            generation: {"count": len(pauses), "max": round(max(pauses) * 1e3, 3)}
            for generation, pauses in sorted(_GC.items())
        },
        "pass_wall_ms_median": round(statistics.median(r["wall_s"] for r in rounds) * 1e3, 2),
        "cpu_us_per_event_median": round(
            statistics.median(r["cpu_s"] for r in rounds) / args.batch * 1e6, 2
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    import uvloop

    result = uvloop.run(_main(args))
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
