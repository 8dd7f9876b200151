"""A small pipelining Redis client for the request path (RESP2 over one asyncio connection).

Why not redis-py here: its asyncio client spends ~280 µs of CPU per EVALSHA
(connection pool, per-command locks and parser layers) where the socket round
trip itself costs ~50 µs; ``bench/redis_clients.py`` measures the options and
``bench/redis-clients.md`` records the figures. This client writes every
command (or a whole pipeline) in one ``write`` on one shared connection and
resolves one future per reply, in order, with replies parsed in C by
``hiredis.Reader``. Concurrent callers share the connection: Redis answers in
the order it receives, so no pool and no locks are needed.

Supports ``redis://`` and ``rediss://`` (server verified against ``ca_file``, or
the system trust store without one), a username/password and database number
in the URL, a connect timeout and a reply timeout (a reply that takes longer
than ``timeout`` aborts the connection: every command waiting on it fails with
``TimeoutError``), reconnection on the next call after the connection is lost
(a Redis restart), and Lua scripts by SHA with the ``NOSCRIPT`` fallback.

With a ``credential`` (Azure Managed Redis with Microsoft Entra, see
:mod:`gateway_app.credentials.redis_entra`) each connection authenticates with
a short-lived token, and the client sends ``AUTH`` with the next token on the
live connection before the current one expires: Redis runs commands in the
order it receives them, so the commands written after that ``AUTH`` run under
the new token and none waits for it.

Blocking commands (``XREADGROUP BLOCK``, pub/sub) would stall every other
caller on the shared connection: the audit drainer's blocking reads use a client
of their own (:meth:`RespClient.clone`); pub/sub keeps redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import hiredis

from gateway_app.credentials.redis_entra import RETRY_S, renew_delay

ReplyError = hiredis.ReplyError

log = logging.getLogger("gateway_app.state")


class RespConnectionError(ConnectionError):
    """The connection to Redis failed or was lost before the reply arrived."""


class TokenCredential(Protocol):
    """A short-lived ``AUTH`` credential: ``(user, password, expires_at)`` (epoch seconds)."""

    async def current(self) -> tuple[str, str, float | None]:
        """The credential for a new connection."""
        ...

    async def renewed(self) -> tuple[str, str, float | None]:
        """A credential that outlives the renewal window (fetched if need be)."""
        ...


class _Protocol(asyncio.Protocol):
    __slots__ = ("_reader", "_waiting", "closed", "error", "transport")

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        # (future, monotonic time the command was written)
        self._waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.error: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(RespConnectionError(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not waiting:
                self.abort(RespConnectionError("Redis sent a reply nobody asked for"))
                return
            future = waiting.popleft()[0]
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        error = self.error or RespConnectionError(
            f"connection to Redis lost{f': {exc}' if exc else ''}"
        )
        while self._waiting:
            future = self._waiting.popleft()[0]
            if not future.done():
                future.set_exception(error)
                # Marked retrieved: a caller awaiting it still gets the error, and one no
                # longer waiting (cancelled, or a pipeline that raised at its first
                # failed reply) does not make the loop log a traceback per command.
                future.exception()

    def abort(self, error: BaseException) -> None:
        self.error = self.error or error
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def send(self, data: bytes, futures: Sequence[asyncio.Future[Any]]) -> None:
        now = time.monotonic()
        self._waiting.extend((f, now) for f in futures)
        self.transport.write(data)  # type: ignore[union-attr]

    def oldest(self) -> float | None:
        return self._waiting[0][1] if self._waiting else None


class RespClient:
    """One pipelined Redis connection, opened on first use and reopened after a loss."""

    protocol: type[_Protocol] = _Protocol  # tests substitute one that records writes

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        connect_timeout: float = 5.0,
        timeout: float = 5.0,
        credential: TokenCredential | None = None,
    ) -> None:
        self.host, self.port, self.db = host, port, db
        self.username, self.password = username, password
        self.credential = credential
        self._renewal: asyncio.TimerHandle | None = None
        self._renewing: asyncio.Task[None] | None = None
        self.tls, self.ca_file = tls, ca_file
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self._proto: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._ssl: ssl.SSLContext | None = None

    @classmethod
    def from_url(cls, url: str, ca_file: str | None = None, **options: Any) -> RespClient:
        """A client for ``redis://[user:password@]host[:port][/db]`` or ``rediss://...``."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(
                f"Redis URL must start with redis:// or rediss://, not {parts.scheme}://"
            )
        path = parts.path.strip("/")
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or 6379,
            db=int(path) if path else 0,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "rediss",
            ca_file=ca_file,
            **options,
        )

    def clone(self) -> RespClient:
        """A client with the same settings, on a connection of its own (opened on use)."""
        return type(self)(
            self.host,
            self.port,
            db=self.db,
            username=self.username,
            password=self.password,
            tls=self.tls,
            ca_file=self.ca_file,
            connect_timeout=self.connect_timeout,
            timeout=self.timeout,
            credential=self.credential,
        )

    # ------------------------------------------------------------ connection

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self._ssl is None and self.tls:
            self._ssl = ssl.create_default_context(cafile=self.ca_file)
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, proto = await loop.create_connection(
                    self.protocol,
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                )
        except ssl.SSLError:
            raise
        except (OSError, TimeoutError) as exc:
            raise RespConnectionError(
                f"cannot connect to Redis at {self.host}:{self.port}: {exc}"
            ) from exc
        handshake: list[tuple[Any, ...]] = []
        expires_at: float | None = None
        if self.credential is not None:
            try:
                user, token, expires_at = await self.credential.current()
            except Exception as exc:
                proto.abort(RespConnectionError("no Redis credential"))
                raise RespConnectionError(f"no credential for Redis: {exc}") from exc
            handshake.append(("AUTH", user, token))
        elif self.password is not None:
            handshake.append(
                ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            )
        if self.db:
            handshake.append(("SELECT", self.db))
        if handshake:
            futures = [loop.create_future() for _ in handshake]
            proto.send(b"".join(hiredis.pack_command(c) for c in handshake), futures)
            async with asyncio.timeout(self.connect_timeout):
                replies = await asyncio.gather(*futures)
            for reply in replies:
                if isinstance(reply, ReplyError):
                    proto.abort(RespConnectionError(str(reply)))
                    raise RespConnectionError(f"Redis refused the connection: {reply}")
        self._schedule_renewal(proto, expires_at)
        return proto

    def _schedule_renewal(self, proto: _Protocol, expires_at: float | None) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
        delay = renew_delay(expires_at)
        if delay is None:
            self._renewal = None
            return
        loop = asyncio.get_running_loop()

        def start() -> None:
            self._renewal = None
            if proto is self._proto and not proto.closed:
                self._renewing = loop.create_task(self._renew(proto, expires_at))

        self._renewal = loop.call_later(delay, start)

    async def _renew(self, proto: _Protocol, expires_at: float | None) -> None:
        """Send ``AUTH`` with the next token on the live connection, then schedule the next."""
        assert self.credential is not None
        try:
            user, token, renewed_until = await self.credential.renewed()
        except Exception as exc:
            # The current token is still valid: try again soon; once it expires Redis
            # drops the connection and the next command reconnects (and reports the error).
            log.warning("Redis token renewal failed, retrying: %s", exc)
            if expires_at is not None and proto is self._proto and not proto.closed:
                self._renewal = asyncio.get_running_loop().call_later(
                    RETRY_S, lambda: self._schedule_renewal(proto, expires_at)
                )
            return
        if proto is not self._proto or proto.closed:
            return
        future = asyncio.get_running_loop().create_future()
        auth: tuple[Any, ...] = ("AUTH", user, token)
        proto.send(hiredis.pack_command(auth), (future,))
        self._arm(proto)
        try:
            reply = await future
        except Exception:
            return  # the connection was lost meanwhile; the next command reconnects
        if isinstance(reply, ReplyError):
            log.warning("Redis refused the renewed token (%s); reconnecting", reply)
            proto.abort(RespConnectionError(f"Redis refused the renewed token: {reply}"))
            return
        self._schedule_renewal(proto, renewed_until)

    async def _connection(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): the old connection is unusable
            self._drop()
            self._loop = loop
        while True:
            proto = self._proto
            if proto is not None and not proto.closed:
                return proto
            if self._connecting is None:
                self._connecting = loop.create_future()
                connecting = self._connecting
                try:
                    self._proto = await self._connect()
                    connecting.set_result(self._proto)
                except BaseException as exc:
                    connecting.set_exception(exc)
                    connecting.exception()  # retrieved: no "never retrieved" warning
                    raise
                finally:
                    self._connecting = None
            else:
                await asyncio.shield(self._connecting)

    def _drop(self) -> None:
        proto, self._proto = self._proto, None
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None
        if self._renewing is not None:
            with contextlib.suppress(RuntimeError):
                self._renewing.cancel()
            self._renewing = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if proto is not None and not proto.closed:
            # RuntimeError: the connection's event loop is already closed.
            with contextlib.suppress(RuntimeError):
                proto.abort(RespConnectionError("client closed"))

    def _arm(self, proto: _Protocol) -> None:
        if self._watchdog is None and self.timeout:
            self._watchdog = self._loop.call_later(self.timeout, self._check, proto)  # type: ignore[union-attr]

    def _check(self, proto: _Protocol) -> None:
        self._watchdog = None
        oldest = proto.oldest()
        if oldest is None or proto.closed:
            return
        late = time.monotonic() - oldest
        if late >= self.timeout:
            proto.abort(TimeoutError(f"Redis did not answer within {self.timeout:g}s"))
            return
        self._watchdog = self._loop.call_later(self.timeout - late, self._check, proto)  # type: ignore[union-attr]

    # ------------------------------------------------------------ commands

    async def execute(self, *command: Any) -> Any:
        """One command; a Redis error reply raises :class:`ReplyError`."""
        proto = self._proto
        if proto is None or proto.closed or self._loop is not asyncio.get_running_loop():
            proto = await self._connection()
        future = self._loop.create_future()  # type: ignore[union-attr]
        proto.send(hiredis.pack_command(command), (future,))
        self._arm(proto)
        reply = await future
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def execute_or_hand_off(
        self, command: Sequence[Any], orphan: Callable[[Any], None]
    ) -> Any:
        """:meth:`execute`, for a command whose effect must not be lost with its caller.

        Redis runs a command it received whether or not anyone still waits for the
        reply: if the caller is cancelled after the command was sent, ``orphan`` gets
        the reply when it arrives (a reservation the caller never learnt of can then
        be released). Cancelled before sending (while connecting): nothing ran.
        """
        proto = self._proto
        if proto is None or proto.closed or self._loop is not asyncio.get_running_loop():
            proto = await self._connection()
        future = self._loop.create_future()  # type: ignore[union-attr]
        proto.send(hiredis.pack_command(tuple(command)), (future,))
        self._arm(proto)
        try:
            reply = await asyncio.shield(future)
        except asyncio.CancelledError:

            def hand_off(done: asyncio.Future[Any]) -> None:
                if not done.cancelled() and done.exception() is None:
                    orphan(done.result())

            future.add_done_callback(hand_off)
            raise
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Many commands in one write; their replies in order (error replies as values)."""
        if not commands:
            return []
        proto = self._proto
        if proto is None or proto.closed or self._loop is not asyncio.get_running_loop():
            proto = await self._connection()
        loop = self._loop
        futures = [loop.create_future() for _ in commands]  # type: ignore[union-attr]
        proto.send(b"".join([hiredis.pack_command(tuple(c)) for c in commands]), futures)
        self._arm(proto)
        return [await f for f in futures]

    async def ping(self) -> bool:
        return await self.execute("PING") == b"PONG"

    def script(self, source: str) -> Script:
        """A Lua script called by SHA (loaded on first ``NOSCRIPT``)."""
        return Script(self, source)

    async def aclose(self) -> None:
        self._drop()


class Script:
    """``EVALSHA`` with a fallback to ``EVAL`` (which caches the script) on ``NOSCRIPT``."""

    def __init__(self, client: RespClient, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def command(self, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
        """The ``EVALSHA`` command, for a pipeline (check replies with :meth:`noscript`)."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def eval_command(self, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
        """The ``EVAL`` command (runs and caches the script), after a ``NOSCRIPT`` reply."""
        return ("EVAL", self.source, len(keys), *keys, *args)

    @staticmethod
    def noscript(reply: Any) -> bool:
        return isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT")

    async def call_or_hand_off(
        self, keys: Sequence[Any], args: Sequence[Any], orphan: Callable[[Any], None]
    ) -> Any:
        """Like calling the script, with :meth:`RespClient.execute_or_hand_off`'s guarantee."""
        client = self.client
        try:
            return await client.execute_or_hand_off(self.command(keys, args), orphan)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await client.execute_or_hand_off(self.eval_command(keys, args), orphan)

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        try:
            return await self.client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self.client.execute("EVAL", self.source, len(keys), *keys, *args)

    async def many(self, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Several calls in one pipeline; replies in order (error replies as values)."""
        replies = await self.client.pipeline([self.command(k, a) for k, a in calls])
        if any(self.noscript(r) for r in replies):
            redo = [i for i, r in enumerate(replies) if self.noscript(r)]
            again = await self.client.pipeline([self.eval_command(*calls[i]) for i in redo])
            for i, reply in zip(redo, again, strict=True):
                replies[i] = reply
        return replies
