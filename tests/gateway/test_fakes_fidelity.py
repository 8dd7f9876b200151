"""The fake upstreams speak the real wire formats: the official SDKs parse everything they send."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.fakes import FakeUpstream, drop, error, ok

MESSAGES = [{"role": "user", "content": "hello there"}]
TOOL = {"name": "get_weather", "arguments": {"city": "Paris"}}


def _oa(fake: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url, api_key="sk-fake", max_retries=0)


def _an(fake: FakeUpstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.url, api_key="ak-fake", max_retries=0)


def test_openai_sdk_parses_completion_stream_tools_embeddings(fake_openai: FakeUpstream) -> None:
    client = _oa(fake_openai)
    completion = client.chat.completions.create(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.usage is not None and completion.usage.total_tokens == 18

    chunks = list(
        client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "echo: hello there"
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None

    fake_openai.script(ok(tool_calls=[TOOL]), ok(tool_calls=[TOOL]))
    called = client.chat.completions.create(model="m", messages=MESSAGES)
    assert called.choices[0].message.tool_calls[0].function.name == "get_weather"
    streamed = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    arguments = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in streamed
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert arguments == '{"city":"Paris"}'

    embedding = client.embeddings.create(model="e", input=["a", "bb"])
    assert [len(d.embedding) for d in embedding.data] == [3, 3]
    assert client.models.list().data[0].id == "gpt-fake"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_openai_sdk_raises_matching_errors(
    fake_openai: FakeUpstream, status: int, exception: type
) -> None:
    fake_openai.script(error(status, "boom", retry_after="0"))
    with pytest.raises(exception) as raised:
        _oa(fake_openai).chat.completions.create(model="m", messages=MESSAGES)
    assert "boom" in str(raised.value)
    if status == 429:
        assert raised.value.response.headers["retry-after"] == "0"


def test_openai_sdk_sees_dropped_connection_and_mid_stream_error(fake_openai: FakeUpstream) -> None:
    fake_openai.script(drop())
    with pytest.raises(openai.APIConnectionError):
        _oa(fake_openai).chat.completions.create(model="m", messages=MESSAGES)
    fake_openai.script(ok(stream_error_after=2))
    with pytest.raises(openai.APIError, match="stream broke"):
        list(_oa(fake_openai).chat.completions.create(model="m", messages=MESSAGES, stream=True))


def test_anthropic_sdk_parses_message_stream_and_tools(fake_anthropic: FakeUpstream) -> None:
    client = _an(fake_anthropic)
    message = client.messages.create(model="c", max_tokens=10, messages=MESSAGES)
    assert message.content[0].text == "echo: hello there"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 7

    with client.messages.stream(model="c", max_tokens=10, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hello there" and final.usage.output_tokens == 7

    fake_anthropic.script(ok(tool_calls=[TOOL]), ok(tool_calls=[TOOL]))
    used = client.messages.create(model="c", max_tokens=10, messages=MESSAGES)
    assert used.stop_reason == "tool_use" and used.content[-1].input == {"city": "Paris"}
    with client.messages.stream(model="c", max_tokens=10, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert final.content[-1].type == "tool_use" and final.content[-1].input == {"city": "Paris"}


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.InternalServerError),
    ],
)
def test_anthropic_sdk_raises_matching_errors(
    fake_anthropic: FakeUpstream, status: int, exception: type
) -> None:
    fake_anthropic.script(error(status, "boom"))
    with pytest.raises(exception, match="boom"):
        _an(fake_anthropic).messages.create(model="c", max_tokens=10, messages=MESSAGES)


def test_anthropic_fake_rejects_what_the_real_api_rejects(fake_anthropic: FakeUpstream) -> None:
    client = _an(fake_anthropic)
    with pytest.raises(anthropic.BadRequestError, match="system"):
        client.messages.create(
            model="c", max_tokens=10, messages=[{"role": "system", "content": "x"}, *MESSAGES]
        )
    fake_anthropic.script(ok(stream_error_after=3))
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        client.messages.stream(model="c", max_tokens=10, messages=MESSAGES) as stream,
    ):
        list(stream.text_stream)
