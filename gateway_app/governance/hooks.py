"""Governance's per-request side: two hooks over the replica's :class:`Governance`.

* :class:`KeyAuthentication` (``Stage.API``): the virtual key, before the body is
  read, so a stranger learns nothing (no model list, no validation error). A
  refusal is a 401, audited by this hook's ``after``.
* :class:`GovernanceHook` (``Stage.CALL``): the key's model list, then the
  request's rate-limit units and maximum cost reserved at every budget level in
  one atomic call (one Redis round trip); ``after`` settles the reservation
  against the actual cost and queues the audit event (no round trip: batched).
  It also starts and stops the replica's governance (registry, audit drainer).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from gateway_app.context import Exchange, RequestContext
from gateway_app.hooks import Hook, Response, Stage

if TYPE_CHECKING:
    from gateway_app.governance.service import Governance, Reservation


class KeyAuthentication(Hook[None]):
    """Authenticates the virtual key of every ``/v1`` request."""

    stage = Stage.API

    def __init__(self, governance: Governance) -> None:
        self.governance = governance

    def before(
        self, request: RequestContext, exchange: Exchange
    ) -> Coroutine[Any, Any, Response | None]:
        """A 401 refusal, or None with ``request.caller`` set.

        Governance's coroutine itself, awaited by the chain: no coroutine of its own
        around it (~700 instructions a request, for each of the three such methods)."""
        return self.governance.authenticate(request, exchange)

    def after(
        self, request: RequestContext, exchange: Exchange, state: None
    ) -> Coroutine[Any, Any, None] | None:
        """Audit a refusal (governance's coroutine); nothing for an authenticated request
        (audited once it settles): None, no coroutine made for nothing."""
        if request.caller is None:
            return self.governance.settle(request, exchange, None)
        return None


class GovernanceHook(Hook["Reservation"]):
    """Limits and budgets around each model call; cost and audit once it is done."""

    stage = Stage.CALL

    def __init__(self, governance: Governance) -> None:
        self.governance = governance

    async def start(self) -> None:
        """Migrate SQLite, load prices and keys, start the audit drainer."""
        await self.governance.start()

    async def stop(self) -> None:
        """Flush queued settlements and audit events; close connections."""
        await self.governance.stop()

    def before(
        self, request: RequestContext, exchange: Exchange
    ) -> Coroutine[Any, Any, Reservation | Response | None]:
        """The call's reservation, or a refusal (403, 429, 503): governance's coroutine,
        awaited by the chain (as :meth:`KeyAuthentication.before`)."""
        return self.governance.check(request, exchange)

    def after(
        self, request: RequestContext, exchange: Exchange, state: Reservation | None
    ) -> Coroutine[Any, Any, None]:
        """Correct the reservation to the actual cost; queue the audit event
        (governance's coroutine, awaited by the chain)."""
        return self.governance.settle(request, exchange, state)


def governance_hooks(governance: Governance) -> list[Hook[Any]]:
    """The hooks of one replica's governance, in chain order."""
    return [KeyAuthentication(governance), GovernanceHook(governance)]
