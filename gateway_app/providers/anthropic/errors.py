"""Anthropic error types -> OpenAI-shaped errors with OpenAI's statuses and types."""

from __future__ import annotations

from typing import Any

import orjson

from gateway_app.errors import GatewayError

STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_OPENAI_TYPE = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_error",
    "overloaded_error": "server_error",
    "api_error": "server_error",
}


def translate_error(status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
    """The OpenAI-shaped error for an Anthropic error response."""
    error: dict[str, Any] = {}
    try:
        parsed = orjson.loads(raw)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            error = parsed["error"]
    except orjson.JSONDecodeError:
        pass
    kind = error.get("type")
    message = (
        error.get("message") or raw[:200].decode(errors="replace") or f"upstream HTTP {status}"
    )
    passthrough = {}
    if "retry-after" in headers:
        passthrough["retry-after"] = headers["retry-after"]
    return GatewayError(
        status,
        str(message),
        type=_OPENAI_TYPE.get(
            kind or "", "server_error" if status >= 500 else "invalid_request_error"
        ),
        code=kind,
        headers=passthrough,
    )


def stream_error(payload: dict[str, Any]) -> GatewayError:
    """The error of a Messages stream's ``error`` event (its Anthropic type as ``type`` and
    ``code``: before the first byte it is retried and failed over like the HTTP error)."""
    error = payload.get("error") or {}
    kind = error.get("type") or "api_error"
    return GatewayError(
        STATUS_BY_TYPE.get(kind, 502),
        error.get("message") or "upstream stream error",
        type=kind,
        code=kind,
    )
