"""Shared pieces of embeddings translation for providers whose API is not OpenAI's.

Such an adapter turns the OpenAI body into one or more upstream requests
(``embeddings_requests``) and the upstream responses back into one OpenAI
``list`` of ``embedding`` objects (``embeddings_response``). The helpers here
read the OpenAI fields every such adapter needs and build the response.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

import orjson

from gateway_app.errors import invalid
from gateway_app.providers.base import ChatResult

ENCODINGS = ("float", "base64")


def text_inputs(body: dict[str, Any], provider: str) -> list[str]:
    """``input`` as a list of strings; token arrays are a 400 naming ``input``."""
    value = body["input"]
    texts = [value] if isinstance(value, str) else value
    for index, item in enumerate(texts):
        if not isinstance(item, str):
            raise invalid(
                "input",
                f"Invalid 'input[{index}]': {provider} embeddings take text; token arrays "
                "(lists of integers) are only accepted by OpenAI-compatible providers. "
                "Send the text instead.",
                "invalid_type",
            )
        if not item:
            raise invalid(
                "input",
                f"Invalid 'input[{index}]': empty string; {provider} rejects empty text.",
                "invalid_value",
            )
    return texts


def encoding_format(body: dict[str, Any]) -> str:
    """``encoding_format`` (``float`` by default), or a 400 naming it."""
    value = body.get("encoding_format") or "float"
    if value not in ENCODINGS:
        raise invalid(
            "encoding_format",
            f"Invalid value: {value!r}. Supported values are: 'float' and 'base64'.",
            "invalid_value",
        )
    return str(value)


def dimensions(body: dict[str, Any]) -> int | None:
    """``dimensions`` if given (a positive integer), or a 400 naming it."""
    value = body.get("dimensions")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(
            "dimensions",
            f"Invalid 'dimensions': {value!r}; expected a positive integer.",
            "invalid_value",
        )
    return value


def openai_response(
    vectors: Sequence[Sequence[float]], prompt_tokens: int, model: str, encoding: str
) -> ChatResult:
    """OpenAI's embeddings response for ``vectors`` in input order."""
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                if encoding == "base64"
                else list(vector)
            ),
        }
        for index, vector in enumerate(vectors)
    ]
    result = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
    return ChatResult(orjson.dumps(result), result)
