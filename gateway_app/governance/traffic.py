"""What the governance path asks of Redis and PostgreSQL: the documented counts, in one place.

:data:`TRAFFIC` is the single source: ``python -m docgen`` renders it into
``docs/explanation/performance.md`` (the table operators size Redis and
PostgreSQL from, see ``docs/operations/sizing.md``), and
``tests/gateway/governance/test_scale_out.py`` counts what a real Redis and
PostgreSQL did for a few hundred requests through ``serve --workers N`` and
through N replicas, and holds the gateway to this table. A change to the hot
path's traffic (a new command, one more round trip, replica-local admission)
changes a row here; the test and the docs follow.

Counts are per *unit* (:class:`Per`): per request, per limited scope of a
request, per full audit batch, or per process and second (background work whose
cost does not grow with traffic). An ``exact`` row is an equality; the others
are upper bounds (batching shares one round trip between many requests, so the
amortised figure is lower under load). Redis commands are those the gateway
sends (a Lua script's own calls run inside Redis: see :data:`SCRIPT_CALLS`);
``EVALSHA <name>`` names the script. Not counted: a connection's set-up
(``HELLO``, ``CLIENT SETNAME``, loading a script on its first ``NOSCRIPT``, the
consumer group's creation, ``SUBSCRIBE``) and admin writes (one ``PUBLISH``
each).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Per(Enum):
    """What a row's counts are per."""

    REQUEST = "request"
    SCOPE = "limited scope of a request"
    AUDIT_BATCH = "full audit batch (governance.audit_batch events, 50)"
    PROCESS_SECOND = "process, per second"
    DEPLOYMENT_SECOND = "deployment in use, per process and second"


@dataclass(frozen=True)
class Traffic:
    """One kind of traffic: at most (or, if ``exact``, exactly) this much per ``per``."""

    name: str
    per: Per
    redis_commands: dict[str, float] = field(default_factory=dict)
    redis_round_trips: float = 0
    postgres_rows: int = 0
    postgres_statements: float = 0
    postgres_transactions: float = 0
    exact: bool = False
    note: str = ""


#: A connection's set-up (and a script's first load, by ``EVAL`` after ``NOSCRIPT``):
#: a few per connection, whatever the traffic.
SETUP_COMMANDS = frozenset({"AUTH", "CLIENT", "EVAL", "HELLO", "SELECT", "SUBSCRIBE", "XGROUP"})

#: The reservation script's own Redis calls per limited scope (RPM and TPM: GET of the
#: current and previous minute, then INCRBY and EXPIRE; budgets, day and month: GET, then
#: INCRBY and EXPIRE). They cost Redis CPU but no round trip.
SCRIPT_CALLS = {"GET": 6, "INCRBY": 4, "EXPIRE": 4}

TRAFFIC: tuple[Traffic, ...] = (
    Traffic(
        "reservation",
        Per.REQUEST,
        {"EVALSHA reserve": 1},
        redis_round_trips=1,
        exact=True,
        note="every scope's limits and budgets in one Lua script, before the upstream call; "
        "the only round trip a request waits for (a process's concurrent requests share it). "
        "The exact path: near a limit, or with `governance.admission` off; far from the "
        "limits a replica admits from chunks it reserved and most requests make none "
        "(measured: one per 110-113 requests with the default chunks of 128 requests' "
        "worth, bench/partial-admission-chunk.md; "
        "docs/explanation/governance.md#round-trips-per-request)",
    ),
    Traffic(
        "audit event",
        Per.REQUEST,
        postgres_rows=1,
        exact=True,
        note="queued in the process's memory (on PostgreSQL as its `COPY` line), appended to "
        "the audit stream by the next batcher flush (no command of its own), written to "
        "`audit_events` by a drainer: a line of its batch's `COPY`, no statement of its own "
        "(a re-delivered batch: one `INSERT ... ON CONFLICT` per row)",
    ),
    Traffic(
        "batcher flush",
        Per.REQUEST,
        {"MULTI": 1, "EXEC": 1, "XADD": 1, "INCRBY": 1},
        redis_round_trips=1,
        note="one pipeline per `governance.settle_interval_s` (20 ms; or per 256 events) per "
        "process, shared by every request in it: at most one per request, far fewer under "
        "load. Its audit events are one entry of the audit stream (one `XADD`, with the "
        "`INCRBY` of the stream's event counter; an entry per 256 events when a flush "
        "carries more, after an outage)",
    ),
    Traffic(
        "audit floor",
        Per.REQUEST,
        {"HSET": 1},
        note="global plane followers only: the replica's audit floor, in each batcher flush "
        "(and a flush of it alone once a second when idle), for the audit shipper's "
        "completeness claim",
    ),
    Traffic(
        "settlement",
        Per.SCOPE,
        {"INCRBY": 3},
        note="the cost and token corrections (budget day and month, TPM), in the flush's "
        "pipeline, summed per key",
    ),
    Traffic(
        "audit drain, full batches",
        Per.AUDIT_BATCH,
        {"XREADGROUP": 3, "EVALSHA audit-ack": 1},
        redis_round_trips=3,
        postgres_statements=1,
        postgres_transactions=1,
        note="under load a drainer reads, writes (one `COPY`, a transaction of its own) and "
        "acknowledges one batch after another (one script: `XACK`, `XDEL` and the event "
        "counter), the acknowledgement sent with the next batch's first read, in one round "
        "trip (a partial batch's, before the drainer waits: its own round trip, as in the "
        "per-second row); a read takes whole stream entries (a flush's events each), its `COUNT` "
        "chosen from the events per entry last read, so a batch takes one read, or two or "
        "three as flushes grow or shrink; entries read past `governance.audit_batch` stay "
        "pending and the next pass reads them first (one more `XREADGROUP`), as after a "
        "failed write",
    ),
    Traffic(
        "audit drain",
        Per.PROCESS_SECOND,
        {"XREADGROUP": 5, "XAUTOCLAIM": 3, "EVALSHA audit-ack": 4},
        redis_round_trips=11.2,
        postgres_statements=4,
        postgres_transactions=4,
        note="at most one pass per 0.2 s (an empty read blocks that long) or per "
        "`governance.audit_interval_s` (0.25 s) after a partial batch (usually one read each); "
        "each read covers the audit streams of the releases before too (`audit-v2`, "
        "`audit`); a dead replica's idle entries are claimed every 0.5 s (the previous "
        "releases' streams: every 5 s, both in one round trip; 2.4 a second on average, up "
        "to 3 in a second that holds both)",
    ),
    Traffic(
        "circuit breakers",
        Per.PROCESS_SECOND,
        redis_round_trips=4,
        note="the successes counted locally, sent as one pipeline per 0.25 s while calls succeed",
    ),
    Traffic(
        "circuit breaker state",
        Per.DEPLOYMENT_SECOND,
        {"EVALSHA circuit-record": 4, "EVALSHA circuit-acquire": 4},
        note="in the pipeline above: one record and, for a state older than 0.5 s, one re-read",
    ),
    Traffic(
        "Redis memory reading",
        Per.PROCESS_SECOND,
        {"INFO": 1},
        redis_round_trips=1,
        note="`INFO memory` before a batcher flush, at most once a second "
        "(`redis.buffer_below_memory`: above it the audit events wait in the process); the "
        "response stores read it too when they write, at most every `redis.memory_check_s`",
    ),
    Traffic(
        "connection upkeep",
        Per.PROCESS_SECOND,
        {"PING": 1},
        redis_round_trips=1,
        note="redis-py's health check of a pooled connection idle for 15 s",
    ),
    Traffic(
        "key reload",
        Per.PROCESS_SECOND,
        postgres_statements=0.3,
        postgres_transactions=0.1,
        note="keys, limits and projects read again every `governance.key_refresh_s` (10 s): "
        "the bound on a lost revocation announcement",
    ),
)


def _number(value: float) -> str:
    return f"{value:g}" if value else "0"


def markdown() -> str:
    """The table as Markdown (rendered into the docs by ``python -m docgen``)."""
    lines = [
        "| traffic | per | Redis commands | Redis round trips | PostgreSQL rows | "
        "statements | transactions | note |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for row in TRAFFIC:
        bound = "" if row.exact else "≤ "
        commands = ", ".join(f"`{name}` {bound}{n}" for name, n in row.redis_commands.items())
        cells = [
            row.name,
            row.per.value,
            commands or "—",
            *(
                f"{bound}{_number(value)}" if value else "0"
                for value in (
                    row.redis_round_trips,
                    row.postgres_rows,
                    row.postgres_statements,
                    row.postgres_transactions,
                )
            ),
            row.note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    script = ", ".join(f"`{name}` {n}" for name, n in SCRIPT_CALLS.items())
    lines += [
        "",
        f"Inside Redis, the reservation script calls per limited scope: {script} "
        "(they cost Redis CPU, not round trips).",
    ]
    return "\n".join(lines) + "\n"
