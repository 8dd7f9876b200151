"""Where cached responses live: in-process (LRU, one replica) or Redis (shared).

Both implement :class:`CacheStore`; one contract test suite runs against both
(tests/gateway/cache/test_store_contract.py, with a real redis-server).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gateway_app.config import RedisConfig

log = logging.getLogger("gateway_app.cache")


class CacheStore(Protocol):
    """Bytes by key, each with a lifetime."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Store ``value`` for ``ttl_s`` seconds; False when it was not stored (a zero
        lifetime, or a Redis without room: :class:`MemoryGuard`)."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        ...

    async def close(self) -> None:
        """Release connections (at shutdown)."""
        ...


class InProcessCacheStore:
    """An LRU dict with per-entry expiry (the embedded default)."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def set(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Store ``value`` for ``ttl_s`` seconds, evicting the least recently used."""
        if ttl_s <= 0:
            return False
        self._entries[key] = (self.clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return True

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        self._entries.pop(key, None)

    async def close(self) -> None:
        """Nothing to release: the entries live in this process."""


class MemoryGuard:
    """Whether Redis has room for another bulk entry (a cached or stored response).

    The budget and rate-limit counters live in the same Redis with a lifetime, so its
    eviction policy (``volatile-lru`` on every managed Redis the project deploys) would
    evict them, as readily as a cached response, once bulk entries filled its memory.
    The guard reads ``INFO memory`` at most every ``check_s`` and allows a write only
    while ``used_memory`` is below ``below`` of ``maxmemory``. A Redis that reports no
    ``maxmemory`` (0: no limit) or refuses ``INFO`` is not guarded (logged once).
    """

    def __init__(
        self,
        client: Any,
        below: float = 0.7,
        check_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.below = below
        self.check_s = check_s
        self.clock = clock
        self.ratio: float | None = None  # used_memory / maxmemory when last read
        self.evicted: int | None = None  # Redis' evicted_keys when last read
        self.skipped = 0  # writes refused for want of room
        self.on_skip: Callable[[], None] | None = None  # (metrics) one call per refusal
        self._next = 0.0
        self._unreadable_logged = False
        self._full_logged_at: float | None = None

    async def room(self) -> bool:
        """True while a bulk write may go ahead (one ``INFO`` every ``check_s`` at most)."""
        if self.below >= 1.0:
            return True
        now = self.clock()
        if now >= self._next:
            self._next = now + self.check_s
            await self.refresh()
        if self.ratio is None or self.ratio < self.below:
            return True
        self.skipped += 1
        if self.on_skip is not None:
            self.on_skip()
        if self._full_logged_at is None or now - self._full_logged_at >= 60:
            self._full_logged_at = now
            log.warning(
                "Redis memory is %.0f%% of maxmemory, above redis.store_below_memory (%.0f%%): "
                "responses are answered but not cached or stored (%d so far), so Redis does "
                "not evict budget and rate-limit counters; add memory or lower cache.ttl_s",
                self.ratio * 100,
                self.below * 100,
                self.skipped,
            )
        return False

    async def refresh(self) -> None:
        """Read Redis' memory use and evictions now."""
        try:
            memory = await self.client.info("memory")
            limit = int(memory.get("maxmemory") or 0)
            self.ratio = int(memory.get("used_memory") or 0) / limit if limit else None
            stats = await self.client.info("stats")
            self.evicted = int(stats.get("evicted_keys") or 0)
        except Exception as exc:
            self.ratio = None
            if not self._unreadable_logged:
                self._unreadable_logged = True
                log.warning(
                    "could not read Redis' memory use (%s): cached and stored responses are "
                    "written without redis.store_below_memory's check",
                    type(exc).__name__,
                )


class RedisCacheStore:
    """Entries in Redis with ``PX`` expiry, shared by every replica; written only while
    Redis has room (:class:`MemoryGuard`, when ``guard`` is given)."""

    def __init__(
        self, client: Any, prefix: str = "aigw:cache:", guard: MemoryGuard | None = None
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.guard = guard

    @classmethod
    def from_url(
        cls,
        url: str,
        ca_file: str | None = None,
        credential: Any = None,
        *,
        redis: RedisConfig | None = None,
        **kwargs: Any,
    ) -> RedisCacheStore:
        """A store on a new client for ``url`` (``rediss://`` with a custom CA accepted;
        ``credential`` for Entra-authenticated Azure Managed Redis), guarded by
        ``redis``'s memory settings when given."""
        client = redis_client(url, ca_file, credential)
        return cls(client, guard=guard_for(client, redis) if redis else None, **kwargs)

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        value: bytes | None = await self.client.get(self.prefix + key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Store ``value`` for ``ttl_s`` seconds; not while Redis lacks room (False)."""
        ms = int(ttl_s * 1000)
        if ms <= 0 or (self.guard is not None and not await self.guard.room()):
            return False
        await self.client.set(self.prefix + key, value, px=ms)
        return True

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        await self.client.delete(self.prefix + key)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def guard_for(client: Any, config: RedisConfig) -> MemoryGuard:
    """The :class:`MemoryGuard` of a store on ``client`` per the ``redis`` settings."""
    return MemoryGuard(client, config.store_below_memory, config.memory_check_s)


def redis_client(url: str, ca_file: str | None = None, credential: Any = None) -> Any:
    """An asyncio Redis client for ``url``; ``rediss://`` verifies against ``ca_file``;
    ``credential`` (:mod:`gateway_app.credentials.redis_entra`) authenticates with Entra tokens."""
    import redis.asyncio as redis

    from gateway_app.credentials.redis_entra import redis_py_arguments

    url, options = redis_py_arguments(url, credential)
    if url.startswith("rediss://") and ca_file:
        options["ssl_ca_certs"] = ca_file
    return redis.from_url(url, **options)
