"""One team budget spent from three clouds at once is never over-committed (issue 29, slice 2).

The home (aws) keeps the escrow ledger; each cloud admits a request only within
its lease of the budget, read by the reservation script in the same Redis
round trip (docs/decisions/0001-global-governance-plane.md, "Budgets: escrow
leases"). The stated bound: reservations (spend plus open reservations, summed
over every cloud) never exceed the budget, partitions included; spend exceeds
reservations only when a request costs more than it reserved (never here: the
fake upstream reports fewer tokens than reserved). Measured on the way: how
many of the 600 requests each run admitted (underuse is the price, not overspend).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from gateway_app.config import GatewayConfig
from gateway_app.config.prices import Pricing
from tests.fakes import slow
from tests.gateway.governance.processes import gateway_config
from tests.multicloud.clouds import CLOUDS, Multicloud, PeakSampler, run

PER_CLOUD = 200
MAX_TOKENS = 100
MESSAGES = [{"role": "user", "content": "spend"}]
NANO = 1_000_000_000


def _reservation_nusd() -> int:
    """What the gateway reserves for one request (service.Governance.estimate and price_bound)."""
    config = GatewayConfig.model_validate(gateway_config("http://127.0.0.1:9/v1"))
    deployment = config.models["gpt-4o-mini"].deployments[0]
    prices = Pricing().prices(deployment, "openai")
    prompt = len(orjson.dumps(MESSAGES)) // 3 + 16
    return math.ceil((prompt * prices.input + MAX_TOKENS * prices.output) * NANO)


class _Counters(PeakSampler):
    """Samples the budget's counter in every cloud's Redis (spend + open reservations)."""

    def __init__(self, clouds: Multicloud, team: str) -> None:
        super().__init__(clouds, interval_s=0.005)
        month = datetime.now(UTC).strftime("%Y-%m")
        self.key = f"{{aigw}}:b:team:{team}:monthly:{month}"

    def now(self) -> dict[str, float]:
        return {name: int(client.get(self.key) or 0) for name, client in self.clients.items()}


async def _burst(clouds: Multicloud, key: str) -> dict[str, list[tuple[int, str | None]]]:
    """PER_CLOUD concurrent chat completions into every cloud at once: (status, error code)."""
    limits = httpx.Limits(max_connections=len(CLOUDS) * PER_CLOUD)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:

        async def one(url: str) -> tuple[int, str | None]:
            response = await http.post(
                url + "/v1/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json={"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": MAX_TOKENS},
            )
            code = response.json()["error"]["code"] if response.status_code != 200 else None
            return response.status_code, code

        tasks = {
            name: [one(cloud.url) for _ in range(PER_CLOUD)]
            for name, cloud in clouds.clouds.items()
        }
        results = await asyncio.gather(*(asyncio.gather(*t) for t in tasks.values()))
    return dict(zip(tasks, results, strict=True))


def _ledger(clouds: Multicloud, team: str) -> dict[str, dict[str, int]]:
    budget = f"team:{team}|monthly|{datetime.now(UTC).strftime('%Y-%m')}"
    db = clouds["aws"].database()
    try:
        rows = db.fetch(
            "SELECT cloud, granted_nusd, returned_nusd, overdraft_nusd, spent_nusd "
            "FROM budget_ledger WHERE budget = ?",
            (budget,),
        )
    finally:
        db.close()
    # What a cloud holds: granted (cumulative) less what it gave back, plus overdrafts.
    return {
        r["cloud"]: {
            "granted": int(r["granted_nusd"]),
            "held": int(r["granted_nusd"]) - int(r["returned_nusd"]) + int(r["overdraft_nusd"]),
            "spent": int(r["spent_nusd"]),
        }
        for r in rows
    }


def _audited_nusd(clouds: Multicloud, key_id: str) -> dict[str, tuple[int, float]]:
    """Per cloud: (requests it served, their audited cost in nano-USD), from its own database
    (the home's also holds the events the others shipped)."""
    out = {}
    for name, cloud in clouds.clouds.items():
        db = cloud.database()
        try:
            row = db.fetch(
                "SELECT COUNT(*) AS n, COALESCE(SUM(cost_usd), 0) AS cost FROM audit_events "
                "WHERE kind = 'request' AND key_id = ? AND status = 200 AND cloud = ?",
                (key_id, name),
            )[0]
        finally:
            db.close()
        out[name] = (int(row["n"]), float(row["cost"]) * NANO)
    return out


@pytest.fixture
def team_budget(clouds: Multicloud, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A fresh team with a monthly budget of 150 reservations, and a key of it that works in
    every cloud; each cloud's upstream answers 200 requests after 1 s (all in flight at once)."""
    team = f"t-budget-{request.node.name[-12:].strip('[]')}-{int(time.time())}"
    reserve = _reservation_nusd()
    budget = 150 * reserve
    put = clouds["azure"].admin(
        "PUT", f"/admin/limits/team/{team}", json={"monthly_usd": budget / NANO}
    )
    assert put.status_code == 200, put.text
    made = clouds["gcp"].admin("POST", "/admin/keys", json={"team_id": team, "project_id": team})
    assert made.status_code == 201, made.text
    key = made.json()
    for cloud in clouds.clouds.values():
        # (60 completion tokens of the 100 reserved: each request costs less than it reserves.)
        cloud.upstream.script(*[slow(1.0, usage=(11, 60)) for _ in range(PER_CLOUD)])
    # Every cloud knows the key and has had a first lease of the budget (one tick).
    deadline = time.monotonic() + 5
    while set(_ledger(clouds, team)) != set(CLOUDS):
        assert time.monotonic() < deadline, _ledger(clouds, team)
        time.sleep(0.1)
    yield {"team": team, "key": key, "budget": budget, "reserve": reserve}


def _check_burst(
    results: dict[str, list[tuple[int, str | None]]], counters: _Counters, budget: int
) -> dict[str, int]:
    served = {name: sum(1 for status, _ in r if status == 200) for name, r in results.items()}
    refused = {code for r in results.values() for status, code in r if status != 200}
    assert refused <= {"budget_lease_unavailable", "budget_exceeded"}, refused
    # The bound: never more reserved or spent, summed over the clouds, than the budget.
    assert counters.peak <= budget, f"peak {counters.peak / budget:.3f} of the budget"
    return served


def test_three_clouds_bursting_on_one_budget_never_reserve_more_than_it(
    clouds: Multicloud, team_budget: dict[str, Any]
) -> None:
    team, key, budget = team_budget["team"], team_budget["key"], team_budget["budget"]
    counters = _Counters(clouds, team)
    try:
        with counters:
            results = run(_burst(clouds, key["key"]))
        served = _check_burst(results, counters, budget)
        # Each cloud admitted some: the budget is shared, not held by one cloud.
        assert all(served[name] > 0 for name in CLOUDS), served
        # The clouds never held more than the budget (granted - returned).
        ledger = _ledger(clouds, team)
        assert sum(row["held"] for row in ledger.values()) <= budget, ledger
        # Reconciled: within two ticks the ledger's spend is every cloud's counter, which is
        # the audited cost of what each cloud served (to 1 nano-USD per request).
        deadline = time.monotonic() + 3
        while {n: r["spent"] for n, r in _ledger(clouds, team).items()} != counters.now():
            assert time.monotonic() < deadline, (_ledger(clouds, team), counters.now())
            time.sleep(0.1)

        # The admin API's budget answer is the ledger's, the same from every cloud.
        def settled(answer: httpx.Response) -> bytes:
            # (A report refreshes reported_at every tick or ten; the amounts stay put.)
            body = answer.json()
            for periods in body["clouds"].values():
                for row in periods.values():
                    row.pop("reported_at")
            return orjson.dumps(body)

        # Asked of the three clouds one after another: a lease tick between two questions
        # (a cloud's held amount renewed or returned) makes them differ for a moment, so
        # ask again until one round agrees (bounded); a cloud answering from a view of its
        # own would never agree.
        deadline = time.monotonic() + 3
        while True:
            answers = {
                name: cloud.admin("GET", f"/admin/budgets/team/{team}")
                for name, cloud in clouds.clouds.items()
            }
            assert all(a.headers["x-aigw-served-by"] == "aws" for a in answers.values())
            bodies = {name: settled(a) for name, a in answers.items()}
            if len(set(bodies.values())) == 1:
                break
            assert time.monotonic() < deadline, bodies
            time.sleep(0.1)
        spent = answers["gcp"].json()
        assert round(spent["monthly_usd"] * NANO) == sum(counters.now().values())
        assert set(spent["clouds"]) == set(CLOUDS)
        audited = _audited_nusd(clouds, key["id"])
        for name, (count, cost) in audited.items():
            assert count == served[name], (name, audited, served)
            assert abs(counters.now()[name] - cost) <= count + 1, (name, counters.now(), cost)
        print(f"\nserved {served} of {PER_CLOUD} each; peak {counters.peak / budget:.3f} x budget")
    finally:
        counters.close()


def test_a_cloud_cut_off_from_the_home_spends_only_what_it_holds_and_reconciles_on_heal(
    clouds: Multicloud, team_budget: dict[str, Any]
) -> None:
    team, key, budget = team_budget["team"], team_budget["key"], team_budget["budget"]
    counters = _Counters(clouds, team)
    try:
        before = _ledger(clouds, team)["gcp"]
        held = before["held"]
        clouds.isolate("gcp")
        with counters:
            results = run(_burst(clouds, key["key"]))
        _check_burst(results, counters, budget)
        # gcp, cut off, spent at most what it held when the partition began.
        assert counters.now()["gcp"] <= held, (counters.now(), held)
        # Nothing granted meanwhile.
        assert _ledger(clouds, team)["gcp"]["granted"] == before["granted"]
        clouds.heal()
        deadline = time.monotonic() + 5
        while _ledger(clouds, team)["gcp"]["spent"] != counters.now()["gcp"]:
            assert time.monotonic() < deadline, (_ledger(clouds, team), counters.now())
            time.sleep(0.1)
        ledger = _ledger(clouds, team)
        assert sum(row["held"] for row in ledger.values()) <= budget, ledger
    finally:
        counters.close()
