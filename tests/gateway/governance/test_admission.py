"""Admission leases (gateway_app/state/admission.py) against a real Redis.

Chunks of headroom are real reservations: several replicas admitting locally
never pass a limit together; unused chunks go back at the minute's end, when
idle, when limits change and at flush; a chunk is never used under a limit
other than the one it was granted under.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from gateway_app.config.governance import AdmissionConfig
from gateway_app.state.governance import WINDOW_S, BudgetItem, RateItem, Shape, rate_key
from gateway_app.state.governance_redis import RedisGovernanceState
from tests.gateway.conftest import run_async

DAY = "2026-12-05"


def replicas(server: Any, count: int, **admission: Any) -> list[RedisGovernanceState]:
    """``count`` states sharing one Redis and one key prefix: replicas of one gateway."""
    prefix = f"{{a{uuid.uuid4().hex[:8]}}}:"
    config = AdmissionConfig(**admission)
    return [
        RedisGovernanceState.from_url(server.url, prefix=prefix, admission=config)
        for _ in range(count)
    ]


async def counter(state: RedisGovernanceState, key: str) -> int:
    return int(await state.client.get(state.prefix + key) or 0)


def test_far_from_the_limits_most_requests_make_no_round_trip(redis_server: Any) -> None:
    async def main() -> tuple[int, int, int]:
        states = replicas(redis_server, 3)
        now = time.time()
        rpm = RateItem("team:f", "rpm", 100_000, 1)
        budget = BudgetItem("team:f", "daily", DAY, 10**9 * 1000, 1000, 3600)
        admitted = 0
        for _ in range(3):
            decisions = await asyncio.gather(
                *(s.reserve((rpm,), (budget,), now) for s in states for _ in range(100))
            )
            admitted += sum(d.allowed for d in decisions)
        assert all(s.admission is not None for s in states)
        trips = sum(s.admission.round_trips for s in states if s.admission)
        for state in states:
            await state.flush()
        spent = await counter(states[0], f"b:team:f:daily:{DAY}")
        for state in states:
            await state.close()
        return admitted, trips, spent

    admitted, trips, spent = run_async(main())
    assert admitted == 900
    assert spent == 900 * 1000  # every chunk's unused part went back
    assert 3 <= trips <= 900 / 8, trips  # each replica asked Redis at least once


def test_with_the_default_config_one_round_trip_admits_max_requests_requests(
    redis_server: Any,
) -> None:
    """Far from every limit a replica asks Redis about once per ``max_requests`` requests
    (128 by default: bench/partial-admission-chunk.md measured the CPU and Redis cost of
    32), plus the first request of a rate window, which learns its room."""
    requests = 640

    async def main() -> tuple[int, int]:
        (state,) = replicas(redis_server, 1)
        now = time.time()
        rpm = RateItem("team:d", "rpm", 10_000_000, 1)
        tpm = RateItem("team:d", "tpm", 10**10, 500)
        budget = BudgetItem("team:d", "daily", DAY, 10**9 * 1000, 1000, 3600)
        for _ in range(requests):
            assert (await state.reserve((rpm, tpm), (budget,), now)).allowed
        assert state.admission is not None
        trips = state.admission.round_trips
        await state.flush()
        spent = await counter(state, f"b:team:d:daily:{DAY}")
        await state.close()
        return trips, spent

    trips, spent = run_async(main())
    assert spent == requests * 1000  # the last chunk's unused part went back
    assert trips <= requests // 128 + 2, trips  # 32 requests per chunk: 21 round trips


def test_replicas_admitting_from_chunks_never_pass_a_limit(redis_server: Any) -> None:
    """Three replicas, 3 x 300 concurrent requests on one RPM limit and one budget, in
    waves: never more admitted than either limit, and once every replica has returned
    its chunks the budget is reached exactly."""

    async def main() -> tuple[int, int, int, int]:
        states = replicas(redis_server, 3)
        now = time.time()
        rpm = RateItem("team:t", "rpm", 900, 1)
        budget = BudgetItem("team:t", "daily", DAY, 500 * 1000, 1000, 3600)  # 500 requests

        async def one(state: RedisGovernanceState) -> bool:
            decision = await state.reserve((rpm,), (budget,), now)
            await asyncio.sleep(0)
            return decision.allowed

        admitted = 0
        for _ in range(4):
            results = await asyncio.gather(*(one(s) for s in states for _ in range(100)))
            admitted += sum(results)
            # Every counter in Redis (every replica's requests and chunks) within its limit.
            assert await counter(states[0], rate_key(rpm, int(now // WINDOW_S))) <= 900
            assert await counter(states[0], f"b:team:t:daily:{DAY}") <= 500 * 1000
            assert admitted <= 500
        local = sum(s.admission.local for s in states if s.admission)
        for state in states:
            await state.flush()  # returns every unused chunk
        spent = await counter(states[0], f"b:team:t:daily:{DAY}")
        # Returned: the next requests may take what was held; the exact path near the limit.
        for _ in range(3):
            results = await asyncio.gather(*(one(s) for s in states for _ in range(50)))
            admitted += sum(results)
        for state in states:
            await state.flush()
        final = await counter(states[0], f"b:team:t:daily:{DAY}")
        for state in states:
            await state.close()
        return admitted, local, spent, final

    admitted, local, spent, final = run_async(main())
    assert admitted == 500  # the budget, exactly: no overspend and, in the end, no underuse
    assert final == 500 * 1000
    assert spent <= 500 * 1000
    assert local > 100, local  # chunks were used


def test_unused_chunks_return_at_the_minutes_end_and_when_idle(redis_server: Any) -> None:
    async def main() -> None:
        (state,) = replicas(redis_server, 1, hold_s=0.2)
        admission = state.admission
        assert admission is not None
        base = 1_900_000_000.0  # a minute boundary
        minute = int(base // WINDOW_S)
        rpm = RateItem("key:k", "rpm", 10_000, 1)
        budget = BudgetItem("key:k", "daily", DAY, 10**12, 1000, 3600)
        for i in range(5):  # the first learns the room, the second takes chunks
            assert (await state.reserve((rpm,), (budget,), base + 1 + i * 0.01)).allowed
        assert admission.local >= 3
        assert admission.chunks, "no chunk was granted"
        await state.batcher.drain()
        # Redis counts the chunks (reserved, not yet used) on top of the 5 requests.
        assert await counter(state, rate_key(rpm, minute)) > 5
        # The minute ends: its chunk goes back; the budget's stays (still in its period).
        admission.sweep(now=base + WINDOW_S + 1, stamp=time.monotonic())
        await state.batcher.drain()
        assert await counter(state, rate_key(rpm, minute)) == 5
        assert await counter(state, f"b:key:k:daily:{DAY}") > 5 * 1000
        # Idle for hold_s: the budget's chunk goes back too.
        admission.sweep(now=base + WINDOW_S + 1, stamp=time.monotonic() + 0.3)
        await state.batcher.drain()
        assert await counter(state, f"b:key:k:daily:{DAY}") == 5 * 1000
        assert not admission.chunks
        await state.close()

    run_async(main())


def test_the_sweeper_returns_idle_chunks_by_itself(redis_server: Any) -> None:
    async def main() -> None:
        (state,) = replicas(redis_server, 1, hold_s=0.1)
        budget = BudgetItem("project:p", "monthly", "2026-12", 10**12, 1000, 3600)
        for _ in range(3):
            assert (await state.reserve((), (budget,), time.time())).allowed
        assert state.admission is not None and state.admission.chunks
        await asyncio.sleep(0.4)  # the sweeper runs every hold_s / 2; the batcher in ms
        assert not state.admission.chunks
        assert await counter(state, "b:project:p:monthly:2026-12") == 3 * 1000
        await state.close()

    run_async(main())


def test_a_lowered_limit_or_an_invalidation_stops_admission_from_chunks(
    redis_server: Any,
) -> None:
    async def main() -> None:
        (state,) = replicas(redis_server, 1)
        admission = state.admission
        assert admission is not None
        now = time.time()
        key = f"b:key:k2:daily:{DAY}"
        high = BudgetItem("key:k2", "daily", DAY, 100_000, 1000, 3600)
        for _ in range(2):
            assert (await state.reserve((), (high,), now)).allowed
        assert admission.chunks  # a chunk of max_requests requests' worth is held
        await state.batcher.drain()
        assert await counter(state, key) >= 2 * 1000 + 1000
        # The limit is lowered to what is spent: the chunk granted under the old limit
        # must not admit anything; the request goes to Redis and is refused.
        low = BudgetItem("key:k2", "daily", DAY, 2 * 1000, 1000, 3600)
        refused = await state.reserve((), (low,), now)
        assert not refused.allowed and refused.refused == low
        await state.batcher.drain()
        assert await counter(state, key) == 2 * 1000  # the old chunk went back
        # Under the old limit again, chunks are granted; a change notification returns them.
        assert (await state.reserve((), (high,), now)).allowed
        assert (await state.reserve((), (high,), now)).allowed
        assert admission.chunks
        state.invalidate()
        assert not admission.chunks
        await state.batcher.drain()
        assert await counter(state, key) == 4 * 1000
        await state.close()

    run_async(main())


def test_near_a_limit_every_request_takes_the_exact_path(redis_server: Any) -> None:
    """Headroom under 1/share + 1 requests: no chunk, one round trip per request, as before."""

    async def main() -> tuple[int, int, int]:
        (state,) = replicas(redis_server, 1)
        now = time.time()
        rpm = RateItem("key:k3", "rpm", 20, 1)  # 5% of 19 is under one request
        results = [(await state.reserve((rpm,), (), now)).allowed for _ in range(25)]
        assert state.admission is not None
        trips, local = state.admission.round_trips, state.admission.local
        await state.close()
        return results.count(True), trips, local

    allowed, trips, local = run_async(main())
    assert allowed == 20
    assert (trips, local) == (25, 0)


def test_a_change_notification_returns_the_chunks(redis_server: Any, tmp_path: Any) -> None:
    """Governance wires the registry's change notifications (a key or limit changed,
    here or announced by another replica) to the state: the chunks go back at once."""
    from gateway_app.governance.service import Governance
    from gateway_app.governance.storage import Database
    from tests.gateway.governance.services import one_model_config

    async def main() -> None:
        (state,) = replicas(redis_server, 1)
        db = Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}")
        db.migrate()
        gov = Governance(one_model_config(), state=state, db=db, admin_key="adm", secret=b"s")
        budget = BudgetItem("key:k4", "daily", DAY, 10**12, 1000, 3600)
        for _ in range(2):
            assert (await state.reserve((), (budget,), time.time())).allowed
        assert state.admission is not None and state.admission.chunks
        await gov.registry.changed("limit:key:k4")
        assert not state.admission.chunks
        await state.batcher.drain()
        assert await counter(state, f"b:key:k4:daily:{DAY}") == 2 * 1000
        await state.close()
        db.close()

    run_async(main())


def test_settling_corrects_the_counters_admission_reserved(redis_server: Any) -> None:
    """Settling uses the keys admission computed for the decision's minute (not formatted
    again): each TPM counter gets the token correction, each budget the cost's, an RPM
    counter none; after the flush every counter holds exactly what was used."""

    async def main() -> None:
        (state,) = replicas(redis_server, 1)
        shape = Shape()
        now = time.time()
        minute = int(now // WINDOW_S)
        rate = (
            RateItem("team:s", "rpm", 10**6, 1),
            RateItem("team:s", "tpm", 10**9, 800),
            RateItem("key:s", "tpm", 10**9, 800),
        )
        budgets = (
            BudgetItem("team:s", "daily", DAY, 10**15, 900, 3600),
            BudgetItem("key:s", "monthly", DAY[:7], 10**15, 900, 3600),
        )
        decisions = [await state.reserve(rate, budgets, now, shape) for _ in range(3)]
        assert all(d.allowed and d.keys is not None for d in decisions)
        for decision in decisions:  # each used 100 tokens and cost 50
            await state.settle(decision, 100 - 800, 50 - 900, b"{}")
        await state.flush()  # also returns the unused chunks
        got = [await counter(state, rate_key(item, minute)) for item in rate]
        got += [await counter(state, f"b:{b.scope}:{b.period}:{b.period_id}") for b in budgets]
        await state.close()
        assert got == [3, 300, 300, 150, 150]

    run_async(main())


def test_settlements_of_two_plans_sharing_counters_sum_per_counter(redis_server: Any) -> None:
    """The batcher sums settlements per plan's counters (one entry per plan, two integers
    per request) and spreads them over the counters at the flush: two plans sharing their
    team's counters, settled interleaved in one flush, leave every counter exact."""

    async def main() -> list[int]:
        (state,) = replicas(redis_server, 1)
        now = time.time()
        minute = int(now // WINDOW_S)
        team_rpm = RateItem("team:p", "rpm", 10**6, 1)
        team_tpm = RateItem("team:p", "tpm", 10**9, 500)
        team_day = BudgetItem("team:p", "daily", DAY, 10**15, 700, 3600)
        plans = []
        for key in ("key:p1", "key:p2"):
            rate = (team_rpm, team_tpm, RateItem(key, "tpm", 10**9, 500))
            budgets = (team_day, BudgetItem(key, "daily", DAY, 10**15, 700, 3600))
            plans.append((Shape(), rate, budgets))
        decisions = []
        for i in range(5):  # p1, p2, p1, p2, p1
            shape, rate, budgets = plans[i % 2]
            decisions.append(await state.reserve(rate, budgets, now, shape))
        assert all(d.allowed and d.keys is not None for d in decisions)
        for i, decision in enumerate(decisions):  # request i used 10 * (i + 1) tokens
            used = 10 * (i + 1)
            await state.settle(decision, used - 500, 2 * used - 700, b"{}")
        await state.flush()
        got = [
            await counter(state, rate_key(team_rpm, minute)),
            await counter(state, rate_key(team_tpm, minute)),
        ]
        got += [await counter(state, rate_key(plans[i][1][2], minute)) for i in (0, 1)]
        got += [await counter(state, f"b:{s}:daily:{DAY}") for s in ("team:p", "key:p1", "key:p2")]
        await state.close()
        return got

    # Tokens: p1 used 10 + 30 + 50 = 90, p2 20 + 40 = 60; cost twice the tokens.
    assert run_async(main()) == [5, 150, 90, 60, 300, 180, 120]


@pytest.mark.parametrize(
    ("rpm", "monthly", "admits"),
    [
        (100, 10**15, 100),  # the key's RPM limit binds
        (10**6, 100 * 7_000 - 1, 99),  # its budget binds: the 100th request is 1 nUSD over
    ],
)
def test_admitting_a_plans_request_by_its_amounts_is_exact(
    redis_server: Any, rpm: int, monthly: int, admits: int
) -> None:
    """A check plan's requests are admitted from the chunks by their amounts alone
    (``admit``: no items built), as ``Governance.check`` does, falling back to ``reserve``
    with the items: never past the key's limit, every admitted unit counted in Redis,
    and the settlements (here from admitted decisions with empty items) correct each
    TPM and budget counter exactly."""
    from gateway_app.context import Caller
    from gateway_app.governance.check_plan import CheckPlan

    async def main() -> tuple[int, int, list[int], list[int]]:
        (state,) = replicas(redis_server, 1)
        levels = (
            ("team:q", RateItem("team:q", "rpm", 10**6, 1), 10**9, 10**15, None),
            ("key:q", RateItem("key:q", "rpm", rpm, 1), 10**9, None, monthly),
        )
        plan = CheckPlan.build(Caller("q", "q", "p"), levels, (1e-6, 2e-6), False)
        now = time.time()
        minute = int(now // WINDOW_S)
        periods = (DAY, DAY[:7], 3600, 86400)
        decisions, fast = [], 0
        for _ in range(130):
            decision = state.admit(plan.shape, 500, 7_000, now)
            if decision is None:
                decision = await state.reserve(*plan.items(500, 7_000, periods), now, plan.shape)
            else:
                fast += 1
            if decision.allowed:
                decisions.append(decision)
        await state.flush()  # returns the unused chunks
        rate, budgets = plan.items(500, 7_000, periods)
        reserved = [await counter(state, rate_key(item, minute)) for item in rate]
        reserved += [await counter(state, f"b:{b.scope}:{b.period}:{b.period_id}") for b in budgets]
        for decision in decisions:  # each used 100 tokens and cost 3,000 nano-USD
            await state.settle(decision, 100 - 500, 3_000 - 7_000, b"{}")
        await state.flush()
        settled = [await counter(state, rate_key(item, minute)) for item in rate]
        settled += [await counter(state, f"b:{b.scope}:{b.period}:{b.period_id}") for b in budgets]
        await state.close()
        return len(decisions), fast, reserved, settled

    admitted, fast, reserved, settled = run_async(main())
    n = admits
    assert admitted == n  # the binding limit, exactly (one replica: no underuse)
    assert fast >= 40  # far from the limit most by their amounts alone
    # Counters in item order: team rpm, team tpm, key rpm, key tpm, team daily, key monthly.
    assert reserved == [n, n * 500, n, n * 500, n * 7_000, n * 7_000]
    assert settled == [n, n * 100, n, n * 100, n * 3_000, n * 3_000]


def test_a_plan_is_not_admitted_by_amounts_after_its_chunks_change(redis_server: Any) -> None:
    """``admit`` answers only from chunks a reservation with the items passed every check
    on (the limits included), in the same minute: not after an invalidation (limits or
    keys changed), nor in the next minute, nor for a shape without ``counted``."""
    from gateway_app.context import Caller
    from gateway_app.governance.check_plan import CheckPlan

    async def main() -> None:
        (state,) = replicas(redis_server, 1)
        levels = (("key:r", RateItem("key:r", "rpm", 10**6, 1), None, 10**15, None),)
        plan = CheckPlan.build(Caller("r", "r", "p"), levels, (1e-6, 2e-6), False)
        now = time.time()
        periods = (DAY, DAY[:7], 3600, 86400)
        assert state.admit(plan.shape, 10, 1_000, now) is None  # nothing checked yet
        for _ in range(3):  # the exact path, a refill that grants the chunks, then local
            assert (await state.reserve(*plan.items(10, 1_000, periods), now, plan.shape)).allowed
        assert state.admit(plan.shape, 10, 1_000, now) is not None
        assert state.admit(plan.shape, 10, 1_000, now + WINDOW_S) is None
        # The next minute's first request is on its way to Redis (new counters): the
        # shape names the new minute's keys, its chunks are still the last minute's.
        later = now + WINDOW_S
        first = asyncio.ensure_future(
            state.reserve(*plan.items(10, 1_000, periods), later, plan.shape)
        )
        await asyncio.sleep(0)
        assert not first.done()
        assert state.admit(plan.shape, 10, 1_000, later) is None
        assert (await first).allowed
        assert state.admit(Shape(), 10, 1_000, now) is None
        state.invalidate()
        assert state.admit(plan.shape, 10, 1_000, now) is None
        await state.flush()
        await state.close()

    run_async(main())


@pytest.mark.parametrize("short", ["none", "rpm", "tpm", "budget"])
def test_admission_by_amounts_takes_each_counters_amount_at_the_boundary(short: str) -> None:
    """``admit`` (the chunks grouped by what they count) admits a request exactly when every
    chunk holds its amount (one request per RPM chunk, the tokens per TPM chunk, the cost per
    budget chunk; a chunk one unit short refuses), takes exactly that amount from each, and
    reports each rate counter's use in the plan's order (the headers). No Redis: the chunks
    are planted as the reservation script would grant them."""
    from gateway_app.state.admission import Admission, Chunk

    def remote(*_: Any) -> Any:
        raise AssertionError("no round trip: the chunks cover the request")

    admission = Admission(remote, lambda _: None, "", AdmissionConfig())
    now = time.time()
    minute = int(now // WINDOW_S)
    tokens, nusd = 500, 7_000
    rate = (
        RateItem("team:g", "rpm", 1000, 1),
        RateItem("team:g", "tpm", 10**6, tokens),
        RateItem("key:g", "rpm", 100, 1),
        RateItem("key:g", "tpm", 10**5, tokens),
    )
    budgets = (BudgetItem("key:g", "daily", DAY, 10**12, nusd, 3600),)
    shape = Shape((0, 1, 0, 1, 2))  # REQUEST, TOKENS, REQUEST, TOKENS, NUSD
    keys = [rate_key(item, minute) for item in rate] + [f"b:key:g:daily:{DAY}"]
    shape.keys, shape.minute = keys, minute
    # Two requests' worth (the first through the full check), bases apart per counter.
    amounts = [1, tokens, 1, tokens, nusd]
    limits = [item.limit for item in rate] + [budgets[0].limit_nusd]
    for i, (key, amount, limit) in enumerate(zip(keys, amounts, limits, strict=True)):
        admission.chunks[key] = Chunk(limit, 2 * amount, 10.0 * (i + 1), 0, minute, 0.0)
    first = admission._local(rate, budgets, keys, minute, shape)
    assert first is not None and shape.checked == admission.generation
    chunks = [admission.chunks[key] for key in keys]
    short_of = {"rpm": 2, "tpm": 3, "budget": 4}
    if short in short_of:
        chunks[short_of[short]].left -= 1  # one unit short of the next request's amount
    before = [(c.left, c.taken) for c in chunks]
    decision = admission.admit(shape, tokens, nusd, now)
    after = [(c.left, c.taken) for c in chunks]
    if short != "none":
        assert decision is None and after == before  # nothing taken from any chunk
        return
    assert decision is not None and decision.allowed
    assert [(b[0] - a[0], a[1] - b[1]) for b, a in zip(before, after, strict=True)] == [
        (amount, amount) for amount in amounts
    ]
    # Each kind's tightest rate counter before this request (the headers): its index in the
    # plan's order, its room (limit less use) and its limit; the key's, here.
    assert decision.lot and shape.rooms == (
        (2, 100 - (30.0 + 1), 100),
        (3, 10**5 - (40.0 + tokens), 10**5),
    )


async def _in_one_minute(seconds: float) -> None:
    """Wait, if need be, for a minute with ``seconds`` left in it: the sweeper returns the
    chunks of an ended minute (by the clock), which would cut a timed run in two."""
    into = time.time() % WINDOW_S
    if into > WINDOW_S - seconds:
        await asyncio.sleep(WINDOW_S - into + 0.05)


def _plan_run(
    redis_server: Any, requests: int, rpm: int, **admission: Any
) -> tuple[int, int, int, int, list[int]]:
    """``requests`` requests of one check plan (a key's RPM, TPM and daily budget), one at
    a time, each holding the loop a millisecond as an upstream call would, admitted as
    ``Governance.check`` does (by amounts, else ``reserve`` with the items); then the
    replica closes. (admitted, by amounts, round trips, of them ahead, the counters in
    Redis after the close: RPM, TPM, budget)."""
    from gateway_app.context import Caller
    from gateway_app.governance.check_plan import CheckPlan

    async def main() -> tuple[int, int, int, int, list[int]]:
        (state,) = replicas(redis_server, 1, **admission)
        levels = (("key:u", RateItem("key:u", "rpm", rpm, 1), 10**12, 10**15, None),)
        plan = CheckPlan.build(Caller("u", "u", "p"), levels, (1e-6, 2e-6), False)
        await _in_one_minute(requests * 0.004 + 2)
        now = time.time()
        periods = (DAY, DAY[:7], 3600, 86400)
        admitted = fast = 0
        for _ in range(requests):
            decision = state.admit(plan.shape, 500, 7_000, now)
            if decision is None:
                decision = await state.reserve(*plan.items(500, 7_000, periods), now, plan.shape)
            else:
                fast += 1
            admitted += decision.allowed
            await asyncio.sleep(0.001)
        assert state.admission is not None
        trips, ahead = state.admission.round_trips, state.admission.ahead
        await state.close()  # the top-ups under way land, then every chunk goes back
        rate = plan.items(500, 7_000, periods)[0]
        minute = int(now // WINDOW_S)
        check = RedisGovernanceState.from_url(redis_server.url, prefix=state.prefix)
        counters = [await counter(check, rate_key(item, minute)) for item in rate]
        counters.append(await counter(check, f"b:key:u:daily:{DAY}"))
        await check.close()
        return admitted, fast, trips, ahead, counters

    return run_async(main())


def test_far_from_the_limits_chunks_are_topped_up_before_a_request_finds_them_short(
    redis_server: Any,
) -> None:
    """With ``refill_at`` (0.25 by default) a chunk down to a quarter of its grant is
    topped up in the background: after the first requests of a minute every request is
    admitted by its amounts, none waits for a refill or builds its items, the round
    trips stay about one per ``max_requests`` requests, and the close returns every unit
    the top-ups reserved. With ``refill_at: 0`` the request that finds a chunk short
    makes the refill (the path it replaces)."""
    ahead = _plan_run(redis_server, 600, 10**7)
    admitted, fast, trips, topped, counters = ahead
    assert admitted == 600
    assert fast >= 600 - 3, fast  # the exact path, the refill granting chunks: then none
    assert topped >= 600 // 128, topped
    assert trips <= 600 // 96 + 3, trips  # a top-up adds about 3/4 of a chunk
    assert counters == [600, 600 * 500, 600 * 7_000]  # nothing held after the close

    admitted, fast, trips, topped, counters = _plan_run(redis_server, 600, 10**7, refill_at=0)
    assert admitted == 600 and topped == 0
    assert fast <= 600 - 600 // 128, fast  # each chunk's last request refilled it
    assert counters == [600, 600 * 500, 600 * 7_000]


def test_near_a_limit_topping_up_ahead_adds_few_round_trips(redis_server: Any) -> None:
    """Near a limit the chunks shrink with the room left (a top-up adds about 3/4 of a
    smaller one); a top-up that would add nothing is not sent, and none is tried again
    until a request's own refill. The replica admits the limit exactly, and makes at most
    a tenth more round trips than without topping up ahead (189 and 197 here: the last
    ~20 requests before the limit take the exact path either way)."""
    admitted, _, trips, topped, counters = _plan_run(redis_server, 1_100, 1_000)
    base_admitted, _, base_trips, _, base_counters = _plan_run(
        redis_server, 1_100, 1_000, refill_at=0
    )
    assert admitted == base_admitted == 1_000  # one replica: the limit, exactly
    assert counters == base_counters == [1_000, 1_000 * 500, 1_000 * 7_000]
    assert topped > 0
    assert base_trips <= trips <= base_trips * 1.1, (trips, base_trips)


def test_reservation_round_trips_are_counted_by_path_in_the_metrics(
    redis_governed_app: Any,
) -> None:
    """Every reservation script call of the gateway built from its environment is counted
    in ``aigw_governance_reservations_total`` by why it was made: a request's own refill,
    a top-up ahead, a request checked exactly (near a limit): the three sum to the
    replica's round trips."""
    from gateway_app.context import Caller
    from gateway_app.governance.check_plan import CheckPlan

    app = redis_governed_app
    state = app.admin.governance.state
    assert isinstance(state, RedisGovernanceState) and state.admission is not None
    periods = (DAY, DAY[:7], 3600, 86400)

    async def run(key: str, rpm: int, requests: int) -> None:
        levels = ((f"key:{key}", RateItem(f"key:{key}", "rpm", rpm, 1), None, 10**15, None),)
        plan = CheckPlan.build(Caller(key, "t", "p"), levels, (1e-6, 2e-6), False)
        now = time.time()
        for _ in range(requests):
            if state.admit(plan.shape, 10, 1_000, now) is None:
                await state.reserve(*plan.items(10, 1_000, periods), now, plan.shape)
            await asyncio.sleep(0.001)

    async def main() -> None:
        await _in_one_minute(5)
        await run(uuid.uuid4().hex[:8], 10**7, 300)  # far from the limit
        await run(uuid.uuid4().hex[:8], 30, 40)  # near it, then past it
        await state.flush()

    run_async(main())
    text = app.metrics.render().decode()
    counted = {
        path: float(
            text.split(f'aigw_governance_reservations_total{{path="{path}"}} ')[1].split()[0]
        )
        for path in ("exact", "refill", "ahead")
    }
    assert counted["refill"] >= 2 and counted["ahead"] >= 1, counted
    assert counted["exact"] >= 10, counted  # the last requests under 30 RPM, one each
    assert sum(counted.values()) == state.admission.round_trips


def _admit(state: RedisGovernanceState, plan: Any, tokens: int, nusd: int, now: float) -> Any:
    """As ``Governance.check`` admits: by the amounts (a lot), else ``reserve`` with items."""
    decision = state.admit(plan.shape, tokens, nusd, now)
    if decision is not None:
        return decision
    periods = (DAY, DAY[:7], 3600, 86400)
    return state.reserve(*plan.items(tokens, nusd, periods), now, plan.shape)


def test_lots_of_two_plans_sharing_a_limit_use_every_unit_and_stay_exact(
    redis_server: Any,
) -> None:
    """Two keys of one team (two check plans on the team's counters) take lots from the
    same chunks, with varying tokens, until the team's RPM limit binds. One replica: the
    limit is reached exactly (what one plan's lot holds goes back to the chunks when the
    other finds them short), most requests come from lots, and after the flush every
    counter in Redis is exactly what the admitted requests reserved."""
    from gateway_app.context import Caller
    from gateway_app.governance.check_plan import CheckPlan

    async def main() -> tuple[int, int, int, list[int], list[int]]:
        (state,) = replicas(redis_server, 1)
        team = ("team:s", RateItem("team:s", "rpm", 300, 1), 10**9, 10**15, None)
        plans = [
            CheckPlan.build(
                Caller(key, "s", "p"),
                (team, (f"key:{key}", None, 10**9, None, 10**15)),
                (1e-6, 2e-6),
                False,
            )
            for key in ("s1", "s2")
        ]
        await _in_one_minute(10)
        now = time.time()
        minute = int(now // WINDOW_S)
        admitted = [0, 0]
        tokens_of = [0, 0]
        for i in range(400):
            which = (i // 3) % 2  # three of one plan, then three of the other
            tokens = 100 + 37 * (i % 11)
            result = _admit(state, plans[which], tokens, 10 * tokens, now)
            decision = result if not asyncio.iscoroutine(result) else await result
            if decision.allowed:
                admitted[which] += 1
                tokens_of[which] += tokens
        assert state.admission is not None
        lots, local = state.admission.lots, state.admission.local
        await state.flush()
        got = [
            await counter(state, rate_key(RateItem("team:s", "rpm", 300, 1), minute)),
            await counter(state, rate_key(RateItem("team:s", "tpm", 10**9, 0), minute)),
        ]
        got += [
            await counter(state, rate_key(RateItem(f"key:{k}", "tpm", 10**9, 0), minute))
            for k in ("s1", "s2")
        ]
        got.append(await counter(state, f"b:team:s:daily:{DAY}"))
        got += [await counter(state, f"b:key:{k}:monthly:{DAY[:7]}") for k in ("s1", "s2")]
        await state.close()
        return sum(admitted), lots, local, got, tokens_of

    admitted, lots, local, got, tokens_of = run_async(main())
    assert admitted == 300  # the team's limit, exactly: no unit left stranded in a lot
    assert local >= 200 and lots < local  # most from lots (near the limit, small ones)
    total = sum(tokens_of)
    assert got == [300, total, *tokens_of, 10 * total, *(10 * t for t in tokens_of)]


def test_a_lot_in_use_keeps_its_chunks_from_the_idle_sweep(redis_server: Any) -> None:
    """Requests admitted from a lot leave its chunks untouched, yet the chunks are in use:
    the sweep puts the lot back first and returns only chunks idle for ``hold_s`` since
    the lot last admitted a request. Then everything goes back, exactly."""
    from gateway_app.context import Caller
    from gateway_app.governance.check_plan import CheckPlan

    async def main() -> None:
        (state,) = replicas(redis_server, 1, hold_s=0.3)
        levels = (("key:v", RateItem("key:v", "rpm", 10**6, 1), None, None, None),)
        plan = CheckPlan.build(Caller("v", "v", "p"), levels, (1e-6, 2e-6), False)
        await _in_one_minute(10)
        now = time.time()
        key = rate_key(levels[0][1], int(now // WINDOW_S))
        admission = state.admission
        assert admission is not None
        admitted = 0
        while admission.lots == 0:  # the exact path, a refill, then a lot
            result = _admit(state, plan, 0, 0, now)
            admitted += (result if not asyncio.iscoroutine(result) else await result).allowed
        assert plan.shape.lot_requests > 0
        await asyncio.sleep(0.2)
        assert state.admit(plan.shape, 0, 0, time.time()) is not None  # from the lot
        admitted += 1
        await asyncio.sleep(0.2)  # 0.4 s since the lot was carved, 0.2 s since its use
        admission.sweep()
        assert admission.chunks and plan.shape.lot_requests == 0  # kept; the lot put back
        await asyncio.sleep(0.35)
        admission.sweep()
        assert not admission.chunks  # idle for hold_s: returned
        await state.flush()
        assert await counter(state, key) == admitted
        await state.close()

    run_async(main())


def test_rate_headers_from_lots_count_every_request_exactly(redis_server: Any) -> None:
    """One plan alone on its counters: each response's ``x-ratelimit-remaining-*`` is the
    tightest limit less every request admitted before it and itself, through the exact
    path, refills, lots, re-carved lots and top-ups alike."""
    from gateway_app.context import Caller
    from gateway_app.governance.check_plan import CheckPlan

    async def main() -> list[tuple[int, int, int]]:
        (state,) = replicas(redis_server, 1)
        levels = (
            ("team:w", RateItem("team:w", "rpm", 10**6, 1), 10**9, None, None),
            ("key:w", RateItem("key:w", "rpm", 50_000, 1), 10**8, 10**15, None),
        )
        plan = CheckPlan.build(Caller("w", "w", "p"), levels, (1e-6, 2e-6), False)
        await _in_one_minute(10)
        seen = []
        for i in range(600):
            tokens = 200 + i % 7
            # Each request at its own time: a lot's chunks are in use while it admits
            # (a chunk returned as idle would reach Redis after the next reply's count).
            result = _admit(state, plan, tokens, 1_000, time.time())
            decision = result if not asyncio.iscoroutine(result) else await result
            assert decision.allowed
            headers = dict(plan.rate_headers(tokens, decision))
            seen.append(
                (
                    tokens,
                    int(headers[b"x-ratelimit-remaining-requests"]),
                    int(headers[b"x-ratelimit-remaining-tokens"]),
                )
            )
            if i % 50 == 0:
                await asyncio.sleep(0.002)  # top-ups ahead land
        admission = state.admission
        assert admission is not None
        # Far from the limits most requests come from lots of many requests each,
        # though the prompts differ (a lot holds more tokens than its first request's).
        assert admission.local >= 590 and 2 <= admission.lots <= admission.local // 10
        await state.close()
        return seen

    seen = run_async(main())
    used = 0
    for i, (tokens, requests_left, tokens_left) in enumerate(seen):
        used += tokens
        assert (requests_left, tokens_left) == (50_000 - (i + 1), 10**8 - used), i


def test_a_refills_use_for_the_headers_leaves_out_what_the_replica_holds(
    redis_server: Any,
) -> None:
    """A request the chunks cannot hold makes a refill while they still hold units: the
    script's reply counts those as used, but this replica may still admit them, so the
    request's ``rate_used`` (its ``x-ratelimit-remaining-*``) leaves them out: the use
    before it is what was admitted."""

    async def main() -> list[float]:
        (state,) = replicas(redis_server, 1)
        now = time.time()
        small = RateItem("key:h", "tpm", 10**9, 100)
        used = []
        for _ in range(3):  # the exact path, a refill granting a chunk, then the chunk
            decision = await state.reserve((small,), (), now)
            assert decision.allowed
            used += decision.rate_used
        assert (
            state.admission is not None
            and state.admission.held(state.prefix + rate_key(small, int(now // WINDOW_S)))
            == 128 * 100 - 100
        )  # a chunk of 128 requests' worth, one admitted from it
        large = RateItem("key:h", "tpm", 10**9, 20_000)  # more than the chunk holds
        decision = await state.reserve((large,), (), now)
        assert decision.allowed
        used += decision.rate_used
        await state.close()
        return used

    assert run_async(main()) == [0.0, 100.0, 200.0, 300.0]
