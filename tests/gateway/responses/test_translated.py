"""The Responses API for a chat-only provider (Anthropic), translated through chat, judged by
the official openai SDK; lossy features refused by name."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest

from tests.fakes import FakeUpstream, error, ok
from tests.gateway.conftest import Running
from tests.gateway.responses.conftest import client
from tests.gateway.responses.test_native import STREAM_EVENTS, WEATHER, Answer

CLAUDE = "claude-sonnet-4-6"


def test_create_and_stream_through_chat_translation(
    gw: Running, fake_anthropic: FakeUpstream
) -> None:
    sdk = client(gw)
    response = sdk.responses.create(
        model=CLAUDE, input="hello claude", instructions="Be brief.", max_output_tokens=300
    )
    assert response.output_text == "echo: hello claude"
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 7)
    assert response.instructions == "Be brief." and response.store is True
    sent = fake_anthropic.requests[-1]["json"]
    assert sent["system"] == "Be brief." or sent["system"][0]["text"] == "Be brief."
    assert sent["max_tokens"] == 300
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello claude"}]}
    ]

    with sdk.responses.stream(model=CLAUDE, input="one two three") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert set(kinds) >= STREAM_EVENTS
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "echo: one two three"
    assert final.usage is not None and final.usage.output_tokens == 7
    assert sdk.responses.retrieve(final.id).output_text == "echo: one two three"


def test_tools_round_trip_through_chat(gw: Running, fake_anthropic: FakeUpstream) -> None:
    fake_anthropic.script(
        ok(content="", tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])
    )
    sdk = client(gw)
    first = sdk.responses.create(model=CLAUDE, input="Weather in Rome?", tools=[WEATHER])
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "Rome"}
    tool = fake_anthropic.requests[-1]["json"]["tools"][0]
    assert tool["name"] == "get_weather" and tool["input_schema"] == WEATHER["parameters"]
    second = sdk.responses.create(
        model=CLAUDE,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "hot"}],
        tools=[WEATHER],
    )
    assert second.output_text == "echo: Weather in Rome?"  # the fake's echo of the last text
    turns = fake_anthropic.requests[-1]["json"]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][0]["type"] == "tool_use"
    assert (
        turns[2]["content"][0]
        == {
            "type": "tool_result",
            "tool_use_id": call.call_id,
            "content": "hot",
        }
        or turns[2]["content"][0]["tool_use_id"] == call.call_id
    )

    fake_anthropic.script(
        ok(content="", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    )
    with sdk.responses.stream(model=CLAUDE, input="weather?", tools=[WEATHER]) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == '{"city":"Oslo"}'
    assert (
        final.output[0].type == "function_call" and final.output[0].arguments == '{"city":"Oslo"}'
    )


def test_structured_output_through_chat(gw: Running, fake_anthropic: FakeUpstream) -> None:
    fake_anthropic.script(
        ok(
            content="",
            tool_calls=[{"name": "json_response", "arguments": {"city": "Paris", "celsius": 21}}],
        )
    )
    parsed = client(gw).responses.parse(model=CLAUDE, input="Paris?", text_format=Answer)
    assert parsed.output_parsed == Answer(city="Paris", celsius=21)


def test_a_conversation_moves_from_openai_to_claude(
    gw: Running, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    sdk = client(gw)
    first = sdk.responses.create(model="gpt-5-mini", input="My name is Ada.")
    second = sdk.responses.create(model=CLAUDE, input="Name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    turns = fake_anthropic.requests[-1]["json"]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][0]["text"] == "echo: My name is Ada."


@pytest.mark.parametrize(
    ("extra", "param", "feature"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "web_search"),
        ({"reasoning": {"effort": "high"}}, "reasoning.effort", "Reasoning effort"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
            "input_file",
        ),
        ({"top_logprobs": 2}, "top_logprobs", "top_logprobs"),
        ({"truncation": "auto"}, "truncation", "truncation: auto"),
    ],
)
def test_lossy_features_are_refused_naming_the_feature_and_the_model(
    gw: Running, fake_anthropic: FakeUpstream, extra: dict[str, Any], param: str, feature: str
) -> None:
    body: dict[str, Any] = {"input": "x", **extra}
    with pytest.raises(openai.BadRequestError) as raised:
        client(gw).responses.create(model=CLAUDE, **body)
    assert raised.value.param == param
    assert raised.value.code == "unsupported_feature"
    message = raised.value.message
    assert feature in message and CLAUDE in message and "Anthropic" in message
    assert fake_anthropic.requests == []


def test_upstream_errors_through_chat_keep_openai_shapes(
    gw: Running, fake_anthropic: FakeUpstream
) -> None:
    fake_anthropic.script(
        error(429, retry_after="0"), error(429, retry_after="0"), error(429, retry_after="0")
    )
    with pytest.raises(openai.RateLimitError):
        client(gw).responses.create(model=CLAUDE, input="x")
    fake_anthropic.reset()  # the retries may have left a scripted 429 unused
    fake_anthropic.script(ok(content="a b c d e f", stream_error_after=5, chunk_delay=0.05))
    with client(gw).responses.stream(model=CLAUDE, input="x") as stream:
        events = list(stream)
    assert events[-1].type == "error" and "Overloaded" in events[-1].message


def test_a_stream_with_text_then_tool_calls_keeps_the_items_apart(
    gw: Running, fake_anthropic: FakeUpstream
) -> None:
    calls = [
        {"name": "get_weather", "arguments": {"city": "Rome"}},
        {"name": "get_weather", "arguments": {"city": "Oslo"}},
    ]
    fake_anthropic.script(ok(content="Let me check.", tool_calls=calls))
    with client(gw).responses.stream(model=CLAUDE, input="weather?", tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["message", "function_call", "function_call"]
    assert final.output[0].content[0].text == "Let me check."
    assert [orjson.loads(item.arguments)["city"] for item in final.output[1:]] == ["Rome", "Oslo"]
    added = [e.output_index for e in events if e.type == "response.output_item.added"]
    done = [e.output_index for e in events if e.type == "response.output_item.done"]
    assert added == done == [0, 1, 2]
    assert final.status == "completed"
    fake_anthropic.script(ok(content="cut short", finish_reason="max_tokens"))
    cut = client(gw).responses.create(model=CLAUDE, input="long story")
    assert cut.status == "incomplete" and cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
