"""Home promotion, the budgets' part (issue 29; decision record 0001, scenario 11).

aws (home) hands a team budget out in leases; a burst spends in all three clouds;
aws is lost; the operator promotes azure (``home: azure``, ``epoch: 2`` on every
cloud, restarted as ``pulumi up`` restarts them). The clouds keep the lease keys
the old home granted: the new home adopts what azure and gcp hold from their
reports and keeps for aws what they did not hold, so reservations, summed over
the three clouds (aws's counter included), never pass the budget. Even when the
operator raises the budget while aws is lost, azure and gcp together hold no
more than they held when adopted: what aws may hold stays held back. aws comes
back as a follower of epoch 2 and reports: the new home grants what is free
again and budgeted traffic resumes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes import slow
from tests.multicloud.clouds import CLOUDS, Multicloud, run
from tests.multicloud.test_budgets import MAX_TOKENS, MESSAGES, _Counters, _reservation_nusd

PER_CLOUD = 60


@pytest.fixture(scope="module")
def promoted() -> Iterator[Multicloud]:
    """Its own three clouds (this test moves the home)."""
    clouds = Multicloud.start()
    try:
        yield clouds
    finally:
        clouds.stop()


async def _burst(clouds: Multicloud, names: list[str], key: str) -> dict[str, list[int]]:
    """PER_CLOUD concurrent chat completions into each named cloud: their statuses."""
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(url: str) -> int:
            response = await http.post(
                url + "/v1/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json={"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": MAX_TOKENS},
            )
            if response.status_code != 200:
                code = response.json()["error"]["code"]
                assert code in ("budget_lease_unavailable", "budget_exceeded"), response.text
            return response.status_code

        results = await asyncio.gather(
            *(asyncio.gather(*(one(clouds[n].url) for _ in range(PER_CLOUD))) for n in names)
        )
    return dict(zip(names, results, strict=True))


def _served(results: dict[str, list[int]]) -> int:
    return sum(status == 200 for statuses in results.values() for status in statuses)


def _held(
    clouds: Multicloud, home: str, team: str, epoch: int, what: str = "held"
) -> dict[str, int]:
    """Per cloud, what the ledger of ``home`` at ``epoch`` says it holds (or granted)."""
    month = time.strftime("%Y-%m", time.gmtime())
    column = {
        "held": "granted_nusd - returned_nusd + overdraft_nusd",
        "granted": "granted_nusd",
        "adopted": "adopted_nusd",
    }[what]
    db = clouds[home].database()
    try:
        rows = db.fetch(
            f"SELECT cloud, {column} AS amount FROM budget_ledger WHERE budget = ? AND epoch = ?",
            (f"team:{team}|monthly|{month}", epoch),
        )
    finally:
        db.close()
    return {r["cloud"]: int(r["amount"]) for r in rows}


def _sum2(amounts: dict[str, int]) -> int:
    """What azure and gcp (the clouds heard from while aws is lost) hold together."""
    return amounts["azure"] + amounts["gcp"]


def _wait(check: Any, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_promoted_home_never_grants_past_the_budget_and_grants_again_once_aws_reports(
    promoted: Multicloud,
) -> None:
    clouds = promoted
    team = f"t-promote-{int(time.time())}"
    budget = 150 * _reservation_nusd()
    put = clouds["aws"].admin(
        "PUT", f"/admin/limits/team/{team}", json={"monthly_usd": budget / 1e9}
    )
    assert put.status_code == 200, put.text
    made = clouds["aws"].admin("POST", "/admin/keys", json={"team_id": team, "project_id": team})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    for cloud in clouds.clouds.values():
        cloud.upstream.script(*[slow(0.5, usage=(11, 60)) for _ in range(4 * PER_CLOUD)])
    _wait(lambda: set(_held(clouds, "aws", team, 1)) == set(CLOUDS), "a first lease everywhere")
    counters = _Counters(clouds, team)
    try:
        with counters:
            first = run(_burst(clouds, list(CLOUDS), key))
            assert _served(first) > 0
            # aws is lost (its Redis stays: its counter still counts in the bound).
            assert clouds["aws"].gateway is not None
            clouds["aws"].gateway.stop()
            for name in ("azure", "gcp"):
                clouds.restart(name, home="azure", epoch=2)
            _wait(
                lambda: set(_held(clouds, "azure", team, 2)) == {"azure", "gcp"},
                "azure's ledger adopted azure's and gcp's holdings",
            )
            second = run(_burst(clouds, ["azure", "gcp"], key))
            # The new home adopted what they hold and keeps the rest for aws (unheard):
            # azure and gcp together never hold more than they held when adopted.
            adopted = _held(clouds, "azure", team, 2, "adopted")
            assert _sum2(_held(clouds, "azure", team, 2)) <= _sum2(adopted), adopted
            assert counters.peak <= budget, (counters.peak, budget)
            # The operator doubles the budget while aws is still lost: what aws may hold
            # stays held back, so azure and gcp still get nothing past what they adopted.
            raised = 2 * budget
            put = clouds["azure"].admin(
                "PUT", f"/admin/limits/team/{team}", json={"monthly_usd": raised / 1e9}
            )
            assert put.status_code == 200, put.text
            run(_burst(clouds, ["azure", "gcp"], key))
            assert _sum2(_held(clouds, "azure", team, 2)) <= _sum2(adopted)
            granted = _held(clouds, "azure", team, 2, "granted")
            # aws returns as a follower of the new home; once it reported what it holds,
            # the home grants what is free (the raise, at least) and budgeted traffic
            # resumes in azure and gcp.
            clouds.restart("aws", home="azure", epoch=2)
            _wait(
                lambda: set(_held(clouds, "azure", team, 2)) == set(CLOUDS),
                "aws reported to the new home",
            )
            # Their next reports (a tick) bring grants of the raise, and they serve again.
            _wait(
                lambda: _sum2(_held(clouds, "azure", team, 2, "granted")) > _sum2(granted),
                "the new home granted azure and gcp again once aws reported",
                seconds=15.0,
            )
            third = run(_burst(clouds, ["azure", "gcp"], key))
        assert counters.peak <= raised, (counters.peak, raised)
        final = _held(clouds, "azure", team, 2)
        assert sum(final.values()) <= raised, final
        spent = sum(counters.now().values())
        print(
            f"\nserved {_served(first)} / {_served(second)} / {_served(third)}; adopted "
            f"{adopted}; spent {spent / budget:.3f}, peak {counters.peak / budget:.3f} of the "
            "first budget"
        )
        assert _served(third) > 0, third
    finally:
        counters.close()
