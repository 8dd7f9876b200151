"""Governance as one hook (auth, limits, budgets, cost, audit) plus the admin API.

Request path, ``before`` (one Redis round trip, none in embedded mode):
authenticate the virtual key from memory, check its model list, then reserve
the request's rate-limit units and maximum cost at every budget level in one
atomic call. ``after`` (no round trip): compute the actual cost from the
usage the upstream reported, then queue the reservation's correction and the
audit event; with Redis they are written in batches, one pipeline every few
milliseconds for all the requests in between (``SettleBatcher``).
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import hmac
import logging
import math
import os
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gateway_app.config import DeploymentConfig, GatewayConfig
from gateway_app.errors import GatewayError, invalid
from gateway_app.governance import analytics, audit, rbac
from gateway_app.governance.cost import Pricing, TokenPrices, Tokens
from gateway_app.governance.keys import (
    KEY_PREFIX,
    SCOPES,
    KeyRecord,
    KeyStore,
    Limit,
    Registry,
    hash_key,
    new_key,
)
from gateway_app.governance.settings import GovernanceConfig
from gateway_app.governance.storage import Database, DatabaseError
from gateway_app.hooks import RequestContext, Response
from gateway_app.state.governance import (
    BudgetItem,
    Decision,
    GovernanceState,
    InProcessGovernanceState,
    RateItem,
)

log = logging.getLogger("gateway_app.governance")

NANO = 1_000_000_000
_RATE_HEADER_NAMES = {
    kind: tuple(f"x-ratelimit-{part}-{noun}".encode() for part in ("limit", "remaining", "reset"))
    for kind, noun in (("rpm", "requests"), ("tpm", "tokens"))
}
_CACHE_HITS = ("hit", "semantic-hit")


def enabled(config: GatewayConfig) -> bool:
    """Whether governance runs: ``governance.enabled``, else iff AIGW_ADMIN_KEY is set."""
    if config.governance.enabled is not None:
        return config.governance.enabled
    return bool(os.environ.get("AIGW_ADMIN_KEY"))


def presented_key(headers: dict[str, str]) -> str | None:
    """The client's key: ``Authorization: Bearer``, else ``api-key`` / ``x-api-key``."""
    auth = headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("api-key") or headers.get("x-api-key")


# The UTC day last asked about: (day number, day id, month id, whole days left in
# the month after it). Formatting dates cost ~10 µs per request; they change daily.
_DAY: tuple[int, str, str, int] = (-1, "", "", 0)


def _period_ends(now: float) -> tuple[str, str, int, int]:
    """(day id, month id, seconds to end of UTC day, seconds to end of UTC month)."""
    global _DAY
    whole = int(now)
    day = _DAY
    if day[0] != whole // 86400:
        moment = datetime.fromtimestamp(now, UTC)
        days = calendar.monthrange(moment.year, moment.month)[1]
        day = _DAY = (
            whole // 86400,
            moment.strftime("%Y-%m-%d"),
            moment.strftime("%Y-%m"),
            days - moment.day,
        )
    day_left = 86400 - whole % 86400
    return day[1], day[2], day_left, day[3] * 86400 + day_left


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``1s``, ``6m0s``, ``250ms``."""
    if seconds < 1:
        return f"{max(1, int(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def usd(amount: float) -> str:
    """Dollars with the precision that shows the amount: ``$12.50``, ``$0.0036``,
    ``$0.000012`` (three significant digits below a dollar), never ``$0.0000``."""
    if amount == 0:
        return "$0"
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(abs(amount))))
    return f"${amount:.{decimals}f}"


class Governance:
    """The governance hook and admin API of one gateway replica."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        state: GovernanceState,
        db: Database,
        admin_key: str | None,
        secret: bytes,
        redis: Any = None,
        drain_state: GovernanceState | None = None,
    ) -> None:
        self.config = config
        self.settings: GovernanceConfig = config.governance
        self.state = state
        self.db = db
        self.admin_key = admin_key
        self.store = KeyStore(db)
        self.registry = Registry(
            self.store, secret, refresh_s=self.settings.key_refresh_s, redis=redis
        )
        self.pricing = Pricing()
        # The drainer's blocking reads get their own connection(s), away from the hot path's.
        self.drain_state = drain_state or state
        self.drainer = audit.AuditDrainer(
            self.drain_state,
            db,
            batch=self.settings.audit_batch,
            interval_s=self.settings.audit_interval_s,
        )
        self.redact = audit.Redactor(self.settings.audit_redact)
        self._deployments: dict[str, tuple[DeploymentConfig, str]] = {}
        for model in config.models.values():
            for deployment in model.deployments:
                self._deployments[deployment.id] = (
                    deployment,
                    config.providers[deployment.provider].type,
                )
        self._bounds: dict[str, TokenPrices] = {}
        # People's sessions (gateway_app.identity.Identity), set when sign-in is configured.
        self.identity: Any = None
        self._levels_cache: dict[tuple[str, str, str, str | None], Any] = {}
        self._levels_of: object = None

    @classmethod
    def from_env(cls, config: GatewayConfig) -> Governance:
        """Redis from ``AIGW_REDIS_URL``/``AIGW_REDIS_CA_FILE``; the database from
        ``AIGW_DATABASE_URL``/``AIGW_DATABASE_CA_FILE`` (else embedded SQLite)."""
        admin_key = os.environ.get("AIGW_ADMIN_KEY") or None
        secret_text = os.environ.get("AIGW_KEY_HASH_SECRET")
        if secret_text:
            secret = secret_text.encode()
        elif admin_key:
            log.warning(
                "AIGW_KEY_HASH_SECRET is unset; deriving the key hash secret from the admin key"
            )
            secret = hmac.new(admin_key.encode(), b"aigw-key-hash", hashlib.sha256).digest()
        else:
            from gateway_app.config import ConfigError

            raise ConfigError(
                "governance.enabled is true but neither AIGW_KEY_HASH_SECRET nor AIGW_ADMIN_KEY "
                "is set; set AIGW_KEY_HASH_SECRET (and AIGW_ADMIN_KEY for the admin API)"
            )
        url = os.environ.get("AIGW_REDIS_URL")
        redis = None
        drain_state: GovernanceState | None = None
        state: GovernanceState
        if url:
            from gateway_app.state.governance_redis import RedisGovernanceState, redis_client

            ca = os.environ.get("AIGW_REDIS_CA_FILE") or None
            state = RedisGovernanceState.from_url(
                url, ca, claim_idle_s=config.governance.audit_claim_idle_s
            )
            drain_state = RedisGovernanceState.from_url(
                url, ca, max_connections=2, claim_idle_s=config.governance.audit_claim_idle_s
            )
            # Pub/sub holds its connection open: a separate client without a read timeout.
            redis = redis_client(url, ca, socket_timeout=None)
        else:
            state = InProcessGovernanceState()
        db = Database.from_env(config.governance.sqlite_path)
        return cls(
            config,
            state=state,
            db=db,
            admin_key=admin_key,
            secret=secret,
            redis=redis,
            drain_state=drain_state,
        )

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.db.kind == "sqlite":
            await asyncio.to_thread(self.db.migrate)
        # Load the price dataset now rather than at the first request.
        await asyncio.to_thread(lambda: [self.price_bound(model) for model in self.config.models])
        unpriced = self.unpriced_models()
        if unpriced and self.settings.unpriced_models == "refuse_at_startup":
            from gateway_app.config import ConfigError
            from gateway_app.governance.cost import unpriced_deployments, unpriced_error

            raise ConfigError(unpriced_error(unpriced_deployments(self.config, self.pricing)))
        await self.registry.start()
        self.drainer.start()

    async def stop(self) -> None:
        await self.registry.stop()
        # Queued settlements and events first, so the drainer's last pass can store them.
        await self.state.flush()
        await self.drainer.stop()
        await self.state.close()
        if self.drain_state is not self.state:
            await self.drain_state.close()
        if self.registry.redis is not None:
            await self.registry.redis.aclose()
        await asyncio.to_thread(self.db.close)

    # ------------------------------------------------------------ hot path

    def _refuse(self, ctx: RequestContext, reason: str, error: GatewayError) -> Response:
        ctx.rejection = reason
        headers = [(k.encode(), v.encode()) for k, v in error.headers.items()]
        return Response(error.status, error.to_bytes(), headers)

    def price_bound(self, model: str) -> TokenPrices:
        """The dearest prices among a model's deployments (failover may reach any)."""
        bound = self._bounds.get(model)
        if bound is None:
            prices = [
                self.pricing.prices(d, self.config.providers[d.provider].type)
                for d in self.config.models[model].deployments
            ]
            bound = TokenPrices(
                max(p.input for p in prices),
                max(p.output for p in prices),
                max(p.cache_read for p in prices),
            )
            self._bounds[model] = bound
        return bound

    def unpriced_models(self) -> frozenset[str]:
        """Public model names with a deployment that has no price."""
        unpriced = self.pricing.unpriced
        return frozenset(
            name
            for name, model in self.config.models.items()
            if any(d.id in unpriced for d in model.deployments)
        )

    def estimate(self, ctx: RequestContext) -> tuple[int, int]:
        """(prompt tokens, output tokens) upper bounds of the request."""
        body = ctx.body or {}
        if ctx.endpoint == "/v1/embeddings":
            source = body.get("input")
            output = 0
        else:
            source = body.get("messages")
            limit = body.get("max_completion_tokens") or body.get("max_tokens")
            output = (
                int(limit)
                if isinstance(limit, int) and limit > 0
                else self.settings.default_max_output_tokens
            )
        # ~4 bytes of JSON per token over-counts text (JSON syntax adds bytes): an upper bound.
        prompt = len(orjson.dumps(source)) // 3 + 16
        return prompt, output

    async def authenticate(self, ctx: RequestContext) -> Response | None:
        """Check the request's virtual key before anything else reads the request:
        a 401 refusal, or None with ``ctx`` carrying the key, team and project."""
        token = presented_key(ctx.headers)
        if not token:
            return self._refuse(
                ctx,
                "auth:missing_key",
                GatewayError(
                    401,
                    "Missing API key: send Authorization: Bearer sk-aigw-...",
                    code="invalid_api_key",
                ),
            )
        record = await self.registry.authenticate(token) if token.startswith(KEY_PREFIX) else None
        if record is None or not record.usable(time.time()):
            return self._refuse(
                ctx,
                "auth:invalid_key",
                GatewayError(401, "Invalid, expired or revoked API key.", code="invalid_api_key"),
            )
        ctx.key_id, ctx.team_id, ctx.project_id = record.id, record.team_id, record.project_id
        ctx.extra["key_record"] = record
        return None

    def allowed_models(self, ctx: RequestContext) -> tuple[str, ...] | None:
        """The models the authenticated key may call (None: all)."""
        record = ctx.extra.get("key_record")
        return record.models if record is not None else None

    async def before(self, ctx: RequestContext) -> Response | None:
        record: KeyRecord | None = ctx.extra.get("key_record")
        if record is None:  # not authenticated by the app first (a hook-only caller)
            refusal = await self.authenticate(ctx)
            if refusal is not None:
                return refusal
            record = ctx.extra["key_record"]
            assert record is not None
        now = time.time()
        body = ctx.body or {}
        customer = ctx.headers.get(self.settings.customer_header) or body.get("user")
        ctx.customer = customer if isinstance(customer, str) and customer else None
        if record.models is not None and ctx.model not in record.models:
            return self._refuse(
                ctx,
                "model_not_allowed",
                GatewayError(
                    403,
                    f"This key may not use model {ctx.model!r}; allowed: {list(record.models)}.",
                    code="model_not_allowed",
                ),
            )
        prompt, output = self.estimate(ctx)
        bound = self.price_bound(ctx.model or "")
        reserve_usd = prompt * bound.input + output * bound.output
        reserve_nusd = math.ceil(reserve_usd * NANO)
        tokens = prompt + output
        rate, budgets = self._items(ctx, record, tokens, reserve_nusd, now)
        if budgets and ctx.model in self.unpriced_models():
            # (governance.unpriced_models: refuse_with_budget) Its cost cannot be counted.
            return self._refuse(
                ctx,
                "model_unpriced",
                GatewayError(
                    403,
                    f"Model {ctx.model!r} has no price configured, so its cost cannot be "
                    "counted against this key's budget; the gateway's operator must set its "
                    "deployments' `price`.",
                    code="model_unpriced",
                ),
            )
        try:
            decision = await self.state.reserve(rate, budgets, now)
        except Exception as exc:
            if self.settings.fail_closed:
                log.error("governance state unreachable; refusing (fail_closed): %s", exc)
                return self._refuse(
                    ctx,
                    "state_unavailable",
                    GatewayError(
                        503,
                        "Budgets and rate limits cannot be checked right now; retry shortly.",
                        code="governance_unavailable",
                        type="server_error",
                        headers={"retry-after": "1"},
                    ),
                )
            log.warning("governance state unreachable; allowing unchecked (fail open): %s", exc)
            decision = None
        if decision is not None and not decision.allowed:
            return self._refuse(ctx, *self._refusal(decision, now))
        ctx.extra["governance"] = (decision, tokens, reserve_nusd if decision else 0)
        if decision is not None and rate:
            ctx.response_headers.extend(self._rate_headers(decision))
        return None

    def _levels(
        self, record: KeyRecord, customer: str | None
    ) -> tuple[tuple[str, int | None, int | None, int | None, int | None], ...]:
        """The limited levels of a request: (counter name, rpm, tpm, daily and monthly
        nano-USD), cached per key and customer until the limits are reloaded."""
        limits = self.registry.limits
        if limits is not self._levels_of:
            # A reload or an admin change replaces the whole dict: start over.
            self._levels_cache.clear()
            self._levels_of = limits
        cache_key = (record.id, record.team_id, record.project_id, customer)
        found = self._levels_cache.get(cache_key)
        if found is not None:
            return found
        levels = [
            ("org", "*", "*"),
            ("team", record.team_id, record.team_id),
            ("project", record.project_id, record.project_id),
            ("key", record.id, record.id),
        ]
        if customer:
            levels.append(("customer", customer, customer))
        out = []
        for scope, scope_id, counter_id in levels:
            limit = limits.get((scope, scope_id))
            if limit is None and scope == "customer":
                limit = limits.get(("customer", "*"))  # the default per-customer limit
            if limit is None:
                continue
            if scope == "project":
                owner = self.registry.projects.get(scope_id, limit.team_id)
                if owner != record.team_id:
                    # A key from before projects had owners, naming another team's
                    # project: it must not spend (or be limited by) that team's budget.
                    log.warning(
                        "key %s of team %s names project %s of another team: its requests "
                        "skip that project's limits; give the key a project of its own",
                        record.id,
                        record.team_id,
                        scope_id,
                    )
                    continue
            out.append(
                (
                    f"{scope}:{counter_id}",
                    limit.rpm,
                    limit.tpm,
                    None if limit.daily_usd is None else round(limit.daily_usd * NANO),
                    None if limit.monthly_usd is None else round(limit.monthly_usd * NANO),
                )
            )
        if len(self._levels_cache) >= 10_000:  # customers are the caller's free text
            self._levels_cache.clear()
        found = self._levels_cache[cache_key] = tuple(out)
        return found

    def _items(
        self, ctx: RequestContext, record: KeyRecord, tokens: int, reserve_nusd: int, now: float
    ) -> tuple[tuple[RateItem, ...], tuple[BudgetItem, ...]]:
        day, month, day_left, month_left = _period_ends(now)
        rate: list[RateItem] = []
        budgets: list[BudgetItem] = []
        for name, rpm, tpm, daily, monthly in self._levels(record, ctx.customer):
            if rpm is not None:
                rate.append(RateItem(name, "rpm", rpm, 1))
            if tpm is not None:
                rate.append(RateItem(name, "tpm", tpm, tokens))
            if daily is not None:
                budgets.append(BudgetItem(name, "daily", day, daily, reserve_nusd, day_left + 3600))
            if monthly is not None:
                budgets.append(
                    BudgetItem(name, "monthly", month, monthly, reserve_nusd, month_left + 3600)
                )
        return tuple(rate), tuple(budgets)

    def _refusal(self, decision: Decision, now: float) -> tuple[str, GatewayError]:
        item = decision.refused
        if isinstance(item, RateItem):
            scope = item.scope.split(":", 1)[0]
            retry = math.ceil(decision.retry_after_s)
            noun = "requests" if item.kind == "rpm" else "tokens"
            headers = {
                "retry-after": str(retry),
                f"x-ratelimit-limit-{noun}": str(item.limit),
                f"x-ratelimit-remaining-{noun}": str(max(0, int(item.limit - decision.used))),
                f"x-ratelimit-reset-{noun}": _duration(decision.retry_after_s),
            }
            message = (
                f"Rate limit reached for {item.scope} ({item.kind}): limit {item.limit} {noun} "
                f"per minute. Retry after {retry}s."
            )
            if item.amount > item.limit:
                message = (
                    f"This request needs up to {item.amount} {noun} but {item.scope} may use "
                    f"{item.limit} per minute ({item.kind}): it can never be admitted. Lower "
                    "max_tokens (or the prompt), or ask for a higher limit."
                )
            return f"rate_limit:{scope}:{item.kind}", GatewayError(
                429,
                message,
                code="rate_limit_exceeded",
                headers=headers,
            )
        assert isinstance(item, BudgetItem)
        scope = item.scope.split(":", 1)[0]
        _, _, day_left, month_left = _period_ends(now)
        retry = day_left if item.period == "daily" else month_left
        return f"budget:{scope}", GatewayError(
            429,
            f"Budget exceeded for {item.scope}: {item.period} limit {usd(item.limit_nusd / NANO)}, "
            f"spent or reserved {usd(decision.used / NANO)}; this request may cost up to "
            f"{usd(item.amount_nusd / NANO)}.",
            code="budget_exceeded",
            type="insufficient_quota",
            headers={"retry-after": str(retry)},
        )

    def _rate_headers(self, decision: Decision) -> list[tuple[bytes, bytes]]:
        best: dict[str, tuple[float, RateItem]] = {}
        for item, used in zip(decision.rate, decision.rate_used, strict=True):
            left = item.limit - used - item.amount
            if item.kind not in best or left < best[item.kind][0]:
                best[item.kind] = (left, item)
        headers = []
        for kind, (left, item) in best.items():
            limit_name, remaining_name, reset_name = _RATE_HEADER_NAMES[kind]
            reset = _duration(max(0.0, (item.limit - left) * 60.0 / item.limit))
            headers += [
                (limit_name, b"%d" % item.limit),
                (remaining_name, b"%d" % max(0, int(left))),
                (reset_name, reset.encode()),
            ]
        return headers

    async def after(self, ctx: RequestContext) -> None:
        # Popped: a reservation is settled exactly once, whatever calls after() again.
        decision, reserved_tokens, reserved_nusd = ctx.extra.pop("governance", (None, 0, 0))
        tokens = Tokens()
        cost = 0.0
        usage_source: str | None = None
        if ctx.cache_outcome not in _CACHE_HITS:
            try:
                usage = ctx.usage
                tokens = Tokens.from_usage(usage)
            except Exception:
                usage, tokens = None, Tokens()
            if usage:
                usage_source = "reported"
            elif ctx.deployment is not None:
                # The upstream answered but its usage never arrived: a stream cut before
                # its usage chunk (the client left, the upstream broke) or a provider that
                # reports none. Disconnecting early must not make a request free: bill
                # its upper bound (the reservation's tokens) and say it was estimated.
                tokens = Tokens(*self.estimate(ctx))
                usage_source = "estimated_reservation"
            found = self._deployments.get(ctx.deployment or "")
            if found is not None:
                cost = Pricing.cost(self.pricing.prices(*found), tokens)
        # Unknown, not $0: an unpriced deployment's cost is audited as null.
        unpriced = ctx.deployment in self.pricing.unpriced
        if ctx.rejection is None:
            ctx.cost_usd = None if unpriced else cost
        detail: dict[str, Any] | None = None
        if self.settings.audit_prompts and ctx.body is not None:
            detail = {
                "request": self.redact(
                    orjson.dumps(ctx.body.get("messages") or ctx.body.get("input")).decode()
                )
            }
            if ctx.result is not None:
                detail["response"] = self.redact(ctx.result.body.decode(errors="replace"))
        event = audit.event(
            "request",
            request_id=ctx.request_id,
            key_id=ctx.key_id,
            team_id=ctx.team_id,
            project_id=ctx.project_id,
            customer=ctx.customer,
            model=ctx.model,
            # A failed request names the last deployment tried (its error rate counts it).
            deployment=ctx.deployment or (ctx.attempts[-1].deployment if ctx.attempts else None),
            provider=ctx.provider,
            status=ctx.status,
            prompt_tokens=tokens.prompt,
            completion_tokens=tokens.completion,
            cost_usd=None if unpriced else cost,
            latency_ms=round((time.perf_counter() - ctx.started) * 1000, 3),
            cache_outcome=ctx.cache_outcome,
            rejection=ctx.rejection,
            usage_source=usage_source,
            detail=detail,
        )
        try:
            await self.state.settle(
                decision,
                tokens.total - reserved_tokens if decision else 0,
                math.ceil(cost * NANO) - reserved_nusd if decision else 0,
                orjson.dumps(event),
            )
        except Exception:
            log.error(
                "could not settle request %s (state unreachable)", ctx.request_id, exc_info=True
            )

    async def audit_depth(self) -> int:
        """Audit events waiting for the database (the ``aigw_audit_buffer_depth`` gauge)."""
        return await self.state.audit_depth()

    # ------------------------------------------------------------ admin API

    async def _principal(self, headers: dict[str, str], method: str = "GET") -> rbac.Principal:
        token = presented_key(headers)
        if not token and self.identity is not None:
            # A console session (cookie); state-changing methods also pass its CSRF checks.
            person = await self.identity.principal(headers, method)
            if person is not None:
                return person
        if not token:
            raise GatewayError(401, "Missing admin or virtual key.", code="invalid_api_key")
        if self.admin_key and hmac.compare_digest(token.encode(), self.admin_key.encode()):
            return rbac.Principal("admin")
        record = await self.registry.authenticate(token) if token.startswith(KEY_PREFIX) else None
        if record is None or not record.usable(time.time()):
            raise GatewayError(401, "Invalid, expired or revoked API key.", code="invalid_api_key")
        return rbac.Principal(record.role, record.team_id, record.id)

    async def _audit_admin(
        self, principal: rbac.Principal, action: str, detail: dict[str, Any]
    ) -> None:
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

    async def admin(
        self, method: str, path: str, query: str, headers: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        """Serve one ``/admin/...`` request: (status, JSON-able body)."""
        principal = await self._principal(headers, method)
        params = dict(parse_qsl(query))
        parts = [p for p in path.split("/") if p][1:]
        rbac.require_manager(principal)
        try:
            return await self._admin_route(principal, method, path, parts, params, body)
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

    async def _admin_route(
        self,
        principal: rbac.Principal,
        method: str,
        path: str,
        parts: list[str],
        params: dict[str, str],
        body: Any,
    ) -> tuple[int, Any]:
        rbac.require_write(principal, method)
        if parts[:1] == ["projects"]:
            return await self._projects(principal, method, parts[1:], body, params)
        if parts[:1] == ["keys"]:
            return await self._keys(principal, method, parts[1:], body, params)
        if parts[:1] == ["limits"]:
            return await self._limits(principal, method, parts[1:], body)
        if parts[:1] == ["analytics"] and method == "GET" and len(parts) == 2:
            return await self._analytics(principal, parts[1], params)
        if parts == ["audit"] and method == "GET":
            return await self._audit_list(principal, params)
        if parts[:1] == ["budgets"] and method == "GET" and len(parts) == 3:
            return await self._budget_usage(principal, parts[1], parts[2])
        raise GatewayError(404, f"Unknown admin path {method} {path}.", code="unknown_url")

    async def _keys(
        self,
        principal: rbac.Principal,
        method: str,
        rest: list[str],
        body: Any,
        params: dict[str, str],
    ) -> tuple[int, Any]:
        if not rest and method == "POST":
            return await self._create_key(principal, body or {})
        if not rest and method == "GET":
            team = rbac.team_scope(principal, params.get("team_id"))
            keys = await asyncio.to_thread(self.store.all, team)
            return 200, {"data": [k.public() for k in keys]}
        if not rest:
            raise GatewayError(405, f"Method {method} is not allowed on /admin/keys.")
        key_id = rest[0]
        record = await asyncio.to_thread(self.store.get, key_id)
        if record is None:
            raise rbac.not_found(f"Key {key_id!r}")
        rbac.check_team(principal, record.team_id, f"Key {key_id!r}")
        action = rest[1] if len(rest) > 1 else None
        if method == "GET" and action is None:
            return 200, record.public()
        if (method == "DELETE" and action is None) or (method == "POST" and action == "revoke"):
            await asyncio.to_thread(self.store.revoke, key_id, time.time())
            await self.registry.changed(f"key:{key_id}")
            await self._audit_admin(
                principal, "key.revoke", {"key_id": key_id, "team_id": record.team_id}
            )
            return 200, (await asyncio.to_thread(self.store.get, key_id)).public()  # type: ignore[union-attr]
        if method == "POST" and action == "rotate":
            if record.revoked_at is not None:
                raise GatewayError(
                    409, f"Key {key_id!r} is revoked; create a new one.", code="revoked"
                )
            _, fresh = new_key()
            fresh = f"{KEY_PREFIX}{key_id}-{fresh.rsplit('-', 1)[1]}"
            await asyncio.to_thread(
                self.store.rehash, key_id, hash_key(self.registry.secret, fresh)
            )
            await self.registry.changed(f"key:{key_id}")
            await self._audit_admin(
                principal, "key.rotate", {"key_id": key_id, "team_id": record.team_id}
            )
            return 200, {**record.public(), "key": fresh}
        raise GatewayError(405, f"Method {method} is not allowed here.")

    async def _create_key(self, principal: rbac.Principal, body: dict[str, Any]) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise invalid(None, "The body must be a JSON object.")
        team_id = body.get("team_id") if principal.role == "admin" else principal.team_id
        if principal.role != "admin" and body.get("team_id") not in (None, principal.team_id):
            raise rbac.not_found(f"Team {body.get('team_id')!r}")
        project_id = body.get("project_id")
        for name, value in (("team_id", team_id), ("project_id", project_id)):
            if not isinstance(value, str) or not value:
                raise invalid(name, f"`{name}` is required: a non-empty string.")
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
        claimed = await self._claim_project(principal, project_id, team_id)  # type: ignore[arg-type]
        key_id, key = new_key()
        record = KeyRecord(
            id=key_id,
            key_hash=hash_key(self.registry.secret, key),
            team_id=team_id,  # type: ignore[arg-type]
            project_id=project_id,  # type: ignore[arg-type]
            name=str(body.get("name") or ""),
            role=role,
            models=tuple(models) if models is not None else None,
            expires_at=float(expires_at) if expires_at is not None else None,
            metadata=metadata,
            created_at=now,
        )
        await asyncio.to_thread(self.store.insert, record)
        await self.registry.changed(f"key:{key_id}")
        await self._audit_admin(
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

    async def _limits(
        self, principal: rbac.Principal, method: str, rest: list[str], body: Any
    ) -> tuple[int, Any]:
        if not rest and method == "GET":
            limits = list(self.registry.limits.values())
            if not rbac.sees_all(principal):
                limits = [lim for lim in limits if lim.team_id == principal.team_id]
            return 200, {"data": [lim.public() for lim in limits]}
        if len(rest) != 2:
            raise GatewayError(404, "Use /admin/limits/{scope}/{id}.", code="unknown_url")
        scope, scope_id = rest
        if scope not in SCOPES:
            raise invalid("scope", f"Unknown scope {scope!r}; use one of {list(SCOPES)}.")
        requested = body.get("team_id") if isinstance(body, dict) else None
        owner = await self._limit_owner(
            principal, scope, scope_id, requested, claim=method == "PUT"
        )
        existing = self.registry.limit(scope, scope_id)
        if method == "GET":
            if existing is None:
                raise rbac.not_found(f"Limit {scope}/{scope_id}")
            return 200, existing.public()
        if method == "DELETE":
            deleted = await asyncio.to_thread(self.store.delete_limit, scope, scope_id)
            await self.registry.changed("limits")
            await self._audit_admin(
                principal, "limit.delete", {"scope": scope, "scope_id": scope_id, "team_id": owner}
            )
            return 200, {"deleted": deleted}
        if method != "PUT":
            raise GatewayError(405, f"Method {method} is not allowed here.")
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
        await self._audit_admin(principal, "limit.put", {**limit.public()})
        return 200, limit.public()

    async def _limit_owner(
        self,
        principal: rbac.Principal,
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
            if principal.role == "admin":
                return None
            raise rbac.not_found(f"Project {scope_id!r}")
        team = principal.team_id if principal.role != "admin" else requested
        if not isinstance(team, str) or not team:
            raise invalid(
                "team_id",
                f"Project {scope_id!r} belongs to no team yet: send `team_id`, the team that "
                "owns it (or create a key for the project first).",
            )
        await self._claim_project(principal, scope_id, team)
        return team

    async def _claim_project(self, principal: rbac.Principal, project_id: str, team: str) -> bool:
        """``project_id`` for ``team``: claimed if nobody owns it (True: claimed now, which
        the caller's audit event records); 409 if another team owns it."""
        known = self.registry.projects.get(project_id)
        owner = (
            known
            if known == team
            else await asyncio.to_thread(self.store.claim_project, project_id, team, time.time())
        )
        if owner != team:
            shown = f"team {owner!r}" if principal.role == "admin" else "another team"
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

    async def _projects(
        self,
        principal: rbac.Principal,
        method: str,
        rest: list[str],
        body: Any,
        params: dict[str, str],
    ) -> tuple[int, Any]:
        if not rest and method == "GET":
            team = rbac.team_scope(principal, params.get("team_id"))
            rows = await asyncio.to_thread(self.store.team_projects, team)
            return 200, {"data": rows}
        if not rest and method == "POST":
            if not isinstance(body, dict):
                raise invalid(None, "The body must be a JSON object.")
            project_id = body.get("project_id")
            if not isinstance(project_id, str) or not project_id:
                raise invalid("project_id", "`project_id` is required: a non-empty string.")
            team = rbac.team_scope(principal, body.get("team_id"))
            if team is None:
                raise invalid("team_id", "`team_id` is required: the team that owns the project.")
            if self.registry.projects.get(project_id) == team:
                return 200, {"id": project_id, "team_id": team}
            await self._claim_project(principal, project_id, team)
            await self._audit_admin(
                principal, "project.create", {"project_id": project_id, "team_id": team}
            )
            return 201, {"id": project_id, "team_id": team}
        if len(rest) == 1 and method == "GET":
            owner = await asyncio.to_thread(self.store.project_owner, rest[0])
            if owner is None:
                raise rbac.not_found(f"Project {rest[0]!r}")
            rbac.check_team(principal, owner, f"Project {rest[0]!r}")
            return 200, {"id": rest[0], "team_id": owner}
        raise GatewayError(405, f"Method {method} is not allowed here.")

    async def _analytics(
        self, principal: rbac.Principal, kind: str, params: dict[str, str]
    ) -> tuple[int, Any]:
        team = rbac.team_scope(principal, params.get("team_id"))
        query = {
            "analytics": analytics.usage,
            "usage": analytics.usage,
            "latency": analytics.latency,
        }.get(kind)
        if query is None:
            raise GatewayError(
                404, "Use /admin/analytics/usage or /admin/analytics/latency.", code="unknown_url"
            )
        rows = await asyncio.to_thread(
            query,
            self.db,
            params.get("group_by", "day"),
            team_id=team,
            since=params.get("since"),
            until=params.get("until"),
        )
        return 200, {"data": rows}

    async def _audit_list(
        self, principal: rbac.Principal, params: dict[str, str]
    ) -> tuple[int, Any]:
        team = rbac.team_scope(principal, params.get("team_id"))
        rows = await asyncio.to_thread(analytics.audit_events, self.db, params, team_id=team)
        return 200, {"data": rows}

    async def _budget_usage(
        self, principal: rbac.Principal, scope: str, scope_id: str
    ) -> tuple[int, Any]:
        if scope not in SCOPES:
            raise invalid("scope", f"Unknown scope {scope!r}; use one of {list(SCOPES)}.")
        owner = await self._limit_owner(principal, scope, scope_id)
        del owner
        day, month, _, _ = _period_ends(time.time())
        name = f"{scope}:{scope_id}"
        daily = await self.state.spent_nusd(name, "daily", day)
        monthly = await self.state.spent_nusd(name, "monthly", month)
        return 200, {
            "scope": scope,
            "scope_id": scope_id,
            "daily_usd": daily / NANO,
            "monthly_usd": monthly / NANO,
            "day": day,
            "month": month,
        }
