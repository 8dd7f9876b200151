"""Each cloud's PostgreSQL connections hold to the plan's budget in the global plane.

The plan counts, per cloud, :data:`~infra.decisions.postgres.CONNECTIONS_PER_PROCESS` per
gateway process (its own, its audit drain's and its admin reports') and, in a follower
cloud, one more for the replica holding the audit-shipper lease
(:func:`~infra.decisions.postgres.connections_needed`). In the three-cloud simulation
(aws the home, azure and gcp followers), with traffic in every cloud, the followers'
audit shipped to the home, the analytics, the audit search and ``/metrics`` asked of
every cloud, each cloud's server is sampled (``pg_stat_activity``,
:class:`~tests.gateway.governance.pg_activity.ConnectionSampler`: these connections are
held open, so sampling sees them): at most the plan's count, each connection named by
what holds it. ``tests/gateway/governance/test_connection_budget.py`` counts one cloud's
processes and Jobs exactly.

Only the holder of the lease holds the shipper's connection: a replica that loses the
lease to another closes its own, or the cloud would hold two.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import openai
import psycopg
import redis

from gateway_app.governance.storage import ConnectionName
from infra.decisions.postgres import connections_needed
from tests.gateway.governance.pg_activity import ConnectionSampler
from tests.multicloud.clouds import (
    CLOUDS,
    SHIPPER_LEASE,
    Multicloud,
    run,
    shipper_holder,
    store_events,
    wait_until,
)

REQUESTS = 40  # per cloud


async def _traffic(clouds: Multicloud, key: str) -> dict[str, int]:
    """``REQUESTS`` chat completions into every cloud through the official SDK, 8 at a
    time per cloud; how many succeeded per cloud."""

    async def cloud(url: str) -> int:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
        slots = asyncio.Semaphore(8)

        async def one() -> bool:
            async with slots:
                try:
                    await client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}]
                    )
                    return True
                except openai.APIStatusError:
                    return False

        try:
            return sum(await asyncio.gather(*(one() for _ in range(REQUESTS))))
        finally:
            await client.close()

    served = await asyncio.gather(*(cloud(c.url) for c in clouds.clouds.values()))
    return dict(zip(clouds.clouds, served, strict=True))


def _unshipped(clouds: Multicloud, name: str) -> float:
    text = httpx.get(clouds[name].url + "/metrics", timeout=5).text
    [value] = [
        line.split()[1]
        for line in text.splitlines()
        if line.startswith("aigw_gov_audit_unshipped ")
    ]
    return float(value)


def test_each_cloud_holds_the_connections_the_plan_counts(clouds: Multicloud) -> None:
    home = clouds.home
    team = f"t-connections-{int(time.time())}"
    with contextlib.ExitStack() as stack:
        samplers = {
            name: stack.enter_context(ConnectionSampler(cloud.postgres.url))
            for name, cloud in clouds.clouds.items()
        }
        made = clouds[home].admin("POST", "/admin/keys", json={"team_id": team, "project_id": team})
        assert made.status_code == 201, made.text
        key = made.json()
        deadline = time.monotonic() + 10
        while run(_traffic(clouds, key["key"])) != dict.fromkeys(CLOUDS, REQUESTS):
            assert time.monotonic() < deadline, "the key did not reach every cloud"
        run(_traffic(clouds, key["key"]))
        for name in CLOUDS:
            for path in ("/admin/analytics/usage", "/admin/analytics/latency", "/admin/audit"):
                response = clouds[name].admin("GET", path, params={"team_id": team})
                assert response.status_code == 200, (name, path, response.text)
        # Every follower's events stored at the home: each follower's shipper marked them.
        deadline = time.monotonic() + 10
        while any(_unshipped(clouds, name) for name in CLOUDS if name != home):
            assert time.monotonic() < deadline, "the followers' audit did not reach the home"
            time.sleep(0.1)
        seen = {name: sampler.take() for name, sampler in samplers.items()}
    for name, activity in seen.items():
        demand = connections_needed(1, canary=False, follower=name != home, rollout=False)
        serving = demand.total - demand.jobs  # no Job runs here
        peak = activity.peak("aigw")
        assert peak <= serving, (
            f"{name}: {peak} PostgreSQL connections at once ({activity.describe('aigw')}); "
            f"the plan counts {serving} without its Jobs ({demand.describe()})"
        )
        by_name = activity.peak_by_name("aigw")
        expected = {
            ConnectionName.GATEWAY: 1,
            ConnectionName.AUDIT_DRAIN: 1,
            ConnectionName.ADMIN_REPORTS: 1,
        }
        if name != home:
            expected[ConnectionName.AUDIT_SHIPPER] = 1
        assert by_name == expected, (name, by_name)


def _shipper_connections(url: str) -> int:
    """The audit shippers' connections to the cloud's database now."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'aigw' "
            "AND application_name = %s",
            (ConnectionName.AUDIT_SHIPPER.value,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_replica_that_loses_the_shipper_lease_closes_its_shipper_connection(
    clouds: Multicloud,
) -> None:
    gcp = clouds["gcp"]
    gateway = gcp.gateway
    assert gateway is not None and gateway.process is not None
    lease = redis.Redis.from_url(gcp.redis.url)
    db = gcp.database()

    try:
        wait_until(
            lambda: shipper_holder(lease) == gateway.process.pid,
            8.0,
            "gcp's gateway holds the lease",
        )
        store_events(db, "gcp", 50, "k-connections")
        wait_until(lambda: _shipper_connections(gcp.postgres.url) == 1, 5.0, "it ships")
        # Another replica takes the lease (as after a missed renewal): this one stops
        # shipping, and holds no shipper connection beside the new holder's.
        lease.set(SHIPPER_LEASE, "another-replica-0-0", px=4000)
        wait_until(
            lambda: _shipper_connections(gcp.postgres.url) == 0, 3.0, "its connection closed"
        )
        # The other one's lease lapses unrenewed: this one ships again, on one connection.
        wait_until(
            lambda: shipper_holder(lease) == gateway.process.pid, 8.0, "it takes the lease back"
        )
        store_events(db, "gcp", 50, "k-connections")
        wait_until(lambda: _shipper_connections(gcp.postgres.url) == 1, 5.0, "it ships again")
    finally:
        lease.close()
        db.close()
