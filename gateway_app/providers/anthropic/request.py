"""OpenAI chat-completions body -> Anthropic Messages body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.errors import invalid
from gateway_app.providers.base import append_turn

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig

DEFAULT_MAX_TOKENS = 4096
# response_format json_schema is served by forcing a tool whose input is the answer.
JSON_TOOL = "json_response"

_STOP_MAX = 8191


def translate_request(
    body: dict[str, Any], deployment: DeploymentConfig, stream: bool
) -> dict[str, Any]:
    """The Messages API body for a validated OpenAI chat-completions body."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(body["messages"]):
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"messages[{index}].content"))
        elif role == "user":
            append_turn(messages, "user", _user_blocks(message.get("content"), index))
        elif role == "assistant":
            append_turn(messages, "assistant", _assistant_blocks(message, index))
        elif role in ("tool", "function"):
            content = message.get("content")
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id") or message.get("name") or "",
                "content": content
                if isinstance(content, str)
                else _text_blocks(content, f"messages[{index}].content"),
            }
            append_turn(messages, "user", [block])
    if body.get("n") not in (None, 1):
        raise invalid("n", "this model's provider (Anthropic) supports only n=1")

    out: dict[str, Any] = {
        "model": deployment.model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or deployment.params.get("default_max_tokens", DEFAULT_MAX_TOKENS),
    }
    if system:
        out["system"] = system
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if "top_k" in body:
        out["top_k"] = body["top_k"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    user = body.get("user")
    if user:
        out["metadata"] = {"user_id": user[:256]}
    tools = [_tool(t) for t in body.get("tools") or [] if t.get("type", "function") == "function"]
    tool_choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema") or {}
        tools.append(
            {
                "name": JSON_TOOL,
                "description": schema.get("description") or "Respond with the answer as JSON.",
                "input_schema": schema.get("schema") or {"type": "object"},
            }
        )
        tool_choice = {"type": "tool", "name": JSON_TOOL}
    elif response_format.get("type") == "json_object":
        system.append(
            {"type": "text", "text": "Respond with a single JSON object and nothing else."}
        )
        out["system"] = system
    if tools:
        out["tools"] = tools
    if tool_choice is not None and (tools or tool_choice.get("type") == "none"):
        out["tool_choice"] = tool_choice
    if stream:
        out["stream"] = True
    out.update(deployment.params.get("extra_body", {}))
    return out


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for index, part in enumerate(content):
        if part.get("type") != "text":
            raise invalid(f"{where}[{index}].type", "only text parts are allowed here")
        blocks.append({"type": "text", "text": part["text"]})
    return blocks


def _user_blocks(content: Any, index: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for part_index, part in enumerate(content or []):
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part, f"messages[{index}].content[{part_index}].image_url"))
        else:
            raise invalid(
                f"messages[{index}].content[{part_index}].type",
                f"content part type {kind!r} is not supported by this model's provider (Anthropic)",
            )
    return blocks


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise invalid(f"{where}.url", "an image part needs a url (https or data:)")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0]
        if ";base64" not in header or not media_type:
            raise invalid(f"{where}.url", "data URLs must be base64 with a media type")
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _assistant_blocks(message: dict[str, Any], index: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif content:
        for part in content:
            if part.get("type") == "text" and part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
    for call_index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            parsed = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            raise invalid(
                f"messages[{index}].tool_calls[{call_index}].function.arguments",
                "tool call arguments must be a JSON object",
            ) from None
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": parsed if isinstance(parsed, dict) else {"value": parsed},
            }
        )
    return blocks


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    out = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None:
        result = None
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        result = {"type": "none"}
    else:
        result = {"type": "tool", "name": choice["function"]["name"]}
    if parallel is False:
        result = dict(result or {"type": "auto"})
        if result["type"] != "none":
            result["disable_parallel_tool_use"] = True
    return result
