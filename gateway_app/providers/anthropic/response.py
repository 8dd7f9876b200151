"""Anthropic Messages response -> OpenAI chat completion."""

from __future__ import annotations

import time
from typing import Any

from gateway_app.providers import translation
from gateway_app.providers.translation import (
    JSON_TOOL,
    assistant_message,
    chat_completion,
    choice,
    openai_usage,
    tool_call,
)

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None, json_tool: bool = False) -> str | None:
    """OpenAI's ``finish_reason`` for an Anthropic ``stop_reason``."""
    return translation.finish_reason(stop_reason, STOP_REASONS, answered_by_tool=json_tool)


def usage(anthropic_usage: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI ``usage`` from Anthropic's: cached and cache-write tokens count as prompt."""
    u = anthropic_usage or {}
    cache_read = u.get("cache_read_input_tokens") or 0
    cache_write = u.get("cache_creation_input_tokens") or 0
    prompt = (u.get("input_tokens") or 0) + cache_read + cache_write
    return openai_usage(prompt, u.get("output_tokens") or 0, cache_read)


def translate_response(data: dict[str, Any]) -> dict[str, Any]:
    """The chat completion for one Messages response."""
    text: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    json_answer = False
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind == "tool_use":
            call = tool_call(block.get("id"), block.get("name"), block.get("input"))
            if block.get("name") == JSON_TOOL:
                json_answer = True
                text.append(call["function"]["arguments"])
            else:
                tool_calls.append(call)
    message = assistant_message(text, tool_calls)
    finish = finish_reason(data.get("stop_reason"), json_answer)
    return chat_completion(
        data.get("id") or "chatcmpl-anthropic",
        int(time.time()),
        data.get("model"),
        [choice(0, message, finish)],
        usage(data.get("usage")),
    )
