"""Session services for the governance tests: one Redis and one PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.governance.services import PostgresServer, RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_tls_server() -> Iterator[RedisServer]:
    """Managed Redis in every cloud is TLS-only with a private CA: so is this one."""
    server = RedisServer(tls=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.destroy()
