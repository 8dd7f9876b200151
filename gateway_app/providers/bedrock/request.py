"""OpenAI chat-completions body -> Bedrock Converse body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway_app.errors import invalid
from gateway_app.providers.translation import (
    JSON_OBJECT_INSTRUCTION,
    JSON_TOOL,
    answer_tool,
    append_turn,
    assistant_content,
    data_url,
    function_tools,
    image_url,
    stop_sequences,
    text_content,
    user_content,
    wants_json_object,
)

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig

# Converse's image formats, by media type.
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
PROVIDER = "this model's provider (Bedrock)"


def translate_request(body: dict[str, Any], deployment: DeploymentConfig) -> dict[str, Any]:
    """The Converse body for a validated OpenAI chat-completions body."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(body["messages"]):
        role = message["role"]
        where = f"messages[{index}].content"
        if role in ("system", "developer"):
            system.extend(text_content(message.get("content"), where, _text))
        elif role == "user":
            blocks = user_content(message.get("content"), index, PROVIDER, _text, _image)
            append_turn(messages, "user", blocks)
        elif role == "assistant":
            append_turn(messages, "assistant", _assistant_blocks(message, index))
        elif role in ("tool", "function"):
            content = message.get("content")
            result = (
                [_text(content)]
                if isinstance(content, str)
                else text_content(content, where, _text)
            )
            block = {
                "toolResult": {
                    "toolUseId": message.get("tool_call_id") or message.get("name") or "",
                    "content": result or [_text("")],
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
    stop = stop_sequences(body)
    if stop:
        inference["stopSequences"] = stop
    if inference:
        out["inferenceConfig"] = inference

    tools = [_tool(function) for function in function_tools(body)]
    choice = body.get("tool_choice")
    answer = answer_tool(body)
    if answer is not None:
        tools.append(
            {
                "toolSpec": {
                    "name": answer.name,
                    "description": answer.description,
                    "inputSchema": {"json": answer.schema},
                }
            }
        )
        choice = {"type": "function", "function": {"name": JSON_TOOL}}
    elif wants_json_object(body):
        system.append(_text(JSON_OBJECT_INSTRUCTION))
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


def _text(text: str) -> dict[str, Any]:
    return {"text": text}


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = image_url(part)
    if not isinstance(url, str) or not url.startswith("data:"):
        raise invalid(
            f"{where}.url",
            f"{PROVIDER} accepts images only inline: use a data:image/...;base64 URL",
        )
    inline = data_url(url, f"{where}.url", IMAGE_FORMATS)
    # Converse's JSON protocol carries blob members base64-encoded: pass the data through.
    return {"image": {"format": IMAGE_FORMATS[inline.media_type], "source": {"bytes": inline.data}}}


def _assistant_blocks(message: dict[str, Any], index: int) -> list[dict[str, Any]]:
    texts, calls = assistant_content(message, index)
    blocks = [_text(text) for text in texts]
    blocks.extend(
        {"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.arguments}}
        for call in calls
    )
    return blocks


def _tool(function: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": function["name"],
        "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return {"toolSpec": spec}
