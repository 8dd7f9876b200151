"""The Responses API on Bedrock (Converse) and Vertex (Gemini): translated through chat,
judged by the official openai SDK; lossy features refused naming the feature and the model."""

from __future__ import annotations

import openai
import orjson
import pytest

from tests.fakes import ok
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.vertex import FakeVertex
from tests.gateway.conftest import serve
from tests.gateway.providers.test_bedrock import bedrock_config
from tests.gateway.providers.test_vertex import vertex_config

TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _exercise(url: str, model: str, script: object) -> None:
    sdk = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
    response = sdk.responses.create(model=model, input="hello", instructions="Be brief.")
    assert response.output_text == "echo: hello"
    assert response.usage is not None and response.usage.total_tokens == 18
    with sdk.responses.stream(model=model, input="streamed words") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert final.output_text == "echo: streamed words"
    assert sdk.responses.retrieve(final.id).output_text == final.output_text
    script(ok(content="", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))  # type: ignore[operator]
    called = sdk.responses.create(model=model, input="weather?", tools=[TOOL])
    call = next(item for item in called.output if item.type == "function_call")
    assert call.name == "get_weather" and orjson.loads(call.arguments) == {"city": "Oslo"}
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.responses.create(model=model, input="x", tools=[{"type": "code_interpreter"}])
    assert raised.value.param == "tools[0].type" and model in raised.value.message


def test_bedrock_serves_responses_through_converse(
    fake_bedrock: FakeBedrock, aws_env: None
) -> None:
    with serve(bedrock_config(fake_bedrock)) as gw:
        _exercise(gw.url, "claude-haiku", fake_bedrock.script)
    assert fake_bedrock.requests[0]["json"]["system"] == [{"text": "Be brief."}]


def test_vertex_serves_responses_through_gemini(fake_vertex: FakeVertex, google_adc: None) -> None:
    with serve(vertex_config(fake_vertex)) as gw:
        _exercise(gw.url, "gemini", fake_vertex.script)
    system = fake_vertex.requests[0]["json"]["systemInstruction"]
    assert system["parts"] == [{"text": "Be brief."}]
