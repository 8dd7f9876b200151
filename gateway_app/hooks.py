"""Hooks around the provider call (Bifrost-style): symmetric before/after.

``before`` hooks run in order before routing; one may short-circuit by returning
a :class:`Response` (a cache hit, a budget refusal) and the rest are skipped.
``after`` hooks run in reverse order once the response is complete (for
streams: after the last byte), for success and failure alike, so budgets
settle, caches fill, audit events and metrics are written in one place. A hook
may set ``ctx.allow_fallbacks = False`` to forbid failover for a request.
Hooks are where governance (issue 12) and caching/observability (issue 13)
plug in; the handler has no branches for them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gateway_app.errors import GatewayError
    from gateway_app.providers.base import ChatResult, StreamState


@dataclass(slots=True)
class Response:
    """A complete response a hook returns to short-circuit the upstream call."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    content_type: bytes = b"application/json"


@dataclass(slots=True)
class Attempt:
    """One try of one deployment."""

    deployment: str
    outcome: str  # "ok", "http_429", "timeout", "connect", "circuit_open", ...
    latency_s: float
    started: float = 0.0  # perf_counter at the start of the try (for trace spans)


@dataclass(slots=True)
class RequestContext:
    """Everything known about one request, shared by the handler, router and hooks."""

    request_id: str
    endpoint: str
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    model: str | None = None
    stream: bool = False
    include_usage: bool = False
    started: float = field(default_factory=time.perf_counter)
    allow_fallbacks: bool = True
    deployment: str | None = None
    provider: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    result: ChatResult | None = None
    stream_state: StreamState | None = None
    error: GatewayError | None = None
    status: int = 0
    upstream_s: float = 0.0
    disconnected: bool = False
    responded: bool = False  # the last byte was handed to the server
    # Who is calling: set by the governance auth hook (issue 12), read by the
    # cache (tenant isolation), audit, metrics and analytics. None when the
    # gateway runs without virtual keys (the embedded default).
    key_id: str | None = None
    team_id: str | None = None
    project_id: str | None = None
    customer: str | None = None
    # Outcomes other hooks report: the cache's "hit" | "miss" | "semantic-hit"
    # (None when not consulted), the cost settled in USD, and the reason a
    # governance hook refused the request ("budget:team", "rate_limit:key:rpm").
    cache_outcome: str | None = None
    cost_usd: float | None = None
    rejection: str | None = None
    # Headers hooks add to the response (x-cache, x-ratelimit-*), sent with the
    # first byte whether the upstream answered or a hook short-circuited.
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # A hook that needs a streamed response's bytes (the cache) sets a list here;
    # the handler appends every frame it sends.
    stream_capture: list[bytes] | None = None
    # Gateway time before the first response byte, upstream time excluded; and
    # for streams, time to the first byte (both set by the handler, in seconds).
    overhead_s: float | None = None
    first_byte_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def usage(self) -> dict[str, Any] | None:
        """Token usage of the response, streamed or not."""
        if self.result is not None:
            return self.result.usage
        if self.stream_state is not None:
            return self.stream_state.usage
        return None


class Hook(Protocol):
    """A pre/post pair around the provider call."""

    async def before(self, ctx: RequestContext) -> Response | None:
        """Inspect or refuse the request; return a Response to short-circuit."""
        ...

    async def after(self, ctx: RequestContext) -> None:
        """Settle: the response (or error) is in ``ctx``."""
        ...


class HookChain:
    """Runs hooks in order before and in reverse order after."""

    __slots__ = ("hooks",)

    def __init__(self, hooks: Sequence[Hook] = ()) -> None:
        self.hooks = tuple(hooks)

    async def before(self, ctx: RequestContext) -> Response | None:
        """First short-circuit response, if any hook returns one."""
        for hook in self.hooks:
            response = await hook.before(ctx)
            if response is not None:
                return response
        return None

    async def after(self, ctx: RequestContext) -> None:
        """Post hooks, last registered first; every one runs, whatever an earlier one did.

        A hook that fails (or a cancellation that lands in one, at shutdown) must not
        keep the others from settling budgets and writing the audit event: the first
        exception is raised once all have run.
        """
        first: BaseException | None = None
        for hook in reversed(self.hooks):
            try:
                await hook.after(ctx)
            except BaseException as exc:
                if first is None:
                    first = exc
        if first is not None:
            raise first
