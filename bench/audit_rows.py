"""In process: a request's audit event, buffered as JSON or as its COPY line (issue 24 item 1).

Two steps per request, each timed with ``timeit`` (best of ``--repeat`` x ``--number``):

- the settle's event step: the event as the buffer holds it (``Governance.settle``);
- the drainer's step: that payload into the batch's ``COPY`` text (``AuditDrainer._build``).

``settle_line_uncached`` is the alternative not kept: the same line without the cached
fragments (every column escaped per request).

Run from a tree's directory (``PYTHONPATH=<tree>``) with the worktree's ``.venv``; a tree
without ``audit.request_line`` (main before ``bench/partial-audit-rows.md``) gets the JSON
figures only::

    PYTHONPATH=. flock -x /work/bench.lock .venv/bin/python bench/audit_rows.py --out r.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import timeit
from typing import Any

import orjson

from gateway_app.governance import audit
from gateway_app.governance.storage import CopyText

# A settle-shaped request (the benchmark's): key, team, project, route; no customer.
FIELDS = (
    "req-0123456789abcdef",
    "key_6481b2f5426333a4",
    "bench-team",
    "bench-project",
    None,
    "bench-chat",
    "bench/bench-model",
    "bench",
    200,
    11,
    9,
    7.05e-06,
    1.234,
    None,
    None,
    "reported",
    None,
)


def _best(step: Any, number: int, repeat: int) -> float:
    """µs per call, the best of ``repeat`` runs of ``number`` calls."""
    return min(timeit.repeat(step, number=number, repeat=repeat)) / number * 1e6


def measure(number: int, repeat: int) -> dict[str, float]:
    """The steps this tree has, in µs per request."""
    json_payload = orjson.dumps(audit.request_event(*FIELDS))
    adapt = CopyText.create()
    assert adapt is not None
    copy_text = CopyText.create(adapt.adapt)
    assert copy_text is not None

    def json_drain() -> None:
        copy_text.add(audit.decode(json_payload))
        if len(copy_text.data) > 1 << 20:
            copy_text.data.clear()

    results = {
        "settle_json": _best(lambda: orjson.dumps(audit.request_event(*FIELDS)), number, repeat),
        "drain_json": _best(json_drain, number, repeat),
    }
    request_line = getattr(audit, "request_line", None)
    if request_line is not None:
        line = request_line(*FIELDS)
        rows: list[Any] = []
        data = bytearray()

        def line_drain() -> None:
            # RowBatch.add_line's work: the shape check, the row, the COPY text.
            if line[-1:] != b"\n" or line.count(9) != 24 or line.count(10) != 1:
                raise ValueError
            rows.append(line)
            data.extend(line)
            if len(rows) > 10_000:
                rows.clear()
                data.clear()

        class _Db:
            kind = "postgres"

        batch = audit.RowBatch(_Db(), adapt.adapt)  # type: ignore[arg-type]

        def batch_drain() -> None:
            batch.add_line(line)
            if len(batch.rows) > 10_000:
                batch.rows.clear()
                assert batch.copy_text is not None
                batch.copy_text.data.clear()

        field, null = audit.copy_field, audit.NULL

        def uncached(
            request_id: str, key_id: Any, team_id: Any, project_id: Any, customer: Any,
            model: Any, deployment: Any, provider: Any, status: Any, prompt_tokens: int,
            completion_tokens: int, cost_usd: Any, latency_ms: float, cache_outcome: Any,
            rejection: Any, usage_source: Any, detail: Any,
        ) -> bytes:  # fmt: skip
            # The alternative not kept: the same line, every column escaped per request.
            now = time.time()
            day = audit._DAY
            return (
                f"{audit._ID_PREFIX}{next(audit._ID_COUNTER):012x}\trequest\t{now!r}\t"
                f"{day[3]}{field(request_id)}\t{field(key_id)}\t{field(team_id)}\t"
                f"{field(project_id)}\t{field(customer)}\t{field(model)}\t"
                f"{field(deployment)}\t{field(provider)}\t"
                f"{null if status is None else status}\t{prompt_tokens}\t{completion_tokens}\t"
                f"{null if cost_usd is None else repr(cost_usd)}\t{latency_ms!r}\t"
                f"{field(cache_outcome)}\t{field(rejection)}\t{field(usage_source)}\t"
                f"{field(audit._CLOUD)}\t{null}\t{null}\t"
                f"{null if detail is None else field(orjson.dumps(detail).decode())}\n"
            ).encode()

        assert uncached(*FIELDS).split(b"\t", 3)[3] == line.split(b"\t", 3)[3]
        results["settle_line"] = _best(lambda: request_line(*FIELDS), number, repeat)
        results["settle_line_uncached"] = _best(lambda: uncached(*FIELDS), number, repeat)
        results["drain_line"] = _best(batch_drain, number, repeat)
        results["drain_line_inlined"] = _best(line_drain, number, repeat)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = os.getloadavg()
    results = measure(args.number, args.repeat)
    record = {
        "started": started,
        "tree": os.path.abspath(audit.__file__).rsplit("/gateway_app/", 1)[0],
        "python": platform.python_version(),
        "number": args.number,
        "repeat": args.repeat,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "us_per_request": results,
    }
    with open(args.out, "w") as out:
        json.dump(record, out, indent=2)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
