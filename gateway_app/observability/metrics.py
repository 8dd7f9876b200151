"""Prometheus metrics, correct with several worker processes.

``aigw serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory under
/tmp before the workers start, so prometheus_client writes every value to a
per-process memory-mapped file and ``/metrics`` (answered by any worker) sums
them. Without it (tests, embedded use) values live in this process.

Labels are bounded: model names are the configured ones (anything else is
"other"), deployments and providers come from the config, endpoints from the
route table, rejection reasons from governance's fixed vocabulary. Keys,
teams and customers become labels only with
``observability.metrics.per_key_labels``; prompts never do.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway_app.apis import WIRE_APIS
from gateway_app.observability.multiproc import MULTIPROC_ENV

if TYPE_CHECKING:
    from gateway_app.config import GatewayConfig
    from gateway_app.context import Exchange, RequestContext

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_CIRCUIT = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
_SIMILARITY = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0)
# The labelled endpoints: every wire API's path, the model list, stored responses.
ENDPOINTS = frozenset({*(api.path for api in WIRE_APIS), "/v1/models", "/v1/responses/{id}"})


class Metrics:
    """The gateway's metric families and how a finished request updates them."""

    def __init__(self, config: GatewayConfig) -> None:
        self.registry = CollectorRegistry()
        self.models = frozenset(config.models)
        self.per_key = config.observability.metrics.per_key_labels
        r = self.registry
        self.requests = Counter(
            "aigw_requests",
            "Requests by endpoint, model, deployment, provider, status and cache outcome",
            ["endpoint", "model", "deployment", "provider", "status", "cache"],
            registry=r,
        )
        self.overhead = Histogram(
            "aigw_gateway_overhead_seconds",
            "Gateway time before the first response byte, upstream time excluded",
            ["endpoint"],
            buckets=_FAST,
            registry=r,
        )
        self.duration = Histogram(
            "aigw_request_duration_seconds",
            "Time from request to last response byte",
            ["endpoint", "model"],
            buckets=_SLOW,
            registry=r,
        )
        self.upstream = Histogram(
            "aigw_upstream_latency_seconds",
            "Each upstream attempt (to first byte for streams), by outcome",
            ["deployment", "provider", "outcome"],
            buckets=_SLOW,
            registry=r,
        )
        self.ttft = Histogram(
            "aigw_time_to_first_token_seconds",
            "Streams: request start to the first byte sent to the client",
            ["model", "deployment"],
            buckets=_SLOW,
            registry=r,
        )
        self.tokens = Counter(
            "aigw_tokens",
            "Tokens billed by upstreams (cache hits bill none)",
            ["model", "deployment", "direction"],
            registry=r,
        )
        self.cost = Counter(
            "aigw_cost_usd", "Settled cost in USD", ["model", "deployment"], registry=r
        )
        self.cache = Counter(
            "aigw_cache_lookups",
            "Cache lookups by result: hit (exact), semantic-hit, miss",
            ["model", "result"],
            registry=r,
        )
        # The decision on the most similar cached request of each semantic lookup:
        # accepted by the judge (reason = aligned | reworded) or refused (reason =
        # a word check's finding: numbers, entities, negation, antonym, reversed;
        # or judge, judge-unavailable, similarity). A fixed vocabulary.
        self.semantic = Counter(
            "aigw_semantic_cache_decisions",
            "Semantic cache lookups by the guard's decision and reason",
            ["model", "decision", "reason"],
            registry=r,
        )
        self.similarity = Histogram(
            "aigw_semantic_cache_similarity",
            "Cosine similarity of the nearest cached request, by the guard's decision",
            ["model", "decision"],
            buckets=_SIMILARITY,
            registry=r,
        )
        self.rejections = Counter(
            "aigw_rejections",
            "Requests refused by governance, by kind (budget, rate_limit) and level",
            ["kind", "level"],
            registry=r,
        )
        self.circuit = Gauge(
            "aigw_circuit_state",
            "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open",
            ["deployment"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.audit_depth = Gauge(
            "aigw_audit_buffer_depth",
            "Audit events waiting in the durable buffer",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.reservations = Counter(
            "aigw_governance_reservations",
            "Reservation script calls to Redis (one round trip each) by path: exact (a "
            "request checked in Redis: near a limit, admission off, or no chunk fits), "
            "refill (a request's own, reserving chunks too), ahead (chunks topped up in the "
            "background; no request waits)",
            ["path"],
            registry=r,
        )
        # The Redis the gateway shares (AIGW_REDIS_URL): memory and evictions, read by the
        # response stores' guard (gateway_app/cache/store.py MemoryGuard) at each scrape.
        self.audit_dropped = Counter(
            "aigw_audit_events_dropped",
            "Audit events a replica dropped: it already held governance's limit of them "
            "while Redis was unreachable or short of memory (redis.buffer_below_memory)",
            registry=r,
        )
        self.redis_memory = Gauge(
            "aigw_redis_memory_used_ratio",
            "Redis used_memory / maxmemory (absent when Redis reports no maxmemory)",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.redis_evicted = Gauge(
            "aigw_redis_evicted_keys",
            "Keys Redis evicted since it started (INFO stats evicted_keys): any increase "
            "may have removed budget or rate-limit counters",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.redis_skipped = Counter(
            "aigw_redis_store_writes_skipped",
            "Responses not cached or stored because Redis' memory was above "
            "redis.store_below_memory",
            ["store"],
            registry=r,
        )
        self.rollup_lag = Gauge(
            "aigw_audit_rollup_lag_days",
            "Closed days the audit roll-up (audit-maintain) has not reached; 0 when "
            "yesterday is rolled up (PostgreSQL)",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        # The global governance plane (set at scrape time from the plane's status).
        self.plane = {
            name: Gauge(
                f"aigw_gov_{name}",
                text,
                labels,
                multiprocess_mode="mostrecent",
                registry=r,
            )
            for name, text, labels in (
                ("feed_applied_seq", "This cloud's position in the home's change feed", []),
                ("feed_head_seq", "The home's last change, as this cloud last heard", []),
                ("feed_silence_seconds", "Seconds since this cloud last heard the feed", []),
                ("home_reachable", "1 while the home answers this cloud's lease renewals", []),
                (
                    "audit_unshipped",
                    "Audit events not yet stored at the home (counted up to 1,000,000)",
                    [],
                ),
                (
                    "audit_behind_seconds",
                    "(The home) seconds since each follower cloud's audit is complete here: "
                    "how far its audit shipping lags",
                    ["cloud"],
                ),
                (
                    "lease_overdrawn_nusd",
                    "Nano-USD this process overdrew while cut off from the home "
                    "(partition_overdraft_leases; alert on any)",
                    [],
                ),
                (
                    "peer_auth_failures",
                    "Internal calls refused, by claimed peer and reason (this process)",
                    ["peer", "reason"],
                ),
            )
        }
        self.by_key = (
            Counter(
                "aigw_requests_by_key",
                "Requests per virtual key, team, project and customer (opt-in)",
                ["key_id", "team", "project", "customer"],
                registry=r,
            )
            if self.per_key
            else None
        )
        self._children: dict[tuple[Any, ...], Any] = {}
        # The children a finished request updates, by its outcome's labels: one lookup
        # per request instead of one per family (~0.7 µs each). Bounded like the labels.
        self._bound: dict[tuple[Any, ...], _Bound] = {}
        self._circuits: dict[str, float] = {}

    def _child(self, family: Any, *labels: str) -> Any:
        # .labels() hashes and locks on every call; the children are few and fixed.
        key = (id(family), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    def record(self, request: RequestContext, exchange: Exchange, now: float) -> None:
        """Update every family for one finished request."""
        endpoint = request.endpoint if request.endpoint in ENDPOINTS else "other"
        model = request.model
        model = model if model in self.models else ("" if model is None else "other")
        route = exchange.route
        deployment = (route.deployment if route is not None else None) or ""
        provider = (route.provider if route is not None else None) or ""
        cache = exchange.cache
        child = self._child
        status = exchange.status
        bound = self._bound.get((endpoint, model, deployment, provider, status, cache))
        if bound is None:
            bound = self._bind(endpoint, model, deployment, provider, status, cache)
        bound.requests.inc()
        bound.duration.observe(now - request.started)
        if exchange.overhead_s is not None:
            bound.overhead().observe(exchange.overhead_s)
        if route is not None:
            for attempt in route.attempts:
                dep = attempt.deployment
                child(
                    self.upstream, dep, provider if dep == deployment else "", attempt.outcome
                ).observe(attempt.latency_s)
        served_from_cache = exchange.served_from_cache
        if cache is not None:
            bound.cached().inc()
        semantic = exchange.semantic
        if semantic is not None:
            decision = "accepted" if semantic.accepted else "refused"
            child(self.semantic, model, decision, semantic.reason).inc()
            child(self.similarity, model, decision).observe(semantic.similarity)
        if request.stream and exchange.first_byte_s is not None and not served_from_cache:
            child(self.ttft, model, deployment).observe(exchange.first_byte_s)
        usage = None if served_from_cache else exchange.usage
        if usage:
            prompt = usage.get("prompt_tokens")
            completion = usage.get("completion_tokens")
            if isinstance(prompt, int) and prompt:
                bound.tokens("input").inc(prompt)
            if isinstance(completion, int) and completion:
                bound.tokens("output").inc(completion)
        if exchange.cost_usd:
            bound.costs().inc(exchange.cost_usd)
        if exchange.rejection:
            kind, _, rest = exchange.rejection.partition(":")
            level = rest.split(":", 1)[0]
            child(self.rejections, _word(kind), _word(level)).inc()
        if self.by_key is not None:
            caller = request.caller
            child(
                self.by_key,
                caller.key_id if caller else "",
                caller.team_id if caller else "",
                caller.project_id if caller else "",
                request.customer or "",
            ).inc()

    def _bind(
        self,
        endpoint: str,
        model: str,
        deployment: str,
        provider: str,
        status: int,
        cache: str | None,
    ) -> _Bound:
        """The children of one request outcome (created on first use, as before)."""
        if len(self._bound) >= 100_000:  # labels are bounded; a guard all the same
            self._bound.clear()
        child = self._child
        bound = self._bound[(endpoint, model, deployment, provider, status, cache)] = _Bound(
            self,
            (endpoint, model, deployment, cache),
            child(self.requests, endpoint, model, deployment, provider, str(status), cache or ""),
            child(self.duration, endpoint, model),
        )
        return bound

    def set_circuit(self, deployment: str, state: str) -> None:
        """Report a deployment's circuit state (closed, half_open, open)."""
        # Called after every attempt; the gauge is only written when the state
        # changes (a write is a locked mmap update in multiprocess mode).
        value = _CIRCUIT.get(state, 0.0)
        if self._circuits.get(deployment) != value:
            self._circuits[deployment] = value
            self._child(self.circuit, deployment).set(value)

    def set_plane(self, status: dict[str, Any]) -> None:
        """Report the global governance plane's status (``GlobalPlane.status``)."""
        for name, value in status.items():
            if name == "peer_auth_failures":
                for (peer, reason), count in value.items():
                    self.plane[name].labels(peer, reason).set(count)
            elif name == "audit_behind_seconds":
                for cloud, seconds in value.items():
                    self.plane[name].labels(cloud).set(seconds)
            elif value is not None:
                self.plane[name].set(value)

    def render(self) -> bytes:
        """The exposition text: every worker's values when multiprocess, else this one's."""
        from prometheus_client import generate_latest

        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class _Bound:
    """The children one request outcome updates. Those a request may leave untouched
    (overhead, cache, tokens, cost) are created on first use, so no series appears
    before it has a value, as with :meth:`Metrics._child`."""

    __slots__ = (
        "_cache",
        "_cost",
        "_labels",
        "_metrics",
        "_overhead",
        "_tokens",
        "duration",
        "requests",
    )

    def __init__(
        self,
        metrics: Metrics,
        labels: tuple[str, str, str, str | None],  # endpoint, model, deployment, cache
        requests: Any,
        duration: Any,
    ) -> None:
        self._metrics = metrics
        self._labels = labels
        self.requests = requests
        self.duration = duration
        self._overhead: Any = None
        self._cache: Any = None
        self._cost: Any = None
        self._tokens: dict[str, Any] = {}

    def overhead(self) -> Any:
        """The endpoint's ``aigw_gateway_overhead_seconds``."""
        if self._overhead is None:
            metrics = self._metrics
            self._overhead = metrics._child(metrics.overhead, self._labels[0])
        return self._overhead

    def cached(self) -> Any:
        """The model's ``aigw_cache`` of the cache outcome."""
        if self._cache is None:
            metrics, (_, model, _, cache) = self._metrics, self._labels
            self._cache = metrics._child(metrics.cache, model, cache or "")
        return self._cache

    def tokens(self, direction: str) -> Any:
        """The deployment's ``aigw_tokens`` of ``direction`` (input, output)."""
        found = self._tokens.get(direction)
        if found is None:
            metrics, (_, model, deployment, _) = self._metrics, self._labels
            found = self._tokens[direction] = metrics._child(
                metrics.tokens, model, deployment, direction
            )
        return found

    def costs(self) -> Any:
        """The deployment's ``aigw_cost_usd``."""
        if self._cost is None:
            metrics, (_, model, deployment, _) = self._metrics, self._labels
            self._cost = metrics._child(metrics.cost, model, deployment)
        return self._cost


def _word(value: str) -> str:
    # Governance reasons are a fixed vocabulary ("budget:team"); anything that is
    # not a short lowercase word is folded so it cannot carry an id or a key.
    if value and len(value) <= 24 and value.replace("_", "").isalpha() and value.islower():
        return value
    return "other"
