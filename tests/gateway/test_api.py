"""The unified API through the official openai SDK: translation both ways, streams, ids, health."""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest

from tests.fakes import FakeUpstream, ok
from tests.gateway.conftest import Running

USER = [{"role": "user", "content": "hello there"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def _get(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_openai_passthrough_non_stream(standard: Running, fake_openai: FakeUpstream) -> None:
    raw = standard.client().chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "developer", "content": "be brief"}, *USER],
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=50,
        stop=["END"],
        seed=3,
        user="u-1",
        metadata={"team": "x"},
        response_format={"type": "json_object"},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.usage.prompt_tokens == 11
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-aigw-deployment"] == "openai/gpt-4o-mini"
    sent = fake_openai.requests[-1]
    assert sent["headers"]["Authorization"] == "Bearer sk-fake"
    assert sent["json"]["model"] == "gpt-4o-mini" and sent["json"]["seed"] == 3
    assert sent["json"]["messages"][0] == {"role": "developer", "content": "be brief"}


def test_request_id_is_echoed(standard: Running) -> None:
    raw = standard.client().chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=USER, extra_headers={"x-request-id": "my-trace-42"}
    )
    assert raw.headers["x-request-id"] == "my-trace-42"
    with pytest.raises(openai.BadRequestError) as raised:
        standard.client().chat.completions.create(
            model="nope", messages=USER, extra_headers={"x-request-id": "bad-42"}
        )
    assert raised.value.response.headers["x-request-id"] == "bad-42"


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet-4-6"])
def test_stream_with_and_without_usage(standard: Running, model: str) -> None:
    client = standard.client()
    chunks = list(
        client.chat.completions.create(
            model=model, messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 7
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"

    plain = list(client.chat.completions.create(model=model, messages=USER, stream=True))
    assert all(c.choices for c in plain) and all(c.usage is None for c in plain)


def test_openai_stream_always_asks_upstream_for_usage(
    standard: Running, fake_openai: FakeUpstream
) -> None:
    list(standard.client().chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))
    assert fake_openai.requests[-1]["json"]["stream_options"] == {"include_usage": True}


def test_anthropic_translation_request(standard: Running, fake_anthropic: FakeUpstream) -> None:
    completion = standard.client().chat.completions.create(
        model="claude-sonnet-4-6",
        messages=[
            {"role": "system", "content": "you are terse"},
            {"role": "developer", "content": "answer in French"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=False,
        stop="END",
        temperature=0.5,
        user="customer-9",
    )
    assert completion.choices[0].finish_reason == "stop"
    sent = fake_anthropic.requests[-1]
    body = sent["json"]
    assert sent["headers"]["x-api-key"] == "ak-fake" and sent["headers"]["anthropic-version"]
    assert body["system"] == [
        {"type": "text", "text": "you are terse"},
        {"type": "text", "text": "answer in French"},
    ]
    assert body["max_tokens"] == 1000  # deployment default; Anthropic requires it
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    image, url_image = body["messages"][0]["content"][1:]
    assert image["source"] == {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    assert url_image["source"] == {"type": "url", "url": "https://example.com/cat.png"}
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}
    ]
    assert body["tools"][0]["input_schema"]["properties"]["city"] == {"type": "string"}
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["stop_sequences"] == ["END"] and body["temperature"] == 0.5
    assert body["metadata"] == {"user_id": "customer-9"}


def test_anthropic_translation_response_tools_usage(
    standard: Running, fake_anthropic: FakeUpstream
) -> None:
    fake_anthropic.script(
        ok(
            content="",
            tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}],
            usage=(20, 5),
        )
    )
    completion = standard.client().chat.completions.create(
        model="claude-sonnet-4-6", messages=USER, tools=TOOLS, max_tokens=64
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.id == "toolu_fake0" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert completion.usage.prompt_tokens == 20 and completion.usage.completion_tokens == 5
    assert fake_anthropic.requests[-1]["json"]["max_tokens"] == 64


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("max_tokens", "length"), ("stop_sequence", "stop"), ("refusal", "content_filter")],
)
def test_anthropic_stop_reasons(
    standard: Running, fake_anthropic: FakeUpstream, stop_reason: str, finish: str
) -> None:
    fake_anthropic.script(ok(finish_reason=stop_reason), ok(finish_reason=stop_reason))
    client = standard.client()
    assert (
        client.chat.completions.create(model="claude-sonnet-4-6", messages=USER)
        .choices[0]
        .finish_reason
        == finish
    )
    chunks = list(
        client.chat.completions.create(model="claude-sonnet-4-6", messages=USER, stream=True)
    )
    assert chunks[-1].choices[0].finish_reason == finish


def test_anthropic_stream_tool_calls(standard: Running, fake_anthropic: FakeUpstream) -> None:
    fake_anthropic.script(
        ok(
            content="checking",
            tool_calls=[
                {"name": "get_weather", "arguments": {"city": "Rome"}},
                {"name": "get_weather", "arguments": {"city": "Bern"}},
            ],
        )
    )
    chunks = list(
        standard.client().chat.completions.create(
            model="claude-sonnet-4-6", messages=USER, tools=TOOLS, stream=True
        )
    )
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            entry["name"] += delta.function.name or ""
            entry["arguments"] += delta.function.arguments or ""
    assert {i: json.loads(c["arguments"])["city"] for i, c in calls.items()} == {
        0: "Rome",
        1: "Bern",
    }
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_anthropic_json_schema_response_format(
    standard: Running, fake_anthropic: FakeUpstream
) -> None:
    fake_anthropic.script(
        ok(content="", tool_calls=[{"name": "json_response", "arguments": {"answer": 42}}])
    )
    completion = standard.client().chat.completions.create(
        model="claude-sonnet-4-6",
        messages=USER,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}},
        },
    )
    assert json.loads(completion.choices[0].message.content) == {"answer": 42}
    assert completion.choices[0].finish_reason == "stop"
    assert fake_anthropic.requests[-1]["json"]["tool_choice"] == {
        "type": "tool",
        "name": "json_response",
    }


def test_upstream_errors_raise_matching_sdk_exceptions(
    standard: Running, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    from tests.fakes import error

    client = standard.client()
    fake_openai.script(error(400, "bad thing"))
    with pytest.raises(openai.BadRequestError, match="bad thing"):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    fake_anthropic.script(error(400, "bad anthropic thing"))
    with pytest.raises(openai.BadRequestError, match="bad anthropic thing"):
        client.chat.completions.create(model="claude-sonnet-4-6", messages=USER)


def test_models_embeddings_health(standard: Running, fake_openai: FakeUpstream) -> None:
    client = standard.client()
    assert {m.id for m in client.models.list()} == {
        "gpt-4o-mini",
        "claude-sonnet-4-6",
        "text-embedding-3-small",
    }
    embedding = client.embeddings.create(model="text-embedding-3-small", input="some text")
    assert len(embedding.data[0].embedding) == 3
    assert fake_openai.requests[-1]["json"]["model"] == "text-embedding-3-small"
    with pytest.raises(openai.BadRequestError, match="embeddings"):
        client.embeddings.create(model="claude-sonnet-4-6", input="x")
    status, _, body = _get(standard.url + "/health/live")
    assert status == 200 and body["status"] == "live"
    status, headers, body = _get(standard.url + "/health/ready")
    assert (
        status == 200
        and body["status"] == "ready"
        and "x-request-id" in {k.lower() for k in headers}
    )


def test_models_retrieve_answers_one_model_or_404(standard: Running) -> None:
    client = standard.client()
    model = client.models.retrieve("gpt-4o-mini")
    assert model.id == "gpt-4o-mini" and model.object == "model"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("no-such-model")
    assert missing.value.body["code"] == "model_not_found"
