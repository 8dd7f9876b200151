"""The OpenAI Agents SDK through the gateway, as a team would point it: a tool loop, a
streamed run, and a conversation chained with ``previous_response_id`` in the gateway's store,
on an OpenAI model (native) and on Claude (translated)."""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from tests.fakes import FakeUpstream, ok
from tests.gateway.conftest import Running, run_async

# Traces go to OpenAI's platform with the client's key by default; a gateway key is not one.
set_tracing_disabled(True)


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def _agent(gw: Running, model: str) -> Agent[Any]:
    client = AsyncOpenAI(base_url=gw.url + "/v1", api_key="sk-aigw-team-key", max_retries=0)
    return Agent(
        name="weather",
        instructions="Answer with the tool.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model=model, openai_client=client),
    )


@pytest.mark.parametrize(
    ("model", "fake"), [("gpt-5-mini", "openai"), ("claude-sonnet-4-6", "anthropic")]
)
def test_agents_sdk_tool_loop_stream_and_chained_turn(
    gw: Running, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, model: str, fake: str
) -> None:
    upstream = fake_openai if fake == "openai" else fake_anthropic
    call = ok(content="", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    upstream.script(call, ok(content="It is sunny in Paris."))
    agent = _agent(gw, model)
    result = Runner.run_sync(agent, "Weather in Paris?")
    assert result.final_output == "It is sunny in Paris."
    assert len(upstream.requests) == 2  # the call, then the tool's output sent back

    upstream.script(ok(content="Still sunny."))
    chained = Runner.run_sync(agent, "And now?", previous_response_id=result.last_response_id)
    assert chained.final_output == "Still sunny."
    # The gateway sent the whole conversation: both earlier turns, the tool call and output.
    assert "sunny in Paris" in str(upstream.requests[-1]["json"])

    async def streamed() -> tuple[str, list[str]]:
        # A fresh client: the first one's connections belong to run_sync's event loop.
        run = Runner.run_streamed(_agent(gw, model), "Streamed weather?")
        kinds = [event.type async for event in run.stream_events()]
        return str(run.final_output), kinds

    upstream.script(ok(content="Streamed sunshine."))
    final, kinds = run_async(streamed())
    assert final == "Streamed sunshine." and "raw_response_event" in kinds
