"""Upstream HTTP clients and event loops, per call, against a canned nginx upstream.

Not a test: ``bench/run`` runs it (``--skip-clients`` to skip) and writes
``bench/http-clients.json``, rendered into RESULTS.md. Each combination makes
sequential keep-alive POSTs of the benchmark's chat request to nginx on
loopback (nginx on CPU 0, the client on CPU 1, as in the pinned mode) and
reports the client process's CPU µs and wall µs per call, median of three
rounds. Candidates: the gateway's raw client (asyncio protocol + httptools),
aiohttp and httpx (both as the gateway would use them: one pooled session,
whole body read), each on uvloop and on the stdlib asyncio loop.

    .venv/bin/python bench/http_clients.py [--calls 2000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench  # noqa: E402  (bench/bench.py: nginx, the request, pinning)

Call = Callable[[], Awaitable[bytes]]


async def _raw(url: str, body: bytes) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from gateway_app.transport import RawUpstreamClient

    client = RawUpstreamClient()
    await client.start()
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}

    async def call() -> bytes:
        status, _, data = await client.post(url, headers, body, timeout=10)
        assert status == 200, status
        return data

    return call, client.close


async def _aiohttp(url: str, body: bytes) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=10)
    )
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}

    async def call() -> bytes:
        async with session.post(url, data=body, headers=headers) as response:
            data = await response.read()
            assert response.status == 200, response.status
            return data

    return call, session.close


async def _httpx(url: str, body: bytes) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(timeout=10)
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}

    async def call() -> bytes:
        response = await client.post(url, content=body, headers=headers)
        assert response.status_code == 200, response.status_code
        return response.content

    return call, client.aclose


CLIENTS = {"raw (asyncio protocol + httptools)": _raw, "aiohttp": _aiohttp, "httpx": _httpx}


async def _measure(
    make: Callable[..., Any], url: str, body: bytes, calls: int
) -> tuple[float, float]:
    call, close = await make(url, body)
    try:
        for _ in range(200):  # warm-up: connections, caches
            await call()
        cpu: list[float] = []
        wall: list[float] = []
        for _ in range(3):
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(calls):
                await call()
            cpu.append(1e6 * (time.process_time() - c0) / calls)
            wall.append(1e6 * (time.perf_counter() - w0) / calls)
        return statistics.median(cpu), statistics.median(wall)
    finally:
        await close()


def _one(client: str, loop: str, url: str, calls: int) -> dict[str, float]:
    """Measure one combination in a fresh process pinned on the target CPU."""
    code = (
        "import asyncio, json, sys; sys.path[:0] = [{root!r}, {bench!r}];"
        "import http_clients as h;"
        "body = json.dumps(h.bench.REQUEST).encode();"
        "coro = h._measure(h.CLIENTS[{client!r}], {url!r}, body, {calls});"
        "import uvloop;"
        "cpu, wall = (uvloop.run(coro) if {loop!r} == 'uvloop' else asyncio.run(coro));"
        "print(json.dumps({{'cpu_us': cpu, 'wall_us': wall}}))"
    ).format(
        root=str(ROOT), bench=str(ROOT / "bench"), client=client, url=url, calls=calls, loop=loop
    )
    out = subprocess.run(
        ["taskset", "-c", bench.CPU_TARGET, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(calls: int) -> dict[str, Any]:
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load": os.getloadavg(),
        "calls": calls,
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="aigw-clients-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        nginx, port = bench.start_nginx(work)
        try:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            for client in CLIENTS:
                for loop in ("uvloop", "asyncio"):
                    row = {"client": client, "loop": loop, **_one(client, loop, url, calls)}
                    print(json.dumps(row), flush=True)
                    results["rows"].append(row)
        finally:
            bench.stop(nginx)
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "http-clients.json"))
    args = parser.parse_args()
    results = run(args.calls)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
