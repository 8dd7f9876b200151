"""Azure OpenAI response -> OpenAI chat completion (the same shape; filter results kept)."""

from __future__ import annotations

from gateway_app.providers.base import ChatResult


def translate_response(raw: bytes) -> ChatResult:
    """Azure's body is OpenAI's plus ``prompt_filter_results``/``content_filter_results``,
    which OpenAI clients ignore: forwarded byte for byte, like OpenAI's own."""
    return ChatResult(raw)
