"""Scale-out keeps the documented Redis and PostgreSQL traffic per request.

The gateway runs as users run it (``python -m gateway_app serve``) against one
real redis-server and one real PostgreSQL: as one process, as ``serve --workers
2`` and ``--workers 3``, and as 2 and 3 replicas sharing both (as pods would).
Governance is on, with a virtual key whose every scope (organisation, team,
project, key, customer) has RPM, TPM and daily and monthly budgets, on the exact
path (``governance.admission`` off: one reservation per request, the traffic of
requests near their limits). A few
hundred concurrent requests go through the official OpenAI SDK to a fake
upstream; then what Redis and PostgreSQL did is counted:

- Redis round trips and the commands in each, on the wire: a counting proxy
  sits between every gateway process and Redis (a round trip is what a client
  sends before it next hears back); ``INFO commandstats`` confirms the counts
  and the reservation script's own calls inside Redis;
- PostgreSQL's statements, rows and transactions (``pg_stat_statements``).

Each count is held to :data:`gateway_app.governance.traffic.TRAFFIC`, the table
the docs render (``docs/explanation/performance.md``): exact rows exactly,
per-request bounds times the requests, per-process-second bounds (the audit
drainers, circuit breakers, key reload: background work that does not grow with
traffic) times every live process and the window's seconds. A command the table
does not name fails the test.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import openai
import psycopg
import pytest
import redis

from gateway_app.config.governance import GovernanceConfig
from gateway_app.governance.storage import Database
from gateway_app.governance.traffic import SCRIPT_CALLS, SETUP_COMMANDS, TRAFFIC, Per
from gateway_app.state.circuit_redis import _ACQUIRE, _RECORD
from gateway_app.state.governance_redis import _ACK, _RESERVE
from tests.gateway.conftest import run_async
from tests.gateway.governance.processes import GatewayProcess, gateway_config
from tests.gateway.governance.services import PostgresServer, RedisServer
from tests.gateway.resp_traffic import CountingProxy

# The scripts by SHA1, as EVALSHA names them on the wire.
SCRIPTS = {
    hashlib.sha1(source.encode()).hexdigest(): name
    for name, source in (
        ("reserve", _RESERVE),
        ("audit-ack", _ACK),
        ("circuit-acquire", _ACQUIRE),
        ("circuit-record", _RECORD),
    )
}
REQUESTS = 300
CONCURRENCY = 32
SCOPES = 5  # org, team, project, key, customer: every one limited
DEPLOYMENTS = 1
AUDIT_BATCH = GovernanceConfig.model_fields["audit_batch"].default  # the gateways run it
LIMITS = {"daily_usd": 100, "monthly_usd": 1000, "rpm": 10**6, "tpm": 10**9}
# The test's own queries (pg_stat_statements sees them too), told apart by this comment.
OURS = "/* scale-out test */"


@dataclass
class Stores:
    redis: RedisServer
    postgres: PostgresServer
    proxy: CountingProxy

    def audit_rows(self) -> int:
        """The requests' audit rows (the fixture's admin events land on their own time)."""
        with psycopg.connect(self.postgres.url, autocommit=True) as conn:
            row = conn.execute(
                f"{OURS} SELECT count(*) FROM audit_events WHERE kind = 'request'"
            ).fetchone()
        assert row is not None
        return int(row[0])


@dataclass
class Fleet:
    """Every gateway server of the test, started together (start-up is the slow part)."""

    one: GatewayProcess  # 1 worker; with two more like it: the replicas
    workers_2: GatewayProcess
    workers_3: GatewayProcess
    replica_2: GatewayProcess
    replica_3: GatewayProcess
    key: str

    @property
    def processes(self) -> int:
        """Every live serving process (each worker is one): the background traffic's unit."""
        return 1 + 2 + 3 + 1 + 1


@pytest.fixture(scope="module")
def stores() -> Iterator[Stores]:
    redis_server = RedisServer()
    postgres = PostgresServer(settings=["shared_preload_libraries=pg_stat_statements"])
    db = Database(postgres.url)
    db.migrate()
    db.close()
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    proxy = CountingProxy(redis_server.port, SCRIPTS)
    try:
        yield Stores(redis_server, postgres, proxy)
    finally:
        proxy.close()
        redis_server.stop()
        postgres.destroy()


@pytest.fixture(scope="module")
def fleet(stores: Stores, _fakes: Any) -> Iterator[Fleet]:
    env = {"AIGW_REDIS_URL": stores.proxy.url, "AIGW_DATABASE_URL": stores.postgres.url}
    # The exact path: one reservation per request, what a request near its limits costs
    # (and the figure to size Redis on); admission chunks, which take most reservations
    # off Redis far from the limits, are counted in test_admission.py.
    config = gateway_config(_fakes[0].url, admission={"enabled": False})
    # Eight processes starting at once on a busy 2-CPU machine: more time than one.
    with ThreadPoolExecutor(5) as pool:
        futures = [
            pool.submit(GatewayProcess, config, env, workers=workers, start_timeout_s=120)
            for workers in (1, 2, 3, 1, 1)
        ]
    started = [future.result() for future in futures if future.exception() is None]
    failures = [future.exception() for future in futures if future.exception() is not None]
    if failures:
        _stop(started)
        raise failures[0]
    try:
        admin = started[0]
        created = admin.admin("POST", "/admin/keys", json={"team_id": "t", "project_id": "p"})
        assert created.status_code == 201, created.text
        key = created.json()
        for scope, scope_id in (
            ("org", "*"),
            ("team", "t"),
            ("project", "p"),
            ("key", key["id"]),
            ("customer", "*"),
        ):
            response = admin.admin("PUT", f"/admin/limits/{scope}/{scope_id}", json=LIMITS)
            assert response.status_code == 200, response.text
        yield Fleet(*started, key=key["key"])
    finally:
        _stop(started)


def _stop(gateways: list[GatewayProcess]) -> None:
    """SIGTERM to all, then wait for each (a graceful shutdown each, side by side)."""
    with ThreadPoolExecutor(5) as pool:
        list(pool.map(GatewayProcess.stop, gateways))


async def _drive(urls: list[str], key: str, count: int) -> None:
    clients = [openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0) for url in urls]
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with slots:
            # ``user`` is the customer: its scope is limited too.
            await clients[i % len(clients)].chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], user="cust"
            )

    try:
        await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        for client in clients:
            await client.close()


def _wait_for_rows(stores: Stores, expected: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (rows := stores.audit_rows()) < expected:
        assert time.monotonic() < deadline, f"{rows} audit rows, expected {expected}"
        time.sleep(0.1)
    assert rows == expected, f"{rows} audit rows, expected {expected}: an event written twice"
    # And acknowledged (a script, EVALSHA, counted on both sides of the window's edges):
    # its entries deleted (XLEN: the window's GETs are the reservation script's alone).
    events = redis.Redis(port=stores.redis.port)
    try:
        while events.xlen("{aigw}:audit-v3"):
            assert time.monotonic() < deadline, "audit events stored but not acknowledged"
            time.sleep(0.05)
    finally:
        events.close()


@dataclass
class Window:
    """What Redis and PostgreSQL did while ``requests`` were served (``seconds`` long)."""

    requests: int
    seconds: float
    processes: int
    turns: list[tuple[int, tuple[str, ...]]]
    commandstats: dict[str, int]
    statements: list[tuple[str, int, int]]  # query, calls, rows

    @property
    def periodic_seconds(self) -> float:
        # A periodic task may run once more than its rate allows in a window that does not
        # start on its period (the drainers' 0.25 s, the circuit breakers' 0.25 s).
        return self.seconds + 0.5

    def units(self, per: Per) -> float:
        return {
            Per.REQUEST: self.requests,
            Per.SCOPE: self.requests * SCOPES,
            Per.AUDIT_BATCH: math.ceil(self.requests / AUDIT_BATCH),
            Per.PROCESS_SECOND: self.processes * self.periodic_seconds,
            Per.DEPLOYMENT_SECOND: DEPLOYMENTS * self.processes * self.periodic_seconds,
        }[per]


def _measure(stores: Stores, fleet: Fleet, gateways: list[GatewayProcess]) -> Window:
    urls = [gateway.url for gateway in gateways]
    counter = redis.Redis(port=stores.redis.port)
    # Warm-up: every worker connects, loads the scripts and knows the key and its limits
    # (a worker still starting when they were set applies them at its next reload): until
    # the reservation script reads every scope's counters for every request.
    warm = 16 * sum(gateway.workers for gateway in gateways)
    deadline = time.monotonic() + 15
    while True:
        before = stores.audit_rows()
        counter.config_resetstat()
        run_async(_drive(urls, fleet.key, warm))
        _wait_for_rows(stores, before + warm)
        reads = int(counter.info("commandstats").get("cmdstat_get", {"calls": 0})["calls"])
        if reads == SCRIPT_CALLS["GET"] * SCOPES * warm:
            break
        assert time.monotonic() < deadline, f"the limits did not reach every worker: {reads}"
        time.sleep(1)
    with psycopg.connect(stores.postgres.url, autocommit=True) as conn:
        conn.execute(f"{OURS} SELECT pg_stat_statements_reset()")
    counter.config_resetstat()
    stores.proxy.take()
    began = time.monotonic()
    run_async(_drive(urls, fleet.key, REQUESTS))
    _wait_for_rows(stores, before + warm + REQUESTS)
    turns = stores.proxy.take()
    seconds = time.monotonic() - began
    stats = counter.info("commandstats")
    counter.close()
    with psycopg.connect(stores.postgres.url, autocommit=True) as conn:
        statements = [
            (str(query), int(calls), int(rows))
            for query, calls, rows in conn.execute(
                f"{OURS} SELECT query, calls, rows FROM pg_stat_statements"
            )
            if not str(query).startswith(OURS)
        ]
    return Window(
        REQUESTS,
        seconds,
        fleet.processes,
        turns,
        {name.removeprefix("cmdstat_").upper(): int(v["calls"]) for name, v in stats.items()},
        statements,
    )


def _bound(window: Window, attribute: str = "", command: str = "") -> float:
    """The table's bound on ``attribute`` (or on one Redis ``command``'s calls) in ``window``."""
    total = 0.0
    for row in TRAFFIC:
        value = row.redis_commands.get(command, 0) if command else getattr(row, attribute)
        total += value * window.units(row.per)
    return total


def _exact(command: str) -> bool:
    rows = [row for row in TRAFFIC if command in row.redis_commands]
    return bool(rows) and all(row.exact for row in rows)


def _check(window: Window) -> None:
    """Hold ``window`` to the table."""
    k = window.requests
    commands = Counter(name for _, turn in window.turns for name in turn)
    documented = {name for row in TRAFFIC for name in row.redis_commands}
    for name, calls in commands.items():
        if name in SETUP_COMMANDS:
            continue
        assert name in documented, (
            f"{name} was sent {calls} times for {k} requests: not in the documented traffic "
            "(gateway_app/governance/traffic.py)"
        )
        bound = _bound(window, command=name)
        if _exact(name):
            assert calls == bound, f"{name}: {calls} calls for {k} requests, documented {bound}"
        else:
            assert calls <= bound, f"{name}: {calls} calls for {k} requests, at most {bound}"
    for row in TRAFFIC:  # an exact row's command was sent, as many times as documented
        if row.exact:
            for name, count in row.redis_commands.items():
                assert commands[name] == count * window.units(row.per), (name, commands[name])
    # Round trips: at most one per request waits on Redis (the reservation; scale-out
    # may share it between a process's concurrent requests, never add to it); every
    # round trip together within the table's total.
    hot = sum(1 for _, turn in window.turns if "EVALSHA reserve" in turn)
    assert hot <= k, f"{hot} round trips carried reservations for {k} requests"
    setup = [turn for _, turn in window.turns if set(turn) <= SETUP_COMMANDS]
    connections = {conn for conn, _ in window.turns}
    assert len(setup) <= 3 * len(connections), setup
    counted = len(window.turns) - len(setup)
    assert counted <= _bound(window, "redis_round_trips"), (counted, window.seconds)
    # Redis itself agrees: every EVALSHA and XADD the proxy saw, and inside the
    # reservation script its documented calls per scope (GET: the script's alone).
    evalsha = sum(n for name, n in commands.items() if name.startswith("EVALSHA"))
    assert window.commandstats.get("EVALSHA", 0) == evalsha
    assert window.commandstats.get("XADD", 0) == commands["XADD"]
    assert window.commandstats.get("GET", 0) == SCRIPT_CALLS["GET"] * SCOPES * k
    # PostgreSQL: one audit row per request, written in batches (a batch's COPY writes its
    # rows): statements and transactions per drain batch (per process and second).
    inserted = sum(
        rows
        for query, _, rows in window.statements
        if "INTO audit_events" in query or query.startswith('COPY "audit_events"')
    )
    assert inserted == _bound(window, "postgres_rows") == k
    calls = sum(calls for _, calls, _ in window.statements)
    assert calls <= _bound(window, "postgres_statements"), window.statements
    commits = sum(c for query, c, _ in window.statements if query.upper() == "COMMIT")
    assert commits <= _bound(window, "postgres_transactions"), (commits, window.seconds)


TOPOLOGIES = {
    "1 process": ("one",),
    "serve --workers 2": ("workers_2",),
    "serve --workers 3": ("workers_3",),
    "2 replicas": ("one", "replica_2"),
    "3 replicas": ("one", "replica_2", "replica_3"),
}


@pytest.mark.parametrize("topology", list(TOPOLOGIES))
def test_traffic_per_request_is_the_documented_count(
    topology: str, stores: Stores, fleet: Fleet
) -> None:
    gateways = [getattr(fleet, name) for name in TOPOLOGIES[topology]]
    _check(_measure(stores, fleet, gateways))
