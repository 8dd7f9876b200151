"""Circuit breakers shared by every replica through Redis.

Same semantics as :class:`~gateway_app.state.circuit.InProcessCircuitBreakerStore`
(failure rate over a window of one-second buckets, minimum calls, cooldown,
half-open probes), evaluated atomically by two Lua scripts so replicas never
disagree on a transition. Time comes from the caller's clock (replicas run NTP;
tests inject a clock).

Hot-path cost: ``acquire`` answers from a local copy of the state while that
copy is younger than ``refresh_s`` and says "closed" (the common case: no round
trip); otherwise it runs the acquire script. ``record`` sends the outcome in the
background, after the response, and refreshes the local copy from the reply, so
a circuit opened by one replica is seen by the others within ``refresh_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gateway_app.config import CircuitBreakerConfig
from gateway_app.state.circuit import CircuitState

log = logging.getLogger("gateway_app.state")

_ACQUIRE = """
local s = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'inflight', 'ok')
local state = s[1] or 'closed'
local now = tonumber(ARGV[1])
local cooldown = tonumber(ARGV[2])
local probes = tonumber(ARGV[3])
if state == 'closed' then return {'closed', 1, '0'} end
local opened = tonumber(s[2]) or 0
local inflight = tonumber(s[3]) or 0
local ok = tonumber(s[4]) or 0
if state == 'open' then
  if now - opened < cooldown then return {'open', 0, s[2]} end
  state = 'half_open'; inflight = 0; ok = 0
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'inflight', 0, 'ok', 0)
end
if inflight + ok >= probes then return {'half_open', 0, s[2]} end
redis.call('HINCRBY', KEYS[1], 'inflight', 1)
return {'half_open', 1, s[2]}
"""

_RECORD = """
local now = tonumber(ARGV[1])
local success = ARGV[2] == '1'
local rate = tonumber(ARGV[3])
local min_calls = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local probes = tonumber(ARGV[6])
local release_only = ARGV[7] == '1'
local s = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'inflight', 'ok')
local state = s[1] or 'closed'
local function open()
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[1], 'inflight', 0, 'ok', 0)
  redis.call('DEL', KEYS[2])
  return {'open', ARGV[1]}
end
if state == 'half_open' then
  local inflight = math.max(0, (tonumber(s[3]) or 0) - 1)
  redis.call('HSET', KEYS[1], 'inflight', inflight)
  if release_only then return {'half_open', s[2] or '0'} end
  if not success then return open() end
  local ok = redis.call('HINCRBY', KEYS[1], 'ok', 1)
  if ok >= probes then
    redis.call('HSET', KEYS[1], 'state', 'closed')
    redis.call('DEL', KEYS[2])
    return {'closed', '0'}
  end
  return {'half_open', s[2] or '0'}
end
if release_only or state == 'open' then return {state, s[2] or '0'} end
local second = math.floor(now)
local fresh = redis.call('HINCRBY', KEYS[2], second .. ':c', 1) == 1
if not success then redis.call('HINCRBY', KEYS[2], second .. ':f', 1) end
redis.call('EXPIRE', KEYS[2], math.ceil(window) + 2)
if success and not fresh then return {'closed', '0'} end
local calls, failures = 0, 0
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  local sec, kind = string.match(fields[i], '^(%-?%d+):(%a)$')
  if sec and tonumber(sec) + 1 <= now - window then
    redis.call('HDEL', KEYS[2], fields[i])
  elseif kind == 'c' then calls = calls + tonumber(fields[i + 1])
  elseif kind == 'f' then failures = failures + tonumber(fields[i + 1]) end
end
if not success and calls >= min_calls and failures / calls >= rate then return open() end
return {'closed', '0'}
"""


class RedisCircuitBreakerStore:
    """Circuit breakers in Redis (``redis://`` or ``rediss://`` with a custom CA)."""

    def __init__(
        self,
        client: Any,
        config: CircuitBreakerConfig,
        *,
        prefix: str = "aigw:cb:",
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.config = config
        self.prefix = prefix
        self.refresh_s = refresh_s
        self.clock = clock
        self._acquire = client.register_script(_ACQUIRE)
        self._record = client.register_script(_RECORD)
        # key -> (state, opened_at, refreshed_at on the monotonic clock)
        self._local: dict[str, tuple[CircuitState, float, float]] = {}
        self._pending: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(
        cls, url: str, config: CircuitBreakerConfig, ca_file: str | None = None, **kwargs: Any
    ) -> RedisCircuitBreakerStore:
        """A store on a new client for ``url`` (``AIGW_REDIS_URL``, ``AIGW_REDIS_CA_FILE``)."""
        import redis.asyncio as redis

        options: dict[str, Any] = {}
        if url.startswith("rediss://") and ca_file:
            options["ssl_ca_certs"] = ca_file
        return cls(redis.from_url(url, **options), config, **kwargs)

    def _keys(self, key: str) -> list[str]:
        return [self.prefix + key, self.prefix + key + ":w"]

    def _remember(self, key: str, reply: list[Any]) -> CircuitState:
        state = CircuitState(reply[0].decode() if isinstance(reply[0], bytes) else reply[0])
        opened = reply[-1]
        opened_at = float(opened.decode() if isinstance(opened, bytes) else opened)
        self._local[key] = (state, opened_at, time.monotonic())
        return state

    async def acquire(self, key: str) -> bool:
        local = self._local.get(key)
        if (
            local is not None
            and local[0] is CircuitState.CLOSED
            and time.monotonic() - local[2] < self.refresh_s
        ):
            return True
        try:
            reply = await self._acquire(
                keys=self._keys(key),
                args=[repr(self.clock()), self.config.cooldown_s, self.config.half_open_probes],
            )
        except Exception:
            # Fail open: an unreachable Redis must not take every model down with it
            # (readiness reports it; the per-replica view is lost until it is back).
            log.warning(
                "circuit breaker state for %s unavailable; allowing the call", key, exc_info=True
            )
            return True
        self._remember(key, [reply[0], reply[2]])
        return int(reply[1]) == 1

    async def record(self, key: str, success: bool) -> None:
        await self._send(key, success, release_only=False)

    async def release(self, key: str) -> None:
        await self._send(key, True, release_only=True)

    async def _send(self, key: str, success: bool, *, release_only: bool) -> None:
        local = self._local.get(key)
        args = [
            repr(self.clock()),
            "1" if success else "0",
            self.config.failure_rate,
            self.config.min_calls,
            self.config.window_s,
            self.config.half_open_probes,
            "1" if release_only else "0",
        ]
        if success and local is not None and local[0] is CircuitState.CLOSED:
            # A success while closed changes no state: write it after the response.
            task = asyncio.get_running_loop().create_task(self._write(key, args))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return
        await self._write(key, args)

    async def _write(self, key: str, args: list[Any]) -> None:
        try:
            reply = await self._record(keys=self._keys(key), args=args)
        except Exception:  # losing one outcome must not fail a request
            log.warning("circuit breaker update for %s failed", key, exc_info=True)
            return
        self._remember(key, reply)

    async def flush(self) -> None:
        """Wait for background writes (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def state(self, key: str) -> CircuitState:
        local = self._local.get(key)
        if local is None:
            return CircuitState.CLOSED
        state, opened_at, _ = local
        if state is CircuitState.OPEN and self.clock() - opened_at >= self.config.cooldown_s:
            return CircuitState.HALF_OPEN
        return state

    async def refresh(self, key: str) -> CircuitState:
        """Read the shared state now (ignores the local copy)."""
        state, opened = await self.client.hmget(self.prefix + key, "state", "opened_at")
        self._remember(key, [state or b"closed", opened or b"0"])
        return self.state(key)

    def is_open(self, key: str) -> bool:
        return self.state(key) is CircuitState.OPEN

    async def close(self) -> None:
        """Flush and close the client."""
        await self.flush()
        await self.client.aclose()
