"""Keys, model allow-lists, cost settled from the Responses usage (cached input included), audit."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from gateway_app.config.prices import Pricing, Tokens
from gateway_app.governance.service import Governance
from tests.fakes import FakeUpstream, ok
from tests.gateway.conftest import Running
from tests.gateway.governance.test_gateway_governance import Admin
from tests.gateway.responses.conftest import client


def _audited(gov: Governance, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(rows) < count:
        rows = gov.db.fetch(
            "SELECT * FROM audit_events WHERE kind = 'request' AND status = 200 ORDER BY ts"
        )
        time.sleep(0.05)
    return rows


def test_cost_is_settled_from_the_usage_with_cached_input_tokens(
    teams: tuple[Running, dict[str, str], Governance], fake_openai: FakeUpstream
) -> None:
    running, keys, gov = teams
    admin = Admin(running.url)
    assert admin("PUT", "/admin/limits/project/a", json={"daily_usd": 100}).status_code == 200
    sdk = client(running, keys["red"])
    fake_openai.script(
        ok(usage=(1000, 100), cached_tokens=800), ok(usage=(2000, 50), cached_tokens=1500)
    )
    sdk.responses.create(model="gpt-5-mini", input="long shared prefix")
    with sdk.responses.stream(model="gpt-5-mini", input="streamed") as stream:
        stream.get_final_response()
    rows = _audited(gov, 2)
    assert [(r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [(1000, 100), (2000, 50)]
    deployment = gov.config.models["gpt-5-mini"].deployments[0]
    prices = Pricing().prices(deployment, "openai")  # genai-prices' list price, as chat's
    assert prices.cache_read < prices.input  # so the cached tokens below change the cost
    expected = [Tokens(1000, 100, 800), Tokens(2000, 50, 1500)]
    for row, tokens in zip(rows, expected, strict=True):
        assert row["cost_usd"] == pytest.approx(Pricing.cost(prices, tokens), rel=1e-6)
        assert row["team_id"] == "red" and row["model"] == "gpt-5-mini"
    spent = admin("GET", "/admin/budgets/project/a").json()["daily_usd"]
    assert spent == pytest.approx(sum(r["cost_usd"] for r in rows), rel=1e-6)


def test_keys_and_model_allow_lists_apply(
    teams: tuple[Running, dict[str, str], Governance], fake_openai: FakeUpstream
) -> None:
    running, _, _ = teams
    with pytest.raises(openai.AuthenticationError):
        client(running, "sk-aigw-not-a-key").responses.create(model="gpt-5-mini", input="x")
    limited = Admin(running.url)(
        "POST",
        "/admin/keys",
        json={"team_id": "red", "project_id": "a", "models": ["azure-gpt-5"]},
    ).json()["key"]
    with pytest.raises(openai.PermissionDeniedError) as raised:
        client(running, limited).responses.create(model="gpt-5-mini", input="x")
    assert raised.value.code == "model_not_allowed"
    assert fake_openai.requests == []
