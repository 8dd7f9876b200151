"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Every failure a client can see is a :class:`GatewayError`; the ASGI app turns it
into a response with the right status, so the official SDKs raise their matching
exception classes (400 ``BadRequestError``, 401 ``AuthenticationError``, 404
``NotFoundError``, 429 ``RateLimitError``, 5xx ``InternalServerError``...).
"""

from __future__ import annotations

from typing import Any

import orjson

# OpenAI's ``error.type`` per status, where OpenAI itself uses a fixed one.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class GatewayError(Exception):
    """A failure reported to the client as an OpenAI-shaped error response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI's API would send."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_bytes(self) -> bytes:
        """The JSON body, serialised."""
        return orjson.dumps(self.body())


def invalid(param: str | None, message: str, code: str | None = None) -> GatewayError:
    """A 400 naming the offending field (``param``) the way OpenAI does."""
    return GatewayError(400, message, param=param, code=code)


class ErrorShape:
    """How a wire API's clients are told of an error: OpenAI's shape, unless the API
    has its own (:attr:`gateway_app.apis.WireApi.errors`)."""

    def response(self, error: GatewayError) -> tuple[int, bytes]:
        """The status and JSON body of an error response."""
        return error.status, error.to_bytes()

    def frame(self, error: GatewayError) -> bytes:
        """The server-sent event that reports an error once a stream has started."""
        return b"data: " + error.to_bytes() + b"\n\n"


OPENAI_ERRORS = ErrorShape()
