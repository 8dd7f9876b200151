"""Azure OpenAI stream chunks -> OpenAI chunks.

Azure streams OpenAI's chunks, plus a first chunk with empty ``choices`` that
only carries ``prompt_filter_results`` (and may send more filter-only chunks).
OpenAI never sends a choiceless chunk except the usage one, and clients index
``choices[0]``, so those are dropped; everything else is OpenAI's handling.
"""

from __future__ import annotations

from gateway_app.providers.openai.adapter import OpenAIStream


class AzureOpenAIStream(OpenAIStream):
    """OpenAI's stream handling minus Azure's filter-only chunks."""

    __slots__ = ()

    def feed(self, event: bytes | None, data: bytes) -> list[bytes]:
        if b'"choices":[]' in data and b'"usage":{' not in data:
            return []
        return super().feed(event, data)
