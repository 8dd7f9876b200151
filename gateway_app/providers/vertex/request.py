"""OpenAI chat-completions body -> Vertex AI Gemini ``GenerateContentRequest``."""

from __future__ import annotations

import mimetypes
from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.errors import invalid
from gateway_app.providers.translation import (
    append_turn,
    assistant_content,
    data_url,
    function_tools,
    image_url,
    stop_sequences,
    text_content,
    user_content,
)

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
            system.extend(text_content(message.get("content"), f"messages[{index}].content", _text))
        elif role == "user":
            parts = user_content(message.get("content"), index, PROVIDER, _text, _image)
            append_turn(contents, "user", parts, "parts")
        elif role == "assistant":
            append_turn(contents, "model", _model_parts(message, index, names), "parts")
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
            part = {"functionResponse": {"name": name, "response": response}}
            append_turn(contents, "user", [part], "parts")

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
    stop = stop_sequences(body)
    if stop:
        config["stopSequences"] = stop
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

    declarations = [_declaration(function) for function in function_tools(body)]
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


def _text(text: str) -> dict[str, Any]:
    return {"text": text}


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = image_url(part)
    if not isinstance(url, str):
        raise invalid(f"{where}.url", "an image part needs a url (gs://, https or data:)")
    if url.startswith("data:"):
        inline = data_url(url, f"{where}.url")
        return {"inlineData": {"mimeType": inline.media_type, "data": inline.data}}
    guessed = mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": guessed, "fileUri": url}}


def _model_parts(
    message: dict[str, Any], index: int, names: dict[str, str]
) -> list[dict[str, Any]]:
    texts, calls = assistant_content(message, index)
    parts = [_text(text) for text in texts]
    for call in calls:
        name = call.name or ""
        if call.id:
            names[call.id] = name
        parts.append({"functionCall": {"name": name, "args": call.arguments}})
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
