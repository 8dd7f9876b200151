"""The governance hook and admin API in a running gateway (in-process state, SQLite)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway_app.config import parse
from gateway_app.governance.service import Governance
from gateway_app.governance.storage import Database
from gateway_app.state.governance import InProcessGovernanceState
from tests.gateway.conftest import STANDARD_MODELS, providers, serve

ADMIN = "admin-secret-key"


@contextmanager
def governed(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path, state: Any = None, **settings: Any
) -> Iterator[tuple[Any, Governance]]:
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True, **settings},
    }
    gov = Governance(
        parse(raw),
        state=state or InProcessGovernanceState(),
        db=Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}"),
        admin_key=ADMIN,
        secret=b"test-secret",
    )
    with serve(raw, hooks=[gov], admin=gov) as running:
        yield running, gov


class Admin:
    def __init__(self, url: str, token: str = ADMIN) -> None:
        self.http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"})

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)


def chat(url: str, key: str, **kwargs: Any) -> Any:
    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    return client.chat.completions.with_raw_response.create(
        model=kwargs.pop("model", "gpt-4o-mini"),
        messages=[{"role": "user", "content": "hi"}],
        **kwargs,
    )


@pytest.fixture
def gw(fake_openai: Any, fake_anthropic: Any, tmp_path: Path) -> Iterator[tuple[Any, Governance]]:
    with governed(fake_openai, fake_anthropic, tmp_path) as pair:
        yield pair


def test_key_lifecycle_and_auth(gw: tuple[Any, Governance], caplog: Any) -> None:
    running, gov = gw
    admin = Admin(running.url)
    created = admin(
        "POST",
        "/admin/keys",
        json={
            "team_id": "a",
            "project_id": "p",
            "models": ["gpt-4o-mini"],
            "metadata": {"owner": "x"},
        },
    )
    assert created.status_code == 201
    key = created.json()["key"]
    key_id = created.json()["id"]
    assert key.startswith("sk-aigw-")
    # shown once: never in listings, stored only as a keyed hash
    listed = admin("GET", "/admin/keys").json()["data"]
    assert [k["id"] for k in listed] == [key_id] and "key" not in listed[0]
    rows = gov.db.fetch("SELECT key_hash FROM virtual_keys")
    assert rows[0]["key_hash"] != key and key not in str(rows)

    ok = chat(running.url, key)
    assert ok.http_response.status_code == 200
    with pytest.raises(openai.AuthenticationError):
        chat(running.url, "sk-aigw-key_0000000000000000-nope")
    with pytest.raises(openai.PermissionDeniedError):
        chat(running.url, key, model="claude-sonnet-4-6")

    rotated = admin("POST", f"/admin/keys/{key_id}/rotate").json()["key"]
    with pytest.raises(openai.AuthenticationError):
        chat(running.url, key)
    assert chat(running.url, rotated).http_response.status_code == 200
    assert admin("DELETE", f"/admin/keys/{key_id}").json()["revoked_at"] is not None
    with pytest.raises(openai.AuthenticationError):
        chat(running.url, rotated)
    expired = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "p", "ttl_s": -1})
    with pytest.raises(openai.AuthenticationError):
        chat(running.url, expired.json()["key"])
    assert key not in caplog.text and rotated not in caplog.text


def test_budget_refusal_names_level_and_settles_actual_cost(gw: tuple[Any, Governance]) -> None:
    running, _gov = gw
    admin = Admin(running.url)
    key = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "p"}).json()
    # gpt-4o-mini: $0.15 / $0.60 per MTok; max_tokens 1000 reserves about $0.0006
    assert admin("PUT", "/admin/limits/project/p", json={"daily_usd": 0.001}).status_code == 200
    first = chat(running.url, key["key"], max_tokens=1000)
    assert first.http_response.status_code == 200
    # settled to the actual usage (11 prompt + 7 completion tokens), not the reservation
    spent = admin("GET", "/admin/budgets/project/p").json()["daily_usd"]
    assert spent == pytest.approx((11 * 0.15 + 7 * 0.60) / 1e6, rel=0.01)
    with pytest.raises(openai.RateLimitError) as refused:
        chat(running.url, key["key"], max_tokens=2000)
    error = refused.value.body
    assert error["code"] == "budget_exceeded"
    assert "project:p" in error["message"] and "daily limit $0.0010" in error["message"]
    assert int(refused.value.response.headers["retry-after"]) > 0


def test_rate_limit_headers_and_429(gw: tuple[Any, Governance]) -> None:
    running, _ = gw
    admin = Admin(running.url)
    key = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "p"}).json()
    admin("PUT", f"/admin/limits/key/{key['id']}", json={"rpm": 2, "tpm": 100000})
    first = chat(running.url, key["key"])
    headers = first.http_response.headers
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "1"
    assert headers["x-ratelimit-limit-tokens"] == "100000"
    chat(running.url, key["key"])
    with pytest.raises(openai.RateLimitError) as refused:
        chat(running.url, key["key"])
    response = refused.value.response
    assert refused.value.body["code"] == "rate_limit_exceeded"
    assert f"key:{key['id']} (rpm)" in refused.value.body["message"]
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["x-ratelimit-remaining-requests"] == "0"


def test_rbac_matrix(gw: tuple[Any, Governance]) -> None:
    running, _ = gw
    admin = Admin(running.url)
    a_admin = admin(
        "POST", "/admin/keys", json={"team_id": "a", "project_id": "pa", "role": "team_admin"}
    ).json()
    b_key = admin("POST", "/admin/keys", json={"team_id": "b", "project_id": "pb"}).json()
    a_member = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "pa"}).json()
    admin("PUT", "/admin/limits/project/pb", json={"daily_usd": 5, "team_id": "b"})
    ta = Admin(running.url, a_admin["key"])
    member = Admin(running.url, a_member["key"])
    forbidden = [
        (ta, "GET", f"/admin/keys/{b_key['id']}", None, 404),
        (ta, "DELETE", f"/admin/keys/{b_key['id']}", None, 404),
        (ta, "POST", f"/admin/keys/{b_key['id']}/rotate", None, 404),
        (ta, "GET", "/admin/keys?team_id=b", None, 404),
        (ta, "POST", "/admin/keys", {"team_id": "b", "project_id": "x"}, 404),
        (ta, "PUT", "/admin/limits/team/b", {"daily_usd": 100}, 404),
        (ta, "PUT", f"/admin/limits/key/{b_key['id']}", {"rpm": 1}, 404),
        (ta, "GET", "/admin/budgets/team/b", None, 404),
        (ta, "PUT", "/admin/limits/org/*", {"daily_usd": 1}, 403),
        (ta, "PUT", "/admin/limits/customer/*", {"daily_usd": 1}, 403),
        (ta, "GET", "/admin/analytics/usage?team_id=b", None, 404),
        (ta, "GET", "/admin/audit?team_id=b", None, 404),
        (member, "GET", "/admin/keys", None, 403),
        (member, "POST", "/admin/keys", {"team_id": "a", "project_id": "pa"}, 403),
        (member, "GET", "/admin/analytics/usage", None, 403),
        (member, "PUT", "/admin/limits/team/a", {"daily_usd": 1}, 403),
        (Admin(running.url, "wrong"), "GET", "/admin/keys", None, 401),
    ]
    for client, method, path, body, status in forbidden:
        response = client(method, path, json=body) if body is not None else client(method, path)
        assert response.status_code == status, (method, path, response.text)
    # team B's project limit was not changed by team A's attempts
    assert admin("GET", "/admin/limits/project/pb").json() == {
        "scope": "project",
        "scope_id": "pb",
        "daily_usd": 5.0,
        "monthly_usd": None,
        "rpm": None,
        "tpm": None,
        "team_id": "b",
    }
    assert ta("GET", "/admin/limits/project/pb").status_code == 404
    assert ta("GET", "/admin/limits").json()["data"] == []
    # what a team admin may do, only within its own team
    assert [k["team_id"] for k in ta("GET", "/admin/keys").json()["data"]] == ["a", "a"]
    made = ta("POST", "/admin/keys", json={"project_id": "pa"})
    assert made.status_code == 201 and made.json()["team_id"] == "a"
    assert ta("PUT", "/admin/limits/team/a", json={"rpm": 100}).status_code == 200
    assert ta("POST", "/admin/keys", json={"project_id": "pa", "role": "admin"}).status_code == 400


def test_audit_and_analytics_scoped_by_team(gw: tuple[Any, Governance]) -> None:
    running, gov = gw
    admin = Admin(running.url)
    a_admin = admin(
        "POST", "/admin/keys", json={"team_id": "a", "project_id": "pa", "role": "team_admin"}
    ).json()
    a_key = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "pa"}).json()
    b_key = admin("POST", "/admin/keys", json={"team_id": "b", "project_id": "pb"}).json()
    for _ in range(3):
        chat(running.url, a_key["key"], user="cust-1")
    chat(running.url, b_key["key"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = gov.db.fetch("SELECT COUNT(*) AS n FROM audit_events WHERE kind = 'request'")
        if rows[0]["n"] >= 4:
            break
        time.sleep(0.05)
    everything = admin(
        "GET", "/admin/analytics/usage?group_by=team,customer,model,provider"
    ).json()["data"]
    assert [(r["team_id"], r["customer"], r["requests"]) for r in everything] == [
        ("a", "cust-1", 3),
        ("b", None, 1),
    ]
    assert everything[0]["model"] == "gpt-4o-mini" and everything[0]["provider"] == "openai"
    assert everything[0]["cost_usd"] == pytest.approx(3 * (11 * 0.15 + 7 * 0.60) / 1e6, rel=0.01)
    mine = Admin(running.url, a_admin["key"])("GET", "/admin/analytics/usage?group_by=team").json()
    assert [(r["team_id"], r["requests"]) for r in mine["data"]] == [("a", 3)]
    latency = admin("GET", "/admin/analytics/latency?group_by=day").json()["data"]
    assert latency[0]["requests"] == 4 and latency[0]["p99_ms"] >= latency[0]["p50_ms"] > 0
    actions = [
        r["action"] for r in admin("GET", "/admin/audit").json()["data"] if r["kind"] == "admin"
    ]
    assert actions.count("key.create") == 3


def test_fail_closed_and_fail_open(fake_openai: Any, fake_anthropic: Any, tmp_path: Path) -> None:
    from gateway_app.state.governance_redis import RedisGovernanceState

    for fail_closed, expected in ((True, 503), (False, 200)):
        dead = RedisGovernanceState.from_url("redis://127.0.0.1:1/0")
        with governed(
            fake_openai,
            fake_anthropic,
            tmp_path / str(fail_closed),
            state=dead,
            fail_closed=fail_closed,
        ) as (running, _gov):
            admin = Admin(running.url)
            key = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "p"})
            assert key.status_code == 201
            response = httpx.post(
                running.url + "/v1/chat/completions",
                headers={"authorization": f"Bearer {key.json()['key']}"},
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            )
            assert response.status_code == expected, response.text


def test_stream_cost_from_usage_including_cached_tokens(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    from gateway_app.testing.fakes import ok

    with governed(fake_openai, fake_anthropic, tmp_path) as (running, gov):
        key = Admin(running.url)("POST", "/admin/keys", json={"team_id": "a", "project_id": "p"})
        client = openai.OpenAI(
            base_url=running.url + "/v1", api_key=key.json()["key"], max_retries=0
        )
        fake_anthropic.script(ok(usage=(1000, 200)))
        # the client did not ask for usage: the gateway asks the upstream anyway and bills it
        chunks = list(
            client.chat.completions.create(
                model="claude-sonnet-4-6",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            )
        )
        assert all(chunk.usage is None for chunk in chunks)
        deadline = time.monotonic() + 5
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not rows:
            rows = gov.db.fetch("SELECT * FROM audit_events WHERE kind = 'request'")
            time.sleep(0.05)
    assert rows[0]["prompt_tokens"] == 1000 and rows[0]["completion_tokens"] == 200
    # claude-sonnet-4-6 from the genai-prices dataset: $3 in / $15 out per MTok
    assert rows[0]["cost_usd"] == pytest.approx((1000 * 3 + 200 * 15) / 1e6, rel=1e-6)


def test_cost_counts_cached_tokens_at_the_cache_price() -> None:
    from gateway_app.config import DeploymentConfig, Price
    from gateway_app.governance.cost import Pricing, Tokens

    pricing = Pricing()
    listed = pricing.prices(DeploymentConfig(provider="openai", model="gpt-4o-mini"), "openai")
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 100,
        "prompt_tokens_details": {"cached_tokens": 400},
        "completion_tokens_details": {"reasoning_tokens": 60},
    }
    tokens = Tokens.from_usage(usage)
    # 600 fresh input at $0.15, 400 cached at $0.075, 100 output (reasoning included) at $0.60
    assert Pricing.cost(listed, tokens) == pytest.approx(
        (600 * 0.15 + 400 * 0.075 + 100 * 0.6) / 1e6
    )
    override = DeploymentConfig(
        provider="openai",
        model="gpt-4o-mini",
        name="negotiated",
        price=Price(input_per_mtok=1, output_per_mtok=2),
    )
    assert Pricing.cost(pricing.prices(override, "openai"), Tokens(1000, 100)) == pytest.approx(
        (1000 * 1 + 100 * 2) / 1e6
    )


def test_metrics_report_the_audit_buffer_depth(gw: tuple[Any, Governance]) -> None:
    running, gov = gw

    async def depth() -> int:
        return 7

    gov.state.audit_depth = depth  # type: ignore[method-assign]
    text = httpx.get(running.url + "/metrics", timeout=10).text
    assert "aigw_audit_buffer_depth 7.0" in text.splitlines()
