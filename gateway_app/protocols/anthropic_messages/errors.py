"""Anthropic's error shape: ``{"type": "error", "error": {"type": ..., "message": ...}}``.

The gateway's errors carry an HTTP status; Anthropic's clients read the status
(the SDK picks its exception class by it) and ``error.type``. Types follow
Anthropic's table (https://docs.anthropic.com/en/api/errors): 400
``invalid_request_error``, 401 ``authentication_error``, 402 ``billing_error``,
403 ``permission_error``, 404 ``not_found_error``, 413 ``request_too_large``,
429 ``rate_limit_error``, 500 ``api_error``, 504 ``timeout_error``, 529
``overloaded_error``. An upstream that said it was overloaded (Anthropic's 529,
an in-stream ``overloaded_error``) is reported as 529 once every deployment was
tried, since Claude Code and the SDKs back off on exactly that; the gateway's
own 502/503 are ``api_error`` (retryable 5xx for the SDKs).
"""

from __future__ import annotations

import orjson

from gateway_app.errors import ErrorShape, GatewayError

TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
OVERLOADED = "overloaded_error"


def anthropic_type(error: GatewayError) -> tuple[int, str]:
    """The status and Anthropic ``error.type`` the client sees for ``error``."""
    if error.code == OVERLOADED or error.type == OVERLOADED:
        return 529, OVERLOADED
    if error.code == "model_not_found":
        return 404, "not_found_error"  # as Anthropic answers an unknown model
    status = error.status
    return status, TYPE_BY_STATUS.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )


def error_body(error: GatewayError) -> dict[str, object]:
    """The JSON body Anthropic's API would send."""
    _, kind = anthropic_type(error)
    return {"type": "error", "error": {"type": kind, "message": error.message}}


class AnthropicErrors(ErrorShape):
    """Errors of the Messages API, in bodies and as the stream's ``error`` event."""

    def response(self, error: GatewayError) -> tuple[int, bytes]:
        status, _ = anthropic_type(error)
        return status, orjson.dumps(error_body(error))

    def frame(self, error: GatewayError) -> bytes:
        return b"event: error\ndata: " + orjson.dumps(error_body(error)) + b"\n\n"


ANTHROPIC_ERRORS = AnthropicErrors()
