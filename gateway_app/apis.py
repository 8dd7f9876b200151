"""The wire APIs clients call, one entry per API: path, operation, body validation.

The app serves every entry with the same handler (authenticate, read and validate
the body, route, answer) and the router picks the upstream calls by the entry's
operation, so an API is added here (and, for a new operation, in the router and
the adapters that declare it), not as a branch in the handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway_app.errors import GatewayError
from gateway_app.providers.base import Capability
from gateway_app.responses.native import error_frame
from gateway_app.responses.validation import validate_responses
from gateway_app.validation import validate_chat, validate_embeddings

#: (model, stream, include_usage) of a validated body.
Parsed = tuple[str, bool, bool]


class Operation(StrEnum):
    """What the upstream is asked to do (the GenAI semantic conventions' operation name)."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    RESPONSES = "responses"  # OpenAI's Responses API (served as "chat" by translating upstreams)


def _chat_stream_error(error: GatewayError) -> bytes:
    # OpenAI's chat streams report a late failure as a data frame holding the error body.
    return b"data: " + error.to_bytes() + b"\n\n"


@dataclass(frozen=True, slots=True)
class WireApi:
    """One client-facing API of the gateway."""

    path: str
    operation: Operation
    # What a deployment must declare to serve it (the router checks, naming the field).
    capability: Capability
    # The validated body's model and streaming options; a 400 naming the field otherwise.
    parse: Callable[[Any], Parsed]
    # A failure after a stream's first byte, as the API's clients read it in the stream.
    stream_error: Callable[[GatewayError], bytes] = _chat_stream_error


def _embeddings(body: Any) -> Parsed:
    return validate_embeddings(body), False, False


CHAT_COMPLETIONS = WireApi("/v1/chat/completions", Operation.CHAT, Capability.CHAT, validate_chat)
EMBEDDINGS = WireApi("/v1/embeddings", Operation.EMBEDDINGS, Capability.EMBEDDINGS, _embeddings)
# Served natively where a deployment declares OPENAI_RESPONSES, through chat elsewhere.
RESPONSES = WireApi(
    "/v1/responses",
    Operation.RESPONSES,
    Capability.OPENAI_RESPONSES,
    validate_responses,
    error_frame,
)
WIRE_APIS = (CHAT_COMPLETIONS, EMBEDDINGS, RESPONSES)
