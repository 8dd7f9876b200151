"""A small HTTP/1.1 server for the gateway's ASGI app (``serve --server httptools``).

Why not only uvicorn: at one connection uvicorn costs ~190 us of CPU per
request for an empty app, more than the gateway itself, and it writes every
response in two ``send`` syscalls (head, then body). This server parses with
the same httptools (llhttp) uvicorn uses, but writes each response head and
its first body bytes in one syscall, builds the ASGI scope with no per-request
copies beyond the header list, and does nothing else: no HTTP/2, no
WebSockets, no access log, no proxy headers (the ingress terminates TLS).

Behaviour the app relies on, as uvicorn provides it: keep-alive and
pipelining (requests on a connection are answered in order), request bodies
streamed to ``receive()``, ``http.disconnect`` when the client leaves (and
once the response is complete), chunked responses when the app sets no
``content-length``, ``Expect: 100-continue``, write back-pressure for slow
stream readers, and a graceful SIGTERM: stop accepting, close idle
connections, let in-flight requests finish within the grace period, then run
the lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools

log = logging.getLogger("gateway_app.server")

ASGIApp = Callable[..., Any]

_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus
}
# Idle keep-alive connections close after this long. Longer than the usual load
# balancer idle timeout (60 s), so the balancer, not the gateway, closes first and
# never sends a request into a connection the gateway is closing.
KEEP_ALIVE_TIMEOUT_S = 75.0
_CHUNKED = b"transfer-encoding: chunked\r\n"
_CLOSE = b"connection: close\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n"
    b"connection: close\r\n\r\nBad Request"
)
_ERROR_500_BODY = b'{"error":{"message":"internal server error","type":"server_error","code":null}}'
_ERROR_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_ERROR_500_BODY), _ERROR_500_BODY)
)


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else f"HTTP/1.1 {status} Unknown\r\n".encode()


class _ServerState:
    """What every connection shares: the app, open connections, the shutdown flag."""

    def __init__(self, app: ASGIApp, server_addr: tuple[str, int]) -> None:
        self.app = app
        self.server_addr = server_addr
        self.connections: set[_HttpProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False


class _Cycle:
    """One request/response exchange: the ASGI ``receive`` and ``send`` callables."""

    __slots__ = (
        "body",
        "complete",
        "end_delivered",
        "expect_continue",
        "keep_alive",
        "on_disconnect",
        "protocol",
        "response_complete",
        "response_started",
        "scope",
        "waiter",
    )

    def __init__(self, protocol: _HttpProtocol, scope: dict[str, Any], keep_alive: bool) -> None:
        self.protocol = protocol
        self.scope = scope
        self.keep_alive = keep_alive
        self.body: deque[bytes] = deque()
        self.complete = False  # the whole request body arrived
        self.end_delivered = False  # receive() returned the last body message
        self.response_started = False
        self.response_complete = False
        self.expect_continue = False
        self.waiter: asyncio.Future[None] | None = None
        self.on_disconnect: Callable[[], None] | None = None

    def watch_disconnect(self, callback: Callable[[], None]) -> None:
        """The ``aigw.disconnect`` extension: ``callback()`` if the client leaves
        before the response is complete (instead of a task blocked in receive())."""
        self.on_disconnect = callback

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> dict[str, Any]:
        protocol = self.protocol
        if self.expect_continue and not protocol.closed:
            self.expect_continue = False
            protocol.transport.write(_CONTINUE)
        while True:
            if self.body:
                body = self.body.popleft() if len(self.body) == 1 else b"".join(self.body)
                self.body.clear()
                protocol.resume()
                if self.complete:
                    self.end_delivered = True
                return {"type": "http.request", "body": body, "more_body": not self.complete}
            if protocol.closed or self.response_complete:
                return {"type": "http.disconnect"}
            if self.complete and not self.end_delivered:
                self.end_delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            # Waiting for more body, or (body delivered) for the end of the exchange.
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self.waiter = None

    async def send(self, message: dict[str, Any]) -> None:
        protocol = self.protocol
        kind = message["type"]
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError("http.response.start sent twice")
            self.response_started = True
            head = [_status_line(message["status"])]
            chunked = True
            for name, value in message.get("headers", ()):
                if name == b"content-length" or name.lower() == b"content-length":
                    chunked = False
                head.append(name + b": " + value + b"\r\n")
            if chunked:
                head.append(_CHUNKED)
            if not self.keep_alive or protocol.state.stopping:
                self.keep_alive = False
                head.append(_CLOSE)
            head.append(b"\r\n")
            protocol.pending_head = b"".join(head)
            protocol.chunked = chunked
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        if not self.response_started:
            raise RuntimeError("http.response.body before http.response.start")
        if self.response_complete:
            return
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if protocol.chunked:
            data = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            if not more:
                data += b"0\r\n\r\n"
        else:
            data = body
        head = protocol.pending_head
        if head is not None:
            protocol.pending_head = None
            data = head + data
        if not protocol.closed and data:
            protocol.transport.write(data)  # head + body in one syscall
        if more:
            await protocol.drain()
            return
        self.response_complete = True
        self.wake()
        protocol.finish(self)


class _HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, state: _ServerState) -> None:
        self.state = state
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.closed = False
        self.client: tuple[str, int] | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.cycle: _Cycle | None = None  # the request being parsed
        self.active: _Cycle | None = None  # the request being answered
        self.pipeline: deque[_Cycle] = deque()
        self.pending_head: bytes | None = None
        self.chunked = False
        self.read_paused = False
        self.write_paused: asyncio.Future[None] | None = None
        self.idle_since: float | None = None  # loop time the connection went idle
        self.loop = asyncio.get_running_loop()

    def _mark_idle(self) -> None:
        # A timestamp, not a timer per request: the server's sweeper closes
        # connections idle past KEEP_ALIVE_TIMEOUT_S.
        self.idle_since = self.loop.time()

    def close_if_idle(self, now: float) -> None:
        """Close the connection if no request has been seen for the keep-alive timeout."""
        if (
            self.idle_since is not None
            and now - self.idle_since >= KEEP_ALIVE_TIMEOUT_S
            and self.idle
            and not self.closed
        ):
            self.transport.close()

    # ------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.connections.add(self)
        peer = transport.get_extra_info("peername")
        self.client = (peer[0], peer[1]) if isinstance(peer, tuple) else None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._mark_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.idle_since = None
        self.state.connections.discard(self)
        for cycle in (self.active, self.cycle, *self.pipeline):
            if cycle is not None:
                cycle.wake()
                callback = cycle.on_disconnect
                if callback is not None and not cycle.response_complete:
                    cycle.on_disconnect = None
                    callback()
        if self.write_paused is not None and not self.write_paused.done():
            self.write_paused.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject()
        except httptools.HttpParserError:
            self._reject()

    def pause_writing(self) -> None:
        if self.write_paused is None:
            self.write_paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.write_paused is not None:
            if not self.write_paused.done():
                self.write_paused.set_result(None)
            self.write_paused = None

    async def drain(self) -> None:
        if self.write_paused is not None:
            await self.write_paused

    def resume(self) -> None:
        if self.read_paused and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()

    def _reject(self) -> None:
        if self.active is None or not self.active.response_started:
            self.transport.write(_BAD_REQUEST)
        self.transport.close()

    # ------------------------------------------------------------ httptools
    def on_message_begin(self) -> None:
        self.idle_since = None
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": self.parser.get_http_version(),
            "server": self.state.server_addr,
            "client": self.client,
            "scheme": "http",
            "method": self.parser.get_method().decode("ascii"),
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": parsed.query or b"",
            "headers": self.headers,
        }
        cycle = _Cycle(self, scope, self.parser.should_keep_alive())
        scope["extensions"] = {"aigw.disconnect": cycle.watch_disconnect}
        for name, value in self.headers:
            if name == b"expect" and value.lower() == b"100-continue":
                cycle.expect_continue = True
        self.cycle = cycle
        if self.active is None:
            self._start(cycle)
        else:
            self.pipeline.append(cycle)
            # Back-pressure: no more reading while a pipelined request waits its turn.
            if not self.read_paused:
                self.read_paused = True
                self.transport.pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle is None:
            return
        cycle.body.append(body)
        if len(cycle.body) > 16 and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if cycle is None:
            return
        cycle.complete = True
        self.cycle = None
        cycle.wake()

    # ------------------------------------------------------------ cycles
    def _start(self, cycle: _Cycle) -> None:
        self.active = cycle
        self.pending_head = None
        self.chunked = False
        task = asyncio.get_running_loop().create_task(self._run(cycle))
        self.state.tasks.add(task)
        task.add_done_callback(self.state.tasks.discard)

    async def _run(self, cycle: _Cycle) -> None:
        try:
            await self.state.app(cycle.scope, cycle.receive, cycle.send)
        except asyncio.CancelledError:
            self._abandon(cycle)  # shutdown past the grace period
            raise
        except Exception:
            log.exception("unhandled error in the ASGI app")
            self._abandon(cycle)
            return
        if not cycle.response_complete:
            self._abandon(cycle)

    def _abandon(self, cycle: _Cycle) -> None:
        """The app ended without completing its response: 500, or cut the connection."""
        if self.closed or cycle.response_complete:
            return
        if not cycle.response_started:
            self.transport.write(_ERROR_500)
            cycle.response_complete = True
            self.finish(cycle)
        else:
            self.transport.close()

    def finish(self, cycle: _Cycle) -> None:
        """The response is complete: close, or answer the next pipelined request."""
        if self.active is not cycle:
            return
        self.active = None
        if not cycle.keep_alive or self.state.stopping:
            if not self.closed:
                self.transport.close()
            return
        if self.pipeline:
            self._start(self.pipeline.popleft())
            if not self.pipeline:
                self.resume()
        elif self.cycle is None:
            self._mark_idle()

    @property
    def idle(self) -> bool:
        return self.active is None and self.cycle is None


# ---------------------------------------------------------------------- lifecycle


async def _lifespan(app: ASGIApp, phase: str, channel: dict[str, Any]) -> None:
    """Drive the app's lifespan protocol (one task for startup and shutdown)."""
    if phase == "startup":
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        channel["inbox"], channel["outbox"] = inbox, outbox
        channel["task"] = asyncio.get_running_loop().create_task(app(scope, inbox.get, outbox.put))
    inbox, outbox = channel["inbox"], channel["outbox"]
    await inbox.put({"type": f"lifespan.{phase}"})
    reply = await outbox.get()
    if reply["type"] == f"lifespan.{phase}.failed":
        raise RuntimeError(f"lifespan {phase} failed: {reply.get('message', '')}")


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    graceful_shutdown_s: float = 30.0,
    sock: socket.socket | None = None,
    ready: Callable[[tuple[str, int]], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT or ``stop`` is set, then shut down gracefully."""
    loop = asyncio.get_running_loop()
    channel: dict[str, Any] = {}
    await _lifespan(app, "startup", channel)
    state = _ServerState(app, (host, port))
    if sock is not None:
        server = await loop.create_server(lambda: _HttpProtocol(state), sock=sock, backlog=2048)
    else:
        server = await loop.create_server(
            lambda: _HttpProtocol(state), host, port, backlog=2048, reuse_address=True
        )
    bound = server.sockets[0].getsockname()
    state.server_addr = (bound[0], bound[1])
    stop = stop or asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    log.warning("gateway serving on http://%s:%d (pid %d)", bound[0], bound[1], os.getpid())
    if ready is not None:
        ready(state.server_addr)
    sweeper = loop.create_task(_sweep_idle(state))
    try:
        await stop.wait()
    finally:
        sweeper.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)
        await _drain(server, state, graceful_shutdown_s)
        await _lifespan(app, "shutdown", channel)
        log.warning("Application shutdown complete.")


async def _sweep_idle(state: _ServerState) -> None:
    """Close keep-alive connections idle past KEEP_ALIVE_TIMEOUT_S (checked every second)."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(min(1.0, KEEP_ALIVE_TIMEOUT_S / 4))
        now = loop.time()
        for conn in list(state.connections):
            conn.close_if_idle(now)


async def _drain(server: asyncio.Server, state: _ServerState, grace: float) -> None:
    """Stop accepting, close idle connections, give in-flight requests ``grace`` seconds."""
    state.stopping = True
    server.close()
    for conn in list(state.connections):
        if conn.idle:
            conn.transport.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while state.tasks and loop.time() < deadline:
        await asyncio.sleep(0.05)
    for task in list(state.tasks):
        task.cancel()
    for conn in list(state.connections):
        conn.transport.close()
    if state.tasks:
        await asyncio.gather(*state.tasks, return_exceptions=True)


def run(
    factory: Callable[[], ASGIApp],
    host: str,
    port: int,
    graceful_shutdown_s: float,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Run the server on uvloop (blocking); ``workers`` > 1 forks processes sharing one socket."""
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s: %(message)s")
    if workers <= 1:
        _run_worker(factory, host, port, graceful_shutdown_s, None)
        return
    sock = socket.create_server((host, port), backlog=2048, reuse_port=False)
    sock.setblocking(False)
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                _run_worker(factory, host, port, graceful_shutdown_s, sock)
            finally:
                # os._exit skips atexit: write the buffered log lines first.
                logging.shutdown()
                os._exit(0)
        children.append(pid)
    sock.close()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        while True:
            try:
                os.waitpid(child, 0)
                break
            except InterruptedError:
                continue


def _run_worker(
    factory: Callable[[], ASGIApp],
    host: str,
    port: int,
    graceful_shutdown_s: float,
    sock: socket.socket | None,
) -> None:
    import uvloop

    async def main() -> None:
        await serve(factory(), host, port, graceful_shutdown_s=graceful_shutdown_s, sock=sock)

    uvloop.run(main())
