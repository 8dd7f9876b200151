"""The gateway's own HTTP/1.1 server (``serve --server httptools``).

The API tests of ``test_api.py`` run again here with this server in place of
uvicorn; the tests below cover what only a server does: pipelining, chunked
streams, ``Expect: 100-continue``, malformed requests and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from gateway_app.app import GatewayApp
from gateway_app.config import parse
from gateway_app.server import serve as serve_http
from tests.fakes import FakeUpstream, slow
from tests.gateway.conftest import STANDARD_MODELS, Running, providers
from tests.gateway.test_api import *  # noqa: F403  (the same API tests, on this server)
from tests.gateway.test_resilience import (  # noqa: F401  (on this server: the disconnect callback)
    test_client_disconnect_cancels_upstream,
)


@contextmanager
def serve_httptools(
    raw_config: dict[str, Any], *, seed: int = 7, **kwargs: Any
) -> Iterator[Running]:
    """Like ``conftest.serve`` but on ``gateway_app.server``; yields after start-up."""
    config = parse(raw_config)

    async def no_sleep(delay: float) -> None:
        await asyncio.sleep(0)

    app = GatewayApp(config, rng=random.Random(seed), sleep=no_sleep, **kwargs)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    bound: list[tuple[str, int]] = []
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)

        def ready(address: tuple[str, int]) -> None:
            bound.append(address)
            started.set()

        loop.run_until_complete(
            serve_http(app, "127.0.0.1", 0, graceful_shutdown_s=5, ready=ready, stop=stop)
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("gateway server failed to start")
    try:
        yield Running(app, f"http://127.0.0.1:{bound[0][1]}")
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()


@pytest.fixture
def gateway(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream) -> Callable[..., Any]:
    """Overrides conftest's ``gateway`` for every test in this module."""

    def start(models: dict[str, Any], router: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        raw: dict[str, Any] = {
            "providers": providers(fake_openai, fake_anthropic),
            "models": models,
        }
        if router:
            raw["router"] = router
        if "server" in kwargs:
            raw["server"] = kwargs.pop("server")
        return serve_httptools(raw, **kwargs)

    return start


def _port(running: Running) -> int:
    return int(running.url.rsplit(":", 1)[1])


def _read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """Read ``count`` content-length-framed responses."""
    buffer = b""
    responses: list[bytes] = []
    sock.settimeout(10)
    while len(responses) < count:
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        head, rest = buffer.split(b"\r\n\r\n", 1)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(rest) < length:
            rest += sock.recv(65536)
        responses.append(head + b"\r\n\r\n" + rest[:length])
        buffer = rest[length:]
    return responses


def test_pipelined_requests_are_answered_in_order(standard: Running) -> None:
    with socket.create_connection(("127.0.0.1", _port(standard))) as sock:
        sock.sendall(
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Request-Id: first\r\n\r\n"
            b"GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: second\r\n\r\n"
            b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-Id: third\r\n\r\n"
        )
        first, second, third = _read_responses(sock, 3)
    assert first.startswith(b"HTTP/1.1 200 OK") and b"x-request-id: first" in first
    assert second.startswith(b"HTTP/1.1 404 Not Found") and b"x-request-id: second" in second
    assert third.startswith(b"HTTP/1.1 200 OK") and b"x-request-id: third" in third


def test_expect_continue_and_a_body_in_pieces(standard: Running) -> None:
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "in pieces"}]}'
    with socket.create_connection(("127.0.0.1", _port(standard))) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        sock.settimeout(10)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body[:20])
        time.sleep(0.05)
        sock.sendall(body[20:])
        (response,) = _read_responses(sock, 1)
    assert response.startswith(b"HTTP/1.1 200 OK")
    assert b"echo: in pieces" in response


def test_stream_is_chunked_and_ends(standard: Running) -> None:
    body = (
        b'{"model": "gpt-4o-mini", "stream": true,'
        b' "messages": [{"role": "user", "content": "chunks"}]}'
    )
    with socket.create_connection(("127.0.0.1", _port(standard))) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
            % len(body)
            + body
        )
        sock.settimeout(10)
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            data += sock.recv(65536)
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert b"transfer-encoding: chunked" in head
    assert b"content-type: text/event-stream" in head
    assert b"data: [DONE]" in data


def test_malformed_request_gets_400_and_close(standard: Running) -> None:
    with socket.create_connection(("127.0.0.1", _port(standard))) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        sock.settimeout(10)
        data = sock.recv(1000)
        assert data.startswith(b"HTTP/1.1 400 Bad Request")
        assert sock.recv(1000) == b""  # closed


def test_shutdown_lets_in_flight_requests_finish(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    fake_openai.script(slow(0.5, content="finished"))
    raw = {"providers": providers(fake_openai, fake_anthropic), "models": STANDARD_MODELS}
    results: list[Any] = []
    with serve_httptools(raw) as running:
        client = running.client()

        def call() -> None:
            results.append(
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
                )
            )

        worker = threading.Thread(target=call)
        worker.start()
        assert fake_openai.wait_for(lambda: len(fake_openai.requests) == 1)
    # Leaving the block set the stop event while the request was in flight.
    worker.join(10)
    assert results and results[0].choices[0].message.content == "finished"
    assert running.app.health.shutting_down


def test_idle_keep_alive_connections_are_closed(
    standard: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway_app.server

    monkeypatch.setattr(gateway_app.server, "KEEP_ALIVE_TIMEOUT_S", 0.2)
    with socket.create_connection(("127.0.0.1", _port(standard))) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        (response,) = _read_responses(sock, 1)
        assert response.startswith(b"HTTP/1.1 200 OK")
        sock.settimeout(5)
        assert sock.recv(100) == b""  # closed by the server once idle


def test_serve_on_a_port_in_use_prints_one_line_not_a_traceback(tmp_path: Any) -> None:
    import subprocess
    import sys

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        for server in ("httptools", "uvicorn"):
            command = [sys.executable, "-m", "gateway_app", "serve", "--port", str(port)]
            run = subprocess.run(
                [*command, "--server", server],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=tmp_path,
            )
            assert run.returncode == 3, run.stderr
            assert run.stderr.strip().splitlines() == [
                f"error: cannot listen on 127.0.0.1:{port}: the port is in use by another "
                "process; stop it or pick another --port"
            ]
