"""One contract for both circuit-breaker stores: in-process and Redis (a real redis-server)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway_app.config import CircuitBreakerConfig
from gateway_app.state.circuit import CircuitState, InProcessCircuitBreakerStore
from tests.gateway.conftest import run_async
from tests.ports import kept_port

CONFIG = CircuitBreakerConfig(
    failure_rate=0.5, min_calls=4, window_s=10, cooldown_s=30, half_open_probes=2
)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail(
            "redis-server is not installed; ./scripts/test installs it (apt-get install redis-server)"
        )
    port = kept_port()
    process = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def _factory(kind: str, redis_url: str | None) -> Callable[[Callable[[], float]], Any]:
    if kind == "in-process":
        return lambda clock: InProcessCircuitBreakerStore(CONFIG, clock=clock)
    from gateway_app.state.circuit_redis import RedisCircuitBreakerStore

    prefix = f"test:{time.monotonic_ns()}:"
    return lambda clock: RedisCircuitBreakerStore.from_url(
        redis_url, CONFIG, refresh_s=0, clock=clock, prefix=prefix
    )


@pytest.fixture(params=["in-process", "redis"])
def make_store(request: pytest.FixtureRequest) -> Callable[[Callable[[], float]], Any]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return _factory(request.param, url)


async def _settle(store: Any) -> None:
    flush = getattr(store, "flush", None)
    if flush is not None:
        await flush()


async def _state(store: Any, key: str) -> CircuitState:
    refresh = getattr(store, "refresh", None)
    return await refresh(key) if refresh is not None else store.state(key)


def test_contract_open_half_open_close(make_store: Any) -> None:
    now = [1000.0]

    async def scenario() -> None:
        store = make_store(lambda: now[0])
        for success in (True, False, False):
            assert await store.acquire("d")
            await store.record("d", success)
        await _settle(store)
        assert await _state(store, "d") is CircuitState.CLOSED  # below min_calls
        assert await store.acquire("d")
        await store.record("d", False)
        assert await _state(store, "d") is CircuitState.OPEN and store.is_open("d")
        assert not await store.acquire("d")
        now[0] += 31
        assert await store.acquire("d") and await store.acquire("d")
        assert not await store.acquire("d")  # two probes only
        await store.record("d", True)
        await store.record("d", False)  # a failed probe re-opens
        assert await _state(store, "d") is CircuitState.OPEN
        now[0] += 31
        for _ in range(2):
            assert await store.acquire("d")
            await store.record("d", True)
        assert await _state(store, "d") is CircuitState.CLOSED
        # a probe released without an outcome (a 400) frees its slot
        for _ in range(4):
            await store.acquire("r")
            await store.record("r", False)
        now[0] += 31
        assert await store.acquire("r") and await store.acquire("r")
        await store.release("r")
        assert await store.acquire("r")
        # failures older than the window do not count
        for _ in range(3):
            await store.acquire("e")
            await store.record("e", False)
        now[0] += 100
        await store.acquire("e")
        await store.record("e", False)
        assert await _state(store, "e") is CircuitState.CLOSED
        await _settle(store)
        close = getattr(store, "close", None)
        if close is not None:
            await close()

    run_async(scenario())


def test_redis_state_is_shared_by_replicas(redis_url: str) -> None:
    now = [5000.0]
    make = _factory("redis", redis_url)

    async def scenario() -> None:
        first, second = make(lambda: now[0]), make(lambda: now[0])
        for _ in range(4):
            await first.acquire("shared")
            await first.record("shared", False)
        assert not await second.acquire("shared")
        assert second.is_open("shared")
        await first.close()
        await second.close()

    run_async(scenario())


def test_ready_checks_redis_and_gateway_uses_it(
    redis_url: str,
    fake_openai: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import httpx

    from gateway_app.environment import Environment
    from tests.gateway.conftest import logged, serve

    raw = {
        "providers": {"p": {"type": "openai", "api_key": "k", "base_url": fake_openai.url}},
        "models": {"m": {"deployments": [{"provider": "p", "model": "x"}]}},
    }
    monkeypatch.setenv("AIGW_REDIS_URL", redis_url)
    with serve(raw, env=Environment.from_environ()) as gw:
        ready = httpx.get(gw.url + "/health/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["redis"]["status"] == "ok"
        reply = gw.client().chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content == "echo: hi"
        assert type(gw.app.breakers).__name__ == "RedisCircuitBreakerStore"
    closed_port = kept_port()  # nothing listens there: Redis is down
    monkeypatch.setenv("AIGW_REDIS_URL", f"redis://127.0.0.1:{closed_port}/0")
    with serve(raw, env=Environment.from_environ()) as gw:
        with logged("gateway_app.health") as records:
            ready = httpx.get(gw.url + "/health/ready")
            again = httpx.get(gw.url + "/health/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["redis"]["status"] == "error"
        # The report is public (the edge routes /health/ready): it names no address; the
        # log, the operator's, says why, once for the same reason (probes ask every 5 s).
        assert ready.json()["checks"]["redis"]["error"] == (
            "Redis did not answer PING (ConnectionRefusedError); the gateway's log says why"
        )
        assert str(closed_port) not in ready.text + again.text
        reasons = [r.getMessage() for r in records]
        assert len(reasons) == 1, reasons
        assert "the redis check failed: ConnectionRefusedError" in reasons[0]
        assert str(closed_port) in reasons[0]
        # Circuit state fails open: requests are still served while Redis is down.
        reply = gw.client().chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content == "echo: hi"
