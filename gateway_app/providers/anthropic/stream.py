"""Anthropic Messages stream events -> OpenAI chat-completion chunks.

``message_start`` opens the stream (a chunk with the assistant role),
``content_block_start``/``content_block_delta`` become content or tool-call
deltas (tool calls numbered among tool calls only, as OpenAI numbers them),
``message_delta`` carries the stop reason and output tokens, ``message_stop``
ends it; the usage chunk (empty ``choices``) follows when the client asked for
it; ``error`` events become an in-stream error.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway_app.providers.anthropic.errors import stream_error
from gateway_app.providers.anthropic.response import finish_reason, usage
from gateway_app.providers.base import StreamState, chunk_frame, closing_frames
from gateway_app.providers.translation import JSON_TOOL


class AnthropicStream:
    """State machine over one Messages stream."""

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.state = StreamState()
        self._id = "chatcmpl-anthropic"
        self._model = ""
        self._created = int(time.time())
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool index
        self._json_blocks: set[int] = set()
        self._done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        self.state.chunks += 1
        return chunk_frame(self._id, self._created, self._model, delta, finish)

    def feed(self, event: bytes | None, data: bytes) -> list[bytes]:
        payload = orjson.loads(data)
        kind = payload.get("type")
        if kind == "content_block_delta":
            index = payload.get("index", 0)
            delta = payload.get("delta") or {}
            delta_type = delta.get("type")
            if delta_type == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta_type == "input_json_delta":
                if index in self._json_blocks:
                    return [self._chunk({"content": delta.get("partial_json", "")})]
                return [
                    self._chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": self._tool_index.get(index, 0),
                                    "function": {"arguments": delta.get("partial_json", "")},
                                }
                            ]
                        }
                    )
                ]
            return []  # thinking and signature deltas have no OpenAI counterpart
        if kind == "message_start":
            message = payload.get("message") or {}
            self._id = message.get("id") or self._id
            self._model = message.get("model") or self._model
            self._usage = dict(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": "", "refusal": None})]
        if kind == "content_block_start":
            index = payload.get("index", 0)
            block = payload.get("content_block") or {}
            if block.get("type") != "tool_use":
                return []
            if block.get("name") == JSON_TOOL:
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
                                "id": block.get("id"),
                                "type": "function",
                                "function": {"name": block.get("name"), "arguments": ""},
                            }
                        ]
                    }
                )
            ]
        if kind == "message_delta":
            delta = payload.get("delta") or {}
            self._usage.update(
                {k: v for k, v in (payload.get("usage") or {}).items() if v is not None}
            )
            reason = finish_reason(delta.get("stop_reason"), bool(self._json_blocks))
            self.state.finish_reason = reason
            return [self._chunk({}, reason)]
        if kind == "message_stop":
            self._done = True
            return []
        if kind == "error":
            raise stream_error(payload)
        return []  # ping, content_block_stop, unknown future events

    def done(self) -> bool:
        return self._done

    def finish(self) -> list[bytes]:
        self.state.usage = usage(self._usage)
        return closing_frames(
            self._id, self._created, self._model, self.state.usage, self.include_usage
        )
