"""The exact cache's view of a Responses call: its key, and a stored answer replayed.

The key covers the whole conversation the upstream sees (the chained history of
``previous_response_id`` and ``input``, item ids dropped as they are upstream), so
the same conversation reached by chaining or sent whole meets the same answer. A
stored answer is a complete response object (or its complete event stream); a hit
is served as a new response: new response and output item ids (the same new id
everywhere the stream names it), ``created_at`` now, and the client's own ``store``
and ``previous_response_id``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway_app.protocols.openai_responses.items import input_items, new_id, replayable

_DATA = b"data: "


def cache_body(body: dict[str, Any], history: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The body the cache key is made of: the request with its whole conversation as
    ``input`` and without ``previous_response_id``."""
    keyed = {k: v for k, v in body.items() if k != "previous_response_id"}
    keyed["input"] = replayable([*(history or []), *input_items(body)])
    return keyed


def _client_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "created_at": int(time.time()),
        "store": body.get("store", True) is not False,
        "previous_response_id": body.get("previous_response_id"),
    }


def _renamed(raw: bytes, response: dict[str, Any]) -> bytes:
    """``raw`` with the ids of ``response`` and of its output items replaced by new ones
    of the same prefix, consistently (every event that names one names the new one)."""
    ids = [response.get("id"), *(item.get("id") for item in response.get("output") or [])]
    for old in ids:
        if isinstance(old, str) and old:
            prefix = old.partition("_")[0] if "_" in old else "resp"
            raw = raw.replace(old.encode(), new_id(prefix).encode())
    return raw


def _last_response(raw: bytes) -> dict[str, Any]:
    """The response object of a stored stream's last lifecycle event (``response.completed``)."""
    for line in reversed(raw.split(b"\n")):
        if line.startswith(_DATA) and b'"response"' in line:
            response = orjson.loads(line[len(_DATA) :]).get("response")
            if isinstance(response, dict):
                return response
    return {}


def replay(raw: bytes, stream: bool, body: dict[str, Any]) -> tuple[bytes, dict[str, Any] | None]:
    """A stored answer (``raw``: JSON, or an event stream) as a new response for the
    request ``body``; with the response object the response store keeps (None when the
    stream carries none)."""
    fields = _client_fields(body)
    if not stream:
        response = orjson.loads(_renamed(raw, orjson.loads(raw)))
        response.update(fields)
        return orjson.dumps(response), response
    raw = _renamed(raw, _last_response(raw))
    frames = []
    final: dict[str, Any] | None = None
    for frame in raw.split(b"\n\n"):
        if not frame:
            continue
        lines = frame.split(b"\n")
        for i, line in enumerate(lines):
            if not line.startswith(_DATA):
                continue
            payload = orjson.loads(line[len(_DATA) :])
            response = payload.get("response") if isinstance(payload, dict) else None
            if isinstance(response, dict):
                response.update(fields)
                final = response
                lines[i] = _DATA + orjson.dumps(payload)
        frames.append(b"\n".join(lines))
    return b"\n\n".join(frames) + b"\n\n", final
