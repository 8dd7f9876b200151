"""Adapters declare what they serve; the translation they share behaves one way for all."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from gateway_app.errors import GatewayError
from gateway_app.providers import ADAPTERS
from gateway_app.providers.base import Capability, ProviderAdapter
from gateway_app.providers.translation import (
    assistant_content,
    assistant_message,
    data_url,
    finish_reason,
)
from tests.fakes import FakeUpstream


@pytest.mark.parametrize("adapter", ADAPTERS.values(), ids=list(ADAPTERS))
def test_every_adapter_declares_its_capabilities(adapter: ProviderAdapter) -> None:
    assert isinstance(adapter, ProviderAdapter)
    assert {Capability.CHAT, Capability.STREAMING} <= adapter.capabilities
    # Declaring embeddings means building their requests (the base class refuses to).
    builds = type(adapter).embeddings_requests is not ProviderAdapter.embeddings_requests
    assert builds == (Capability.EMBEDDINGS in adapter.capabilities)


def test_embeddings_on_a_chat_only_provider_is_a_400_naming_the_model(
    gateway: Any, fake_anthropic: FakeUpstream
) -> None:
    models = {"claude": {"deployments": [{"provider": "anthropic", "model": "claude-x"}]}}
    with gateway(models) as gw, pytest.raises(openai.BadRequestError) as caught:
        gw.client().embeddings.create(model="claude", input="hello")
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "model"
    assert error["message"] == "this model's provider (Anthropic) has no embeddings API"
    assert fake_anthropic.requests == []  # refused before any upstream call


def test_data_urls_are_checked_naming_the_field() -> None:
    assert data_url("data:image/png;base64,AAAA", "x").media_type == "image/png"
    with pytest.raises(GatewayError, match="base64 with a media type") as caught:
        data_url("data:,plain", "messages[0].content[1].image_url.url")
    assert caught.value.param == "messages[0].content[1].image_url.url"
    with pytest.raises(GatewayError, match=r"one of the media types \['image/png'\]"):
        data_url("data:image/tiff;base64,AAAA", "x", {"image/png"})


def test_finish_reasons_follow_the_tool_rules() -> None:
    table = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}
    assert finish_reason(None, table) is None
    assert finish_reason("tool_use", table) == "tool_calls"
    # The forced JSON answer tool is the answer, not a call.
    assert finish_reason("tool_use", table, answered_by_tool=True) == "stop"
    # Gemini says STOP when it called functions; an unknown reason stays a plain stop.
    assert finish_reason("end_turn", table, called_tools=True) == "tool_calls"
    assert finish_reason("brand_new_reason", table, called_tools=True) == "stop"
    assert finish_reason("max_tokens", table, called_tools=True) == "length"


def test_assistant_history_and_answers() -> None:
    texts, calls = assistant_content(
        {
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": ""}],
            "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "[1]"}}],
        },
        3,
    )
    assert texts == ["a"] and calls[0].arguments == {"value": [1]}
    with pytest.raises(GatewayError) as caught:
        assistant_content({"tool_calls": [{"function": {"arguments": "{oops"}}]}, 3)
    assert caught.value.param == "messages[3].tool_calls[0].function.arguments"
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    assert assistant_message([], [call])["content"] is None
    assert assistant_message([""], [call])["content"] == ""  # an empty text block was sent
    assert assistant_message([], [])["content"] == ""
