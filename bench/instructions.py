"""Instructions per request of the gateway's real server, counted by cachegrind: two trees.

The CPU figures of ``bench.py`` and ``hook_path.py`` are times, and on a shared VM a
time moves with the neighbours: in the 2026-12-07 02:43-02:58 UTC runs the same tree's
plain path cost 101-164 µs per request and the stdlib JSON calibration 6.6-11.7 µs
(``partial-instructions.md``). An instruction count does not move: this script runs
the gateway (``python -m gateway_app serve``, the bench's server, one worker) under
valgrind's cachegrind (``--cache-sim=no``: instructions only, ~20x slower), sends it
``--requests`` chat requests over 16 connections (a separate process: not counted),
stops it with SIGTERM and reads the total. Two runs per tree and mode, at N1 and N2
requests, give the count per request without the start-up and shutdown:

    (total at N2 - total at N1) / (N2 - N1)

for the plain path (no governance) and the full governance path (a virtual key with
limits at every level, Redis and PostgreSQL, as ``bench.py``'s governance target), and
their ratio. Time-dependent batching (the settlement flush every 20 ms, the audit
drain) sees a server 20x slower: fewer requests per flush than at full speed, so the
governed count is, if anything, an overestimate of the background share.

Needs valgrind, a redis-server and a PostgreSQL you started on loopback::

    .venv/bin/python bench/instructions.py --tree main=/tmp/main --tree branch=. \\
      --redis-url redis://127.0.0.1:6379/3 --database-url postgresql://postgres@127.0.0.1:5432/postgres

(The Redis database is flushed per run; a database of its own is created per run from
the PostgreSQL URL's server and dropped after.)

``--settle-interval S`` sets the governed runs' ``governance.settle_interval_s``: under
valgrind a 20 ms flush carries a few requests, not the ~100 it carries at full speed, so
the flushes' and drain passes' share of a request is overstated; 0.4-0.8 s (20-40x, the
slowdown) gives them full-speed batches. ``--l2 BYTES`` turns cachegrind's cache
simulation on with its last level the size of one core's L2 (8-way, 64-byte lines;
``lscpu``: this VM's Zen 4 cores have 1 MiB) and also reports the L2 misses per request
(instruction fetches, data reads and writes): where a request's memory traffic leaves the
core's own cache, which the instruction count does not see (~40x slower than the server
at full speed). ``--by-function N`` also splits the difference by C function (cachegrind's
per-function counts, per request as above): the N functions that add the most to a
governed request over a plain one, and the few that add the least; an interpreter with
symbols names them (the project's ``.venv`` one: the shipped ``/usr/bin/python3`` is
stripped, its static functions read ``???``). ``--python`` runs the server on another
interpreter: the standing command's targets run on the shipped one (``bench/setup.sh``),
whose counts are lower than a from-source build's (``partial-cpu-pairs.md``: 418,074 and
563,720 against 468,916 and 620,990). About 30 s per run, eight runs for two
trees.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

# The standing command's request, answer, limits and gateway config (bench.py).
from bench import (
    CHAT,
    GOVERNANCE_CONFIG,
    HIGH_LIMITS,
    REQUEST,
    free_port,
    gateway_config,
    wait_port,
)

ANSWER = json.dumps(CHAT)

# The fake upstream, in a process of its own (not counted).
UPSTREAM = r"""
import asyncio, sys
ANSWER = sys.argv[1].encode()
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER))
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[2]))
    await asyncio.sleep(float(sys.argv[3]))
asyncio.run(main())
"""
CONNECTIONS = 16


async def _drive(port: int, requests: int, admin_key: str | None) -> None:
    """A key with limits at every level (governed), then ``requests`` chat requests."""
    import httpx

    limits = httpx.Limits(max_connections=CONNECTIONS)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=300, limits=limits
    ) as client:
        headers: dict[str, str] = {}
        if admin_key is not None:
            admin = {"authorization": f"Bearer {admin_key}"}
            body = {"team_id": "bench-team", "project_id": "bench-project", "name": "bench"}
            created = (await client.post("/admin/keys", json=body, headers=admin)).json()
            for scope, scope_id in (
                ("org", "*"),
                ("team", "bench-team"),
                ("project", "bench-project"),
                ("key", created["id"]),
                ("customer", "*"),
            ):
                put = await client.put(
                    f"/admin/limits/{scope}/{scope_id}", json=HIGH_LIMITS, headers=admin
                )
                put.raise_for_status()
            headers = {"authorization": f"Bearer {created['key']}"}

        async def caller(count: int) -> None:
            for _ in range(count):
                answer = await client.post("/v1/chat/completions", json=REQUEST, headers=headers)
                if answer.status_code != 200:
                    raise RuntimeError(f"{answer.status_code}: {answer.text[:500]}")

        share, extra = divmod(requests, CONNECTIONS)
        await asyncio.gather(*(caller(share + (i < extra)) for i in range(CONNECTIONS)))


def _psql(server_url: str, sql: str) -> None:
    subprocess.run(["psql", server_url, "-qc", sql], check=True, capture_output=True)


class Run(NamedTuple):
    """One server run's counts (:func:`count`)."""

    instructions: int
    l2_misses: int
    functions: Counter[str]  # instructions by function (empty unless asked for)


def by_function_of(path: Path) -> Counter[str]:
    """Instructions by function in a cachegrind output file (``fn=`` names; each cost
    line's first count is ``Ir``). One function's lines in several files are summed."""
    totals: Counter[str] = Counter()
    function = "???"
    with path.open() as lines:
        for line in lines:
            if line.startswith("fn="):
                function = line[3:].rstrip("\n")
            elif line[:1].isdigit():
                parts = line.split(maxsplit=2)
                if len(parts) > 1:
                    totals[function] += int(parts[1])
    return totals


def per_request(low: Counter[str], high: Counter[str], requests: int) -> dict[str, float]:
    """Each function's instructions per request between two runs ``requests`` apart."""
    return {name: (high[name] - low[name]) / requests for name in low.keys() | high.keys()}


def count(
    tree: Path,
    requests: int,
    governed: bool,
    redis_url: str,
    database_url: str,
    python: str = sys.executable,
    l2: int = 0,
    settle_interval: float = 0.0,
    by_function: bool = False,
) -> Run:
    """Instructions (cachegrind's ``I refs``) of one server run of ``requests`` requests,
    the server on ``python``, its L2 misses (``LL misses`` of a simulated last level of
    ``l2`` bytes; 0 when ``l2`` is 0: no cache simulation) and (``by_function``) its
    instructions by function. The run's files are removed after (kept if it failed)."""
    work = Path(tempfile.mkdtemp(prefix="aigw-instructions-"))
    upstream_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-c", UPSTREAM, ANSWER, str(upstream_port), "3600"]
    )
    database = f"aigw_instructions_{os.getpid()}_{secrets.token_hex(3)}"
    server_db = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))
    server: subprocess.Popen[bytes] | None = None
    try:
        wait_port(upstream_port, 30)
        extra = GOVERNANCE_CONFIG if governed else ""
        if governed and settle_interval:
            extra += f"  settle_interval_s: {settle_interval}\n"
        config = gateway_config(work, upstream_port, extra)
        env = {**os.environ, "AIGW_CONFIG": str(config), "PYTHONPATH": str(tree)}
        admin_key = None
        if governed:
            admin_key = "aigw-admin-" + secrets.token_hex(16)
            _psql(server_db, f"CREATE DATABASE {database}")
            env.update(
                AIGW_REDIS_URL=redis_url,
                AIGW_DATABASE_URL=urlunsplit(urlsplit(database_url)._replace(path=f"/{database}")),
                AIGW_ADMIN_KEY=admin_key,
            )
            subprocess.run(
                ["redis-cli", "-u", redis_url, "flushdb"], check=True, capture_output=True
            )
            subprocess.run(
                [sys.executable, "-m", "gateway_app", "migrate"],
                env=env,
                cwd=tree,
                check=True,
                capture_output=True,
            )
        port = free_port()
        log = work / "valgrind.log"
        server = subprocess.Popen(
            [
                "valgrind",
                "--tool=cachegrind",
                *(["--cache-sim=yes", f"--LL={l2},8,64"] if l2 else ["--cache-sim=no"]),
                f"--cachegrind-out-file={work / 'cachegrind.out'}",
                f"--log-file={log}",
                python,
                "-m",
                "gateway_app",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--server",
                "httptools",
                "--workers",
                "1",
            ],
            env=env,
            cwd=tree,
            stdout=(work / "gateway.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_port(port, 300)
        asyncio.run(_drive(port, requests, admin_key))
        time.sleep(1.0)  # the last settlements flush, the drainer stores the last events
        server.send_signal(signal.SIGTERM)
        server.wait(300)
        text = log.read_text()
        found = re.search(r"I\s+refs:\s+([\d,]+)", text)
        if found is None:
            raise RuntimeError(f"no instruction count in {log}")
        misses = re.search(r"LL misses:\s+([\d,]+)", text)
        if l2 and misses is None:
            raise RuntimeError(f"no LL miss count in {log}")
        run = Run(
            int(found.group(1).replace(",", "")),
            int(misses.group(1).replace(",", "")) if l2 and misses else 0,
            by_function_of(work / "cachegrind.out") if by_function else Counter(),
        )
        shutil.rmtree(work, ignore_errors=True)  # a failed run's logs stay (below)
        return run
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        upstream.kill()
        if governed:
            subprocess.run(
                ["psql", server_db, "-qc", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"],
                capture_output=True,
            )
        if work.exists():
            print(f"kept {work}: the failed run's gateway.log and valgrind.log", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH (repeat)")
    parser.add_argument("--requests", default="800,2400", help="N1,N2 (default 800,2400)")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the gateway server's interpreter (default: this one; the standing command's "
        "is bench/setup.sh's shipped one, ~/.cache/aigw/bench/variants/bin/python)",
    )
    parser.add_argument(
        "--settle-interval",
        type=float,
        default=0.0,
        help="governance.settle_interval_s of the governed runs (default: the config's, "
        "20 ms; 0.4-0.8 s gives the flushes full-speed batches under valgrind)",
    )
    parser.add_argument(
        "--l2",
        type=int,
        default=0,
        help="simulate the caches, the last level BYTES large (one core's L2: 1048576 on "
        "this VM), and report its misses per request too (default 0: instructions only)",
    )
    parser.add_argument(
        "--by-function",
        type=int,
        default=0,
        metavar="N",
        help="also split governance's extra instructions by C function: the N that add "
        "the most (default 0: no split; an interpreter with symbols names them)",
    )
    args = parser.parse_args()
    low, high = (int(n) for n in args.requests.split(","))
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "requests": [low, high],
        "python": args.python,
        "settle_interval_s": args.settle_interval or None,
        "l2_bytes": args.l2 or None,
        "trees": {},
    }
    for spec in args.tree:
        name, _, path = spec.partition("=")
        tree = Path(path).resolve()
        figures: dict[str, Any] = {"path": str(tree)}
        functions: dict[str, dict[str, float]] = {}
        for mode in ("plain", "governed"):
            runs = [
                count(
                    tree,
                    n,
                    mode == "governed",
                    args.redis_url,
                    args.database_url,
                    args.python,
                    args.l2,
                    args.settle_interval,
                    args.by_function > 0,
                )
                for n in (low, high)
            ]
            totals = [run.instructions for run in runs]
            functions[mode] = per_request(runs[0].functions, runs[1].functions, high - low)
            figures[mode] = {
                "totals": totals,
                "per_request": round((totals[1] - totals[0]) / (high - low)),
            }
            if args.l2:
                misses = [run.l2_misses for run in runs]
                figures[mode]["l2_misses_totals"] = misses
                figures[mode]["l2_misses_per_request"] = round(
                    (misses[1] - misses[0]) / (high - low)
                )
        figures["ratio"] = round(
            figures["governed"]["per_request"] / figures["plain"]["per_request"], 3
        )
        line = (
            f"{name}: plain {figures['plain']['per_request']:,} instructions per request, "
            f"governed {figures['governed']['per_request']:,}: {figures['ratio']}x"
        )
        if args.l2:
            plain_misses = figures["plain"]["l2_misses_per_request"]
            governed_misses = figures["governed"]["l2_misses_per_request"]
            figures["l2_ratio"] = round(governed_misses / max(plain_misses, 1), 3)
            line += (
                f"; L2 misses per request plain {plain_misses:,}, governed "
                f"{governed_misses:,}: {figures['l2_ratio']}x"
            )
        results["trees"][name] = figures
        print(line, flush=True)
        if args.by_function:
            plain, governed = functions["plain"], functions["governed"]
            extra = sorted(
                ((governed.get(f, 0.0) - plain.get(f, 0.0), f) for f in plain.keys() | governed),
                reverse=True,
            )
            shown = extra[: args.by_function] + extra[-5:]
            figures["by_function"] = [[f, round(v)] for v, f in shown]
            print(f"{name}: governed less plain, instructions per request, by function:")
            for value, function in extra[: args.by_function]:
                print(f"  {value:+10,.0f}  {function}")
            print("  ... the least:")
            for value, function in extra[-5:]:
                print(f"  {value:+10,.0f}  {function}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
