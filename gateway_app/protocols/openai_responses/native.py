"""OpenAI and Azure OpenAI serve the Responses API themselves: their answers pass through.

Two things are changed on the way back, both to keep the gateway the one place
the conversation lives: every upstream call is made with ``store: false`` (and
without ``previous_response_id``: the gateway sends the whole conversation), so
the ``store`` and ``previous_response_id`` of the response object the client
sees are set back to what the client asked. Token usage is also handed to the
gateway's accounting in chat's shape (``prompt_tokens``, cached input tokens
under ``prompt_tokens_details``), so budgets, metrics and traces read it as they
read chat's.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_app.errors import ErrorShape, GatewayError
from gateway_app.providers.base import ChatResult, StreamState

# The events that carry the whole response object.
LIFECYCLE = frozenset(
    {
        b"response.created",
        b"response.queued",
        b"response.in_progress",
        b"response.completed",
        b"response.incomplete",
        b"response.failed",
    }
)
# The events after which the upstream sends nothing more.
TERMINAL = frozenset({b"response.completed", b"response.incomplete", b"response.failed"})


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """A Responses ``usage`` object in chat-completions' shape (for accounting)."""
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
        "prompt_tokens_details": {"cached_tokens": int(cached)},
        "completion_tokens_details": {"reasoning_tokens": int(reasoning)},
    }


class ResponseResult(ChatResult):
    """A complete Responses API answer; ``usage`` in chat's shape for accounting, ``data``
    the response object as the client receives it."""

    __slots__ = ()

    @classmethod
    def of(cls, response: dict[str, Any]) -> ResponseResult:
        """The result for a response object."""
        return cls(orjson.dumps(response), response)

    @property
    def usage(self) -> dict[str, Any] | None:
        """The response's token usage, in chat-completions' shape."""
        return chat_usage(self.data.get("usage"))


def event_frame(name: bytes, payload: bytes) -> bytes:
    """One server-sent event of the Responses stream (``event:`` line and JSON data)."""
    return b"event: " + name + b"\ndata: " + payload + b"\n\n"


def error_frame(error: GatewayError, sequence_number: int = 0) -> bytes:
    """The Responses stream's ``error`` event for a failure after the first byte."""
    payload = {
        "type": "error",
        "code": error.code or error.type,
        "message": error.message,
        "param": error.param,
        "sequence_number": sequence_number,
    }
    return event_frame(b"error", orjson.dumps(payload))


class ResponsesErrors(ErrorShape):
    """Errors of the Responses API: OpenAI's body, and the stream's typed ``error`` event."""

    def frame(self, error: GatewayError) -> bytes:
        return error_frame(error)


RESPONSES_ERRORS = ResponsesErrors()


class NativeStream:
    """Forwards an upstream Responses stream event by event.

    Only the lifecycle events (which carry the response object) are parsed: their
    ``store`` and ``previous_response_id`` are set to the client's, and the final one
    gives the usage and the response the gateway stores. An ``error`` event before any
    other is raised (the router retries and fails over); after, it is forwarded."""

    __slots__ = ("_done", "client_fields", "state")

    def __init__(self, client_fields: dict[str, Any]) -> None:
        self.client_fields = client_fields
        self.state = StreamState()
        self._done = False

    def feed(self, event: bytes | None, data: bytes) -> list[bytes]:
        """The client frames for one upstream event."""
        payload: dict[str, Any] | None = None
        if event is None:  # an upstream that omits the ``event:`` line
            payload = orjson.loads(data)
            event = str(payload.get("type", "")).encode()
        if event in LIFECYCLE:
            payload = payload or orjson.loads(data)
            response = payload.get("response")
            if isinstance(response, dict):
                response.update(self.client_fields)
                if event in TERMINAL:
                    self._done = True
                    self.state.usage = chat_usage(response.get("usage"))
                    self.state.finish_reason = str(response.get("status"))
                    self.state.extra["response"] = response
            data = orjson.dumps(payload)
        elif event == b"error":
            payload = payload or orjson.loads(data)
            if not self.state.chunks:
                raise GatewayError(
                    502,
                    str(payload.get("message") or "upstream stream error"),
                    code=payload.get("code"),
                    type="server_error",
                )
            self._done = True
        self.state.chunks += 1
        return [event_frame(event, data)]

    def done(self) -> bool:
        """Whether the upstream sent its terminal event."""
        return self._done

    def finish(self) -> list[bytes]:
        """Nothing follows the terminal event (a Responses stream has no ``[DONE]``)."""
        return []
