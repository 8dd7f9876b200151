"""The raw upstream client (``transport.RawUpstreamClient``) against scripted raw HTTP servers.

The API tests exercise it end to end through the fakes; these cover the wire
cases the fakes do not produce: response framings, connection reuse, an idle
connection the upstream closed, timeouts and refused connections.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from gateway_app.environment import Environment
from gateway_app.transport import (
    AiohttpUpstreamClient,
    RawUpstreamClient,
    UpstreamConnectionError,
    default_client,
)
from tests.gateway.conftest import run_async

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Any]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


async def _with_server(handler: Handler, body: Callable[[str, list[int]], Any]) -> Any:
    """Serve ``handler(reader, writer, connection_number)``; run ``body(url, connections)``."""
    connections: list[int] = []
    handlers: set[asyncio.Task[Any]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections) + 1)
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer, len(connections))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await body(f"http://127.0.0.1:{port}/v1/chat/completions", connections)
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


async def _client() -> RawUpstreamClient:
    client = RawUpstreamClient()
    await client.start()
    return client


def test_keep_alive_reuses_one_connection_and_sends_the_request() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            seen.append(await _read_request(reader))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Thing: a\r\n\r\nok")

    async def body(url: str, connections: list[int]) -> None:
        client = await _client()
        for _ in range(3):
            status, headers, raw = await client.post(
                url, {"authorization": "Bearer k"}, b'{"a":1}', timeout=5
            )
            assert (status, raw, headers["x-thing"]) == (200, b"ok", "a")
        assert connections == [1]
        await client.close()

    run_async(_with_server(handler, body))
    assert seen[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"authorization: Bearer k\r\n" in seen[0]
    assert seen[0].endswith(b'\r\n\r\n{"a":1}')


def test_chunked_stream_is_read_chunk_by_chunk() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"data: 1\n\n", b"data: [DONE]\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")
        await reader.read()

    async def body(url: str, connections: list[int]) -> bytes:
        client = await _client()
        response = await client.open(url, {}, b"{}", timeout=5)
        assert response.status == 200
        pieces = []
        while chunk := await response.read_chunk():
            pieces.append(chunk)
        response.release()
        await client.close()
        assert len(pieces) >= 2
        return b"".join(pieces)

    assert run_async(_with_server(handler, body)) == b"data: 1\n\ndata: [DONE]\n\n"


def test_close_delimited_body_ends_with_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\n\r\nbusy")
        await writer.drain()

    async def body(url: str, connections: list[int]) -> tuple[int, str, bytes]:
        client = await _client()
        status, headers, raw = await client.post(url, {}, b"{}", timeout=5)
        await client.close()
        return status, headers["retry-after"], raw

    assert run_async(_with_server(handler, body)) == (503, "3", b"busy")


def test_idle_connection_closed_by_the_upstream_is_replaced() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % n)
        await writer.drain()
        # then close: the client's pooled connection is now stale

    async def body(url: str, connections: list[int]) -> list[bytes]:
        client = await _client()
        answers = []
        for _ in range(2):
            answers.append((await client.post(url, {}, b"{}", timeout=5))[2])
            await asyncio.sleep(0.05)
        await client.close()
        return answers

    assert run_async(_with_server(handler, body)) == [b"1", b"2"]


def test_timeout_and_mid_response_disconnect() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _read_request(reader)
        if n == 1:
            await asyncio.sleep(1)  # never answers in time
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            await writer.drain()

    async def body(url: str, connections: list[int]) -> None:
        client = await _client()
        with pytest.raises(TimeoutError):
            await client.post(url, {}, b"{}", timeout=0.1)
        with pytest.raises(UpstreamConnectionError, match="closed"):
            await client.post(url, {}, b"{}", timeout=5)
        await client.close()

    run_async(_with_server(handler, body))


def test_a_reused_connections_deadline_counts_from_the_call() -> None:
    """On an idle connection taken again (its deadline from that connection's loop, not
    from asyncio.get_running_loop()) the timeout still holds: an answer that comes too
    late fails at the timeout, counted from the call, and an answer in time is read."""
    import time

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        for delay in (0.0, 0.2, 1.0):  # each request on this one connection
            await _read_request(reader)
            await asyncio.sleep(delay)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def body(url: str, connections: list[int]) -> None:
        client = await _client()
        assert (await client.post(url, {}, b"{}", timeout=5))[2] == b"ok"
        await asyncio.sleep(0.3)  # idle a while: a deadline from an old time would be short
        assert (await client.post(url, {}, b"{}", timeout=0.6))[2] == b"ok"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await client.post(url, {}, b"{}", timeout=0.3)
        assert 0.25 <= time.monotonic() - started < 0.9
        assert connections == [1]  # every request on the first connection
        await client.close()

    run_async(_with_server(handler, body))


def test_refused_connection_is_an_upstream_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused

        async def body() -> None:
            client = await _client()
            with pytest.raises(UpstreamConnectionError):
                await client.post(f"http://127.0.0.1:{port}/v1/x", {}, b"{}", timeout=5)
            await client.close()

        run_async(body())


def test_default_client_is_selected_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    def chosen() -> object:
        return default_client(Environment.from_environ().upstream_client)

    monkeypatch.delenv("AIGW_UPSTREAM_CLIENT", raising=False)
    assert isinstance(chosen(), RawUpstreamClient)
    monkeypatch.setenv("AIGW_UPSTREAM_CLIENT", "aiohttp")
    assert isinstance(chosen(), AiohttpUpstreamClient)
    monkeypatch.setenv("AIGW_UPSTREAM_CLIENT", "curl")
    with pytest.raises(ValueError, match="AIGW_UPSTREAM_CLIENT='curl'"):
        chosen()
