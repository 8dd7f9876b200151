"""One request's typed state, split by who writes it.

* :class:`RequestContext`: what the request is (id, API, headers, the validated
  body, model, caller). Written while the request is read, and by authentication
  (the caller); read by everyone.
* :class:`RouteOutcome`: what routing did (the deployment that answered, every
  attempt, upstream time, the response and its usage). Filled and returned by the
  router.
* :class:`Exchange`: what the gateway answered and why (status, error, the route
  outcome, response headers, and the few facts hooks report to the others: the
  cache's outcome, the settled cost, a refusal, timed phases). Each field names
  its writer.

A hook's own per-request state (the cache's key, governance's reservation) is not
here: the hook chain hands each hook its own (see :mod:`gateway_app.hooks`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from gateway_app.apis import WireApi
    from gateway_app.config.prices import Tokens
    from gateway_app.errors import GatewayError
    from gateway_app.providers.base import ChatResult, StreamState


class ResponseStream(Protocol):
    """An upstream stream the router opened (its first frames arrived)."""

    @property
    def state(self) -> StreamState:
        """What the stream's translator learned so far (usage, finish reason)."""
        ...

    def frames(self) -> AsyncGenerator[list[bytes], None]:
        """Batches of client frames, the first batch included; raises GatewayError mid-stream."""
        ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the virtual key that authenticated the request."""

    key_id: str
    team_id: str
    project_id: str
    models: tuple[str, ...] | None = None  # the models the key may call (None: all)


@dataclass(slots=True)
class RequestContext:
    """What one request is."""

    request_id: str
    endpoint: str  # the URL path (metrics and logs label the known ones)
    headers: dict[str, str]
    api: WireApi | None = None  # the wire API of a model call
    body: dict[str, Any] | None = None
    model: str | None = None
    stream: bool = False
    include_usage: bool = False
    started: float = field(default_factory=time.perf_counter)
    # Set by authentication (governance); None when the gateway runs without virtual keys.
    caller: Caller | None = None
    # The end customer the request is made for (governance: a header, else the body's `user`).
    customer: str | None = None
    # Responses API: the stored conversation ``previous_response_id`` names (its input and
    # output items), resolved by the response store for the caller's team.
    history: list[dict[str, Any]] | None = None
    # A hook may forbid failover for this request (Bifrost's rule); the router obeys.
    allow_fallbacks: bool = True


@dataclass(slots=True)
class Attempt:
    """One try of one deployment."""

    deployment: str
    outcome: str  # "ok", "http_429", "timeout", "connect", "circuit_open", ...
    latency_s: float
    started: float = 0.0  # perf_counter at the start of the try (for trace spans)


@dataclass(slots=True)
class RouteOutcome:
    """What the router did for one request; returned by it."""

    deployment: str | None = None  # the deployment that answered
    provider: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    upstream_s: float = 0.0  # time spent waiting for the answering deployment
    result: ChatResult | None = None  # a complete response
    stream: ResponseStream | None = None  # a streamed response, its first frames read

    @property
    def usage(self) -> dict[str, Any] | None:
        """Token usage of the response, streamed or not."""
        if self.result is not None:
            return self.result.usage
        if self.stream is not None:
            return self.stream.state.usage
        return None

    @property
    def last_deployment(self) -> str | None:
        """The deployment that answered, else the last one tried."""
        if self.deployment is not None:
            return self.deployment
        return self.attempts[-1].deployment if self.attempts else None


class CacheOutcome(StrEnum):
    """What the response cache did for a request."""

    HIT = "hit"
    SEMANTIC_HIT = "semantic-hit"
    MISS = "miss"

    @property
    def served(self) -> bool:
        """The response came from the cache (no upstream call, no cost)."""
        return self is not CacheOutcome.MISS


class Span(NamedTuple):
    """A timed phase of the request, written as a trace span once the request is done."""

    name: str
    start: float  # perf_counter
    end: float
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SemanticDecision:
    """The semantic cache guard's decision on the most similar cached request."""

    similarity: float  # cosine similarity of the two prompts' embeddings
    accepted: bool  # served (accepted) or refused
    # accepted: the alignment (aligned, reworded); refused: what differed (numbers,
    # entities, negation, antonym, reversed), or judge, judge-unavailable, similarity
    reason: str
    judge: float | None = None  # the judge's probability, when it weighed the pair


@dataclass(slots=True)
class Exchange:
    """What the gateway answered for one request, and the facts hooks report."""

    status: int = 0  # the handler, when the response starts
    error: GatewayError | None = None  # the handler: the error sent (in-stream too)
    route: RouteOutcome | None = None  # the router, for requests that were routed
    # Headers hooks add to the response (x-cache, x-ratelimit-*), sent with its first byte.
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # A hook that needs a streamed response's bytes (the cache) sets a list; the handler
    # appends every frame it sends.
    stream_frames: list[bytes] | None = None
    # Hooks whose effect the client may rely on as soon as it has the answer (the response
    # store: a client chains onto a response right away) add a step here; the handler awaits
    # each just before the response's last byte, so it is done when the client has it all.
    before_last_byte: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    cache: CacheOutcome | None = None  # the cache (None: not consulted)
    # The cache: the guard's decision on a semantic lookup's nearest candidate.
    semantic: SemanticDecision | None = None
    # The cache: the object a hit answered with, when its API keeps one (a Responses API
    # response, which the response store keeps as it keeps an upstream's).
    replayed: dict[str, Any] | None = None
    cost_usd: float | None = None  # governance: settled cost (None: unknown or refused)
    # Governance: the tokens of the upstream's reported usage, as settled (read once: the
    # access line takes them from here; None: not settled, or no usage reported).
    tokens: Tokens | None = None
    rejection: str | None = None  # governance: why it refused ("budget:team", ...)
    spans: list[Span] | None = None  # hooks' timed phases (tracing): see add_span
    # The handler: gateway time before the first byte (upstream excluded), and for
    # streams the time to the first byte, in seconds.
    overhead_s: float | None = None
    first_byte_s: float | None = None
    disconnected: bool = False  # the client left before the response was complete
    responded: bool = False  # the last byte was handed to the server

    def add_span(self, span: Span) -> None:
        """Record a timed phase (a hook's lookup or check) for the request's trace."""
        if self.spans is None:
            self.spans = [span]
        else:
            self.spans.append(span)

    @property
    def deployment(self) -> str | None:
        """The deployment that answered (None: not routed, or every attempt failed)."""
        return self.route.deployment if self.route is not None else None

    @property
    def served_from_cache(self) -> bool:
        """The cache answered: no upstream call, no usage, no cost."""
        return self.cache is not None and self.cache.served

    @property
    def usage(self) -> dict[str, Any] | None:
        """The upstream's token usage (None for cache hits and unrouted requests)."""
        return self.route.usage if self.route is not None else None
