"""The governance hook and admin API in a running gateway (in-process state, SQLite)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway_app.config import parse
from gateway_app.governance import audit, retention, service
from gateway_app.governance.admin import AdminApi
from gateway_app.governance.hooks import governance_hooks
from gateway_app.governance.service import Governance
from gateway_app.governance.storage import Database
from gateway_app.state.governance import InProcessGovernanceState
from tests.gateway.conftest import STANDARD_MODELS, providers, run_async, serve

ADMIN = "admin-secret-key"


def embedded_governance(raw: dict[str, Any], database: Path, state: Any = None) -> Governance:
    """Governance for ``raw`` with ``state`` (default in-process) and SQLite at ``database``."""
    return Governance(
        parse(raw),
        state=state or InProcessGovernanceState(),
        db=Database(f"sqlite:///{database}"),
        admin_key=ADMIN,
        secret=b"test-secret",
    )


@contextmanager
def governed(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path, state: Any = None, **settings: Any
) -> Iterator[tuple[Any, Governance]]:
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True, **settings},
    }
    gov = embedded_governance(raw, tmp_path / "gov.sqlite3", state)
    with serve(raw, hooks=governance_hooks(gov), admin=AdminApi(gov)) as running:
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
    # A key cannot be created already expired: a negative TTL or a past expiry is a 400.
    for bad in ({"ttl_s": -1}, {"ttl_s": 0}, {"expires_at": time.time() - 5}, {"ttl_s": "1h"}):
        refused = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "p", **bad})
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.json()["error"]["param"] in ("ttl_s", "expires_at")
    # A TTL long enough for the first call on a busy machine (0.3 s was not), then past it.
    short = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "p", "ttl_s": 1.5})
    assert chat(running.url, short.json()["key"]).http_response.status_code == 200
    time.sleep(max(0.0, short.json()["expires_at"] - time.time()) + 0.1)
    with pytest.raises(openai.AuthenticationError):
        chat(running.url, short.json()["key"])
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
    # when the sliding window frees a slot: up to 1.5 minutes (two requests, limit 2)
    assert 1 <= int(response.headers["retry-after"]) <= 90
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


def test_the_admin_api_answers_the_same_after_rollup_and_retention(
    gw: tuple[Any, Governance],
) -> None:
    """Analytics as an admin and a team admin read them over HTTP: the same usage (and
    latency within the histogram's 1 %) once the closed days are rolled up and their raw
    events dropped by retention, as ``audit-maintain`` does; today stays raw."""
    running, gov = gw
    admin = Admin(running.url)
    a_admin = Admin(
        running.url,
        admin(
            "POST", "/admin/keys", json={"team_id": "a", "project_id": "pa", "role": "team_admin"}
        ).json()["key"],
    )
    a_key = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "pa"}).json()
    for _ in range(2):
        chat(running.url, a_key["key"])  # today's, raw
    today = retention.utc_today()
    for back in (3, 2, 1):
        day = today - timedelta(days=back)
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()
        audit.insert_events(
            gov.db,
            [
                {
                    **audit.event(
                        "request",
                        team_id=("a", "b")[i % 2],
                        project_id="p",
                        model="gpt-4o-mini",
                        provider="openai",
                        status=(200, 200, 502)[i % 3],
                        prompt_tokens=10 * i,
                        completion_tokens=i,
                        cost_usd=0.125 * (i % 4),
                        latency_ms=50.0 + 7 * i * back,
                    ),
                    "ts": noon + i,
                    "day": day.isoformat(),
                    "month": f"{day:%Y-%m}",
                }
                for i in range(40)
            ],
        )
    deadline = time.monotonic() + 5
    today_requests = "SELECT COUNT(*) AS n FROM audit_events WHERE kind = 'request' AND day = ?"
    while (
        gov.db.fetch(today_requests, (str(today),))[0]["n"] < 2 and time.monotonic() < deadline
    ):  # (the keys' admin events of today do not count: the drainer may store them first)
        time.sleep(0.05)
    usage = "/admin/analytics/usage?group_by=day,team,model"
    latency = "/admin/analytics/latency?group_by=day,team"
    before = (admin("GET", usage).json(), a_admin("GET", usage).json())
    latency_before = admin("GET", latency).json()["data"]
    assert len(before[0]["data"]) == 3 * 2 + 1 and len(before[1]["data"]) == 3 + 1
    done = retention.maintain(gov.db, 1, today=today)
    assert done.failed == [] and done.kept == []
    days = {r["day"] for r in gov.db.fetch("SELECT DISTINCT day FROM audit_events")}
    assert str(today - timedelta(days=3)) not in days  # dropped: read from the roll-up
    assert (admin("GET", usage).json(), a_admin("GET", usage).json()) == before
    latency_after = admin("GET", latency).json()["data"]
    assert [(r["day"], r["team_id"], r["requests"], r["errors"]) for r in latency_after] == [
        (r["day"], r["team_id"], r["requests"], r["errors"]) for r in latency_before
    ]
    for old, new in zip(latency_before, latency_after, strict=True):
        for name in ("p50_ms", "p90_ms", "p99_ms"):
            assert new[name] == pytest.approx(old[name], rel=0.01), (old, new)


def test_fail_closed_and_fail_open(fake_openai: Any, fake_anthropic: Any, tmp_path: Path) -> None:
    from gateway_app.state.governance_redis import RedisGovernanceState

    def one(fail_closed: bool) -> httpx.Response:
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
            return response

    # The two gateways side by side: with its Redis unreachable, each takes about 10 s to
    # stop (serve() waits for it), the test's whole time when they ran one after the other.
    with ThreadPoolExecutor(2) as pool:
        closed, opened = pool.map(one, (True, False))
    assert closed.status_code == 503, closed.text
    assert opened.status_code == 200, opened.text


def test_stream_cost_from_usage_including_cached_tokens(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    from tests.fakes.fakes import ok

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
    from gateway_app.config.prices import Pricing, Tokens

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


def test_usage_and_cost_edge_cases_read_as_the_provider_bills_them() -> None:
    """A usage without details (absent, null or empty), the Responses API's names, and
    cache counts larger than the prompt (an upstream's inconsistent report): cached
    tokens are capped at the prompt and cache writes at what is left of it, so no token
    is billed twice or at a negative count."""
    from gateway_app.config.prices import Pricing, TokenPrices, Tokens

    for details in ({}, {"prompt_tokens_details": None}, {"prompt_tokens_details": {}}):
        assert Tokens.from_usage({"prompt_tokens": 7, "completion_tokens": 2, **details}) == (
            Tokens(7, 2)
        )
    assert Tokens.from_usage({"input_tokens": 5, "output_tokens": 3}) == Tokens(5, 3)
    assert Tokens.from_usage({"prompt_tokens": None, "completion_tokens": 0}) == Tokens()
    prices = TokenPrices(input=1.0, output=10.0, cache_read=0.5, cache_write=2.0)
    # 100 cached of a 60-token prompt: 60 at the cache price, none at the input price.
    assert Pricing.cost(prices, Tokens(60, 1, cached=100)) == 60 * 0.5 + 10.0
    # 30 cached, 50 written of 60: the 30 left are written, none at the input price.
    assert Pricing.cost(prices, Tokens(60, 0, cached=30, cache_write=50)) == 30 * 0.5 + 30 * 2.0
    assert Pricing.cost(prices, Tokens(60, 0, cached=10, cache_write=20)) == 30 + 5.0 + 40.0


def test_metrics_report_the_audit_buffer_depth(gw: tuple[Any, Governance]) -> None:
    running, gov = gw

    async def depth() -> int:
        return 7

    gov.state.audit_depth = depth  # type: ignore[method-assign]
    text = httpx.get(running.url + "/metrics", timeout=10).text
    assert "aigw_audit_buffer_depth 7.0" in text.splitlines()


def test_metrics_report_how_far_behind_the_audit_rollup_is(
    fake_openai: Any,
    fake_anthropic: Any,
    postgres_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``aigw_audit_rollup_lag_days`` (what ``AigwAuditRollupBehind`` alerts on): the
    closed days holding events that the roll-up has not reached, read from PostgreSQL
    at scrape time; 0 once ``audit-maintain`` rolled up to yesterday."""
    db = Database(postgres_server.new_database("l"))
    db.migrate()
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True},
    }
    gov = Governance(
        parse(raw), state=InProcessGovernanceState(), db=db, admin_key=ADMIN, secret=b"s"
    )
    monkeypatch.setattr(service, "ROLLUP_LAG_TTL_S", 0.0)
    today = retention.utc_today()
    for back in (4, 2):
        day = today - timedelta(days=back)
        event = audit.event("request", team_id="t", model="m", latency_ms=5.0)
        audit.insert_events(db, [{**event, "day": str(day), "month": f"{day:%Y-%m}"}])

    def lag() -> str:
        lines = httpx.get(running.url + "/metrics", timeout=10).text.splitlines()
        [line] = [line for line in lines if line.startswith("aigw_audit_rollup_lag_days ")]
        return line.split()[1]

    with serve(raw, hooks=governance_hooks(gov), admin=AdminApi(gov)) as running:
        assert lag() == "4.0"  # the oldest event's day and the 3 after it
        done = retention.maintain(db, None, today=today - timedelta(days=2))
        assert done.failed == []
        assert lag() == "2.0"  # rolled up to 3 days ago
        assert retention.maintain(db, None, today=today).failed == []
        assert lag() == "0.0"


def test_a_long_analytics_query_holds_up_no_model_request_and_is_cancelled(
    fake_openai: Any, fake_anthropic: Any, postgres_server: Any
) -> None:
    """At 50,000 requests/s a range that includes today reads billions of raw audit rows
    (minutes). The admin API's analytics run on their own connection: while one is
    stuck, a key created on another replica is looked up and served and its request's
    audit event is stored; at ``governance.admin_query_timeout_s`` the query is cancelled
    and answered 503 ``admin_query_timeout`` naming the setting; then it answers again."""
    import psycopg

    from gateway_app.governance.keys import KeyRecord, KeyStore, hash_key, new_key

    url = postgres_server.new_database("q")
    db = Database(url)
    db.migrate()
    other = Database(url)  # another replica's connection
    timeout_s = 4.0
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True, "admin_query_timeout_s": timeout_s},
    }
    gov = Governance(
        parse(raw), state=InProcessGovernanceState(), db=db, admin_key=ADMIN, secret=b"s"
    )
    # What makes the query last: a lock on the roll-up it reads (standing in for the
    # minutes a scan of today's raw events takes), held by another session.
    blocker = psycopg.connect(url, autocommit=True)
    blocker.execute("BEGIN")
    blocker.execute("LOCK TABLE audit_rollup IN ACCESS EXCLUSIVE MODE")
    try:
        with serve(raw, hooks=governance_hooks(gov), admin=AdminApi(gov)) as running:
            with ThreadPoolExecutor(1) as pool:
                started = time.monotonic()
                stuck = pool.submit(Admin(running.url), "GET", "/admin/analytics/usage", timeout=30)
                time.sleep(0.5)
                assert not stuck.done()
                key_id, key = new_key()
                KeyStore(other).insert(KeyRecord(key_id, hash_key(b"s", key), "t", "p"))
                assert key_id not in gov.registry.by_id  # looked up in the database
                served = openai.OpenAI(
                    base_url=running.url + "/v1", api_key=key, max_retries=0, timeout=3
                ).chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
                assert served.choices
                stored: list[Any] = []
                while not stored and time.monotonic() - started < timeout_s - 0.5:
                    time.sleep(0.1)
                    stored = other.fetch(
                        "SELECT status FROM audit_events WHERE key_id = ?", (key_id,)
                    )
                assert stored == [{"status": 200}], "the audit drain waited for the query"
                assert not stuck.done()
                refused = stuck.result(timeout=30)
                took = time.monotonic() - started
            assert timeout_s <= took < timeout_s + 5, took
            assert refused.status_code == 503, refused.text
            error = refused.json()["error"]
            assert error["code"] == "admin_query_timeout"
            assert "governance.admin_query_timeout_s (4 s)" in error["message"]
            blocker.execute("ROLLBACK")
            again = Admin(running.url)("GET", "/admin/analytics/usage", params={"group_by": "team"})
            assert again.status_code == 200, again.text
            assert [row["requests"] for row in again.json()["data"]] == [1]
    finally:
        blocker.close()
        other.close()


def team_admin(url: str, admin: Admin, team: str, project: str) -> Admin:
    """An admin client for a new ``team_admin`` key of ``team`` (its key names ``project``)."""
    made = admin(
        "POST", "/admin/keys", json={"team_id": team, "project_id": project, "role": "team_admin"}
    ).json()
    return Admin(url, made["key"])


def test_team_admin_cannot_limit_another_teams_project(gw: tuple[Any, Governance]) -> None:
    """Issue 20 item 1: a project scope is checked against the caller's team like a team's."""
    running, _ = gw
    admin = Admin(running.url)
    a_key = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "pa"}).json()
    tb = team_admin(running.url, admin, "b", "pb")
    for method, path, body in (
        ("PUT", "/admin/limits/project/pa", {"rpm": 1}),
        ("GET", "/admin/limits/project/pa", None),
        ("DELETE", "/admin/limits/project/pa", None),
        ("GET", "/admin/budgets/project/pa", None),
        ("GET", "/admin/projects/pa", None),
    ):
        response = tb(method, path, json=body) if body is not None else tb(method, path)
        assert response.status_code == 404, (method, path, response.text)
    assert admin("GET", "/admin/limits").json()["data"] == []
    for _ in range(3):  # team A is not throttled by team B's attempt
        assert chat(running.url, a_key["key"]).http_response.status_code == 200
    # Its own project, and a new one it claims by setting a limit on it.
    assert tb("PUT", "/admin/limits/project/pb", json={"rpm": 5}).status_code == 200
    assert tb("PUT", "/admin/limits/project/pb-new", json={"rpm": 5}).json()["team_id"] == "b"
    assert [p["id"] for p in tb("GET", "/admin/projects").json()["data"]] == ["pb", "pb-new"]
    # The admin must say which team owns a project nobody has claimed yet.
    unowned = admin("PUT", "/admin/limits/project/nobodys", json={"rpm": 5})
    assert unowned.status_code == 400 and unowned.json()["error"]["param"] == "team_id"


def test_project_ids_belong_to_one_team(gw: tuple[Any, Governance], caplog: Any) -> None:
    """Issue 20 item 2: the first team to claim a project owns it; another team's key cannot
    name it, and a key from before owners existed cannot spend the owner's budget."""
    running, gov = gw
    admin = Admin(running.url)
    a_key = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "shared"}).json()
    tb = team_admin(running.url, admin, "b", "pb")
    stolen = tb("POST", "/admin/keys", json={"project_id": "shared"})
    assert stolen.status_code == 409, stolen.text
    assert stolen.json()["error"]["code"] == "project_conflict"
    assert "another team" in stolen.json()["error"]["message"]
    assert "'a'" not in stolen.json()["error"]["message"]  # a team admin learns no team name
    by_admin = admin("POST", "/admin/keys", json={"team_id": "b", "project_id": "shared"})
    assert by_admin.status_code == 409 and "team 'a'" in by_admin.json()["error"]["message"]
    assert {k["team_id"] for k in admin("GET", "/admin/keys").json()["data"]} == {"a", "b"}
    assert len(admin("GET", "/admin/keys?team_id=b").json()["data"]) == 1
    created = tb("POST", "/admin/projects", json={"project_id": "pb2"})
    assert created.status_code == 201 and created.json() == {"id": "pb2", "team_id": "b"}
    assert (
        admin("POST", "/admin/projects", json={"project_id": "pb2", "team_id": "a"}).status_code
        == 409
    )

    # A key written before projects had owners (team b naming team a's project).
    from gateway_app.governance.keys import KeyRecord, hash_key

    legacy_secret = "sk-aigw-key_00000000000legacy-secret"
    gov.store.insert(
        KeyRecord(
            id="key_00000000000legacy",
            key_hash=hash_key(gov.registry.secret, legacy_secret),
            team_id="b",
            project_id="shared",
            created_at=time.time(),
        )
    )
    assert (
        admin("PUT", "/admin/limits/project/shared", json={"daily_usd": 0.0001}).status_code == 200
    )
    for _ in range(3):
        assert chat(running.url, legacy_secret, max_tokens=10).http_response.status_code == 200
    assert admin("GET", "/admin/budgets/project/shared").json()["daily_usd"] == 0
    assert "names project shared of another team" in caplog.text
    # The owner's own key still counts against (and is limited by) its project's budget.
    assert chat(running.url, a_key["key"], max_tokens=10).http_response.status_code == 200
    assert admin("GET", "/admin/budgets/project/shared").json()["daily_usd"] > 0


def test_models_and_validation_answer_only_after_authentication(
    gw: tuple[Any, Governance],
) -> None:
    """Issue 20 item 5 (and GET /v1/models/{id}): with governance on, nothing about the
    models or the request's shape is revealed to a caller without a valid key."""
    running, _ = gw
    admin = Admin(running.url)
    key = admin(
        "POST", "/admin/keys", json={"team_id": "a", "project_id": "p", "models": ["gpt-4o-mini"]}
    ).json()["key"]
    anonymous = httpx.Client(base_url=running.url)
    assert anonymous.get("/v1/models").status_code == 401
    assert anonymous.get("/v1/models/gpt-4o-mini").status_code == 401
    for body in ({"model": "no-such-model", "messages": []}, {"nonsense": True}):
        refused = anonymous.post("/v1/chat/completions", json=body)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "invalid_api_key"
    bad = anonymous.post(
        "/v1/embeddings", json={"input": 3}, headers={"authorization": "Bearer sk-aigw-nope"}
    )
    assert bad.status_code == 401
    client = openai.OpenAI(base_url=running.url + "/v1", api_key=key, max_retries=0)
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]  # the key's models only
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("claude-sonnet-4-6")  # served here, not for this key
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[])


def test_admin_api_answers_503_while_the_database_is_down(
    gw: tuple[Any, Governance], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20 item 11."""
    from gateway_app.governance.storage import DatabaseError

    running, gov = gw
    admin = Admin(running.url)
    key = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "p"}).json()

    def down(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("postgres: connection refused")

    for db in (gov.db, gov.reports_db):  # both connections: the database is down
        monkeypatch.setattr(db, "fetch", down)
        monkeypatch.setattr(db, "execute", down)
    for method, path, body in (
        ("GET", "/admin/keys", None),
        ("POST", "/admin/keys", {"team_id": "a", "project_id": "p2"}),
        ("GET", "/admin/audit", None),
        ("PUT", "/admin/limits/team/a", {"rpm": 5}),
    ):
        response = admin(method, path, json=body) if body is not None else admin(method, path)
        assert response.status_code == 503, (method, path, response.text)
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"]["code"] == "database_unavailable"
    # Model requests do not need the database.
    assert chat(running.url, key["key"]).http_response.status_code == 200


def test_a_key_not_yet_loaded_gets_503_while_the_database_is_down(
    gw: tuple[Any, Governance], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key created on another replica a moment ago, presented here while PostgreSQL is
    unreachable: 503 ``key_store_unavailable`` with Retry-After on the model API and the
    admin API (a 401 would tell the client its valid key is invalid); 200 once it is back
    and the Retry-After second has passed."""
    from gateway_app.governance.keys import KeyRecord, hash_key, new_key
    from gateway_app.governance.storage import DatabaseError

    running, gov = gw
    key_id, key = new_key()
    # Written to the store only: this replica's memory does not have it yet.
    gov.registry.store.insert(KeyRecord(key_id, hash_key(gov.registry.secret, key), "a", "p"))
    assert key_id not in gov.registry.by_id

    def down(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("postgres: connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(gov.db, "fetch", down)
        with pytest.raises(openai.InternalServerError) as refused:
            chat(running.url, key)
        assert refused.value.status_code == 503
        assert refused.value.response.headers["retry-after"] == "1"
        assert refused.value.response.json()["error"]["code"] == "key_store_unavailable"
        admin = Admin(running.url, token=key)("GET", "/admin/keys")
        assert admin.status_code == 503, admin.text
        assert admin.json()["error"]["code"] == "key_store_unavailable"
    # Back: after the Retry-After second (the store is asked at most once a second while
    # it fails), the key works.
    time.sleep(1.05)
    assert chat(running.url, key).http_response.status_code == 200


def test_audit_limit_must_be_a_number(gw: tuple[Any, Governance]) -> None:
    running, _ = gw
    admin = Admin(running.url)
    for value in ("abc", "0", "-3", "100000"):
        response = admin("GET", f"/admin/audit?limit={value}")
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "limit"
    assert admin("GET", "/admin/audit?limit=5").status_code == 200


def test_money_is_printed_with_meaningful_precision() -> None:
    """Issue 20 item 16: small budgets and reservations never print as $0.0000."""
    from gateway_app.governance.service import usd

    assert usd(0) == "$0"
    assert usd(0.000012) == "$0.0000120"
    assert usd(0.00004) == "$0.0000400"
    assert usd(0.0036) == "$0.00360"
    assert usd(0.25) == "$0.250"
    assert usd(12.5) == "$12.50"
    assert usd(1234.5) == "$1,234.50"
    from gateway_app.state.governance import BudgetItem, Decision

    item = BudgetItem("team:t", "daily", "2026-01-01", 20_000, 4_000, 60)  # nano-USD
    _, error = Governance._refusal(None, Decision(False, refused=item, used=19_000), time.time())  # type: ignore[arg-type]
    assert "$0.0000 " not in error.message and "$0.0000," not in error.message
    assert "limit $0.0000200" in error.message and "up to $0.00000400" in error.message


UNPRICED_MODELS: dict[str, Any] = {
    "gpt-4o-mini": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]},
    "in-house": {"deployments": [{"provider": "openai", "model": "in-house-llm-7b"}]},
}


def test_an_unpriced_model_is_never_billed_at_zero(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    """Issue 20 item 15: by default the gateway refuses to start (naming the deployment and
    the price to set); with refuse_with_budget, a key with a budget is refused per request,
    and a key without one is audited with an unknown (null) cost, not $0."""
    from gateway_app.config import ConfigError

    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": UNPRICED_MODELS,
        "governance": {"enabled": True},
    }
    gov = embedded_governance(raw, tmp_path / "start.sqlite3")
    with pytest.raises(ConfigError) as refused:
        run_async(gov.start())
    message = str(refused.value)
    assert "models.in-house.deployments[0] (openai/in-house-llm-7b" in message
    assert "price: {input_per_mtok" in message and "gpt-4o-mini" not in message

    raw["governance"] = {"enabled": True, "unpriced_models": "refuse_with_budget"}
    gov = embedded_governance(raw, tmp_path / "gov.sqlite3")
    with serve(raw, hooks=governance_hooks(gov), admin=AdminApi(gov)) as running:
        admin = Admin(running.url)
        free = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "pa"}).json()
        budgeted = admin("POST", "/admin/keys", json={"team_id": "b", "project_id": "pb"}).json()
        admin("PUT", "/admin/limits/team/b", json={"monthly_usd": 100})
        with pytest.raises(openai.PermissionDeniedError) as denied:
            chat(running.url, budgeted["key"], model="in-house")
        assert denied.value.body["code"] == "model_unpriced"
        assert chat(running.url, budgeted["key"]).http_response.status_code == 200  # priced
        assert chat(running.url, free["key"], model="in-house").http_response.status_code == 200
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            rows = gov.db.fetch(
                "SELECT model, cost_usd FROM audit_events WHERE kind = 'request' AND status = 200"
            )
            if len(rows) >= 2:
                break
            time.sleep(0.05)
    costs = {row["model"]: row["cost_usd"] for row in rows}
    assert costs["in-house"] is None and costs["gpt-4o-mini"] > 0


def test_aigw_models_lists_the_deployments_without_a_price(tmp_path: Path) -> None:
    """Issue 20 item 15: ``aigw models --unpriced`` names what to price (exit 1 if any)."""
    import subprocess
    import sys

    import yaml

    config = tmp_path / "gateway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "providers": {"openai": {"type": "openai", "api_key": "k"}},
                "models": UNPRICED_MODELS,
            }
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "gateway_app", "models", "--config", str(config), "--unpriced"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    assert "openai/in-house-llm-7b" in run.stdout and "NO PRICE" in run.stdout
    assert "openai/gpt-4o-mini" not in run.stdout


def test_a_stream_cut_before_its_usage_chunk_is_billed_its_upper_bound(
    gw: tuple[Any, Governance], fake_openai: Any
) -> None:
    """Issue 20 item 3: a stream that ends before its usage chunk (the upstream broke, or
    the client disconnected early) settles at the reservation's tokens, not 0, against
    budgets and TPM, and its audit event says the usage was estimated."""
    from tests.fakes import ok

    running, gov = gw
    admin = Admin(running.url)
    key = admin("POST", "/admin/keys", json={"team_id": "a", "project_id": "p"}).json()
    admin("PUT", f"/admin/limits/key/{key['id']}", json={"daily_usd": 10.0, "tpm": 10**6})
    content = "word " * 40
    fake_openai.script(
        ok(content, drop_after_events=3),  # the upstream breaks mid-stream
        ok(content, chunk_delay=0.05),  # the client leaves after the first chunks
    )
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "count"}],
    }
    headers = {"authorization": f"Bearer {key['key']}", "x-request-id": "cut-upstream"}
    broken = httpx.post(running.url + "/v1/chat/completions", json=body, headers=headers)
    assert broken.status_code == 200 and b"[DONE]" not in broken.content
    with httpx.stream(
        "POST",
        running.url + "/v1/chat/completions",
        json=body,
        headers={**headers, "x-request-id": "cut-client"},
    ) as response:
        for _ in response.iter_bytes():
            break  # disconnect after the first bytes
    deadline = time.monotonic() + 5
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(rows) < 2:
        rows = gov.db.fetch(
            "SELECT request_id, completion_tokens, prompt_tokens, cost_usd, usage_source "
            "FROM audit_events WHERE request_id LIKE 'cut-%' ORDER BY request_id"
        )
        time.sleep(0.05)
    assert [r["request_id"] for r in rows] == ["cut-client", "cut-upstream"]
    for row in rows:
        assert row["usage_source"] == "estimated_reservation"
        assert row["completion_tokens"] == 1000  # max_tokens: the upper bound
        assert row["prompt_tokens"] > 0 and row["cost_usd"] > 0
    spent = admin("GET", f"/admin/budgets/key/{key['id']}").json()["daily_usd"]
    assert spent == pytest.approx(sum(r["cost_usd"] for r in rows), rel=1e-6)
    assert spent >= 2 * 1000 * 0.60 / 1e6  # two upper bounds of output at gpt-4o-mini's price


def test_a_governed_requests_usage_is_read_once_for_its_audit_and_access_line(
    fake_openai: Any,
    fake_anthropic: Any,
    tmp_path: Path,
    access_lines: list[dict[str, Any]],
    monkeypatch: Any,
) -> None:
    """Settling reads the upstream's usage into tokens and leaves them on the exchange;
    the access line (the default chain, observability outermost) takes them from there:
    the same tokens in the answer, the audit row and the access line, read from the
    usage once a request."""
    from gateway_app.config.prices import Tokens

    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True},
    }
    gov = embedded_governance(raw, tmp_path / "gov.sqlite3")
    reads: list[Any] = []
    real = Tokens.from_usage.__func__  # type: ignore[attr-defined]

    def from_usage(cls: type[Tokens], usage: dict[str, Any] | None) -> Tokens:
        reads.append(usage)
        return real(cls, usage)

    with serve(raw, governance=governance_hooks(gov), admin=AdminApi(gov)) as running:
        key = Admin(running.url)("POST", "/admin/keys", json={"team_id": "a", "project_id": "p"})
        monkeypatch.setattr(Tokens, "from_usage", classmethod(from_usage))
        answer = chat(running.url, key.json()["key"]).parse()
        deadline = time.monotonic() + 5
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not (rows and access_lines):
            rows = gov.db.fetch("SELECT * FROM audit_events WHERE kind = 'request'")
            time.sleep(0.05)
    (line,) = [line for line in access_lines if line.get("status") == 200 and "model" in line]
    usage = (answer.usage.prompt_tokens, answer.usage.completion_tokens)
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == usage
    assert (line["prompt_tokens"], line["completion_tokens"]) == usage
    assert len(reads) == 1 and reads[0]["prompt_tokens"] == usage[0]
