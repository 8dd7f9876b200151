"""The governance request path in-process: CPU and Python calls per request, two trees.

Drives the ASGI app directly (no server, no client sockets) with governance on
(embedded state and SQLite, a virtual key with high limits at every level, as
``bench/bench.py`` sets up) against an upstream in the same event loop, so the
figures are the gateway's own Python: the hook chain, routing, the adapter and
settling. Loopback only and bounded (a few seconds per tree).

Each tree is a source checkout (e.g. ``git archive main | tar -x -C /tmp/main``)
run in its own interpreter, alternately, so both see the same machine load:

    .venv/bin/python bench/hook_path.py --tree main=/tmp/main --tree branch=. --rounds 7

Per tree: CPU µs per request (``time.process_time``; min and median over the
rounds) and Python function calls per request (cProfile, deterministic: the
figure to compare on a busy machine). The CPU figure is everything the requests
cost this process: the window ends once the audit drainer has stored every
measured request's event (its stream reads, decoding, database writes in a
worker thread and acknowledgements count, as do the settlement batcher's
flushes); cProfile's call counts see the event loop's thread only.
``--database-url postgresql://...`` (a PostgreSQL you started on loopback) puts
governance's records there (``AIGW_DATABASE_URL``) instead of SQLite.

``--redis-url redis://127.0.0.1:PORT/0`` (a redis-server you started on loopback)
runs governance on the Redis state instead (``AIGW_REDIS_URL``): the production
path, with its reservation round trips; wall µs per request is then printed too
(the round trip's wait is not CPU of this process).

``--concurrency N`` runs the full path with N callers at once (as N client connections
would; 1: one request at a time) and prints each round's latency p50, p99 and p99.9
(each request's own time); ``--out FILE`` keeps every round's figures as JSON.

``--check`` measures only governance's request-time side (``Governance.authenticate``
and ``Governance.check``, the before hooks' work) in a loop over fresh request
contexts, after the same warm-up: CPU µs and Python calls per check, and the
functions that take the most of it under cProfile (``--top N``). The figure that
moves when the check path is cut, without the server, routing or settling around it.
``--settle`` does the same for the after side: ``Governance.settle`` of one request
captured from a real call, repeated (the corrections, the audit event, the batcher's
flushes to Redis between calls).

``--bytecodes`` replaces cProfile's run with a count of the bytecodes each function
executes (``sys.settrace`` opcode events, the event loop's thread): bytecodes per
request and the ``--top`` functions by their own. Deterministic up to the timers (a
batcher's flush, a sweep), so it judges a cut of a few hundred bytecodes where the
clock cannot; the interpreter spends ~30 instructions on each, besides what it calls.

``--share`` (with ``--bytecodes``) counts each tree's request path twice, governed and
plain (governance off, no Redis, no database, no key: ``bench.py``'s default target),
and prints both totals and the ``--top`` functions by governed less plain: what
governance itself adds to a request, function by function.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from trees import run_in_tree

ADMIN_KEY = "aigw-admin-" + "b" * 32
LIMITS = {"daily_usd": 1e6, "monthly_usd": 1e7, "rpm": 10**7, "tpm": 10**10}
REQUEST = {"model": "bench-chat", "messages": [{"role": "user", "content": "hello"}]}
ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "bench-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }
).encode()
CONFIG = """
providers:
  bench: {{type: openai, api_key: sk-bench, base_url: "http://127.0.0.1:{port}/v1"}}
models:
  bench-chat:
    deployments:
      - {{provider: bench, model: bench-model, timeout_s: 30,
          price: {{input_per_mtok: 0.15, output_per_mtok: 0.6}}}}
governance:
  enabled: {governed}
observability:
  logs: {{enabled: false}}
"""


async def _upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)
            )
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def _drained(drainer: Any, events: int) -> int:
    """Wait until the audit drainer has stored ``events`` (0: until it is idle)."""
    written, idle = drainer.written, 0
    for _ in range(3000):  # bounded: 30 s
        await asyncio.sleep(0.01)
        if events and drainer.written >= events:
            return int(drainer.written)
        idle = idle + 1 if drainer.written == written else 0
        written = drainer.written
        if not events and idle >= 60:  # nothing stored for 0.6 s (> audit_interval_s)
            return int(written)
    raise RuntimeError(f"the audit drainer stored {drainer.written} of {events} events")


async def _call(app: Any, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    data = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8080),
        "scheme": "http",
        "root_path": "",
    }
    delivered = False
    status: list[int] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": data, "more_body": False}
        await asyncio.sleep(3600)  # the client stays (the disconnect watcher waits here)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    if not status or status[0] not in (200, 201):
        raise RuntimeError(f"{method} {path} answered {status}: {b''.join(chunks)[:300]!r}")
    return json.loads(b"".join(chunks) or b"null")


async def _side(
    app: Any, token: str, requests: int, profile: str, top: int, side: str
) -> dict[str, Any]:
    """Only one side of governance per request: ``check`` (authenticate + check, no
    upstream call, no settle) or ``settle`` (``Governance.settle`` of one captured
    request, again and again, letting the settlement batcher flush between calls)."""
    from gateway_app.apis import CHAT_COMPLETIONS
    from gateway_app.context import Exchange, RequestContext
    from gateway_app.governance.hooks import GovernanceHook

    governance = next(h for h in app.hooks.hooks if isinstance(h, GovernanceHook)).governance
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    body = dict(REQUEST)

    captured: list[Any] = []
    if side == "settle":
        settle = governance.settle

        async def capture(*args: Any) -> None:
            captured.append(args)
            await settle(*args)

        governance.settle = capture
        await _call(app, "POST", "/v1/chat/completions", REQUEST, headers)
        del governance.settle  # the class's method again

    async def one() -> None:
        if captured:
            await governance.settle(*captured[0])
            await asyncio.sleep(0)  # the batcher's flush runs
            return
        request = RequestContext("req", "/v1/chat/completions", headers, CHAT_COMPLETIONS, body)
        request.model = body["model"]
        exchange = Exchange()
        refused = await governance.authenticate(request, exchange)
        reservation = await governance.check(request, exchange)
        if refused is not None or reservation is None or not hasattr(reservation, "decision"):
            raise RuntimeError(f"check refused: {reservation!r}")

    for _ in range(300):
        await one()
    profiler = _profiler(profile)
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    for _ in range(requests):
        await one()
    if profiler is not None:
        profiler.disable()
        return _profiled(profiler, requests, top)
    return {"cpu_us": (time.process_time() - started) / requests * 1e6, "wall_us": 0.0}


class _Bytecodes:
    """Bytecodes executed per function (``sys.settrace`` opcode events), like a profiler."""

    def __init__(self) -> None:
        self.counts: collections.Counter[Any] = collections.Counter()

    def _opcode(self, frame: Any, event: str, _arg: Any) -> Any:
        if event == "opcode":
            self.counts[frame.f_code] += 1
        return self._opcode

    def _call(self, frame: Any, _event: str, _arg: Any) -> Any:
        frame.f_trace_opcodes = True  # (a resumed coroutine is a call too)
        return self._opcode

    def enable(self) -> None:
        sys.settrace(self._call)

    def disable(self) -> None:
        sys.settrace(None)

    def report(self, requests: int, top: int) -> dict[str, Any]:
        rows = self.counts.most_common(top)
        functions: collections.Counter[str] = collections.Counter()
        for code, count in self.counts.items():
            functions[_function(code)] += count / requests
        return {
            "bytecodes": sum(self.counts.values()) / requests,
            "top": [
                f"{count / requests:7.1f} bytecodes  {_function(code)}" for code, count in rows
            ],
            "functions": functions,
        }


def _function(code: Any) -> str:
    return f"{code.co_qualname} ({Path(code.co_filename).name}:{code.co_firstlineno})"


def _share(governed: dict[str, float], plain: dict[str, float], top: int) -> list[str]:
    """The ``top`` functions by bytecodes per request governed less plain (``--share``)."""
    rows = sorted(
        ((governed.get(name, 0.0) - plain.get(name, 0.0), name) for name in {*governed, *plain}),
        key=lambda row: -abs(row[0]),
    )[:top]
    return [
        f"{added:+8.1f}  ({plain.get(name, 0.0):7.1f} -> {governed.get(name, 0.0):7.1f})  {name}"
        for added, name in rows
    ]


def _profiler(kind: str) -> Any:
    """None, cProfile (``calls``) or the bytecode counter (``bytecodes``)."""
    if kind == "bytecodes":
        return _Bytecodes()
    return cProfile.Profile() if kind else None


def _profiled(profiler: Any, requests: int, top: int) -> dict[str, Any]:
    """Python calls per request and the ``top`` functions by own time (cProfile), or
    bytecodes per request and the top functions by their own (:class:`_Bytecodes`)."""
    if isinstance(profiler, _Bytecodes):
        return profiler.report(requests, top)
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore[attr-defined]
    return {
        "calls": stats.total_calls / requests,  # type: ignore[attr-defined]
        "top": [
            f"{tt / requests * 1e6:7.2f} µs {nc / requests:5.1f} calls  {fn[2]} "
            f"({Path(fn[0]).name}:{fn[1]})"
            for fn, (_cc, nc, tt, _ct, _callers) in rows
        ],
    }


async def _measure(
    requests: int,
    profile: str,
    side: str = "",
    top: int = 0,
    concurrency: int = 1,
    plain: bool = False,
) -> dict[str, Any]:
    server = await asyncio.start_server(_upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # plain: governance off, no key, no Redis, no database (bench.py's default target)
    Path("gateway.yaml").write_text(CONFIG.format(port=port, governed="false" if plain else "true"))
    os.environ["AIGW_CONFIG"] = "gateway.yaml"
    for name in ("AIGW_ADMIN_KEY", "AIGW_REDIS_URL", "AIGW_DATABASE_URL", "AIGW_KEY_HASH_SECRET"):
        os.environ.pop(name, None)
    if not plain:
        os.environ["AIGW_ADMIN_KEY"] = ADMIN_KEY
        if os.environ.get("AIGW_BENCH_REDIS_URL"):
            os.environ["AIGW_REDIS_URL"] = os.environ["AIGW_BENCH_REDIS_URL"]
        if os.environ.get("AIGW_BENCH_DATABASE_URL"):
            os.environ["AIGW_DATABASE_URL"] = os.environ["AIGW_BENCH_DATABASE_URL"]
    from gateway_app.app import create_app

    app = create_app()
    await app.startup()
    bearer: dict[str, str] = {}
    token = ""
    if not plain:
        admin = {"authorization": f"Bearer {ADMIN_KEY}"}
        key = await _call(app, "POST", "/admin/keys", {"team_id": "t", "project_id": "p"}, admin)
        for scope, scope_id in (("org", "*"), ("team", "t"), ("project", "p"), ("key", key["id"])):
            await _call(app, "PUT", f"/admin/limits/{scope}/{scope_id}", LIMITS, admin)
        token = key["key"]
        bearer = {"authorization": f"Bearer {token}"}
    for _ in range(300):  # warm-up: connections, caches
        await _call(app, "POST", "/v1/chat/completions", REQUEST, bearer)
    if side:
        try:
            return await _side(app, token, requests, profile, top, side)
        finally:
            await app.shutdown()
            server.close()
    profiler = _profiler(profile)
    drainer = None if plain else app.admin.governance.drainer
    stored = 0 if drainer is None else await _drained(drainer, 0)  # the warm-up's events
    started = time.process_time()
    wall = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    latencies: list[float] = []

    async def caller(count: int) -> None:
        for _ in range(count):
            began = time.perf_counter()
            await _call(app, "POST", "/v1/chat/completions", REQUEST, bearer)
            latencies.append(time.perf_counter() - began)

    share, extra = divmod(requests, concurrency)
    await asyncio.gather(*(caller(share + (i < extra)) for i in range(concurrency)))
    wall_us = (time.perf_counter() - wall) / requests * 1e6  # the requests' own time
    if drainer is not None:
        await _drained(drainer, stored + requests)
    if profiler is not None:
        profiler.disable()
    cpu_us = (time.process_time() - started) / requests * 1e6
    await app.shutdown()
    server.close()
    if profiler is not None:
        return _profiled(profiler, requests, top)
    latencies.sort()
    at = {q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1e6 for q in QUANTILES}
    return {"cpu_us": cpu_us, "wall_us": wall_us, "latency_us": at}


QUANTILES = (0.5, 0.99, 0.999)
"""Each request's own time, from the caller's side (``--concurrency``: with the others')."""


def _child(
    tree: str,
    requests: int,
    profile: str,
    side: str = "",
    top: int = 0,
    concurrency: int = 1,
    plain: bool = False,
) -> dict[str, Any]:
    """One measurement of ``tree`` in a fresh interpreter (its own gateway_app)."""
    code = (
        "import asyncio, json, os, sys, tempfile; sys.path.insert(0, sys.argv[1]); "
        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import hook_path; "
        "os.chdir(tempfile.mkdtemp()); "
        "print(json.dumps(asyncio.run(hook_path._measure(int(sys.argv[2]), sys.argv[3], "
        "sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7] == 'plain'))))"
    )
    measured: dict[str, Any] = run_in_tree(
        tree,
        code,
        [str(requests), profile, side, str(top), str(concurrency), "plain" if plain else ""],
        timeout=300,
    )
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH (repeat)")
    parser.add_argument("--database-url", help="governance's records in this PostgreSQL")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--redis-url", help="governance on this Redis (loopback) instead")
    parser.add_argument("--check", action="store_true", help="only authenticate + check")
    parser.add_argument(
        "--settle", action="store_true", help="only Governance.settle (of one captured request)"
    )
    parser.add_argument("--top", type=int, default=0, help="top N functions by own time")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="callers at once (the full path only)"
    )
    parser.add_argument(
        "--bytecodes",
        action="store_true",
        help="count bytecodes per function (not cProfile's calls) in the profiled run",
    )
    parser.add_argument(
        "--share",
        action="store_true",
        help="with --bytecodes: also count the path without governance and list the --top "
        "functions by governed less plain",
    )
    parser.add_argument("--out", help="write every round's figures here (JSON)")
    args = parser.parse_args()
    if args.share and (not args.bytecodes or args.check or args.settle):
        parser.error("--share needs --bytecodes and the full path (not --check or --settle)")
    side = "check" if args.check else "settle" if args.settle else ""
    if args.redis_url:
        os.environ["AIGW_BENCH_REDIS_URL"] = args.redis_url
    if args.database_url:
        os.environ["AIGW_BENCH_DATABASE_URL"] = args.database_url
    trees = dict(item.split("=", 1) for item in args.tree)
    cpu: dict[str, list[float]] = {name: [] for name in trees}
    wall: dict[str, list[float]] = {name: [] for name in trees}
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, path in trees.items():
            measured = _child(
                str(Path(path).resolve()), args.requests, "", side, 0, args.concurrency
            )
            cpu[name].append(measured["cpu_us"])
            wall[name].append(measured["wall_us"])
            rounds[name].append(measured)
    for name, path in trees.items():
        profiled = _child(
            str(Path(path).resolve()),
            args.requests,
            "bytecodes" if args.bytecodes else "calls",
            side,
            args.top,
            args.concurrency,
        )
        counted = (
            f"bytecodes/request {profiled['bytecodes']:.1f}"
            if args.bytecodes
            else f"Python calls/request {profiled['calls']:.1f}"
        )
        print(
            f"{name}: CPU µs/request min {min(cpu[name]):.0f}, median "
            f"{statistics.median(cpu[name]):.0f} ({', '.join(f'{v:.0f}' for v in cpu[name])}); "
            f"{counted}; wall µs/request median {statistics.median(wall[name]):.0f}"
        )
        quantiles = [m["latency_us"] for m in rounds[name] if "latency_us" in m]
        for q in QUANTILES if quantiles else ():
            values = [round(m[str(q)]) for m in quantiles]  # (JSON keys: strings)
            print(f"    latency p{q * 100:g} µs per round: {values}")
        for row in profiled.get("top", []):
            print("   ", row)
        if args.share:
            plain = _child(
                str(Path(path).resolve()),
                args.requests,
                "bytecodes",
                "",
                args.top,
                args.concurrency,
                plain=True,
            )
            print(
                f"{name}, governance's share: bytecodes/request plain {plain['bytecodes']:.1f}, "
                f"governed {profiled['bytecodes']:.1f} "
                f"({profiled['bytecodes'] / plain['bytecodes']:.3f}x); by function:"
            )
            for row in _share(profiled["functions"], plain["functions"], args.top):
                print("   ", row)
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
