"""Session services for the governance tests: one Redis and one PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def redis_governed_app(
    redis_server: RedisServer, fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> Iterator[Any]:
    """The gateway built from its environment (``create_app``) with governance on, its
    state in the session's Redis and its records in SQLite; governance stopped after."""
    from gateway_app.app import create_app
    from gateway_app.config import parse
    from gateway_app.environment import Environment
    from tests.gateway.conftest import STANDARD_MODELS, providers, run_async

    raw: dict[str, Any] = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True, "sqlite_path": str(tmp_path / "gov.sqlite3")},
    }
    env = Environment(redis_url=redis_server.url, key_hash_secret="s", admin_key="a" * 32)
    app = create_app(parse(raw), env=env)
    assert app.admin is not None and app.metrics is not None
    try:
        yield app
    finally:
        run_async(app.admin.governance.stop())
