"""Fixtures: fake upstreams (session-wide, reset per test) and a gateway runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import openai
import orjson
import pytest
import uvicorn

from gateway_app.app import GatewayApp
from gateway_app.config import parse
from gateway_app.observability.logs import ACCESS_LOGGER, JsonFormatter
from tests.fakes import FakeUpstream


@pytest.fixture(scope="session")
def _fakes() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream("openai") as oa, FakeUpstream("anthropic") as an:
        yield oa, an


@pytest.fixture
def fake_openai(_fakes: tuple[FakeUpstream, FakeUpstream]) -> FakeUpstream:
    _fakes[0].reset()
    return _fakes[0]


@pytest.fixture
def fake_anthropic(_fakes: tuple[FakeUpstream, FakeUpstream]) -> FakeUpstream:
    _fakes[1].reset()
    return _fakes[1]


@dataclass
class Running:
    """A gateway served on loopback, with what the tests inspect."""

    app: GatewayApp
    url: str
    sleeps: list[float] = field(default_factory=list)

    def client(self, **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.url + "/v1", api_key="client-key", **kwargs)


def providers(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream) -> dict[str, Any]:
    return {
        "openai": {"type": "openai", "api_key": "sk-fake", "base_url": fake_openai.url},
        "anthropic": {"type": "anthropic", "api_key": "ak-fake", "base_url": fake_anthropic.url},
    }


@contextmanager
def serve(
    raw_config: dict[str, Any], *, seed: int = 7, real_sleep: bool = False, **kwargs: Any
) -> Iterator[Running]:
    """Run a GatewayApp for ``raw_config`` in a background thread; backoff sleeps are recorded."""
    config = parse(raw_config)
    sleeps: list[float] = []

    async def record_sleep(delay: float) -> None:
        sleeps.append(delay)
        await asyncio.sleep(delay if real_sleep else 0)

    app = GatewayApp(config, rng=random.Random(seed), sleep=record_sleep, **kwargs)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="on", log_level="warning", loop="asyncio"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("gateway failed to start")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(app, f"http://127.0.0.1:{port}", sleeps)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def gateway(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream) -> Callable[..., Any]:
    """``with gateway(models={...}) as gw:`` serves those models against the fakes."""

    def start(models: dict[str, Any], router: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        raw: dict[str, Any] = {
            "providers": providers(fake_openai, fake_anthropic),
            "models": models,
        }
        if router:
            raw["router"] = router
        if "server" in kwargs:
            raw["server"] = kwargs.pop("server")
        return serve(raw, **kwargs)

    return start


STANDARD_MODELS: dict[str, Any] = {
    "gpt-4o-mini": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]},
    "claude-sonnet-4-6": {
        "deployments": [
            {
                "provider": "anthropic",
                "model": "claude-sonnet-4-6",
                "params": {"default_max_tokens": 1000},
            }
        ]
    },
    "text-embedding-3-small": {
        "deployments": [{"provider": "openai", "model": "text-embedding-3-small"}]
    },
}


@pytest.fixture
def standard(gateway: Callable[..., Any]) -> Iterator[Running]:
    with gateway(STANDARD_MODELS) as running:
        yield running


def run_async(coroutine: Any) -> Any:
    """Run a coroutine on a private loop.

    Unlike ``asyncio.run`` this leaves the main thread's current-loop setting
    alone: the Pulumi SDK used by tests/infra still calls ``get_event_loop()``.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


async def drop_cancellation(seconds: float = 0.05) -> None:
    """Wait ``seconds`` as a library call does, dropping a cancellation that arrives
    meanwhile (it returns as if none came), as redis-py's send does through
    ``asyncio.wait_for`` on Python 3.11 (``gateway_app/aio.py``)."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(seconds)


class _Collect(logging.Handler):
    """Keeps each access-log line as the JSON object it is written as."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def logged(name: str, level: int = logging.WARNING) -> Iterator[list[logging.LogRecord]]:
    """The records logger ``name`` emits meanwhile (at ``level`` and above), caught by a
    handler of its own: pytest's capture sits on the root logger, and whether the
    gateway's loggers reach it depends on whether a test before configured them
    (:func:`gateway_app.observability.logs.configure` stops them propagating)."""
    handler = _Keep()
    logger = logging.getLogger(name)
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


@pytest.fixture
def access_lines() -> Iterator[list[dict[str, Any]]]:
    """The access-log lines written during the test (the logger at INFO meanwhile)."""
    handler = _Collect()
    logger = logging.getLogger(ACCESS_LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
