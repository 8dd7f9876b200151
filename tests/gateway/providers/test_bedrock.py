"""Bedrock Converse: fidelity of the fake (boto3), translation, streams, errors, SigV4, failover."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.exceptions
import openai
import orjson
import pytest
from botocore.config import Config

from gateway_app.errors import GatewayError
from gateway_app.providers.bedrock.stream import BedrockStream, EventStreamDecoder
from tests.fakes import FakeUpstream, error, ok
from tests.fakes.bedrock import FakeBedrock, event, exception
from tests.gateway.conftest import Running, serve
from tests.gateway.providers.conftest import AWS_KEY, AWS_SECRET

MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()


def runtime(fake: FakeBedrock, secret: str = AWS_SECRET) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=fake.url,
        region_name="us-east-1",
        aws_access_key_id=AWS_KEY,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )


# ------------------------------------------------------------ fake fidelity (boto3)


def test_boto3_parses_converse_from_the_fake(fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.script(
        ok(), ok(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    )
    client = runtime(fake_bedrock)
    text = client.converse(
        modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    assert text["output"]["message"]["content"] == [{"text": "echo: hi"}]
    assert text["stopReason"] == "end_turn" and text["usage"]["totalTokens"] == 18
    tools = client.converse(
        modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "weather?"}]}]
    )
    use = tools["output"]["message"]["content"][0]["toolUse"]
    assert use["name"] == "get_weather" and use["input"] == {"city": "Oslo"}
    assert tools["stopReason"] == "tool_use"
    # boto3 encodes the ':' of the model id; the fake saw the encoded path and verified it.
    assert (
        fake_bedrock.requests[0]["path"]
        == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    )


def test_boto3_parses_converse_stream_from_the_fake(fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.script(ok("hello world"), ok(tool_calls=[{"name": "f", "arguments": {"a": 1}}]))
    client = runtime(fake_bedrock)
    events = list(
        client.converse_stream(
            modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )["stream"]
    )
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    assert (
        "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
        == "hello world"
    )
    assert events[-1]["metadata"]["usage"] == {
        "inputTokens": 11,
        "outputTokens": 7,
        "totalTokens": 18,
    }
    tool_events = list(
        client.converse_stream(
            modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "x"}]}]
        )["stream"]
    )
    start = next(e["contentBlockStart"] for e in tool_events if "contentBlockStart" in e)
    assert start["start"]["toolUse"]["name"] == "f"


def test_boto3_sees_the_fakes_errors_and_in_stream_exceptions(fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.script(error(429), ok(stream_error_after=2))
    client = runtime(fake_bedrock)
    with pytest.raises(client.exceptions.ThrottlingException):
        client.converse(modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "a"}]}])
    stream = client.converse_stream(
        modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "a"}]}]
    )["stream"]
    with pytest.raises(botocore.exceptions.EventStreamError, match="throttlingException"):
        list(stream)


def test_fake_rejects_a_wrong_signature(fake_bedrock: FakeBedrock) -> None:
    client = runtime(fake_bedrock, secret="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.converse(modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "a"}]}])
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert fake_bedrock.rejected == ["InvalidSignatureException"]


# ------------------------------------------------------------ through the gateway


def bedrock_config(fake: FakeBedrock, **extra_models: Any) -> dict[str, Any]:
    return {
        "providers": {
            "aws": {"type": "bedrock", "base_url": fake.url, "region": "us-east-1"},
        },
        "models": {
            "claude-haiku": {"deployments": [{"provider": "aws", "model": MODEL_ID}]},
            **extra_models,
        },
    }


@contextmanager
def bedrock_gateway(fake: FakeBedrock) -> Iterator[Running]:
    with serve(bedrock_config(fake)) as running:
        yield running


def test_text_request_and_response_translation(fake_bedrock: FakeBedrock, aws_env: None) -> None:
    with bedrock_gateway(fake_bedrock) as gw:
        reply = gw.client().chat.completions.create(
            model="claude-haiku",
            messages=[
                {"role": "system", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": PNG}},
                    ],
                },
            ],
            max_tokens=50,
            temperature=0.2,
            top_p=0.9,
            stop=["END"],
        )
    assert reply.choices[0].message.content == "echo: look"
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (11, 7)
    sent = fake_bedrock.requests[0]
    assert sent["path"].endswith("/converse") and sent["model"] == MODEL_ID
    assert sent["json"]["system"] == [{"text": "be brief"}]
    assert sent["json"]["inferenceConfig"] == {
        "maxTokens": 50,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
    }
    image = sent["json"]["messages"][0]["content"][1]["image"]
    assert (
        image["format"] == "png" and base64.b64decode(image["source"]["bytes"]) == b"\x89PNG fake"
    )
    assert fake_bedrock.rejected == []


def test_tools_translate_both_ways(fake_bedrock: FakeBedrock, aws_env: None) -> None:
    fake_bedrock.script(ok(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    with bedrock_gateway(fake_bedrock) as gw:
        client = gw.client()
        first = client.chat.completions.create(
            model="claude-haiku",
            messages=[{"role": "user", "content": "weather in Oslo?"}],
            tools=tools,
            tool_choice="required",
        )
        call = first.choices[0].message.tool_calls[0]
        assert first.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "get_weather" and orjson.loads(call.function.arguments) == {
            "city": "Oslo"
        }
        client.chat.completions.create(
            model="claude-haiku",
            messages=[
                {"role": "user", "content": "weather in Oslo?"},
                {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
            ],
            tools=tools,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    first_sent, second_sent = (r["json"] for r in fake_bedrock.requests)
    assert first_sent["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "weather",
                    "inputSchema": {"json": tools[0]["function"]["parameters"]},
                }
            }
        ],
        "toolChoice": {"any": {}},
    }
    assert second_sent["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}
    assert second_sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "toolUse": {
                        "toolUseId": call.id,
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    }
                }
            ],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": call.id, "content": [{"text": "sunny"}]}}],
        },
    ]


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_stop_reasons(
    fake_bedrock: FakeBedrock, aws_env: None, stop_reason: str, finish: str
) -> None:
    fake_bedrock.script(ok("x", finish_reason=stop_reason))
    with bedrock_gateway(fake_bedrock) as gw:
        reply = gw.client().chat.completions.create(
            model="claude-haiku", messages=[{"role": "user", "content": "a"}]
        )
    assert reply.choices[0].finish_reason == finish


def test_remote_image_urls_are_a_400_naming_the_field(
    fake_bedrock: FakeBedrock, aws_env: None
) -> None:
    with bedrock_gateway(fake_bedrock) as gw, pytest.raises(openai.BadRequestError) as caught:
        gw.client().chat.completions.create(
            model="claude-haiku",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                }
            ],
        )
    assert caught.value.body["param"] == "messages[0].content[0].image_url.url"
    assert fake_bedrock.requests == []


def test_stream_maps_events_to_chunks_with_usage(fake_bedrock: FakeBedrock, aws_env: None) -> None:
    fake_bedrock.script(ok("hello streaming world"))
    with bedrock_gateway(fake_bedrock) as gw:
        chunks = list(
            gw.client().chat.completions.create(
                model="claude-haiku",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert fake_bedrock.requests[0]["path"].endswith("/converse-stream")
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "hello streaming world"
    )
    assert [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 18
    assert len({c.id for c in chunks}) == 1


def test_stream_tool_calls(fake_bedrock: FakeBedrock, aws_env: None) -> None:
    fake_bedrock.script(
        ok(tool_calls=[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {"y": 2}}])
    )
    with bedrock_gateway(fake_bedrock) as gw:
        chunks = list(
            gw.client().chat.completions.create(
                model="claude-haiku", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            entry["name"] += (delta.function.name or "") if delta.function else ""
            entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
    assert {i: (c["name"], orjson.loads(c["arguments"])) for i, c in calls.items()} == {
        0: ("a", {"x": 1}),
        1: ("b", {"y": 2}),
    }
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage is None  # not asked for


def test_stream_decoder_handles_split_frames_and_exceptions() -> None:
    wire = event("messageStart", {"role": "assistant"}) + event(
        "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}
    )
    decoder = EventStreamDecoder()
    translator = BedrockStream("m", include_usage=False)
    events = decoder.feed(wire[:7]) + decoder.feed(wire[7:30]) + decoder.feed(wire[30:])
    assert [kind for kind, _ in events] == [b"messageStart", b"contentBlockDelta"]
    frames = [f for kind, data in events for f in translator.feed(kind, data)]
    assert b'"content":"hi"' in frames[1]
    ((kind, data),) = decoder.feed(exception("validationException", "bad input"))
    with pytest.raises(GatewayError) as caught:
        translator.feed(kind, data)
    assert caught.value.status == 400 and "bad input" in caught.value.message


@pytest.mark.parametrize(
    ("status", "exception_name", "sdk_error"),
    [
        (400, "ValidationException", openai.BadRequestError),
        # The gateway's own credential or role: its 502, naming the provider's code.
        (403, "ExpiredTokenException", openai.InternalServerError),
        (403, "AccessDeniedException", openai.InternalServerError),
        (429, "ThrottlingException", openai.RateLimitError),
    ],
)
def test_errors_map_to_openai_statuses(
    fake_bedrock: FakeBedrock, aws_env: None, status: int, exception_name: str, sdk_error: type
) -> None:
    fake_bedrock.script(*[error(status, "nope", error_type=exception_name)] * 3)
    with bedrock_gateway(fake_bedrock) as gw, pytest.raises(sdk_error) as caught:
        gw.client().chat.completions.create(
            model="claude-haiku", messages=[{"role": "user", "content": "a"}]
        )
    if status == 403:
        assert caught.value.body["code"] == "upstream_auth_failed"
        assert f"(HTTP 403 {exception_name})" in caught.value.body["message"]
    else:
        assert caught.value.body["code"] == exception_name
    retried = status == 429
    assert len(fake_bedrock.requests) == (3 if retried else 1)


def test_throttling_is_retried_then_succeeds(fake_bedrock: FakeBedrock, aws_env: None) -> None:
    fake_bedrock.script(error(429))
    with bedrock_gateway(fake_bedrock) as gw:
        reply = gw.client().chat.completions.create(
            model="claude-haiku", messages=[{"role": "user", "content": "a"}]
        )
    assert len(gw.sleeps) == 1  # one backoff before the retry
    assert reply.choices[0].message.content == "echo: a"
    assert len(fake_bedrock.requests) == 2


# ------------------------------------------------------------ SigV4 credentials


def test_requests_are_signed_with_session_token_from_the_environment(
    fake_bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-1")
    with bedrock_gateway(fake_bedrock) as gw:
        gw.client().chat.completions.create(
            model="claude-haiku", messages=[{"role": "user", "content": "a"}]
        )
        list(
            gw.client().chat.completions.create(
                model="claude-haiku", messages=[{"role": "user", "content": "a"}], stream=True
            )
        )
    assert fake_bedrock.rejected == []
    for sent in fake_bedrock.requests:
        headers = {k.lower(): v for k, v in sent["headers"].items()}
        assert headers["x-amz-security-token"] == "session-token-1"
        assert "x-amz-security-token" in headers["authorization"]


def test_a_wrong_secret_is_rejected_by_the_fake_and_reported_as_the_gateways_502(
    fake_bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with bedrock_gateway(fake_bedrock) as gw, pytest.raises(openai.InternalServerError) as caught:
        gw.client().chat.completions.create(
            model="claude-haiku", messages=[{"role": "user", "content": "a"}]
        )
    assert fake_bedrock.rejected == ["InvalidSignatureException"]
    assert caught.value.code == "upstream_auth_failed"
    assert "InvalidSignatureException" in caught.value.message


def test_no_credentials_fail_with_the_variables_to_set(fake_bedrock: FakeBedrock) -> None:
    with bedrock_gateway(fake_bedrock) as gw:
        with pytest.raises(openai.AuthenticationError) as caught:
            gw.client().chat.completions.create(
                model="claude-haiku", messages=[{"role": "user", "content": "a"}]
            )
        ready = gw.client()._client.get(gw.url + "/health/ready").json()
    assert "AWS_ACCESS_KEY_ID" in caught.value.message
    assert fake_bedrock.requests == []
    assert ready["providers_missing_credentials"] == ["aws"]
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" in " ".join(ready["providers"]["aws"]["set"])


# ------------------------------------------------------------ failover across clouds


def test_bedrock_throttling_fails_over_to_the_next_deployment(
    fake_bedrock: FakeBedrock, aws_env: None
) -> None:
    fallback = FakeUpstream("openai").start()
    try:
        fake_bedrock.script(*[error(429)] * 3)
        config = bedrock_config(fake_bedrock)
        config["providers"]["openai"] = {"type": "openai", "api_key": "k", "base_url": fallback.url}
        config["models"]["claude-haiku"]["deployments"].append(
            {"provider": "openai", "model": "gpt-4o-mini"}
        )
        with serve(config) as gw:
            reply = gw.client().chat.completions.create(
                model="claude-haiku", messages=[{"role": "user", "content": "a"}]
            )
        assert reply.choices[0].message.content == "echo: a"
        assert len(fake_bedrock.requests) == 3 and len(fallback.requests) == 1
        assert len(gw.sleeps) == 2  # two retries of Bedrock, then straight to the fallback
    finally:
        fallback.stop()


def test_irsa_web_identity_keys_are_fetched_once_and_sign_every_request(
    fake_bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("projected-service-account-jwt")
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/aigw")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", fake_bedrock.url)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with bedrock_gateway(fake_bedrock) as gw:
        for _ in range(3):
            gw.client().chat.completions.create(
                model="claude-haiku", messages=[{"role": "user", "content": "a"}]
            )
    assert fake_bedrock.web_identity_tokens == ["projected-service-account-jwt"]
    assert fake_bedrock.rejected == []
    for sent in fake_bedrock.requests:
        headers = {k.lower(): v for k, v in sent["headers"].items()}
        assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIAFAKE1/")
        assert headers["x-amz-security-token"] == "sts-session-1"


def test_a_deployment_without_region_fails_over_and_says_what_to_set(
    fake_bedrock: FakeBedrock, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    fallback = FakeUpstream("openai").start()
    try:
        config = bedrock_config(fake_bedrock)
        del config["providers"]["aws"]["region"]
        with serve(config) as gw, pytest.raises(openai.APIStatusError) as caught:
            gw.client().chat.completions.create(
                model="claude-haiku", messages=[{"role": "user", "content": "a"}]
            )
        assert "set `region`" in caught.value.message
        config["providers"]["openai"] = {"type": "openai", "api_key": "k", "base_url": fallback.url}
        config["models"]["claude-haiku"]["deployments"].append(
            {"provider": "openai", "model": "gpt-4o-mini"}
        )
        with serve(config) as gw:
            reply = gw.client().chat.completions.create(
                model="claude-haiku", messages=[{"role": "user", "content": "a"}]
            )
        assert reply.choices[0].message.content == "echo: a"
        assert fake_bedrock.requests == []
    finally:
        fallback.stop()


def test_inference_profile_arns_are_one_encoded_path_segment_and_signed_as_sent(
    fake_bedrock: FakeBedrock, aws_env: None
) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    config = bedrock_config(fake_bedrock)
    config["models"]["claude-haiku"]["deployments"][0]["model"] = arn
    with serve(config) as gw:
        gw.client().chat.completions.create(
            model="claude-haiku", messages=[{"role": "user", "content": "a"}]
        )
    assert fake_bedrock.rejected == []
    assert fake_bedrock.requests[0]["model"] == arn
    assert "inference-profile%2Fus.anthropic" in fake_bedrock.requests[0]["path"]


def test_throttling_inside_the_stream_before_any_event_is_retried(
    fake_bedrock: FakeBedrock, aws_env: None
) -> None:
    fake_bedrock.script(ok(stream_error_after=0))
    with bedrock_gateway(fake_bedrock) as gw:
        chunks = list(
            gw.client().chat.completions.create(
                model="claude-haiku", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        assert len(fake_bedrock.requests) == 2  # the in-stream 429 came first: retried
        fake_bedrock.script(ok(stream_error_after=3, chunk_delay=0.05))
        with pytest.raises(openai.APIError, match="Bedrock ThrottlingException"):
            # Once events reached the client, a later exception ends the stream with an error.
            list(
                gw.client().chat.completions.create(
                    model="claude-haiku",
                    messages=[{"role": "user", "content": "a longer message"}],
                    stream=True,
                )
            )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hi"
