"""Vertex AI ``streamGenerateContent?alt=sse`` -> OpenAI chat-completion chunks.

Each SSE event is a whole ``GenerateContentResponse`` holding the next text
parts; function calls arrive whole (one OpenAI delta with the full arguments);
the last event has the ``finishReason`` and the final ``usageMetadata``. A
blocked prompt is an event with ``promptFeedback.blockReason`` and no
candidates: a ``content_filter`` finish. The stream ends when the upstream
closes it (there is no end-of-stream event).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from gateway_app.errors import GatewayError
from gateway_app.providers.base import StreamState, chunk_frame, closing_frames
from gateway_app.providers.vertex.errors import from_body
from gateway_app.providers.vertex.response import finish_reason, split_parts, usage


class VertexStream:
    """State machine over one Gemini stream."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.state = StreamState()
        self._id = "chatcmpl-" + uuid.uuid4().hex[:24]
        self._model = model
        self._created = int(time.time())
        self._usage: dict[str, Any] = {}
        self._started: set[int] = set()
        self._tool_counts: dict[int, int] = {}
        self._finished: set[int] = set()
        self._expected = 1
        self._done = False

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        self.state.chunks += 1
        return chunk_frame(self._id, self._created, self._model, delta, finish, index)

    def feed(self, event: bytes | None, data: bytes) -> list[bytes]:
        payload = orjson.loads(data)
        if isinstance(payload, list):  # a JSON array stream (alt=sse not honoured)
            payload = payload[0] if payload else {}
        if "error" in payload:
            raise from_body(payload, 502)
        if payload.get("modelVersion"):
            self._model = payload["modelVersion"]
        if payload.get("usageMetadata"):
            self._usage = payload["usageMetadata"]
        frames: list[bytes] = []
        candidates = payload.get("candidates") or []
        if not candidates and (payload.get("promptFeedback") or {}).get("blockReason"):
            frames.append(self._chunk(0, {"role": "assistant", "content": ""}))
            frames.append(self._chunk(0, {}, "content_filter"))
            self.state.finish_reason = "content_filter"
            self._done = True
            return frames
        for position, candidate in enumerate(candidates):
            index = candidate.get("index", position)
            self._expected = max(self._expected, index + 1)
            if index not in self._started:
                self._started.add(index)
                frames.append(
                    self._chunk(index, {"role": "assistant", "content": "", "refusal": None})
                )
            text, calls = split_parts((candidate.get("content") or {}).get("parts") or [])
            if text:
                frames.append(self._chunk(index, {"content": text}))
            if calls:
                first = self._tool_counts.get(index, 0)
                self._tool_counts[index] = first + len(calls)
                frames.append(
                    self._chunk(
                        index,
                        {"tool_calls": [{"index": first + i, **c} for i, c in enumerate(calls)]},
                    )
                )
            reason = candidate.get("finishReason")
            if reason:
                finish = finish_reason(reason, bool(self._tool_counts.get(index)))
                self.state.finish_reason = finish
                self._finished.add(index)
                frames.append(self._chunk(index, {}, finish))
        if self._finished and len(self._finished) >= self._expected:
            self._done = True
        return frames

    def done(self) -> bool:
        return self._done

    def finish(self) -> list[bytes]:
        self.state.usage = usage(self._usage)
        return closing_frames(
            self._id, self._created, self._model, self.state.usage, self.include_usage
        )


__all__ = ["GatewayError", "VertexStream"]
