"""OpenAI chat-completions body -> Bedrock Converse body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.errors import invalid
from gateway_app.providers.base import append_turn

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig

# response_format json_schema is served by forcing a tool whose input is the answer.
JSON_TOOL = "json_response"
# Converse's image formats, by media type.
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
PROVIDER = "this model's provider (Bedrock)"


def translate_request(body: dict[str, Any], deployment: DeploymentConfig) -> dict[str, Any]:
    """The Converse body for a validated OpenAI chat-completions body."""
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
            result = (
                [{"text": content}]
                if isinstance(content, str)
                else _text_blocks(content, f"messages[{index}].content")
            )
            block = {
                "toolResult": {
                    "toolUseId": message.get("tool_call_id") or message.get("name") or "",
                    "content": result or [{"text": ""}],
                }
            }
            append_turn(messages, "user", [block])
    if body.get("n") not in (None, 1):
        raise invalid("n", f"{PROVIDER} supports only n=1")

    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = system
    inference: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens or deployment.params.get("default_max_tokens"):
        inference["maxTokens"] = max_tokens or deployment.params["default_max_tokens"]
    if body.get("temperature") is not None:
        inference["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        inference["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if inference:
        out["inferenceConfig"] = inference

    tools = [_tool(t) for t in body.get("tools") or [] if t.get("type", "function") == "function"]
    choice = body.get("tool_choice")
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema") or {}
        tools.append(
            {
                "toolSpec": {
                    "name": JSON_TOOL,
                    "description": schema.get("description") or "Respond with the answer as JSON.",
                    "inputSchema": {"json": schema.get("schema") or {"type": "object"}},
                }
            }
        )
        choice = {"type": "function", "function": {"name": JSON_TOOL}}
    elif response_format.get("type") == "json_object":
        system.append({"text": "Respond with a single JSON object and nothing else."})
        out["system"] = system
    if tools:
        config: dict[str, Any] = {"tools": tools}
        # Converse has no "none": tools stay declared (history may hold toolUse blocks)
        # and the model chooses; "auto" is its default.
        if choice == "required":
            config["toolChoice"] = {"any": {}}
        elif isinstance(choice, dict):
            config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
        out["toolConfig"] = config
    extra = dict(deployment.params.get("additional_model_request_fields") or {})
    if "top_k" in body:
        extra["top_k"] = body["top_k"]
    if extra:
        out["additionalModelRequestFields"] = extra
    out.update(deployment.params.get("extra_body", {}))
    return out


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks = []
    for index, part in enumerate(content):
        if part.get("type") != "text":
            raise invalid(f"{where}[{index}].type", "only text parts are allowed here")
        blocks.append({"text": part["text"]})
    return blocks


def _user_blocks(content: Any, index: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    blocks = []
    for part_index, part in enumerate(content or []):
        kind = part.get("type")
        if kind == "text":
            blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part, f"messages[{index}].content[{part_index}].image_url"))
        else:
            raise invalid(
                f"messages[{index}].content[{part_index}].type",
                f"content part type {kind!r} is not supported by {PROVIDER}",
            )
    return blocks


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url.startswith("data:"):
        raise invalid(
            f"{where}.url",
            f"{PROVIDER} accepts images only inline: use a data:image/...;base64 URL",
        )
    header, _, data = url.partition(",")
    media_type = header[5:].split(";")[0]
    image_format = IMAGE_FORMATS.get(media_type)
    if ";base64" not in header or image_format is None:
        raise invalid(
            f"{where}.url",
            f"data URLs must be base64 with one of the media types {sorted(IMAGE_FORMATS)}",
        )
    # Converse's JSON protocol carries blob members base64-encoded: pass the data through.
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _assistant_blocks(message: dict[str, Any], index: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            blocks.append({"text": content})
    elif content:
        for part in content:
            if part.get("type") == "text" and part.get("text"):
                blocks.append({"text": part["text"]})
    for call_index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        try:
            parsed = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise invalid(
                f"messages[{index}].tool_calls[{call_index}].function.arguments",
                "tool call arguments must be a JSON object",
            ) from None
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": call.get("id"),
                    "name": function.get("name"),
                    "input": parsed if isinstance(parsed, dict) else {"value": parsed},
                }
            }
        )
    return blocks


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    spec: dict[str, Any] = {
        "name": function["name"],
        "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return {"toolSpec": spec}
