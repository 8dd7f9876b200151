"""The Messages API to Claude on Vertex and Bedrock (native), to Gemini and Azure (translated).

The fakes' Claude endpoints are first checked with the anthropic SDK's own Vertex
and Bedrock clients (AnthropicVertex: rawPredict/streamRawPredict,
count-tokens:rawPredict; AnthropicBedrock: InvokeModel and
InvokeModelWithResponseStream), then the gateway is driven with the plain
``anthropic`` SDK, as Claude Code drives it. Wire formats:
https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude,
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html.
"""

from __future__ import annotations

from typing import Any

import anthropic
import orjson
import pytest

from tests.fakes import ok
from tests.fakes.azure import FakeAzureOpenAI
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.fakes import fake_token_count
from tests.fakes.vertex import FakeVertex
from tests.gateway.conftest import serve
from tests.gateway.providers.conftest import AWS_KEY, AWS_SECRET
from tests.gateway.providers.test_azure_openai import azure_config
from tests.gateway.providers.test_bedrock import runtime

HI = [{"role": "user", "content": "hi there"}]
BETA = "interleaved-thinking-2025-05-14"


def through(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=url, api_key="client-key", max_retries=0, default_headers={"anthropic-beta": BETA}
    )


# ------------------------------------------------------------------------- Vertex


def vertex_sdk(fake: FakeVertex) -> anthropic.AnthropicVertex:
    return anthropic.AnthropicVertex(
        project_id="proj-1",
        region="us-east5",
        base_url=fake.url + "/v1",
        access_token="test-token",
        max_retries=0,
    )


def test_the_vertex_fake_serves_claude_to_the_sdks_vertex_client(fake_vertex: FakeVertex) -> None:
    sdk = vertex_sdk(fake_vertex)
    message = sdk.messages.create(model="claude-sonnet-4-6", max_tokens=20, messages=HI)
    assert message.content[0].text == "echo: hi there"  # type: ignore[union-attr]
    fake_vertex.script(ok(tool_calls=[{"name": "ls", "arguments": {"p": "/"}}]))
    with sdk.messages.stream(model="claude-sonnet-4-6", max_tokens=20, messages=HI) as stream:
        assert stream.get_final_message().content[1].input == {"p": "/"}  # type: ignore[union-attr]
    counted = sdk.messages.count_tokens(model="claude-sonnet-4-6", messages=HI)
    assert counted.input_tokens == fake_token_count([None, HI, None])
    assert [r["method"] for r in fake_vertex.requests] == [
        "rawPredict",
        "streamRawPredict",
        "rawPredict",
    ]
    assert fake_vertex.requests[2]["model"] == "count-tokens"


def vertex_models(fake: FakeVertex) -> dict[str, Any]:
    location = {"location": "us-east5"}
    return {
        "providers": {"gcp": {"type": "vertex", "base_url": fake.url, "project": "proj-1"}},
        "models": {
            "claude": {
                "deployments": [
                    {"provider": "gcp", "model": "claude-sonnet-4-6", "params": location}
                ]
            },
            "gemini": {
                "deployments": [
                    {"provider": "gcp", "model": "gemini-2.5-flash", "params": location}
                ]
            },
        },
    }


def test_claude_on_vertex_is_served_natively(fake_vertex: FakeVertex, google_adc: None) -> None:
    body = {
        "max_tokens": 20,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": HI,
    }
    with serve(vertex_models(fake_vertex)) as gw:
        sdk = through(gw.url)
        message = sdk.messages.create(model="claude", **body)
        with sdk.messages.stream(model="claude", **body) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_message()
        counted = sdk.messages.count_tokens(model="claude", messages=HI)
    assert message.content[0].text == "echo: hi there"  # type: ignore[union-attr]
    assert final.content[0].text == "echo: hi there"  # type: ignore[union-attr]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    create, streamed, count = fake_vertex.requests
    assert (create["model"], create["method"]) == ("claude-sonnet-4-6", "rawPredict")
    assert streamed["method"] == "streamRawPredict"
    # The client's body, the model moved to the URL and Vertex's API version added.
    assert create["json"] == {**body, "anthropic_version": "vertex-2023-10-16"}
    assert create["headers"]["anthropic-beta"] == BETA
    assert create["headers"]["Authorization"].startswith("Bearer ")
    assert (count["model"], count["json"]["model"]) == ("count-tokens", "claude-sonnet-4-6")
    assert counted.input_tokens == fake_token_count([None, HI, None])


def test_gemini_on_vertex_is_translated_and_refuses_thinking(
    fake_vertex: FakeVertex, google_adc: None
) -> None:
    with serve(vertex_models(fake_vertex)) as gw:
        sdk = through(gw.url)
        message = sdk.messages.create(model="gemini", max_tokens=20, messages=HI)
        with pytest.raises(anthropic.BadRequestError) as refused:
            sdk.messages.create(
                model="gemini",
                max_tokens=2000,
                messages=HI,
                thinking={"type": "enabled", "budget_tokens": 1024},
            )
    assert message.content[0].text == "echo: hi there"  # type: ignore[union-attr]
    assert fake_vertex.requests[0]["method"] == "generateContent"
    error = refused.value.body["error"]["message"]  # type: ignore[index]
    assert "thinking" in error and "'gemini'" in error and "Vertex AI Gemini" in error
    assert len(fake_vertex.requests) == 1


# ------------------------------------------------------------------------- Bedrock

CLAUDE_ID = "us.anthropic.claude-sonnet-4-6-v1:0"


def bedrock_sdk(fake: FakeBedrock) -> anthropic.AnthropicBedrock:
    return anthropic.AnthropicBedrock(
        aws_access_key=AWS_KEY,
        aws_secret_key=AWS_SECRET,
        aws_region="us-east-1",
        base_url=fake.url,
        max_retries=0,
    )


def test_the_bedrock_fake_serves_claude_to_the_sdks_bedrock_client_and_boto3(
    fake_bedrock: FakeBedrock,
) -> None:
    sdk = bedrock_sdk(fake_bedrock)
    message = sdk.messages.create(model=CLAUDE_ID, max_tokens=20, messages=HI)
    assert message.content[0].text == "echo: hi there"  # type: ignore[union-attr]
    fake_bedrock.script(ok(tool_calls=[{"name": "ls", "arguments": {"p": "/"}}]))
    with sdk.messages.stream(model=CLAUDE_ID, max_tokens=20, messages=HI) as stream:
        assert stream.get_final_message().content[1].input == {"p": "/"}  # type: ignore[union-attr]
    fake_bedrock.script(ok(stream_error_after=2))
    with pytest.raises(anthropic.APIStatusError):
        list(sdk.messages.create(model=CLAUDE_ID, max_tokens=20, messages=HI, stream=True))
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1, "messages": HI}
    counted = runtime(fake_bedrock).count_tokens(
        modelId=CLAUDE_ID, input={"invokeModel": {"body": orjson.dumps(body)}}
    )
    assert counted["inputTokens"] == fake_token_count([None, HI, None])
    assert fake_bedrock.rejected == []  # every request's SigV4 signature verified


def test_claude_on_bedrock_is_served_natively_through_invoke_model(
    fake_bedrock: FakeBedrock, aws_env: None
) -> None:
    config = {
        "providers": {
            "aws": {"type": "bedrock", "base_url": fake_bedrock.url, "region": "us-east-1"}
        },
        "models": {"claude": {"deployments": [{"provider": "aws", "model": CLAUDE_ID}]}},
    }
    body = {
        "max_tokens": 20,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": HI,
    }
    with serve(config) as gw:
        sdk = through(gw.url)
        message = sdk.messages.create(model="claude", **body)
        direct = list(
            bedrock_sdk(fake_bedrock).messages.create(model=CLAUDE_ID, stream=True, **body)
        )
        relayed = list(sdk.messages.create(model="claude", stream=True, **body))
        counted = sdk.messages.count_tokens(model="claude", system="sys", messages=HI)
        # An in-stream throttle before the first byte is retried; after it, an error event.
        fake_bedrock.script(ok(stream_error_after=0))
        with sdk.messages.stream(model="claude", **body) as stream:
            assert stream.get_final_text() == "echo: hi there"
        # (the delay lets the first events reach the client before the exception comes)
        fake_bedrock.script(ok(stream_error_after=3, chunk_delay=0.05))
        with pytest.raises(anthropic.APIStatusError) as broken:
            list(sdk.messages.create(model="claude", stream=True, **body))
    assert message.content[0].text == "echo: hi there"  # type: ignore[union-attr]
    assert [e.model_dump() for e in relayed] == [e.model_dump() for e in direct]
    sent = fake_bedrock.requests[0]
    assert (sent["model"], sent["path"].rpartition("/")[2]) == (CLAUDE_ID, "invoke")
    assert sent["json"] == {
        **body,
        "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": [BETA],
    }
    assert fake_bedrock.requests[2]["path"].endswith("/invoke-with-response-stream")
    assert counted.input_tokens == fake_token_count(["sys", HI, None])
    assert fake_bedrock.requests[3]["path"].endswith("/count-tokens")
    assert "ThrottlingException" in str(broken.value)
    assert fake_bedrock.rejected == []


# ------------------------------------------------------------------------- Azure OpenAI


def test_azure_openai_is_translated_including_azures_stream(fake_azure: FakeAzureOpenAI) -> None:
    """Azure's stream opens with a prompt-filter chunk (no choices): no block comes of it."""
    with serve(azure_config(fake_azure)) as gw:
        sdk = through(gw.url)
        message = sdk.messages.create(model="gpt-4o-mini", max_tokens=20, messages=HI)
        with sdk.messages.stream(model="gpt-4o-mini", max_tokens=20, messages=HI) as stream:
            kinds = [event.type for event in stream if event.type != "text"]
            final = stream.get_final_message()
        with pytest.raises(anthropic.BadRequestError) as refused:
            sdk.messages.create(
                model="gpt-4o-mini",
                max_tokens=20,
                messages=[{"role": "user", "content": [{"type": "document", "source": {}}]}],
            )
    assert message.content[0].text == "echo: hi there"  # type: ignore[union-attr]
    assert final.content[0].text == "echo: hi there"  # type: ignore[union-attr]
    assert kinds.count("content_block_start") == 1 and kinds[-1] == "message_stop"
    assert fake_azure.requests[0]["json"]["messages"] == HI
    error = refused.value.body["error"]["message"]  # type: ignore[index]
    assert "'document'" in error and "'gpt-4o-mini'" in error and "Azure" in error
