"""Two gateway processes sharing one Redis and one PostgreSQL: budgets, TPM, revocation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from gateway_app.governance.storage import Database
from tests.fakes.fakes import ok
from tests.gateway.conftest import run_async
from tests.gateway.governance.processes import GatewayProcess, gateway_config

MESSAGES = [{"role": "user", "content": "hi"}]
MAX_TOKENS = 1000
# What the gateway reserves for one request: its prompt estimate and max_tokens.
PROMPT_ESTIMATE = len(orjson.dumps(MESSAGES)) // 3 + 16
RESERVED_TOKENS = PROMPT_ESTIMATE + MAX_TOKENS
RESERVED_USD = (PROMPT_ESTIMATE * 0.15 + MAX_TOKENS * 0.60) / 1e6  # gpt-4o-mini list price
CLAUDE = "claude-sonnet-4-6"
MESSAGES_PATH = "/v1/messages"
# A Messages request's prompt is its system, messages and tools; every prompt token might
# be written to the prompt cache, so it reserves at the cache-write price ($3.75/MTok).
CLAUDE_PROMPT_ESTIMATE = len(orjson.dumps([None, MESSAGES, None])) // 3 + 16
CLAUDE_RESERVED_TOKENS = CLAUDE_PROMPT_ESTIMATE + MAX_TOKENS
CLAUDE_RESERVED_USD = (CLAUDE_PROMPT_ESTIMATE * 3.75 + MAX_TOKENS * 15) / 1e6


@pytest.fixture(scope="module")
def replicas(
    _fakes: Any, redis_server: Any, postgres_server: Any
) -> Iterator[list[GatewayProcess]]:
    db = Database(postgres_server.url)
    db.migrate()
    db.close()
    env = {"AIGW_REDIS_URL": redis_server.url, "AIGW_DATABASE_URL": postgres_server.url}
    config = gateway_config(_fakes[0].url, key_refresh_s=600)
    # Messages traffic (Claude Code's) is bound by the same limits: a Claude model too.
    config["providers"]["anthropic"] = {
        "type": "anthropic",
        "api_key": "ak-fake",
        "base_url": _fakes[1].url,
    }
    config["models"][CLAUDE] = {"deployments": [{"provider": "anthropic", "model": CLAUDE}]}
    pair = [GatewayProcess(config, env), GatewayProcess(config, env)]
    yield pair
    for gateway in pair:
        gateway.stop()


CHAT = (
    "/v1/chat/completions",
    {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": MAX_TOKENS},
)
CLAUDE_MESSAGES = (MESSAGES_PATH, {"model": CLAUDE, "messages": MESSAGES, "max_tokens": MAX_TOKENS})
# The same call through the Responses API: its estimate reads instructions, the stored
# conversation (none here) and the input.
RESPONSES = (
    "/v1/responses",
    {"model": "gpt-4o-mini", "input": "hi", "max_output_tokens": MAX_TOKENS},
)
RESPONSES_PROMPT_ESTIMATE = len(orjson.dumps([None, [], "hi"])) // 3 + 16


async def _burst(
    urls: list[str], key: str, count: int, call: tuple[str, dict[str, Any]] = CHAT
) -> list[httpx.Response]:
    path, body = call
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    urls[i % len(urls)] + path,
                    # Claude Code's ANTHROPIC_API_KEY header for Messages, Bearer otherwise.
                    headers={"x-api-key": key}
                    if path == MESSAGES_PATH
                    else {"authorization": f"Bearer {key}"},
                    json=body,
                )
                for i in range(count)
            )
        )


def _new_key(gateway: GatewayProcess, project: str) -> dict[str, Any]:
    response = gateway.admin("POST", "/admin/keys", json={"team_id": "t", "project_id": project})
    assert response.status_code == 201, response.text
    return response.json()


def test_budget_holds_under_200_concurrent_requests_on_two_replicas(
    replicas: list[GatewayProcess], fake_openai: Any
) -> None:
    key = _new_key(replicas[0], "budget-p")
    limit_usd = 10.5 * RESERVED_USD
    assert (
        replicas[1]
        .admin("PUT", "/admin/limits/project/budget-p", json={"daily_usd": limit_usd})
        .status_code
        == 200
    )
    # every answer uses all of max_tokens: actual cost close to the reservation
    fake_openai.script(*[ok(usage=(10, MAX_TOKENS), delay=0.2) for _ in range(200)])
    time.sleep(0.3)  # the limit announcement reaches replica 0
    responses = run_async(_burst([g.url for g in replicas], key["key"], 200))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    refused = [r for r in responses if r.status_code == 429]
    assert {r.json()["error"]["code"] for r in refused} == {"budget_exceeded"}
    assert all("project:budget-p" in r.json()["error"]["message"] for r in refused)
    served = statuses.count(200)
    assert 1 <= served <= 11
    spent = replicas[0].admin("GET", "/admin/budgets/project/budget-p").json()["daily_usd"]
    assert spent <= limit_usd + RESERVED_USD
    assert spent == pytest.approx(served * (10 * 0.15 + MAX_TOKENS * 0.60) / 1e6, rel=1e-3)


def test_tpm_holds_under_200_concurrent_requests_on_two_replicas(
    replicas: list[GatewayProcess], fake_openai: Any
) -> None:
    key = _new_key(replicas[1], "tpm-p")
    limit = 10 * RESERVED_TOKENS
    assert (
        replicas[0].admin("PUT", f"/admin/limits/key/{key['id']}", json={"tpm": limit}).status_code
        == 200
    )
    fake_openai.script(*[ok(usage=(PROMPT_ESTIMATE, MAX_TOKENS), delay=0.2) for _ in range(200)])
    time.sleep(0.3)
    responses = run_async(_burst([g.url for g in replicas], key["key"], 200))
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(served) + len(refused) == 200
    assert {r.json()["error"]["code"] for r in refused} == {"rate_limit_exceeded"}
    assert all(r.headers["x-ratelimit-limit-tokens"] == str(limit) for r in refused)
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    tokens = sum(r.json()["usage"]["total_tokens"] for r in served)
    assert 1 <= len(served) <= 11
    assert tokens <= limit + RESERVED_TOKENS


def test_budget_holds_for_200_concurrent_messages_requests_on_two_replicas(
    replicas: list[GatewayProcess], fake_anthropic: Any
) -> None:
    key = _new_key(replicas[0], "messages-budget-p")
    limit_usd = 10.5 * CLAUDE_RESERVED_USD
    limits = {"daily_usd": limit_usd}
    path = "/admin/limits/project/messages-budget-p"
    assert replicas[1].admin("PUT", path, json=limits).status_code == 200
    # Each answer uses all of max_tokens and writes its prompt to the cache.
    answer = ok(usage=(10, MAX_TOKENS), cache_tokens=(0, 5), delay=0.2)
    fake_anthropic.script(*[answer for _ in range(200)])
    time.sleep(0.3)
    responses = run_async(_burst([g.url for g in replicas], key["key"], 200, CLAUDE_MESSAGES))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    refused = [r.json() for r in responses if r.status_code == 429]
    assert {(r["type"], r["error"]["type"]) for r in refused} == {("error", "rate_limit_error")}
    assert all("project:messages-budget-p" in r["error"]["message"] for r in refused)
    served = statuses.count(200)
    assert 1 <= served <= 11
    spent = replicas[0].admin("GET", "/admin/budgets/project/messages-budget-p").json()
    assert spent["daily_usd"] <= limit_usd + CLAUDE_RESERVED_USD
    each = (10 * 3 + 5 * 3.75 + MAX_TOKENS * 15) / 1e6  # input, cache write, output
    assert spent["daily_usd"] == pytest.approx(served * each, rel=1e-3)


def test_tpm_holds_for_200_concurrent_messages_requests_on_two_replicas(
    replicas: list[GatewayProcess], fake_anthropic: Any
) -> None:
    key = _new_key(replicas[1], "messages-tpm-p")
    limit = 10 * CLAUDE_RESERVED_TOKENS
    path = f"/admin/limits/key/{key['id']}"
    assert replicas[0].admin("PUT", path, json={"tpm": limit}).status_code == 200
    answer = ok(usage=(CLAUDE_PROMPT_ESTIMATE, MAX_TOKENS), delay=0.2)
    fake_anthropic.script(*[answer for _ in range(200)])
    time.sleep(0.3)
    responses = run_async(_burst([g.url for g in replicas], key["key"], 200, CLAUDE_MESSAGES))
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(served) + len(refused) == 200
    assert {r.json()["error"]["type"] for r in refused} == {"rate_limit_error"}
    assert all(r.headers["x-ratelimit-limit-tokens"] == str(limit) for r in refused)
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    usage = [r.json()["usage"] for r in served]
    tokens = sum(u["input_tokens"] + u["output_tokens"] for u in usage)
    assert 1 <= len(served) <= 11
    assert tokens <= limit + CLAUDE_RESERVED_TOKENS


def test_revocation_reaches_the_other_replica(replicas: list[GatewayProcess]) -> None:
    key = _new_key(replicas[0], "revoke-p")
    call = lambda: httpx.post(  # noqa: E731
        replicas[1].url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key['key']}"},
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
        timeout=10,
    )
    assert call().status_code == 200  # created on replica 0, usable on replica 1
    assert replicas[0].admin("DELETE", f"/admin/keys/{key['id']}").status_code == 200
    # key_refresh_s is 600 here: only the pub/sub announcement can revoke it this soon
    deadline = time.monotonic() + 5
    while call().status_code != 401:
        assert time.monotonic() < deadline, "revocation did not reach replica 1"
        time.sleep(0.05)


def test_budget_and_tpm_bind_responses_traffic_as_they_bind_chat(
    replicas: list[GatewayProcess], fake_openai: Any
) -> None:
    """The Responses API under the same budget and TPM limits, 200 concurrent calls each."""
    reserved_usd = (RESPONSES_PROMPT_ESTIMATE * 0.15 + MAX_TOKENS * 0.60) / 1e6
    key = _new_key(replicas[0], "responses-budget-p")
    limit_usd = 10.5 * reserved_usd
    assert (
        replicas[1]
        .admin("PUT", "/admin/limits/project/responses-budget-p", json={"daily_usd": limit_usd})
        .status_code
        == 200
    )
    fake_openai.script(*[ok(usage=(10, MAX_TOKENS), delay=0.2) for _ in range(200)])
    time.sleep(0.3)
    responses = run_async(_burst([g.url for g in replicas], key["key"], 200, RESPONSES))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    refused = [r for r in responses if r.status_code == 429]
    assert {r.json()["error"]["code"] for r in refused} == {"budget_exceeded"}
    served = statuses.count(200)
    # Each call reserved its estimate exactly: ten fit in the budget, as for chat.
    assert 10 <= served <= 11
    assert all(r.json()["object"] == "response" for r in responses if r.status_code == 200)
    spent = replicas[0].admin("GET", "/admin/budgets/project/responses-budget-p").json()
    assert spent["daily_usd"] <= limit_usd + reserved_usd
    assert spent["daily_usd"] == pytest.approx(
        served * (10 * 0.15 + MAX_TOKENS * 0.60) / 1e6, rel=1e-3
    )

    reserved_tokens = RESPONSES_PROMPT_ESTIMATE + MAX_TOKENS
    key = _new_key(replicas[1], "responses-tpm-p")
    limit = 10 * reserved_tokens
    assert (
        replicas[0].admin("PUT", f"/admin/limits/key/{key['id']}", json={"tpm": limit}).status_code
        == 200
    )
    fake_openai.reset()
    fake_openai.script(
        *[ok(usage=(RESPONSES_PROMPT_ESTIMATE, MAX_TOKENS), delay=0.2) for _ in range(200)]
    )
    time.sleep(0.3)
    responses = run_async(_burst([g.url for g in replicas], key["key"], 200, RESPONSES))
    served_calls = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(served_calls) + len(refused) == 200
    assert {r.json()["error"]["code"] for r in refused} == {"rate_limit_exceeded"}
    assert all(r.headers["x-ratelimit-limit-tokens"] == str(limit) for r in refused)
    tokens = sum(r.json()["usage"]["total_tokens"] for r in served_calls)
    assert 10 <= len(served_calls) <= 11
    assert tokens <= limit + reserved_tokens
