"""One Messages request to one deployment: the upstream request, and how its answer is read.

Native where the deployment's adapter speaks Messages for its model
(:meth:`ProviderAdapter.speaks_messages`): the client's body with the model id
replaced, its ``anthropic-version``/``anthropic-beta`` headers forwarded (never its
credentials), the answer's bytes and stream events relayed. Otherwise the body is
translated to chat completions (:mod:`.translation`), sent through the adapter's
chat transforms, and the answer translated back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.protocols.anthropic_messages.stream import ChatToMessagesStream, MessagesRelay
from gateway_app.protocols.anthropic_messages.translation import (
    count_tokens_response,
    estimate_input_tokens,
    from_chat,
    message_id,
    to_chat,
)
from gateway_app.providers.base import (
    ChatResult,
    ProviderAdapter,
    StreamDecoder,
    StreamTranslator,
    UpstreamRequest,
)

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig, ProviderConfig

#: The client headers a native upstream receives (Anthropic's API versioning and betas).
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


def forwarded(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's headers that travel to a native upstream."""
    return {name: headers[name] for name in FORWARDED_HEADERS if headers.get(name)}


class MessagesCall:
    """A validated Messages request for public model ``model``, ready to send anywhere."""

    def __init__(
        self,
        request_id: str,
        model: str,
        body: dict[str, Any],
        headers: Mapping[str, str],
        stream: bool,
    ) -> None:
        self.id = message_id(request_id)
        self.model = model
        self.body = body
        self.headers = forwarded(headers)
        self.stream = stream

    def request(
        self, adapter: ProviderAdapter, deployment: DeploymentConfig, provider: ProviderConfig
    ) -> UpstreamRequest:
        """The upstream request (a 400 naming the feature a translation would lose)."""
        if adapter.speaks_messages(deployment):
            return adapter.messages_request(
                self.body, self.headers, deployment, provider, self.stream
            )
        chat = to_chat(self.body, self.model, adapter.title, self.stream)
        return adapter.chat_request(chat, deployment, provider, self.stream)

    def response(
        self, adapter: ProviderAdapter, deployment: DeploymentConfig, raw: bytes
    ) -> ChatResult:
        """The client's Messages body from a 2xx upstream body (native bytes pass untouched)."""
        if adapter.speaks_messages(deployment):
            return adapter.messages_response(raw, deployment)
        chat = adapter.chat_response(raw, deployment).data
        data = from_chat(chat, self.id, self.model)
        return ChatResult(orjson.dumps(data), data)

    def stream_reader(
        self, adapter: ProviderAdapter, deployment: DeploymentConfig
    ) -> tuple[StreamDecoder, StreamTranslator]:
        """The decoder and translator of the upstream stream."""
        if adapter.speaks_messages(deployment):
            return adapter.messages_stream_decoder(), MessagesRelay()
        chat = adapter.stream_translator(deployment, True)
        return adapter.stream_decoder(), ChatToMessagesStream(chat, self.id, self.model)


def count_tokens_request(
    body: dict[str, Any],
    headers: Mapping[str, str],
    adapter: ProviderAdapter,
    deployment: DeploymentConfig,
    provider: ProviderConfig,
) -> UpstreamRequest | None:
    """The provider's token-counting request, or None where it has none (then estimate)."""
    if not adapter.speaks_messages(deployment):
        return None
    return adapter.count_tokens_request(body, forwarded(headers), deployment, provider)


def estimated_count(body: dict[str, Any]) -> ChatResult:
    """A count_tokens answer from the documented estimate."""
    return ChatResult(count_tokens_response(estimate_input_tokens(body)))
