"""The adapter interface every provider folder implements.

The gateway speaks OpenAI's chat-completions shape to clients. An adapter turns
a validated request body into the provider's HTTP request, the provider's
response back into an OpenAI body, its stream events into OpenAI chunks, and its
errors into :class:`GatewayError`. Transport (pooling, timeouts, retries) is not
the adapter's business: the router owns it, so every provider gets the same
resilience for free.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import orjson

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig, ProviderConfig
    from gateway_app.errors import GatewayError
    from gateway_app.transport import UpstreamClient


@dataclass(slots=True)
class UpstreamRequest:
    """One HTTP request to send upstream (always a POST of a JSON body)."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class ChatResult:
    """A complete (non-streamed) response in OpenAI's shape.

    ``body`` is what the client receives; for OpenAI-compatible upstreams it is
    the upstream's bytes untouched (no re-serialisation on the hot path).
    """

    body: bytes
    _data: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The parsed body (parsed on first use)."""
        if self._data is None:
            self._data = orjson.loads(self.body)
        return self._data

    @property
    def usage(self) -> dict[str, Any] | None:
        """OpenAI's ``usage`` object, if the upstream reported one."""
        return self.data.get("usage")


@dataclass(slots=True)
class StreamState:
    """What a stream translator learned, for post-call hooks (usage, finish)."""

    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    chunks: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class StreamTranslator(Protocol):
    """Turns one upstream stream into OpenAI SSE frames (``data: ...\\n\\n`` bytes)."""

    state: StreamState

    def feed(self, event: bytes | None, data: bytes) -> list[bytes]:
        """Frames for one upstream SSE event; raises GatewayError on an in-stream error."""
        ...

    def done(self) -> bool:
        """Whether the upstream signalled the end of the stream."""
        ...

    def finish(self) -> list[bytes]:
        """Frames after the upstream's last event (the usage chunk, ``[DONE]``)."""
        ...


class StreamDecoder(Protocol):
    """Splits a streamed upstream body into ``(event, data)`` pairs (SSE by default)."""

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        """Complete events in ``chunk`` (plus what earlier calls left over)."""
        ...

    def close(self) -> list[tuple[bytes | None, bytes]]:
        """An event left unterminated when the stream ended."""
        ...


class Capability(StrEnum):
    """What an adapter can serve; the router checks a deployment's before using it."""

    CHAT = "chat"  # OpenAI chat completions
    STREAMING = "streaming"  # chat completions streamed as server-sent events
    TOOLS = "tools"  # function tools and tool calls
    IMAGES = "images"  # image content parts
    EMBEDDINGS = "embeddings"  # OpenAI embeddings
    # The native wire APIs a client may speak to the gateway (issue 27): an adapter that
    # declares one serves it directly, the others through translation from chat.
    ANTHROPIC_MESSAGES = "anthropic_messages"
    OPENAI_RESPONSES = "openai_responses"


class ProviderAdapter(ABC):
    """Translation between the unified (OpenAI) shape and one provider's wire format.

    What an adapter can do is declared (``capabilities``, ``authorizes``, the stream
    framing), never probed: the router reads these attributes once per deployment.
    """

    name: ClassVar[str]  # the ``type`` of a provider entry in the config
    title: ClassVar[str]  # how errors name the provider: "this model's provider (<title>)"
    default_base_url: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]
    # Credentials fetched, not configured (SigV4 keys, Entra and Google OAuth tokens,
    # refreshed in the background): the router awaits :meth:`authorize` before sending,
    # so a refresh never blocks the event loop and a missing credential fails over like
    # a 401. False: the configured key is already in the request's headers.
    authorizes: ClassVar[bool] = False
    # The ``accept`` header of a streamed request, and the stream's framing.
    stream_accept: ClassVar[str] = "text/event-stream"

    @abstractmethod
    def chat_request(
        self,
        body: dict[str, Any],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        """The upstream request for a validated chat-completions body."""

    @abstractmethod
    def chat_response(self, raw: bytes, deployment: DeploymentConfig) -> ChatResult:
        """The OpenAI-shaped result of a 2xx upstream body."""

    @abstractmethod
    def stream_translator(
        self, deployment: DeploymentConfig, include_usage: bool
    ) -> StreamTranslator:
        """A fresh translator for one streamed response."""

    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder of the upstream stream's framing (SSE unless overridden)."""
        return SSEDecoder()

    @abstractmethod
    def error(self, status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
        """An upstream non-2xx response as an OpenAI-shaped error."""

    def embeddings_requests(
        self, body: dict[str, Any], deployment: DeploymentConfig, provider: ProviderConfig
    ) -> list[UpstreamRequest]:
        """The upstream requests for an embeddings body (adapters declaring
        ``Capability.EMBEDDINGS``; raise a 400 naming the field the provider cannot take).

        The router sends them concurrently (bounded) and hands the answers to
        :meth:`embeddings_response`."""
        raise NotImplementedError(f"{type(self).__name__} declares no embeddings")

    def embeddings_response(
        self,
        responses: list[tuple[bytes, Mapping[str, str]]],
        body: dict[str, Any],
        deployment: DeploymentConfig,
    ) -> ChatResult:
        """OpenAI's embeddings response from the 2xx ``(body, headers)`` of each request.

        By default the one upstream body is already OpenAI's and passes through untouched."""
        return ChatResult(responses[0][0])

    def responses_request(
        self, body: dict[str, Any], deployment: DeploymentConfig, provider: ProviderConfig
    ) -> UpstreamRequest:
        """The upstream request for a Responses API body (adapters declaring
        ``Capability.OPENAI_RESPONSES``); ``body`` holds the whole conversation as its
        ``input`` and ``stream`` as the client asked."""
        raise NotImplementedError(f"{type(self).__name__} declares no Responses API")

    def speaks_messages(self, deployment: DeploymentConfig) -> bool:
        """Whether this deployment takes Anthropic Messages requests natively (adapters
        declaring ``Capability.ANTHROPIC_MESSAGES``; Bedrock and Vertex only for Claude)."""
        return Capability.ANTHROPIC_MESSAGES in self.capabilities

    def messages_request(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        """The native request for a validated Messages body: the body unchanged apart from
        the model id, ``headers`` (the client's ``anthropic-version``/``-beta``) honoured."""
        raise NotImplementedError(f"{type(self).__name__} declares no Messages API")

    def messages_response(self, raw: bytes, deployment: DeploymentConfig) -> ChatResult:
        """The client's body from a native 2xx answer (by default the upstream's bytes)."""
        return ChatResult(raw)

    def messages_stream_decoder(self) -> StreamDecoder:
        """A decoder yielding a native stream's ``(event type, Messages event JSON)`` pairs."""
        return SSEDecoder()

    def count_tokens_request(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
    ) -> UpstreamRequest | None:
        """The provider's own token count for a Messages body, or None where it has none
        (the gateway then answers with its documented estimate)."""
        return None

    def count_tokens_response(self, raw: bytes) -> ChatResult:
        """Anthropic's ``{"input_tokens": n}`` from the 2xx answer of :meth:`count_tokens_request`
        (by default the upstream's bytes)."""
        return ChatResult(raw)

    async def authorize(
        self,
        request: UpstreamRequest,
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        client: UpstreamClient,
    ) -> UpstreamRequest:
        """``request`` with its credentials added (raises GatewayError if none); called only
        when ``authorizes``. ``client`` is the router's pooled client, for token exchanges."""
        return request

    def missing_credentials(self, provider: ProviderConfig) -> list[str] | None:
        """What to set when no credential source is present (no network calls), else None:
        readiness reports it. By default the provider's ``api_key`` settings say."""
        return None


def sse_frame(payload: bytes) -> bytes:
    """One server-sent event carrying ``payload`` as its data."""
    return b"data: " + payload + b"\n\n"


DONE_FRAME = b"data: [DONE]\n\n"


def chunk_frame(
    chunk_id: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    finish: str | None = None,
    index: int = 0,
) -> bytes:
    """One OpenAI ``chat.completion.chunk`` event for choice ``index``."""
    return sse_frame(
        orjson.dumps(
            {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
        )
    )


def closing_frames(
    chunk_id: str, created: int, model: str, usage: Any, include_usage: bool
) -> list[bytes]:
    """The end of an OpenAI stream: the usage chunk (if the client asked) and ``[DONE]``."""
    if not include_usage:
        return [DONE_FRAME]
    chunk = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage,
    }
    return [sse_frame(orjson.dumps(chunk)), DONE_FRAME]


class SSEDecoder:
    """Incremental server-sent-events decoder: feed bytes, get ``(event, data)`` pairs.

    Handles ``\\n`` and ``\\r\\n`` line ends, multi-line data and events split
    across network reads; comments (``: ping``) are dropped.
    """

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: bytes | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        """Complete events in ``chunk`` (plus what earlier calls left over)."""
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[tuple[bytes | None, bytes]] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append((self._event, b"\n".join(self._data)))
                self._event, self._data = None, []
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                self._event = line[6:].strip()
            # id:, retry: and comments are irrelevant to translation.
        self._buffer = buffer[start:]
        return events

    def close(self) -> list[tuple[bytes | None, bytes]]:
        """An event left unterminated when the stream ended."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        return events


def join_url(base: str, path: str) -> str:
    """``base`` (with or without a trailing slash) joined with ``path``."""
    return base.rstrip("/") + path
