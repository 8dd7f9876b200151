"""Circuit breakers shared by every replica through Redis.

Same semantics as :class:`~gateway_app.state.circuit.InProcessCircuitBreakerStore`
(failure rate over a window of one-second buckets, minimum calls, cooldown,
half-open probes), evaluated atomically by two Lua scripts so replicas never
disagree on a transition. Time comes from the caller's clock (replicas run NTP;
tests inject a clock).

Hot-path cost: no Redis round trip per request while a circuit is closed.
``acquire`` answers from a local copy of the state while that copy is younger
than ``refresh_s`` and says "closed"; otherwise (first use, open, half-open, a
copy gone stale while idle) it runs the acquire script. Successes while closed
change no state: they are counted locally and a background task sends them
every ``flush_s`` as one script call per deployment with the count, in one
pipeline that also re-reads the state of the deployments in use whose copy is
older than half of ``refresh_s``; so a circuit opened by one replica is seen by
the others within ``refresh_s``. Failures and half-open probes change state:
they go to Redis at once (a failure carries this replica's unsent successes, so
the failure rate is computed over every call counted so far).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gateway_app.aio import pause
from gateway_app.config import CircuitBreakerConfig
from gateway_app.state.circuit import CircuitState
from gateway_app.state.resp import ReplyError, RespClient, TokenCredential

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

# ARGV[7]: '0' an outcome, '1' a released slot (no outcome), '2' a batch of ARGV[8]
# successes counted while this replica saw the circuit closed (ignored otherwise),
# '3' open the circuit now (a credential the provider rejected).
# ARGV[8]: calls to count with this outcome (a failure carries the unsent successes).
_RECORD = """
local now = tonumber(ARGV[1])
local success = ARGV[2] == '1'
local rate = tonumber(ARGV[3])
local min_calls = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local probes = tonumber(ARGV[6])
local mode = ARGV[7]
local n = tonumber(ARGV[8] or '1')
local s = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'inflight', 'ok')
local state = s[1] or 'closed'
local function open()
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[1], 'inflight', 0, 'ok', 0)
  redis.call('DEL', KEYS[2])
  return {'open', ARGV[1]}
end
if mode == '3' then return open() end
if mode == '2' and state ~= 'closed' then return {state, s[2] or '0'} end
if state == 'half_open' then
  local inflight = math.max(0, (tonumber(s[3]) or 0) - 1)
  redis.call('HSET', KEYS[1], 'inflight', inflight)
  if mode == '1' then return {'half_open', s[2] or '0'} end
  if not success then return open() end
  local ok = redis.call('HINCRBY', KEYS[1], 'ok', 1)
  if ok >= probes then
    redis.call('HSET', KEYS[1], 'state', 'closed')
    redis.call('DEL', KEYS[2])
    return {'closed', '0'}
  end
  return {'half_open', s[2] or '0'}
end
if mode == '1' or state == 'open' then return {state, s[2] or '0'} end
local second = math.floor(now)
local fresh = redis.call('HINCRBY', KEYS[2], second .. ':c', n) == n
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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisCircuitBreakerStore:
    """Circuit breakers in Redis (``redis://`` or ``rediss://`` with a custom CA)."""

    def __init__(
        self,
        client: RespClient,
        config: CircuitBreakerConfig,
        *,
        prefix: str = "aigw:cb:",
        refresh_s: float = 1.0,
        flush_s: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.config = config
        self.prefix = prefix
        self.refresh_s = refresh_s
        self.flush_s = flush_s
        self.clock = clock
        self._acquire = client.script(_ACQUIRE)
        self._record = client.script(_RECORD)
        # key -> (state, opened_at, refreshed_at on the monotonic clock)
        self._local: dict[str, tuple[CircuitState, float, float]] = {}
        self._successes: dict[str, int] = {}  # unsent successes while closed
        self._used: set[str] = set()  # keys acquired since the last background pass
        self._ticker: asyncio.Task[None] | None = None
        self._warned_at = 0.0

    @classmethod
    def from_url(
        cls,
        url: str,
        config: CircuitBreakerConfig,
        ca_file: str | None = None,
        credential: TokenCredential | None = None,
        **kwargs: Any,
    ) -> RedisCircuitBreakerStore:
        """A store on a new client for ``url`` (``AIGW_REDIS_URL``, ``AIGW_REDIS_CA_FILE``,
        ``AIGW_REDIS_AUTH``)."""
        return cls(RespClient.from_url(url, ca_file, credential=credential), config, **kwargs)

    def _keys(self, key: str) -> list[str]:
        return [self.prefix + key, self.prefix + key + ":w"]

    def _remember(self, key: str, state_value: Any, opened: Any) -> CircuitState:
        state = CircuitState(_text(state_value))
        self._local[key] = (state, float(_text(opened)), time.monotonic())
        return state

    def _closed_now(self, key: str) -> bool:
        local = self._local.get(key)
        return (
            local is not None
            and local[0] is CircuitState.CLOSED
            and time.monotonic() - local[2] < self.refresh_s
        )

    def _wake(self) -> None:
        # (Twice a request: a live ticker costs two checks. asyncio.get_running_loop() is a
        # getpid() system call on Python 3.11, ~0.18 µs: only to start a ticker. One left
        # on a loop since closed, as each asyncio.run() closes its own, is replaced.)
        ticker = self._ticker
        if ticker is None or ticker.done() or ticker.get_loop().is_closed():
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())

    async def acquire(self, key: str) -> bool:
        if self._closed_now(key):
            self._used.add(key)
            self._wake()
            return True
        try:
            reply = await self._acquire(
                self._keys(key),
                [repr(self.clock()), self.config.cooldown_s, self.config.half_open_probes],
            )
        except Exception:
            # Fail open: an unreachable Redis must not take every model down with it
            # (readiness reports it; the per-replica view is lost until it is back).
            log.warning(
                "circuit breaker state for %s unavailable; allowing the call", key, exc_info=True
            )
            return True
        self._remember(key, reply[0], reply[2])
        return int(reply[1]) == 1

    def _args(self, success: bool, mode: str, count: int) -> list[Any]:
        return [
            repr(self.clock()),
            "1" if success else "0",
            self.config.failure_rate,
            self.config.min_calls,
            self.config.window_s,
            self.config.half_open_probes,
            mode,
            count,
        ]

    async def record(self, key: str, success: bool) -> None:
        local = self._local.get(key)
        closed = local is not None and local[0] is CircuitState.CLOSED
        if success and closed:
            # Changes no state: counted here, sent with the next background pass.
            self._successes[key] = self._successes.get(key, 0) + 1
            self._wake()
            return
        count = 1 + (self._successes.pop(key, 0) if not success else 0)
        await self._write(key, self._args(success, "0", count))

    async def release(self, key: str) -> None:
        local = self._local.get(key)
        if local is not None and local[0] is CircuitState.CLOSED:
            return  # a closed circuit holds no probe slot
        await self._write(key, self._args(True, "1", 1))

    async def trip(self, key: str) -> None:
        self._successes.pop(key, None)
        await self._write(key, self._args(False, "3", 1))

    def retry_in(self, key: str) -> float:
        local = self._local.get(key)
        if local is None or local[0] is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self.config.cooldown_s - (self.clock() - local[1]))

    async def _write(self, key: str, args: list[Any]) -> None:
        try:
            reply = await self._record(self._keys(key), args)
        except Exception:  # losing one outcome must not fail a request
            log.warning("circuit breaker update for %s failed", key, exc_info=True)
            return
        self._remember(key, reply[0], reply[1])

    async def _tick_loop(self) -> None:
        interval = self.flush_s if self.refresh_s <= 0 else min(self.flush_s, self.refresh_s / 4)
        while self._successes or self._used:
            await pause(interval)
            await self._pass()

    async def _pass(self) -> None:
        """One pipeline: the batched successes, then a re-read of stale copies in use."""
        batch, self._successes = self._successes, {}
        used, self._used = self._used, set()
        now = time.monotonic()
        stale = [
            key
            for key in used
            if key not in batch
            and self.refresh_s > 0
            and now - self._local.get(key, (None, 0.0, 0.0))[2] >= self.refresh_s / 2
        ]
        if not batch and not stale:
            return
        calls = [(self._keys(key), self._args(True, "2", count)) for key, count in batch.items()]
        commands = [self._record.command(k, a) for k, a in calls]
        commands += [("HMGET", self.prefix + key, "state", "opened_at") for key in stale]
        try:
            replies = await self.client.pipeline(commands)
            redo = [i for i in range(len(calls)) if self._record.noscript(replies[i])]
            if redo:
                again = await self.client.pipeline(
                    [self._record.eval_command(*calls[i]) for i in redo]
                )
                for i, reply in zip(redo, again, strict=True):
                    replies[i] = reply
        except asyncio.CancelledError:
            for key, count in batch.items():  # flush() interrupted us: send them then
                self._successes[key] = self._successes.get(key, 0) + count
            raise
        except Exception as exc:
            if now - self._warned_at >= 10:
                self._warned_at = now
                log.warning("circuit breaker background update failed: %s", exc)
            return
        for key, reply in zip([*batch, *stale], replies, strict=True):
            if isinstance(reply, ReplyError):
                log.warning("circuit breaker update for %s failed: %s", key, reply)
            elif key in batch:
                self._remember(key, reply[0], reply[1])
            else:
                self._remember(key, reply[0] or b"closed", reply[1] or b"0")

    async def flush(self) -> None:
        """Send the counted successes now (tests, shutdown)."""
        ticker = self._ticker
        if (
            ticker is not None
            and not ticker.done()
            and ticker.get_loop() is asyncio.get_running_loop()
        ):
            ticker.cancel()
            await asyncio.wait([ticker])
        self._ticker = None
        await self._pass()

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
        state, opened = await self.client.execute("HMGET", self.prefix + key, "state", "opened_at")
        self._remember(key, state or b"closed", opened or b"0")
        return self.state(key)

    def is_open(self, key: str) -> bool:
        return self.state(key) is CircuitState.OPEN

    async def close(self) -> None:
        """Flush and close the client."""
        await self.flush()
        await self.client.aclose()
