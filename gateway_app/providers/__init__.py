"""Provider adapters: one folder per upstream wire format.

Each folder exports ``ADAPTER``, an object implementing
:class:`gateway_app.providers.base.ProviderAdapter` (request, response, stream
event and error transforms between the unified OpenAI chat-completions shape and
the provider's own). Adding a provider is one folder plus one line here.
"""

from __future__ import annotations

from gateway_app.providers.anthropic import ADAPTER as _ANTHROPIC
from gateway_app.providers.azure_openai import ADAPTER as _AZURE_OPENAI
from gateway_app.providers.base import ProviderAdapter
from gateway_app.providers.bedrock import ADAPTER as _BEDROCK
from gateway_app.providers.openai import ADAPTER as _OPENAI
from gateway_app.providers.vertex import ADAPTER as _VERTEX

ADAPTERS: dict[str, ProviderAdapter] = {
    _OPENAI.name: _OPENAI,
    _ANTHROPIC.name: _ANTHROPIC,
    _BEDROCK.name: _BEDROCK,
    _AZURE_OPENAI.name: _AZURE_OPENAI,
    _VERTEX.name: _VERTEX,
}
"""Adapters by the ``type`` a provider entry of the config names."""

__all__ = ["ADAPTERS", "ProviderAdapter"]
