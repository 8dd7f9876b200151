"""Cached and stored responses never push the shared Redis into evicting the budget
counters (docs/operations/sizing.md, "Redis memory").

Every managed Redis the stack deploys evicts by ``volatile-lru`` (ElastiCache's and
Memorystore's default, https://docs.aws.amazon.com/whitepapers/latest/database-caching-strategies-using-redis/evictions.html,
https://cloud.google.com/memorystore/docs/redis/supported-redis-configurations; Azure
Managed Redis: ``VolatileLRU``, infra/azure/redis.py): the budget and rate-limit counters
have a lifetime, so they are candidates as much as a cached response. A private
redis-server with a small ``maxmemory`` and that policy shows both sides: cached
responses written without the guard get a month's budget counter evicted; with it, the
cache stops short and the counter stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import redis

from gateway_app.cache.store import MemoryGuard, RedisCacheStore, redis_client
from gateway_app.config import RedisConfig, ResponsesConfig
from gateway_app.responses.store import ResponseStore
from tests.fakes import FakeUpstream
from tests.gateway.conftest import run_async
from tests.gateway.governance.processes import GatewayProcess, gateway_config
from tests.gateway.governance.services import RedisServer

BUDGETS = [f"{{aigw}}:b:team:t{n}:monthly:2026-12" for n in range(10)]  # months' spend
ENTRY = b"x" * 8192  # a cached response
MAX_MEMORY = 8 << 20


@pytest.fixture
def small_redis() -> Iterator[tuple[str, redis.Redis]]:
    """A Redis of 8 MB that evicts like the managed ones (volatile-lru), with ten teams'
    monthly budget counters in it, written once (as idle teams' are)."""
    server = RedisServer()
    admin = redis.Redis.from_url(server.url)
    try:
        admin.config_set("maxmemory-policy", "volatile-lru")
        admin.config_set("maxmemory", MAX_MEMORY)
        for key in BUDGETS:
            admin.set(key, 912_000_000_000, ex=31 * 86400)
        yield server.url, admin
    finally:
        admin.close()
        server.stop()


def _fill(url: str, guard: MemoryGuard | None) -> RedisCacheStore:
    """Cache 3,000 responses of 8 KB (24 MB: three times the memory) through a store."""

    async def run() -> RedisCacheStore:
        store = RedisCacheStore(redis_client(url), prefix="aigw:cache:", guard=guard)
        if guard is not None:
            guard.client = store.client
        for n in range(3000):
            await store.set(f"prompt-{n}", ENTRY, 3600)
        await store.close()
        return store

    return run_async(run())


def test_without_the_guard_cached_responses_evict_a_budget_counter(
    small_redis: tuple[str, redis.Redis],
) -> None:
    """What the guard prevents (the policy is the managed Redis' own): a counter gone is a
    budget that starts again from zero. (Redis' LRU is sampled: which counters go varies,
    not that some do.)"""
    url, admin = small_redis
    _fill(url, None)
    assert int(admin.info("stats")["evicted_keys"]) > 0
    assert sum(admin.get(key) is None for key in BUDGETS) > 0


def test_with_the_guard_the_cache_stops_short_and_the_counter_stays(
    small_redis: tuple[str, redis.Redis], caplog: pytest.LogCaptureFixture
) -> None:
    url, admin = small_redis
    guard = MemoryGuard(None, below=0.7, check_s=0.0)
    skipped: list[int] = []
    guard.on_skip = lambda: skipped.append(1)
    with caplog.at_level(logging.WARNING, logger="gateway_app.cache"):
        _fill(url, guard)
    assert int(admin.info("stats")["evicted_keys"]) == 0
    assert [int(admin.get(key) or 0) for key in BUDGETS] == [912_000_000_000] * 10
    memory = admin.info("memory")
    assert 0.6 < int(memory["used_memory"]) / MAX_MEMORY < 0.8  # levelled off near 70 %
    assert guard.skipped == len(skipped) > 2000 and guard.evicted == 0
    assert guard.ratio is not None and guard.ratio >= 0.7
    # One warning naming the setting, not one per refused write.
    warnings = [r for r in caplog.records if "redis.store_below_memory" in r.getMessage()]
    assert len(warnings) == 1


def test_a_stored_response_is_answered_not_stored_while_redis_lacks_room(
    small_redis: tuple[str, redis.Redis],
) -> None:
    """The Responses API's store shares the guard: ``put`` says False, the caller answers."""
    url, admin = small_redis
    admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) + 4096)

    async def run() -> tuple[bool, bool]:
        store = RedisCacheStore.from_url(url, prefix="aigw:responses:", redis=RedisConfig())
        responses = ResponseStore(store, ResponsesConfig())
        kept = await responses.put("search", {"id": "resp_1"}, [])
        guard = store.guard
        assert guard is not None and guard.ratio is not None and guard.ratio >= 0.7
        await store.close()
        return kept, await _exists(url, "aigw:responses:search\x00resp_1")

    kept, exists = run_async(run())
    assert (kept, exists) == (False, False)


async def _exists(url: str, key: str) -> bool:
    client = redis_client(url)
    try:
        return bool(await client.exists(key))
    finally:
        await client.aclose()


def test_a_redis_without_maxmemory_or_without_info_is_not_guarded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No ``maxmemory`` (0: a self-hosted Redis without a limit) or ``INFO`` refused (an
    ACL without it): writes go ahead, and the second case is logged once."""

    class Client:
        def __init__(self, memory: dict[str, Any] | None) -> None:
            self.memory = memory

        async def info(self, section: str) -> dict[str, Any]:
            if self.memory is None:
                raise PermissionError("NOPERM this user has no permissions to run 'info'")
            return self.memory if section == "memory" else {"evicted_keys": 0}

    async def run() -> list[bool]:
        unlimited = MemoryGuard(Client({"used_memory": 10**12, "maxmemory": 0}), check_s=0)
        refused = MemoryGuard(Client(None), check_s=0)
        return [await unlimited.room(), await refused.room(), await refused.room()]

    with caplog.at_level(logging.WARNING, logger="gateway_app.cache"):
        assert run_async(run()) == [True, True, True]
    assert len([r for r in caplog.records if "memory use" in r.getMessage()]) == 1


def test_the_settings_are_checked() -> None:
    """Each share is within (0, 1]; and the audit buffer's is not below the stores' (a
    cache let fill Redis would keep the audit buffer held)."""
    with pytest.raises(ValueError, match="store_below_memory"):
        RedisConfig(store_below_memory=1.5)
    with pytest.raises(ValueError, match=r"buffer_below_memory \(0.9\) is below"):
        RedisConfig(store_below_memory=1)
    off = RedisConfig(store_below_memory=1, buffer_below_memory=1)
    assert (off.store_below_memory, off.buffer_below_memory) == (1, 1)


def test_a_served_gateway_skips_caching_when_redis_is_full_and_exports_it(
    small_redis: tuple[str, redis.Redis], fake_openai: FakeUpstream
) -> None:
    """As an operator meets it: a gateway on the small Redis, caching on. With Redis 80 %
    full of other data, an answer is not cached (the same request reaches the upstream
    again) and /metrics says why; once Redis has room again, answers are cached; an
    eviction shows in ``aigw_redis_evicted_keys``."""
    url, admin = small_redis
    for n in range(14):  # ~80 % with Redis' own: no lifetime, never evicted
        admin.set(f"ballast:{n}", b"b" * (MAX_MEMORY // 20))
    config = gateway_config(fake_openai.url, enabled=False)
    config["cache"] = {"enabled": True, "ttl_s": 3600}
    config["redis"] = {"memory_check_s": 0.2}
    gateway = GatewayProcess(config, {"AIGW_REDIS_URL": url, "AIGW_ADMIN_KEY": ""})
    try:
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-any", max_retries=0)

        def ask(text: str) -> str:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
            )
            return raw.headers.get("x-cache", "")

        def metrics() -> str:
            return httpx.get(gateway.url + "/metrics", timeout=5).text

        assert ask("full") == "miss"
        time.sleep(0.5)  # (the answer would be cached after it is sent)
        assert ask("full") == "miss" and not admin.keys("aigw:cache:*")
        text = metrics()
        assert _sample(text, "aigw_redis_memory_used_ratio") >= 0.7
        assert _sample(text, 'aigw_redis_store_writes_skipped_total{store="cache"}') >= 2
        assert _sample(text, "aigw_redis_evicted_keys") == 0
        admin.delete(*(f"ballast:{n}" for n in range(14)))
        time.sleep(0.5)  # past memory_check_s: the guard reads the room made
        assert ask("room") == "miss"
        deadline = time.monotonic() + 5  # (the answer is cached after it is sent)
        while not admin.keys("aigw:cache:*"):
            assert time.monotonic() < deadline, "the answer was not cached"
            time.sleep(0.05)
        assert ask("room") == "hit"
        # Keys with a lifetime written past maxmemory: Redis evicts, the gauge says so.
        for n in range(2000):
            admin.set(f"filler:{n}", b"f" * 8192, ex=3600)
        assert _sample(metrics(), "aigw_redis_evicted_keys") > 0
    finally:
        gateway.stop()


def _sample(text: str, name: str) -> float:
    """The value of the one sample ``name`` (with its labels, if any) in /metrics."""
    [value] = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)
