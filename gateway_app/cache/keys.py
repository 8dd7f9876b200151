"""Cache keys: what makes two requests ask for the same answer.

Everything in the body changes the output except a few fields that only label
the request (``user``, ``metadata``, ``store``, ...). The key also binds the
tenant (a team never receives another team's answer) and whether the response
is streamed (a stream is replayed as the frames it was). Canonical JSON with
sorted keys, so field order in the client's body does not matter.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

# Fields that do not change the model's answer. Everything else is part of the key,
# including fields this gateway does not know yet: a new sampling parameter can
# never make two different requests share an answer.
IGNORED_FIELDS = frozenset(
    {"user", "metadata", "store", "stream", "service_tier", "safety_identifier", "prompt_cache_key"}
)


def _digest(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def exact_key(body: dict[str, Any], tenant: str, stream: bool, namespace: str = "") -> str:
    """The exact-cache key of a model call for ``tenant``; ``namespace`` (a wire API's
    path; empty for chat) keeps each API's answers apart."""
    kept = {k: v for k, v in body.items() if k not in IGNORED_FIELDS}
    canonical = orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)
    parts = (tenant.encode(), b"s" if stream else b"j", canonical)
    return "x:" + _digest(*parts, namespace.encode()) if namespace else "x:" + _digest(*parts)


def semantic_scope(body: dict[str, Any], tenant: str, stream: bool) -> str | None:
    """The part of a request that must match exactly for a semantic hit, hashed.

    That is everything except the text of the last user message: model,
    parameters, tools, the system prompt and every earlier turn. Two
    conversations that end with the same question after different histories
    are different scopes. None when the last message is not plain user text.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    if last_user_text(messages) is None:
        return None
    kept = {k: v for k, v in body.items() if k not in IGNORED_FIELDS and k != "messages"}
    kept["history"] = messages[:-1]
    canonical = orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)
    return "s:" + _digest(tenant.encode(), b"s" if stream else b"j", canonical)


def last_user_text(messages: list[Any]) -> str | None:
    """The text of the final message when it is a user message of text only."""
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                return None  # images and audio: no semantic match on a caption
            texts.append(str(part.get("text", "")))
        return "\n".join(texts)
    return None
