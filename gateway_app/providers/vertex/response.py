"""Vertex AI Gemini ``GenerateContentResponse`` -> OpenAI chat completion."""

from __future__ import annotations

import time
import uuid
from typing import Any

from gateway_app.providers import translation
from gateway_app.providers.translation import (
    assistant_message,
    chat_completion,
    choice,
    openai_usage,
)

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
    return translation.finish_reason(reason, FINISH_REASONS, called_tools=has_calls)


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
    return translation.tool_call(
        function_call.get("id") or call_id(), function_call.get("name"), function_call.get("args")
    )


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
        finish = finish_reason(candidate.get("finishReason") or "STOP", bool(calls))
        message = assistant_message([text] if text else [], calls)
        choices.append(choice(candidate.get("index", position), message, finish))
    if not choices:
        # The prompt itself was blocked (promptFeedback.blockReason): nothing was generated.
        block = (data.get("promptFeedback") or {}).get("blockReason")
        choices.append(choice(0, assistant_message([], []), "content_filter" if block else "stop"))
    return chat_completion(
        "chatcmpl-" + (data.get("responseId") or uuid.uuid4().hex[:24]),
        int(time.time()),
        data.get("modelVersion") or model,
        choices,
        usage(data.get("usageMetadata")),
    )
