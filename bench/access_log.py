"""CPU per access line: through the logging machinery, and written directly.

The gateway writes one JSON access line per request (``gateway_app.observability``).
Through the stdlib, a line is a ``LogRecord`` (``makeRecord``), the logger's
``handle`` (filters, the handlers' locks) and the ``JsonFormatter``; written
directly (``BufferedLineHandler.access``, used when nothing but the gateway's own
handler would see the record: ``logs.access_writer``), it is the same JSON object
dumped and buffered. Both with the handler ``logs.configure`` installs, writing to
``/dev/null``, fields of a governed request's line:

    .venv/bin/python bench/access_log.py [--lines 200000] [--repeat 5]

Prints the best of ``--repeat`` runs of ``--lines`` lines, µs per line, each way,
twice (alternated).
"""

from __future__ import annotations

import argparse
import logging
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway_app.observability import logs

FIELDS = {
    "endpoint": "/v1/chat/completions",
    "model": "bench-chat",
    "deployment": "bench-chat#0",
    "provider": "bench",
    "status": 200,
    "stream": False,
    "latency_ms": 1.234,
    "upstream_ms": 0.9,
    "cache": None,
    "attempts": ["bench-chat#0:ok"],
    "overhead_ms": 0.3,
    "key_id": "key_0123456789abcdef",
    "team_id": "team-a",
    "project_id": "project-a",
    "cost_usd": 3.15e-06,
    "prompt_tokens": 9,
    "completion_tokens": 3,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logs.configure(open("/dev/null", "w"))  # noqa: SIM115  (the handler's writer keeps it)
    access = logging.getLogger(logs.ACCESS_LOGGER)
    handler = logs.access_writer(access)
    assert handler is not None, "the access logger is not as logs.configure sets it up"

    def through_logging() -> None:
        access.handle(
            access.makeRecord(
                logs.ACCESS_LOGGER, logging.INFO, __file__, 0, "request", (), None,
                extra={"request_id": "req-0123456789abcdef", "fields": dict(FIELDS)},
            )
        )  # fmt: skip

    def direct() -> None:
        handler.access("req-0123456789abcdef", dict(FIELDS))

    for _ in range(2):
        for way in (through_logging, direct):
            best = min(timeit.repeat(way, number=args.lines, repeat=args.repeat))
            handler.flush()
            print(f"{way.__name__}: {best / args.lines * 1e6:.2f} µs per line")


if __name__ == "__main__":
    main()
