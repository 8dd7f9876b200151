"""Messages <-> chat completions, for deployments that do not speak Messages natively.

What translates (documented in docs/reference/agent-apis.md): ``system`` (text
blocks), user text and images (base64 or URL), assistant text and ``tool_use``,
``tool_result`` (text) as tool messages, custom tools and ``tool_choice``
(``disable_parallel_tool_use`` included), ``stop_sequences`` (at most 4),
``temperature``, ``top_p``, ``max_tokens``, ``metadata.user_id`` and streaming.
``cache_control`` marks are dropped: they are hints, and OpenAI-compatible
upstreams cache prompt prefixes on their own.

What would be lost is refused with a 400 naming the feature and the model, never
dropped silently: ``thinking`` (the parameter and thinking blocks), document and
other non-image blocks, images inside tool results, server tools (web search,
code execution, computer use...), ``top_k``, more than four stop sequences.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from gateway_app.errors import GatewayError, invalid
from gateway_app.protocols.anthropic_messages.stream import messages_usage, stop_reason


def _lossy(param: str, feature: str, model: str, provider: str) -> GatewayError:
    return invalid(
        param,
        f"{feature} is not supported by model {model!r} (served by {provider} through the "
        "gateway's translation of the Messages API); remove it, or use a model served by "
        "Anthropic, Bedrock or Vertex (Claude).",
        "unsupported_feature",
    )


def to_chat(body: dict[str, Any], model: str, provider: str, stream: bool) -> dict[str, Any]:
    """The chat-completions body for a validated Messages body, for public ``model`` served
    by ``provider`` (a 400 naming the feature where the translation would lose it)."""

    def refuse(param: str, feature: str) -> GatewayError:
        return _lossy(param, feature, model, provider)

    thinking = body.get("thinking")
    if thinking and thinking.get("type") != "disabled":
        raise refuse("thinking", "Extended thinking (`thinking`)")
    if body.get("top_k") is not None:
        raise refuse("top_k", "`top_k`")
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text(system, "system", refuse)})
    for index, message in enumerate(body["messages"]):
        where = f"messages.{index}.content"
        if message["role"] == "user":
            messages.extend(_user(message["content"], where, refuse))
        else:
            messages.append(_assistant(message["content"], where, refuse))
    out: dict[str, Any] = {"model": model, "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop_sequences")
    if stop:
        if len(stop) > 4:
            raise refuse("stop_sequences", "More than 4 `stop_sequences`")
        out["stop"] = stop
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        out["user"] = user
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(tool, index, refuse) for index, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice:
        kind = choice["type"]
        if kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        else:
            out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
        if choice.get("disable_parallel_tool_use") and tools:
            out["parallel_tool_calls"] = False
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _text(content: Any, where: str, refuse: Any) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for index, block in enumerate(content):
        if block["type"] != "text":
            raise refuse(f"{where}.{index}.type", f"A {block['type']!r} block in {where}")
        texts.append(str(block.get("text", "")))
    return "\n\n".join(texts)


def _user(content: Any, where: str, refuse: Any) -> list[dict[str, Any]]:
    """A user turn: its tool results as tool messages, then its text and images."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(content):
        kind = block["type"]
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block)}})
        elif kind == "tool_result":
            result = block.get("content")
            text = "" if result is None else _text(result, f"{where}.{index}.content", refuse)
            if block.get("is_error"):
                text = f"Error: {text}"
            out.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
        else:
            raise refuse(f"{where}.{index}.type", f"A {kind!r} block")
    if parts:
        if all(p["type"] == "text" for p in parts):
            out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _image_url(block: dict[str, Any]) -> str:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    return str(source.get("url"))


def _assistant(content: Any, where: str, refuse: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(content):
        kind = block["type"]
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            raise refuse(f"{where}.{index}.type", f"A {kind!r} block (extended thinking)")
        else:
            raise refuse(f"{where}.{index}.type", f"A {kind!r} block")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: dict[str, Any], index: int, refuse: Any) -> dict[str, Any]:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise refuse(f"tools.{index}.type", f"The server tool {kind!r}")
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def from_chat(data: dict[str, Any], message_id: str, model: str) -> dict[str, Any]:
    """The Messages response for a chat completion."""
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            arguments = {"_raw_arguments": function.get("arguments")}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": arguments,
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": messages_usage(data.get("usage")),
    }


def message_id(request_id: str) -> str:
    """An Anthropic-style id for a translated response."""
    return f"msg_{request_id}" if not request_id.startswith("msg_") else request_id


# Characters per token of the documented estimate (English prose and code average ~3.5-4
# for current tokenizers; 3.5 errs towards more tokens, which is the safe side for limits).
CHARS_PER_TOKEN = 3.5


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """count_tokens where the provider has no counting endpoint: the characters of the
    system prompt, messages and tool definitions over :data:`CHARS_PER_TOKEN`, rounded up,
    plus a few tokens per message for the turn framing. An estimate, documented as one."""
    characters = 0
    system = body.get("system")
    if system:
        characters += len(system if isinstance(system, str) else orjson.dumps(system))
    for message in body.get("messages") or []:
        content = message.get("content")
        characters += len(content) if isinstance(content, str) else len(orjson.dumps(content))
    if body.get("tools"):
        characters += len(orjson.dumps(body["tools"]))
    framing = 4 * len(body.get("messages") or []) + 3
    return math.ceil(characters / CHARS_PER_TOKEN) + framing


def count_tokens_response(tokens: int) -> bytes:
    """The body of a count_tokens answer."""
    return orjson.dumps({"input_tokens": tokens})
