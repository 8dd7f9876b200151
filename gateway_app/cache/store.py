"""Where cached responses live: in-process (LRU, one replica) or Redis (shared).

Both implement :class:`CacheStore`; one contract test suite runs against both
(tests/gateway/cache/test_store_contract.py, with a real redis-server).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol


class CacheStore(Protocol):
    """Bytes by key, each with a lifetime."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` seconds."""
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

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` seconds, evicting the least recently used."""
        if ttl_s <= 0:
            return
        self._entries[key] = (self.clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        self._entries.pop(key, None)

    async def close(self) -> None:
        """Nothing to release: the entries live in this process."""


class RedisCacheStore:
    """Entries in Redis with ``PX`` expiry, shared by every replica."""

    def __init__(self, client: Any, prefix: str = "aigw:cache:") -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_url(
        cls, url: str, ca_file: str | None = None, credential: Any = None, **kwargs: Any
    ) -> RedisCacheStore:
        """A store on a new client for ``url`` (``rediss://`` with a custom CA accepted;
        ``credential`` for Entra-authenticated Azure Managed Redis)."""
        return cls(redis_client(url, ca_file, credential), **kwargs)

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        value: bytes | None = await self.client.get(self.prefix + key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` seconds."""
        ms = int(ttl_s * 1000)
        if ms > 0:
            await self.client.set(self.prefix + key, value, px=ms)

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        await self.client.delete(self.prefix + key)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def redis_client(url: str, ca_file: str | None = None, credential: Any = None) -> Any:
    """An asyncio Redis client for ``url``; ``rediss://`` verifies against ``ca_file``;
    ``credential`` (:mod:`gateway_app.credentials.redis_entra`) authenticates with Entra tokens."""
    import redis.asyncio as redis

    from gateway_app.credentials.redis_entra import redis_py_arguments

    url, options = redis_py_arguments(url, credential)
    if url.startswith("rediss://") and ca_file:
        options["ssl_ca_certs"] = ca_file
    return redis.from_url(url, **options)
