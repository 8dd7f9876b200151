"""Redis memory per audit event waiting in the buffer (the cloud's Redis stream).

While PostgreSQL is down, every request's audit event waits in the stream until the
drainers can store it; how long an outage a Redis survives depends on this figure
(docs/operations/sizing.md, "Redis memory"). Starts a private redis-server (the tests'
helper), appends ``--events`` request events of the shape the gateway writes, in both
forms the gateway buffers (``line``: the ``COPY`` line of a PostgreSQL deployment, what
production buffers; ``json``: the JSON object of an SQLite one), as the batcher writes
them (one stream entry per flush, ``--per-entry`` events each: a flush holds what a
replica's requests queued in ``governance.settle_interval_s``, one at a trickle, tens to
hundreds under load), each form and entry size to its own stream, and prints the growth
of ``used_memory`` and ``MEMORY USAGE`` of the stream per event, as JSON.

    .venv/bin/python bench/redis_memory.py --events 100000 --per-entry 1,8,64,256
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson
import redis
from audit_sample import REQUEST_FIELDS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway_app.governance import audit
from gateway_app.state.governance_redis import entry_block
from tests.gateway.governance.services import RedisServer


def _json(*fields: object) -> bytes:
    """The JSON object an SQLite deployment buffers (and the gateway did before lines)."""
    return orjson.dumps(audit.request_event(*fields))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-entry", default="1,8,64,256", help="events per stream entry")
    args = parser.parse_args()
    sizes = [int(n) for n in args.per_entry.split(",")]
    server = RedisServer()
    try:
        client = redis.Redis.from_url(server.url)
        audit.set_cloud("aws")
        out: dict[str, object] = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "redis": client.info("server")["redis_version"],
            "events": args.events,
        }
        for form, build in (("line", audit.request_line), ("json", _json)):
            results: dict[str, object] = {}
            for per_entry in sizes:
                stream = f"{{aigw}}:bench-{form}-{per_entry}"
                before = int(client.info("memory")["used_memory"])
                pipe = client.pipeline(transaction=False)
                size, entry = 0, []
                for i in range(args.events):
                    payload = build(f"req-{i:016x}", *REQUEST_FIELDS)
                    size += len(payload)
                    entry.append(payload)
                    if len(entry) == per_entry or i == args.events - 1:
                        pipe.xadd(stream, {"n": len(entry), "b": entry_block(entry)})
                        entry = []
                    if i % 1000 == 999:
                        pipe.execute()
                pipe.execute()
                after = int(client.info("memory")["used_memory"])
                usage = int(client.memory_usage(stream, samples=0) or 0)
                results[str(per_entry)] = {
                    "payload_bytes": round(size / args.events, 1),
                    "used_memory_per_event": round((after - before) / args.events, 1),
                    "memory_usage_per_event": round(usage / args.events, 1),
                }
                client.delete(stream)
            out[form] = results
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    finally:
        server.stop()


if __name__ == "__main__":
    main()
