"""Every cloud's audit lands once at the home, partitions included (issue 29, slice 3).

Each cloud writes its events to its own PostgreSQL (exactly once, as before)
and ships them to the home in batches keyed by their globally unique event ids
(``<cloud>.<process prefix><counter>``); the home stores each once whatever the
retries. Analytics and the audit search are answered by the home, so every
cloud gives the same answer (docs/decisions/0001-global-governance-plane.md,
"Audit: exactly once across clouds"; ready list items 6-8).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from tests.multicloud.clouds import CLOUDS, Multicloud, run

HEAL_BOUND_S = 5.0


async def _traffic(clouds: Multicloud, key: str, per_cloud: int) -> dict[str, int]:
    """``per_cloud`` chat completions into every cloud (a few at a time); 200s per cloud."""
    async with httpx.AsyncClient(timeout=10) as http:

        async def one(url: str) -> int:
            response = await http.post(
                url + "/v1/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a"}]},
            )
            return response.status_code

        async def cloud(url: str) -> int:
            statuses: list[int] = []
            for _ in range(per_cloud // 5):
                statuses += await asyncio.gather(*(one(url) for _ in range(5)))
            return sum(1 for status in statuses if status == 200)

        served = await asyncio.gather(*(cloud(c.url) for c in clouds.clouds.values()))
    return dict(zip(clouds.clouds, served, strict=True))


def _events(
    clouds: Multicloud, name: str, key_id: str, served_by: str | None = None
) -> list[dict[str, Any]]:
    """Request events of ``key_id`` in cloud ``name``'s database (of cloud ``served_by``)."""
    db = clouds[name].database()
    try:
        rows = db.fetch(
            "SELECT event_id, cloud, request_id FROM audit_events "
            "WHERE kind = 'request' AND key_id = ?",
            (key_id,),
        )
        return [row for row in rows if served_by is None or row["cloud"] == served_by]
    finally:
        db.close()


def _unshipped(clouds: Multicloud, name: str) -> int:
    """Events in cloud ``name``'s database not yet stored at the home."""
    db = clouds[name].database()
    try:
        return len(db.fetch("SELECT event_id FROM audit_events WHERE shipped_at IS NULL"))
    finally:
        db.close()


def _gauge(clouds: Multicloud, name: str, metric: str) -> float:
    """One unlabelled sample of cloud ``name``'s /metrics."""
    text = httpx.get(clouds[name].url + "/metrics", timeout=5).text
    [value] = [line.split()[1] for line in text.splitlines() if line.startswith(metric + " ")]
    return float(value)


def _local(
    clouds: Multicloud, key_id: str, served: dict[str, int]
) -> dict[str, list[dict[str, Any]]]:
    """Each cloud's own events, once its drainer has written all it served."""
    deadline = time.monotonic() + 5
    while True:
        local = {name: _events(clouds, name, key_id, name) for name in CLOUDS}
        if {name: len(rows) for name, rows in local.items()} == served:
            return local
        assert time.monotonic() < deadline, ({n: len(r) for n, r in local.items()}, served)
        time.sleep(0.1)


@pytest.mark.parametrize("fault", ["drop", "reset", "loss"])
def test_partition_then_heal_every_event_at_the_home_exactly_once_and_one_answer_everywhere(
    clouds: Multicloud, fault: str
) -> None:
    team = f"t-audit-{fault}-{int(time.time())}"
    made = clouds["aws"].admin("POST", "/admin/keys", json={"team_id": team, "project_id": team})
    assert made.status_code == 201, made.text
    key = made.json()
    deadline = time.monotonic() + 5
    while run(_traffic(clouds, key["key"], 5)) != dict.fromkeys(CLOUDS, 5):
        assert time.monotonic() < deadline, "the key did not reach every cloud"
    served = dict.fromkeys(CLOUDS, 5)
    # gcp cut off (or its links lossy) while traffic runs everywhere.
    if fault == "loss":
        for name, cloud in clouds.clouds.items():
            for target, link in cloud.links.items():
                if "gcp" in (name, target):
                    link.loss(0.2, seed=7)
    else:
        clouds.isolate("gcp", mode=fault)
    cut_at = time.time()
    for _ in range(2):
        for name, count in run(_traffic(clouds, key["key"], 20)).items():
            served[name] += count
    assert served["gcp"] == 45  # serving never depended on the other clouds
    if fault != "loss":
        # Cut off, gcp's events wait in its own database: the home has at most the first five.
        _local(clouds, key["id"], served)
        time.sleep(1.5)  # past a shipping interval
        assert len(_events(clouds, "aws", key["id"], "gcp")) <= 5
        # What gcp's operator sees: the backlog waiting for the home.
        waiting = _unshipped(clouds, "gcp")
        assert waiting >= 40
        assert _gauge(clouds, "gcp", "aigw_gov_audit_unshipped") == waiting
        # And the home's: how far gcp's audit lags there (at least since the cut).
        behind = _gauge(clouds, "aws", 'aigw_gov_audit_behind_seconds{cloud="gcp"}')
        assert behind >= time.time() - cut_at, behind
        assert _gauge(clouds, "aws", 'aigw_gov_audit_behind_seconds{cloud="azure"}') < 30
        # Analytics say how complete they are: gcp, cut off, holds the answer back.
        partial = clouds["azure"].admin("GET", "/admin/analytics/usage", params={"team_id": team})
        assert float(partial.headers["x-aigw-audit-complete-through"]) < cut_at
    clouds.heal()
    traffic_done = time.time()
    # Within the bound: the home holds the union of every cloud's events, each once.
    local = _local(clouds, key["id"], served)
    for name, rows in local.items():
        assert {row["event_id"].split(".", 1)[0] for row in rows} == {name}
    union = {row["event_id"] for rows in local.values() for row in rows}
    started = time.monotonic()
    while True:
        home = _events(clouds, "aws", key["id"])
        if {row["event_id"] for row in home} == union:
            break
        assert time.monotonic() - started < HEAL_BOUND_S, (len(home), len(union))
        time.sleep(0.1)
    assert len(home) == len(union) == sum(served.values())  # none lost, none twice
    deadline = time.monotonic() + HEAL_BOUND_S
    while _gauge(clouds, "gcp", "aigw_gov_audit_unshipped") != 0:  # the backlog is gone
        assert time.monotonic() < deadline, _unshipped(clouds, "gcp")
        time.sleep(0.1)
    while _gauge(clouds, "aws", 'aigw_gov_audit_behind_seconds{cloud="gcp"}') >= 10:
        assert time.monotonic() < deadline, "the home still counts gcp behind"
        time.sleep(0.1)
    assert {row["event_id"]: row["cloud"] for row in home} == {
        row["event_id"]: name for name, rows in local.items() for row in rows
    }
    # Shipping stops once everything is shipped: a second look finds nothing new.
    time.sleep(1.5)
    assert len(_events(clouds, "aws", key["id"])) == len(union)
    # Analytics and the audit search: the same answer from every cloud, counting everyone.
    answers: dict[str, set[bytes]] = {}
    for cloud in clouds.clouds.values():
        usage = cloud.admin(
            "GET", "/admin/analytics/usage", params={"group_by": "team,cloud", "team_id": team}
        )
        assert usage.status_code == 200 and usage.headers["x-aigw-served-by"] == "aws"
        answers.setdefault("usage", set()).add(usage.content)
        search = cloud.admin(
            "GET", "/admin/audit", params={"key_id": key["id"], "kind": "request", "limit": 1000}
        )
        assert search.status_code == 200
        answers.setdefault("audit", set()).add(search.content)
    assert all(len(found) == 1 for found in answers.values()), "clouds answered differently"
    by_cloud = {row["cloud"]: row["requests"] for row in usage.json()["data"]}
    assert by_cloud == served
    # Everything served before the heal is in the completeness claim, within the heal's
    # bound: the claim moves with the follower's shipping cadence (a batch sent during
    # the partition, delivered at the heal, claims up to its sweep's start).
    deadline = time.monotonic() + HEAL_BOUND_S
    while True:
        complete = float(usage.headers["x-aigw-audit-complete-through"])
        if complete > traffic_done - 2.5:
            break
        assert time.monotonic() < deadline, (complete, traffic_done)
        time.sleep(0.2)
        usage = cloud.admin(
            "GET", "/admin/analytics/usage", params={"group_by": "team,cloud", "team_id": team}
        )


def test_a_follower_waits_for_a_slow_report_at_the_home_instead_of_calling_it_unreachable(
    clouds: Multicloud,
) -> None:
    """An analytics answer the home takes longer than ``forward_timeout_s`` (10 s) to
    give (a range over today's raw events at 50,000 requests/s) is relayed by a follower
    when it comes, within the home's own query limit (``admin_query_timeout_s``, 60 s),
    not answered 503 "home unreachable" while the home is still working on it (a retry
    would start the same query there again)."""
    import psycopg

    from gateway_app.config.governance import GlobalConfig

    forward_s = GlobalConfig.model_fields["forward_timeout_s"].default
    # What makes the home's query last: a lock on the roll-up it reads, held past the
    # follower's forward timeout by another session.
    blocker = psycopg.connect(clouds["aws"].postgres.url, autocommit=True)
    try:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE audit_rollup IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with httpx.Client(timeout=forward_s + 30) as http:
            pending = threading.Timer(forward_s + 2, lambda: blocker.execute("ROLLBACK"))
            pending.start()
            try:
                answer = http.get(
                    clouds["gcp"].url + "/admin/analytics/usage",
                    params={"group_by": "team"},
                    headers={"authorization": "Bearer process-admin-key"},
                )
            finally:
                pending.join()
        took = time.monotonic() - started
    finally:
        blocker.close()
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-aigw-served-by"] == "aws"
    assert forward_s + 2 <= took < forward_s + 10, took
