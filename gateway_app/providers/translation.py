"""OpenAI chat-completions pieces that every translating adapter reads and writes.

Anthropic Messages, Bedrock Converse and Vertex Gemini each map the same parts of
an OpenAI request to their own blocks: content parts (text, images as URLs or
base64 data URLs), tool calls and their JSON arguments, stop sequences, function
tools and the JSON answer tool behind ``response_format``; and map back their
stop reason to OpenAI's ``finish_reason`` and their output to an assistant
message. The reading, and the 400s naming the field, live here once; each
adapter keeps only its own block shapes and its reason table.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from gateway_app.errors import invalid

Block = TypeVar("Block")

#: ``response_format: json_schema`` is served by forcing a tool whose input is the answer.
JSON_TOOL = "json_response"
JSON_TOOL_DESCRIPTION = "Respond with the answer as JSON."
#: ``response_format: json_object`` becomes this instruction in the system prompt.
JSON_OBJECT_INSTRUCTION = "Respond with a single JSON object and nothing else."


# ---------------------------------------------------------------------- request


def text_content(content: Any, where: str, text: Callable[[str], Block]) -> list[Block]:
    """The blocks of a text-only content (system, developer and tool messages): a string
    or text parts; a 400 naming the part otherwise. An empty string gives no block."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text(content)] if content else []
    blocks = []
    for index, part in enumerate(content):
        if part.get("type") != "text":
            raise invalid(f"{where}[{index}].type", "only text parts are allowed here")
        blocks.append(text(part["text"]))
    return blocks


def user_content(
    content: Any,
    index: int,
    provider: str,
    text: Callable[[str], Block],
    image: Callable[[dict[str, Any], str], Block],
) -> list[Block]:
    """The blocks of user message ``index``: text and image parts (``image(part, where)``);
    a 400 naming any other part type as unsupported by ``provider``."""
    if isinstance(content, str):
        return [text(content)]
    blocks = []
    for part_index, part in enumerate(content or []):
        kind = part.get("type")
        if kind == "text":
            blocks.append(text(part["text"]))
        elif kind == "image_url":
            blocks.append(image(part, f"messages[{index}].content[{part_index}].image_url"))
        else:
            raise invalid(
                f"messages[{index}].content[{part_index}].type",
                f"content part type {kind!r} is not supported by {provider}",
            )
    return blocks


def image_url(part: Mapping[str, Any]) -> Any:
    """The URL of an ``image_url`` part (``{"url": ...}``, or the bare string)."""
    image = part.get("image_url")
    return image.get("url") if isinstance(image, dict) else image


@dataclass(frozen=True, slots=True)
class DataUrl:
    """An inline image: ``data:<media_type>;base64,<data>``."""

    media_type: str
    data: str  # base64, passed on as sent


def data_url(url: str, where: str, media_types: Collection[str] | None = None) -> DataUrl:
    """The parts of a base64 data URL; a 400 naming ``where`` when it is not one (or, with
    ``media_types``, when its media type is not one the provider takes)."""
    header, _, data = url.partition(",")
    media_type = header[5:].split(";")[0]
    if media_types is not None:
        if ";base64" not in header or media_type not in media_types:
            raise invalid(
                where,
                f"data URLs must be base64 with one of the media types {sorted(media_types)}",
            )
    elif ";base64" not in header or not media_type:
        raise invalid(where, "data URLs must be base64 with a media type")
    return DataUrl(media_type, data)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call of an assistant message in the history."""

    id: str | None
    name: str | None
    arguments: dict[str, Any]


def assistant_content(message: Mapping[str, Any], index: int) -> tuple[list[str], list[ToolCall]]:
    """The texts and tool calls of assistant message ``index`` (empty texts dropped);
    arguments that are not JSON are a 400 naming the call, a JSON non-object is wrapped
    as ``{"value": ...}`` (the providers take objects only)."""
    texts: list[str] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            texts.append(content)
    elif content:
        texts.extend(p["text"] for p in content if p.get("type") == "text" and p.get("text"))
    calls = []
    for call_index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        try:
            parsed = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise invalid(
                f"messages[{index}].tool_calls[{call_index}].function.arguments",
                "tool call arguments must be a JSON object",
            ) from None
        arguments = parsed if isinstance(parsed, dict) else {"value": parsed}
        calls.append(ToolCall(call.get("id"), function.get("name"), arguments))
    return texts, calls


def function_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``function`` objects of the request's function tools."""
    return [
        t["function"] for t in body.get("tools") or [] if t.get("type", "function") == "function"
    ]


def stop_sequences(body: Mapping[str, Any]) -> list[str] | None:
    """``stop`` as a list (it may be one string), or None when absent or empty."""
    stop = body.get("stop")
    if not stop:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


@dataclass(frozen=True, slots=True)
class AnswerTool:
    """The tool a provider is made to call with the answer (``response_format: json_schema``)."""

    description: str
    schema: dict[str, Any]
    name: str = JSON_TOOL


def answer_tool(body: Mapping[str, Any]) -> AnswerTool | None:
    """The answer tool for ``response_format: json_schema`` (None for any other format)."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") != "json_schema":
        return None
    schema = response_format.get("json_schema") or {}
    return AnswerTool(
        schema.get("description") or JSON_TOOL_DESCRIPTION,
        schema.get("schema") or {"type": "object"},
    )


def wants_json_object(body: Mapping[str, Any]) -> bool:
    """``response_format: json_object``: any JSON object, no schema."""
    return (body.get("response_format") or {}).get("type") == "json_object"


def append_turn(
    messages: list[dict[str, Any]],
    role: str,
    blocks: list[dict[str, Any]],
    field: str = "content",
) -> None:
    """Append ``blocks`` as a ``role`` turn, merged into the last turn if it has that role.

    Anthropic Messages, Bedrock Converse and Gemini (whose turns hold ``parts``) require
    alternating roles: consecutive same-role messages (several tool results, a tool
    result then a user note) merge.
    """
    if messages and messages[-1]["role"] == role:
        messages[-1][field].extend(blocks)
    else:
        messages.append({"role": role, field: list(blocks)})


# ---------------------------------------------------------------------- response


def finish_reason(
    reason: str | None,
    table: Mapping[str, str],
    *,
    answered_by_tool: bool = False,
    called_tools: bool = False,
) -> str | None:
    """OpenAI's ``finish_reason`` for a provider's stop reason (by ``table``; unknown
    reasons are a plain ``stop``).

    ``answered_by_tool``: the answer came through the forced JSON tool, so the provider's
    "stopped to call a tool" is a plain stop. ``called_tools``: the provider (Gemini)
    reports a plain stop even when it called functions, which OpenAI calls ``tool_calls``.
    """
    if reason is None:
        return None
    mapped = table.get(reason, "stop")
    if answered_by_tool and mapped == "tool_calls":
        return "stop"
    if called_tools and table.get(reason) == "stop":
        return "tool_calls"
    return mapped


def tool_call(call_id: str | None, name: str | None, arguments: Any) -> dict[str, Any]:
    """An OpenAI tool call (its arguments as a JSON string)."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments or {}).decode()},
    }


def assistant_message(texts: list[str], tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    """An OpenAI assistant message: ``content`` is null when only tools were called."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def choice(index: int, message: dict[str, Any], finish: str | None) -> dict[str, Any]:
    """One choice of a chat completion."""
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish}


def chat_completion(
    completion_id: str,
    created: int,
    model: Any,
    choices: list[dict[str, Any]],
    usage: dict[str, Any],
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` body."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage,
    }


def openai_usage(prompt: int, completion: int, cached: int, reasoning: int = 0) -> dict[str, Any]:
    """OpenAI's ``usage`` object (``cached`` of the prompt, ``reasoning`` of the completion)."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
