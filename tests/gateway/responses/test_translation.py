"""The Responses -> chat translation itself: every item kind, and what it refuses."""

from __future__ import annotations

import pytest

from gateway_app.errors import GatewayError
from gateway_app.protocols.openai_responses.translation import chat_body

PNG = "data:image/png;base64,iVBORw0KGgo="


def test_items_become_chat_messages() -> None:
    body = {
        "model": "m",
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": [{"type": "input_text", "text": "Use tools."}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": PNG, "detail": "low"},
                ],
            },
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}],
            },
            {"type": "function_call", "call_id": "c1", "name": "zoom", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "crop", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "zoomed"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "cropped"}],
            },
        ],
        "tools": [{"type": "function", "name": "zoom", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "zoom"},
        "text": {"format": {"type": "json_schema", "name": "a", "schema": {"type": "object"}}},
        "max_output_tokens": 64,
        "temperature": 0.2,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "metadata": {"k": "v"},
    }
    chat = chat_body(body, "m", "Anthropic")
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use tools."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "zoom", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "crop", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "zoomed"},
        {"role": "tool", "tool_call_id": "c2", "content": "cropped"},
    ]
    assert chat["tools"] == [
        {"type": "function", "function": {"name": "zoom", "parameters": {"type": "object"}}}
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "zoom"}}
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "a", "schema": {"type": "object"}},
    }
    assert (chat["max_completion_tokens"], chat["temperature"]) == (64, 0.2)
    assert "metadata" not in chat and "store" not in chat and "include" not in chat


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        ({"tool_choice": {"type": "web_search"}}, "tool_choice.type"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"max_tool_calls": 3}, "max_tool_calls"),
        ({"a_field_from_next_year": True}, "a_field_from_next_year"),
    ],
)
def test_what_chat_cannot_carry_is_refused_by_name(extra: dict[str, object], param: str) -> None:
    with pytest.raises(GatewayError) as raised:
        chat_body({"model": "m", "input": "x", **extra}, "gemini", "Vertex AI")
    assert raised.value.status == 400 and raised.value.param == param
    assert "model 'gemini'" in raised.value.message and "Vertex AI" in raised.value.message
