"""Anthropic Messages response -> OpenAI chat completion."""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway_app.providers.anthropic.request import JSON_TOOL
from gateway_app.providers.base import openai_usage

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
    if stop_reason is None:
        return None
    if json_tool and stop_reason == "tool_use":
        return "stop"
    return STOP_REASONS.get(stop_reason, "stop")


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
            if block.get("name") == JSON_TOOL:
                json_answer = True
                text.append(orjson.dumps(block.get("input") or {}).decode())
            else:
                tool_calls.append(
                    {
                        "id": block.get("id"),
                        "type": "function",
                        "function": {
                            "name": block.get("name"),
                            "arguments": orjson.dumps(block.get("input") or {}).decode(),
                        },
                    }
                )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": data.get("id") or "chatcmpl-anthropic",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(data.get("stop_reason"), json_answer),
            }
        ],
        "usage": usage(data.get("usage")),
    }
