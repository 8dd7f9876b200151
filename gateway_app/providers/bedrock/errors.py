"""Bedrock exception types -> OpenAI-shaped errors with OpenAI's statuses and types."""

from __future__ import annotations

from typing import Any

import orjson

from gateway_app.errors import GatewayError

# (status, OpenAI type) per Bedrock exception. Signature and token problems are
# 403 at AWS but mean "authentication" to an OpenAI client: 401.
EXCEPTIONS: dict[str, tuple[int, str]] = {
    "ValidationException": (400, "invalid_request_error"),
    "ServiceQuotaExceededException": (400, "invalid_request_error"),
    "UnrecognizedClientException": (401, "authentication_error"),
    "InvalidSignatureException": (401, "authentication_error"),
    "IncompleteSignatureException": (401, "authentication_error"),
    "ExpiredTokenException": (401, "authentication_error"),
    "MissingAuthenticationTokenException": (401, "authentication_error"),
    "AccessDeniedException": (403, "permission_error"),
    "ResourceNotFoundException": (404, "invalid_request_error"),
    "ModelTimeoutException": (408, "timeout_error"),
    "ModelErrorException": (424, "server_error"),
    "ThrottlingException": (429, "rate_limit_error"),
    "ModelNotReadyException": (429, "rate_limit_error"),
    "InternalServerException": (500, "server_error"),
    "ModelStreamErrorException": (502, "server_error"),
    "ServiceUnavailableException": (503, "server_error"),
}


def exception_name(raw: str | None) -> str:
    """``ThrottlingException`` from ``ThrottlingException:http://...`` or ``throttlingException``."""
    name = (raw or "").split(":", 1)[0].rsplit("#", 1)[-1]
    return name[:1].upper() + name[1:]


def translate_error(status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
    """The OpenAI-shaped error for a Bedrock error response."""
    body: dict[str, Any] = {}
    try:
        parsed = orjson.loads(raw)
        if isinstance(parsed, dict):
            body = parsed
    except orjson.JSONDecodeError:
        pass
    name = exception_name(headers.get("x-amzn-errortype") or body.get("__type"))
    mapped = EXCEPTIONS.get(name)
    message = (
        body.get("message")
        or body.get("Message")
        or raw[:200].decode(errors="replace")
        or f"upstream HTTP {status}"
    )
    passthrough = {}
    if "retry-after" in headers:
        passthrough["retry-after"] = headers["retry-after"]
    out_status, kind = mapped or (
        status,
        "server_error" if status >= 500 else "invalid_request_error",
    )
    return GatewayError(
        out_status,
        f"Bedrock {name or status}: {message}",
        type=kind,
        code=name or None,
        headers=passthrough,
    )


def stream_exception(name: str, payload: bytes) -> GatewayError:
    """The error for an ``exception`` message inside a ConverseStream."""
    try:
        message = orjson.loads(payload).get("message")
    except (orjson.JSONDecodeError, AttributeError):
        message = None
    full = exception_name(name)
    status, kind = EXCEPTIONS.get(full, (502, "server_error"))
    return GatewayError(
        status, f"Bedrock {full}: {message or 'stream error'}", type=kind, code=full
    )
