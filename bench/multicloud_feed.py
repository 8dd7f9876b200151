"""How fast a key change made in the home cloud reaches the other clouds: pull (a long-polled
change feed) and push, over the fault injector's delayed and partitioned links.

The prototype behind the replication section of docs/decisions/0001-global-governance-plane.md.
Three private PostgreSQL clusters (aws is the home, azure and gcp follow). The
home appends each change to a ``changes`` table in the transaction that makes
it (sequence numbers given under an advisory lock, so commit order = sequence
order and a follower's cursor never skips a late commit), then ``NOTIFY``.

* **pull**: each follower long-polls ``GET /feed?after=<applied>&wait=20`` on the
  home through its link; the home answers at once when newer changes exist,
  otherwise when the next ``NOTIFY`` arrives. The follower applies the batch and
  its new cursor in one transaction (idempotent: ``ON CONFLICT DO NOTHING``).
* **stream**: pull, but one long response per connection (``GET /stream``): the
  home writes a JSON line per batch as it commits (and a heartbeat every 5 s),
  so no change waits for the follower's next request.
* **push**: the home keeps a cursor per follower and POSTs each new batch to the
  follower's ``/apply`` through the link, advancing the cursor on a 200.

Measured per one-way link delay (``--delays``): lag from the home's commit to
the follower's commit for changes made at 10/s. Then a partition: gcp's link is
cut (``drop``: bytes held; ``reset``: connections refused) while 300 changes
are made, healed, and the time to catch up is measured; every follower must end
with exactly the home's sequence (no gap, no duplicate).

Loopback only, bounded (about a minute), servers stopped by PID:

    .venv/bin/python bench/multicloud_feed.py      # writes bench/multicloud-feed.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import psycopg
import uvloop
from aiohttp import ClientSession, ClientTimeout, web

from tests.gateway.governance.services import PostgresServer
from tests.multicloud.faults import Injector, Link
from tests.ports import kept_port

FOLLOWERS = ("azure", "gcp")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS changes (seq BIGINT PRIMARY KEY, committed_at DOUBLE PRECISION,"
    " body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS applied (seq BIGINT PRIMARY KEY, committed_at DOUBLE PRECISION,"
    " applied_at DOUBLE PRECISION, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursor (id INT PRIMARY KEY, seq BIGINT NOT NULL)",
    "INSERT INTO cursor VALUES (1, 0) ON CONFLICT DO NOTHING",
)


async def keep_trying(stop: asyncio.Event, attempt: Callable[[], Awaitable[None]]) -> None:
    """Run ``attempt`` until ``stop``; after a failure wait 50 ms x 2^n, at most 1 s
    (so a follower cut off from the home tries again every second)."""
    backoff = 0.05
    while not stop.is_set():
        try:
            await attempt()
            backoff = 0.05
        except Exception:
            if stop.is_set():
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)


async def connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


class Home:
    """The home cloud: makes changes, serves the feed (pull) or sends it (push)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.changed = asyncio.Condition()
        self.head = 0

    async def start(self) -> None:
        self.writer = await connect(self.url)
        self.reader = await connect(self.url)
        for statement in ("DROP TABLE IF EXISTS changes", *SCHEMA):
            await self.writer.execute(statement)
        self.listener = await connect(self.url)
        await self.listener.execute("LISTEN aigw_changes")
        self.listen_task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        async for notice in self.listener.notifies():
            self.head = max(self.head, int(notice.payload))
            async with self.changed:
                self.changed.notify_all()

    async def change(self, body: str) -> int:
        """One admin write: the change row and its NOTIFY commit together."""
        async with self.writer.transaction():
            await self.writer.execute("SELECT pg_advisory_xact_lock(29)")
            cur = await self.writer.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM changes")
            row = await cur.fetchone()
            assert row is not None
            seq = int(row[0])
            await self.writer.execute(
                "INSERT INTO changes VALUES (%s, %s, %s)", (seq, time.time(), body)
            )
            await self.writer.execute("SELECT pg_notify('aigw_changes', %s)", (str(seq),))
        return seq

    async def since(self, after: int, limit: int = 500) -> list[tuple[int, float, str]]:
        cur = await self.reader.execute(
            "SELECT seq, committed_at, body FROM changes WHERE seq > %s ORDER BY seq LIMIT %s",
            (after, limit),
        )
        return [(int(s), float(c), str(b)) for s, c, b in await cur.fetchall()]

    async def feed(self, request: web.Request) -> web.Response:
        after = int(request.query["after"])
        deadline = time.monotonic() + float(request.query.get("wait", "20"))
        rows = await self.since(after)
        while not rows and time.monotonic() < deadline:
            async with self.changed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(deadline - time.monotonic()):
                        await self.changed.wait_for(lambda: self.head > after)
            rows = await self.since(after)
        return web.json_response({"changes": rows})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """The feed as one long response: a JSON line per batch as it commits, a heartbeat
        line every 5 s, closed after ``wait`` seconds (the follower reconnects)."""
        after = int(request.query["after"])
        deadline = time.monotonic() + float(request.query.get("wait", "60"))
        response = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        await response.prepare(request)
        while time.monotonic() < deadline:
            rows = await self.since(after)
            if rows:
                after = rows[-1][0]
            try:
                await response.write(json.dumps({"changes": rows}).encode() + b"\n")
            except ConnectionError:
                return response  # the follower went away (or its link was reset)
            if len(rows) == 500:
                continue
            async with self.changed:
                with contextlib.suppress(TimeoutError):
                    seen = after
                    async with asyncio.timeout(min(5.0, max(0.0, deadline - time.monotonic()))):
                        await self.changed.wait_for(lambda seen=seen: self.head > seen)
        return response

    async def close(self) -> None:
        self.listen_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.listen_task
        for conn in (self.writer, self.reader, self.listener):
            await conn.close()


class Follower:
    """A follower cloud: applies batches and its cursor in one transaction."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self.applied_seq = 0
        self.caught_up = asyncio.Event()
        self.target = 0
        self.lock = asyncio.Lock()  # a retried push may arrive while the first is applied

    async def start(self) -> None:
        self.conn = await connect(self.url)
        for statement in ("DROP TABLE IF EXISTS applied", "DROP TABLE IF EXISTS cursor", *SCHEMA):
            await self.conn.execute(statement)
        self.applied_seq = 0

    async def apply(self, rows: list[list[Any]]) -> None:
        if not rows:
            return
        async with self.lock:
            await self._apply(rows)

    async def _apply(self, rows: list[list[Any]]) -> None:
        now = time.time()
        async with self.conn.transaction():
            async with self.conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO applied VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(s, c, now, b) for s, c, b in rows],
                )
            await self.conn.execute(
                "UPDATE cursor SET seq = GREATEST(seq, %s) WHERE id = 1", (rows[-1][0],)
            )
        self.applied_seq = max(self.applied_seq, int(rows[-1][0]))
        if self.target and self.applied_seq >= self.target:
            self.caught_up.set()

    async def pull(self, link: Link, stop: asyncio.Event) -> None:
        """Long-poll the feed: one request per batch."""
        async with ClientSession(timeout=ClientTimeout(total=25)) as http:

            async def attempt() -> None:
                url = f"{link.url}/feed?after={self.applied_seq}&wait=20"
                async with http.get(url) as response:
                    body = await response.json()
                await self.apply(body["changes"])

            await keep_trying(stop, attempt)

    async def follow_stream(self, link: Link, stop: asyncio.Event) -> None:
        """Read the streamed feed; a line without news for 15 s means the link is dead."""
        async with ClientSession(timeout=ClientTimeout(total=None, sock_read=15)) as http:

            async def attempt() -> None:
                url = f"{link.url}/stream?after={self.applied_seq}&wait=60"
                async with http.get(url) as response:
                    async for line in response.content:
                        await self.apply(json.loads(line)["changes"])

            await keep_trying(stop, attempt)

    async def serve_apply(self, request: web.Request) -> web.Response:
        await self.apply((await request.json())["changes"])
        return web.json_response({"applied": self.applied_seq})

    async def rows(self) -> list[tuple[int, float, float]]:
        cur = await self.conn.execute(
            "SELECT seq, committed_at, applied_at FROM applied ORDER BY seq"
        )
        return [(int(s), float(c), float(a)) for s, c, a in await cur.fetchall()]


async def push_loop(home: Home, follower_url: str, stop: asyncio.Event) -> None:
    """The home's sender to one follower: its cursor, one batch in flight, retries."""
    cursor = 0
    async with ClientSession(timeout=ClientTimeout(total=5)) as http:

        async def attempt() -> None:
            nonlocal cursor
            rows = await home.since(cursor)
            if not rows:
                async with home.changed:
                    with contextlib.suppress(TimeoutError):
                        seen = cursor
                        async with asyncio.timeout(1.0):
                            await home.changed.wait_for(lambda: home.head > seen)
                return
            async with http.post(follower_url + "/apply", json={"changes": rows}) as response:
                response.raise_for_status()
            cursor = rows[-1][0]

        await keep_trying(stop, attempt)


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = kept_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


def lag_stats(rows: list[tuple[int, float, float]]) -> dict[str, float]:
    lags = sorted((a - c) * 1000 for _, c, a in rows)
    return {
        "changes": len(lags),
        "lag_ms_p50": round(statistics.median(lags), 1),
        "lag_ms_p99": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))], 1),
        "lag_ms_max": round(lags[-1], 1),
    }


async def scenario(
    mode: str,
    delay: float,
    partition: str | None,
    urls: dict[str, str],
    injector: Injector,
    args: Any,
) -> dict[str, Any]:
    home = Home(urls["aws"])
    await home.start()
    followers = {name: Follower(name, urls[name]) for name in FOLLOWERS}
    for follower in followers.values():
        await follower.start()
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    runners: list[web.AppRunner] = []
    links: dict[str, Link] = {}
    tag = f"{mode}-{delay}-{partition}"
    if mode in ("pull", "stream"):
        app = web.Application()
        app.router.add_get("/feed", home.feed)
        app.router.add_get("/stream", home.stream)
        runner, port = await serve(app)
        runners.append(runner)
        for name, follower in followers.items():
            links[name] = injector.link(f"{tag}:{name}->aws", ("127.0.0.1", port)).delay(delay)
            follow = follower.pull if mode == "pull" else follower.follow_stream
            tasks.append(asyncio.create_task(follow(links[name], stop)))
    else:
        for name, follower in followers.items():
            app = web.Application()
            app.router.add_post("/apply", follower.serve_apply)
            runner, port = await serve(app)
            runners.append(runner)
            links[name] = injector.link(f"{tag}:aws->{name}", ("127.0.0.1", port)).delay(delay)
            tasks.append(asyncio.create_task(push_loop(home, links[name].url, stop)))
    await asyncio.sleep(0.3)  # the long polls are open
    result: dict[str, Any] = {"mode": mode, "one_way_delay_ms": delay * 1000}
    if partition is None:
        for i in range(args.changes):
            await home.change(f"key:{i}")
            await asyncio.sleep(1 / args.rate)
        last = home.head
    else:
        result["partition"] = partition
        links["gcp"].partition(partition)  # type: ignore[arg-type]
        for i in range(args.partition_changes):
            await home.change(f"key:{i}")
            await asyncio.sleep(args.partition_s / args.partition_changes)
        last = home.head
        followers["gcp"].target = last
        healed = time.monotonic()
        links["gcp"].heal()
        async with asyncio.timeout(30):
            await followers["gcp"].caught_up.wait()
        result["catch_up_after_heal_ms"] = round((time.monotonic() - healed) * 1000, 1)
    deadline = time.monotonic() + 30
    while any(f.applied_seq < last for f in followers.values()):
        assert time.monotonic() < deadline, "followers did not catch up within 30 s"
        await asyncio.sleep(0.01)
    for name, follower in followers.items():
        rows = await follower.rows()
        seqs = [s for s, _, _ in rows]
        # Exactly the home's changes, once each, in order: no gap, no duplicate.
        assert seqs == list(range(1, last + 1)), (name, seqs[:5], len(seqs), last)
        if partition is None or name == "azure":
            result[name] = lag_stats(rows)
        result[f"{name}_exact"] = True
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for runner in runners:
        await runner.cleanup()
    await home.close()
    for follower in followers.values():
        await follower.conn.close()
    return result


async def main_async(args: Any) -> list[dict[str, Any]]:
    servers = {name: PostgresServer() for name in ("aws", *FOLLOWERS)}
    injector = Injector()
    try:
        urls = {name: server.url for name, server in servers.items()}
        results = []
        for mode in ("pull", "stream", "push"):
            for delay in args.delays:
                results.append(await scenario(mode, delay, None, urls, injector, args))
                print(json.dumps(results[-1]))
            for partition in ("drop", "reset"):
                results.append(
                    await scenario(mode, args.delays[-1], partition, urls, injector, args)
                )
                print(json.dumps(results[-1]))
        return results
    finally:
        injector.close()
        for server in servers.values():
            server.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delays", type=float, nargs="+", default=[0.0, 0.025, 0.075])
    parser.add_argument("--changes", type=int, default=30, help="changes per delay")
    parser.add_argument("--rate", type=float, default=10.0, help="changes per second")
    parser.add_argument("--partition-s", type=float, default=5.0, help="partition length, s")
    parser.add_argument("--partition-changes", type=int, default=300)
    parser.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "multicloud-feed.json")
    )
    args = parser.parse_args()
    results = uvloop.run(main_async(args))
    with open(args.out, "w") as handle:
        json.dump(
            {"settings": {k: v for k, v in vars(args).items() if k != "out"}, "results": results},
            handle,
            indent=2,
        )
        handle.write("\n")


if __name__ == "__main__":
    main()
