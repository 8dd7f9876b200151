"""Client CPU and wall time per EVALSHA and per 3-command pipeline, per Redis client.

Loopback only and bounded: starts its own redis-server on a free 127.0.0.1 port
(no persistence), runs each client sequentially (one command in flight, like
one request at a time), and stops the server by PID. CPU is this process's
user+system time (all threads: GLIDE's Rust core runs on its own threads), so
it is the client's cost; redis-server runs in another process.

    uv run --with valkey-glide python bench/redis_clients.py [--n 4000]

(valkey-glide is only needed for its row; without it the row is skipped.)

Then the governance request path as a whole, before and after batching: per
request a reservation (8 rate items, 8 budget levels), a settlement (12 counter
corrections and a ~600-byte audit event) and a circuit breaker acquire and
successful record; "before" is the state code at ``--before`` (a git revision),
loaded from git, "after" the working tree's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

# The reserve script's shape: a few GETs, INCRBYs and EXPIREs, a table reply.
SCRIPT = """
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 125)
return {1, '', 0, tostring(a), '0', ARGV[2]}
"""
KEYS = ["{b}:rl:key:k1:rpm:1"]
ARGS = ["1", "12.5"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis() -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process, port
        except OSError:
            if time.monotonic() > deadline:
                process.terminate()
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.05)


async def measure(op: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per call, after a warm-up."""
    for _ in range(200):
        await op()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await op()
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


async def raw_socket(port: int, n: int) -> dict[str, tuple[float, float]]:
    """The floor: a pre-packed EVALSHA written on a plain asyncio stream, reply read raw."""
    import hiredis

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sha = await _load(port)
    evalsha = hiredis.pack_command(("EVALSHA", sha, 1, *KEYS, *ARGS))
    pipe = b"".join(
        hiredis.pack_command(c)
        for c in (("INCRBY", "{b}:x", 5), ("INCRBY", "{b}:y", 7), ("XADD", "{b}:s", "*", "e", "x"))
    )
    parser = hiredis.Reader()

    async def one(data: bytes, replies: int) -> None:
        writer.write(data)
        got = 0
        while got < replies:
            reply = parser.gets()
            if reply is False:
                parser.feed(await reader.read(65536))
                continue
            got += 1

    out = {
        "evalsha": await measure(lambda: one(evalsha, 1), n),
        "pipeline": await measure(lambda: one(pipe, 3), n),
    }
    writer.close()
    return out


async def _load(port: int) -> str:
    import redis.asyncio as aioredis

    client = aioredis.Redis(port=port)
    sha = await client.script_load(SCRIPT)
    await client.aclose()
    return sha


async def redis_py(port: int, n: int, hiredis_parser: bool) -> dict[str, tuple[float, float]]:
    import redis.asyncio as aioredis
    from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

    parser = _AsyncHiredisParser if hiredis_parser else _AsyncRESP2Parser
    pool = aioredis.BlockingConnectionPool(
        host="127.0.0.1", port=port, parser_class=parser, max_connections=64
    )
    client = aioredis.Redis(connection_pool=pool)
    script = client.register_script(SCRIPT)

    async def pipe() -> None:
        p = client.pipeline(transaction=False)
        p.incrby("{b}:x", 5)
        p.incrby("{b}:y", 7)
        p.xadd("{b}:s", {"e": "x"})
        await p.execute()

    out = {
        "evalsha": await measure(lambda: script(keys=KEYS, args=ARGS), n),
        "pipeline": await measure(pipe, n),
    }
    await client.aclose()
    return out


async def glide(port: int, n: int) -> dict[str, tuple[float, float]] | None:
    try:
        import glide as g
    except ImportError:
        return None
    config = g.GlideClientConfiguration([g.NodeAddress("127.0.0.1", port)])
    client = await g.GlideClient.create(config)
    script = g.Script(SCRIPT)

    async def pipe() -> None:
        batch = g.Batch(is_atomic=False)
        batch.incrby("{b}:x", 5)
        batch.incrby("{b}:y", 7)
        batch.xadd("{b}:s", [("e", "x")])
        await client.exec(batch, raise_on_error=True)

    out = {
        "evalsha": await measure(lambda: client.invoke_script(script, keys=KEYS, args=ARGS), n),
        "pipeline": await measure(pipe, n),
    }
    await client.close()
    return out


async def resp(port: int, n: int) -> dict[str, tuple[float, float]]:
    from gateway_app.state.resp import RespClient

    client = RespClient("127.0.0.1", port)
    script = client.script(SCRIPT)
    commands = [("INCRBY", "{b}:x", 5), ("INCRBY", "{b}:y", 7), ("XADD", "{b}:s", "*", "e", "x")]
    out = {
        "evalsha": await measure(lambda: script(KEYS, ARGS), n),
        "pipeline": await measure(lambda: client.pipeline(commands), n),
    }
    await client.aclose()
    return out


def _old_module(rev: str, path: str, name: str) -> Any:
    import importlib.util
    import tempfile

    source = subprocess.run(
        ["git", "show", f"{rev}:{path}"],
        check=True,
        capture_output=True,
        cwd=os.path.join(os.path.dirname(__file__), ".."),
    ).stdout
    file = os.path.join(tempfile.mkdtemp(prefix="aigw-bench-"), f"{name}.py")
    with open(file, "wb") as out:
        out.write(source)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


async def request_path(port: int, n: int, before: str | None) -> tuple[float, float]:
    """(CPU µs, wall µs) per request of governance + circuit breaker Redis traffic."""
    from gateway_app.config import CircuitBreakerConfig
    from gateway_app.state.governance import BudgetItem, RateItem

    url = f"redis://127.0.0.1:{port}/0"
    config = CircuitBreakerConfig()
    if before:
        gov_mod = _old_module(before, "gateway_app/state/governance_redis.py", "old_gov")
        cb_mod = _old_module(before, "gateway_app/state/circuit_redis.py", "old_cb")
        state = gov_mod.RedisGovernanceState(gov_mod.redis_client(url))
    else:
        from gateway_app.state import circuit_redis as cb_mod
        from gateway_app.state.governance_redis import RedisGovernanceState

        state = RedisGovernanceState.from_url(url)
    breakers = cb_mod.RedisCircuitBreakerStore.from_url(url, config)
    rate, budgets = [], []
    for level in ("org:*", "team:t", "project:p", "key:k"):
        rate += [RateItem(level, "rpm", 10**9, 1), RateItem(level, "tpm", 10**12, 500)]
        budgets += [
            BudgetItem(level, "daily", "2026-11-27", 10**15, 5000, 90000),
            BudgetItem(level, "monthly", "2026-11", 10**15, 5000, 90000),
        ]
    event = b'{"event_id":"' + b"0" * 32 + b'",' + b'"x":"' + b"y" * 540 + b'"}'

    async def one() -> None:
        assert await breakers.acquire("dep")
        decision = await state.reserve(tuple(rate), tuple(budgets), time.time())
        await state.settle(decision, -100, -1000, event)
        await breakers.record("dep", True)

    result = await measure(one, n)
    await breakers.close()
    await state.close()
    return result


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("redis", "hiredis", "valkey-glide", "uvloop"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


async def main(n: int, before: str) -> None:
    process, port = start_redis()
    try:
        path = [
            (
                f"before ({before}: redis-py, settle pipeline + circuit EVALSHA per request)",
                await request_path(port, n, before),
            ),
            (
                "after (RespClient, batched settlements and circuit successes)",
                await request_path(port, n, None),
            ),
        ]
        rows: list[tuple[str, dict[str, tuple[float, float]] | None]] = [
            ("raw socket (floor: pre-packed bytes, hiredis.Reader)", await raw_socket(port, n)),
            ("redis-py asyncio, pure-Python parser", await redis_py(port, n, False)),
            ("redis-py asyncio + hiredis parser", await redis_py(port, n, True)),
            ("valkey-glide (async)", await glide(port, n)),
            ("RespClient (gateway_app/state/resp.py)", await resp(port, n)),
        ]
    finally:
        process.terminate()
        process.wait(10)
    load = os.getloadavg()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, Python {platform.python_version()}, "
        f"uvloop, n={n}; {versions()}\n"
    )
    print(
        "| client | EVALSHA CPU µs | EVALSHA wall µs | 3-cmd pipeline CPU µs | pipeline wall µs |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, row in rows:
        if row is None:
            print(f"| {name} | not installed | | | |")
            continue
        (ec, ew), (pc, pw) = row["evalsha"], row["pipeline"]
        print(f"| {name} | {ec:.0f} | {ew:.0f} | {pc:.0f} | {pw:.0f} |")
    print("\n| governance request path (Redis traffic only) | CPU µs/request | wall µs/request |")
    print("|---|---:|---:|")
    for name, (cpu, wall) in path:
        print(f"| {name} | {cpu:.0f} | {wall:.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="calls per measurement")
    parser.add_argument(
        "--before", default="f7988fd", help="git revision of the state code before batching"
    )
    import uvloop

    options = parser.parse_args()
    uvloop.run(main(options.n, options.before))
