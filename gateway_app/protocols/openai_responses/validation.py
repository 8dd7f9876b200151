"""Checks of a Responses API body on the hot path (hand-written, like chat's).

Each check raises a 400 whose ``param`` names the field the way OpenAI does
(``input[2].call_id``). Fields the gateway does not read pass through to the
OpenAI and Azure OpenAI upstreams untouched, so new API fields work without a
gateway release; the translated providers refuse what they cannot honour
(:mod:`gateway_app.protocols.openai_responses.translation`).
"""

from __future__ import annotations

from typing import Any

from gateway_app.errors import invalid
from gateway_app.validation import (
    FORMATS,
    TOOL_CHOICES,
    _boolean,
    _integer,
    _number,
    _type_error,
    one_of,
)

_ROLES = frozenset({"user", "assistant", "system", "developer"})
_PART_TYPES = frozenset({"input_text", "input_image", "input_file", "output_text", "refusal"})
# Items a client sends back as they came out of an earlier response.
_ITEM_TYPES = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "reasoning",
        "item_reference",
        "web_search_call",
        "file_search_call",
        "computer_call",
        "computer_call_output",
        "image_generation_call",
        "code_interpreter_call",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "custom_tool_call",
        "custom_tool_call_output",
        "compaction",
    }
)
_SCALARS: dict[str, Any] = {
    "temperature": lambda b, n: _number(b, n, 0, 2),
    "top_p": lambda b, n: _number(b, n, 0, 1),
    "max_output_tokens": lambda b, n: _integer(b, n, 1),
    "max_tool_calls": lambda b, n: _integer(b, n, 1),
    "top_logprobs": lambda b, n: _integer(b, n, 0, 20),
    "parallel_tool_calls": _boolean,
    "store": _boolean,
    "stream": _boolean,
}
# Parts of the API whose state lives at OpenAI, not in the gateway: refused by name.
_UPSTREAM_STATE = {
    "background": "background responses (poll or cancel later) are not served by the "
    "gateway; send the request without 'background' and stream it instead",
    "conversation": "OpenAI-hosted conversations are not served by the gateway; chain turns "
    "with 'previous_response_id' (the gateway keeps the conversation) or send the whole "
    "input",
}


def validate_responses(body: Any) -> tuple[str, bool, bool]:
    """Check a Responses body; return ``(model, stream, include_usage)``.

    ``include_usage`` is always False: a Responses stream carries its usage in its
    ``response.completed`` event, whatever the client asked."""
    if not isinstance(body, dict):
        raise invalid(None, "The request body must be a JSON object.", "invalid_json")
    model = body.get("model")
    if model is None:
        raise invalid("model", "Missing required parameter: 'model'.", "missing_required_parameter")
    if not isinstance(model, str):
        raise _type_error("model", "a string", model)
    for name, reason in _UPSTREAM_STATE.items():
        if body.get(name):
            raise invalid(
                name, f"Unsupported parameter: '{name}': {reason}.", "unsupported_parameter"
            )
    for name in body.keys() & _SCALARS.keys():
        _SCALARS[name](body, name)
    value = body.get("input")
    if value is None:
        if body.get("previous_response_id") is None and body.get("prompt") is None:
            raise invalid(
                "input", "Missing required parameter: 'input'.", "missing_required_parameter"
            )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _item(item, f"input[{index}]")
    elif not isinstance(value, str):
        raise _type_error("input", "a string or an array of input items", value)
    for name in ("instructions", "previous_response_id", "user", "safety_identifier"):
        field = body.get(name)
        if field is not None and not isinstance(field, str):
            raise _type_error(name, "a string", field)
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _type_error("metadata", "an object", metadata)
        for key, item in metadata.items():
            if not isinstance(item, str):
                raise _type_error(f"metadata.{key}", "a string", item)
    _tools(body)
    _text(body.get("text"))
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise _type_error("reasoning", "an object", reasoning)
        effort = reasoning.get("effort")
        if effort is not None and not isinstance(effort, str):
            raise _type_error("reasoning.effort", "a string", effort)
    include = body.get("include")
    if include is not None and (
        not isinstance(include, list) or not all(isinstance(i, str) for i in include)
    ):
        raise _type_error("include", "an array of strings", include)
    return model, bool(body.get("stream")), False


def _item(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise _type_error(where, "an object", item)
    kind = item.get("type")
    if kind is None or kind == "message":
        _message(item, where)
    elif kind == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise invalid(f"{where}.call_id", f"Missing required parameter: '{where}.call_id'.")
        output = item.get("output")
        if not isinstance(output, str | list):
            raise _type_error(f"{where}.output", "a string or an array of content parts", output)
    elif kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            if not isinstance(item.get(name), str):
                raise invalid(f"{where}.{name}", f"Missing required parameter: '{where}.{name}'.")
    elif kind not in _ITEM_TYPES:
        raise invalid(
            f"{where}.type",
            f"Invalid value: {kind!r}; an input item is a message, a function_call, a "
            "function_call_output, or an output item of an earlier response.",
            "invalid_value",
        )


def _message(item: dict[str, Any], where: str) -> None:
    role = item.get("role")
    if role not in _ROLES:
        if role is None:
            raise invalid(f"{where}.role", f"Missing required parameter: '{where}.role'.")
        raise invalid(
            f"{where}.role",
            f"Invalid value: {role!r}. Supported values are: {', '.join(sorted(_ROLES))}.",
            "invalid_value",
        )
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _type_error(f"{where}.content", "a string or an array of content parts", content)
    for index, part in enumerate(content):
        part_where = f"{where}.content[{index}]"
        if not isinstance(part, dict):
            raise _type_error(part_where, "an object", part)
        kind = part.get("type")
        if kind not in _PART_TYPES:
            raise invalid(
                f"{part_where}.type",
                f"Invalid value: {kind!r}. Supported values are: {', '.join(sorted(_PART_TYPES))}.",
                "invalid_value",
            )
        if kind in ("input_text", "output_text") and not isinstance(part.get("text"), str):
            raise _type_error(f"{part_where}.text", "a string", part.get("text"))


def _tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _type_error("tools", "an array", tools)
        for index, tool in enumerate(tools):
            where = f"tools[{index}]"
            if not isinstance(tool, dict):
                raise _type_error(where, "an object", tool)
            if not isinstance(tool.get("type"), str):
                raise invalid(f"{where}.type", f"Missing required parameter: '{where}.type'.")
            if tool["type"] == "function":
                if not isinstance(tool.get("name"), str):
                    raise invalid(f"{where}.name", f"Missing required parameter: '{where}.name'.")
                parameters = tool.get("parameters")
                if parameters is not None and not isinstance(parameters, dict):
                    raise _type_error(f"{where}.parameters", "an object", parameters)
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        one_of("tool_choice", choice, TOOL_CHOICES)
    elif isinstance(choice, dict):
        if not isinstance(choice.get("type"), str):
            raise invalid("tool_choice.type", "Missing required parameter: 'tool_choice.type'.")
    else:
        raise _type_error("tool_choice", "a string or an object", choice)


def _text(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _type_error("text", "an object", value)
    form = value.get("format")
    if form is None:
        return
    if not isinstance(form, dict):
        raise _type_error("text.format", "an object", form)
    kind = form.get("type")
    one_of("text.format.type", kind, FORMATS)
    if kind == "json_schema":
        if not isinstance(form.get("name"), str):
            raise invalid("text.format.name", "Missing required parameter: 'text.format.name'.")
        if not isinstance(form.get("schema"), dict):
            raise invalid("text.format.schema", "Missing required parameter: 'text.format.schema'.")
