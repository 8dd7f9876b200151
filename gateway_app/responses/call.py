"""One Responses API call: what goes upstream, and how each deployment serves it.

A deployment whose adapter declares ``Capability.OPENAI_RESPONSES`` (OpenAI,
Azure OpenAI) gets the request natively; the others get it through their chat
completions adapter (:mod:`gateway_app.protocols.openai_responses.translation`), or a 400 naming
the feature the translation would lose and the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from gateway_app.errors import invalid
from gateway_app.protocols.openai_responses.items import input_items, replayable
from gateway_app.protocols.openai_responses.native import NativeStream, ResponseResult
from gateway_app.protocols.openai_responses.translation import (
    ChatToResponsesStream,
    ResponseShell,
    chat_body,
    response_of,
)
from gateway_app.providers.base import (
    Capability,
    ChatResult,
    ProviderAdapter,
    StreamDecoder,
    StreamTranslator,
    UpstreamRequest,
)

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig, ProviderConfig
    from gateway_app.context import RequestContext


class Deployment(Protocol):
    """What a call reads of the router's deployment (the router imports this module)."""

    @property
    def config(self) -> DeploymentConfig: ...

    @property
    def provider(self) -> ProviderConfig: ...

    @property
    def adapter(self) -> ProviderAdapter: ...


@dataclass(slots=True)
class ResponsesCall:
    """A validated Responses request with the conversation it continues."""

    body: dict[str, Any]  # as the client sent it
    upstream: dict[str, Any]  # the whole conversation as ``input``, ``store: false``
    # What the client's response object says of itself (the upstream's would say
    # ``store: false`` and no previous response).
    client_fields: dict[str, Any]

    @classmethod
    def of(cls, request: RequestContext) -> ResponsesCall:
        """The call for ``request``; a 400 when it names a previous response and no store
        resolved it (the gateway runs without its response store)."""
        body = request.body
        assert body is not None
        previous = body.get("previous_response_id")
        if previous is not None and request.history is None:
            raise invalid(
                "previous_response_id",
                f"Previous response with id '{previous}' not found: this gateway keeps no "
                "responses (its response store is off); send the whole conversation as "
                "'input' instead.",
                "previous_response_not_found",
            )
        upstream = {k: v for k, v in body.items() if k != "previous_response_id"}
        history = request.history or []
        if history or "input" in body:
            # The client's own items too: one resent from an earlier response (the Agents
            # SDK resends them) names an id the upstream, storing nothing, cannot resolve.
            upstream["input"] = replayable([*history, *input_items(body)])
        upstream["store"] = False
        client_fields: dict[str, Any] = {
            "store": body.get("store", True) is not False,
            "previous_response_id": previous,
        }
        return cls(body, upstream, client_fields)

    def codec(self, deployment: Deployment) -> NativeCodec | TranslatedCodec:
        """How ``deployment`` serves this call: natively, or through chat (a 400 naming the
        field, the feature and the model where the translation would lose something)."""
        if Capability.OPENAI_RESPONSES in deployment.adapter.capabilities:
            return NativeCodec(self, deployment)
        return TranslatedCodec(self, deployment)


class NativeCodec:
    """The call sent as it is to a Responses API upstream."""

    __slots__ = ("call", "deployment")

    def __init__(self, call: ResponsesCall, deployment: Deployment) -> None:
        self.call = call
        self.deployment = deployment

    def request(self, stream: bool) -> UpstreamRequest:
        """The upstream ``POST .../responses``."""
        deployment = self.deployment
        return deployment.adapter.responses_request(
            self.call.upstream, deployment.config, deployment.provider
        )

    def response(self, raw: bytes) -> ChatResult:
        """The upstream's response object, as the client's."""
        response = orjson.loads(raw)
        response.update(self.call.client_fields)
        return ResponseResult.of(response)

    def stream_reader(self) -> tuple[StreamDecoder, StreamTranslator]:
        """The upstream's events, forwarded."""
        return self.deployment.adapter.stream_decoder(), NativeStream(self.call.client_fields)


class TranslatedCodec:
    """The call through the deployment's chat-completions adapter."""

    __slots__ = ("chat", "deployment", "shell")

    def __init__(self, call: ResponsesCall, deployment: Deployment) -> None:
        self.deployment = deployment
        model = str(call.body.get("model"))
        self.chat = chat_body(call.upstream, model, deployment.adapter.title)
        self.shell = ResponseShell(call.body, call.client_fields)

    def request(self, stream: bool) -> UpstreamRequest:
        """The adapter's chat request."""
        d = self.deployment
        return d.adapter.chat_request(self.chat, d.config, d.provider, stream)

    def response(self, raw: bytes) -> ChatResult:
        """The adapter's chat answer as a response object."""
        d = self.deployment
        return response_of(d.adapter.chat_response(raw, d.config), self.shell)

    def stream_reader(self) -> tuple[StreamDecoder, StreamTranslator]:
        """The adapter's chat stream (usage always asked) as typed events."""
        d = self.deployment
        chat = d.adapter.stream_translator(d.config, True)
        return d.adapter.stream_decoder(), ChatToResponsesStream(chat, self.shell)
