"""The Vertex AI adapter object: regional URLs, ADC bearer tokens, transforms."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from gateway_app.credentials.google import ADC_HINT, adc_sources, adc_token
from gateway_app.errors import GatewayError
from gateway_app.providers.base import Capability, ChatResult, ProviderAdapter, UpstreamRequest
from gateway_app.providers.vertex.embeddings import request_body as embeddings_body
from gateway_app.providers.vertex.embeddings import translate_response as translate_embeddings
from gateway_app.providers.vertex.errors import translate_error
from gateway_app.providers.vertex.request import translate_request
from gateway_app.providers.vertex.response import translate_response
from gateway_app.providers.vertex.stream import VertexStream

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig, ProviderConfig

DEFAULT_LOCATION = "global"
ANTHROPIC = "anthropic"
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


def is_claude(model: str) -> bool:
    """A Claude model on Vertex (served by Anthropic's publisher endpoint)."""
    return model.startswith(("claude-", f"publishers/{ANTHROPIC}/"))


def model_url(
    deployment: DeploymentConfig,
    provider: ProviderConfig,
    stream: bool,
    method: str | None = None,
    publisher: str = "google",
) -> str:
    """``.../v1/projects/{p}/locations/{l}/publishers/{publisher}/models/{m}:{method}``.

    ``method`` defaults to ``generateContent`` (``streamGenerateContent`` if ``stream``).
    """
    params = deployment.params
    project = params.get("project") or provider.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        raise GatewayError(
            500,
            f"deployment {deployment.id}: no Google Cloud project; set `project` on the "
            "provider or the deployment's params, or GOOGLE_CLOUD_PROJECT",
            code="missing_project",
        )
    location = (
        params.get("location")
        or provider.location
        or os.environ.get("GOOGLE_CLOUD_LOCATION")
        or DEFAULT_LOCATION
    )
    host = (
        "https://aiplatform.googleapis.com"
        if location == "global"
        else f"https://{location}-aiplatform.googleapis.com"
    )
    base = (provider.base_url or host).rstrip("/")
    model = deployment.model
    if not model.startswith("publishers/"):
        model = f"publishers/{publisher}/models/{quote(model, safe='')}"
    if method is None:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{base}/v1/projects/{project}/locations/{location}/{model}:{method}"


class VertexAdapter(ProviderAdapter):
    """Vertex AI: Gemini ``generateContent`` / ``streamGenerateContent``, embeddings ``predict``."""

    name = "vertex"
    title = "Vertex AI Gemini"
    default_base_url = "https://aiplatform.googleapis.com"
    capabilities = frozenset(
        {
            Capability.CHAT,
            Capability.STREAMING,
            Capability.TOOLS,
            Capability.IMAGES,
            Capability.EMBEDDINGS,
            Capability.ANTHROPIC_MESSAGES,  # Claude on Vertex (publisher anthropic)
        }
    )
    authorizes = True  # a Google OAuth token from Application Default Credentials

    def speaks_messages(self, deployment: DeploymentConfig) -> bool:
        """Claude models (``claude-...`` or ``publishers/anthropic/models/...``)."""
        return super().speaks_messages(deployment) and is_claude(deployment.model)

    def messages_request(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        # https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude:
        # the model is in the URL, the API version in the body; betas travel as the header.
        out = {k: v for k, v in body.items() if k != "model"}
        out["anthropic_version"] = deployment.params.get(
            "anthropic_version", VERTEX_ANTHROPIC_VERSION
        )
        method = "streamRawPredict" if stream else "rawPredict"
        return UpstreamRequest(
            model_url(deployment, provider, stream, method, ANTHROPIC),
            {**self._headers(provider), **headers},
            orjson.dumps(out),
        )

    def count_tokens_request(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
    ) -> UpstreamRequest:
        # Vertex's token counting for Claude: publishers/anthropic/models/count-tokens:rawPredict.
        out = {**body, "model": deployment.model.rpartition("/")[2]}
        out["anthropic_version"] = deployment.params.get(
            "anthropic_version", VERTEX_ANTHROPIC_VERSION
        )
        count = deployment.model_copy(update={"model": "count-tokens"})
        return UpstreamRequest(
            model_url(count, provider, False, "rawPredict", ANTHROPIC),
            {**self._headers(provider), **headers},
            orjson.dumps(out),
        )

    @staticmethod
    def _headers(provider: ProviderConfig) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers.update(provider.headers)
        return headers

    def chat_request(
        self,
        body: dict[str, Any],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        return UpstreamRequest(
            model_url(deployment, provider, stream),
            self._headers(provider),
            orjson.dumps(translate_request(body, deployment)),
        )

    async def authorize(
        self,
        request: UpstreamRequest,
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        client: Any,
    ) -> UpstreamRequest:
        token = await adc_token().get()
        request.headers["authorization"] = f"Bearer {token}"
        return request

    def missing_credentials(self, provider: ProviderConfig) -> list[str] | None:
        project = (
            []
            if provider.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
            else ["GOOGLE_CLOUD_PROJECT (or `project`)"]
        )
        if adc_sources():
            return project or None
        return [*ADC_HINT, *project]

    def chat_response(self, raw: bytes, deployment: DeploymentConfig) -> ChatResult:
        data = translate_response(orjson.loads(raw), deployment.model)
        return ChatResult(orjson.dumps(data), data)

    def stream_translator(self, deployment: DeploymentConfig, include_usage: bool) -> VertexStream:
        return VertexStream(deployment.model, include_usage)

    def embeddings_requests(
        self, body: dict[str, Any], deployment: DeploymentConfig, provider: ProviderConfig
    ) -> list[UpstreamRequest]:
        """The one ``predict`` request (up to 250 inputs) for an embeddings body."""
        return [
            UpstreamRequest(
                model_url(deployment, provider, False, "predict"),
                self._headers(provider),
                orjson.dumps(embeddings_body(body, deployment)),
            )
        ]

    def embeddings_response(
        self,
        responses: list[tuple[bytes, Mapping[str, str]]],
        body: dict[str, Any],
        deployment: DeploymentConfig,
    ) -> ChatResult:
        """The OpenAI embeddings response for the ``predict`` response."""
        [(raw, _)] = responses
        return translate_embeddings(raw, body)

    def error(self, status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
        return translate_error(status, raw, headers)


ADAPTER = VertexAdapter()
