"""Google API errors (``{"error": {"code", "message", "status"}}``) -> OpenAI-shaped errors."""

from __future__ import annotations

from typing import Any

import orjson

from gateway_app.errors import GatewayError

# OpenAI status and type per google.rpc status.
STATUSES: dict[str, tuple[int, str]] = {
    "INVALID_ARGUMENT": (400, "invalid_request_error"),
    "FAILED_PRECONDITION": (400, "invalid_request_error"),
    "OUT_OF_RANGE": (400, "invalid_request_error"),
    "UNAUTHENTICATED": (401, "authentication_error"),
    "PERMISSION_DENIED": (403, "permission_error"),
    "NOT_FOUND": (404, "invalid_request_error"),
    "RESOURCE_EXHAUSTED": (429, "rate_limit_error"),
    "CANCELLED": (499, "server_error"),
    "INTERNAL": (500, "server_error"),
    "UNKNOWN": (500, "server_error"),
    "UNAVAILABLE": (503, "server_error"),
    "DEADLINE_EXCEEDED": (504, "timeout_error"),
}


def from_body(body: Any, status: int) -> GatewayError:
    """The error for a parsed Google error body (a list of them when streaming)."""
    if isinstance(body, list):
        body = body[0] if body else {}
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    name = error.get("status")
    mapped = STATUSES.get(str(name))
    out_status, kind = mapped or (
        status,
        "server_error" if status >= 500 else "invalid_request_error",
    )
    message = error.get("message") or f"upstream HTTP {status}"
    return GatewayError(out_status, f"Vertex AI {name or status}: {message}", type=kind, code=name)


def translate_error(status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
    """The OpenAI-shaped error for a Vertex AI error response."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = {"error": {"message": raw[:200].decode(errors="replace")}}
    error = from_body(body, status)
    if "retry-after" in headers:
        error.headers["retry-after"] = headers["retry-after"]
    return error
