"""The adapter interface every provider folder implements.

The gateway speaks OpenAI's chat-completions shape to clients. An adapter turns
a validated request body into the provider's HTTP request, the provider's
response back into an OpenAI body, its stream events into OpenAI chunks, and its
errors into :class:`GatewayError`. Transport (pooling, timeouts, retries) is not
the adapter's business: the router owns it, so every provider gets the same
resilience for free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

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


class ProviderAdapter(Protocol):
    """Translation between the unified (OpenAI) shape and one provider's wire format."""

    name: str
    default_base_url: str
    supports_embeddings: bool

    def chat_request(
        self,
        body: dict[str, Any],
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        stream: bool,
    ) -> UpstreamRequest:
        """The upstream request for a validated chat-completions body."""
        ...

    def chat_response(self, raw: bytes, deployment: DeploymentConfig) -> ChatResult:
        """The OpenAI-shaped result of a 2xx upstream body."""
        ...

    def stream_translator(
        self, deployment: DeploymentConfig, include_usage: bool
    ) -> StreamTranslator:
        """A fresh translator for one streamed response."""
        ...

    def embeddings_request(
        self, body: dict[str, Any], deployment: DeploymentConfig, provider: ProviderConfig
    ) -> UpstreamRequest:
        """The upstream request for an embeddings body (if supported)."""
        ...

    def error(self, status: int, raw: bytes, headers: dict[str, str]) -> GatewayError:
        """An upstream non-2xx response as an OpenAI-shaped error."""
        ...


class StreamDecoder(Protocol):
    """Splits a streamed upstream body into ``(event, data)`` pairs (SSE by default)."""

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        """Complete events in ``chunk`` (plus what earlier calls left over)."""
        ...

    def close(self) -> list[tuple[bytes | None, bytes]]:
        """An event left unterminated when the stream ended."""
        ...


class CredentialedAdapter(ProviderAdapter, Protocol):
    """Optional extras of adapters whose credentials are fetched, not configured.

    Cloud providers authenticate with short-lived credentials (SigV4 keys,
    Entra and Google OAuth tokens) that are refreshed in the background; the
    router awaits :meth:`authorize` just before sending, so a refresh never
    blocks the event loop and a missing credential fails over like a 401.
    Adapters may also set ``stream_accept`` (the ``accept`` header of a
    streamed request) and ``stream_decoder`` (a non-SSE stream framing).
    """

    async def authorize(
        self,
        request: UpstreamRequest,
        deployment: DeploymentConfig,
        provider: ProviderConfig,
        client: UpstreamClient,
    ) -> UpstreamRequest:
        """``request`` with its credentials added (raises GatewayError if none).

        ``client`` is the router's pooled upstream client, for token exchanges.
        """
        ...

    def missing_credentials(self, provider: ProviderConfig) -> list[str] | None:
        """What to set when no credential source is present (no network calls), else None."""
        ...


class TranslatedEmbeddingsAdapter(ProviderAdapter, Protocol):
    """Optional extras of adapters whose embeddings API is not OpenAI's (Bedrock, Vertex).

    When an adapter has ``embeddings_response``, the router sends every request of
    ``embeddings_requests`` (concurrently, bounded; each authorized) instead of the
    one of ``embeddings_request``, and returns what ``embeddings_response`` makes
    of the responses. Adapters without it keep OpenAI's pass-through of the body.
    """

    def embeddings_requests(
        self, body: dict[str, Any], deployment: DeploymentConfig, provider: ProviderConfig
    ) -> list[UpstreamRequest]:
        """The upstream requests for an embeddings body (raises a 400 naming the field)."""
        ...

    def embeddings_response(
        self,
        responses: list[tuple[bytes, Mapping[str, str]]],
        body: dict[str, Any],
        deployment: DeploymentConfig,
    ) -> ChatResult:
        """OpenAI's embeddings response from the 2xx ``(body, headers)`` of each request."""
        ...


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


def openai_usage(prompt: int, completion: int, cached: int, reasoning: int = 0) -> dict[str, Any]:
    """OpenAI's ``usage`` object (``cached`` of the prompt, ``reasoning`` of the completion)."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def append_turn(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Append ``blocks`` as a ``role`` turn, merged into the last turn if it has that role.

    Anthropic Messages and Bedrock Converse require alternating roles: consecutive
    same-role messages (several tool results, a tool result then a user note) merge.
    """
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": list(blocks)})


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
