"""A cloud's side of the ledger on a real Redis (issue 29): shares read by the reservation
script, lease returns taken before they are reported, the opt-in partition overdraft."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from gateway_app.config.governance import GlobalConfig
from gateway_app.governance.keys import Limit
from gateway_app.governance.leases import (
    NANO,
    LeaseAgent,
    Ledger,
    RateReport,
    Report,
    budget_id,
    lease_keys,
)
from gateway_app.governance.storage import Database
from gateway_app.state.governance import BudgetItem, RateItem, share_key
from gateway_app.state.governance_redis import RedisGovernanceState
from gateway_app.state.resp import RespClient

CLOUDS = ("aws", "azure", "gcp")
NOW = 1_000_020.0  # a minute's start: the window is this minute alone


def _config(**options: Any) -> GlobalConfig:
    return GlobalConfig.model_validate(
        {"home": "aws", "peers": {c: {"url": f"https://{c}", "issuer": c} for c in CLOUDS}}
        | options
    )


def _prefix() -> str:
    return "{aigw}:" + secrets.token_hex(4) + ":"


def test_the_reservation_script_enforces_this_clouds_share_of_a_rate_limit(
    redis_server: Any,
) -> None:
    async def run() -> None:
        prefix = _prefix()
        client = aioredis.Redis.from_url(redis_server.url)
        shared = RedisGovernanceState(
            client, RespClient.from_url(redis_server.url), prefix=prefix, share_floor_ppm=100_000
        )
        item = RateItem("team:t", "rpm", 100, 1)
        admitted = 0
        while (await shared.reserve((item,), (), NOW)).allowed:
            admitted += 1
        assert admitted == 10  # never heard from the home: the floor, a tenth
        refused = await shared.reserve((item,), (), NOW)
        assert refused.refused is item and refused.rate_limits == [10.0]
        # The home granted half: the script reads it in the same call.
        await client.set(prefix + share_key(item), 500_000)
        allowed = await shared.reserve((item,), (), NOW)
        assert allowed.allowed and allowed.rate_limits == [50.0] and allowed.rate_used == [10.0]
        while (await shared.reserve((item,), (), NOW)).allowed:
            admitted += 1
        assert admitted == 49
        # Without shares (one cloud, or before this change) the whole limit, as before.
        alone = RedisGovernanceState(client, RespClient.from_url(redis_server.url), prefix=prefix)
        other = RateItem("team:u", "rpm", 100, 1)
        results = [(await alone.reserve((other,), (), NOW)).allowed for _ in range(101)]
        assert (
            results.count(True) == 100
            and (await alone.reserve((other,), (), NOW)).rate_limits == []
        )
        await shared.hot.aclose()
        await alone.hot.aclose()
        await client.aclose()

    asyncio.run(run())


class _Home:
    """The home's ledger in process, with a switch that cuts this cloud off."""

    def __init__(self, ledger: Ledger, cloud: str) -> None:
        self.ledger, self.cloud, self.cut = ledger, cloud, False

    async def renew(self, reports: dict[str, Any]) -> dict[str, Any]:
        if self.cut:
            raise ConnectionError("partitioned")
        budgets = [Report.parse(r) for r in reports["budgets"]]
        rates = [RateReport.parse(r) for r in reports["rates"]]
        grants, shares = self.ledger.renew_all(self.cloud, budgets, rates)
        return {"grants": grants, "shares": shares}


def _setup(tmp_path: Path, redis_server: Any, **options: Any) -> tuple[Ledger, Any, str]:
    db = Database(f"sqlite:///{tmp_path / 'home.db'}")
    db.migrate()
    config = _config(**options)
    limits = {("team", "t"): Limit("team", "t", monthly_usd=1.0)}
    return Ledger(db, config, lambda: limits), aioredis.Redis.from_url(redis_server.url), _prefix()


BUDGET = BudgetItem("team:t", "monthly", "2026-12", NANO, 0, 3600)


async def _value(client: Any, key: str) -> int:
    return int(await client.get(key) or 0)


async def _after_a_burst(ledger: Ledger, client: Any, prefix: str) -> tuple[LeaseAgent, int]:
    """gcp's agent after requests waited for a third of the budget: it holds a fair share
    of what was free (1/3)."""
    home = _Home(ledger, "gcp")
    agent = LeaseAgent(ledger.config, client, prefix, lambda now: [BUDGET], home.renew)
    agent._needs[budget_id(BUDGET)] = (BUDGET, NANO, NANO // 100)
    await agent.renew_once()
    return agent, await _value(client, lease_keys(prefix, BUDGET)[0])


def test_a_cloud_whose_demand_fell_gives_back_what_it_does_not_need(
    tmp_path: Path, redis_server: Any
) -> None:
    ledger, client, prefix = _setup(tmp_path, redis_server)
    lease, counter, _, returned, _ = lease_keys(prefix, BUDGET)

    async def run() -> None:
        agent, burst = await _after_a_burst(ledger, client, prefix)
        assert burst == NANO // 3
        await client.incrby(counter, NANO // 10)  # it spent a tenth, then went quiet:
        ident = budget_id(BUDGET)
        agent._last[ident] = (time.time() - 100, 0, 0.0)  # (over 100 s)
        await agent.renew_once()
        # It kept a quarter lease (and its spend over lease_cover_s) and gave
        # back the rest, taken from its lease before the home heard of it.
        held = await _value(client, lease)
        gave = await _value(client, returned)
        assert held + gave == burst and gave > 0
        assert held - NANO // 10 <= ledger.config.lease_fraction * NANO
        assert ledger.budget(budget_id(BUDGET))["gcp"]["held_nusd"] == burst  # not yet told
        await agent.renew_once()  # reported: the ledger holds the return, free again
        assert ledger.budget(budget_id(BUDGET))["gcp"]["held_nusd"] == held
        # Another cloud can have what came back: its fair share of the larger free part.
        (reply,) = ledger.renew("azure", [Report(budget_id(BUDGET), 0, NANO, NANO // 100, 0)])
        assert reply["granted_nusd"] == (NANO - held) // 3
        await client.aclose()

    asyncio.run(run())


def test_a_return_never_gives_back_what_is_reserved(tmp_path: Path, redis_server: Any) -> None:
    ledger, client, prefix = _setup(tmp_path, redis_server)
    lease, counter, _, returned, _ = lease_keys(prefix, BUDGET)

    async def run() -> None:
        agent, burst = await _after_a_burst(ledger, client, prefix)
        # The home asks for everything back (as if reserved nothing) while all but a
        # little is reserved here: only the unreserved part goes.
        await client.incrby(counter, burst - 1000)
        await agent._apply(keys=lease_keys(prefix, BUDGET), args=[burst, burst, 3600, 0, 0, burst])
        assert await _value(client, returned) == 1000
        assert await _value(client, lease) == burst - 1000 == await _value(client, counter)
        await client.aclose()

    asyncio.run(run())


def test_the_overdraft_is_off_by_default_and_bounded_when_opted_in(
    tmp_path: Path, redis_server: Any
) -> None:
    async def run(k: int) -> tuple[int, int, Ledger]:
        ledger, client, prefix = _setup(
            tmp_path / str(k), redis_server, partition_overdraft_leases=k, lease_tick_s=0.05
        )
        lease, counter, *_ = lease_keys(prefix, BUDGET)
        home = _Home(ledger, "gcp")
        agent = LeaseAgent(ledger.config, client, prefix, lambda now: [BUDGET], home.renew)
        await agent.renew_once()  # a first lease
        held = await _value(client, lease)
        await client.set(counter, held)  # spent all of it
        home.cut = True
        await asyncio.sleep(0.15)  # no renewal for more than two ticks
        item = BudgetItem(BUDGET.scope, BUDGET.period, BUDGET.period_id, NANO, 10, 3600)
        first = await agent.need(item, 10, 0.05)
        second = await agent.need(item, 10, 0.05)  # once per budget and period
        over = await _value(client, lease) - held
        assert not second
        home.cut = False
        await agent.renew_once()  # heal: the overdraft is reported, counted as held
        row = ledger.budget(budget_id(BUDGET))["gcp"]
        assert row["overdraft_nusd"] == over == agent.overdrawn_nusd  # (the metric's value)
        await client.aclose()
        return int(first), over, ledger

    assert asyncio.run(run(0))[:2] == (0, 0)  # default: never overspend
    first, over, ledger = asyncio.run(run(1))
    assert first == 1 and over == ledger.config.lease_fraction * NANO  # k leases, no more


def test_a_redis_that_lost_its_state_counts_what_the_home_says_it_held_as_spent(
    tmp_path: Path, redis_server: Any
) -> None:
    ledger, client, prefix = _setup(tmp_path, redis_server)
    keys = lease_keys(prefix, BUDGET)

    async def run() -> None:
        agent, burst = await _after_a_burst(ledger, client, prefix)
        await client.delete(*keys)  # this cloud's Redis restarted empty
        # (Its script finds no lease: the first request waits for a renewal.)
        agent._needs[budget_id(BUDGET)] = (BUDGET, 1, 1)
        await agent.renew_once()
        # It may have spent all it held: it counts so, and holds nothing unspent.
        held = ledger.budget(budget_id(BUDGET))["gcp"]["held_nusd"]
        assert held == burst
        assert await _value(client, keys[1]) == held == await _value(client, keys[0])
        await agent.renew_once()  # and reports it: the ledger's spend is the holding
        assert ledger.budget(budget_id(BUDGET))["gcp"]["spent_nusd"] == held
        await client.aclose()

    asyncio.run(run())


def test_after_a_promotion_the_new_home_adopts_what_this_cloud_holds(
    tmp_path: Path, redis_server: Any
) -> None:
    # Issue 29, scenario 11: aws (home) granted gcp a lease, then was lost; the operator
    # promoted azure (epoch 2), whose ledger never saw aws's.
    old, client, prefix = _setup(tmp_path, redis_server)
    lease, counter, *_ = lease_keys(prefix, BUDGET)
    db = Database(f"sqlite:///{tmp_path / 'azure.db'}")
    db.migrate()
    limits = {("team", "t"): Limit("team", "t", monthly_usd=1.0)}
    new = Ledger(db, _config(home="azure", epoch=2), lambda: limits)

    async def run() -> None:
        agent, burst = await _after_a_burst(old, client, prefix)
        await client.incrby(counter, burst // 2)  # it spent half of it
        agent.renew = _Home(new, "gcp").renew  # restarted with the new home's address
        agent._needs[budget_id(BUDGET)] = (BUDGET, NANO, NANO // 100)  # a burst waits
        await agent.renew_once()
        row = new.budget(budget_id(BUDGET))["gcp"]
        # Its report carried what it holds: adopted, the lease not granted twice, and
        # nothing more granted while aws (which may hold the rest) has not reported.
        assert row["held_nusd"] == burst == await _value(client, lease)
        assert row["spent_nusd"] == burst // 2
        await client.aclose()

    asyncio.run(run())


def test_a_raised_limit_clears_the_homes_exhausted_reply(tmp_path: Path, redis_server: Any) -> None:
    # The home said the budget is spent; the operator then raised it. Before the fix the
    # cloud kept refusing (budget_exceeded, Retry-After the period's end) until a renewal
    # happened to report the budget again.
    db = Database(f"sqlite:///{tmp_path / 'home.db'}")
    db.migrate()
    limits = {("team", "t"): Limit("team", "t", monthly_usd=1.0)}
    ledger = Ledger(db, _config(lease_tick_s=5.0), lambda: limits)
    client, prefix = aioredis.Redis.from_url(redis_server.url), _prefix()
    current = [BUDGET]

    async def run() -> None:
        agent = LeaseAgent(
            ledger.config, client, prefix, lambda now: current, _Home(ledger, "gcp").renew
        )
        # A request waits for more than the whole budget: the home answers "exhausted".
        agent._needs[budget_id(BUDGET)] = (BUDGET, 2 * NANO, 2 * NANO)
        await agent.renew_once()
        assert agent.refused_outright(BUDGET)
        assert not await agent.need(BUDGET, NANO // 2, 1.0)  # refused at once, no renewal
        # The operator triples the budget; the change feed brings the new limit to the
        # home's records and to this cloud's registry.
        limits[("team", "t")] = Limit("team", "t", monthly_usd=3.0)
        raised = BudgetItem(BUDGET.scope, BUDGET.period, BUDGET.period_id, 3 * NANO, 0, 3600)
        current[:] = [raised]
        assert not agent.refused_outright(raised)
        agent.start()
        try:
            # The next request asks the home again (the tick is 5 s: only the urgent
            # renewal its need wakes can answer within the second) and is granted.
            assert await agent.need(raised, NANO // 2, 1.0)
            assert not agent.refused_outright(raised)
            assert await _value(client, lease_keys(prefix, raised)[0]) > 0
        finally:
            await agent.stop()
            await client.aclose()

    asyncio.run(run())
