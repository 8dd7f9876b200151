"""A fault injector for the links between simulated clouds: one TCP proxy per link.

Each :class:`Link` listens on a loopback port and forwards every connection to
its target, byte for byte, in both directions. The test controls it while
traffic flows:

* :meth:`Link.delay` adds one-way latency (each chunk is delivered ``delay``
  after it was read, in order; chunks in flight do not wait for each other, so
  a stream costs one delay, not one per chunk: a long, fat link, not a slow one);
* :meth:`Link.partition` cuts the link. ``"drop"`` holds every byte (existing
  connections stall, new ones connect but nothing reaches the other side), as
  a firewall that drops packets does while TCP retransmits; on
  :meth:`Link.heal` the held bytes are delivered, in order, like TCP's
  retransmissions after a short partition. ``"reset"`` aborts every connection
  with a TCP RST and resets new ones, as a firewall that rejects;
* :meth:`Link.loss` resets a connection with the given probability per chunk:
  what a lossy path looks like to an application once TCP gives up (loss that
  TCP recovers from only shows up as delay, which :meth:`Link.delay` models);
* :meth:`Link.heal` clears every fault.

Why not Toxiproxy (the well-known proxy made for this): none of the package
registries this project installs from ships its binary (PyPI and npm carry
only clients; Debian has no package), and a network namespace with ``tc netem``
needs privileges a developer's laptop may not grant. This proxy is ~250 lines
on asyncio; ``bench/multicloud_faults.py`` measures what it adds to a round trip.

All links of an :class:`Injector` run on one event loop in one daemon thread;
:meth:`Injector.close` closes every listener and connection. Nothing here has
a timeout of its own: the clients in the tests do (a partition is a hang).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal

PartitionMode = Literal["drop", "reset"]
_CHUNK = 65536


@dataclass
class LinkStats:
    """What a link has carried (for assertions and the benchmark)."""

    connections: int = 0
    bytes_forward: int = 0  # towards the target
    bytes_back: int = 0  # from the target
    resets: int = 0


class _Pipe:
    """One direction of one connection: a reader that stamps chunks, a writer that delivers them."""

    def __init__(
        self,
        link: Link,
        conn: _Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        forward: bool,
    ) -> None:
        self.link = link
        self.conn = conn
        self.reader = reader
        self.writer = writer
        self.forward = forward
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read(self) -> None:
        while True:
            data = await self.reader.read(_CHUNK)
            if data and self.link._lose():
                self.conn.reset()
                return
            # b"" (end of stream) goes through the queue too: it must follow the data.
            self.queue.put_nowait((time.monotonic() + self.link._one_way(), data))
            if not data:
                return

    async def write(self) -> None:
        while True:
            due, data = await self.queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self.link._flowing.wait()  # a "drop" partition holds bytes here
            if not data:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                return
            # Counted before the write: a reader on the other side may look at once.
            if self.forward:
                self.link.stats.bytes_forward += len(data)
            else:
                self.link.stats.bytes_back += len(data)
            self.writer.write(data)
            await self.writer.drain()


class _Connection:
    """A client connection and its connection to the target."""

    def __init__(self, link: Link, client: asyncio.StreamWriter) -> None:
        self.link = link
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def reset(self) -> None:
        """Abort both sides with a TCP RST (SO_LINGER 0), as a rejecting firewall would."""
        self.link.stats.resets += 1
        for writer in (self.client, self.upstream):
            if writer is None:
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()

    async def run(self, client_reader: asyncio.StreamReader) -> None:
        self.tasks = [asyncio.current_task()]  # type: ignore[list-item]
        # A "drop" partition also holds the connection to the target (the SYN is lost).
        await self.link._flowing.wait()
        try:
            up_reader, self.upstream = await asyncio.open_connection(*self.link.target)
        except OSError:
            self.reset()  # the target is down: the client sees a reset, as through NAT
            return
        pipes = (
            _Pipe(self.link, self, client_reader, self.upstream, forward=True),
            _Pipe(self.link, self, up_reader, self.client, forward=False),
        )
        workers = [asyncio.create_task(p.read()) for p in pipes]
        workers += [asyncio.create_task(p.write()) for p in pipes]
        self.tasks += workers
        try:
            await asyncio.gather(*workers)
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass
        finally:
            for task in workers:
                task.cancel()
            for writer in (self.client, self.upstream):
                writer.transport.close()


class Link:
    """One direction of an inter-cloud link: ``127.0.0.1:port`` forwards to ``target``.

    Control methods are called from the test's thread; they take effect for
    bytes read after the call (``partition("reset")`` also aborts connections
    open at the time).
    """

    def __init__(self, injector: Injector, name: str, target: tuple[str, int]) -> None:
        self.injector = injector
        self.name = name
        self.target = target
        self.stats = LinkStats()
        self.port = 0
        self._delay_s = 0.0
        self._jitter_s = 0.0
        self._loss = 0.0
        self._rng = random.Random(0)
        self._mode: PartitionMode | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None

    # -- control (test thread)

    @property
    def address(self) -> tuple[str, int]:
        """Where the source cloud connects to reach the target through this link."""
        return ("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the target's HTTP service through this link."""
        return f"http://127.0.0.1:{self.port}"

    def delay(self, seconds: float, jitter: float = 0.0) -> Link:
        """One-way latency of ``seconds`` plus a uniform ``[0, jitter)`` per chunk (order kept)."""
        if seconds < 0 or jitter < 0:
            raise ValueError(f"delay and jitter must be >= 0 seconds, got {seconds}, {jitter}")
        self._delay_s, self._jitter_s = seconds, jitter
        return self

    def loss(self, probability: float, seed: int = 0) -> Link:
        """Reset a connection with ``probability`` per chunk read (seeded, reproducible)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"loss probability must be within [0, 1], got {probability}")
        self._loss, self._rng = probability, random.Random(seed)
        return self

    def partition(self, mode: PartitionMode = "drop") -> Link:
        """Cut the link: ``drop`` holds every byte until :meth:`heal`; ``reset`` aborts."""
        if mode not in ("drop", "reset"):
            raise ValueError(f"partition mode must be 'drop' or 'reset', got {mode!r}")
        self.injector._call(self._partition(mode))
        return self

    def heal(self) -> Link:
        """Clear every fault; bytes held by a ``drop`` partition are delivered in order."""
        self._delay_s = self._jitter_s = self._loss = 0.0
        self.injector._call(self._heal())
        return self

    @property
    def partitioned(self) -> PartitionMode | None:
        """The partition in force, if any."""
        return self._mode

    # -- on the injector's loop

    async def _partition(self, mode: PartitionMode) -> None:
        self._mode = mode
        self._flowing.clear()
        if mode == "reset":
            for conn in list(self._connections):
                conn.reset()

    async def _heal(self) -> None:
        self._mode = None
        self._flowing.set()

    def _one_way(self) -> float:
        if self._jitter_s:
            return self._delay_s + self._rng.uniform(0, self._jitter_s)
        return self._delay_s

    def _lose(self) -> bool:
        return self._loss > 0 and self._rng.random() < self._loss

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        conn = _Connection(self, writer)
        if self._mode == "reset":
            conn.reset()
            return
        self._connections.add(conn)
        try:
            await conn.run(reader)
        finally:
            self._connections.discard(conn)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.reset()
        if self._server is not None:
            await self._server.wait_closed()


class Injector:
    """The links of one simulation, served by one event loop in a daemon thread."""

    def __init__(self) -> None:
        self.links: dict[str, Link] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fault-injector", daemon=True
        )
        self._thread.start()

    def _call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def link(self, name: str, target: tuple[str, int]) -> Link:
        """A new link called ``name`` (e.g. ``aws->gcp``) forwarding to ``target``."""
        if name in self.links:
            raise ValueError(f"a link named {name!r} exists already")

        async def create() -> Link:
            # Built on the loop: its asyncio.Event belongs to that loop.
            link = Link(self, name, target)
            await link._start()
            return link

        link = self._call(create())
        self.links[name] = link
        return link

    @staticmethod
    async def _cancel_all() -> None:
        """End every connection task still running (no "task destroyed" warnings at exit)."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def heal_all(self) -> None:
        """Clear every fault on every link."""
        for link in self.links.values():
            link.heal()

    def close(self) -> None:
        """Close every listener and connection, then stop the loop (bounded wait)."""
        if self._loop.is_closed():
            return
        for link in self.links.values():
            with contextlib.suppress(Exception):
                self._call(link._close(), timeout=5.0)
        with contextlib.suppress(Exception):
            self._call(self._cancel_all(), timeout=5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> Injector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
