"""Vertex AI Gemini: fake fidelity (google-genai), translation, streams, errors, ADC tokens."""

from __future__ import annotations

import base64
import time
from typing import Any

import google.oauth2.credentials
import openai
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from gateway_app.credentials import cache
from tests.fakes import error, ok
from tests.fakes.vertex import FakeVertex
from tests.gateway.conftest import serve

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()


def genai_client(fake: FakeVertex) -> genai.Client:
    return genai.Client(
        vertexai=True,
        project="proj-1",
        location="us-central1",
        credentials=google.oauth2.credentials.Credentials(token="test-token"),
        http_options=types.HttpOptions(base_url=fake.url, api_version="v1"),
    )


# ------------------------------------------------------------ fake fidelity (google-genai)


def test_google_genai_parses_the_fakes_responses(fake_vertex: FakeVertex) -> None:
    fake_vertex.script(
        ok(), ok(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    )
    client = genai_client(fake_vertex)
    reply = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert reply.text == "echo: hi"
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.usage_metadata.total_token_count == 18
    calls = client.models.generate_content(
        model="gemini-2.5-flash", contents="weather?"
    ).function_calls
    assert calls[0].name == "get_weather" and calls[0].args == {"city": "Oslo"}
    sent = fake_vertex.requests[0]
    assert (sent["project"], sent["location"], sent["model"], sent["method"]) == (
        "proj-1",
        "us-central1",
        "gemini-2.5-flash",
        "generateContent",
    )


def test_google_genai_parses_the_fakes_streams_blocks_and_errors(fake_vertex: FakeVertex) -> None:
    fake_vertex.script(
        ok("streamed text"), error(200, error_type="prompt_blocked"), error(429, "quota")
    )
    client = genai_client(fake_vertex)
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="x"))
    assert "".join(c.text or "" for c in chunks) == "streamed text"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert fake_vertex.requests[0]["query"] == {"alt": "sse"}
    blocked = client.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"


# ------------------------------------------------------------ through the gateway


def vertex_config(fake: FakeVertex, **provider: Any) -> dict[str, Any]:
    return {
        "providers": {
            "gcp": {"type": "vertex", "base_url": fake.url, "project": "proj-1", **provider}
        },
        "models": {
            "gemini": {
                "deployments": [
                    {
                        "provider": "gcp",
                        "model": "gemini-2.5-flash",
                        "params": {"location": "europe-west4"},
                    }
                ]
            }
        },
    }


def test_text_image_and_config_translation(fake_vertex: FakeVertex, google_adc: None) -> None:
    with serve(vertex_config(fake_vertex)) as gw:
        reply = gw.client().chat.completions.create(
            model="gemini",
            messages=[
                {"role": "system", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": PNG}},
                        {"type": "image_url", "image_url": {"url": "gs://bucket/cat.png"}},
                    ],
                },
            ],
            max_completion_tokens=64,
            temperature=0.3,
            top_p=0.8,
            stop="END",
            seed=5,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": {"type": "object"}},
            },
        )
    assert reply.choices[0].message.content == "echo: look"
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (11, 7)
    sent = fake_vertex.requests[0]
    assert (sent["project"], sent["location"], sent["method"]) == (
        "proj-1",
        "europe-west4",
        "generateContent",
    )
    body = sent["json"]
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "look"},
                {"inlineData": {"mimeType": "image/png", "data": PNG.split(",", 1)[1]}},
                {"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/cat.png"}},
            ],
        }
    ]
    assert body["generationConfig"] == {
        "maxOutputTokens": 64,
        "temperature": 0.3,
        "topP": 0.8,
        "seed": 5,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
    }


def test_tools_translate_both_ways(fake_vertex: FakeVertex, google_adc: None) -> None:
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "additionalProperties": False,
    }
    tools = [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "w", "parameters": parameters},
        }
    ]
    fake_vertex.script(ok(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
    with serve(vertex_config(fake_vertex)) as gw:
        client = gw.client()
        first = client.chat.completions.create(
            model="gemini",
            messages=[{"role": "user", "content": "weather?"}],
            tools=tools,
            tool_choice="required",
        )
        call = first.choices[0].message.tool_calls[0]
        client.chat.completions.create(
            model="gemini",
            messages=[
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "clear"}'},
                {"role": "tool", "tool_call_id": call.id, "content": "plain text"},
            ],
            tools=tools,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and orjson.loads(call.function.arguments) == {
        "city": "Oslo"
    }
    assert call.id.startswith("call_")
    first_sent, second_sent = (r["json"] for r in fake_vertex.requests)
    assert first_sent["tools"] == [
        {
            "functionDeclarations": [
                {"name": "get_weather", "description": "w", "parametersJsonSchema": parameters}
            ]
        }
    ]
    assert first_sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert second_sent["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert second_sent["contents"][1:] == [
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"sky": "clear"},
                    }
                },
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"content": "plain text"},
                    }
                },
            ],
        },
    ]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("STOP", "stop"),
    ],
)
def test_finish_reasons(
    fake_vertex: FakeVertex, google_adc: None, reason: str, finish: str
) -> None:
    fake_vertex.script(ok("x", finish_reason=reason))
    with serve(vertex_config(fake_vertex)) as gw:
        reply = gw.client().chat.completions.create(
            model="gemini", messages=[{"role": "user", "content": "a"}]
        )
    assert reply.choices[0].finish_reason == finish


def test_blocked_prompt_is_a_content_filter_finish(
    fake_vertex: FakeVertex, google_adc: None
) -> None:
    fake_vertex.script(
        error(200, error_type="prompt_blocked"), error(200, error_type="prompt_blocked")
    )
    with serve(vertex_config(fake_vertex)) as gw:
        reply = gw.client().chat.completions.create(
            model="gemini", messages=[{"role": "user", "content": "a"}]
        )
        chunks = list(
            gw.client().chat.completions.create(
                model="gemini", messages=[{"role": "user", "content": "a"}], stream=True
            )
        )
    assert (
        reply.choices[0].finish_reason == "content_filter"
        and reply.choices[0].message.content == ""
    )
    assert chunks[-1].choices[0].finish_reason == "content_filter"


def test_several_candidates_become_choices(fake_vertex: FakeVertex, google_adc: None) -> None:
    with serve(vertex_config(fake_vertex)) as gw:
        reply = gw.client().chat.completions.create(
            model="gemini", messages=[{"role": "user", "content": "a"}], n=2
        )
    assert [c.message.content for c in reply.choices] == ["echo: a", "echo: a #1"]
    assert fake_vertex.requests[0]["json"]["generationConfig"]["candidateCount"] == 2


def test_stream_maps_chunks_with_usage(fake_vertex: FakeVertex, google_adc: None) -> None:
    with serve(vertex_config(fake_vertex)) as gw:
        chunks = list(
            gw.client().chat.completions.create(
                model="gemini",
                messages=[{"role": "user", "content": "stream this please"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    sent = fake_vertex.requests[0]
    assert sent["method"] == "streamGenerateContent" and sent["query"] == {"alt": "sse"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "echo: stream this please"
    )
    assert [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 18


def test_stream_function_calls(fake_vertex: FakeVertex, google_adc: None) -> None:
    fake_vertex.script(
        ok(tool_calls=[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}])
    )
    with serve(vertex_config(fake_vertex)) as gw:
        chunks = list(
            gw.client().chat.completions.create(
                model="gemini", messages=[{"role": "user", "content": "a"}], stream=True
            )
        )
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert [(d.index, d.function.name, orjson.loads(d.function.arguments)) for d in deltas] == [
        (0, "a", {"x": 1}),
        (1, "b", {}),
    ]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_stream_cut_before_the_finish_is_an_error(
    fake_vertex: FakeVertex, google_adc: None
) -> None:
    fake_vertex.script(ok("long enough text to split", drop_after_events=2))
    with serve(vertex_config(fake_vertex)) as gw, pytest.raises(openai.APIError):
        list(
            gw.client().chat.completions.create(
                model="gemini", messages=[{"role": "user", "content": "a"}], stream=True
            )
        )


@pytest.mark.parametrize(
    ("status", "sdk_error", "code"),
    [
        (400, openai.BadRequestError, "INVALID_ARGUMENT"),
        (403, openai.InternalServerError, "upstream_auth_failed"),  # the gateway's account
        (429, openai.RateLimitError, "RESOURCE_EXHAUSTED"),
    ],
)
def test_errors_map_to_openai_statuses(
    fake_vertex: FakeVertex, google_adc: None, status: int, sdk_error: type, code: str
) -> None:
    fake_vertex.script(*[error(status, "nope")] * 3)
    with serve(vertex_config(fake_vertex)) as gw, pytest.raises(sdk_error) as caught:
        gw.client().chat.completions.create(
            model="gemini", messages=[{"role": "user", "content": "a"}]
        )
    assert caught.value.code == code
    assert len(fake_vertex.requests) == (3 if status == 429 else 1)


def test_an_invalid_token_is_the_gateways_502(fake_vertex: FakeVertex, google_adc: None) -> None:
    fake_vertex.issued.append("ignored")  # the fake rejects tokens it did not issue
    with serve(vertex_config(fake_vertex)) as gw:
        gw.client().chat.completions.create(
            model="gemini", messages=[{"role": "user", "content": "a"}]
        )
        fake_vertex.issued.clear()  # every issued token is now unknown: revoked
        with pytest.raises(openai.InternalServerError) as caught:
            gw.client().chat.completions.create(
                model="gemini", messages=[{"role": "user", "content": "a"}]
            )
    assert caught.value.code == "upstream_auth_failed"
    assert "(HTTP 401 UNAUTHENTICATED)" in caught.value.message


# ------------------------------------------------------------ ADC tokens


def test_adc_token_is_fetched_once_and_refreshed_before_expiry(
    fake_vertex: FakeVertex, google_adc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [time.time()]
    monkeypatch.setattr(cache, "now", lambda: clock[0])
    fake_vertex.token_lifetime_s = 3600

    def ask() -> None:
        gw.client().chat.completions.create(
            model="gemini", messages=[{"role": "user", "content": "a"}]
        )

    with serve(vertex_config(fake_vertex)) as gw:
        ask()
        ask()
        assert len(fake_vertex.token_requests) == 1
        # google-auth stamps expiry with the real clock: move ours to 200 s before it.
        expiry = cache._REGISTRY[("google-adc",)]._expires_at
        assert expiry is not None
        clock[0] = expiry - 200
        ask()  # the current token serves while the next is fetched in the background
        assert fake_vertex.wait_for(lambda: len(fake_vertex.issued) == 2)
        ask()
    assert [r["headers"]["Authorization"] for r in fake_vertex.requests] == [
        "Bearer ya29.fake-1",
        "Bearer ya29.fake-1",
        "Bearer ya29.fake-1",
        "Bearer ya29.fake-2",
    ]
    assert (
        fake_vertex.token_requests[0]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    )


def test_missing_adc_is_reported_by_readiness_and_requests(
    fake_vertex: FakeVertex, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(vertex_config(fake_vertex)) as gw:
        ready = gw.client()._client.get(gw.url + "/health/ready").json()
        with pytest.raises(openai.AuthenticationError) as caught:
            gw.client().chat.completions.create(
                model="gemini", messages=[{"role": "user", "content": "a"}]
            )
    assert ready["providers_missing_credentials"] == ["gcp"]
    assert ready["providers"]["gcp"]["set"][0] == "GOOGLE_APPLICATION_CREDENTIALS"
    assert "GOOGLE_APPLICATION_CREDENTIALS" in caught.value.message
    assert fake_vertex.requests == []
