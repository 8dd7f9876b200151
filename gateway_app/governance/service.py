"""One replica's governance: keys, limits, budgets, cost and audit.

Request path (through :mod:`.hooks`): :meth:`Governance.authenticate` the
virtual key from memory; :meth:`Governance.check` its model list, then reserve
the request's rate-limit units and maximum cost at every budget level in one
atomic call (one Redis round trip, none in embedded mode);
:meth:`Governance.settle` (no round trip) computes the actual cost from the
usage the upstream reported, then queues the reservation's correction and the
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
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from gateway_app.apis import CHAT_COMPLETIONS, EMBEDDINGS, RESPONSES
from gateway_app.config import DeploymentConfig, GatewayConfig
from gateway_app.config.governance import GovernanceConfig
from gateway_app.config.prices import (
    Pricing,
    TokenPrices,
    Tokens,
    startup_refusal,
    unpriced_error,
)
from gateway_app.context import Caller, Exchange, RequestContext
from gateway_app.environment import Environment
from gateway_app.errors import GatewayError
from gateway_app.governance import audit, retention, rollup
from gateway_app.governance.check_plan import CheckPlan, Level, reset_duration
from gateway_app.governance.keys import (
    KEY_PREFIX,
    KeyLookupFailed,
    KeyRecord,
    KeyStore,
    Registry,
    key_store_unavailable,
)
from gateway_app.governance.storage import Database
from gateway_app.hooks import Response
from gateway_app.state.governance import (
    SHARE_ONE,
    BudgetItem,
    Decision,
    GovernanceState,
    InProcessGovernanceState,
    RateItem,
)

log = logging.getLogger("gateway_app.governance")
# How long shutdown gives the database to take the audit events Redis did not.
UNBUFFERED_TIMEOUT_S = 5.0
# How long a scrape reuses the roll-up lag it read (a day-scale figure).
ROLLUP_LAG_TTL_S = 60.0

NANO = 1_000_000_000
_NO_TOKENS = Tokens()
# Chat Completions' prompt is its messages (Governance.estimate's inline case for it).
_CHAT_MESSAGES_ONLY = CHAT_COMPLETIONS.metered and CHAT_COMPLETIONS.prompt_fields == ("messages",)
_CACHE_HITS = ("hit", "semantic-hit")


def enabled(config: GatewayConfig, env: Environment) -> bool:
    """Whether governance runs: ``governance.enabled``, else iff AIGW_ADMIN_KEY is set."""
    return config.governance.active(admin_key_set=env.admin_key is not None)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The client's key: ``Authorization: Bearer``, else ``api-key`` / ``x-api-key``."""
    auth = headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("api-key") or headers.get("x-api-key")


# The UTC day last asked about: (day number, day id, month id, whole days left in
# the month after it). Formatting dates cost ~10 µs per request; they change daily.
_DAY: tuple[int, str, str, int] = (-1, "", "", 0)


def period_ends(now: float) -> tuple[str, str, int, int]:
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


def usd(amount: float) -> str:
    """Dollars with the precision that shows the amount: ``$12.50``, ``$0.0036``,
    ``$0.000012`` (three significant digits below a dollar), never ``$0.0000``."""
    if amount == 0:
        return "$0"
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(abs(amount))))
    return f"${amount:.{decimals}f}"


class Leases(Protocol):
    """This cloud's escrow leases of budgets (the global plane's :class:`LeaseAgent`)."""

    def refused_outright(self, item: BudgetItem) -> bool:
        """The home said the budget is spent (held by other clouds): no point waiting."""
        ...

    wait_s: float  # how long a request may wait for its cloud's lease to grow

    async def need(self, item: BudgetItem, amount: int, timeout: float) -> bool:
        """Ask for more of ``item`` at once; whether a renewal arrived within ``timeout``."""
        ...

    def refused_rate(self, item: RateItem) -> None:
        """A request was refused by this cloud's share of a rate limit: demand to report."""
        ...


class Extension(Protocol):
    """A part of governance started after it and stopped before it (the global plane)."""

    async def start(self) -> None:
        """Start (keys and limits are loaded)."""
        ...

    async def stop(self) -> None:
        """Stop (before governance closes its connections)."""
        ...


@dataclass(slots=True)
class Reservation:
    """What a model call reserved before the upstream call, corrected once it settles."""

    decision: Decision
    tokens: int
    nusd: int  # nano-USD


class Governance:
    """Governance of one gateway replica: virtual keys, limits, budgets, cost and audit.

    Its per-request side is two hooks (:mod:`gateway_app.governance.hooks`), and
    its people-facing side the admin API."""

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
        reports_db: Database | None = None,
    ) -> None:
        self.config = config
        self.settings: GovernanceConfig = config.governance
        self.state = state
        self.db = db
        # The admin API's analytics and audit search: their own connection, each query
        # cancelled after admin_query_timeout_s (a query over billions of raw audit rows
        # must not hold up key lookups, the audit drain or the change feed on ``db``).
        self.reports_db = reports_db or db.for_reports(self.settings.admin_query_timeout_s)
        self.admin_key = admin_key
        self.store = KeyStore(db, epoch=self.settings.global_.epoch if self.settings.global_ else 1)
        self.registry = Registry(
            self.store, secret, refresh_s=self.settings.key_refresh_s, redis=redis
        )
        # A key or limit changed (here or announced by another replica): no request is
        # admitted from headroom this replica reserved under the old ones, nor checked
        # by a plan worked out under them.
        self.registry.listeners.append(self._changed)
        self.pricing = Pricing()
        # The drainer's blocking reads get their own connection(s), away from the hot path's.
        self.drain_state = drain_state or state
        self.drainer = audit.AuditDrainer(
            self.drain_state,
            db,
            batch=self.settings.audit_batch,
            interval_s=self.settings.audit_interval_s,
        )
        # SQLite: the gateway owns its file, so it applies the audit retention itself
        # (PostgreSQL: the audit-maintain CronJob drops whole day partitions).
        days = self.settings.audit_retention_days
        self.sweeper = retention.Sweeper(db, days) if db.kind == "sqlite" and days else None
        self._rollup_lag: tuple[float, int] | None = None  # (monotonic, days) last read
        self.redact = audit.Redactor(self.settings.audit_redact)
        # A request's buffered event: on PostgreSQL the line its batch's COPY takes (the
        # drainer formats nothing), on SQLite (development) its JSON object.
        self._request_event = (
            audit.request_line if db.kind == "postgres" else audit.request_event_json
        )
        if db.kind == "postgres":
            state.mark_lines(audit.LAYOUT)
        self._deployments: dict[str, tuple[DeploymentConfig, str]] = {}
        for model in config.models.values():
            for deployment in model.deployments:
                self._deployments[deployment.id] = (
                    deployment,
                    config.providers[deployment.provider].type,
                )
        self._bounds: dict[str, TokenPrices] = {}
        # Settling's prices by deployment id: (prices, or None for a deployment not in the
        # config; whether it has no price). Looked up once, not three lookups per request.
        self._priced: dict[str, tuple[TokenPrices | None, bool]] = {}
        # Check plans by (key id, customer, model), valid for the limits dict they were
        # worked out under (a reload or a change replaces it) and dropped on every change.
        self._plans: dict[tuple[str, str | None, str | None], CheckPlan] = {}
        self._plans_of: object = None
        # The Caller of each key record (frozen, shared by its requests): by key id, valid
        # while the registry holds the same record (a change loads a new one).
        self._callers: dict[str, tuple[KeyRecord, Caller]] = {}
        # The global governance plane, when configured (gateway_app.governance.plane),
        # and its escrow leases of budgets.
        self.plane: Extension | None = None
        self.leases: Leases | None = None

    def _changed(self, _what: str) -> None:
        """The registry applied a change (a key or a limit; here or from another replica)."""
        self._plans.clear()
        self._callers.clear()
        self.state.invalidate()

    @classmethod
    def from_environment(cls, config: GatewayConfig, env: Environment) -> Governance:
        """Redis from ``AIGW_REDIS_URL``/``AIGW_REDIS_CA_FILE``; the database from
        ``AIGW_DATABASE_URL``/``AIGW_DATABASE_CA_FILE`` (else embedded SQLite)."""
        admin_key = env.admin_key
        secret_text = env.key_hash_secret
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
        url = env.redis_url
        plane = config.governance.global_
        leased = plane is not None
        # Each rate limit is this cloud's share of it (absent share: the floor).
        floor = None if plane is None else round(plane.rate_share_floor * SHARE_ONE)
        if leased and not url:
            from gateway_app.config import ConfigError

            raise ConfigError(
                "governance.global needs AIGW_REDIS_URL: each cloud's budget leases and "
                "counters live in its Redis (the embedded mode has no global plane)"
            )
        redis = None
        drain_state: GovernanceState | None = None
        state: GovernanceState
        if url:
            from gateway_app.state.governance_redis import RedisGovernanceState, redis_client

            ca, credential = env.redis_ca_file, env.redis_credential()
            idle_s = config.governance.audit_claim_idle_s
            state = RedisGovernanceState.from_url(
                url,
                ca,
                credential=credential,
                claim_idle_s=idle_s,
                leased=leased,
                admission=config.governance.admission,
                share_floor_ppm=floor,
                flush_interval_s=config.governance.settle_interval_s,
                buffer_below_memory=config.redis.buffer_below_memory,
            )
            drain_state = RedisGovernanceState.from_url(
                url, ca, max_connections=2, credential=credential, claim_idle_s=idle_s
            )
            # Pub/sub holds its connection open: a separate client without a read timeout.
            redis = redis_client(url, ca, credential, socket_timeout=None)
        else:
            state = InProcessGovernanceState()
        db = Database.from_environment(env, config.governance.sqlite_path)
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
        refused = startup_refusal(self.config, governance_on=True, pricing=self.pricing)
        if refused:
            from gateway_app.config import ConfigError

            raise ConfigError(unpriced_error(refused))
        await self.registry.start()
        self.drainer.start()
        if self.sweeper is not None:
            self.sweeper.start()
        if self.plane is not None:
            await self.plane.start()

    async def stop(self) -> None:
        if self.plane is not None:
            await self.plane.stop()
        await self.registry.stop()
        # Queued settlements and events first, so the drainer's last pass can store them.
        unwritten = await self.state.flush()
        if unwritten:
            await self._store_unbuffered(unwritten)
        await self.drainer.stop()
        if self.sweeper is not None:
            await self.sweeper.stop()
        await self.state.close()
        if self.drain_state is not self.state:
            await self.drain_state.close()
        if self.registry.redis is not None:
            await self.registry.redis.aclose()
        await asyncio.to_thread(self.db.close)
        if self.reports_db is not self.db:
            await asyncio.to_thread(self.reports_db.close)

    async def _store_unbuffered(self, events: list[bytes]) -> None:
        """At shutdown: the audit events the shared buffer (Redis) did not take in time
        go straight to the database, so a rolling update during a Redis outage loses none."""
        try:
            async with asyncio.timeout(UNBUFFERED_TIMEOUT_S):
                stored = await asyncio.to_thread(audit.store_unbuffered, self.db, events)
        except Exception as exc:
            log.error(
                "shutting down with %d audit events written neither to Redis nor to the "
                "database (%s: %s): they are lost",
                len(events),
                type(exc).__name__,
                exc,
            )
            return
        log.warning(
            "the audit buffer (Redis) was unreachable at shutdown: %d audit events written "
            "straight to the database instead",
            stored,
        )

    # ------------------------------------------------------------ hot path

    @staticmethod
    def _refuse(exchange: Exchange, reason: str, error: GatewayError) -> Response:
        exchange.rejection = reason
        headers = [(k.encode(), v.encode()) for k, v in error.headers.items()]
        return Response(error.status, error.to_bytes(), headers, error=error)

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
                max(p.cache_write for p in prices),
            )
            self._bounds[model] = bound
        return bound

    def _price_of(self, deployment: str | None) -> tuple[TokenPrices | None, bool]:
        """(prices, unpriced) of a deployment id for settling; cached once it is known."""
        found = self._deployments.get(deployment or "")
        if found is None:
            return None, deployment in self.pricing.unpriced
        priced = (self.pricing.prices(*found), found[0].id in self.pricing.unpriced)
        self._priced[found[0].id] = priced
        return priced

    def unpriced_models(self) -> frozenset[str]:
        """Public model names with a deployment that has no price."""
        unpriced = self.pricing.unpriced
        return frozenset(
            name
            for name, model in self.config.models.items()
            if any(d.id in unpriced for d in model.deployments)
        )

    def estimate(self, request: RequestContext) -> tuple[int, int]:
        """(prompt tokens, output tokens) upper bounds of the request."""
        body = request.body or {}
        api = request.api
        if api is CHAT_COMPLETIONS and _CHAT_MESSAGES_ONLY:
            # Most governed requests: the general path below for one API, inline.
            limit = body.get("max_completion_tokens") or body.get("max_tokens")
            return (
                len(orjson.dumps(body.get("messages"))) // 3 + 16,
                int(limit)
                if isinstance(limit, int) and limit > 0
                else self.settings.default_max_output_tokens,
            )
        if api is not None and not api.metered:
            return 0, 0  # a token count generates nothing (its requests still count for RPM)
        fields = api.prompt_fields if api is not None else ("messages",)
        # One field (chat's messages, embeddings' input) as before; several (Messages'
        # system, messages and tools: Claude Code's system prompt and tools are most of it).
        source = body.get(fields[0]) if len(fields) == 1 else [body.get(f) for f in fields]
        if api is EMBEDDINGS:
            output = 0
        else:
            if api is RESPONSES:
                # The whole conversation goes upstream: a chained call's history included
                # between its instructions and input (RESPONSES.prompt_fields).
                source = [body.get("instructions"), request.history, body.get("input")]
                limit = body.get("max_output_tokens")
            else:
                limit = body.get("max_completion_tokens") or body.get("max_tokens")
            output = (
                int(limit)
                if isinstance(limit, int) and limit > 0
                else self.settings.default_max_output_tokens
            )
        # ~4 bytes of JSON per token over-counts text (JSON syntax adds bytes): an upper bound.
        prompt = len(orjson.dumps(source)) // 3 + 16
        return prompt, output

    async def authenticate(self, request: RequestContext, exchange: Exchange) -> Response | None:
        """Check the request's virtual key before anything else reads the request:
        a 401 refusal, or None with ``request.caller`` set (key, team, project, models)."""
        token = presented_key(request.headers)
        if not token:
            return self._refuse(
                exchange,
                "auth:missing_key",
                GatewayError(
                    401,
                    "Missing API key: send Authorization: Bearer sk-aigw-...",
                    code="invalid_api_key",
                ),
            )
        # A key seen before: no coroutine of the registry's (~700 instructions a request).
        record = self.registry.known(token)
        if record is None:
            try:
                record = (
                    await self.registry.authenticate(token)
                    if token.startswith(KEY_PREFIX)
                    else None
                )
            except KeyLookupFailed:
                return self._refuse(exchange, "auth:key_store_unavailable", key_store_unavailable())
        if record is None or not record.usable(time.time()):
            return self._refuse(
                exchange,
                "auth:invalid_key",
                GatewayError(401, "Invalid, expired or revoked API key.", code="invalid_api_key"),
            )
        known = self._callers.get(record.id)
        if known is not None and known[0] is record:
            request.caller = known[1]
            return None
        caller = Caller(record.id, record.team_id, record.project_id, record.models)
        if len(self._callers) >= 100_000:
            self._callers.clear()
        self._callers[record.id] = (record, caller)
        request.caller = caller
        return None

    async def check(
        self, request: RequestContext, exchange: Exchange
    ) -> Reservation | Response | None:
        """A model call's limits and budgets: the reservation to settle after the call (None
        when nothing was reserved), or a refusal (403 model, 429 limit or budget, 503)."""
        caller = request.caller
        if caller is None:  # no authentication hook ran first (a chain without one)
            refusal = await self.authenticate(request, exchange)
            if refusal is not None:
                return refusal
            caller = request.caller
            assert caller is not None
        now = time.time()
        body = request.body or {}
        customer = request.headers.get(self.settings.customer_header) or body.get("user")
        request.customer = customer if isinstance(customer, str) and customer else None
        if caller.models is not None and request.model not in caller.models:
            return self._refuse(
                exchange,
                "model_not_allowed",
                GatewayError(
                    403,
                    f"This key may not use model {request.model!r}; allowed: {list(caller.models)}.",
                    code="model_not_allowed",
                ),
            )
        plan = self._plan(caller, request.customer, request.model)
        prompt, output = self.estimate(request)
        reserve_usd = prompt * plan.prompt_price + output * plan.output_price
        reserve_nusd = math.ceil(reserve_usd * NANO)
        tokens = prompt + output
        if plan.budgeted and plan.unpriced:
            # (governance.unpriced_models: refuse_with_budget) Its cost cannot be counted.
            return self._refuse(
                exchange,
                "model_unpriced",
                GatewayError(
                    403,
                    f"Model {request.model!r} has no price configured, so its cost cannot be "
                    "counted against this key's budget; the gateway's operator must set its "
                    "deployments' `price`.",
                    code="model_unpriced",
                ),
            )
        # Most requests: admitted from what this replica holds, by the amounts alone.
        decision = self.state.admit(plan.shape, tokens, reserve_nusd, now)
        if decision is not None:
            if plan.headers:
                exchange.response_headers += (
                    plan.lot_headers() if decision.lot else plan.rate_headers(tokens, decision)
                )
            return Reservation(decision, tokens, reserve_nusd)
        rate, budgets = plan.items(tokens, reserve_nusd, period_ends(now))
        try:
            decision = await self.state.reserve(rate, budgets, now, plan.shape)
            leases = self.leases
            if decision.lease_held is not None and leases is not None:
                # This cloud's lease of a budget is spent (money may be left elsewhere):
                # wait for urgent renewals, retrying after each, at most wait_s (then 429).
                deadline = time.monotonic() + leases.wait_s
                while True:
                    item = decision.refused
                    left = deadline - time.monotonic()
                    if (
                        decision.lease_held is None
                        or not isinstance(item, BudgetItem)
                        or left <= 0
                        or leases.refused_outright(item)
                        or not await leases.need(item, item.amount_nusd, left)
                    ):
                        break
                    decision = await self.state.reserve(rate, budgets, now, plan.shape)
        except Exception as exc:
            if self.settings.fail_closed:
                log.error("governance state unreachable; refusing (fail_closed): %s", exc)
                return self._refuse(
                    exchange,
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
            return None
        if not decision.allowed:
            return self._refuse(exchange, *self._refusal(decision, now))
        if rate:
            exchange.response_headers += plan.rate_headers(tokens, decision)
        return Reservation(decision, tokens, reserve_nusd)

    def _plan(self, caller: Caller, customer: str | None, model: str | None) -> CheckPlan:
        """The caller's check plan for this customer and model (see :mod:`.check_plan`)."""
        limits = self.registry.limits
        if limits is not self._plans_of:
            # A reload or an admin change replaces the whole dict: start over.
            self._plans.clear()
            self._plans_of = limits
        cache_key = (caller.key_id, customer, model)
        plan = self._plans.get(cache_key)
        if plan is not None and plan.caller is caller:
            return plan
        bound = self.price_bound(model or "")
        deployments = self.config.models[model].deployments if model in self.config.models else []
        unpriced = self.pricing.unpriced
        plan = CheckPlan.build(
            caller,
            self._levels(caller, customer, limits),
            # Every prompt token might be written to the provider's cache (dearer than input).
            (max(bound.input, bound.cache_write), bound.output),
            any(d.id in unpriced for d in deployments),
        )
        if len(self._plans) >= 10_000:  # customers are the caller's free text
            self._plans.clear()
        self._plans[cache_key] = plan
        return plan

    def _levels(
        self, caller: Caller, customer: str | None, limits: Mapping[tuple[str, str], Any]
    ) -> tuple[Level, ...]:
        """The limited levels of a request, in order (org, team, project, key, customer)."""
        levels = [
            ("org", "*", "*"),
            ("team", caller.team_id, caller.team_id),
            ("project", caller.project_id, caller.project_id),
            ("key", caller.key_id, caller.key_id),
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
                if owner != caller.team_id:
                    # A key from before projects had owners, naming another team's
                    # project: it must not spend (or be limited by) that team's budget.
                    log.warning(
                        "key %s of team %s names project %s of another team: its requests "
                        "skip that project's limits; give the key a project of its own",
                        caller.key_id,
                        caller.team_id,
                        scope_id,
                    )
                    continue
            name = f"{scope}:{counter_id}"
            out.append(
                (
                    name,
                    None if limit.rpm is None else RateItem(name, "rpm", limit.rpm, 1),
                    limit.tpm,
                    None if limit.daily_usd is None else round(limit.daily_usd * NANO),
                    None if limit.monthly_usd is None else round(limit.monthly_usd * NANO),
                )
            )
        return tuple(out)

    def _refusal(self, decision: Decision, now: float) -> tuple[str, GatewayError]:
        item = decision.refused
        if isinstance(item, RateItem):
            scope = item.scope.split(":", 1)[0]
            # With rate shares (the global plane) this cloud enforces its share of the limit.
            here = decision.rate_limits[0] if decision.rate_limits else float(item.limit)
            share = ""
            if here < item.limit:
                if self.leases is not None:
                    self.leases.refused_rate(item)  # demand: the home may move shares here
                share = (
                    f" (this cloud's share of it now: {int(here)}, moved between clouds by "
                    "demand every second)"
                )
                if item.amount <= item.limit:
                    # The share may grow within a tick or two; the window alone says more.
                    decision.retry_after_s = min(decision.retry_after_s, 2.0)
            retry = math.ceil(decision.retry_after_s)
            noun = "requests" if item.kind == "rpm" else "tokens"
            headers = {
                "retry-after": str(retry),
                f"x-ratelimit-limit-{noun}": str(item.limit),
                f"x-ratelimit-remaining-{noun}": str(max(0, int(here - decision.used))),
                f"x-ratelimit-reset-{noun}": reset_duration(decision.retry_after_s),
            }
            message = (
                f"Rate limit reached for {item.scope} ({item.kind}): limit {item.limit} {noun} "
                f"per minute{share}. Retry after {retry}s."
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
        if (
            decision.lease_held is not None
            and self.leases is not None
            and not self.leases.refused_outright(item)
        ):
            # Money is left in the budget, but this cloud's share of it is spent and the
            # home's grant did not arrive in time (or the home is unreachable).
            return f"budget_lease:{scope}", GatewayError(
                429,
                f"This cloud's share of the {item.period} budget of {item.scope} is spent "
                f"and a new share did not arrive in time (used {usd(decision.used / NANO)} "
                f"of {usd(decision.lease_held / NANO)} held here); retry in a second.",
                code="budget_lease_unavailable",
                headers={"retry-after": "1"},
            )
        _, _, day_left, month_left = period_ends(now)
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

    async def settle(
        self, request: RequestContext, exchange: Exchange, reservation: Reservation | None
    ) -> None:
        """After the call: its cost from the usage the upstream reported, the reservation's
        correction and the request's audit event, queued together (refusals included)."""
        tokens = _NO_TOKENS
        cost = 0.0
        usage_source: str | None = None
        route = exchange.route
        deployment = route.deployment if route is not None else None
        priced = self._priced.get(deployment) if deployment is not None else None
        if priced is None:
            priced = self._price_of(deployment)
        prices, unpriced = priced
        cache = exchange.cache  # (Exchange.served_from_cache and .usage, inline)
        if cache is None or not cache.served:
            try:
                usage = route.usage if route is not None else None
                tokens = Tokens.from_usage(usage)
            except Exception:
                usage, tokens = None, _NO_TOKENS
            if usage:
                usage_source = "reported"
                exchange.tokens = tokens
            elif deployment is not None:
                # The upstream answered but its usage never arrived: a stream cut before
                # its usage chunk (the client left, the upstream broke) or a provider that
                # reports none. Disconnecting early must not make a request free: bill
                # its upper bound (the reservation's tokens) and say it was estimated.
                tokens = Tokens(*self.estimate(request))
                usage_source = "estimated_reservation"
            if prices is not None:
                cost = Pricing.cost(prices, tokens)
        # Unknown, not $0: an unpriced deployment's cost is audited as null.
        if exchange.rejection is None:
            exchange.cost_usd = None if unpriced else cost
        detail: dict[str, Any] | None = None
        body = request.body
        if self.settings.audit_prompts and body is not None:
            detail = {
                "request": self.redact(
                    orjson.dumps(body.get("messages") or body.get("input")).decode()
                )
            }
            if route is not None and route.result is not None:
                detail["response"] = self.redact(route.result.body.decode(errors="replace"))
        caller = request.caller
        event = self._request_event(
            request.request_id,
            caller.key_id if caller else None,
            caller.team_id if caller else None,
            caller.project_id if caller else None,
            request.customer,
            request.model,
            # A failed request names the last deployment tried (its error rate counts it).
            route.last_deployment if route is not None else None,
            route.provider if route is not None else None,
            exchange.status,
            tokens.prompt,
            tokens.completion,
            None if unpriced else cost,
            (time.perf_counter() - request.started) * 1000,  # rounded as it is written
            exchange.cache,
            exchange.rejection,
            usage_source,
            detail,
        )
        try:
            self.state.settle_nowait(
                reservation.decision if reservation else None,
                tokens.prompt + tokens.completion - reservation.tokens if reservation else 0,
                math.ceil(cost * NANO) - reservation.nusd if reservation else 0,
                event,
            )
        except Exception:
            log.error(
                "could not settle request %s (state unreachable)", request.request_id, exc_info=True
            )

    async def audit_depth(self) -> int:
        """Audit events waiting for the database (the ``aigw_audit_buffer_depth`` gauge)."""
        return await self.state.audit_depth()

    async def audit_rollup_lag(self) -> int | None:
        """Closed days the audit roll-up has not reached (the ``aigw_audit_rollup_lag_days``
        gauge; :func:`~gateway_app.governance.rollup.lag_days`), read at most once a
        minute; None on SQLite, which rolls up only with retention, in the gateway itself."""
        if self.db.kind != "postgres":
            return None
        now = time.monotonic()
        if self._rollup_lag is None or now - self._rollup_lag[0] >= ROLLUP_LAG_TTL_S:
            lag = await asyncio.to_thread(rollup.lag_days, self.db, retention.utc_today())
            self._rollup_lag = (now, lag)
        return self._rollup_lag[1]
