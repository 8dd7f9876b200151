"""OpenAI embeddings <-> Vertex AI ``:predict`` for Google's text-embedding models.

``text-embedding-005``, ``text-multilingual-embedding-002`` and
``gemini-embedding-001`` take ``{"instances": [{"content": ...}], "parameters":
{"outputDimensionality": N}}`` and answer ``{"predictions": [{"embeddings":
{"values": [...], "statistics": {"token_count": N}}}]}``. One request carries up
to :data:`MAX_INSTANCES` inputs (``gemini-embedding-001`` accepts one per
request at Google; the upstream's 400 then says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.errors import invalid
from gateway_app.providers.base import ChatResult
from gateway_app.providers.embeddings import (
    dimensions,
    encoding_format,
    openai_response,
    text_inputs,
)

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig

MAX_INSTANCES = 250


def request_body(body: dict[str, Any], deployment: DeploymentConfig) -> dict[str, Any]:
    """The ``:predict`` body for an OpenAI embeddings body."""
    texts = text_inputs(body, "Vertex AI")
    encoding_format(body)
    if len(texts) > MAX_INSTANCES:
        raise invalid(
            "input",
            f"Invalid 'input': {len(texts)} items; Vertex AI embeds at most {MAX_INSTANCES} "
            "per request. Split the list.",
            "invalid_value",
        )
    task_type = deployment.params.get("task_type")
    extra = {"task_type": task_type} if task_type else {}
    upstream: dict[str, Any] = {"instances": [{"content": text, **extra} for text in texts]}
    size = dimensions(body)
    if size is not None:
        upstream["parameters"] = {"outputDimensionality": size}
    return upstream


def translate_response(raw: bytes, body: dict[str, Any]) -> ChatResult:
    """The OpenAI embeddings response for a ``:predict`` response."""
    predictions = orjson.loads(raw)["predictions"]
    vectors = [p["embeddings"]["values"] for p in predictions]
    tokens = sum(
        int((p["embeddings"].get("statistics") or {}).get("token_count") or 0) for p in predictions
    )
    return openai_response(vectors, tokens, str(body["model"]), encoding_format(body))
