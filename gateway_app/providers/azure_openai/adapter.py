"""The Azure OpenAI adapter object: deployment URLs, api-key or Entra auth, transforms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.credentials.azure import WORKLOAD_IDENTITY_ENV, entra_token, missing_env
from gateway_app.errors import GatewayError
from gateway_app.providers.azure_openai.errors import translate_error
from gateway_app.providers.azure_openai.request import (
    deployment_url,
    responses_url,
    translate_request,
)
from gateway_app.providers.azure_openai.response import translate_response
from gateway_app.providers.azure_openai.stream import AzureOpenAIStream
from gateway_app.providers.base import Capability, ChatResult, ProviderAdapter, UpstreamRequest

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig, ProviderConfig


def _headers(provider: ProviderConfig) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if provider.api_key:
        headers["api-key"] = provider.api_key
    headers.update(provider.headers)
    return headers


class AzureOpenAIAdapter(ProviderAdapter):
    """Azure OpenAI chat completions and embeddings on deployment URLs."""

    name = "azure_openai"
    title = "Azure OpenAI"
    default_base_url = ""  # the resource endpoint is per account: `base_url` is required
    capabilities = frozenset(
        {
            Capability.CHAT,
            Capability.STREAMING,
            Capability.TOOLS,
            Capability.IMAGES,
            Capability.EMBEDDINGS,
            Capability.OPENAI_RESPONSES,
        }
    )
    authorizes = True  # an Entra token when no api-key is configured

    def chat_request(
        self,
        body: dict[str, Any],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        return UpstreamRequest(
            deployment_url(deployment, provider, "chat/completions"),
            _headers(provider),
            orjson.dumps(translate_request(body, deployment, stream)),
        )

    def responses_request(
        self, body: dict[str, Any], deployment: DeploymentConfig, provider: ProviderConfig
    ) -> UpstreamRequest:
        upstream = dict(body)
        upstream["model"] = deployment.model
        upstream.update(deployment.params.get("extra_body", {}))
        return UpstreamRequest(responses_url(provider), _headers(provider), orjson.dumps(upstream))

    def embeddings_requests(
        self, body: dict[str, Any], deployment: DeploymentConfig, provider: ProviderConfig
    ) -> list[UpstreamRequest]:
        upstream = dict(body)
        upstream["model"] = deployment.model
        url = deployment_url(deployment, provider, "embeddings")
        return [UpstreamRequest(url, _headers(provider), orjson.dumps(upstream))]

    async def authorize(
        self,
        request: UpstreamRequest,
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        client: Any,
    ) -> UpstreamRequest:
        if provider.api_key:
            return request  # the api-key header is already set
        token = await entra_token(provider, deployment.params.get("scope"), client).get()
        request.headers["authorization"] = f"Bearer {token}"
        return request

    def missing_credentials(self, provider: ProviderConfig) -> list[str] | None:
        endpoint = [] if provider.base_url else ["base_url (the resource endpoint)"]
        if provider.api_key or provider.api_key_env:
            return endpoint or None  # an api-key provider: the generic api_key check applies
        missing = missing_env()
        return [*missing, "or api_key", *endpoint] if missing or endpoint else None

    def chat_response(self, raw: bytes, deployment: DeploymentConfig) -> ChatResult:
        return translate_response(raw)

    def stream_translator(
        self, deployment: DeploymentConfig, include_usage: bool
    ) -> AzureOpenAIStream:
        return AzureOpenAIStream(include_usage)

    def error(self, status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
        return translate_error(status, raw, headers)


__all__ = ["ADAPTER", "WORKLOAD_IDENTITY_ENV"]

ADAPTER = AzureOpenAIAdapter()
