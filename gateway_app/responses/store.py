"""Stored responses: the gateway's own, per team, with a lifetime.

Why Redis (and an in-process dict for one replica): a chained turn reads its
conversation before the upstream call, so the store is on the hot path, where
the gateway allows Redis and never PostgreSQL; entries expire by themselves
(``PX``), and every replica (every cloud's, with a shared Redis per cloud) reads
what another stored. A stored response is one value holding the response object
and the conversation's input items.

Tenant isolation is the cache's: the team is part of the key, so a key of another
team finds nothing and gets the same 404 as for an id that never existed (it
learns neither the content nor that the id exists). Keys of one team share its
responses, as an OpenAI project's keys do.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from gateway_app.apis import RESPONSES
from gateway_app.context import Exchange, RequestContext
from gateway_app.errors import GatewayError, invalid
from gateway_app.hooks import Hook
from gateway_app.protocols.openai_responses.items import input_items, listed

if TYPE_CHECKING:
    from gateway_app.cache.store import CacheStore
    from gateway_app.config import ResponsesConfig

log = logging.getLogger("gateway_app.responses")

_PREFIX = "/v1/responses/"


def tenant(request: RequestContext) -> str:
    """Whose responses the request may read: its key's team (``anonymous`` without keys)."""
    caller = request.caller
    return caller.team_id if caller is not None else "anonymous"


def not_found(response_id: str) -> GatewayError:
    """OpenAI's 404 for an unknown response id (also for another team's)."""
    return GatewayError(
        404,
        f"No response found with id '{response_id}'.",
        param="response_id",
        code="response_not_found",
    )


class ResponseStore:
    """Stored responses by team and id, on a byte store with expiry."""

    def __init__(self, store: CacheStore, config: ResponsesConfig) -> None:
        self.store = store
        self.ttl_s = config.ttl_s
        self.max_entry_bytes = config.max_entry_bytes

    @staticmethod
    def _key(team: str, response_id: str) -> str:
        return f"{team}\x00{response_id}"

    async def get(self, team: str, response_id: str) -> dict[str, Any] | None:
        """The record (``response`` and ``input``), or None when absent, expired or not
        the team's."""
        raw = await self.store.get(self._key(team, response_id))
        return orjson.loads(raw) if raw is not None else None

    async def read(self, team: str, response_id: str) -> dict[str, Any] | None:
        """:meth:`get` for a request: a 503 the client can retry when the store is down."""
        try:
            return await self.get(team, response_id)
        except Exception as exc:
            log.warning("the response store could not be read: %s", type(exc).__name__)
            raise GatewayError(
                503,
                "Stored responses cannot be read right now; retry shortly.",
                code="response_store_unavailable",
                type="server_error",
                headers={"retry-after": "1"},
            ) from None

    async def put(self, team: str, response: dict[str, Any], items: list[dict[str, Any]]) -> bool:
        """Keep ``response`` and its conversation's input ``items``; False when too large or
        when Redis is short of memory (the answer is given either way)."""
        raw = orjson.dumps({"response": response, "input": items})
        if len(raw) > self.max_entry_bytes:
            log.warning(
                "response %s not stored: %d bytes exceed responses.max_entry_bytes",
                response.get("id"),
                len(raw),
            )
            return False
        # False: Redis is short of memory (redis.store_below_memory; the guard logs it).
        return await self.store.set(self._key(team, str(response["id"])), raw, self.ttl_s)

    async def delete(self, team: str, response_id: str) -> None:
        """Forget a response."""
        await self.store.delete(self._key(team, response_id))

    async def close(self) -> None:
        """Release the byte store's connections."""
        await self.store.close()

    # ------------------------------------------------------------ HTTP

    @staticmethod
    def serves(path: str) -> bool:
        """Whether ``path`` is one of the stored-response routes."""
        return path.startswith(_PREFIX)

    async def serve(
        self, method: str, path: str, query: str, request: RequestContext
    ) -> dict[str, Any]:
        """``GET``/``DELETE /v1/responses/{id}`` and ``GET .../{id}/input_items``: the JSON
        answer, or a GatewayError (404 for an id the caller's team does not have)."""
        rest = path[len(_PREFIX) :]
        response_id, _, sub = rest.partition("/")
        team = tenant(request)
        if not response_id or sub not in ("", "input_items"):
            raise GatewayError(404, f"Unknown path {path}.", code="unknown_url")
        if method not in ("GET", "DELETE") or (method == "DELETE" and sub):
            raise GatewayError(405, f"Method {method} is not allowed on {path}.")
        record = await self.read(team, response_id)
        if record is None:
            raise not_found(response_id)
        if method == "DELETE":
            await self.delete(team, response_id)
            return {"id": response_id, "object": "response.deleted", "deleted": True}
        if not sub:
            response: dict[str, Any] = record["response"]
            return response
        return _page(record["input"], parse_qs(query))


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    """One page of input items (``limit`` 1-100, default 20; ``order`` desc by default, as
    OpenAI's; ``after`` an item id)."""
    order = query.get("order", ["desc"])[0]
    if order not in ("asc", "desc"):
        raise invalid("order", f"Invalid value: {order!r}. Supported values are: 'asc' and 'desc'.")
    try:
        limit = int(query.get("limit", ["20"])[0])
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise invalid("limit", "Invalid 'limit': use an integer from 1 to 100.")
    ordered = items if order == "asc" else items[::-1]
    after = query.get("after", [None])[0]
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise invalid("after", f"No input item with id '{after}' in this response.")
        ordered = ordered[ids.index(after) + 1 :]
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > limit,
    }


class ResponseStoreHook(Hook[None]):
    """Resolves ``previous_response_id`` before the call; stores the response just before
    its last byte is sent (a client may chain onto it the moment it has it).

    It runs before governance's limits, so the reservation counts the whole
    conversation the upstream will read, not only the new turn."""

    def __init__(self, store: ResponseStore, enabled: bool = True) -> None:
        self.store = store
        self.enabled = enabled

    async def stop(self) -> None:
        """Close the store."""
        await self.store.close()

    async def before(self, request: RequestContext, exchange: Exchange) -> None:
        """Set ``request.history``; a 400 naming ``previous_response_id`` when the caller's
        team has no such response (OpenAI's answer)."""
        body = request.body
        if request.api is not RESPONSES or body is None:
            return None
        team = tenant(request)
        previous = body.get("previous_response_id")
        history: list[dict[str, Any]] = []
        if previous is not None:
            record = await self.store.read(team, previous)
            if record is None:
                raise invalid(
                    "previous_response_id",
                    f"Previous response with id '{previous}' not found (it expired, was "
                    "deleted, was made with store: false, or belongs to another team).",
                    "previous_response_not_found",
                )
            history = [*record["input"], *record["response"].get("output", [])]
        request.history = history
        if not self.enabled and body.get("store") is not False:
            # The gateway keeps nothing (responses.store: false): the response says so.
            request.body = {**body, "store": False}
            return None
        if body.get("store") is False:
            return None
        items = listed([*history, *input_items(body)])

        async def keep() -> None:
            await self._keep(team, items, exchange)

        # Stored before the answer's last byte: a client chains onto it right away.
        exchange.before_last_byte.append(keep)
        return None

    async def after(self, request: RequestContext, exchange: Exchange, state: None) -> None:
        """Nothing: the response was stored before its last byte was sent."""

    async def _keep(self, team: str, items: list[dict[str, Any]], exchange: Exchange) -> None:
        """Store a complete response (never an error, a broken or abandoned stream)."""
        route = exchange.route
        if exchange.status != 200 or exchange.error:
            return
        response: Any
        if exchange.replayed is not None:  # a cache hit, served as a new response
            response = exchange.replayed
        elif route is None:
            return
        elif route.result is not None:
            response = route.result.data
        elif route.stream is not None:
            response = route.stream.state.extra.get("response")
        else:
            return
        if not isinstance(response, dict) or not response.get("id"):
            return
        try:
            await self.store.put(team, response, items)
        except Exception as exc:  # the client has its answer; say it was not kept
            log.warning("response %s not stored: %s", response.get("id"), type(exc).__name__)


def build(
    config: Any, redis_url: str | None, ca_file: str | None, credential: Any = None
) -> ResponseStoreHook:
    """The store hook for ``config.responses`` (Redis when ``redis_url`` is set;
    ``credential`` authenticates to Azure Managed Redis with Entra tokens)."""
    from gateway_app.cache.store import InProcessCacheStore, RedisCacheStore

    settings = config.responses
    store: CacheStore = (
        RedisCacheStore.from_url(
            redis_url, ca_file, credential, prefix="aigw:responses:", redis=config.redis
        )
        if redis_url
        else InProcessCacheStore(settings.max_entries)
    )
    return ResponseStoreHook(ResponseStore(store, settings), settings.store)
