"""The Anthropic adapter object: wires the request/response/stream/error transforms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.errors import GatewayError
from gateway_app.providers.anthropic.errors import translate_error
from gateway_app.providers.anthropic.request import translate_request
from gateway_app.providers.anthropic.response import translate_response
from gateway_app.providers.anthropic.stream import AnthropicStream
from gateway_app.providers.base import (
    Capability,
    ChatResult,
    ProviderAdapter,
    UpstreamRequest,
    join_url,
)

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig, ProviderConfig

API_VERSION = "2023-06-01"


class AnthropicAdapter(ProviderAdapter):
    """The Anthropic Messages API (``POST /v1/messages``)."""

    name = "anthropic"
    title = "Anthropic"
    default_base_url = "https://api.anthropic.com"
    capabilities = frozenset(
        {Capability.CHAT, Capability.STREAMING, Capability.TOOLS, Capability.IMAGES}
    )

    def chat_request(
        self,
        body: dict[str, Any],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": deployment.params.get("anthropic_version", API_VERSION),
        }
        if provider.api_key:
            headers["x-api-key"] = provider.api_key
        headers.update(provider.headers)
        return UpstreamRequest(
            join_url(provider.base_url or self.default_base_url, "/v1/messages"),
            headers,
            orjson.dumps(translate_request(body, deployment, stream)),
        )

    def chat_response(self, raw: bytes, deployment: DeploymentConfig) -> ChatResult:
        data = translate_response(orjson.loads(raw))
        return ChatResult(orjson.dumps(data), data)

    def stream_translator(
        self, deployment: DeploymentConfig, include_usage: bool
    ) -> AnthropicStream:
        return AnthropicStream(include_usage)

    def error(self, status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
        return translate_error(status, raw, headers)


ADAPTER = AnthropicAdapter()
