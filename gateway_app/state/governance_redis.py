"""Governance state in Redis: one Lua script before the call, one pipeline after.

Every key carries the ``{aigw}`` hash tag, so the script's keys live in one
slot and it also runs on a clustered Redis. The audit buffer is a Redis stream
read through a consumer group: an event stays pending until the drainer has
written it to the database and acknowledged it; a replica that dies with
pending events has them taken over by another (``XAUTOCLAIM``) after
``claim_idle_s``.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

from gateway_app.state.governance import (
    WINDOW_S,
    BudgetItem,
    Decision,
    RateItem,
    budget_key,
    rate_key,
)

# KEYS: per rate item its current and previous minute; then one per budget item.
# ARGV: now, n_rate, n_budget, window, then (limit, amount) per rate item,
#       then (limit, amount, ttl) per budget item.
_RESERVE = """
local now = tonumber(ARGV[1])
local nr = tonumber(ARGV[2])
local nb = tonumber(ARGV[3])
local win = tonumber(ARGV[4])
local into = now % win
local frac = into / win
local used = {}
local a = 5
for i = 1, nr do
  local limit = tonumber(ARGV[a])
  local amount = tonumber(ARGV[a + 1])
  a = a + 2
  local cur = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local u = prev * (1 - frac) + cur
  if u + amount > limit then
    return {0, 'r', i, tostring(u), tostring(prev), tostring(into)}
  end
  used[i] = tostring(u)
end
for j = 1, nb do
  local limit = tonumber(ARGV[a])
  local amount = tonumber(ARGV[a + 1])
  a = a + 3
  local spent = tonumber(redis.call('GET', KEYS[2 * nr + j]) or '0')
  if spent + amount > limit then
    return {0, 'b', j, tostring(spent), '0', tostring(into)}
  end
end
a = 5
for i = 1, nr do
  redis.call('INCRBY', KEYS[2 * i - 1], ARGV[a + 1])
  redis.call('EXPIRE', KEYS[2 * i - 1], 2 * win + 5)
  a = a + 2
end
for j = 1, nb do
  redis.call('INCRBY', KEYS[2 * nr + j], ARGV[a + 1])
  redis.call('EXPIRE', KEYS[2 * nr + j], ARGV[a + 2])
  a = a + 3
end
local out = {1, '', 0, '0', '0', tostring(into)}
for i = 1, nr do out[#out + 1] = used[i] end
return out
"""

_PREFIX = "{aigw}:"
STREAM = _PREFIX + "audit"
GROUP = "aigw-audit"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisGovernanceState:
    """Counters, reservations and the audit stream in Redis."""

    def __init__(self, client: Any, *, claim_idle_s: float = 30.0, prefix: str = _PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self.stream = prefix + "audit"
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._reserve = client.register_script(_RESERVE)
        self._group_ready = False

    @classmethod
    def from_url(cls, url: str, ca_file: str | None = None, **kwargs: Any) -> RedisGovernanceState:
        """A state on a new client for ``url`` (``rediss://`` + ``ca_file`` for TLS)."""
        return cls(redis_client(url, ca_file), **kwargs)

    async def reserve(
        self, rate: tuple[RateItem, ...], budgets: tuple[BudgetItem, ...], now: float
    ) -> Decision:
        minute = int(now // WINDOW_S)
        keys: list[str] = []
        args: list[Any] = [repr(now), len(rate), len(budgets), WINDOW_S]
        for item in rate:
            keys.append(self.prefix + rate_key(item, minute))
            keys.append(self.prefix + rate_key(item, minute - 1))
            args += [item.limit, item.amount]
        for budget in budgets:
            keys.append(self.prefix + budget_key(budget))
            args += [budget.limit_nusd, budget.amount_nusd, budget.ttl_s]
        reply = await self._reserve(keys=keys, args=args)
        if int(reply[0]) == 1:
            return Decision(
                True, rate, budgets, minute, rate_used=[float(_text(u)) for u in reply[6:]]
            )
        kind, index = _text(reply[1]), int(reply[2]) - 1
        used, prev, into = float(_text(reply[3])), float(_text(reply[4])), float(_text(reply[5]))
        if kind == "r":
            from gateway_app.state.governance import retry_after

            item = rate[index]
            return Decision(
                False,
                refused=item,
                used=used,
                retry_after_s=retry_after(used, item.amount, item.limit, prev, into),
            )
        return Decision(False, refused=budgets[index], used=used)

    async def settle(
        self, decision: Decision | None, tokens_delta: int, cost_delta_nusd: int, event: bytes
    ) -> None:
        pipe = self.client.pipeline(transaction=False)
        if decision is not None and decision.allowed:
            if tokens_delta:
                for item in decision.rate:
                    if item.kind == "tpm":
                        pipe.incrby(self.prefix + rate_key(item, decision.minute), tokens_delta)
            if cost_delta_nusd:
                for budget in decision.budgets:
                    pipe.incrby(self.prefix + budget_key(budget), cost_delta_nusd)
        pipe.xadd(self.stream, {"e": event})
        await pipe.execute()

    async def append(self, event: bytes) -> None:
        await self.client.xadd(self.stream, {"e": event})

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def read_audit(self, count: int, block_s: float) -> list[tuple[str, bytes]]:
        await self._ensure_group()
        # 1. ours, read before but not acknowledged (the database write failed)
        replies = await self.client.xreadgroup(
            GROUP, self.consumer, {self.stream: "0"}, count=count
        )
        entries = replies[0][1] if replies else []
        if not entries:
            # 2. those of a replica that died with events pending
            claimed = await self.client.xautoclaim(
                self.stream, GROUP, self.consumer, self.claim_idle_ms, "0-0", count=count
            )
            entries = claimed[1] if claimed else []
        if not entries:
            # 3. new ones
            replies = await self.client.xreadgroup(
                GROUP,
                self.consumer,
                {self.stream: ">"},
                count=count,
                block=max(1, int(block_s * 1000)),
            )
            entries = replies[0][1] if replies else []
        return [(_text(eid), fields[b"e"]) for eid, fields in entries if fields]

    async def ack(self, ids: list[str]) -> None:
        if not ids:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(self.stream, GROUP, *ids)
        pipe.xdel(self.stream, *ids)
        await pipe.execute()

    async def spent_nusd(self, scope: str, period: str, period_id: str) -> int:
        value = await self.client.get(f"{self.prefix}b:{scope}:{period}:{period_id}")
        return int(value or 0)

    async def close(self) -> None:
        await self.client.aclose()


def redis_client(url: str, ca_file: str | None = None, **options: Any) -> Any:
    """An asyncio Redis client; ``rediss://`` verifies the server against ``ca_file``."""
    import redis.asyncio as redis

    if url.startswith("rediss://") and ca_file:
        options["ssl_ca_certs"] = ca_file
    options.setdefault("socket_connect_timeout", 5.0)
    options.setdefault("socket_timeout", 5.0)
    options.setdefault("health_check_interval", 15)
    # Requests beyond the pool wait for a connection instead of failing.
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=options.pop("max_connections", 64), timeout=10, **options
    )
    return redis.Redis(connection_pool=pool)
