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

from gateway_app.errors import OPENAI_ERRORS, ErrorShape
from gateway_app.protocols.anthropic_messages import (
    ANTHROPIC_ERRORS,
    validate_count_tokens,
    validate_messages,
)
from gateway_app.protocols.openai_responses import replay
from gateway_app.protocols.openai_responses.native import RESPONSES_ERRORS
from gateway_app.protocols.openai_responses.validation import validate_responses
from gateway_app.providers.base import Capability
from gateway_app.validation import validate_chat, validate_embeddings

#: (model, stream, include_usage) of a validated body.
Parsed = tuple[str, bool, bool]


class Operation(StrEnum):
    """What the upstream is asked to do (the GenAI semantic conventions' operation name)."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    # Anthropic's Messages API: native where a deployment declares it, translated to
    # chat for the others (gateway_app.protocols.anthropic_messages).
    MESSAGES = "messages"
    COUNT_TOKENS = "count_tokens"
    RESPONSES = "responses"  # OpenAI's Responses API (served as "chat" by translating upstreams)


@dataclass(frozen=True, slots=True)
class WireApi:
    """One client-facing API of the gateway."""

    path: str
    operation: Operation
    # What a deployment must declare to serve it (the router checks, naming the field).
    capability: Capability
    # The validated body's model and streaming options; a 400 naming the field otherwise.
    parse: Callable[[Any], Parsed]
    # How its clients are told of errors (the body, and an error in a started stream).
    errors: ErrorShape = OPENAI_ERRORS
    # The body fields a request's prompt is made of (governance's token estimate).
    prompt_fields: tuple[str, ...] = ("messages",)
    # Whether the exact cache may answer it; how a complete stream's last frame begins
    # (only complete answers are stored).
    cacheable: bool = False
    stream_end: bytes = b"data: [DONE]"
    # Request headers that change the answer (part of its cache key, as HTTP's Vary).
    vary: tuple[str, ...] = ()
    # The body its cache key is made of, given the chained history (None: the body as sent).
    cache_body: Callable[[dict[str, Any], list[dict[str, Any]] | None], dict[str, Any]] | None = (
        None
    )
    # A cache hit as a new answer to this request (stored bytes, stream?, body): the bytes
    # to send and the object a hook keeps of it (None: the stored bytes as they are).
    replay: Callable[[bytes, bool, dict[str, Any]], tuple[bytes, dict[str, Any] | None]] | None = (
        None
    )
    # Whether it generates tokens: budgets and TPM reserve for it (a token count does not).
    metered: bool = True


def _embeddings(body: Any) -> Parsed:
    return validate_embeddings(body), False, False


def _count_tokens(body: Any) -> Parsed:
    return validate_count_tokens(body), False, False


CHAT_COMPLETIONS = WireApi(
    "/v1/chat/completions", Operation.CHAT, Capability.CHAT, validate_chat, cacheable=True
)
EMBEDDINGS = WireApi(
    "/v1/embeddings",
    Operation.EMBEDDINGS,
    Capability.EMBEDDINGS,
    _embeddings,
    prompt_fields=("input",),
)
# Anthropic's Messages API (Claude Code's ANTHROPIC_BASE_URL): any chat deployment serves
# it, natively when its adapter declares Capability.ANTHROPIC_MESSAGES.
MESSAGES = WireApi(
    "/v1/messages",
    Operation.MESSAGES,
    Capability.CHAT,
    validate_messages,
    errors=ANTHROPIC_ERRORS,
    prompt_fields=("system", "messages", "tools"),
    cacheable=True,
    stream_end=b"event: message_stop",
    vary=("anthropic-version", "anthropic-beta"),
)
COUNT_TOKENS = WireApi(
    "/v1/messages/count_tokens",
    Operation.COUNT_TOKENS,
    Capability.CHAT,
    _count_tokens,
    errors=ANTHROPIC_ERRORS,
    prompt_fields=("system", "messages", "tools"),
    metered=False,
)
# OpenAI's Responses API (Codex, the Agents SDK): served natively where a deployment
# declares OPENAI_RESPONSES, through chat elsewhere. Cached on the whole conversation (the
# chained history and input); a hit is served as a new response (new ids, created_at now)
# and stored like any other (gateway_app.responses.store). Its prompt is instructions, the
# chained history and input (governance's estimate reads them itself).
RESPONSES = WireApi(
    "/v1/responses",
    Operation.RESPONSES,
    Capability.OPENAI_RESPONSES,
    validate_responses,
    errors=RESPONSES_ERRORS,
    prompt_fields=("instructions", "input"),
    cacheable=True,
    stream_end=b"event: response.completed",
    cache_body=replay.cache_body,
    replay=replay.replay,
)
WIRE_APIS = (CHAT_COMPLETIONS, EMBEDDINGS, MESSAGES, COUNT_TOKENS, RESPONSES)
