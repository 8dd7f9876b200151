"""Bedrock Converse response -> OpenAI chat completion."""

from __future__ import annotations

import time
import uuid
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
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def finish_reason(stop_reason: str | None, json_tool: bool = False) -> str | None:
    """OpenAI's ``finish_reason`` for a Converse ``stopReason``."""
    return translation.finish_reason(stop_reason, STOP_REASONS, answered_by_tool=json_tool)


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
            call = tool_call(use.get("toolUseId"), use.get("name"), use.get("input"))
            if use.get("name") == JSON_TOOL:
                json_answer = True
                text.append(call["function"]["arguments"])
            else:
                tool_calls.append(call)
        # reasoningContent and citations have no OpenAI counterpart.
    finish = finish_reason(data.get("stopReason"), json_answer)
    return chat_completion(
        completion_id(),
        int(time.time()),
        model,
        [choice(0, assistant_message(text, tool_calls), finish)],
        usage(data.get("usage")),
    )
