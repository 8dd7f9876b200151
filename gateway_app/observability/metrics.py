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

from gateway_app.observability.multiproc import MULTIPROC_ENV

if TYPE_CHECKING:
    from gateway_app.config import GatewayConfig
    from gateway_app.hooks import RequestContext

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_CIRCUIT = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
_HITS = frozenset({"hit", "semantic-hit"})
_SIMILARITY = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0)
ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/embeddings", "/v1/models"})


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
        self._circuits: dict[str, float] = {}

    def _child(self, family: Any, *labels: str) -> Any:
        # .labels() hashes and locks on every call; the children are few and fixed.
        key = (id(family), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    def record(self, ctx: RequestContext, now: float) -> None:
        """Update every family for one finished request."""
        endpoint = ctx.endpoint if ctx.endpoint in ENDPOINTS else "other"
        model = ctx.model if ctx.model in self.models else ("" if ctx.model is None else "other")
        deployment = ctx.deployment or ""
        provider = ctx.provider or ""
        cache = ctx.cache_outcome or ""
        child = self._child
        child(self.requests, endpoint, model, deployment, provider, str(ctx.status), cache).inc()
        child(self.duration, endpoint, model).observe(now - ctx.started)
        if ctx.overhead_s is not None:
            child(self.overhead, endpoint).observe(ctx.overhead_s)
        for attempt in ctx.attempts:
            dep = attempt.deployment
            child(
                self.upstream, dep, provider if dep == deployment else "", attempt.outcome
            ).observe(attempt.latency_s)
        served_from_cache = ctx.cache_outcome in _HITS
        if ctx.cache_outcome is not None:
            child(self.cache, model, ctx.cache_outcome).inc()
        lookup = ctx.extra.get("semantic_lookup")
        if lookup is not None and lookup.verdict is not None:
            decision = "accepted" if lookup.verdict.accepted else "refused"
            child(self.semantic, model, decision, lookup.verdict.reason).inc()
            child(self.similarity, model, decision).observe(lookup.similarity)
        if ctx.stream and ctx.first_byte_s is not None and not served_from_cache:
            child(self.ttft, model, deployment).observe(ctx.first_byte_s)
        usage = None if served_from_cache else ctx.usage
        if usage:
            prompt = usage.get("prompt_tokens")
            completion = usage.get("completion_tokens")
            if isinstance(prompt, int) and prompt:
                child(self.tokens, model, deployment, "input").inc(prompt)
            if isinstance(completion, int) and completion:
                child(self.tokens, model, deployment, "output").inc(completion)
        if ctx.cost_usd:
            child(self.cost, model, deployment).inc(ctx.cost_usd)
        if ctx.rejection:
            kind, _, rest = ctx.rejection.partition(":")
            level = rest.split(":", 1)[0]
            child(self.rejections, _word(kind), _word(level)).inc()
        if self.by_key is not None:
            child(
                self.by_key,
                ctx.key_id or "",
                ctx.team_id or "",
                ctx.project_id or "",
                ctx.customer or "",
            ).inc()

    def set_circuit(self, deployment: str, state: str) -> None:
        """Report a deployment's circuit state (closed, half_open, open)."""
        # Called after every attempt; the gauge is only written when the state
        # changes (a write is a locked mmap update in multiprocess mode).
        value = _CIRCUIT.get(state, 0.0)
        if self._circuits.get(deployment) != value:
            self._circuits[deployment] = value
            self._child(self.circuit, deployment).set(value)

    def render(self) -> bytes:
        """The exposition text: every worker's values when multiprocess, else this one's."""
        from prometheus_client import generate_latest

        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def _word(value: str) -> str:
    # Governance reasons are a fixed vocabulary ("budget:team"); anything that is
    # not a short lowercase word is folded so it cannot carry an id or a key.
    if value and len(value) <= 24 and value.replace("_", "").isalpha() and value.islower():
        return value
    return "other"
