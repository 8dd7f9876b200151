"""One cached credential with ahead-of-expiry refresh, and the per-provider registry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

log = logging.getLogger("gateway_app.credentials")

T = TypeVar("T")


def now() -> float:
    """Epoch seconds: the credentials' clock (tests replace it to move time forward)."""
    return time.time()


Fetch = Callable[[], Awaitable[tuple[T, float | None]]]
"""Fetches a fresh credential: ``(value, expires_at)`` (epoch seconds; None: never expires)."""


class RefreshingCredential(Generic[T]):
    """A credential refreshed in the background ``refresh_before`` seconds ahead of expiry.

    Within ``must_refresh_before`` seconds of expiry (or with nothing cached) a
    caller awaits the fetch; earlier in the refresh window callers get the cached
    value while one background task fetches the next. Background attempts are at
    least ``retry_interval`` seconds apart, so a failing or unchanged source is not
    hammered; their failures are logged and the cached value stays in use. A failed
    fetch is remembered for ``retry_interval`` seconds: callers meanwhile get the
    same error at once instead of waiting on the source again.
    """

    def __init__(
        self,
        fetch: Fetch[T],
        *,
        refresh_before: float = 300.0,
        must_refresh_before: float = 60.0,
        retry_interval: float = 30.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._fetch = fetch
        self.refresh_before = refresh_before
        self.must_refresh_before = must_refresh_before
        self.retry_interval = retry_interval
        # Looked up at call time so tests can move the module's clock.
        self.clock = clock or (lambda: now())
        # What the fetcher needs from the latest caller (e.g. the pooled HTTP client).
        self.context: dict[str, Any] = {}
        self._value: T | None = None
        self._expires_at: float | None = None
        self._lock: asyncio.Lock | None = None
        self._background: asyncio.Task[None] | None = None
        self._last_attempt = float("-inf")
        self._failure: tuple[float, Exception] | None = None

    async def get(self) -> T:
        """The current credential, fetching or scheduling a refresh when due."""
        now = self.clock()
        value, expires_at = self._value, self._expires_at
        if value is not None:
            if expires_at is None or now < expires_at - self.refresh_before:
                return value
            if now < expires_at - self.must_refresh_before:
                if (
                    self._background is None or self._background.done()
                ) and now - self._last_attempt >= self.retry_interval:
                    self._background = asyncio.get_running_loop().create_task(
                        self._refresh_quietly()
                    )
                return value
        return await self._refresh(value)

    @property
    def expires_at(self) -> float | None:
        """When the cached value expires (epoch seconds); None: never, or nothing cached."""
        return self._expires_at

    async def get_fresh(self, min_ttl: float) -> T:
        """A value valid for more than ``min_ttl`` seconds, awaiting a fetch if need be.

        For holders that must hand the next value on before the current one expires
        (a Redis connection re-sends ``AUTH``), where a background refresh would leave
        them holding the old one.
        """
        value, expires_at = self._value, self._expires_at
        if value is not None and (expires_at is None or self.clock() < expires_at - min_ttl):
            return value
        return await self._refresh(value)

    async def _refresh(self, stale: T | None) -> T:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            # Another caller may have refreshed while this one waited for the lock.
            if self._value is not None and self._value is not stale:
                return self._value
            now = self.clock()
            failure = self._failure
            if failure is not None and now - failure[0] < self.retry_interval:
                # A source that just failed (no chain, token endpoint down) is not asked
                # again by every request: they fail fast and fail over until it is due.
                raise failure[1]
            self._last_attempt = now
            try:
                value, expires_at = await self._fetch()
            except Exception as exc:
                self._failure = (now, exc)
                raise
            self._failure = None
            self._value, self._expires_at = value, expires_at
            return value

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh(self._value)
        except Exception as exc:  # the cached value is still valid; try again later
            log.warning("background credential refresh failed: %s", exc)


_REGISTRY: dict[Hashable, RefreshingCredential[Any]] = {}


def credential_for(
    key: Hashable, factory: Callable[[], RefreshingCredential[T]]
) -> RefreshingCredential[T]:
    """The process-wide credential for ``key`` (a provider's identity settings)."""
    found = _REGISTRY.get(key)
    if found is None:
        found = _REGISTRY[key] = factory()
    return found


def reset() -> None:
    """Forget every cached credential (tests; a config reload)."""
    _REGISTRY.clear()
