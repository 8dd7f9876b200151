"""Hooks around the provider call (Bifrost's rule): a declared lifecycle, a symmetric chain.

A :class:`Hook` declares four methods: ``start`` and ``stop`` (the process's
lifetime: pools, background tasks), ``before`` and ``after`` (one request's).
The chain enters hooks in order; a hook's ``before`` may return a
:class:`Response` to short-circuit (a cache hit, a budget refusal), and the
hooks after it are not entered. Once the response is complete (for streams:
after the last byte) ``after`` runs for exactly the hooks that were entered, in
reverse order, whatever happened (success, error, a client that left), each
handed back the state its own ``before`` returned. So budgets settle, caches
fill, audit events and metrics are written in one place, and a hook never sees
another's state.

A request enters the chain in up to three :class:`Stage` steps, because some
hooks must act before the body is read and others need it parsed: observability
is entered when the request arrives (it is the outermost frame, so its ``after``
sees every outcome, refusals before the body was read included); authentication
when a ``/v1`` request arrives, before its body is read; limits, budgets and the
cache once a model call is parsed and validated. The chain's order must follow
the stages.

A hook may set ``request.allow_fallbacks = False`` to forbid failover.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, TypeVar

from gateway_app.context import Exchange, RequestContext
from gateway_app.errors import GatewayError

StateT = TypeVar("StateT")


@dataclass(slots=True)
class Response:
    """A complete response a hook returns to short-circuit the upstream call."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    content_type: bytes = b"application/json"
    # A refusal's error: the handler writes it in the shape of the request's wire API
    # (``body`` is its OpenAI shape).
    error: GatewayError | None = None


class Stage(IntEnum):
    """When in a request's life a hook's ``before`` runs."""

    ARRIVAL = 0  # every observed request, as it arrives
    API = 1  # a /v1 API request, before its body is read
    CALL = 2  # a model call, parsed and validated, before routing


class Hook(ABC, Generic[StateT]):
    """A pre/post pair around the provider call, with its own per-request state.

    ``before`` and ``after`` may also be plain methods that return a coroutine (one
    that only passes a call on saves a coroutine a request): the chain awaits what
    they return; ``after`` may return None instead (nothing to wait for)."""

    stage: Stage = Stage.CALL

    async def start(self) -> None:
        """Open what the hook holds for the process's lifetime (started in chain order)."""

    async def stop(self) -> None:
        """Close it (stopped in reverse order)."""

    @abstractmethod
    async def before(self, request: RequestContext, exchange: Exchange) -> StateT | Response | None:
        """Inspect or refuse the request: this hook's state for ``after``, or a
        :class:`Response` to short-circuit (``after`` then gets None)."""

    @abstractmethod
    def after(
        self, request: RequestContext, exchange: Exchange, state: StateT | None
    ) -> Awaitable[None] | None:
        """Settle: what happened is in ``exchange``; ``state`` is what ``before`` returned.

        Usually a coroutine (``async def``); a plain method may return None when it has
        nothing to do for this request (no coroutine made for nothing)."""


class HookChain:
    """The configured hooks, in order; validates that the order follows the stages."""

    __slots__ = ("_stages", "hooks")

    def __init__(self, hooks: Sequence[Hook[Any]] = ()) -> None:
        self.hooks = tuple(hooks)
        for earlier, later in zip(self.hooks, self.hooks[1:], strict=False):
            if later.stage < earlier.stage:
                raise ValueError(
                    f"hook {type(later).__name__} (stage {later.stage.name}) comes after "
                    f"{type(earlier).__name__} (stage {earlier.stage.name}); order the hooks "
                    "by stage: ARRIVAL, API, CALL"
                )
        self._stages = tuple(tuple(h for h in self.hooks if h.stage is s) for s in Stage)

    async def start(self) -> None:
        """Start every hook, in order."""
        for hook in self.hooks:
            await hook.start()

    async def stop(self) -> None:
        """Stop every hook, last first; one failing does not keep the others open."""
        first: BaseException | None = None
        for hook in reversed(self.hooks):
            try:
                await hook.stop()
            except BaseException as exc:
                first = first or exc
        if first is not None:
            raise first

    def passage(self) -> Passage:
        """A request's way through the chain."""
        return Passage(self._stages)


class Passage:
    """The hooks one request entered, with the state each ``before`` returned."""

    __slots__ = ("_entered", "_stages")

    def __init__(self, stages: tuple[tuple[Hook[Any], ...], ...]) -> None:
        self._stages = stages
        self._entered: list[tuple[Hook[Any], Any]] = []

    async def enter(
        self, stage: Stage, request: RequestContext, exchange: Exchange
    ) -> Response | None:
        """Run the ``before`` of the stage's hooks in order: the first short-circuit, if any.

        A hook is entered once its ``before`` returns (short-circuiting included); one that
        raises is not, and the error goes on to the handler."""
        entered = self._entered
        for hook in self._stages[stage]:
            state = await hook.before(request, exchange)
            if isinstance(state, Response):
                entered.append((hook, None))
                return state
            entered.append((hook, state))
        return None

    async def leave(self, request: RequestContext, exchange: Exchange) -> None:
        """Run ``after`` for every entered hook, last entered first, exactly once.

        Every one runs whatever an earlier one did: a hook that fails (or a cancellation
        that lands in one, at shutdown) must not keep the others from settling budgets
        and writing the audit event. The first exception is raised once all have run."""
        entered, self._entered = self._entered, []
        first: BaseException | None = None
        for hook, state in reversed(entered):
            try:
                pending = hook.after(request, exchange, state)
                if pending is not None:
                    await pending
            except BaseException as exc:
                first = first or exc
        if first is not None:
            raise first
