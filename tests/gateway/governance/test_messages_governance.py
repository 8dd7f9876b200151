"""Keys, model lists, budgets and cost for the Messages API, as for chat (the anthropic SDK).

Claude Code sends its key as ``x-api-key`` (ANTHROPIC_API_KEY) or as
``Authorization: Bearer`` (ANTHROPIC_AUTH_TOKEN): both are virtual keys here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.fakes.fakes import ok
from tests.gateway.governance.test_gateway_governance import Admin, governed

HI = [{"role": "user", "content": "hi"}]


def sdk(url: str, key: str | None = None, token: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, auth_token=token, max_retries=0)


def test_keys_model_lists_and_budgets_bind_messages(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    with governed(fake_openai, fake_anthropic, tmp_path) as (running, gov):
        admin = Admin(running.url)
        key = admin(
            "POST",
            "/admin/keys",
            json={"team_id": "a", "project_id": "p", "models": ["claude-sonnet-4-6"]},
        ).json()
        for client in (sdk(running.url, key=key["key"]), sdk(running.url, token=key["key"])):
            answer = client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=HI)
            assert answer.content[0].text == "echo: hi"  # type: ignore[union-attr]
        with pytest.raises(anthropic.AuthenticationError) as stranger:
            sdk(running.url, key="sk-aigw-key_0000000000000000-nope").messages.create(
                model="claude-sonnet-4-6", max_tokens=10, messages=HI
            )
        assert stranger.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        missing = httpx.post(
            running.url + "/v1/messages",
            json={"model": "claude-sonnet-4-6", "max_tokens": 1, "messages": HI},
        )
        assert missing.status_code == 401 and missing.json()["type"] == "error"
        with pytest.raises(anthropic.PermissionDeniedError) as refused:
            sdk(running.url, key=key["key"]).messages.create(
                model="gpt-4o-mini", max_tokens=10, messages=HI
            )
        assert refused.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
        assert "gpt-4o-mini" in refused.value.body["error"]["message"]  # type: ignore[index]

        # Cost from Anthropic's usage, cache reads and writes apart (genai-prices,
        # claude-sonnet-4-6: $3 input, $15 output, $0.30 cache read, $3.75 cache write).
        fake_anthropic.script(ok(usage=(100, 50), cache_tokens=(2000, 1000)))
        with sdk(running.url, key=key["key"]).messages.stream(
            model="claude-sonnet-4-6", max_tokens=100, messages=HI
        ) as stream:
            stream.until_done()
        rows: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(rows) < 3:
            rows = gov.db.fetch(
                "SELECT * FROM audit_events WHERE kind = 'request' AND status = 200 ORDER BY ts"
            )
            time.sleep(0.05)
        last = rows[-1]
        assert last["prompt_tokens"] == 3100 and last["completion_tokens"] == 50
        expected = (100 * 3 + 2000 * 0.30 + 1000 * 3.75 + 50 * 15) / 1e6
        assert last["cost_usd"] == pytest.approx(expected, rel=1e-6)

        # A budget refuses Messages traffic in Anthropic's shape, with retry-after.
        spent = admin("GET", "/admin/budgets/project/p").json()["daily_usd"]
        assert admin("PUT", "/admin/limits/project/p", json={"daily_usd": spent}).status_code == 200
        with pytest.raises(anthropic.RateLimitError) as over:
            sdk(running.url, key=key["key"]).messages.create(
                model="claude-sonnet-4-6", max_tokens=10, messages=HI
            )
        body: Any = over.value.body
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert "Budget exceeded for project:p" in body["error"]["message"]
        assert int(over.value.response.headers["retry-after"]) > 0
        # count_tokens reserves no budget: it still answers (and still needs the key).
        counted = sdk(running.url, key=key["key"]).messages.count_tokens(
            model="claude-sonnet-4-6", messages=HI
        )
        assert counted.input_tokens > 0


def test_a_messages_reservation_counts_the_system_prompt_and_tools(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    """Claude Code's system prompt and tool definitions are most of its prompt: the TPM
    and budget reservation must count them, not only ``messages``."""
    from gateway_app.apis import MESSAGES
    from gateway_app.context import RequestContext

    with governed(fake_openai, fake_anthropic, tmp_path) as (_, gov):
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 100,
            "system": "x" * 30_000,
            "tools": [{"name": "Bash", "input_schema": {"description": "y" * 9_000}}],
            "messages": HI,
        }
        request = RequestContext("r", MESSAGES.path, {}, api=MESSAGES, body=body)
        prompt, output = gov.estimate(request)
    assert prompt >= 39_000 // 3 and output == 100


def test_a_messages_stream_cut_before_its_final_usage_is_billed_its_upper_bound(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    """message_start reports the input and 1 output token; only message_delta has the
    totals. A client that leaves (Esc in Claude Code) before it is billed the reservation,
    as a cut chat stream is, never the one token seen so far."""
    with governed(fake_openai, fake_anthropic, tmp_path) as (running, gov):
        key = Admin(running.url)("POST", "/admin/keys", json={"team_id": "a", "project_id": "p"})
        fake_anthropic.script(ok("word " * 40, chunk_delay=0.05))
        body = {"model": "claude-sonnet-4-6", "max_tokens": 1000, "messages": HI, "stream": True}
        headers = {"x-api-key": key.json()["key"], "x-request-id": "cut-messages"}
        with httpx.stream("POST", running.url + "/v1/messages", json=body, headers=headers) as r:
            for _ in r.iter_bytes():
                break  # disconnect after the first bytes
        rows: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not rows:
            rows = gov.db.fetch(
                "SELECT completion_tokens, usage_source FROM audit_events "
                "WHERE request_id = 'cut-messages'"
            )
            time.sleep(0.05)
    assert rows[0]["usage_source"] == "estimated_reservation"
    assert rows[0]["completion_tokens"] == 1000


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"max_tokens": 300},
        {"max_completion_tokens": 200, "max_tokens": 900},
        {"max_completion_tokens": 0, "max_tokens": 700},
        {"max_tokens": -5},
        {"max_tokens": "500"},
        {"max_tokens": 2.5},
        {"messages": None},
        {"messages": [{"role": "user", "content": "é" * 5_000}], "tools": [{"x": "y" * 900}]},
    ],
)
def test_a_chat_requests_estimate_is_the_general_paths(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path, extra: dict[str, Any]
) -> None:
    """Chat Completions' estimate has an inline path (most governed requests take it): its
    prompt and output bounds are exactly the general path's for the same body (the
    messages' JSON bytes / 3 + 16; ``max_completion_tokens``, else ``max_tokens``, when a
    positive integer, else ``governance.default_max_output_tokens``)."""
    from gateway_app.apis import CHAT_COMPLETIONS
    from gateway_app.context import RequestContext

    body = {"model": "gpt-4o-mini", "messages": HI, **extra}
    with governed(fake_openai, fake_anthropic, tmp_path) as (_, gov):
        chat = RequestContext("r", CHAT_COMPLETIONS.path, {}, api=CHAT_COMPLETIONS, body=body)
        general = RequestContext("r", CHAT_COMPLETIONS.path, {}, api=None, body=body)
        assert gov.estimate(chat) == gov.estimate(general)
        prompt, output = gov.estimate(chat)
    assert prompt >= 16 and output > 0
