"""ConverseStream: AWS event-stream framing decoded, events mapped to OpenAI chunks.

The body is a sequence of binary event-stream messages (prelude, headers,
JSON payload, CRCs); botocore's parser validates the framing and the CRCs.
``messageStart`` opens the stream (a chunk with the assistant role),
``contentBlockStart``/``contentBlockDelta`` become content or tool-call deltas
(tool calls numbered among tool calls only, as OpenAI numbers them),
``messageStop`` carries the stop reason, ``metadata`` the usage and ends the
stream; the usage chunk (empty ``choices``) follows when the client asked for
it; ``exception`` messages become an in-stream error.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
from botocore.eventstream import EventStreamBuffer, ParserError

from gateway_app.errors import GatewayError
from gateway_app.providers.base import StreamState, chunk_frame, closing_frames
from gateway_app.providers.bedrock.errors import stream_exception
from gateway_app.providers.bedrock.response import completion_id, finish_reason, usage
from gateway_app.providers.translation import JSON_TOOL

EXCEPTION_PREFIX = b"!"


class EventStreamDecoder:
    """Incremental AWS event-stream decoder with the router's ``(event, data)`` interface.

    ``event`` is the ``:event-type`` header; exception messages are reported as
    ``!`` + ``:exception-type`` so the translator can raise them.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        """Complete messages in ``chunk`` (plus what earlier calls left over)."""
        self._buffer.add_data(chunk)
        events: list[tuple[bytes | None, bytes]] = []
        try:
            for message in self._buffer:
                headers = message.headers
                kind = headers.get(":message-type")
                if kind == "event":
                    events.append((str(headers.get(":event-type", "")).encode(), message.payload))
                elif kind in ("exception", "error"):
                    name = headers.get(":exception-type") or headers.get(":error-code") or ""
                    events.append((EXCEPTION_PREFIX + str(name).encode(), message.payload))
        except ParserError as exc:
            raise GatewayError(502, f"Bedrock stream framing is corrupt: {exc}") from None
        return events

    def close(self) -> list[tuple[bytes | None, bytes]]:
        """Nothing: a partial message at the end is an incomplete stream."""
        return []


class BedrockStream:
    """State machine over one ConverseStream."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.state = StreamState()
        self._id = completion_id()
        self._model = model
        self._created = int(time.time())
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # Converse block index -> OpenAI tool index
        self._json_blocks: set[int] = set()
        self._done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        self.state.chunks += 1
        return chunk_frame(self._id, self._created, self._model, delta, finish)

    def feed(self, event: bytes | None, data: bytes) -> list[bytes]:
        if event and event.startswith(EXCEPTION_PREFIX):
            raise stream_exception(event[1:].decode(), data)
        payload = orjson.loads(data) if data else {}
        if event == b"contentBlockDelta":
            index = payload.get("contentBlockIndex", 0)
            delta = payload.get("delta") or {}
            if "text" in delta:
                return [self._chunk({"content": delta["text"]})]
            if "toolUse" in delta:
                partial = (delta["toolUse"] or {}).get("input", "")
                if index in self._json_blocks:
                    return [self._chunk({"content": partial})]
                return [
                    self._chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": self._tool_index.get(index, 0),
                                    "function": {"arguments": partial},
                                }
                            ]
                        }
                    )
                ]
            return []  # reasoningContent and citation deltas have no OpenAI counterpart
        if event == b"messageStart":
            return [self._chunk({"role": "assistant", "content": "", "refusal": None})]
        if event == b"contentBlockStart":
            index = payload.get("contentBlockIndex", 0)
            use = (payload.get("start") or {}).get("toolUse")
            if not use:
                return []
            if use.get("name") == JSON_TOOL:
                self._json_blocks.add(index)
                return []
            tool_index = len(self._tool_index)
            self._tool_index[index] = tool_index
            return [
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": tool_index,
                                "id": use.get("toolUseId"),
                                "type": "function",
                                "function": {"name": use.get("name"), "arguments": ""},
                            }
                        ]
                    }
                )
            ]
        if event == b"messageStop":
            reason = finish_reason(payload.get("stopReason"), bool(self._json_blocks))
            self.state.finish_reason = reason
            return [self._chunk({}, reason)]
        if event == b"metadata":
            self._usage = payload.get("usage") or {}
            self._done = True
            return []
        return []  # contentBlockStop, unknown future events

    def done(self) -> bool:
        return self._done

    def finish(self) -> list[bytes]:
        self.state.usage = usage(self._usage)
        return closing_frames(
            self._id, self._created, self._model, self.state.usage, self.include_usage
        )


# Bedrock's in-stream exceptions as the Messages API's error types (the Messages relay
# raises them like Anthropic's own ``error`` events: retried and failed over before the
# first byte, an ``error`` event after it).
MESSAGES_ERROR_TYPES = {
    "ThrottlingException": "rate_limit_error",
    "ServiceUnavailableException": "overloaded_error",
    "ValidationException": "invalid_request_error",
    "ModelTimeoutException": "timeout_error",
}


class InvokeStreamDecoder:
    """InvokeModelWithResponseStream of a Claude model as ``(event type, Messages event)``.

    Each ``chunk`` event's payload is ``{"bytes": base64(Messages event JSON)}``
    (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html);
    an exception message becomes a Messages ``error`` event.
    """

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events = EventStreamDecoder()

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        """Complete Messages events in ``chunk`` (plus what earlier calls left over)."""
        out: list[tuple[bytes | None, bytes]] = []
        for event, payload in self._events.feed(chunk):
            if event is not None and event.startswith(EXCEPTION_PREFIX):
                error = stream_exception(event[1:].decode(), payload)
                kind = MESSAGES_ERROR_TYPES.get(str(error.code), "api_error")
                body = {"type": "error", "error": {"type": kind, "message": error.message}}
                out.append((b"error", orjson.dumps(body)))
            elif event == b"chunk":
                data = base64.b64decode(orjson.loads(payload)["bytes"])
                out.append((orjson.loads(data).get("type", "").encode(), data))
        return out

    def close(self) -> list[tuple[bytes | None, bytes]]:
        """Nothing: a partial message at the end is an incomplete stream."""
        return []
