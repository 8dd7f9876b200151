"""Sizing figures: the governance path's requests/s per core and its Redis/PostgreSQL load.

For ``docs/operations/sizing.md``. The full governance path (virtual key; RPM,
TPM, daily and monthly budget on five scopes: organisation, team, project, key,
customer; audit into PostgreSQL through the Redis stream) as ``bench/bench.py``
runs it: nginx as the fake upstream, wrk as the load, a private redis-server
and PostgreSQL, everything on loopback. Two placements:

- ``1 worker``: the gateway pinned on CPU 1; nginx, wrk, Redis and PostgreSQL
  on CPU 0 (the per-core figure);
- ``2 workers``: ``serve --workers 2`` unpinned (on both CPUs, sharing them with
  the rest: its req/s is a floor; the CPU per request is the figure to use).

Per run (wrk, ``--seconds`` each at 16 and 64 connections) it records the
gateway's req/s and CPU µs per request (its processes' user + system time), and
what Redis and PostgreSQL did meanwhile: Redis commands per command
(``INFO commandstats``, the script's own calls included), commands processed,
read events (``total_reads_processed``: one per client write Redis reads, the
server-side view of round trips; a large pipeline may take more than one), CPU
seconds (``used_cpu_user`` + ``used_cpu_sys``) and network bytes; PostgreSQL
audit rows inserted, write transactions (transaction ids consumed), commits
(``pg_stat_database``) and WAL bytes. Each is also given per 1,000 requests/s
(``per_1k_rps``: the amount per second divided by thousands of req/s).

Raw results, with the command, time, machine and load average, go to
``bench/scale-out.json``. Needs nginx, wrk, redis-server and PostgreSQL (as
``bench/run`` installs)::

    .venv/bin/python bench/scale_out.py --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psycopg

import bench as b  # bench/bench.py (this directory comes first on the path)

OUT = b.BENCH / "scale-out.json"
CUSTOMER = {"x-aigw-customer": "bench-customer"}  # the fifth limited scope


def redis_info() -> dict[str, Any]:
    """The counters this run reads from ``INFO``, as numbers."""
    info: dict[str, Any] = {"commands": {}}
    for line in b.redis_cli("info", "all").splitlines():
        if line.startswith("cmdstat_"):
            name = line.split(":")[0].removeprefix("cmdstat_")
            info["commands"][name] = int(line.split("calls=")[1].split(",")[0])
        elif ":" in line:
            key, _, value = line.partition(":")
            if key in (
                "total_commands_processed",
                "total_reads_processed",
                "total_net_input_bytes",
                "total_net_output_bytes",
                "used_cpu_user",
                "used_cpu_sys",
            ):
                info[key] = float(value)
    info["cpu_s"] = info.pop("used_cpu_user") + info.pop("used_cpu_sys")
    return info


def postgres_counters() -> dict[str, float]:
    """Audit rows, transaction ids, commits and the WAL position of the run's database."""
    with psycopg.connect(b._PG["url"], autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT (SELECT count(*) FROM audit_events),"
            " pg_snapshot_xmax(pg_current_snapshot())::text::bigint,"
            " (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"
        ).fetchone()
    assert row is not None
    rows, xid, commits, wal = (float(value) for value in row)
    return {"audit_rows": rows, "write_transactions": xid, "commits": commits, "wal_bytes": wal}


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in after.items():
        if isinstance(value, dict):
            out[key] = {k: v - before.get(key, {}).get(k, 0) for k, v in value.items()}
            out[key] = {k: v for k, v in out[key].items() if v}
        else:
            out[key] = value - before[key]
    return out


def per_1k_rps(amounts: dict[str, Any], seconds: float, rps: float) -> dict[str, Any]:
    """Each amount per second, divided by thousands of requests per second."""
    scale = 1.0 / seconds / (rps / 1000.0)
    return {
        key: (
            {k: round(v * scale, 1) for k, v in value.items()}
            if isinstance(value, dict)
            else round(value * scale, 4 if key == "cpu_s" else 1)
        )
        for key, value in amounts.items()
    }


def run(
    workers: int,
    seconds: int,
    conns: tuple[int, ...],
    work: Path,
    upstream: int,
    admission: bool = True,
) -> dict:
    """One placement: start, prepare the key and limits, warm up, then wrk per connections.

    ``admission=False``: ``governance.admission.enabled: false``, every request on the
    exact path (one reservation script per request: what traffic near its limits costs).
    """
    cpu = b.CPU_TARGET if workers == 1 else None
    target = b.governed("httptools", sys.executable, f"governance, {workers} worker(s)", "")
    extra = b.GOVERNANCE_CONFIG + ("" if admission else "  admission:\n    enabled: false\n")
    target.start = b.gateway(
        "httptools",
        "raw",
        sys.executable,
        redis=True,
        postgres=True,
        extra_config=extra,
        extra_env={"AIGW_ADMIN_KEY": b.ADMIN_KEY},
        workers=workers,
    )
    proc, port = target.start(work, upstream, cpu)
    assert proc is not None
    try:
        b.prepare_governance(target, port)
        target.headers.update(CUSTOMER)
        if workers > 1:
            # A worker still starting when the limits were set misses their announcement
            # and applies them at its next reload (governance.key_refresh_s, 10 s): wait,
            # or its first requests run without limits (a cheaper script).
            time.sleep(11)
        b.wrk(port, target.path, target.headers, b.REQUEST, 16, 3, work)  # warm-up
        time.sleep(1.0)  # the warm-up's audit drained
        result: dict[str, Any] = {"workers": workers, "cpu": cpu or "unpinned", "runs": {}}
        for count in conns:
            redis_before, pg_before = redis_info(), postgres_counters()
            cpu_before = b.cpu_seconds(proc.pid)
            began = time.monotonic()
            load = b.wrk(port, target.path, target.headers, b.REQUEST, count, seconds, work)
            gateway_cpu = b.cpu_seconds(proc.pid) - cpu_before
            # Until the audit of every request is in PostgreSQL (the drainers' batches).
            expected = pg_before["audit_rows"] + load["requests"]
            deadline = time.monotonic() + 30
            while postgres_counters()["audit_rows"] < expected and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)  # pg_stat_database reports at most once a second
            elapsed = time.monotonic() - began
            redis = delta(redis_info(), redis_before)
            postgres = delta(postgres_counters(), pg_before)
            rps = load["rps"]
            result["runs"][f"c{count}"] = {
                "connections": count,
                "wrk_seconds": seconds,
                "window_seconds": round(elapsed, 2),
                "requests": load["requests"],
                "errors": load["errors"],
                "rps": round(rps, 1),
                "latency_us": {k: load.get(k) for k in ("p50", "p90", "p99")},
                "gateway_cpu_us_per_request": round(1e6 * gateway_cpu / load["requests"], 1),
                "rps_per_core": round(load["requests"] / gateway_cpu, 1),
                "redis": redis,
                "postgres": postgres,
                # Over the whole window (the load and the drain after it) at the load's rate.
                "redis_per_1k_rps": per_1k_rps(redis, elapsed, load["requests"] / elapsed),
                "postgres_per_1k_rps": per_1k_rps(postgres, elapsed, load["requests"] / elapsed),
            }
            print(
                f"{workers} worker(s), {count} conns: {rps:.0f} req/s, "
                f"{result['runs'][f'c{count}']['gateway_cpu_us_per_request']} CPU µs/req, "
                f"Redis CPU {redis['cpu_s'] * 1e6 / load['requests']:.0f} µs/req",
                flush=True,
            )
        return result
    finally:
        b.stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk seconds per run")
    parser.add_argument("--workers", default="1,2", help="placements: comma-separated workers")
    parser.add_argument("--conns", default="16,64", help="wrk connections per run")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--admission",
        choices=("on", "off"),
        default="on",
        help="replica-local admission leases (off: the exact path, one script per request)",
    )
    args = parser.parse_args()
    conns = tuple(int(c) for c in args.conns.split(","))
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "command": "python bench/scale_out.py " + " ".join(sys.argv[1:]),
        "started": started,
        "machine": b.machine(),
        "python": platform.python_version(),
        "redis": None,
        "admission": args.admission,
        "load_average_before": [round(x, 2) for x in load_before],
        "placements": [],
    }
    with tempfile.TemporaryDirectory(prefix="aigw-scale-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # PostgreSQL runs as its own user (when we are root)
        nginx, upstream = b.start_nginx(work)
        try:
            for workers in (int(w) for w in args.workers.split(",")):
                results["placements"].append(
                    run(workers, args.seconds, conns, work, upstream, args.admission == "on")
                )
            results["redis"] = b.redis_cli("info", "server").split("redis_version:")[1].split()[0]
        finally:
            b.stop(nginx)
            if "proc" in b._REDIS:
                b.stop(b._REDIS.pop("proc"))
            b.stop_postgres()
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
