"""OpenAI chat-completions body -> Vertex AI Gemini ``GenerateContentRequest``."""

from __future__ import annotations

import mimetypes
from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.errors import invalid

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig

PROVIDER = "this model's provider (Vertex AI Gemini)"
_TOOL_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def translate_request(body: dict[str, Any], deployment: DeploymentConfig) -> dict[str, Any]:
    """The Gemini body for a validated OpenAI chat-completions body."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    # functionResponse parts need the function's name; OpenAI tool messages carry only the id.
    names: dict[str, str] = {}
    for index, message in enumerate(body["messages"]):
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), f"messages[{index}].content"))
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), index))
        elif role == "assistant":
            _append(contents, "model", _model_parts(message, index, names))
        elif role in ("tool", "function"):
            content = message.get("content")
            text = (
                content
                if isinstance(content, str)
                else "".join(p.get("text", "") for p in content or [])
            )
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                value = text
            call_id = message.get("tool_call_id")
            name = names.get(call_id or "") or message.get("name")
            if not name:
                raise invalid(
                    f"messages[{index}].tool_call_id",
                    "a tool message must answer a tool call of an earlier assistant message",
                )
            response = value if isinstance(value, dict) else {"content": value}
            # Matched by name and order: the ids are the gateway's when Gemini sent none.
            _append(contents, "user", [{"functionResponse": {"name": name, "response": response}}])

    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    config: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(source) is not None:
            config[target] = body[source]
    if body.get("n") not in (None, 1):
        config["candidateCount"] = body["n"]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema:
            config["responseJsonSchema"] = schema
    elif response_format.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    config.update(deployment.params.get("generation_config") or {})
    if config:
        out["generationConfig"] = config

    declarations = [
        _declaration(t["function"])
        for t in body.get("tools") or []
        if t.get("type", "function") == "function"
    ]
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        choice = body.get("tool_choice")
        if isinstance(choice, str) and choice in _TOOL_MODES:
            out["toolConfig"] = {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
        elif isinstance(choice, dict):
            out["toolConfig"] = {
                "functionCallingConfig": {
                    "mode": "ANY",
                    "allowedFunctionNames": [choice["function"]["name"]],
                }
            }
    if deployment.params.get("safety_settings"):
        out["safetySettings"] = deployment.params["safety_settings"]
    out.update(deployment.params.get("extra_body", {}))
    return out


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    # Gemini expects alternating turns; parallel function responses share one turn.
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": list(parts)})


def _text_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for index, part in enumerate(content):
        if part.get("type") != "text":
            raise invalid(f"{where}[{index}].type", "only text parts are allowed here")
        parts.append({"text": part["text"]})
    return parts


def _user_parts(content: Any, index: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    parts = []
    for part_index, part in enumerate(content or []):
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_image(part, f"messages[{index}].content[{part_index}].image_url"))
        else:
            raise invalid(
                f"messages[{index}].content[{part_index}].type",
                f"content part type {kind!r} is not supported by {PROVIDER}",
            )
    return parts


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise invalid(f"{where}.url", "an image part needs a url (gs://, https or data:)")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0]
        if ";base64" not in header or not media_type:
            raise invalid(f"{where}.url", "data URLs must be base64 with a media type")
        return {"inlineData": {"mimeType": media_type, "data": data}}
    guessed = mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": guessed, "fileUri": url}}


def _model_parts(
    message: dict[str, Any], index: int, names: dict[str, str]
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            parts.append({"text": content})
    elif content:
        parts.extend(
            {"text": p["text"]} for p in content if p.get("type") == "text" and p.get("text")
        )
    for call_index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        try:
            args = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise invalid(
                f"messages[{index}].tool_calls[{call_index}].function.arguments",
                "tool call arguments must be a JSON object",
            ) from None
        name = function.get("name") or ""
        if call.get("id"):
            names[call["id"]] = name
        args = args if isinstance(args, dict) else {"value": args}
        parts.append({"functionCall": {"name": name, "args": args}})
    return parts


def _declaration(function: dict[str, Any]) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        declaration["description"] = function["description"]
    if function.get("parameters"):
        # parametersJsonSchema takes JSON Schema as OpenAI clients write it
        # (``parameters`` accepts only Google's OpenAPI subset).
        declaration["parametersJsonSchema"] = function["parameters"]
    return declaration
