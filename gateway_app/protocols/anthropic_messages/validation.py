"""Checks of a Messages body on the hot path: a 400 naming the field, in Anthropic's words.

Only what the gateway relies on (model, ``max_tokens``, the turns' shape, the
types of the sampling fields) is checked; the content blocks' own fields are the
upstream's to judge, so a new block type or beta field works without a gateway
release when the deployment is native. The translation to chat checks what it
reads (:mod:`.translation`).
"""

from __future__ import annotations

from typing import Any

from gateway_app.errors import invalid
from gateway_app.validation import _boolean, _integer, _number, _type_error

_ROLES = frozenset({"user", "assistant"})
_TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})


def validate_messages(body: Any) -> tuple[str, bool, bool]:
    """Check a ``POST /v1/messages`` body; return ``(model, stream, False)``."""
    model = _common(body)
    if body.get("max_tokens") is None:
        raise invalid("max_tokens", "max_tokens: Field required", "missing_required_parameter")
    _integer(body, "max_tokens", 1)
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    _integer(body, "top_k", 0)
    _boolean(body, "stream")
    stop = body.get("stop_sequences")
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)
    ):
        raise _type_error("stop_sequences", "an array of strings", stop)
    for name in ("metadata", "thinking"):
        value = body.get(name)
        if value is not None and not isinstance(value, dict):
            raise _type_error(name, "an object", value)
    return model, bool(body.get("stream")), False


def validate_count_tokens(body: Any) -> str:
    """Check a ``POST /v1/messages/count_tokens`` body; return the model."""
    return _common(body)


def _common(body: Any) -> str:
    if not isinstance(body, dict):
        raise invalid(None, "The request body must be a JSON object.", "invalid_json")
    model = body.get("model")
    if model is None:
        raise invalid("model", "model: Field required", "missing_required_parameter")
    if not isinstance(model, str):
        raise _type_error("model", "a string", model)
    messages = body.get("messages")
    if messages is None:
        raise invalid("messages", "messages: Field required", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise invalid("messages", "messages: at least one message is required", "empty_array")
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if not isinstance(message, dict):
            raise _type_error(where, "an object", message)
        if message.get("role") not in _ROLES:
            raise invalid(
                f"{where}.role",
                f"{where}.role: Input should be 'user' or 'assistant' (got "
                f"{message.get('role')!r}); put system instructions in the top-level `system`.",
            )
        _content(message.get("content"), f"{where}.content")
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        _blocks(system, "system")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _type_error("tools", "an array", tools)
        for index, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise invalid(f"tools.{index}.name", f"tools.{index}.name: Field required")
    choice = body.get("tool_choice")
    if choice is not None and (
        not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICES
    ):
        raise invalid(
            "tool_choice.type",
            "tool_choice: expected an object whose type is one of auto, any, tool, none",
        )
    return model


def _content(content: Any, where: str) -> None:
    if isinstance(content, str):
        return
    if content is None:
        raise invalid(where, f"{where}: Field required", "missing_required_parameter")
    _blocks(content, where)


def _blocks(blocks: Any, where: str) -> None:
    if not isinstance(blocks, list):
        raise _type_error(where, "a string or an array of content blocks", blocks)
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid(f"{where}.{index}.type", f"{where}.{index}.type: Field required")
