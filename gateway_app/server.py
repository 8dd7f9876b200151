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

Hostile clients (tests/gateway/test_hostile_clients.py runs them against the
default ``serve --workers 2``): a request line longer than ``max_url_bytes``
gets 414 and a head (request line and headers) longer than
``max_header_bytes`` gets 431, both counted as the bytes arrive, before they
are buffered; headers must be complete ``header_timeout_s`` after the
connection opens or the request's first byte arrives, and a body
``body_timeout_s`` after its headers (408 and close, whatever the pace of the
trickle); requests smuggled with both ``Content-Length`` and
``Transfer-Encoding``, or two ``Content-Length`` headers, are refused by llhttp
(400 and close). Every error the server itself answers has OpenAI's error
shape. With ``workers`` > 1 a supervisor process replaces a worker that dies
(``kill -9``, a crash), logs it and counts it in ``aigw_worker_restarts_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools
import orjson

log = logging.getLogger("gateway_app.server")

ASGIApp = Callable[..., Any]

_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus
}
# Idle keep-alive connections close after this long. Longer than the usual load
# balancer idle timeout (60 s), so the balancer, not the gateway, closes first and
# never sends a request into a connection the gateway is closing.
KEEP_ALIVE_TIMEOUT_S = 75.0
# A connection closed by the server after an early answer (413, 431, 408) first
# discards what the client still sends for at most this long (see close_lingering).
LINGER_S = 2.0
_CHUNKED = b"transfer-encoding: chunked\r\n"
_CLOSE = b"connection: close\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_ERROR_500_BODY = b'{"error":{"message":"internal server error","type":"server_error","code":null}}'
_ERROR_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_ERROR_500_BODY), _ERROR_500_BODY)
)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What the server accepts from a client before the app sees the request.

    The defaults are those of ``server:`` in the gateway config (``ServerConfig``).
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_url_bytes: int = 8192
    max_header_bytes: int = 32768

    @classmethod
    def from_config(cls, server: Any) -> HttpLimits:
        """From the config's ``server:`` section."""
        return cls(
            header_timeout_s=server.header_timeout_s,
            body_timeout_s=server.body_timeout_s,
            max_url_bytes=server.max_url_bytes,
            max_header_bytes=server.max_header_bytes,
        )


def error_response(status: int, message: str, code: str) -> bytes:
    """A complete response in OpenAI's error shape that closes the connection."""
    body = orjson.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error" if status < 500 else "server_error",
                "param": None,
                "code": code,
            }
        }
    )
    head = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
    return _status_line(status) + head % len(body) + body


class _Refused(Exception):
    """Raised from a parser callback: answer ``status`` and close."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else f"HTTP/1.1 {status} Unknown\r\n".encode()


class _ServerState:
    """What every connection shares: the app, open connections, the shutdown flag."""

    def __init__(
        self, app: ASGIApp, server_addr: tuple[str, int], limits: HttpLimits | None = None
    ) -> None:
        self.app = app
        self.server_addr = server_addr
        self.limits = limits or HttpLimits()
        self.connections: set[_HttpProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        # The ``aigw.stopping`` extension: long responses (the governance change feed)
        # poll it and end themselves when the server drains.
        self.is_stopping: Callable[[], bool] = lambda: self.stopping


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
        self.scope: dict[str, Any] | None = scope  # until the app is called with it
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
            waiter = self.waiter = protocol.loop.create_future()
            try:
                await waiter
            finally:
                self.waiter = None

    async def send(self, message: dict[str, Any]) -> None:
        if self.response_complete:
            return  # the server answered itself (a read timeout) or the response is done
        protocol = self.protocol
        kind = message["type"]
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError("http.response.start sent twice")
            self.response_started = True
            head = [_status_line(message["status"])]
            chunked = True
            # (One join of every part below: a header's three concatenations and its name's
            # lower() cost ~55 ns more, ~0.5 µs a governed response's ten headers.)
            for name, value in message.get("headers", ()):
                if len(name) == 14 and name.lower() == b"content-length":
                    chunked = False
                head += (name, b": ", value, b"\r\n")
            if chunked:
                head.append(_CHUNKED)
            # An answer before the whole request body arrived (a 413) closes the connection.
            if not self.keep_alive or protocol.state.stopping or not self.complete:
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
        pending = protocol.pending_head
        if pending is not None:
            protocol.pending_head = None
            data = pending + data
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
        # (Held: asyncio.get_running_loop() is a getpid() system call on Python 3.11,
        # ~0.18 µs, and a request needs the loop several times.)
        self.loop = asyncio.get_running_loop()
        self.limits = state.limits
        # The head (request line + headers) being read: its bytes so far, and whether
        # one is being read at all (between requests, the next one's head is).
        self.in_head = True
        self.head_bytes = 0
        # Loop time by which the head or body being read must be complete (None: no
        # read is due). Timestamps checked by the sweeper, not a timer per request.
        self.read_deadline: float | None = None
        self.reading_body = False
        self.discarding = False  # answered and closing: what still arrives is dropped

    def _mark_idle(self) -> None:
        # A timestamp, not a timer per request: the server's sweeper closes
        # connections idle past KEEP_ALIVE_TIMEOUT_S.
        self.idle_since = self.loop.time()

    def sweep(self, now: float) -> None:
        """Close the connection if idle past the keep-alive timeout, or past a read deadline."""
        if self.closed:
            return
        if self.idle_since is not None:
            if now - self.idle_since >= KEEP_ALIVE_TIMEOUT_S and self.idle:
                self.transport.close()
            return
        deadline = self.read_deadline
        # While reading is paused the server, not the client, holds the bytes back.
        if deadline is None or now < deadline or self.read_paused:
            return
        if self.reading_body:
            what = f"the request body did not arrive within {self.limits.body_timeout_s:g}s"
        else:
            what = f"the request headers did not arrive within {self.limits.header_timeout_s:g}s"
        log.warning("closing a connection from %s: %s", self._peer(), what)
        self._refuse(408, f"Request timeout: {what}.", "request_timeout")

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"

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
        # A new connection owes its first request's headers within the header timeout.
        self.read_deadline = self.loop.time() + self.limits.header_timeout_s

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
        if self.discarding:
            return
        if self.in_head:
            # Counted before parsing: httptools buffers a partial header itself, so a
            # 40 MB header is refused after one read past the cap, not after 40 MB.
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self._refuse(refused.status, refused.message, refused.code)
            else:
                log.error("HTTP parser callback failed", exc_info=exc)
                self._refuse(400, "Malformed HTTP request.", "bad_request")
            return
        except httptools.HttpParserUpgrade:
            self._refuse(400, "Protocol upgrades are not supported.", "bad_request")
            return
        except httptools.HttpParserError as exc:
            self._refuse(400, f"Malformed HTTP request: {exc}.", "bad_request")
            return
        if self.in_head and self.head_bytes > self.limits.max_header_bytes:
            self._refuse_head_size()

    def pause_writing(self) -> None:
        if self.write_paused is None:
            self.write_paused = self.loop.create_future()

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

    def _refuse_head_size(self) -> None:
        limits = self.limits
        if not self.headers and len(self.url) >= limits.max_url_bytes:
            self._refuse(
                414,
                f"The request URL is longer than the gateway's limit of "
                f"{limits.max_url_bytes} bytes.",
                "url_too_long",
            )
        else:
            self._refuse(
                431,
                f"The request headers are larger than the gateway's limit of "
                f"{limits.max_header_bytes} bytes.",
                "request_headers_too_large",
            )

    def _refuse(self, status: int, message: str, code: str) -> None:
        """Answer an error of the server's own (unless a response started) and close."""
        if self.closed:
            return
        active = self.active
        if active is None or not active.response_started:
            self.transport.write(error_response(status, message, code))
            if active is not None:
                active.response_started = active.response_complete = True
        self.close_lingering()

    def close_lingering(self) -> None:
        """Close once the client stops sending (at most ``LINGER_S`` from now).

        Closing a socket with unread bytes makes the kernel send a reset, which can
        destroy the error response before the client reads it (a client still
        uploading the body a 413 refused): send FIN, discard what still arrives.
        """
        if self.closed or self.discarding:
            return
        self.discarding = True
        self.in_head = False
        self.read_deadline = None
        self.idle_since = None
        transport = self.transport
        if transport.can_write_eof():
            transport.write_eof()
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        self.loop.call_later(LINGER_S, transport.close)

    # ------------------------------------------------------------ httptools
    def on_message_begin(self) -> None:
        self.idle_since = None
        if self.read_deadline is None:
            # The first byte of a request after the previous one: its head is due. (A
            # new connection's first request keeps the deadline set on accept.)
            self.read_deadline = self.loop.time() + self.limits.header_timeout_s
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.limits.max_url_bytes:
            raise _Refused(
                414,
                f"The request URL is longer than the gateway's limit of "
                f"{self.limits.max_url_bytes} bytes.",
                "url_too_long",
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        self.reading_body = True
        self.read_deadline = self.loop.time() + self.limits.body_timeout_s
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        scope: dict[str, Any] = {
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
        scope["extensions"] = {
            "aigw.disconnect": cycle.watch_disconnect,
            "aigw.stopping": self.state.is_stopping,
        }
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
        self.in_head = True
        self.head_bytes = 0
        self.reading_body = False
        # The next request's head is due only once it starts (or the sweeper closes
        # the connection as idle); a pipelined one starts in this same read.
        self.read_deadline = None
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
        task = self.loop.create_task(self._run(cycle))
        self.state.tasks.add(task)
        task.add_done_callback(self.state.tasks.discard)

    async def _run(self, cycle: _Cycle) -> None:
        # The scope's ``aigw.disconnect`` is this cycle's method and the app's callback
        # holds the app's task: with the cycle holding the scope and the callback, every
        # object of the request would be cyclic garbage, freed only by the GC's
        # collections (the gateway's largest loop pauses). Dropped here, the request's
        # objects are freed by their reference counts as soon as it ends.
        scope = cycle.scope
        cycle.scope = None
        try:
            await self.state.app(scope, cycle.receive, cycle.send)
        except asyncio.CancelledError:
            self._abandon(cycle)  # shutdown past the grace period
            raise
        except Exception:
            log.exception("unhandled error in the ASGI app")
            self._abandon(cycle)
            return
        finally:
            cycle.on_disconnect = None  # the app has ended: nothing left to cancel
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
        # A response sent before its request's body was read whole (a 413, an early
        # error): the rest of that body would be parsed as the next request. Close.
        if not cycle.complete:
            self.close_lingering()
            return
        if not cycle.keep_alive or self.state.stopping:
            if not self.closed:
                self.transport.close()
            return
        if self.pipeline:
            self._start(self.pipeline.popleft())
            if not self.pipeline:
                self.resume()
        elif self.cycle is None and self.read_deadline is None:
            self._mark_idle()  # (else the next request's head is on its way, with its deadline)

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
    limits: HttpLimits | None = None,
    internal_sock: socket.socket | None = None,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT or ``stop`` is set, then shut down gracefully.

    ``internal_sock`` is a second listener (the governance plane's internal port): the
    same app, told apart by the port in the scope's ``server``, drained with the first.
    """
    loop = asyncio.get_running_loop()
    channel: dict[str, Any] = {}
    await _lifespan(app, "startup", channel)
    state = _ServerState(app, (host, port), limits)
    if sock is not None:
        server = await loop.create_server(lambda: _HttpProtocol(state), sock=sock, backlog=2048)
    else:
        server = await loop.create_server(
            lambda: _HttpProtocol(state), host, port, backlog=2048, reuse_address=True
        )
    bound = server.sockets[0].getsockname()
    state.server_addr = (bound[0], bound[1])
    listeners = [(server, state)]
    if internal_sock is not None:
        internal = _ServerState(app, internal_sock.getsockname()[:2], limits)
        internal_server = await loop.create_server(
            lambda: _HttpProtocol(internal), sock=internal_sock, backlog=2048
        )
        listeners.append((internal_server, internal))
        log.warning("internal listener on %s:%d", *internal.server_addr)
    stop = stop or asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    log.warning("gateway serving on http://%s:%d (pid %d)", bound[0], bound[1], os.getpid())
    if ready is not None:
        ready(state.server_addr)
    sweepers = [loop.create_task(_sweep(each)) for _, each in listeners]
    try:
        await stop.wait()
    finally:
        for sweeper in sweepers:
            sweeper.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)
        await asyncio.gather(
            *(_drain(each, its_state, graceful_shutdown_s) for each, its_state in listeners)
        )
        await _lifespan(app, "shutdown", channel)
        log.warning("Application shutdown complete.")


async def _sweep(state: _ServerState) -> None:
    """Close connections idle past KEEP_ALIVE_TIMEOUT_S or past a read deadline."""
    loop = asyncio.get_running_loop()
    limits = state.limits
    # Deadlines are enforced to within half the shortest timeout (at most a second late).
    interval = min(1.0, KEEP_ALIVE_TIMEOUT_S / 4, limits.header_timeout_s / 2)
    interval = min(interval, limits.body_timeout_s / 2)
    while True:
        await asyncio.sleep(interval)
        now = loop.time()
        for conn in list(state.connections):
            conn.sweep(now)


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


class ListenError(Exception):
    """The server cannot listen on its address; the message says why and what to do."""


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before any worker starts (a port in use fails fast)."""
    import errno

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048, reuse_port=False)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is in use by another process; stop it or pick another --port"
        elif exc.errno == errno.EACCES:
            reason = "permission denied; use a port above 1023"
        else:
            reason = exc.strerror or str(exc)
        raise ListenError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.setblocking(False)
    return sock


def run(
    factory: Callable[[], ASGIApp],
    host: str,
    port: int,
    graceful_shutdown_s: float,
    workers: int = 1,
    log_level: str = "info",
    limits: HttpLimits | None = None,
    internal_port: int | None = None,
) -> int:
    """Run the server on uvloop (blocking); ``workers`` > 1 forks workers sharing one socket
    under a supervisor that replaces any that die. The exit status: 0 after a clean stop.

    ``internal_port``: a second listener on the same host (``governance.global.port``).
    """
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s: %(message)s")
    sock = listen(host, port)
    internal = listen(host, internal_port) if internal_port is not None else None
    if workers <= 1:
        _run_worker(factory, host, port, graceful_shutdown_s, sock, limits, internal)
        return 0
    # The supervisor keeps the listening socket open (it never accepts on it): each
    # worker, a replacement too, inherits it through fork.
    return Supervisor(
        lambda: _run_worker(factory, host, port, graceful_shutdown_s, sock, limits, internal),
        workers,
    ).run()


class Supervisor:
    """Forks ``workers`` processes and keeps that many running until SIGTERM/SIGINT.

    A worker that exits while the server is not stopping (killed, crashed) is
    logged, counted in ``aigw_worker_restarts_total`` and replaced at once. A
    worker that dies within ``_CRASH_WINDOW_S`` of its start ``_CRASH_LIMIT``
    times in a row is not starting at all (a broken config, an unreachable
    dependency at start-up): the supervisor then stops the others and exits 1,
    so the orchestrator sees a failed container rather than a silent crash loop.
    """

    _CRASH_WINDOW_S = 5.0
    _CRASH_LIMIT = 5

    def __init__(self, work: Callable[[], None], workers: int) -> None:
        self.work = work
        self.workers = workers
        self.children: dict[int, float] = {}  # pid -> monotonic start time
        self.stopping = False
        self.quick_deaths = 0
        self.restarts = _restart_counter()

    def _spawn(self) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                self.work()
                code = 0
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                # os._exit skips atexit: write the buffered log lines first.
                logging.shutdown()
                os._exit(code)
        self.children[pid] = time.monotonic()

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for child in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    def run(self) -> int:
        """Supervise until every worker has exited after a stop; the exit status."""
        for _ in range(self.workers):
            self._spawn()
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        status = 0
        while self.children:
            try:
                pid, wait_status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            started = self.children.pop(pid, None)
            if started is None:
                continue
            _forget_worker_metrics(pid)
            if self.stopping:
                continue
            how = _exit_description(wait_status)
            if time.monotonic() - started < self._CRASH_WINDOW_S:
                self.quick_deaths += 1
            else:
                self.quick_deaths = 0
            if self.quick_deaths >= self._CRASH_LIMIT:
                log.error(
                    "worker %d %s; %d workers died within %gs of starting in a row: "
                    "stopping the server (see the errors above)",
                    pid,
                    how,
                    self.quick_deaths,
                    self._CRASH_WINDOW_S,
                )
                status = 1
                self._stop(signal.SIGTERM, None)
                continue
            if self.restarts is not None:
                self.restarts.inc()
            log.error("worker %d %s; starting a replacement", pid, how)
            if self.quick_deaths:
                time.sleep(min(2.0, 0.1 * 2**self.quick_deaths))
            self._spawn()
        return status


def _exit_description(wait_status: int) -> str:
    if os.WIFSIGNALED(wait_status):
        signum = os.WTERMSIG(wait_status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        return f"was killed by {name}"
    return f"exited with status {os.waitstatus_to_exitcode(wait_status)}"


def _restart_counter() -> Any:
    """``aigw_worker_restarts_total``, summed into every worker's /metrics (multiprocess
    mode: the supervisor's value lives in its own file of the shared metrics directory)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    from prometheus_client import Counter

    return Counter(
        "aigw_worker_restarts",
        "Worker processes the supervisor replaced after they died (killed, crashed)",
        registry=None,
    )


def _forget_worker_metrics(pid: int) -> None:
    """Drop a dead worker's live-gauge files (its counters stay summed)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(Exception):
        multiprocess.mark_process_dead(pid)


def _run_worker(
    factory: Callable[[], ASGIApp],
    host: str,
    port: int,
    graceful_shutdown_s: float,
    sock: socket.socket | None,
    limits: HttpLimits | None = None,
    internal_sock: socket.socket | None = None,
) -> None:
    import uvloop

    async def main() -> None:
        await serve(
            factory(),
            host,
            port,
            graceful_shutdown_s=graceful_shutdown_s,
            sock=sock,
            limits=limits,
            internal_sock=internal_sock,
        )

    uvloop.run(main())
