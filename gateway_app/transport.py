"""The upstream HTTP transport, behind a small interface.

The router needs four things from HTTP: POST a body and read the whole answer;
POST and read a stream chunk by chunk; keep connections alive across requests;
and drop a connection on purpose (client gone, stream broken). The interface
below is exactly that, so the client library is one swappable class (the
benchmark issue measures alternatives). Errors are the gateway's own:
:class:`TimeoutError` for a deadline and :class:`UpstreamConnectionError` for
everything else that broke the exchange.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import os
import socket
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiohttp
import httptools


class UpstreamConnectionError(Exception):
    """Could not connect, or the connection broke mid-exchange."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy for upstream calls: where it is and its credentials, if any."""

    host: str
    port: int
    authorization: str | None = None  # the Proxy-Authorization header value


def _env(environ: Mapping[str, str], name: str) -> str | None:
    # Lowercase first, as curl and most HTTP clients read them.
    return environ.get(name) or environ.get(name.upper()) or None


def _parse_proxy(name: str, value: str | None) -> Proxy | None:
    if not value:
        return None
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(
            f"{name}={value!r}: use an http:// proxy URL (http://[user:password@]host:port); "
            "the tunnel to an https upstream is TLS end to end through it"
        )
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
    return Proxy(parts.hostname, parts.port or 80, authorization)


class ProxySettings:
    """``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY`` for upstream calls (enterprises route
    egress through a proxy). ``NO_PROXY`` takes ``*``, host names (a name also matches its
    subdomains; a leading dot is optional), IP addresses, CIDR ranges, each with an
    optional ``:port``."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.https = _parse_proxy("HTTPS_PROXY", _env(environ, "https_proxy"))
        self.http = _parse_proxy("HTTP_PROXY", _env(environ, "http_proxy"))
        self.no_proxy = [
            entry.strip().lower()
            for entry in (_env(environ, "no_proxy") or "").split(",")
            if entry.strip()
        ]

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy to reach ``scheme://host:port`` through, or None (direct)."""
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or self._bypassed(host.lower().strip("[]"), port):
            return None
        return proxy

    def _bypassed(self, host: str, port: int) -> bool:
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(
                host
            )
        except ValueError:
            address = None
        for entry in self.no_proxy:
            if entry == "*":
                return True
            name, entry_port = entry, None
            if entry.count(":") == 1:  # host:port (an IPv6 entry has several colons)
                name, _, text = entry.partition(":")
                entry_port = int(text) if text.isdigit() else None
            if entry_port is not None and entry_port != port:
                continue
            name = name.strip("[]")
            if address is not None:
                try:
                    if address in ipaddress.ip_network(name, strict=False):
                        return True
                except ValueError:
                    pass
                continue
            domain = name.lstrip(".")
            if domain and (host == domain or host.endswith("." + domain)):
                return True
        return False


class _TunnelSetup(asyncio.Protocol):
    """Reads the proxy's answer to ``CONNECT`` (its head only; nothing follows it)."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer and not self.answer.done():
            self.answer.set_result(self.buffer)
        elif len(self.buffer) > 65536 and not self.answer.done():
            self.answer.set_exception(UpstreamConnectionError("the proxy's answer is too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(
                UpstreamConnectionError("the proxy closed the connection during CONNECT")
            )


class UpstreamResponse(Protocol):
    """An upstream response whose headers arrived."""

    @property
    def status(self) -> int:
        """The response's status code."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The response's headers (lower-case names)."""
        ...

    async def read(self) -> bytes:
        """The whole body (then the connection is reusable)."""
        ...

    async def read_chunk(self) -> bytes:
        """The next bytes of the body; ``b""`` at the end."""
        ...

    def release(self) -> None:
        """Done with a completely read response: return the connection to the pool."""
        ...

    def close(self) -> None:
        """Abandon the response: close its connection (the upstream sees the client leave)."""
        ...


class UpstreamClient(Protocol):
    """A pooled keep-alive HTTP client for upstream calls."""

    async def start(self) -> None:
        """Open pools (inside the running event loop)."""
        ...

    async def close(self) -> None:
        """Close every connection."""
        ...

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, *, timeout: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        """POST and read the whole response within ``timeout`` seconds."""
        ...

    async def open(
        self, url: str, headers: dict[str, str], body: bytes, *, timeout: float
    ) -> UpstreamResponse:
        """POST and return once headers arrived; ``timeout`` bounds connect and each read."""
        ...


class _AiohttpResponse:
    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError:
            raise  # aiohttp's timeout errors are ClientErrors too; keep them timeouts
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"{type(exc).__name__}: {exc}") from None

    async def read_chunk(self) -> bytes:
        try:
            return await self._response.content.readany()
        except TimeoutError:
            raise  # aiohttp's timeout errors are ClientErrors too; keep them timeouts
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"{type(exc).__name__}: {exc}") from None

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        self._response.close()


class AiohttpUpstreamClient:
    """:class:`UpstreamClient` on aiohttp (measured ~6x cheaper per call than httpx here)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector,
                skip_auto_headers=("User-Agent",),
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=True,  # HTTPS_PROXY / HTTP_PROXY / NO_PROXY
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ready(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the upstream client was not started (app lifespan not run)")
        return self._session

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, *, timeout: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        try:
            async with self._ready().post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                return response.status, response.headers, await response.read()
        except TimeoutError:
            raise  # aiohttp's timeout errors are ClientErrors too; keep them timeouts
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"{type(exc).__name__}: {exc}") from None

    async def open(
        self, url: str, headers: dict[str, str], body: bytes, *, timeout: float
    ) -> UpstreamResponse:
        try:
            response = await self._ready().post(
                url,
                data=body,
                headers=headers,
                # sock_read bounds every wait for bytes: the first one and each gap after it.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
            )
        except TimeoutError:
            raise  # aiohttp's timeout errors are ClientErrors too; keep them timeouts
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"{type(exc).__name__}: {exc}") from None
        return _AiohttpResponse(response)


# --------------------------------------------------------------------------- raw


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, parsed with httptools (llhttp)."""

    __slots__ = (
        "_buffered",
        "_paused",
        "_waiter",
        "chunks",
        "closed",
        "done",
        "error",
        "headers",
        "keep_alive",
        "key",
        "loop",
        "parser",
        "received",
        "registry",
        "status",
        "timed_out",
        "timer",
        "transport",
    )

    def __init__(self, key: tuple[str, str, int], registry: set[_Connection]) -> None:
        self.timer: asyncio.TimerHandle | None = None
        self.key = key
        self.registry = registry  # the client's open connections (closed at shutdown)
        # (Made by the loop's create_connection, used on it only: held, since
        # asyncio.get_running_loop() is a getpid() system call on Python 3.11.)
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._buffered = 0
        self.reset()

    def reset(self) -> None:
        """Ready for the next exchange on this connection."""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: deque[bytes] = deque()
        self.done = False
        self.error: Exception | None = None
        self.received = False
        self.keep_alive = False
        self.timed_out = False

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.error = UpstreamConnectionError("unexpected protocol upgrade")
        except httptools.HttpParserError as exc:
            self.error = UpstreamConnectionError(f"malformed upstream response: {exc}")
        if self.error is not None and self.transport is not None:
            self.transport.close()
        self._wake()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.registry.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.registry.discard(self)
        if not self.done and self.error is None:
            if self.status and not self._framed():
                self.done = True  # a close-delimited body ends with the connection
            else:
                reason = f": {exc}" if exc else ""
                self.error = UpstreamConnectionError(f"connection closed by upstream{reason}")
        self._wake()

    def pause_writing(self) -> None:  # bodies are small; the kernel buffer absorbs them
        pass

    def resume_writing(self) -> None:
        pass

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # Only valid while parsing (llhttp resets it once the message completes).
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._buffered += len(body)
        # A slow client: stop reading the upstream rather than buffer without bound.
        if self._buffered > _MAX_BUFFER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.done = True
        self._wake()

    # plumbing
    def _framed(self) -> bool:
        return "content-length" in self.headers or "chunked" in self.headers.get(
            "transfer-encoding", ""
        )

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def arm(self, deadline: float) -> None:
        """One timer for a whole wait phase (not one per wake-up): ``wait`` fails past it."""
        self.disarm()
        self.timed_out = False
        self.timer = self.loop.call_at(deadline, self._on_deadline)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _on_deadline(self) -> None:
        self.timer = None
        self.timed_out = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(TimeoutError())

    async def wait(self) -> None:
        """Until the parser made progress or the connection ended (or the armed deadline)."""
        if self.timed_out:
            raise TimeoutError
        waiter = self._waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def take(self) -> bytes:
        """The buffered body bytes (resumes reading if it was paused)."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def reusable(self) -> bool:
        return (
            self.done
            and self.error is None
            and not self.closed
            and self.keep_alive
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        self.closed = True
        self.disarm()
        if self.transport is not None:
            self.transport.close()


_MAX_BUFFER = 1 << 20
_MAX_IDLE_PER_HOST = 256


class _RawResponse:
    __slots__ = ("_client", "_conn", "_timeout", "headers", "status")

    def __init__(self, client: RawUpstreamClient, conn: _Connection, timeout: float) -> None:
        self._client = client
        self._conn = conn
        self._timeout = timeout
        self.status = conn.status
        self.headers = conn.headers

    async def read(self) -> bytes:
        conn = self._conn
        parts: list[bytes] = []
        conn.arm(asyncio.get_running_loop().time() + self._timeout)
        try:
            while True:
                if conn.chunks:
                    parts.append(conn.take())
                if conn.done:
                    return b"".join(parts)
                if conn.error is not None:
                    raise conn.error
                await conn.wait()
        finally:
            conn.disarm()

    async def read_chunk(self) -> bytes:
        conn = self._conn
        if conn.chunks:
            return conn.take()
        if conn.done:
            return b""
        # Each wait for stream bytes is bounded by the timeout (aiohttp's sock_read).
        conn.arm(asyncio.get_running_loop().time() + self._timeout)
        try:
            while True:
                if conn.chunks:
                    return conn.take()
                if conn.done:
                    return b""
                if conn.error is not None:
                    raise conn.error
                await conn.wait()
        finally:
            conn.disarm()

    def release(self) -> None:
        self._client._release(self._conn)

    def close(self) -> None:
        self._conn.close()


class RawUpstreamClient:
    """:class:`UpstreamClient` on asyncio protocols and httptools: keep-alive HTTP/1.1.

    Measured (bench/RESULTS.md) at less than half aiohttp's CPU per call: one
    ``write`` per request, the response parsed in C, no per-request objects
    beyond the parser's callbacks. Idle connections are pooled per origin; a
    pooled connection the upstream closed meanwhile is retried once on a new
    one (only when it received no byte, so the request was never processed).
    """

    def __init__(self, proxies: ProxySettings | None = None) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[str, tuple[tuple[str, str, int], bytes, bytes]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._open: set[_Connection] = set()
        self._started = False
        # Read once: a proxy URL that is not http:// fails at start-up, naming the variable.
        self.proxies = proxies or ProxySettings()

    async def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()
        self._started = False

    def _target(self, url: str) -> tuple[tuple[str, str, int], bytes, bytes]:
        """(origin key, request-line prefix, Host header) for ``url``, cached."""
        found = self._targets.get(url)
        if found is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UpstreamConnectionError(f"unsupported upstream URL {url!r}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            host = parts.netloc.rsplit("@", 1)[-1]
            host_header = f"Host: {host}\r\n"
            proxy = self.proxies.for_origin(parts.scheme, parts.hostname, port)
            if proxy is not None and parts.scheme == "http":
                # Through a forward proxy, a plain-HTTP request names its whole URL.
                path = f"http://{host}{path}"
                if proxy.authorization:
                    host_header += f"Proxy-Authorization: {proxy.authorization}\r\n"
            found = (
                (parts.scheme, parts.hostname, port),
                f"POST {path} HTTP/1.1\r\n".encode("latin-1"),
                host_header.encode("latin-1"),
            )
            if len(self._targets) < 1024:
                self._targets[url] = found
        return found

    async def _connect(self, key: tuple[str, str, int], deadline: float) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError
        proxy = self.proxies.for_origin(scheme, host, port)
        try:
            async with asyncio.timeout(remaining):
                if proxy is None:
                    _, conn = await loop.create_connection(
                        lambda: _Connection(key, self._open),
                        host,
                        port,
                        ssl=context,
                        server_hostname=host if context else None,
                    )
                elif context is None:  # plain HTTP: requests go to the proxy itself
                    _, conn = await loop.create_connection(
                        lambda: _Connection(key, self._open), proxy.host, proxy.port
                    )
                else:
                    conn = await self._tunnel(key, proxy, context)
        except TimeoutError:
            raise
        except (OSError, ssl.SSLError) as exc:
            via = f" through the proxy {proxy.host}:{proxy.port}" if proxy else ""
            raise UpstreamConnectionError(f"{type(exc).__name__}{via}: {exc}") from None
        transport = conn.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    async def _tunnel(
        self, key: tuple[str, str, int], proxy: Proxy, context: ssl.SSLContext
    ) -> _Connection:
        """``CONNECT`` through ``proxy``, then TLS with the upstream inside the tunnel."""
        _, host, port = key
        loop = asyncio.get_running_loop()
        transport, setup = await loop.create_connection(_TunnelSetup, proxy.host, proxy.port)
        try:
            target = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
            head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
            if proxy.authorization:
                head += f"Proxy-Authorization: {proxy.authorization}\r\n"
            transport.write((head + "\r\n").encode("latin-1"))
            answer = await setup.answer
            status_line = answer.split(b"\r\n", 1)[0]
            parts = status_line.split(None, 2)
            if len(parts) < 2 or parts[1] != b"200":
                raise UpstreamConnectionError(
                    f"the proxy {proxy.host}:{proxy.port} refused CONNECT {target}: "
                    f"{status_line.decode('latin-1')[:200]}"
                )
            conn = _Connection(key, self._open)
            tls = await loop.start_tls(transport, conn, context, server_hostname=host)
        except BaseException:
            transport.close()
            raise
        if tls is None:  # the transport closed during the handshake
            raise UpstreamConnectionError(f"the TLS handshake with {host} through the proxy failed")
        conn.connection_made(tls)
        return conn

    def _release(self, conn: _Connection) -> None:
        if conn.reusable:
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < _MAX_IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()
        self._open.discard(conn)

    async def _exchange(
        self, url: str, headers: dict[str, str], body: bytes, timeout: float
    ) -> _Connection:
        """Send the request; return the connection once the response headers arrived,
        within ``timeout`` seconds from now (the deadline stays armed on it)."""
        if not self._started:
            raise RuntimeError("the upstream client was not started (app lifespan not run)")
        key, request_line, host = self._target(url)
        head = [request_line, host, b"Content-Length: %d\r\n" % len(body)]
        for name, value in headers.items():
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        head.append(b"\r\n")
        payload = b"".join(head) + body
        idle = self._idle.get(key)
        # (The deadline from the connection's loop when one is idle: asyncio's
        # get_running_loop() is a getpid() system call on Python 3.11.)
        deadline = -1.0
        while True:
            reused = False
            conn: _Connection | None = None
            while idle:
                candidate = idle.pop()
                if (
                    candidate.closed
                    or candidate.transport is None
                    or candidate.transport.is_closing()
                ):
                    self._open.discard(candidate)
                    continue
                conn, reused = candidate, True
                break
            if conn is None:
                if deadline < 0:
                    deadline = asyncio.get_running_loop().time() + timeout
                conn = await self._connect(key, deadline)
            elif deadline < 0:
                deadline = conn.loop.time() + timeout
            conn.reset()
            conn.arm(deadline)  # stays armed for the body of post(); open() disarms
            try:
                conn.transport.write(payload)  # type: ignore[union-attr]
                while not conn.status:
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait()
            except UpstreamConnectionError:
                conn.close()
                self._open.discard(conn)
                if reused and not conn.received:
                    continue  # the upstream closed an idle connection: use a fresh one
                raise
            except BaseException:
                conn.close()
                self._open.discard(conn)
                raise
            return conn

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, *, timeout: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        conn = await self._exchange(url, headers, body, timeout)
        try:
            parts: list[bytes] = []
            while True:
                if conn.chunks:
                    parts.append(conn.take())
                if conn.done:
                    break
                if conn.error is not None:
                    raise conn.error
                await conn.wait()
        except BaseException:
            conn.close()
            self._open.discard(conn)
            raise
        conn.disarm()
        status, response_headers = conn.status, conn.headers
        self._release(conn)
        return status, response_headers, parts[0] if len(parts) == 1 else b"".join(parts)

    async def open(
        self, url: str, headers: dict[str, str], body: bytes, *, timeout: float
    ) -> UpstreamResponse:
        conn = await self._exchange(url, headers, body, timeout)
        conn.disarm()
        return _RawResponse(self, conn, timeout)


_CLIENTS = {"raw": RawUpstreamClient, "aiohttp": AiohttpUpstreamClient}


def default_client(name: str = "raw") -> UpstreamClient:
    """The client ``name`` (``AIGW_UPSTREAM_CLIENT``) names: ``raw``, the default, or ``aiohttp``."""
    try:
        return _CLIENTS[name]()
    except KeyError:
        raise ValueError(
            f"AIGW_UPSTREAM_CLIENT={name!r} is not a client; use one of {sorted(_CLIENTS)}"
        ) from None
