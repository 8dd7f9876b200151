"""The suite's own servers start on a port nobody else took (a CI run failed so: the
PostgreSQL port chosen by the suite's port helper was bound by another test's HTTP
server before the postmaster bound it, and the fixture waited on the wrong server).
The ports come from :func:`tests.ports.kept_port` now, which no server of this process
is handed twice; another process of the machine may still pick one first."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway.governance import services


@pytest.fixture
def taken() -> Iterator[int]:
    """A port held by an HTTP-ish server (it answers anything with a 400 status line)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()

    def answer() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    server.close()


def _first_port_taken(
    monkeypatch: pytest.MonkeyPatch, port: int, module: Any = services
) -> list[int]:
    """``module.kept_port`` hands ``port`` first, then real kept ports: the list of them."""
    handed: list[int] = []
    real = module.kept_port

    def kept_port() -> int:
        handed.append(port if not handed else real())
        return handed[-1]

    monkeypatch.setattr(module, "kept_port", kept_port)
    return handed


def test_redis_starts_again_on_another_port_when_its_port_was_taken(
    monkeypatch: pytest.MonkeyPatch, taken: int
) -> None:
    handed = _first_port_taken(monkeypatch, taken)
    redis = services.RedisServer()
    try:
        assert handed[0] == taken and redis.port == handed[1] != taken
        import redis as client

        assert client.Redis.from_url(redis.url).ping()
    finally:
        redis.stop()


def test_postgres_starts_again_on_another_port_when_its_port_was_taken(
    monkeypatch: pytest.MonkeyPatch, taken: int
) -> None:
    handed = _first_port_taken(monkeypatch, taken)
    postgres: Any = services.PostgresServer()
    try:
        assert handed[0] == taken and postgres.port == handed[1] != taken
        import psycopg

        with psycopg.connect(postgres.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        postgres.destroy()


def test_a_gateway_starts_again_on_another_port_when_its_port_was_taken(
    monkeypatch: pytest.MonkeyPatch, taken: int
) -> None:
    from tests.gateway.governance import processes

    handed = _first_port_taken(monkeypatch, taken, processes)
    config = processes.gateway_config("http://127.0.0.1:9", enabled=False)
    gateway = processes.GatewayProcess(config, {})
    try:
        assert handed[0] == taken and gateway.port == handed[1] != taken
        import httpx

        assert httpx.get(gateway.url + "/health/live", timeout=5).status_code == 200
    finally:
        gateway.stop()
