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
the PostgreSQL URL's server and dropped after.) ``--python`` runs the server on another
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
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
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


def count(
    tree: Path,
    requests: int,
    governed: bool,
    redis_url: str,
    database_url: str,
    python: str = sys.executable,
) -> int:
    """Instructions (cachegrind's ``I refs``) of one server run of ``requests`` requests,
    the server on ``python``."""
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
        config = gateway_config(work, upstream_port, GOVERNANCE_CONFIG if governed else "")
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
                "--cache-sim=no",
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
        found = re.search(r"I\s+refs:\s+([\d,]+)", log.read_text())
        if found is None:
            raise RuntimeError(f"no instruction count in {log}")
        return int(found.group(1).replace(",", ""))
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        upstream.kill()
        if governed:
            subprocess.run(
                ["psql", server_db, "-qc", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"],
                capture_output=True,
            )


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
    args = parser.parse_args()
    low, high = (int(n) for n in args.requests.split(","))
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "requests": [low, high],
        "python": args.python,
        "trees": {},
    }
    for spec in args.tree:
        name, _, path = spec.partition("=")
        tree = Path(path).resolve()
        figures: dict[str, Any] = {"path": str(tree)}
        for mode in ("plain", "governed"):
            totals = [
                count(tree, n, mode == "governed", args.redis_url, args.database_url, args.python)
                for n in (low, high)
            ]
            figures[mode] = {
                "totals": totals,
                "per_request": round((totals[1] - totals[0]) / (high - low)),
            }
        figures["ratio"] = round(
            figures["governed"]["per_request"] / figures["plain"]["per_request"], 3
        )
        results["trees"][name] = figures
        print(
            f"{name}: plain {figures['plain']['per_request']:,} instructions per request, "
            f"governed {figures['governed']['per_request']:,}: {figures['ratio']}x",
            flush=True,
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
