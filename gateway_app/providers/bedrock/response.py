"""Bedrock Converse response -> OpenAI chat completion."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from gateway_app.providers.base import openai_usage
from gateway_app.providers.bedrock.request import JSON_TOOL

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def finish_reason(stop_reason: str | None, json_tool: bool = False) -> str | None:
    """OpenAI's ``finish_reason`` for a Converse ``stopReason``."""
    if stop_reason is None:
        return None
    if json_tool and stop_reason == "tool_use":
        return "stop"
    return STOP_REASONS.get(stop_reason, "stop")


def usage(bedrock_usage: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI ``usage`` from Converse's: cache reads and writes count as prompt tokens."""
    u = bedrock_usage or {}
    cache_read = u.get("cacheReadInputTokens") or 0
    cache_write = u.get("cacheWriteInputTokens") or 0
    prompt = (u.get("inputTokens") or 0) + cache_read + cache_write
    return openai_usage(prompt, u.get("outputTokens") or 0, cache_read)


def completion_id() -> str:
    """Converse responses carry no id; OpenAI clients expect one."""
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def translate_response(data: dict[str, Any], model: str) -> dict[str, Any]:
    """The chat completion for one Converse response."""
    text: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    json_answer = False
    message = (data.get("output") or {}).get("message") or {}
    for block in message.get("content") or []:
        if "text" in block:
            text.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input") or {}).decode()
            if use.get("name") == JSON_TOOL:
                json_answer = True
                text.append(arguments)
            else:
                tool_calls.append(
                    {
                        "id": use.get("toolUseId"),
                        "type": "function",
                        "function": {"name": use.get("name"), "arguments": arguments},
                    }
                )
        # reasoningContent and citations have no OpenAI counterpart.
    out_message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        out_message["tool_calls"] = tool_calls
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": out_message,
                "logprobs": None,
                "finish_reason": finish_reason(data.get("stopReason"), json_answer),
            }
        ],
        "usage": usage(data.get("usage")),
    }
