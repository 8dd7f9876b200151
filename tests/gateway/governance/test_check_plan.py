"""Check plans and shapes (gateway_app/governance/check_plan.py, the admission's Shape).

A check plan caches, per caller, customer and model, what every request checks; a
shape lets the admission layer keep the counters' keys and chunks between
requests. Both are speed-ups only: a limit lowered or a key revoked takes effect
at the next request (the plan is dropped on the registry's change notification),
and a shape never admits from a chunk that was returned, replaced, or belongs to
another minute.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway_app.config import parse
from gateway_app.context import Caller
from gateway_app.governance.admin import AdminApi
from gateway_app.governance.check_plan import CheckPlan, reset_duration, reset_header
from gateway_app.governance.hooks import governance_hooks
from gateway_app.governance.service import Governance
from gateway_app.governance.storage import Database
from gateway_app.state.governance import (
    WINDOW_S,
    BudgetItem,
    Decision,
    RateItem,
    Shape,
    rate_key,
)
from gateway_app.state.governance_redis import RedisGovernanceState
from tests.gateway.conftest import STANDARD_MODELS, providers, run_async, serve
from tests.gateway.governance.test_admission import DAY, counter, replicas


def test_a_lowered_limit_and_a_revoked_key_take_effect_at_the_next_request(
    fake_openai: Any, fake_anthropic: Any, redis_server: Any, tmp_path: Path
) -> None:
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True},
    }
    gov = Governance(
        parse(raw),
        state=RedisGovernanceState.from_url(redis_server.url, prefix="{plan}:"),
        drain_state=RedisGovernanceState.from_url(redis_server.url, prefix="{plan}:"),
        db=Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}"),
        admin_key="adm",
        secret=b"s",
    )
    with serve(raw, hooks=governance_hooks(gov), admin=AdminApi(gov)) as running:
        admin = {"authorization": "Bearer adm"}
        key = httpx.post(
            running.url + "/admin/keys", headers=admin, json={"team_id": "t", "project_id": "p"}
        ).json()
        limit_url = f"{running.url}/admin/limits/key/{key['id']}"
        httpx.put(limit_url, headers=admin, json={"rpm": 1000}).raise_for_status()
        client = openai.OpenAI(base_url=running.url + "/v1", api_key=key["key"], max_retries=0)

        def ask() -> tuple[int, str]:
            """The status and the RPM limit the answer names (x-ratelimit-limit-requests)."""
            try:
                answer = client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
            except openai.RateLimitError as refused:
                return 429, refused.response.headers["x-ratelimit-limit-requests"]
            return answer.status_code, answer.headers["x-ratelimit-limit-requests"]

        for _ in range(3):
            assert ask() == (200, "1000")
        (plan,) = gov._plans.values()  # one plan, kept across the key's requests
        assert gov.state.admission is not None and gov.state.admission.chunks

        # Lowered to 4 with 3 used: the chunks reserved under the old limit go back, the
        # plan worked out under it is dropped, and the next request is checked (admitted
        # or refused: the returned chunks are written within milliseconds) against 4.
        httpx.put(limit_url, headers=admin, json={"rpm": 4}).raise_for_status()
        outcomes = [ask() for _ in range(3)]
        assert all(limit == "4" for _, limit in outcomes), outcomes
        statuses = [status for status, _ in outcomes]
        assert statuses.count(200) <= 1 and statuses.count(429) >= 2, outcomes
        assert plan not in gov._plans.values()

        # Revoked: refused at once, and no plan of the key is kept.
        assert gov._plans
        httpx.post(f"{running.url}/admin/keys/{key['id']}/revoke", headers=admin).raise_for_status()
        assert not gov._plans
        with pytest.raises(openai.AuthenticationError):
            ask()


def test_a_shape_never_admits_from_a_returned_or_replaced_chunk(redis_server: Any) -> None:
    async def main() -> None:
        (state,) = replicas(redis_server, 1)
        admission = state.admission
        assert admission is not None
        shape = Shape()
        now = time.time()
        budget = BudgetItem("key:s1", "daily", DAY, 10**12, 1000, 3600)
        for _ in range(3):
            assert (await state.reserve((), (budget,), now, shape)).allowed
        assert admission.local >= 1  # admitted from the chunk through the shape
        # A change notification returns the chunks: the shape's hold them no more.
        state.invalidate()
        trips = admission.round_trips
        assert (await state.reserve((), (budget,), now, shape)).allowed
        assert admission.round_trips == trips + 1
        await state.flush()
        assert await counter(state, f"b:key:s1:daily:{DAY}") == 4 * 1000
        # A chunk granted under another limit is not used, with or without a shape.
        for _ in range(2):
            assert (await state.reserve((), (budget,), now, shape)).allowed
        assert admission.chunks
        low = BudgetItem("key:s1", "daily", DAY, 6 * 1000, 1000, 3600)
        refused = await state.reserve((), (low,), now, shape)
        assert not refused.allowed and refused.refused == low
        await state.flush()
        assert await counter(state, f"b:key:s1:daily:{DAY}") == 6 * 1000
        await state.close()

    run_async(main())


def test_a_shape_counts_each_request_in_its_own_minute(redis_server: Any) -> None:
    async def main() -> None:
        (state,) = replicas(redis_server, 1)
        admission = state.admission
        assert admission is not None
        shape = Shape()
        base = 1_900_000_020.0  # a minute boundary
        minute = int(base // WINDOW_S)
        rpm = RateItem("key:s2", "rpm", 10_000, 1)
        for i in range(4):
            decision = await state.reserve((rpm,), (), base + 1 + i, shape)
            assert decision.allowed and decision.minute == minute
        assert admission.local >= 1
        # The next minute: its requests count there, not in the last minute's chunk.
        for i in range(3):
            decision = await state.reserve((rpm,), (), base + WINDOW_S + 1 + i, shape)
            assert decision.allowed and decision.minute == minute + 1
        await state.flush()
        assert await counter(state, rate_key(rpm, minute)) == 4
        assert await counter(state, rate_key(rpm, minute + 1)) == 3
        await state.close()

    run_async(main())


def test_the_rate_headers_name_the_tightest_limit_of_each_kind() -> None:
    """OpenAI's ``x-ratelimit-*`` headers: per kind, the level with the least left after
    this request (with the global plane's rate shares: this cloud's share of it)."""
    caller = Caller("k", "t", "p")
    levels = (
        ("org:*", RateItem("org:*", "rpm", 100, 1), 10_000, None, 10**12),
        ("key:k", RateItem("key:k", "rpm", 10, 1), 50_000, 10**9, None),
    )
    plan = CheckPlan.build(caller, levels, (1e-6, 2e-6), False)
    rate, budgets = plan.items(500, 7_000, ("2026-12-06", "2026-12", 3600, 86400))
    assert [(item.scope, item.kind, item.amount) for item in rate] == [
        ("org:*", "rpm", 1),
        ("org:*", "tpm", 500),
        ("key:k", "rpm", 1),
        ("key:k", "tpm", 500),
    ]
    assert [(b.scope, b.period, b.period_id, b.amount_nusd, b.ttl_s) for b in budgets] == [
        ("org:*", "monthly", "2026-12", 7_000, 86400 + 3600),
        ("key:k", "daily", "2026-12-06", 7_000, 3600 + 3600),
    ]
    used = [50.0, 9_000.0, 8.0, 100.0]
    admitted = Decision(True, rate, budgets, 1, rate_used=used)
    assert plan.rate_headers(500, admitted) == [
        (b"x-ratelimit-limit-requests", b"10"),  # the key: 10 - 8 - 1 = 1 left
        (b"x-ratelimit-remaining-requests", b"1"),
        (b"x-ratelimit-reset-requests", b"54s"),
        (b"x-ratelimit-limit-tokens", b"10000"),  # the org: 10,000 - 9,000 - 500 = 500 left
        (b"x-ratelimit-remaining-tokens", b"500"),
        (b"x-ratelimit-reset-tokens", b"57s"),
    ]
    # This cloud's shares: the org's tokens are over its share (5,000) already.
    shared = Decision(True, rate, budgets, 1, rate_used=used, rate_limits=[100, 5_000, 10, 5e4])
    assert plan.rate_headers(500, shared)[3:] == [
        (b"x-ratelimit-limit-tokens", b"10000"),
        (b"x-ratelimit-remaining-tokens", b"0"),
        (b"x-ratelimit-reset-tokens", b"1m27s"),
    ]


_SECONDS = [-5.0, -1e-9, 0.0, 1e-9, 0.0004, 0.001, 0.0015, 0.25, 0.999, 0.9999999999999999]
_SECONDS += [1.0, 1.0000001, 6.5, 59.0, 59.01, 60.0, 60.5, 89.99, 3599.2, 3600.0, 3600.5, 86400.3]


@pytest.mark.parametrize("seconds", _SECONDS)
def test_a_reset_header_reads_as_the_reset_duration(seconds: float) -> None:
    """The ``x-ratelimit-reset-*`` values come encoded from tables (below a second, up to
    an hour) or are formatted past them: the bytes are reset_duration's of the time left,
    0 when it is negative, at each of the tables' edges and away from them."""
    assert reset_header(seconds) == reset_duration(max(0.0, seconds)).encode()
