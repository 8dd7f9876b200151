"""OpenAI chat-completions body -> Anthropic Messages body."""

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

DEFAULT_MAX_TOKENS = 4096
PROVIDER = "this model's provider (Anthropic)"


def translate_request(
    body: dict[str, Any], deployment: DeploymentConfig, stream: bool
) -> dict[str, Any]:
    """The Messages API body for a validated OpenAI chat-completions body."""
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
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id") or message.get("name") or "",
                "content": content
                if isinstance(content, str)
                else text_content(content, where, _text),
            }
            append_turn(messages, "user", [block])
    if body.get("n") not in (None, 1):
        raise invalid("n", f"{PROVIDER} supports only n=1")

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
    stop = stop_sequences(body)
    if stop:
        out["stop_sequences"] = stop
    user = body.get("user")
    if user:
        out["metadata"] = {"user_id": user[:256]}
    tools = [_tool(function) for function in function_tools(body)]
    tool_choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    answer = answer_tool(body)
    if answer is not None:
        tools.append(
            {"name": answer.name, "description": answer.description, "input_schema": answer.schema}
        )
        tool_choice = {"type": "tool", "name": JSON_TOOL}
    elif wants_json_object(body):
        system.append(_text(JSON_OBJECT_INSTRUCTION))
        out["system"] = system
    if tools:
        out["tools"] = tools
    if tool_choice is not None and (tools or tool_choice.get("type") == "none"):
        out["tool_choice"] = tool_choice
    if stream:
        out["stream"] = True
    out.update(deployment.params.get("extra_body", {}))
    return out


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = image_url(part)
    if not isinstance(url, str):
        raise invalid(f"{where}.url", "an image part needs a url (https or data:)")
    if url.startswith("data:"):
        inline = data_url(url, f"{where}.url")
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": inline.media_type, "data": inline.data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _assistant_blocks(message: dict[str, Any], index: int) -> list[dict[str, Any]]:
    texts, calls = assistant_content(message, index)
    blocks = [_text(text) for text in texts]
    blocks.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        for call in calls
    )
    return blocks


def _tool(function: dict[str, Any]) -> dict[str, Any]:
    out = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None
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
