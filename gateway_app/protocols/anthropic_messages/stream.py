"""Messages streams: the native relay, and chat-completion chunks turned into Messages events.

Both produce Anthropic's event sequence (``message_start``; per content block
``content_block_start``, ``content_block_delta``..., ``content_block_stop``;
``message_delta`` with the stop reason and usage; ``message_stop``; ``ping`` and
``error`` where the upstream sends them) as ``event: <type>\\ndata: <json>\\n\\n``
frames, and record the usage (Anthropic's fields, cache reads and writes
included) in ``state`` for governance and the logs.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_app.providers.anthropic.errors import stream_error
from gateway_app.providers.base import StreamState, StreamTranslator


def event_frame(kind: str, payload: dict[str, Any]) -> bytes:
    """One Messages stream event."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def merge_usage(usage: dict[str, Any], update: dict[str, Any] | None) -> None:
    """Fold a ``message_delta``'s usage into ``usage``: its counts are cumulative totals,
    and a field it omits keeps the ``message_start`` value (as the SDK reads them)."""
    for name, value in (update or {}).items():
        if value is not None:
            usage[name] = value


class MessagesRelay:
    """A native Messages stream, relayed event by event with the upstream's own bytes."""

    def __init__(self) -> None:
        self.state = StreamState()
        self._usage: dict[str, Any] = {}
        self._done = False

    def feed(self, event: bytes | None, data: bytes) -> list[bytes]:
        payload = orjson.loads(data)
        kind = payload.get("type")
        if kind == "error":
            raise stream_error(payload)
        if kind == "message_start":
            self._usage = dict((payload.get("message") or {}).get("usage") or {})
        elif kind == "message_delta":
            # The usage counts once the final totals arrive: a stream cut before them
            # reports none, and governance bills its upper bound (as a cut chat stream).
            merge_usage(self._usage, payload.get("usage"))
            self.state.usage = self._usage
            self.state.finish_reason = (payload.get("delta") or {}).get("stop_reason")
        elif kind == "message_stop":
            self._done = True
        self.state.chunks += 1
        name = event or (kind.encode() if isinstance(kind, str) else b"message")
        return [b"event: " + name + b"\ndata: " + data + b"\n\n"]

    def done(self) -> bool:
        return self._done

    def finish(self) -> list[bytes]:
        return []


# OpenAI finish_reason -> Anthropic stop_reason.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish: str | None) -> str:
    """Anthropic's ``stop_reason`` for OpenAI's ``finish_reason`` (OpenAI says "stop" for a
    stop sequence too, so a translated answer never reports ``stop_sequence``)."""
    return STOP_REASONS.get(finish or "stop", "end_turn")


def messages_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    """Anthropic's usage from OpenAI's: ``input_tokens`` excludes cached reads, as Anthropic's."""
    u = usage or {}
    prompt = int(u.get("prompt_tokens") or 0)
    cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return {
        "input_tokens": max(0, prompt - cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": int(u.get("completion_tokens") or 0),
    }


class ChatToMessagesStream:
    """A chat-completions stream (any adapter's translator, asked for usage) as Messages events.

    Text deltas open a text block; each tool call opens a ``tool_use`` block whose
    argument fragments become ``input_json_delta``s; the finish reason and the usage
    chunk make ``message_delta`` and ``message_stop`` once the upstream ends.
    """

    def __init__(self, chat: StreamTranslator, message_id: str, model: str) -> None:
        self.chat = chat
        self.state = StreamState()
        self._id = message_id
        self._model = model
        self._started = False
        self._block: tuple[str, int] | None = None  # ("text", -1) or ("tool", OpenAI index)
        self._index = -1
        self._finish: str | None = None
        self._ended = False

    def feed(self, event: bytes | None, data: bytes) -> list[bytes]:
        return self._translate(self.chat.feed(event, data))

    def done(self) -> bool:
        return self.chat.done()

    def finish(self) -> list[bytes]:
        frames = self._translate(self.chat.finish())
        if not self._ended:
            frames.extend(self._end())
        return frames

    def _translate(self, chat_frames: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for frame in chat_frames:
            if not frame.startswith(b"data: ") or frame.startswith(b"data: [DONE]"):
                continue
            chunk = orjson.loads(frame[6:])
            if not self._started:
                out.append(self._start())
            if chunk.get("usage"):
                self.state.usage = messages_usage(chunk["usage"])
            for choice in chunk.get("choices") or []:
                out.extend(self._delta(choice.get("delta") or {}))
                if choice.get("finish_reason"):
                    self._finish = choice["finish_reason"]
        return out

    def _start(self) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return event_frame("message_start", {"type": "message_start", "message": message})

    def _open(self, block: tuple[str, int], content_block: dict[str, Any]) -> list[bytes]:
        frames = self._close()
        self._index += 1
        self._block = block
        frames.append(
            event_frame(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": self._index,
                    "content_block": content_block,
                },
            )
        )
        return frames

    def _close(self) -> list[bytes]:
        if self._block is None:
            return []
        self._block = None
        return [
            event_frame("content_block_stop", {"type": "content_block_stop", "index": self._index})
        ]

    def _delta(self, delta: dict[str, Any]) -> list[bytes]:
        frames: list[bytes] = []
        text = delta.get("content")
        if text:
            if self._block != ("text", -1):
                frames.extend(self._open(("text", -1), {"type": "text", "text": ""}))
            frames.append(self._block_delta({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or []:
            block = ("tool", int(call.get("index") or 0))
            function = call.get("function") or {}
            if self._block != block:
                frames.extend(
                    self._open(
                        block,
                        {
                            "type": "tool_use",
                            "id": call.get("id") or f"toolu_{block[1]}",
                            "name": function.get("name") or "",
                            "input": {},
                        },
                    )
                )
            arguments = function.get("arguments")
            if arguments:
                frames.append(
                    self._block_delta({"type": "input_json_delta", "partial_json": arguments})
                )
        return frames

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        self.state.chunks += 1
        return event_frame(
            "content_block_delta",
            {"type": "content_block_delta", "index": self._index, "delta": delta},
        )

    def _end(self) -> list[bytes]:
        self._ended = True
        frames = [] if self._started else [self._start()]
        frames.extend(self._close())
        # No usage from the upstream stays None in ``state`` (governance then bills the
        # reservation, never zero); the client's event needs numbers.
        usage = self.state.usage or messages_usage(None)
        self.state.finish_reason = reason = stop_reason(self._finish)
        frames.append(
            event_frame(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        frames.append(event_frame("message_stop", {"type": "message_stop"}))
        return frames
