"""The Bedrock adapter object: wires the transforms, SigV4 signing and the stream framing."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from yarl import URL

from gateway_app.credentials.aws import CHAIN_HINT, chain_credentials, credential_sources, sign
from gateway_app.errors import GatewayError
from gateway_app.providers.base import Capability, ChatResult, ProviderAdapter, UpstreamRequest
from gateway_app.providers.bedrock.embeddings import request_bodies, translate_responses
from gateway_app.providers.bedrock.errors import translate_error
from gateway_app.providers.bedrock.request import translate_request
from gateway_app.providers.bedrock.response import translate_response
from gateway_app.providers.bedrock.stream import (
    BedrockStream,
    EventStreamDecoder,
    InvokeStreamDecoder,
)

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig, ProviderConfig

SERVICE = "bedrock"


def region_of(deployment: DeploymentConfig, provider: ProviderConfig) -> str:
    """The deployment's region: its params, the provider's, then AWS_REGION/AWS_DEFAULT_REGION."""
    region = (
        deployment.params.get("region")
        or provider.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
    )
    if not region:
        raise GatewayError(
            500,
            f"deployment {deployment.id}: no AWS region; set `region` on the provider or "
            "the deployment's params, or AWS_REGION",
            code="missing_region",
        )
    return str(region)


BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"


class BedrockAdapter(ProviderAdapter):
    """Bedrock Runtime: Converse, ConverseStream and InvokeModel (embeddings).

    Chat is ``POST /model/{id}/converse[-stream]``; Titan and Cohere embeddings
    are ``POST /model/{id}/invoke``.
    """

    name = "bedrock"
    title = "Bedrock"
    default_base_url = "https://bedrock-runtime.{region}.amazonaws.com"
    capabilities = frozenset(
        {
            Capability.CHAT,
            Capability.STREAMING,
            Capability.TOOLS,
            Capability.IMAGES,
            Capability.EMBEDDINGS,
            Capability.ANTHROPIC_MESSAGES,  # Claude models, through InvokeModel
        }
    )
    authorizes = True  # SigV4, with the credential chain's keys
    stream_accept = "application/vnd.amazon.eventstream"

    def speaks_messages(self, deployment: DeploymentConfig) -> bool:
        """Claude models (``anthropic.claude-...``, cross-region ``us.anthropic.claude-...``);
        an inference-profile ARN says so with ``params: {anthropic_messages: true}``."""
        return super().speaks_messages(deployment) and (
            "anthropic.claude" in deployment.model
            or bool(deployment.params.get("anthropic_messages"))
        )

    def _claude_body(
        self, body: dict[str, Any], headers: Mapping[str, str], deployment: DeploymentConfig
    ) -> dict[str, Any]:
        # https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html:
        # the model is in the URL; the API version and the betas are body fields.
        out = {k: v for k, v in body.items() if k != "model"}
        out["anthropic_version"] = deployment.params.get(
            "anthropic_version", BEDROCK_ANTHROPIC_VERSION
        )
        betas = headers.get("anthropic-beta")
        if betas:
            out["anthropic_beta"] = [b.strip() for b in betas.split(",") if b.strip()]
        return out

    def messages_request(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        action = "invoke-with-response-stream" if stream else "invoke"
        return self._request(
            deployment, provider, action, self._claude_body(body, headers, deployment)
        )

    def messages_stream_decoder(self) -> InvokeStreamDecoder:
        return InvokeStreamDecoder()

    def count_tokens_request(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
    ) -> UpstreamRequest:
        # CountTokens counts an InvokeModel body:
        # https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CountTokens.html
        invoke = self._claude_body({**body, "max_tokens": 1}, headers, deployment)
        # (a blob in the API's model: base64 on the wire, as boto3 sends it)
        encoded = base64.b64encode(orjson.dumps(invoke)).decode()
        payload = {"input": {"invokeModel": {"body": encoded}}}
        return self._request(deployment, provider, "count-tokens", payload)

    def count_tokens_response(self, raw: bytes) -> ChatResult:
        return ChatResult(orjson.dumps({"input_tokens": int(orjson.loads(raw)["inputTokens"])}))

    def stream_decoder(self) -> EventStreamDecoder:
        """ConverseStream frames events in AWS's binary event-stream encoding, not SSE."""
        return EventStreamDecoder()

    def chat_request(
        self,
        body: dict[str, Any],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        action = "converse-stream" if stream else "converse"
        return self._request(deployment, provider, action, translate_request(body, deployment))

    def _request(
        self,
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        action: str,
        body: dict[str, Any],
    ) -> UpstreamRequest:
        base = (provider.base_url or self.default_base_url).format(
            region=region_of(deployment, provider)
        )
        # Model ids and ARNs hold ':' and '/': one path segment, encoded. The URL is
        # normalised as the HTTP client will send it, because SigV4 signs the path.
        url = str(URL(f"{base.rstrip('/')}/model/{quote(deployment.model, safe='')}/{action}"))
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers.update(provider.headers)
        return UpstreamRequest(url, headers, orjson.dumps(body))

    async def authorize(
        self,
        request: UpstreamRequest,
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        client: Any,
    ) -> UpstreamRequest:
        credentials = await chain_credentials().get()
        request.headers = sign(
            "POST",
            request.url,
            request.headers,
            request.body,
            credentials,
            SERVICE,
            region_of(deployment, provider),
        )
        return request

    def missing_credentials(self, provider: ProviderConfig) -> list[str] | None:
        # The instance role cannot be seen without a network call: readiness says
        # "missing" and requests still try the whole chain (in a worker thread).
        return None if credential_sources() else list(CHAIN_HINT)

    def chat_response(self, raw: bytes, deployment: DeploymentConfig) -> ChatResult:
        data = translate_response(orjson.loads(raw), deployment.model)
        return ChatResult(orjson.dumps(data), data)

    def stream_translator(self, deployment: DeploymentConfig, include_usage: bool) -> BedrockStream:
        return BedrockStream(deployment.model, include_usage)

    def embeddings_requests(
        self, body: dict[str, Any], deployment: DeploymentConfig, provider: ProviderConfig
    ) -> list[UpstreamRequest]:
        """``InvokeModel`` requests for an embeddings body (Titan: one per input)."""
        return [
            self._request(deployment, provider, "invoke", upstream)
            for upstream in request_bodies(body, deployment)
        ]

    def embeddings_response(
        self,
        responses: list[tuple[bytes, Mapping[str, str]]],
        body: dict[str, Any],
        deployment: DeploymentConfig,
    ) -> ChatResult:
        """The OpenAI embeddings response from the ``InvokeModel`` responses, in order."""
        return translate_responses(responses, body, deployment)

    def error(self, status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
        return translate_error(status, raw, headers)


ADAPTER = BedrockAdapter()
