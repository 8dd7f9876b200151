"""Request validation on the hot path: hand-written checks, no pydantic.

Each check raises a 400 whose ``param`` names the field the way OpenAI does
(``messages[2].content[0].image_url``). Unknown top-level fields pass through to
OpenAI-compatible upstreams (new API fields work without a gateway release).
"""

from __future__ import annotations

from typing import Any

from gateway_app.errors import invalid

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
# Ordered as the errors list them.
TOOL_CHOICES = ("none", "auto", "required")
FORMATS = ("text", "json_object", "json_schema")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_error(param: str, expected: str, value: Any) -> Exception:
    return invalid(
        param,
        f"Invalid type for '{param}': expected {expected}, but got {_describe(value)} instead.",
        "invalid_type",
    )


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_number(value):
        raise _type_error(name, "a decimal", value)
    if not low <= value <= high:
        raise invalid(
            name,
            f"Invalid '{name}': {value} is out of range; use a value from {low} to {high}.",
            "invalid_value",
        )


_INT32_MAX = 2**31 - 1


def _integer(body: dict[str, Any], name: str, low: int, high: int = _INT32_MAX) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, float) and value.is_integer():
        # The JSON parser reads integers beyond 64 bits as floats: still an integer, too large.
        raise invalid(
            name, f"Invalid '{name}': {value:.0f} is above the maximum {high}.", "invalid_value"
        )
    if not _is_int(value):
        raise _type_error(name, "an integer", value)
    if value < low:
        raise invalid(
            name, f"Invalid '{name}': {value} is below the minimum {low}.", "invalid_value"
        )
    if value > high:
        raise invalid(
            name, f"Invalid '{name}': {value} is above the maximum {high}.", "invalid_value"
        )


def one_of(param: str, value: Any, allowed: tuple[str, ...]) -> None:
    """A 400 naming ``param`` when ``value`` is not one of ``allowed`` (listed in order)."""
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed[:-1]) + f" and {allowed[-1]!r}"
        raise invalid(
            param, f"Invalid value: {value!r}. Supported values are: {listed}.", "invalid_value"
        )


def _boolean(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _type_error(name, "a boolean", value)


_SCALAR_CHECKS: dict[str, Any] = {
    "temperature": lambda b, n: _number(b, n, 0, 2),
    "top_p": lambda b, n: _number(b, n, 0, 1),
    "presence_penalty": lambda b, n: _number(b, n, -2, 2),
    "frequency_penalty": lambda b, n: _number(b, n, -2, 2),
    "max_tokens": lambda b, n: _integer(b, n, 1),
    "max_completion_tokens": lambda b, n: _integer(b, n, 1),
    "n": lambda b, n: _integer(b, n, 1),
    "seed": lambda b, n: _integer(b, n, -(2**63), 2**63 - 1),
    "top_logprobs": lambda b, n: _integer(b, n, 0),
    "logprobs": _boolean,
    "parallel_tool_calls": _boolean,
}


def validate_chat(body: Any) -> tuple[str, bool, bool]:
    """Check a chat-completions body; return ``(model, stream, include_usage)``."""
    if not isinstance(body, dict):
        raise invalid(None, "The request body must be a JSON object.", "invalid_json")
    model = body.get("model")
    if model is None:
        raise invalid("model", "Missing required parameter: 'model'.", "missing_required_parameter")
    if not isinstance(model, str):
        raise _type_error("model", "a string", model)
    messages = body.get("messages")
    if messages is None:
        raise invalid(
            "messages", "Missing required parameter: 'messages'.", "missing_required_parameter"
        )
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise invalid(
            "messages",
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            "empty_array",
        )
    for index, message in enumerate(messages):
        _message(message, index)

    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _type_error("stream", "a boolean", stream)
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _type_error("stream_options", "an object", options)
        if not stream:
            raise invalid(
                "stream_options",
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            )
        include_usage = options.get("include_usage", False)
        if not isinstance(include_usage, bool):
            raise _type_error("stream_options.include_usage", "a boolean", include_usage)

    # Only the optional fields present are checked (a typical body has two or three).
    for name in body.keys() & _SCALAR_CHECKS.keys():
        _SCALAR_CHECKS[name](body, name)
    stop = body.get("stop")
    if stop is not None:
        if isinstance(stop, list):
            if len(stop) > 4 or not all(isinstance(s, str) for s in stop):
                raise invalid("stop", "Invalid 'stop': use a string or up to 4 strings.")
        elif not isinstance(stop, str):
            raise _type_error("stop", "a string or an array of strings", stop)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _type_error("user", "a string", user)
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _type_error("metadata", "an object", metadata)
        for key, value in metadata.items():
            if not isinstance(value, str):
                raise _type_error(f"metadata.{key}", "a string", value)
    _tools(body)
    _response_format(body.get("response_format"))
    return model, bool(stream), include_usage


def _message(message: Any, index: int) -> None:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise _type_error(where, "an object", message)
    role = message.get("role")
    if role not in _ROLES:
        if role is None:
            raise invalid(f"{where}.role", f"Missing required parameter: '{where}.role'.")
        raise invalid(
            f"{where}.role",
            f"Invalid value: {role!r}. Supported values are: {', '.join(sorted(_ROLES))}.",
            "invalid_value",
        )
    content = message.get("content")
    if content is None:
        if role != "assistant":  # an assistant turn may carry only tool calls
            raise invalid(f"{where}.content", f"Missing required parameter: '{where}.content'.")
    elif isinstance(content, list):
        for part_index, part in enumerate(content):
            part_where = f"{where}.content[{part_index}]"
            if not isinstance(part, dict):
                raise _type_error(part_where, "an object", part)
            kind = part.get("type")
            if kind not in _PART_TYPES:
                raise invalid(
                    f"{part_where}.type",
                    f"Invalid value: {kind!r}. Supported values are: {', '.join(sorted(_PART_TYPES))}.",
                    "invalid_value",
                )
            if kind == "text" and not isinstance(part.get("text"), str):
                raise _type_error(f"{part_where}.text", "a string", part.get("text"))
            if kind == "image_url":
                image = part.get("image_url")
                if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                    raise invalid(
                        f"{part_where}.image_url",
                        f"Invalid '{part_where}.image_url': expected an object with a string 'url'.",
                    )
    elif not isinstance(content, str):
        raise _type_error(f"{where}.content", "a string or an array of content parts", content)
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise invalid(
            f"{where}.tool_call_id", f"Missing required parameter: '{where}.tool_call_id'."
        )
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if role != "assistant" or not isinstance(tool_calls, list):
            raise _type_error(f"{where}.tool_calls", "an array on an assistant message", tool_calls)
        for call_index, call in enumerate(tool_calls):
            call_where = f"{where}.tool_calls[{call_index}]"
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise invalid(f"{call_where}.function", f"'{call_where}.function' needs a 'name'.")
            if not isinstance(function.get("arguments", ""), str):
                raise _type_error(
                    f"{call_where}.function.arguments", "a string", function.get("arguments")
                )


def _tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _type_error("tools", "an array", tools)
        for index, tool in enumerate(tools):
            where = f"tools[{index}]"
            if not isinstance(tool, dict):
                raise _type_error(where, "an object", tool)
            if tool.get("type", "function") == "function":
                function = tool.get("function")
                if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                    raise invalid(
                        f"{where}.function.name",
                        f"Missing required parameter: '{where}.function.name'.",
                    )
                parameters = function.get("parameters")
                if parameters is not None and not isinstance(parameters, dict):
                    raise _type_error(f"{where}.function.parameters", "an object", parameters)
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        one_of("tool_choice", choice, TOOL_CHOICES)
    elif isinstance(choice, dict):
        function = choice.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise invalid(
                "tool_choice.function.name",
                "Missing required parameter: 'tool_choice.function.name'.",
            )
    else:
        raise _type_error("tool_choice", "a string or an object", choice)


def _response_format(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _type_error("response_format", "an object", value)
    kind = value.get("type")
    one_of("response_format.type", kind, FORMATS)
    if kind == "json_schema":
        schema = value.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
            raise invalid(
                "response_format.json_schema.name",
                "Missing required parameter: 'response_format.json_schema.name'.",
            )


def validate_embeddings(body: Any) -> str:
    """Check an embeddings body; return the model."""
    if not isinstance(body, dict):
        raise invalid(None, "The request body must be a JSON object.", "invalid_json")
    model = body.get("model")
    if not isinstance(model, str):
        if model is None:
            raise invalid("model", "Missing required parameter: 'model'.")
        raise _type_error("model", "a string", model)
    value = body.get("input")
    if value is None:
        raise invalid("input", "Missing required parameter: 'input'.")
    if isinstance(value, list):
        if not value:
            raise invalid("input", "Invalid 'input': empty array.", "empty_array")
    elif not isinstance(value, str):
        raise _type_error("input", "a string or an array", value)
    return model
