"""The Responses API as OpenAI and Azure OpenAI serve it, for the fakes of both.

:func:`reply` answers one ``POST .../responses`` body under a scripted
:class:`Behaviour`: the response object, or its stream of typed events in
OpenAI's order (``response.created``, ``response.in_progress``, per output item
``output_item.added``, ``content_part.added``, text or argument deltas, their
``done`` events, ``output_item.done``; then ``response.completed``). Like the real
service with ``store: false``, the fake keeps nothing: a ``previous_response_id``
gets OpenAI's 400, so a test sees the gateway never forwards one.
tests/gateway/test_fakes_fidelity.py checks the fake with the official SDK.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from tests.fakes.fakes import Behaviour

_IDS = itertools.count(1)


def last_user_text(body: dict[str, Any]) -> str:
    """What the fake echoes: the last user text, or the last tool output it was given."""
    value = body.get("input")
    if isinstance(value, str):
        return value
    for item in reversed(value or []):
        if item.get("type") == "function_call_output":
            return f"tool said {item.get('output')}"
        if item.get("type", "message") == "message" and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            texts = [p.get("text", "") for p in content or [] if p.get("type") == "input_text"]
            return " ".join(texts)
    return ""


def previous_response_error(body: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's 400 for a ``previous_response_id`` it does not have (the fake has none)."""
    previous = body.get("previous_response_id")
    if previous is None:
        return None
    return {
        "error": {
            "message": f"Previous response with id '{previous}' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }


def _response(body: dict[str, Any], ident: str, status: str, output: list[Any], usage: Any) -> Any:
    return {
        "id": ident,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model", "gpt-fake"),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def reply(body: dict[str, Any], behaviour: Behaviour) -> tuple[dict[str, Any] | None, list[bytes]]:
    """The response object (not streamed), or the stream's SSE events."""
    n = next(_IDS)
    ident = f"resp_fake{n:06d}"
    text = behaviour.content if behaviour.content is not None else "echo: " + last_user_text(body)
    prompt, completion = behaviour.usage
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": behaviour.cached_tokens},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }
    items: list[dict[str, Any]] = []
    if not behaviour.tool_calls or behaviour.content:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        items.append(
            {
                "id": f"msg_fake{n:06d}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    for i, call in enumerate(behaviour.tool_calls or []):
        items.append(
            {
                "id": f"fc_fake{n:06d}_{i}",
                "type": "function_call",
                "status": "completed",
                "call_id": f"call_fake{n:06d}_{i}",
                "name": call["name"],
                "arguments": orjson.dumps(call.get("arguments", {})).decode(),
            }
        )
    final = _response(body, ident, "completed", items, usage)
    if not body.get("stream"):
        return final, []
    sequence = itertools.count()

    def event(kind: str, **payload: Any) -> bytes:
        data = {"type": kind, "sequence_number": next(sequence), **payload}
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    pending = _response(body, ident, "in_progress", [], None)
    events = [event("response.created", response=pending)]
    events.append(event("response.in_progress", response=pending))
    for index, item in enumerate(items):
        if item["type"] == "message":
            full = item["content"][0]
            events.append(
                event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "content": []},
                )
            )
            empty = {**full, "text": ""}
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            events.append(event("response.content_part.added", **where, part=empty))
            for piece in _pieces(full["text"]):
                events.append(
                    event("response.output_text.delta", **where, delta=piece, logprobs=[])
                )
            events.append(
                event("response.output_text.done", **where, text=full["text"], logprobs=[])
            )
            events.append(event("response.content_part.done", **where, part=full))
        else:
            events.append(
                event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "arguments": ""},
                )
            )
            arguments = item["arguments"]
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                events.append(
                    event(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=index,
                        delta=piece,
                    )
                )
            events.append(
                event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=item["name"],
                    arguments=arguments,
                )
            )
        events.append(event("response.output_item.done", output_index=index, item=item))
    events.append(event("response.completed", response=final))
    return None, events


STREAM_ERROR = (
    b'event: error\ndata: {"type":"error","code":"server_error","message":"stream broke",'
    b'"param":null,"sequence_number":3}\n\n'
)


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)] or [""]
