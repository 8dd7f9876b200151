"""Input items: the conversation a Responses request continues, as the model sees it.

The gateway keeps each stored response's whole conversation (its input items and
its output), so a turn chained with ``previous_response_id`` is sent upstream as
one complete ``input`` with ``store: false``: it works whichever deployment or
provider serves the next turn, and no upstream keeps the team's data.
"""

from __future__ import annotations

import secrets
from typing import Any


def new_id(prefix: str) -> str:
    """An OpenAI-style id (``resp_...``, ``msg_...``): 48 random hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


def input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's ``input`` as a list of items (a string is one user message)."""
    value = body.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return list(value)


def listed(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items as ``GET /v1/responses/{id}/input_items`` lists them: each with an ``id``,
    message contents as parts (OpenAI's ``ResponseInputMessageItem``)."""
    result = []
    for item in items:
        entry = dict(item)
        kind = entry.setdefault("type", "message")
        if kind == "message":
            content = entry.get("content")
            if isinstance(content, str):
                part = "output_text" if entry.get("role") == "assistant" else "input_text"
                entry["content"] = [{"type": part, "text": content}]
            entry.setdefault("status", "completed")
        if not entry.get("id"):
            entry["id"] = new_id("msg" if kind == "message" else "item")
        result.append(entry)
    return result


def replayable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items made fit to send as input with ``store: false``.

    Item ids are dropped (the upstream kept nothing to resolve them against), and so
    are reasoning items without ``encrypted_content``: only their encrypted form can
    be replayed (ask ``include: ["reasoning.encrypted_content"]`` to keep them)."""
    result = []
    for item in items:
        if item.get("type") == "reasoning" and not item.get("encrypted_content"):
            continue
        result.append({k: v for k, v in item.items() if k != "id"})
    return result
