"""A gateway with the cache (and observability) hooks, and a test tenant hook."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway_app.cache.hook import CacheHook
from gateway_app.cache.judge import default_model
from gateway_app.cache.semantic import LocalEmbedder, LocalIndexSync, SemanticCache, VectorIndex
from gateway_app.cache.store import InProcessCacheStore
from gateway_app.config import parse
from gateway_app.context import Caller, Exchange, RequestContext
from gateway_app.hooks import Hook, Response
from gateway_app.observability.hook import ObservabilityHook
from gateway_app.observability.metrics import Metrics
from tests.fakes import FakeUpstream
from tests.gateway.conftest import Running, providers, serve


class TenantFromHeader(Hook[None]):
    """Stands in for governance's auth hook: the team comes from ``x-test-team``."""

    async def before(self, request: RequestContext, exchange: Exchange) -> Response | None:
        team = request.headers.get("x-test-team")
        request.caller = Caller("key", team, "project") if team else None
        return None

    async def after(self, request: RequestContext, exchange: Exchange, state: None) -> None:
        return None


_EMBEDDER: LocalEmbedder | None = None


def embedder() -> LocalEmbedder:
    """One local model per test session (loading it takes a second)."""
    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = LocalEmbedder(timeout_s=30, max_pending=16)
    return _EMBEDDER


def raw_config(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, **model_cache: Any
) -> dict[str, Any]:
    return {
        "providers": providers(fake_openai, fake_anthropic),
        "models": {
            "gpt-4o-mini": {
                "deployments": [{"provider": "openai", "model": "gpt-4o-mini"}],
                "cache": model_cache or None,
            },
            "claude-sonnet-4-6": {
                "deployments": [
                    {
                        "provider": "anthropic",
                        "model": "claude-sonnet-4-6",
                        "params": {"default_max_tokens": 1000},
                    }
                ],
                "cache": {"ttl_s": 0},
            },
        },
        "cache": {"enabled": True, "ttl_s": 60},
    }


@contextmanager
def cached_gateway(
    raw: dict[str, Any], metrics: Metrics | None = None, **kwargs: Any
) -> Iterator[Running]:
    """The cache hook behind a tenant hook; with ``metrics``, the observability hook first."""
    config = parse(raw)
    index = VectorIndex(1000)
    local = embedder()
    sync = LocalIndexSync(index)
    semantic = SemanticCache(local, index, sync, config.cache.semantic, local, default_model())
    hook = CacheHook(config, InProcessCacheStore(100), semantic)
    hooks: list[Any] = [TenantFromHeader(), hook]
    if metrics is not None:
        hooks.insert(0, ObservabilityHook(config, metrics))
    with serve(raw, hooks=hooks, **kwargs) as running:
        yield running
