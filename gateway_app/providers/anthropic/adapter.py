"""The Anthropic adapter object: wires the request/response/stream/error transforms."""

from __future__ import annotations

from collections.abc import Mapping
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
        {
            Capability.CHAT,
            Capability.STREAMING,
            Capability.TOOLS,
            Capability.IMAGES,
            Capability.ANTHROPIC_MESSAGES,
        }
    )

    def _request(
        self,
        path: str,
        body: dict[str, Any],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        client_headers: Mapping[str, str] | None = None,
    ) -> UpstreamRequest:
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": deployment.params.get("anthropic_version", API_VERSION),
        }
        if client_headers:
            headers.update(client_headers)  # the client's anthropic-version and -beta
        if provider.api_key:
            headers["x-api-key"] = provider.api_key
        headers.update(provider.headers)
        return UpstreamRequest(
            join_url(provider.base_url or self.default_base_url, path),
            headers,
            orjson.dumps(body),
        )

    def chat_request(
        self,
        body: dict[str, Any],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        return self._request(
            "/v1/messages", translate_request(body, deployment, stream), deployment, provider
        )

    def messages_request(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        return self._request(
            "/v1/messages", {**body, "model": deployment.model}, deployment, provider, headers
        )

    def count_tokens_request(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
    ) -> UpstreamRequest:
        # https://docs.anthropic.com/en/api/messages-count-tokens
        return self._request(
            "/v1/messages/count_tokens",
            {**body, "model": deployment.model},
            deployment,
            provider,
            headers,
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
