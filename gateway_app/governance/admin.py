"""The admin API: one table of routes, each (method, path, required role, writes, handler).

The web console (its script, with the session cookie) and ``aigw admin`` (with
the admin key or a team admin's virtual key) call these same routes; nothing
else changes keys, limits or projects. A request is answered in one order:

1. who is calling (:meth:`AdminApi.principal`): the shared admin key, a virtual
   key, or a console session (whose state-changing requests also pass the
   console's Origin and CSRF checks); 401 otherwise;
2. which route (a 404 naming the path; a 405 listing the methods it allows);
3. the route's role (:class:`~gateway_app.governance.rbac.Role`) and, for a
   route that writes, that the caller may write (viewers read only): 403;
4. the handler, which scopes what it touches to the caller's team (another
   team's records answer 404, as if they did not exist).

Every change is audited with who made it (person or key) and what changed.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl

import orjson

from gateway_app.errors import GatewayError, invalid
from gateway_app.governance import analytics, audit, rbac
from gateway_app.governance.keys import (
    KEY_PREFIX,
    SCOPES,
    KeyLookupFailed,
    KeyRecord,
    Limit,
    hash_key,
    key_store_unavailable,
    new_key,
)
from gateway_app.governance.rbac import Principal, Role
from gateway_app.governance.service import NANO, period_ends, presented_key
from gateway_app.governance.storage import DatabaseError, QueryTimedOut

if TYPE_CHECKING:
    from gateway_app.governance.service import Governance

log = logging.getLogger("gateway_app.governance")

Result = tuple[int, Any]  # (status, JSON-able body)


class People(Protocol):
    """People's console sessions (gateway_app.identity), as the admin API uses them."""

    async def principal(self, headers: Mapping[str, str], method: str) -> Principal | None:
        """The caller of a request with a session cookie (None without one); 401 for an
        ended session, 403 for a state-changing request failing the CSRF checks."""
        ...

    async def revoke_person(self, by: Principal, subject: str) -> int:
        """End every session of a person; how many there were."""
        ...


@dataclass(slots=True)
class AdminCall:
    """One admin request, as a handler sees it."""

    principal: Principal
    path: dict[str, str]  # the route's path parameters
    query: dict[str, str]
    body: Any


Handler = Callable[[AdminCall], Awaitable[Result]]


@dataclass(frozen=True, slots=True)
class AdminAnswer:
    """An admin response as sent: status, JSON body and extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


REPORT_PATHS = ("/admin/analytics/", "/admin/audit")
"""The admin API's report routes (analytics, the audit search): they read the audit log on
their own connection, each query bounded by ``governance.admin_query_timeout_s``."""


class Forwarder(Protocol):
    """Sends admin calls to the cloud that owns governance writes (the global plane's home)."""

    async def forward(
        self, principal: Principal, method: str, path: str, query: str, body: Any
    ) -> AdminAnswer:
        """The home's answer to the call, relayed (503 when the home is unreachable)."""
        ...

    def local_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """What a ``?consistency=local`` answer says about this cloud's copy."""
        ...


@dataclass(frozen=True, slots=True)
class AdminRoute:
    """One route of the admin API."""

    method: str
    pattern: str  # "/admin/keys/{key_id}/rotate": ``{name}`` is one path segment
    role: Role  # the least role that may call it
    writes: bool  # changes something (viewers may not; audited)
    handler: Handler
    forbidden: str = ""  # the 403's message when the role is missing (a default otherwise)
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(s for s in self.pattern.split("/") if s))

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """The path parameters when ``parts`` (the path's segments) fit the pattern."""
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for segment, part in zip(self.segments, parts, strict=True):
            if segment.startswith("{"):
                params[segment[1:-1]] = part
            elif segment != part:
                return None
        return params


class AdminApi:
    """The ``/admin/...`` API of one replica (and, with people's sign-in, session revocation)."""

    def __init__(self, governance: Governance) -> None:
        self.governance = governance
        self.registry = governance.registry
        self.store = governance.store
        self.db = governance.db
        self.reports_db = governance.reports_db
        self.state = governance.state
        # People's sessions, attached when sign-in is configured (gateway_app.identity).
        self.people: People | None = None
        # In a follower cloud of the global plane: the home answers every admin call.
        self.forwarder: Forwarder | None = None
        # The global plane's home: its escrow ledger's view of a budget (per cloud).
        self.budget_ledger: Callable[[str], dict[str, Any]] | None = None
        # The global plane's home: the time before which every cloud's audit is here.
        self.audit_complete_through: Callable[[], float] | None = None
        # Headers of every answer given here (the global plane's home: who answered).
        self.answer_headers: tuple[tuple[bytes, bytes], ...] = ()
        read, write = Role.VIEWER, Role.TEAM_ADMIN
        self.routes: list[AdminRoute] = [
            AdminRoute("GET", "/admin/projects", read, False, self._list_projects),
            AdminRoute("POST", "/admin/projects", write, True, self._create_project),
            AdminRoute("GET", "/admin/projects/{project_id}", read, False, self._get_project),
            AdminRoute("GET", "/admin/keys", read, False, self._list_keys),
            AdminRoute("POST", "/admin/keys", write, True, self._create_key),
            AdminRoute("GET", "/admin/keys/{key_id}", read, False, self._get_key),
            AdminRoute("DELETE", "/admin/keys/{key_id}", write, True, self._revoke_key),
            AdminRoute("POST", "/admin/keys/{key_id}/revoke", write, True, self._revoke_key),
            AdminRoute("POST", "/admin/keys/{key_id}/rotate", write, True, self._rotate_key),
            AdminRoute("GET", "/admin/limits", read, False, self._list_limits),
            AdminRoute("GET", "/admin/limits/{scope}/{scope_id}", read, False, self._get_limit),
            AdminRoute("PUT", "/admin/limits/{scope}/{scope_id}", write, True, self._put_limit),
            AdminRoute(
                "DELETE", "/admin/limits/{scope}/{scope_id}", write, True, self._delete_limit
            ),
            AdminRoute("GET", "/admin/analytics/{kind}", read, False, self._analytics),
            AdminRoute("GET", "/admin/audit", read, False, self._audit_list),
            AdminRoute("GET", "/admin/budgets/{scope}/{scope_id}", read, False, self._budget),
        ]

    def attach_people(self, people: People) -> None:
        """Serve people's sessions too: console sign-in for the admin API, and an org
        admin's ``POST /auth/sessions/revoke``."""
        self.people = people
        self.routes.append(
            AdminRoute(
                "POST",
                "/auth/sessions/revoke",
                Role.ADMIN,
                True,
                self._revoke_sessions,
                forbidden="Only org admins may end other people's sessions.",
            )
        )

    def serves(self, path: str) -> bool:
        """Whether a path is the admin API's."""
        return path.startswith("/admin/") or (
            self.people is not None and path == "/auth/sessions/revoke"
        )

    async def audit_depth(self) -> int:
        """Audit events waiting for the database (the ``aigw_audit_buffer_depth`` gauge)."""
        return await self.state.audit_depth()

    async def audit_rollup_lag(self) -> int | None:
        """Closed days the audit roll-up has not reached (``aigw_audit_rollup_lag_days``)."""
        return await self.governance.audit_rollup_lag()

    # ------------------------------------------------------------ dispatch

    async def principal(self, headers: Mapping[str, str], method: str = "GET") -> Principal:
        """Who is calling: the admin key, a virtual key, or a console session; else a 401."""
        token = presented_key(headers)
        if not token and self.people is not None:
            # A console session (cookie); state-changing methods also pass its CSRF checks.
            person = await self.people.principal(headers, method)
            if person is not None:
                return person
        if not token:
            raise GatewayError(401, "Missing admin or virtual key.", code="invalid_api_key")
        admin_key = self.governance.admin_key
        if admin_key and hmac.compare_digest(token.encode(), admin_key.encode()):
            return Principal(Role.ADMIN)
        try:
            record = (
                await self.registry.authenticate(token) if token.startswith(KEY_PREFIX) else None
            )
        except KeyLookupFailed:
            raise key_store_unavailable() from None
        if record is None or not record.usable(time.time()):
            raise GatewayError(401, "Invalid, expired or revoked API key.", code="invalid_api_key")
        return Principal(Role(record.role), record.team_id, record.id)

    def route(self, method: str, path: str) -> tuple[AdminRoute, dict[str, str]]:
        """The route serving ``method path`` and its path parameters; a 404 or 405."""
        parts = [p for p in path.split("/") if p]
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(parts)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed.append(route.method)
        if allowed:
            raise GatewayError(
                405,
                f"Method {method} is not allowed on {path}; use {', '.join(allowed)}.",
                headers={"allow": ", ".join(allowed)},
            )
        raise GatewayError(404, f"Unknown admin path {method} {path}.", code="unknown_url")

    async def answer(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: Any
    ) -> AdminAnswer:
        """Answer one admin request as sent to the client. Who is calling is decided here
        (keys, the admin key and sessions are known in every cloud); in a follower cloud
        of the global plane the call is then answered by the home, except reads asked
        with ``?consistency=local``, answered from this cloud's copy."""
        principal = await self.principal(headers, method)
        route, _ = self.route(method, path)
        forwarder = self.forwarder
        if forwarder is not None:
            local = dict(parse_qsl(query)).get("consistency") == "local"
            if not (local and not route.writes):
                return await forwarder.forward(principal, method, path, query, body)
            status, payload = await self.serve_as(principal, method, path, query, body)
            return AdminAnswer(status, orjson.dumps(payload), forwarder.local_headers())
        status, payload = await self.serve_as(principal, method, path, query, body)
        extra = await self.audit_headers(path)
        return AdminAnswer(status, orjson.dumps(payload), (*self.answer_headers, *extra))

    async def audit_headers(self, path: str) -> list[tuple[bytes, bytes]]:
        """For analytics and the audit search at the global plane's home: how complete
        the answer is (``x-aigw-audit-complete-through``: every cloud's events before this
        Unix time are in it; a cloud cut off holds it back)."""
        through = self.audit_complete_through
        if through is None or not path.startswith(REPORT_PATHS):
            return []
        value = await asyncio.to_thread(through)
        return [(b"x-aigw-audit-complete-through", b"%.3f" % value)]

    async def serve(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: Any
    ) -> Result:
        """Answer one admin request here: (status, JSON-able body); raises GatewayError."""
        principal = await self.principal(headers, method)
        return await self.serve_as(principal, method, path, query, body)

    async def serve_as(
        self, principal: Principal, method: str, path: str, query: str, body: Any
    ) -> Result:
        """Answer one admin request of a known caller here (the home answers forwarded
        calls with this): (status, JSON-able body); raises GatewayError."""
        route, params = self.route(method, path)
        rbac.require(principal, route.role, route.writes, route.forbidden)
        try:
            return await route.handler(AdminCall(principal, params, dict(parse_qsl(query)), body))
        except QueryTimedOut as exc:
            log.warning("admin %s %s?%s: %s", method, path, query, exc)
            raise GatewayError(
                503,
                f"This query ran longer than governance.admin_query_timeout_s "
                f"({exc.timeout_s:g} s) and was cancelled, so that it does not hold the "
                "database. Analytics and the audit search read the raw audit events of the "
                "days not rolled up yet (today, and yesterday until audit-maintain's nightly "
                "run): ask a shorter range or fewer groups (until=yesterday for a month "
                "view; today's totals are in the metrics), or raise "
                "governance.admin_query_timeout_s.",
                code="admin_query_timeout",
                type="server_error",
            ) from None
        except DatabaseError as exc:
            log.error("admin %s %s: the database is unreachable: %s", method, path, exc)
            raise GatewayError(
                503,
                "The gateway's database is unreachable, so admin requests cannot be served "
                "right now (model requests are not affected); retry shortly.",
                code="database_unavailable",
                type="server_error",
                headers={"retry-after": "5"},
            ) from None

    async def _audit(self, principal: Principal, action: str, detail: dict[str, Any]) -> None:
        event = audit.event(
            "admin",
            actor=principal.actor,
            team_id=detail.get("team_id"),
            key_id=detail.get("key_id"),
            action=action,
            detail={**detail, "actor": principal.describe()},
        )
        try:
            await self.state.append(orjson.dumps(event))
        except Exception:
            # The action is done (it is in the database); its audit event could not be buffered.
            log.error(
                "could not buffer the audit event of %s (state unreachable): %s", action, detail
            )

    # ------------------------------------------------------------ keys

    async def _list_keys(self, call: AdminCall) -> Result:
        team = rbac.team_scope(call.principal, call.query.get("team_id"))
        keys = await asyncio.to_thread(self.store.all, team)
        return 200, {"data": [k.public() for k in keys]}

    async def _key(self, call: AdminCall) -> KeyRecord:
        """The path's key; 404 when unknown or another team's."""
        key_id = call.path["key_id"]
        record = await asyncio.to_thread(self.store.get, key_id)
        if record is None:
            raise rbac.not_found(f"Key {key_id!r}")
        rbac.check_team(call.principal, record.team_id, f"Key {key_id!r}")
        return record

    async def _get_key(self, call: AdminCall) -> Result:
        return 200, (await self._key(call)).public()

    async def _revoke_key(self, call: AdminCall) -> Result:
        record = await self._key(call)
        await asyncio.to_thread(self.store.revoke, record.id, time.time())
        await self.registry.changed(f"key:{record.id}")
        await self._audit(
            call.principal, "key.revoke", {"key_id": record.id, "team_id": record.team_id}
        )
        revoked = await asyncio.to_thread(self.store.get, record.id)
        assert revoked is not None
        return 200, revoked.public()

    async def _rotate_key(self, call: AdminCall) -> Result:
        record = await self._key(call)
        if record.revoked_at is not None:
            raise GatewayError(
                409, f"Key {record.id!r} is revoked; create a new one.", code="revoked"
            )
        _, fresh = new_key()
        fresh = f"{KEY_PREFIX}{record.id}-{fresh.rsplit('-', 1)[1]}"
        await asyncio.to_thread(self.store.rehash, record.id, hash_key(self.registry.secret, fresh))
        await self.registry.changed(f"key:{record.id}")
        await self._audit(
            call.principal, "key.rotate", {"key_id": record.id, "team_id": record.team_id}
        )
        return 200, {**record.public(), "key": fresh}

    async def _create_key(self, call: AdminCall) -> Result:
        principal, body = call.principal, call.body or {}
        if not isinstance(body, dict):
            raise invalid(None, "The body must be a JSON object.")
        team_id = body.get("team_id") if principal.role is Role.ADMIN else principal.team_id
        if principal.role is not Role.ADMIN and body.get("team_id") not in (
            None,
            principal.team_id,
        ):
            raise rbac.not_found(f"Team {body.get('team_id')!r}")
        project_id = body.get("project_id")
        for name, value in (("team_id", team_id), ("project_id", project_id)):
            if not isinstance(value, str) or not value:
                raise invalid(name, f"`{name}` is required: a non-empty string.")
        assert isinstance(team_id, str) and isinstance(project_id, str)
        role = body.get("role", "member")
        if role not in ("member", "team_admin"):
            raise invalid("role", f"`role` must be 'member' or 'team_admin', got {role!r}.")
        models = body.get("models")
        if models is not None and (
            not isinstance(models, list) or not all(isinstance(m, str) for m in models)
        ):
            raise invalid("models", "`models` must be a list of model names.")
        now = time.time()
        expires_at = body.get("expires_at")
        ttl = body.get("ttl_s")
        if ttl is not None:
            if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
                raise invalid(
                    "ttl_s", f"`ttl_s` must be a positive number of seconds, got {ttl!r}."
                )
            expires_at = now + float(ttl)
        if expires_at is not None:
            if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
                raise invalid("expires_at", "`expires_at` must be a Unix time in seconds.")
            if expires_at <= now:
                raise invalid(
                    "expires_at",
                    f"`expires_at` {expires_at!r} is in the past; the key would be created "
                    "expired. Use a future Unix time, or `ttl_s`.",
                )
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise invalid("metadata", "`metadata` must be an object.")
        claimed = await self._claim_project(principal, project_id, team_id)
        key_id, key = new_key()
        record = KeyRecord(
            id=key_id,
            key_hash=hash_key(self.registry.secret, key),
            team_id=team_id,
            project_id=project_id,
            name=str(body.get("name") or ""),
            role=role,
            models=tuple(models) if models is not None else None,
            expires_at=float(expires_at) if expires_at is not None else None,
            metadata=metadata,
            created_at=now,
        )
        await asyncio.to_thread(self.store.insert, record)
        await self.registry.changed(f"key:{key_id}")
        await self._audit(
            principal,
            "key.create",
            {
                "key_id": key_id,
                "team_id": team_id,
                "project_id": project_id,
                "project_claimed": claimed,
            },
        )
        return 201, {**record.public(), "key": key}

    # ------------------------------------------------------------ limits

    async def _list_limits(self, call: AdminCall) -> Result:
        limits = list(self.registry.limits.values())
        if not rbac.sees_all(call.principal):
            limits = [lim for lim in limits if lim.team_id == call.principal.team_id]
        return 200, {"data": [lim.public() for lim in limits]}

    async def _limit_scope(
        self, call: AdminCall, *, claim: bool = False
    ) -> tuple[str, str, str | None]:
        """(scope, scope id, owning team) of the path's limit; 400 for an unknown scope."""
        scope, scope_id = call.path["scope"], call.path["scope_id"]
        if scope not in SCOPES:
            raise invalid("scope", f"Unknown scope {scope!r}; use one of {list(SCOPES)}.")
        requested = call.body.get("team_id") if isinstance(call.body, dict) else None
        owner = await self._limit_owner(call.principal, scope, scope_id, requested, claim=claim)
        return scope, scope_id, owner

    async def _get_limit(self, call: AdminCall) -> Result:
        scope, scope_id, _ = await self._limit_scope(call)
        existing = self.registry.limit(scope, scope_id)
        if existing is None:
            raise rbac.not_found(f"Limit {scope}/{scope_id}")
        return 200, existing.public()

    async def _delete_limit(self, call: AdminCall) -> Result:
        scope, scope_id, owner = await self._limit_scope(call)
        deleted = await asyncio.to_thread(self.store.delete_limit, scope, scope_id)
        await self.registry.changed("limits")
        await self._audit(
            call.principal,
            "limit.delete",
            {"scope": scope, "scope_id": scope_id, "team_id": owner},
        )
        return 200, {"deleted": deleted}

    async def _put_limit(self, call: AdminCall) -> Result:
        scope, scope_id, owner = await self._limit_scope(call, claim=True)
        body = call.body
        if not isinstance(body, dict):
            raise invalid(None, "The body must be a JSON object.")
        values: dict[str, Any] = {}
        for name, kind in (
            ("daily_usd", float),
            ("monthly_usd", float),
            ("rpm", int),
            ("tpm", int),
        ):
            value = body.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise invalid(name, f"`{name}` must be a non-negative number or null.")
            values[name] = kind(value) if value is not None else None
        limit = Limit(scope, scope_id, team_id=owner, **values)
        await asyncio.to_thread(self.store.put_limit, limit)
        await self.registry.changed("limits")
        await self._audit(call.principal, "limit.put", {**limit.public()})
        return 200, limit.public()

    async def _limit_owner(
        self,
        principal: Principal,
        scope: str,
        scope_id: str,
        requested: Any = None,
        *,
        claim: bool = False,
    ) -> str | None:
        """The team owning a limit's scope; raises 403/404 for team admins outside their
        team. A project nobody owns yet is claimed for the caller's team when ``claim``."""
        if scope in ("org", "customer"):
            if not rbac.sees_all(principal):  # (viewers reach here for reads only)
                raise rbac.forbidden(f"Only the gateway admin may manage {scope} limits.")
            return None
        if scope == "team":
            rbac.check_team(principal, scope_id, f"Team {scope_id!r}")
            return scope_id
        if scope == "key":
            record = self.registry.by_id.get(scope_id) or await asyncio.to_thread(
                self.store.get, scope_id
            )
            if record is None:
                raise rbac.not_found(f"Key {scope_id!r}")
            rbac.check_team(principal, record.team_id, f"Key {scope_id!r}")
            return record.team_id
        # A project: owned by one team (the first to claim it), checked on every call.
        owner = await asyncio.to_thread(self.store.project_owner, scope_id)
        if owner is not None:
            rbac.check_team(principal, owner, f"Project {scope_id!r}")
            if requested not in (None, owner):
                raise GatewayError(
                    409,
                    f"Project {scope_id!r} belongs to team {owner!r}, not {requested!r}.",
                    code="project_conflict",
                )
            return owner
        if not claim:
            if principal.role is Role.ADMIN:
                return None
            raise rbac.not_found(f"Project {scope_id!r}")
        team = principal.team_id if principal.role is not Role.ADMIN else requested
        if not isinstance(team, str) or not team:
            raise invalid(
                "team_id",
                f"Project {scope_id!r} belongs to no team yet: send `team_id`, the team that "
                "owns it (or create a key for the project first).",
            )
        await self._claim_project(principal, scope_id, team)
        return team

    # ------------------------------------------------------------ projects

    async def _claim_project(self, principal: Principal, project_id: str, team: str) -> bool:
        """``project_id`` for ``team``: claimed if nobody owns it (True: claimed now, which
        the caller's audit event records); 409 if another team owns it."""
        known = self.registry.projects.get(project_id)
        owner = (
            known
            if known == team
            else await asyncio.to_thread(self.store.claim_project, project_id, team, time.time())
        )
        if owner != team:
            shown = f"team {owner!r}" if principal.role is Role.ADMIN else "another team"
            raise GatewayError(
                409,
                f"Project {project_id!r} belongs to {shown}; project ids are unique across "
                "teams: choose another `project_id`.",
                param="project_id",
                code="project_conflict",
            )
        if known is None:
            await self.registry.changed("projects")
        return known is None

    async def _list_projects(self, call: AdminCall) -> Result:
        team = rbac.team_scope(call.principal, call.query.get("team_id"))
        rows = await asyncio.to_thread(self.store.team_projects, team)
        return 200, {"data": rows}

    async def _create_project(self, call: AdminCall) -> Result:
        body = call.body
        if not isinstance(body, dict):
            raise invalid(None, "The body must be a JSON object.")
        project_id = body.get("project_id")
        if not isinstance(project_id, str) or not project_id:
            raise invalid("project_id", "`project_id` is required: a non-empty string.")
        team = rbac.team_scope(call.principal, body.get("team_id"))
        if team is None:
            raise invalid("team_id", "`team_id` is required: the team that owns the project.")
        if self.registry.projects.get(project_id) == team:
            return 200, {"id": project_id, "team_id": team}
        await self._claim_project(call.principal, project_id, team)
        await self._audit(
            call.principal, "project.create", {"project_id": project_id, "team_id": team}
        )
        return 201, {"id": project_id, "team_id": team}

    async def _get_project(self, call: AdminCall) -> Result:
        project_id = call.path["project_id"]
        owner = await asyncio.to_thread(self.store.project_owner, project_id)
        if owner is None:
            raise rbac.not_found(f"Project {project_id!r}")
        rbac.check_team(call.principal, owner, f"Project {project_id!r}")
        return 200, {"id": project_id, "team_id": owner}

    # ------------------------------------------------------------ analytics, audit, spend

    async def _analytics(self, call: AdminCall) -> Result:
        team = rbac.team_scope(call.principal, call.query.get("team_id"))
        query = {
            "analytics": analytics.usage,
            "usage": analytics.usage,
            "latency": analytics.latency,
        }.get(call.path["kind"])
        if query is None:
            raise GatewayError(
                404, "Use /admin/analytics/usage or /admin/analytics/latency.", code="unknown_url"
            )
        params = call.query
        rows = await asyncio.to_thread(
            query,
            self.reports_db,
            params.get("group_by", "day"),
            team_id=team,
            since=params.get("since"),
            until=params.get("until"),
        )
        return 200, {"data": rows}

    async def _audit_list(self, call: AdminCall) -> Result:
        team = rbac.team_scope(call.principal, call.query.get("team_id"))
        rows = await asyncio.to_thread(
            analytics.audit_events, self.reports_db, call.query, team_id=team
        )
        return 200, {"data": rows}

    async def _budget(self, call: AdminCall) -> Result:
        scope, scope_id, _ = await self._limit_scope(call)
        day, month, _, _ = period_ends(time.time())
        name = f"{scope}:{scope_id}"
        ledger = self.budget_ledger
        if ledger is not None:
            # Every cloud's spend, as each last reported it to the home (one tick old).
            clouds: dict[str, Any] = {}
            spent = {}
            for period, period_id in (("daily", day), ("monthly", month)):
                rows = await asyncio.to_thread(ledger, f"{name}|{period}|{period_id}")
                spent[period] = sum(row["spent_nusd"] for row in rows.values())
                for cloud, row in rows.items():
                    clouds.setdefault(cloud, {})[period] = {
                        "spent_usd": row["spent_nusd"] / NANO,
                        "held_usd": row["held_nusd"] / NANO,
                        "overdraft_usd": row["overdraft_nusd"] / NANO,
                        "reported_at": row["reported_at"],
                    }
            daily, monthly = spent["daily"], spent["monthly"]
        else:
            daily = await self.state.spent_nusd(name, "daily", day)
            monthly = await self.state.spent_nusd(name, "monthly", month)
        answer = {
            "scope": scope,
            "scope_id": scope_id,
            "daily_usd": daily / NANO,
            "monthly_usd": monthly / NANO,
            "day": day,
            "month": month,
        }
        if ledger is not None:
            answer["clouds"] = clouds
        return 200, answer

    # ------------------------------------------------------------ people

    async def _revoke_sessions(self, call: AdminCall) -> Result:
        assert self.people is not None
        body = call.body
        subject = body.get("subject") if isinstance(body, dict) else None
        if not isinstance(subject, str) or not subject:
            raise GatewayError(
                400,
                "Send `subject`: the person's subject (sub) at the identity provider.",
                param="subject",
                code="invalid_request",
            )
        ended = await self.people.revoke_person(call.principal, subject)
        return 200, {"subject": subject, "sessions_ended": ended}
