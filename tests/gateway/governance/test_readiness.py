"""Readiness waits for the virtual keys: a replica that started while its database refused
it must get no traffic (it would answer every caller 503 ``key_store_unavailable``).

This is what a rollout past the database's ``max_connections`` meets
(docs/operations/sizing.md, "PostgreSQL connections"): the new pods start, PostgreSQL
refuses them until the old pods have shut down, and Kubernetes must keep sending the
traffic to the old ones (``maxUnavailable: 0`` waits for new pods to be ready). Once the
keys were loaded, a database outage leaves the replica ready: it serves the keys it holds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from gateway_app.governance.keys import Registry
from gateway_app.governance.storage import Database
from gateway_app.health import KEYS_NOT_LOADED
from tests.gateway.conftest import logged
from tests.gateway.governance.processes import GatewayProcess, gateway_config
from tests.gateway.governance.services import PostgresServer


def _ready(gateway: GatewayProcess) -> httpx.Response:
    return httpx.get(gateway.url + "/health/ready", timeout=5)


def _chat(gateway: GatewayProcess, key: str) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )


def test_a_replica_is_ready_once_it_loaded_its_keys_and_stays_ready_through_an_outage(
    fake_openai: Any,
) -> None:
    postgres = PostgresServer()
    gateway: GatewayProcess | None = None
    try:
        setup = Database(postgres.url)
        setup.migrate()
        setup.close()
        postgres.stop()  # refused from the replica's start, as past max_connections
        gateway = GatewayProcess(
            gateway_config(fake_openai.url), {"AIGW_DATABASE_URL": postgres.url}
        )
        refused = _ready(gateway)
        assert refused.status_code == 503, refused.text
        report = refused.json()
        assert report["status"] == "not_ready"
        assert report["checks"]["keys"] == {"status": "error", "error": KEYS_NOT_LOADED}
        # The report is public: it names no address of the database.
        assert f":{postgres.port}" not in refused.text and "postgres" not in refused.text

        postgres.start()
        deadline = time.monotonic() + 15
        while (answer := _ready(gateway)).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.2)
        assert answer.json()["checks"]["keys"] == {"status": "ok"}
        key = gateway.admin("POST", "/admin/keys", json={"team_id": "t", "project_id": "p"})
        assert key.status_code == 201, key.text
        assert _chat(gateway, key.json()["key"]).status_code == 200

        # Loaded once: an outage now keeps it ready (a reload meanwhile would fail), and
        # the keys it holds keep working.
        postgres.stop()
        for _ in range(3):
            time.sleep(0.5)
            still = _ready(gateway)
            assert still.status_code == 200, still.text
            assert still.json()["checks"]["keys"] == {"status": "ok"}
        assert _chat(gateway, key.json()["key"]).status_code == 200
    finally:
        if gateway is not None:
            gateway.stop()
        postgres.destroy()


def test_without_governance_readiness_has_no_keys_check(fake_openai: Any) -> None:
    """The embedded default (governance off) is ready with no keys at all."""
    config = gateway_config(fake_openai.url)
    config["governance"] = {"enabled": False}
    gateway = GatewayProcess(config, {})
    try:
        answer = _ready(gateway)
        assert answer.status_code == 200, answer.text
        assert "keys" not in answer.json()["checks"], answer.text
    finally:
        gateway.stop()


class _DownStore:
    """A key store whose database refuses the first ``failures`` loads; each load is
    ``step_s`` of the registry's clock after the last."""

    def __init__(self, failures: int, clock: list[float], step_s: float) -> None:
        self.failures, self.clock, self.step_s = failures, clock, step_s

    def all(self) -> list[Any]:
        self.clock[0] += self.step_s
        if self.failures:
            self.failures -= 1
            raise ConnectionError("connection refused")
        return []

    def limits(self) -> list[Any]:
        return []

    def projects(self) -> dict[str, str]:
        return {}


def test_a_key_store_down_from_the_start_is_logged_once_a_minute_not_every_second() -> None:
    """Until the keys are loaded, the registry tries every second (readiness waits on it):
    the first failure is logged with its traceback, then one line a minute with the count,
    and one when they load."""
    clock = [0.0]
    store = _DownStore(failures=8, clock=clock, step_s=20.0)  # a try every 20 s of clock
    registry = Registry(store, b"s", refresh_s=0.01, clock=lambda: clock[0])  # type: ignore[arg-type]

    async def scenario() -> None:
        await registry.start()
        deadline = time.monotonic() + 10
        while not registry.loaded:
            assert time.monotonic() < deadline, "the keys never loaded"
            await asyncio.sleep(0.01)
        await registry.stop()

    with logged("gateway_app.governance") as records:
        asyncio.run(scenario())
    lines = [r for r in records if "keys and limits" in r.getMessage()]
    # Failures at 20, 40, ..., 160 s of clock: logged at 20 (traceback), 80 and 140.
    assert [(r.getMessage().split(" (")[0], bool(r.exc_info)) for r in lines] == [
        ("could not load keys and limits", True),
        ("still cannot load keys and limits after 4 attempts", False),
        ("still cannot load keys and limits after 7 attempts", False),
        ("keys and limits loaded after 8 failed attempts", False),
    ]
    assert "ConnectionError: connection refused" in lines[0].getMessage()
