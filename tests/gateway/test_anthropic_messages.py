"""Anthropic's Messages API through the gateway, judged by the official ``anthropic`` SDK.

Native (a model served by Anthropic): the body passes through with only the model
id replaced, ``anthropic-version``/``anthropic-beta`` forwarded, the stream relayed
event by event. Translated (a model served by OpenAI): the SDK still gets a
Messages answer, and what the translation would lose is refused by name. The wire
format is Anthropic's: https://docs.anthropic.com/en/api/messages,
https://docs.anthropic.com/en/docs/build-with-claude/streaming (event sequence),
https://docs.anthropic.com/en/api/errors (error shapes and types).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from gateway_app.protocols.anthropic_messages.translation import estimate_input_tokens
from tests.fakes import FakeUpstream, error, ok
from tests.fakes.fakes import fake_token_count
from tests.gateway.conftest import Running, providers, serve

MODELS: dict[str, Any] = {
    # The public name differs from the upstream id: the only field native calls rewrite.
    "claude": {"deployments": [{"provider": "anthropic", "model": "claude-sonnet-4-6"}]},
    "gpt": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]},
    "claude-or-gpt": {
        "strategy": "failover",
        "deployments": [
            {"provider": "anthropic", "model": "claude-sonnet-4-6", "name": "a2", "priority": 0},
            {"provider": "openai", "model": "gpt-4o-mini", "name": "o2", "priority": 1},
        ],
    },
}
ROUTER = {"retry": {"max_retries": 0}}
HI = [{"role": "user", "content": "hi there"}]
RAW_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    }
)


@pytest.fixture
def gw(gateway: Callable[..., Any]) -> Iterator[Running]:
    with gateway(MODELS, router=ROUTER) as running:
        yield running


def client(url: str, key: str = "client-key", **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, **kwargs)


def events(stream: Any) -> list[Any]:
    return list(stream)


# ---------------------------------------------------------------- the fake, judged by the SDK


def test_the_fake_speaks_the_messages_api_to_the_official_sdk(fake_anthropic: FakeUpstream) -> None:
    sdk = client(fake_anthropic.url)
    message = sdk.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=HI)
    assert message.content[0].type == "text" and message.content[0].text == "echo: hi there"
    assert message.usage.input_tokens == 11 and message.stop_reason == "end_turn"
    fake_anthropic.script(ok(tool_calls=[{"name": "ls", "arguments": {"path": "/"}}]))
    with sdk.messages.stream(model="claude-sonnet-4-6", max_tokens=50, messages=HI) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"path": "/"} and final.stop_reason == "tool_use"
    counted = sdk.messages.count_tokens(model="claude-sonnet-4-6", messages=HI)
    assert counted.input_tokens == fake_token_count([None, HI, None])
    fake_anthropic.script(error(529))
    with pytest.raises(anthropic.OverloadedError):
        sdk.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=HI)


# ---------------------------------------------------------------- native


CLAUDE_CODE_BODY: dict[str, Any] = {
    "max_tokens": 4096,
    "system": [
        {"type": "text", "text": "You are Claude Code."},
        {"type": "text", "text": "Repo notes...", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}
            ],
        }
    ],
    "tools": [
        {
            "name": "Bash",
            "description": "Run a command",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
        }
    ],
    "tool_choice": {"type": "auto"},
    "metadata": {"user_id": "user_abc"},
}


def test_native_create_passes_the_body_through_with_only_the_model_replaced(
    gw: Running, fake_anthropic: FakeUpstream
) -> None:
    sdk = client(gw.url, default_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
    version = sdk.default_headers["anthropic-version"]
    message = sdk.messages.create(model="claude", **copy.deepcopy(CLAUDE_CODE_BODY))
    assert message.type == "message" and message.content[0].text == "echo: list files"
    seen = fake_anthropic.requests[-1]
    assert seen["json"] == {**CLAUDE_CODE_BODY, "model": "claude-sonnet-4-6"}
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert headers["anthropic-version"] == version  # the SDK's, not the gateway's default
    # The upstream gets the provider's credential, never the client's key.
    assert headers["x-api-key"] == "ak-fake" and "client-key" not in str(headers)


def test_native_stream_relays_the_exact_event_sequence(
    gw: Running, fake_anthropic: FakeUpstream
) -> None:
    tools = [{"name": "ls", "arguments": {"path": "/tmp"}}]
    fake_anthropic.script(ok("two words", tool_calls=tools), ok("two words", tool_calls=tools))
    direct = events(
        client(fake_anthropic.url).messages.create(
            model="claude-sonnet-4-6", max_tokens=50, messages=HI, stream=True
        )
    )
    through = events(
        client(gw.url).messages.create(model="claude", max_tokens=50, messages=HI, stream=True)
    )
    kinds = [e.type for e in through]  # (the SDK drops pings: checked on the wire below)
    assert kinds == [e.type for e in direct]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 2
    assert [e.model_dump(exclude={"message"}) for e in through[1:]] == [
        e.model_dump(exclude={"message"}) for e in direct[1:]
    ]
    assert through[-2].usage.output_tokens == 7
    with client(gw.url).messages.stream(model="claude", max_tokens=50, messages=HI) as stream:
        assert stream.get_final_text() == "echo: hi there"
    wire = httpx.post(
        gw.url + "/v1/messages",
        json={"model": "claude", "max_tokens": 5, "messages": HI, "stream": True},
    )
    assert wire.headers["content-type"] == "text/event-stream"
    names = [line[7:] for line in wire.text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]


@pytest.mark.parametrize(
    ("behaviour", "raised", "status", "kind"),
    [
        (
            error(400, "messages: bad block"),
            anthropic.BadRequestError,
            400,
            "invalid_request_error",
        ),
        (error(429, retry_after="7"), anthropic.RateLimitError, 429, "rate_limit_error"),
        (error(529, "Overloaded"), anthropic.OverloadedError, 529, "overloaded_error"),
        (error(500), anthropic.InternalServerError, 502, "api_error"),
    ],
)
def test_upstream_errors_reach_the_client_in_anthropics_shape(
    gw: Running,
    fake_anthropic: FakeUpstream,
    behaviour: Any,
    raised: type[Exception],
    status: int,
    kind: str,
) -> None:
    fake_anthropic.script(behaviour)
    with pytest.raises(raised) as caught:
        client(gw.url).messages.create(model="claude", max_tokens=50, messages=HI)
    failure: Any = caught.value
    assert failure.status_code == status
    assert failure.body["type"] == "error" and failure.body["error"]["type"] == kind
    if status == 429:
        assert failure.response.headers["retry-after"] == "7"


def test_gateway_errors_are_anthropic_shaped_and_name_the_field(gw: Running) -> None:
    sdk = client(gw.url)
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.messages.create(model="no-such-model", max_tokens=5, messages=HI)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    raw = httpx.post(gw.url + "/v1/messages", json={"model": "claude", "messages": HI})
    assert raw.status_code == 400
    assert raw.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }
    raw = httpx.post(
        gw.url + "/v1/messages",
        json={"model": "claude", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
    )
    assert raw.status_code == 400 and "messages.0.role" in raw.json()["error"]["message"]


def test_an_error_after_the_first_byte_is_an_anthropic_error_event(
    gw: Running, fake_anthropic: FakeUpstream
) -> None:
    fake_anthropic.script(ok("a b c d", stream_error_after=3, chunk_delay=0.05))
    with httpx.stream(
        "POST",
        gw.url + "/v1/messages",
        json={"model": "claude", "max_tokens": 5, "messages": HI, "stream": True},
    ) as response:
        body = response.read()
    assert body.startswith(b"event: message_start\n")
    assert body.endswith(
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        b'"message":"Overloaded"}}\n\n'
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        fake_anthropic.script(ok("a b c d", stream_error_after=3, chunk_delay=0.05))
        events(
            client(gw.url).messages.create(model="claude", max_tokens=5, messages=HI, stream=True)
        )
    assert "Overloaded" in str(caught.value)


def test_an_overloaded_stream_before_its_first_byte_fails_over_to_the_translation(
    gw: Running, fake_anthropic: FakeUpstream, fake_openai: FakeUpstream
) -> None:
    fake_anthropic.script(ok(stream_error_after=0))
    with client(gw.url).messages.stream(model="claude-or-gpt", max_tokens=5, messages=HI) as s:
        assert s.get_final_text() == "echo: hi there"
        assert s.response.headers["x-aigw-deployment"] == "o2"
    assert len(fake_anthropic.requests) == 1 and len(fake_openai.requests) == 1


def test_a_client_that_leaves_mid_stream_cancels_the_upstream_request(
    gw: Running, fake_anthropic: FakeUpstream
) -> None:
    fake_anthropic.script(ok(" ".join(["word"] * 50), chunk_delay=0.1))
    with httpx.stream(
        "POST",
        gw.url + "/v1/messages",
        json={"model": "claude", "max_tokens": 5, "messages": HI, "stream": True},
    ) as response:
        next(response.iter_raw())
    assert fake_anthropic.wait_for(lambda: fake_anthropic.cancelled == 1)


def test_count_tokens_natively_and_by_the_documented_estimate(
    gw: Running, fake_anthropic: FakeUpstream, fake_openai: FakeUpstream
) -> None:
    sdk = client(gw.url)
    system = "be brief"
    native = sdk.messages.count_tokens(model="claude", system=system, messages=HI)
    assert native.input_tokens == fake_token_count([system, HI, None])
    assert fake_anthropic.requests[-1]["path"] == "/v1/messages/count_tokens"
    assert fake_anthropic.requests[-1]["json"]["model"] == "claude-sonnet-4-6"
    estimated = sdk.messages.count_tokens(model="gpt", system=system, messages=HI)
    expected = estimate_input_tokens({"system": system, "messages": HI})
    assert estimated.input_tokens == expected and expected > 0
    assert fake_openai.requests == []  # OpenAI has no counting endpoint: nothing was sent


# ---------------------------------------------------------------- translated


def test_translated_create_with_tools_to_an_openai_model(
    gw: Running, fake_openai: FakeUpstream
) -> None:
    fake_openai.script(ok(tool_calls=[{"name": "Bash", "arguments": {"command": "ls"}}]))
    body = copy.deepcopy(CLAUDE_CODE_BODY)
    body["messages"] += [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Listing."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.py"}],
        },
    ]
    message = client(gw.url).messages.create(model="gpt", **body)
    assert message.stop_reason == "tool_use"
    tool_use = next(b for b in message.content if b.type == "tool_use")
    assert tool_use.name == "Bash" and tool_use.input == {"command": "ls"}
    assert message.usage.input_tokens == 11 and message.usage.output_tokens == 7
    sent = fake_openai.requests[-1]["json"]
    assert sent["messages"][0] == {
        "role": "system",
        "content": "You are Claude Code.\n\nRepo notes...",
    }
    assert sent["messages"][2]["tool_calls"][0]["function"] == {
        "name": "Bash",
        "arguments": '{"command":"ls"}',
    }
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "a.py"}
    assert sent["tools"][0]["function"]["name"] == "Bash" and sent["tool_choice"] == "auto"
    assert sent["user"] == "user_abc" and sent["max_tokens"] == 4096


def test_translated_stream_is_a_well_formed_messages_stream(
    gw: Running, fake_openai: FakeUpstream
) -> None:
    fake_openai.script(ok("one two three"), ok(tool_calls=[{"name": "ls", "arguments": {"p": 1}}]))
    finals = []
    for _ in range(2):
        with client(gw.url).messages.stream(model="gpt", max_tokens=50, messages=HI) as stream:
            kinds = [event.type for event in stream if event.type in RAW_EVENTS]
            finals.append(stream.get_final_message())
        assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
        assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1
    text, tool = finals
    assert text.content[0].text == "one two three" and text.stop_reason == "end_turn"  # type: ignore[union-attr]
    assert tool.content[0].input == {"p": 1} and tool.stop_reason == "tool_use"  # type: ignore[union-attr]
    assert tool.usage.output_tokens == 7 and tool.usage.input_tokens == 11


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("thinking", {"type": "enabled", "budget_tokens": 1024}, "thinking"),
        ("top_k", 5, "top_k"),
        ("tools", [{"type": "web_search_20250305", "name": "web_search"}], "web_search_20250305"),
        (
            "messages",
            [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}],
                },
                {"role": "user", "content": "go on"},
            ],
            "thinking",
        ),
    ],
)
def test_lossy_translations_are_refused_naming_the_feature_and_the_model(
    gw: Running, fake_openai: FakeUpstream, field: str, value: Any, named: str
) -> None:
    messages = value if field == "messages" else HI
    extra = {} if field == "messages" else {field: value}
    with pytest.raises(anthropic.BadRequestError) as refused:
        client(gw.url).messages.create(
            model="gpt", max_tokens=2000, messages=messages, extra_body=extra
        )
    message = refused.value.body["error"]["message"]  # type: ignore[index]
    assert named in message and "'gpt'" in message and "OpenAI" in message
    assert fake_openai.requests == []


# ---------------------------------------------------------------- cache and metrics


def test_exact_cache_and_metrics_label_the_route(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": MODELS,
        "cache": {"enabled": True, "ttl_s": 60},
    }
    with serve(raw) as running:
        sdk = client(running.url)
        for stream in (False, True):
            answers = []
            for _ in range(2):
                response = sdk.messages.with_raw_response.create(
                    model="claude",
                    max_tokens=20,
                    messages=HI,
                    stream=stream,
                    extra_body={"temperature": 0},
                )
                answers.append((response.headers["x-cache"], response.http_response.read()))
            assert [outcome for outcome, _ in answers] == ["miss", "hit"]
            assert answers[0][1] == answers[1][1]
        assert len(fake_anthropic.requests) == 2
        # Another beta is another answer: anthropic-beta is part of the key.
        beta = sdk.messages.with_raw_response.create(
            model="claude",
            max_tokens=20,
            messages=HI,
            extra_body={"temperature": 0},
            extra_headers={"anthropic-beta": "x"},
        )
        assert beta.headers["x-cache"] == "miss"
        metrics = httpx.get(running.url + "/metrics").text
    assert 'endpoint="/v1/messages"' in metrics and 'model="claude"' in metrics


def test_usage_of_a_translated_stream_that_reports_none_stays_unknown() -> None:
    """No usage from the upstream is not zero usage: governance then bills the reservation."""
    from gateway_app.protocols.anthropic_messages.stream import ChatToMessagesStream
    from gateway_app.providers.base import StreamState

    class Silent:
        state = StreamState()

        def feed(self, event: bytes | None, data: bytes) -> list[bytes]:
            return [b"data: " + data + b"\n\n"]

        def done(self) -> bool:
            return True

        def finish(self) -> list[bytes]:
            return [b"data: [DONE]\n\n"]

    translator = ChatToMessagesStream(Silent(), "msg_1", "gpt")
    chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
    frames = translator.feed(None, orjson.dumps(chunk)) + translator.finish()
    assert frames[-1].startswith(b"event: message_stop")
    assert translator.state.usage is None
