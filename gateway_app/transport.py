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

from collections.abc import Mapping
from typing import Protocol

import aiohttp


class UpstreamConnectionError(Exception):
    """Could not connect, or the connection broke mid-exchange."""


class UpstreamResponse(Protocol):
    """An upstream response whose headers arrived."""

    status: int
    headers: Mapping[str, str]

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
