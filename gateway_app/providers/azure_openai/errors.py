"""Azure OpenAI errors -> OpenAI-shaped errors; content-filter blocks named clearly."""

from __future__ import annotations

from typing import Any

import orjson

from gateway_app.errors import GatewayError
from gateway_app.providers.openai.adapter import openai_error


def filtered_categories(result: Any) -> list[str]:
    """``["hate (high)", "jailbreak"]`` from a ``content_filter_result(s)`` object."""
    found = []
    for category, verdict in (result or {}).items() if isinstance(result, dict) else []:
        if isinstance(verdict, dict) and verdict.get("filtered"):
            severity = verdict.get("severity")
            found.append(f"{category} ({severity})" if severity else category)
    return found


def translate_error(status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
    """The OpenAI-shaped error for an Azure OpenAI error response."""
    error: dict[str, Any] = {}
    try:
        parsed = orjson.loads(raw)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            error = parsed["error"]
    except orjson.JSONDecodeError:
        pass
    inner = error.get("innererror") or {}
    if error.get("code") == "content_filter" or inner.get("code") == "ResponsibleAIPolicyViolation":
        categories = filtered_categories(inner.get("content_filter_result"))
        return GatewayError(
            400,
            "Azure OpenAI's content filter blocked the prompt"
            + (f" ({', '.join(categories)})" if categories else "")
            + "; rephrase it or adjust the deployment's content filter policy",
            param=error.get("param") or "messages",
            code="content_filter",
            type="invalid_request_error",
        )
    result = openai_error(status, raw, headers)
    # Azure puts the HTTP status in ``code`` ("429", "401"); OpenAI clients expect a word.
    if result.code is not None and str(result.code).isdigit():
        result.code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
    return result
