"""The fakes serve the Responses API as OpenAI and Azure OpenAI do: the official SDK parses
everything they send (objects, typed stream events, tool calls, errors)."""

from __future__ import annotations

import openai
import pytest

from tests.fakes import FakeUpstream, error, ok
from tests.fakes.azure import FakeAzureOpenAI
from tests.gateway.responses.conftest import AZURE_KEY

TOOL = {"name": "get_weather", "arguments": {"city": "Paris"}}


def _clients(fake_openai: FakeUpstream, fake_azure: FakeAzureOpenAI) -> list[openai.OpenAI]:
    return [
        openai.OpenAI(base_url=fake_openai.url, api_key="sk-fake", max_retries=0),
        # Azure's v1 surface: OpenAI's client with the resource's key
        # (learn.microsoft.com/azure/ai-foundry/openai/how-to/responses).
        openai.OpenAI(
            base_url=fake_azure.url + "/openai/v1",
            api_key="unused",
            default_headers={"api-key": AZURE_KEY},
            max_retries=0,
        ),
    ]


def test_sdk_parses_responses_streams_and_tool_calls(
    fake_openai: FakeUpstream, fake_azure: FakeAzureOpenAI
) -> None:
    for client in _clients(fake_openai, fake_azure):
        response = client.responses.create(model="m", input="hello there", store=False)
        assert response.output_text == "echo: hello there"
        assert response.usage is not None and response.usage.total_tokens == 18
        assert response.store is False

        with client.responses.stream(model="m", input="hello stream") as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_response()
        assert final.output_text == "echo: hello stream"
        assert kinds[:2] == ["response.created", "response.in_progress"]
        assert kinds[-1] == "response.completed"
        assert "response.output_text.delta" in kinds

    fake_openai.script(ok(tool_calls=[TOOL]), ok(tool_calls=[TOOL]))
    client = _clients(fake_openai, fake_azure)[0]
    called = client.responses.create(model="m", input="weather?")
    assert called.output[0].type == "function_call"
    assert called.output[0].name == "get_weather"
    with client.responses.stream(model="m", input="weather?") as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == '{"city":"Paris"}'


@pytest.mark.parametrize(
    ("status", "exception"), [(400, openai.BadRequestError), (429, openai.RateLimitError)]
)
def test_sdk_raises_matching_errors(
    fake_openai: FakeUpstream, status: int, exception: type[Exception]
) -> None:
    fake_openai.script(error(status))
    client = openai.OpenAI(base_url=fake_openai.url, api_key="sk-fake", max_retries=0)
    with pytest.raises(exception):
        client.responses.create(model="m", input="hi")


def test_fake_keeps_nothing_and_refuses_a_previous_response_id(fake_openai: FakeUpstream) -> None:
    client = openai.OpenAI(base_url=fake_openai.url, api_key="sk-fake", max_retries=0)
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="m", input="hi", previous_response_id="resp_unknown")
    assert raised.value.code == "previous_response_not_found"
