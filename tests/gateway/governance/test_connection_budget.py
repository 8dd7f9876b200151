"""The gateway's PostgreSQL connections, counted on the server, hold to the plan's budget.

The stack config refuses a plan whose database cannot hold a cloud's peak
(``infra/decisions/postgres.py``), on the premise that each gateway process holds at most
:data:`~infra.decisions.postgres.CONNECTIONS_PER_PROCESS` connections and each Job one.
A new connection somewhere in the gateway would make every plan's budget wrong, and
PostgreSQL would refuse connections at peak traffic, long after a deploy that looked fine.

So the gateway runs as users run it (``python -m gateway_app serve``, as one process and
as ``--workers 2``, each on a database and a Redis of its own) against a PostgreSQL that
logs every connection and disconnection; replayed, the log gives every moment's
connections per database and ``application_name``, the shortest-lived included
(:class:`~tests.gateway.governance.pg_activity.ConnectionLog`):

- the ``migrate`` Job, on the empty database, holds one connection;
- the gateway, under concurrent requests through the official OpenAI SDK while the
  admin API creates and revokes keys and runs its analytics and audit search and
  ``/metrics`` is scraped (the roll-up lag gauge reads the database), holds at most
  ``CONNECTIONS_PER_PROCESS`` per process, each named by what holds it: the process's
  own (``aigw-gateway``), its audit drain's (``aigw-audit-drain``) and its admin
  reports' (``aigw-admin-reports``);
- with ``migrate`` and ``audit-maintain`` running beside it, the database holds at most
  the plan's own sum for the cloud (:func:`~infra.decisions.postgres.connections_needed`),
  and each Job one connection under its name.

The follower cloud's audit shipper (one connection more) is counted in
``tests/multicloud/test_connections.py``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from gateway_app.governance.storage import ConnectionName
from infra.decisions.postgres import CONNECTIONS_PER_PROCESS, connections_needed
from tests.gateway.conftest import run_async
from tests.gateway.governance.pg_activity import LOG_SETTINGS, Activity, ConnectionLog
from tests.gateway.governance.processes import GatewayProcess, gateway_config
from tests.gateway.governance.services import PostgresServer, RedisServer

TOPOLOGIES = {"1 process": 1, "serve --workers 2": 2}  # workers
REQUESTS = 160
CONCURRENCY = 16
ADMIN_ROUNDS = 6  # each call on a new HTTP connection: every worker serves some


@dataclass
class Served:
    """One topology: its own database on the server, its own Redis, its gateway."""

    workers: int
    url: str
    redis: RedisServer | None = None
    gateway: GatewayProcess | None = None
    key: str = ""  # a virtual key for the requests

    @property
    def database(self) -> str:
        return self.url.rsplit("/", 1)[1]

    def job(self, command: str) -> subprocess.Popen[bytes]:
        """``python -m gateway_app <command>`` (a Job of the chart) against this database."""
        config = ["--config", self.gateway.config_path] if self.gateway else []
        return subprocess.Popen(
            [sys.executable, "-m", "gateway_app", command, *config],
            env={**os.environ, "AIGW_DATABASE_URL": self.url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )


@dataclass
class Fleet:
    log: ConnectionLog
    served: dict[int, Served]  # by workers
    migrated: Activity  # what the first ``migrate`` of each database held


def _finish(job: subprocess.Popen[bytes]) -> None:
    output, _ = job.communicate(timeout=60)
    assert job.returncode == 0, output.decode(errors="replace")


@pytest.fixture(scope="module")
def fleet(_fakes: Any) -> Iterator[Fleet]:
    postgres = PostgresServer(settings=LOG_SETTINGS)
    log = ConnectionLog(postgres.data, postgres.url)
    served: dict[int, Served] = {}
    try:
        for workers in TOPOLOGIES.values():
            served[workers] = Served(workers, postgres.new_database(f"budget{workers}_"))
        # The migration Job first, on each empty database, as a first deploy runs it.
        start = log.mark()
        for job in [one.job("migrate") for one in served.values()]:
            _finish(job)
        migrated = log.between(start, log.mark())
        config = gateway_config(_fakes[0].url)
        for one in served.values():
            one.redis = RedisServer()
        with ThreadPoolExecutor(len(served)) as pool:
            futures = {
                one.workers: pool.submit(
                    GatewayProcess,
                    config,
                    {"AIGW_REDIS_URL": one.redis.url, "AIGW_DATABASE_URL": one.url},
                    workers=one.workers,
                    start_timeout_s=90,
                )
                for one in served.values()
                if one.redis is not None
            }
        for workers, future in futures.items():
            if future.exception() is None:
                served[workers].gateway = future.result()
        for future in futures.values():
            if (failed := future.exception()) is not None:
                raise failed
        for one in served.values():
            assert one.gateway is not None
            created = one.gateway.admin(
                "POST", "/admin/keys", json={"team_id": "t", "project_id": "p"}
            )
            assert created.status_code == 201, created.text
            one.key = created.json()["key"]
        yield Fleet(log, served, migrated)
    finally:
        gateways = [one.gateway for one in served.values() if one.gateway is not None]
        with ThreadPoolExecutor(len(served) or 1) as pool:
            list(pool.map(GatewayProcess.stop, gateways))
        for one in served.values():
            if one.redis is not None:
                one.redis.stop()
        postgres.destroy()


async def _requests(served: Served) -> None:
    """Concurrent governed requests through the official SDK."""
    assert served.gateway is not None
    client = openai.AsyncOpenAI(
        base_url=served.gateway.url + "/v1", api_key=served.key, max_retries=0
    )
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with slots:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )

    try:
        await asyncio.gather(*(one() for _ in range(REQUESTS)))
    finally:
        await client.close()


def _admin_round(served: Served) -> None:
    """A key created and revoked, the analytics and the audit search, ``/metrics``."""
    gateway = served.gateway
    assert gateway is not None
    created = gateway.admin("POST", "/admin/keys", json={"team_id": "t", "project_id": "p"})
    assert created.status_code == 201, created.text
    for path in ("/admin/analytics/usage", "/admin/analytics/latency", "/admin/audit?limit=20"):
        response = gateway.admin("GET", path)
        assert response.status_code == 200, (path, response.text)
    revoked = gateway.admin("POST", f"/admin/keys/{created.json()['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    metrics = httpx.get(gateway.url + "/metrics", timeout=10)
    assert metrics.status_code == 200, metrics.text


async def _serve(served: Served, *jobs: str) -> None:
    """Requests and admin rounds at once, with ``jobs`` (CLI commands) run alongside."""

    async def admin() -> None:
        for _ in range(ADMIN_ROUNDS):
            await asyncio.to_thread(_admin_round, served)

    async def run(command: str) -> None:
        await asyncio.to_thread(_finish, served.job(command))

    await asyncio.gather(_requests(served), admin(), *(run(command) for command in jobs))


@pytest.mark.parametrize("topology", list(TOPOLOGIES))
def test_the_gateway_holds_the_connections_the_plan_counts(topology: str, fleet: Fleet) -> None:
    served = fleet.served[TOPOLOGIES[topology]]
    database = served.database

    migrated = fleet.migrated.peak_by_name(database)
    assert migrated == {ConnectionName.MIGRATE.value: 1}, fleet.migrated.describe(database)

    start = fleet.log.mark()
    run_async(_serve(served))
    serving = fleet.log.between(start, fleet.log.mark())
    processes = served.workers
    peak = serving.peak(database)
    assert peak <= CONNECTIONS_PER_PROCESS * processes, (
        f"{topology}: {peak} PostgreSQL connections at once ({serving.describe(database)}); "
        f"the plan counts {CONNECTIONS_PER_PROCESS} per process "
        "(infra/decisions/postgres.py, CONNECTIONS_PER_PROCESS)"
    )
    by_name = serving.peak_by_name(database)
    # Each process's own, its audit drain's and its admin reports' connection, each under
    # its name.
    assert set(by_name) == {
        ConnectionName.GATEWAY,
        ConnectionName.AUDIT_DRAIN,
        ConnectionName.ADMIN_REPORTS,
    }, by_name
    assert by_name[ConnectionName.GATEWAY] <= processes, by_name
    assert by_name[ConnectionName.AUDIT_DRAIN] <= processes, by_name
    assert by_name[ConnectionName.ADMIN_REPORTS] <= processes, by_name

    start = fleet.log.mark()
    run_async(_serve(served, "migrate", "audit-maintain"))
    deploying = fleet.log.between(start, fleet.log.mark())
    # One pod, no rollout (the plan adds a rollout's surge and old pods to the same terms).
    demand = connections_needed(
        1, canary=False, follower=False, workers=served.workers, rollout=False
    )
    peak = deploying.peak(database)
    assert peak <= demand.total, (
        f"{topology} with its Jobs: {peak} PostgreSQL connections at once "
        f"({deploying.describe(database)}); the plan counts {demand.total} "
        f"({demand.describe()})"
    )
    by_name = deploying.peak_by_name(database)
    assert by_name[ConnectionName.MIGRATE] == 1, by_name
    assert by_name[ConnectionName.AUDIT_MAINTAIN] == 1, by_name
