"""Request, response, stream-chunk and error transforms for OpenAI's wire format."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.errors import GatewayError
from gateway_app.providers.base import (
    DONE_FRAME,
    Capability,
    ChatResult,
    ProviderAdapter,
    StreamState,
    UpstreamRequest,
    join_url,
    sse_frame,
)

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig, ProviderConfig


def _headers(provider: ProviderConfig) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if provider.api_key:
        headers["authorization"] = f"Bearer {provider.api_key}"
    headers.update(provider.headers)
    return headers


class OpenAIStream:
    """Forwards OpenAI chunks unchanged; captures usage; hides it if not asked for."""

    __slots__ = ("_done", "include_usage", "state")

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.state = StreamState()
        self._done = False

    def feed(self, event: bytes | None, data: bytes) -> list[bytes]:
        if data == b"[DONE]":
            self._done = True
            return []
        if data.startswith(b'{"error"'):
            error = orjson.loads(data).get("error") or {}
            raise GatewayError(
                502,
                str(error.get("message") or "upstream stream error"),
                type=error.get("type") or "server_error",
                code=error.get("code"),
            )
        self.state.chunks += 1
        # Only the usage chunk needs parsing; every other chunk is forwarded as is.
        if b'"usage":{' in data or b'"usage": {' in data:
            chunk = orjson.loads(data)
            self.state.usage = chunk.get("usage")
            if not self.include_usage:
                if not chunk.get("choices"):
                    return []
                chunk.pop("usage", None)
                return [sse_frame(orjson.dumps(chunk))]
        return [sse_frame(data)]

    def done(self) -> bool:
        return self._done

    def finish(self) -> list[bytes]:
        return [DONE_FRAME]


class OpenAIAdapter(ProviderAdapter):
    """The OpenAI chat-completions and embeddings API."""

    name = "openai"
    title = "OpenAI"
    default_base_url = "https://api.openai.com/v1"
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

    def chat_request(
        self,
        body: dict[str, Any],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        upstream = dict(body)
        upstream["model"] = deployment.model
        if stream:
            options = dict(upstream.get("stream_options") or {})
            options["include_usage"] = True
            upstream["stream_options"] = options
        upstream.update(deployment.params.get("extra_body", {}))
        return UpstreamRequest(
            join_url(provider.base_url or self.default_base_url, "/chat/completions"),
            _headers(provider),
            orjson.dumps(upstream),
        )

    def chat_response(self, raw: bytes, deployment: DeploymentConfig) -> ChatResult:
        return ChatResult(raw)

    def stream_translator(self, deployment: DeploymentConfig, include_usage: bool) -> OpenAIStream:
        return OpenAIStream(include_usage)

    def responses_request(
        self, body: dict[str, Any], deployment: DeploymentConfig, provider: ProviderConfig
    ) -> UpstreamRequest:
        upstream = dict(body)
        upstream["model"] = deployment.model
        upstream.update(deployment.params.get("extra_body", {}))
        return UpstreamRequest(
            join_url(provider.base_url or self.default_base_url, "/responses"),
            _headers(provider),
            orjson.dumps(upstream),
        )

    def embeddings_requests(
        self, body: dict[str, Any], deployment: DeploymentConfig, provider: ProviderConfig
    ) -> list[UpstreamRequest]:
        upstream = dict(body)
        upstream["model"] = deployment.model
        url = join_url(provider.base_url or self.default_base_url, "/embeddings")
        return [UpstreamRequest(url, _headers(provider), orjson.dumps(upstream))]

    def error(self, status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
        return openai_error(status, raw, headers)


def openai_error(status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
    """An OpenAI-shaped upstream error, kept as the upstream sent it."""
    error: dict[str, Any] = {}
    try:
        parsed = orjson.loads(raw)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            error = parsed["error"]
    except orjson.JSONDecodeError:
        pass
    message = error.get("message") or (
        raw[:200].decode(errors="replace") or f"upstream HTTP {status}"
    )
    passthrough = {}
    if "retry-after" in headers:
        passthrough["retry-after"] = headers["retry-after"]
    return GatewayError(
        status,
        str(message),
        param=error.get("param"),
        code=error.get("code"),
        type=error.get("type"),
        headers=passthrough,
    )


ADAPTER = OpenAIAdapter()
