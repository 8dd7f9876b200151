"""Vertex AI Gemini ``GenerateContentResponse`` -> OpenAI chat completion."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from gateway_app.providers.base import openai_usage

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MODEL_ARMOR": "content_filter",
}


def finish_reason(reason: str | None, has_calls: bool) -> str | None:
    """OpenAI's ``finish_reason`` for a Gemini ``finishReason``."""
    if reason is None:
        return None
    if has_calls and reason == "STOP":
        return "tool_calls"
    return FINISH_REASONS.get(reason, "stop")


def usage(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI ``usage`` from ``usageMetadata``; thinking tokens count as completion tokens."""
    u = metadata or {}
    prompt = (u.get("promptTokenCount") or 0) + (u.get("toolUsePromptTokenCount") or 0)
    thoughts = u.get("thoughtsTokenCount") or 0
    completion = (u.get("candidatesTokenCount") or 0) + thoughts
    return openai_usage(prompt, completion, u.get("cachedContentTokenCount") or 0, thoughts)


def call_id() -> str:
    """Gemini's function calls may lack an id; OpenAI clients need one to answer them."""
    return "call_" + uuid.uuid4().hex[:24]


def tool_call(function_call: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call from a ``functionCall`` part."""
    return {
        "id": function_call.get("id") or call_id(),
        "type": "function",
        "function": {
            "name": function_call.get("name"),
            "arguments": orjson.dumps(function_call.get("args") or {}).decode(),
        },
    }


def split_parts(parts: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Visible text and function calls of a candidate (thought summaries are dropped)."""
    text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
    calls = [tool_call(p["functionCall"]) for p in parts if "functionCall" in p]
    return text, calls


def translate_response(data: dict[str, Any], model: str) -> dict[str, Any]:
    """The chat completion for one ``GenerateContentResponse``."""
    choices = []
    for position, candidate in enumerate(data.get("candidates") or []):
        text, calls = split_parts((candidate.get("content") or {}).get("parts") or [])
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text if text or not calls else None,
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": candidate.get("index", position),
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(
                    candidate.get("finishReason") or "STOP", bool(calls)
                ),
            }
        )
    if not choices:
        # The prompt itself was blocked (promptFeedback.blockReason): nothing was generated.
        block = (data.get("promptFeedback") or {}).get("blockReason")
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": None,
                "finish_reason": "content_filter" if block else "stop",
            }
        )
    return {
        "id": "chatcmpl-" + (data.get("responseId") or uuid.uuid4().hex[:24]),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("modelVersion") or model,
        "choices": choices,
        "usage": usage(data.get("usageMetadata")),
    }
