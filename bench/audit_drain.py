"""The audit path after the request, per event: CPU of the gateway process in each step.

Every governed request leaves one audit event. After the response it is queued,
appended to the Redis stream by the settlement batcher (one ``XADD`` in a
pipeline shared by many requests), read back by a drainer (``XREADGROUP``),
decoded, written to PostgreSQL in a batch and acknowledged (``XACK`` +
``XDEL``). None of it is on a request's latency, but all of it is CPU of the
gateway process, governance-only: ``bench/hook_path.py`` drives requests and
sees little of it (embedded SQLite; the drainer's thread is outside cProfile).

This measures each step with the gateway's own code on a real Redis and
PostgreSQL (loopback, servers you started), on uvloop as the gateway, in batches of ``--batch`` events
(``governance.audit_batch``: 500), ``process_time`` around each step (the
database write runs in a worker thread, as in the gateway; process time counts
it). The write is measured two ways on fresh events, alternately:
``executemany`` (an ``INSERT ... ON CONFLICT DO NOTHING`` per row, the gateway
before issue 24's settle step) and ``copy`` (:meth:`Database.append_new`, the
gateway's write now):

    .venv/bin/python bench/audit_drain.py --redis-url redis://127.0.0.1:PORT/0 \\
        --database-url postgresql://postgres@127.0.0.1:PORT/DB --rounds 5

Prints µs of CPU per event per step (median over rounds) and, with ``--out``,
writes them as JSON. Also the settlement batcher's CPU per flush for a few
events per flush (each with a request's 12 counter corrections): what
``governance.settle_interval_s`` trades against (at R requests per second a
replica flushes R x interval events at a time, at most 256).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway_app.governance import audit
from gateway_app.governance.storage import Database
from gateway_app.state.governance_redis import RedisGovernanceState

_INSERT = (
    f"INSERT INTO audit_events ({', '.join(audit.COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(audit.COLUMNS))}) ON CONFLICT (event_id) DO NOTHING"
)


def _event(i: int) -> bytes:
    """One request's event as ``Governance.settle`` encodes it (a served chat call)."""
    return orjson.dumps(
        audit.event(
            "request",
            request_id=f"req-{i:016x}",
            key_id="key_0123456789abcdef",
            team_id="team-a",
            project_id="project-a",
            customer=None,
            model="gpt-4o-mini",
            deployment="gpt-4o-mini-openai",
            provider="openai",
            status=200,
            prompt_tokens=9,
            completion_tokens=3,
            cost_usd=3.15e-06,
            latency_ms=1.234,
            cache_outcome=None,
            rejection=None,
            usage_source="reported",
            detail=None,
        )
    )


class Clock:
    """Process CPU (every thread) per step, summed over a round."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self._at = time.process_time()

    def lap(self, step: str) -> None:
        now = time.process_time()
        self.steps[step] = self.steps.get(step, 0.0) + now - self._at
        self._at = now


async def _round(
    state: RedisGovernanceState, db: Database, events: int, batch: int, write: str
) -> dict[str, float]:
    payloads = [_event(i) for i in range(events)]
    clock = Clock()
    for payload in payloads:  # the request path's part: queue (no round trip)
        state.batcher.add([], payload)
    clock.lap("queue")
    await state.batcher.drain()  # the batcher's XADD pipelines
    clock.lap("append (batcher XADD)")
    done = 0
    while done < events:
        entries = await state.read_audit(batch, 0.2)
        clock.lap("read (XREADGROUP)")
        decoded = [orjson.loads(payload) for _, payload in entries]
        clock.lap("decode (orjson)")
        rows = [audit.row(event) for event in decoded]
        clock.lap("rows")
        if write == "copy":
            await asyncio.to_thread(db.append_new, "audit_events", audit.COLUMNS, "event_id", rows)
        else:
            await asyncio.to_thread(db.executemany, _INSERT, rows)
        clock.lap(f"write ({write})")
        await state.ack([entry_id for entry_id, _ in entries])
        clock.lap("ack (XACK + XDEL)")
        done += len(entries)
    return {step: seconds / events * 1e6 for step, seconds in clock.steps.items()}


# A request's corrections: TPM at 4 levels, the day's and month's budget at 4 levels.
_DELTAS = [(f"{{aigw-bench}}:c{i}", -5) for i in range(12)]


async def _flush_cost(state: RedisGovernanceState, sizes: tuple[int, ...]) -> dict[str, float]:
    """CPU µs per flush carrying ``n`` requests' settlements and events, per size."""
    batcher, payload, flushes = state.batcher, _event(0), 300
    costs = {}
    for n in sizes:
        started = time.process_time()
        for _ in range(flushes):
            for _ in range(n):
                batcher.add(_DELTAS, payload)
            await batcher.drain()
        costs[str(n)] = round((time.process_time() - started) / flushes * 1e6, 1)
    await state.hot.pipeline([("DEL", state.stream, *(key for key, _ in _DELTAS))])
    return costs


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    db = Database(args.database_url)
    db.migrate()
    state = RedisGovernanceState.from_url(
        args.redis_url, prefix="{aigw-bench}:", flush_interval_s=3600, flush_items=10**9
    )
    results: dict[str, list[dict[str, float]]] = {"executemany": [], "copy": []}
    try:
        await _round(state, db, args.batch, args.batch, "copy")  # warm-up: connections
        for _ in range(args.rounds):
            for write in results:
                results[write].append(await _round(state, db, args.events, args.batch, write))
        flush = await _flush_cost(state, (1, 3, 10, 30, 100))
    finally:
        await state.close()
        db.execute("DELETE FROM audit_events WHERE request_id LIKE ?", ("req-%",))
        db.close()
    summary: dict[str, Any] = {"events": args.events, "batch": args.batch, "rounds": args.rounds}
    for write, rounds in results.items():
        steps = {
            step: statistics.median(r[step] for r in rounds)
            for step in rounds[0]
            if step != "queue"
        }
        steps["total"] = sum(steps.values())
        summary[write] = {step: round(value, 2) for step, value in steps.items()}
    summary["flush_cpu_us_by_requests"] = flush
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", required=True, help="a redis-server on loopback")
    parser.add_argument("--database-url", required=True, help="a PostgreSQL on loopback")
    parser.add_argument("--events", type=int, default=5000, help="events per round")
    parser.add_argument("--batch", type=int, default=500, help="governance.audit_batch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    import uvloop  # the gateway's event loop

    summary = uvloop.run(_main(args))
    for write in ("executemany", "copy"):
        steps = summary[write]
        print(f"{write}: " + ", ".join(f"{step} {value:.1f}" for step, value in steps.items()))
    print(
        "batcher CPU µs per flush of N requests: "
        + ", ".join(f"N={n}: {us:.0f}" for n, us in summary["flush_cpu_us_by_requests"].items())
    )
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
