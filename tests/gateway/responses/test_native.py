"""``POST /v1/responses`` served natively by OpenAI and Azure OpenAI, judged by the official SDK."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest
from pydantic import BaseModel

from tests.fakes import FakeUpstream, error, ok, slow
from tests.fakes.azure import FakeAzureOpenAI
from tests.gateway.conftest import Running
from tests.gateway.responses.conftest import AZURE_KEY, client

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
STREAM_EVENTS = {
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.output_text.delta",
    "response.output_item.done",
    "response.completed",
}


def test_create_passes_the_request_through_with_the_gateway_as_the_store(
    gw: Running, fake_openai: FakeUpstream
) -> None:
    raw = client(gw).responses.with_raw_response.create(
        model="gpt-5-mini",
        input="hello there",
        instructions="Be brief.",
        reasoning={"effort": "low"},
        max_output_tokens=500,
        metadata={"ticket": "42"},
    )
    response = raw.parse()
    assert response.output_text == "echo: hello there"
    assert response.usage is not None and response.usage.input_tokens == 11
    # The client asked nothing about storing: the gateway keeps it (OpenAI's default) ...
    assert response.store is True
    assert raw.headers["x-aigw-deployment"] == "openai/gpt-5-mini-2025-08-07"
    sent = fake_openai.requests[-1]
    assert sent["path"] == "/v1/responses"
    body = sent["json"]
    # ... and no upstream does: the whole conversation goes as input, store false.
    assert body["store"] is False
    assert body["model"] == "gpt-5-mini-2025-08-07"
    assert body["input"] == [{"type": "message", "role": "user", "content": "hello there"}]
    assert body["instructions"] == "Be brief."
    assert body["reasoning"] == {"effort": "low"}
    assert body["max_output_tokens"] == 500 and body["metadata"] == {"ticket": "42"}
    assert sent["headers"]["Authorization"] == "Bearer sk-fake"


def test_function_tools_and_their_outputs_round_trip(
    gw: Running, fake_openai: FakeUpstream
) -> None:
    fake_openai.script(ok(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]))
    sdk = client(gw)
    first = sdk.responses.create(
        model="gpt-5-mini", input="Weather in Paris?", tools=[WEATHER], tool_choice="auto"
    )
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "Paris"}
    assert fake_openai.requests[-1]["json"]["tools"] == [WEATHER]
    second = sdk.responses.create(
        model="gpt-5-mini",
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"},
        ],
        tools=[WEATHER],
    )
    assert second.output_text == "echo: tool said sunny, 21C"
    assert fake_openai.requests[-1]["json"]["input"][2]["output"] == "sunny, 21C"


class Answer(BaseModel):
    city: str
    celsius: int


def test_structured_output_text_format_reaches_the_upstream(
    gw: Running, fake_openai: FakeUpstream
) -> None:
    fake_openai.script(ok(content='{"city":"Paris","celsius":21}'))
    parsed = client(gw).responses.parse(model="gpt-5-mini", input="Paris?", text_format=Answer)
    assert parsed.output_parsed == Answer(city="Paris", celsius=21)
    text = fake_openai.requests[-1]["json"]["text"]
    assert text["format"]["type"] == "json_schema" and text["format"]["name"] == "Answer"
    assert text["format"]["schema"]["required"] == ["city", "celsius"]


def test_stream_sends_the_typed_events_in_order(gw: Running, fake_openai: FakeUpstream) -> None:
    with client(gw).responses.stream(model="gpt-5-mini", input="one two three") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert set(kinds) >= STREAM_EVENTS
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == (
        "echo: one two three"
    )
    assert final.output_text == "echo: one two three" and final.store is True
    assert [e.sequence_number for e in events] == sorted(e.sequence_number for e in events)
    assert fake_openai.requests[-1]["json"]["stream"] is True

    fake_openai.script(ok(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
    with client(gw).responses.stream(
        model="gpt-5-mini", input="weather?", tools=[WEATHER]
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == '{"city":"Oslo"}'


def test_azure_openai_serves_it_on_its_v1_surface(gw: Running, fake_azure: FakeAzureOpenAI) -> None:
    sdk = client(gw)
    response = sdk.responses.create(model="azure-gpt-5", input="hi azure")
    assert response.output_text == "echo: hi azure"
    with sdk.responses.stream(model="azure-gpt-5", input="streamed") as stream:
        assert stream.get_final_response().output_text == "echo: streamed"
    sent = fake_azure.requests[0]
    # learn.microsoft.com/azure/ai-foundry/openai/how-to/responses: POST
    # {endpoint}/openai/v1/responses, the deployment as the body's model.
    assert sent["path"] == "/openai/v1/responses"
    assert sent["json"]["model"] == "gpt5-deployment" and sent["json"]["store"] is False
    assert sent["headers"]["api-key"] == AZURE_KEY


def test_failover_from_openai_to_azure_after_retries(
    gw: Running, fake_openai: FakeUpstream, fake_azure: FakeAzureOpenAI
) -> None:
    fake_openai.script(error(429, retry_after="0"), error(500), error(503))
    raw = client(gw).responses.with_raw_response.create(model="gpt-5", input="fail over")
    assert raw.parse().output_text == "echo: fail over"
    assert raw.headers["x-aigw-deployment"] == "azure-fallback"
    assert len(fake_openai.requests) == 3 and len(fake_azure.requests) == 1


def test_bad_requests_get_openai_shaped_400s_naming_the_field(
    gw: Running, fake_openai: FakeUpstream
) -> None:
    sdk = client(gw)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ]
    for extra, param in cases:
        with pytest.raises(openai.BadRequestError) as raised:
            sdk.responses.create(model="gpt-5-mini", **extra)
        assert raised.value.param == param, (extra, raised.value.body)
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.responses.create(model="no-such-model", input="x")
    assert raised.value.code == "model_not_found"
    assert fake_openai.requests == []


def test_upstream_errors_keep_their_shape_and_a_late_one_is_an_error_event(
    gw: Running, fake_openai: FakeUpstream
) -> None:
    fake_openai.script(error(400, "Invalid schema for function 'x'"))
    with pytest.raises(openai.BadRequestError, match="Invalid schema"):
        client(gw).responses.create(model="gpt-5-mini", input="x")
    fake_openai.script(ok(content="a b c d e f", stream_error_after=5))
    with client(gw).responses.stream(model="gpt-5-mini", input="x") as stream:
        events = list(stream)
    assert events[-1].type == "error" and events[-1].message == "stream broke"


def test_a_client_that_leaves_cancels_the_upstream_call(
    responses_gateway: Any, fake_openai: FakeUpstream
) -> None:
    fake_openai.script(slow(5), ok(content="a b c d e f g h", chunk_delay=0.5))
    with responses_gateway() as gw:
        with pytest.raises(openai.APITimeoutError):
            openai.OpenAI(
                base_url=gw.url + "/v1", api_key="k", max_retries=0, timeout=0.3
            ).responses.create(model="gpt-5-mini", input="x")
        assert fake_openai.wait_for(lambda: fake_openai.cancelled == 1)
        stream = client(gw).responses.create(model="gpt-5-mini", input="x", stream=True)
        next(iter(stream))
        stream.close()
        assert fake_openai.wait_for(lambda: fake_openai.cancelled == 2)
    assert fake_openai.completed == 0


def test_metrics_label_the_route_and_count_the_tokens(gw: Running) -> None:
    client(gw).responses.create(model="gpt-5-mini", input="count me")
    metrics = httpx.get(gw.url + "/metrics").text
    assert any(
        line.startswith("aigw_requests_total{")
        and 'endpoint="/v1/responses"' in line
        and 'model="gpt-5-mini"' in line
        and 'status="200"' in line
        for line in metrics.splitlines()
    ), metrics
    tokens = {
        line.split("}")[0] + "}": float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("aigw_tokens_total{") and 'model="gpt-5-mini"' in line
    }
    # The fake's usage (11 in, 7 out) read from the Responses usage object.
    assert sorted(tokens.values()) == [7.0, 11.0], tokens


def test_items_resent_from_earlier_responses_lose_what_the_upstream_cannot_resolve(
    gw: Running, fake_openai: FakeUpstream
) -> None:
    """Every upstream call is store: false, so ids of earlier output items resolve to
    nothing there: ids are dropped, and reasoning items are kept only when encrypted."""
    client(gw).responses.create(
        model="gpt-5-mini",
        input=[
            {"role": "user", "content": "hi"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "opaque"},
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "hello", "annotations": []}],
            },
            {"role": "user", "content": "again"},
        ],
    )
    sent = fake_openai.requests[-1]["json"]["input"]
    assert [item.get("type", "message") for item in sent] == [
        "message",
        "reasoning",
        "message",
        "message",
    ]
    assert sent[1]["encrypted_content"] == "opaque"
    assert all("id" not in item for item in sent)
