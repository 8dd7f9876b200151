"""Budgets across clouds: escrow leases granted by the home's ledger.

A budget (a scope's daily or monthly limit, for one period) is spent in every
cloud at once, but checking one global counter per request would put an
inter-cloud round trip on every request (+21 ms at 10 ms one way, +81 ms at
40 ms: bench/multicloud.md). Instead the home's :class:`Ledger` grants each
cloud a share of each budget (its *lease*), and each cloud admits a request
only within what it holds: the reservation script reads the lease from the
cloud's Redis next to the budget's counter, in the same single round trip
(:mod:`gateway_app.state.governance_redis`). The ledger never grants more than
is free, so

    sum over clouds of what they hold <= the budget, and every cloud's
    counter (spend plus open reservations) <= what it holds:
    **reservations never exceed a budget, in any cloud, under any partition.**

Each cloud's :class:`LeaseAgent` renews off the hot path: every ``tick_s`` it
reports each active budget's counter and spend rate and receives the home's
cumulative grant; a request that finds its cloud's lease spent asks for an
urgent (coalesced) renewal and waits at most ``lease_wait_s`` before a 429.
Grants are cumulative, so a lost or repeated reply is harmless (a grant is
applied once: the lease is raised to the grant, never added to). A cloud cut
off from the home spends what it holds, then refuses: the price is underuse,
never overspend (docs/explanation/global-governance.md states the bounds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway_app.config.governance import GlobalConfig
from gateway_app.governance.keys import Limit
from gateway_app.governance.storage import Database, Transaction
from gateway_app.state.governance import BudgetItem, budget_key, lease_key

log = logging.getLogger("gateway_app.governance")

NANO = 1_000_000_000
_LEDGER_LOCK = 715103
# Raise the lease to the home's cumulative grant (never lower: a repeated or late reply
# changes nothing). A lease key that is gone while the home had granted before means
# this Redis lost its state: what was held then counts as spent (it may have been).
# KEYS: lease, counter. ARGV: granted (cumulative), granted before this reply, ttl.
_APPLY = """
local held = redis.call('GET', KEYS[1])
local granted = tonumber(ARGV[1])
if not held and tonumber(ARGV[2]) > 0 then
  redis.call('INCRBY', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
if not held or granted > tonumber(held) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
end
return redis.call('GET', KEYS[1])
"""


def budget_id(item: BudgetItem) -> str:
    """A budget's name on the internal channel: ``team:t1|monthly|2026-12``."""
    return f"{item.scope}|{item.period}|{item.period_id}"


def limit_nusd(limits: dict[tuple[str, str], Limit], budget: str) -> int | None:
    """The limit (nano-USD) the home's records give a budget; None: no such budget."""
    try:
        scope_name, period, _ = budget.split("|")
        scope, scope_id = scope_name.split(":", 1)
    except ValueError:
        return None
    limit = limits.get((scope, scope_id))
    if limit is None and scope == "customer":
        limit = limits.get(("customer", "*"))
    if limit is None:
        return None
    usd = limit.daily_usd if period == "daily" else limit.monthly_usd
    return None if usd is None else round(usd * NANO)


@dataclass(frozen=True, slots=True)
class Report:
    """One budget as a cloud reports it in a renewal."""

    budget: str
    spent_nusd: int  # the cloud's counter: spend plus open reservations
    need_nusd: int  # requests wait for this much more in all (0: none waiting)
    need_one_nusd: int  # the largest of them (a lease must fit at least one request)
    rate_nusd_per_s: float  # the cloud's recent spend rate

    @classmethod
    def parse(cls, data: Any) -> Report:
        """A report from the wire; ValueError naming the field."""
        if not isinstance(data, dict) or not isinstance(data.get("budget"), str):
            raise ValueError("each report needs `budget`, a string")
        values = []
        for name in ("spent_nusd", "need_nusd", "need_one_nusd", "rate_nusd_per_s"):
            value = data.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"`{name}` of {data['budget']!r} must be a non-negative number")
            values.append(value)
        return cls(data["budget"], int(values[0]), int(values[1]), int(values[2]), float(values[3]))


class Ledger:
    """The home's escrow ledger (its database): grants leases, never more than is free."""

    def __init__(
        self,
        db: Database,
        config: GlobalConfig,
        limits: Callable[[], dict[tuple[str, str], Limit]],
    ) -> None:
        self.db = db
        self.config = config
        self.limits = limits  # the home's current limits (its registry)

    def renew(self, cloud: str, reports: list[Report]) -> list[dict[str, Any]]:
        """Record a cloud's reports and grant what it wants and is free, in one transaction:
        per budget ``{"budget", "granted_nusd" (cumulative), "granted_before_nusd",
        "exhausted"}``. Blocking (run in a thread)."""
        limits = self.limits()
        if not reports:
            return []  # a cloud checking the home answers: nothing to record

        def work(tx: Transaction) -> list[dict[str, Any]]:
            tx.lock(_LEDGER_LOCK)  # renewals are a few per second: one at a time
            now = time.time()
            replies = []
            for report in reports:
                replies.append(self._renew_one(tx, cloud, report, limits, now))
            return replies

        return self.db.transaction(work)

    def _renew_one(
        self,
        tx: Transaction,
        cloud: str,
        report: Report,
        limits: dict[tuple[str, str], Limit],
        now: float,
    ) -> dict[str, Any]:
        limit = limit_nusd(limits, report.budget)
        rows = tx.fetch(
            "SELECT cloud, granted_nusd FROM budget_ledger WHERE budget = ?", (report.budget,)
        )
        granted = {row["cloud"]: int(row["granted_nusd"]) for row in rows}
        before = granted.get(cloud, 0)
        grant = 0
        exhausted = limit is None
        if limit is not None:
            lmax = max(1, math.floor(self.config.lease_fraction * limit))
            free = limit - sum(granted.values())
            # What waits is granted up to a fair share of what is free (1/N, at least one
            # lease or one request): a burst in one cloud does not take the whole budget
            # from the others, and a burst anywhere is not held to one lease per renewal.
            share = max(lmax, report.need_one_nusd, free // len(self.config.peers))
            need = min(report.need_nusd, share)
            lmin = max(need, lmax // 4)
            remainder = before - report.spent_nusd
            rate_target = round(report.rate_nusd_per_s * self.config.lease_cover_s)
            target = min(max(lmax, need), max(lmin, rate_target))
            want = max(0, target - remainder, need - remainder)
            grant = max(0, min(want, free))
            exhausted = want > grant and free - grant < max(1, need)
        tx.execute(
            "INSERT INTO budget_ledger (budget, cloud, limit_nusd, granted_nusd, spent_nusd, "
            "reported_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (budget, cloud) DO UPDATE SET "
            "limit_nusd = excluded.limit_nusd, granted_nusd = excluded.granted_nusd, "
            "spent_nusd = excluded.spent_nusd, reported_at = excluded.reported_at",
            (report.budget, cloud, limit or 0, before + grant, report.spent_nusd, now),
        )
        return {
            "budget": report.budget,
            "granted_nusd": before + grant,
            "granted_before_nusd": before,
            "exhausted": exhausted,
        }

    def budget(self, budget: str) -> dict[str, Any]:
        """One budget as the ledger knows it: per cloud granted and last reported spend."""
        rows = self.db.fetch(
            "SELECT cloud, limit_nusd, granted_nusd, spent_nusd, reported_at FROM budget_ledger "
            "WHERE budget = ? ORDER BY cloud",
            (budget,),
        )
        return {
            row["cloud"]: {
                "granted_nusd": int(row["granted_nusd"]),
                "spent_nusd": int(row["spent_nusd"]),
                "reported_at": float(row["reported_at"]),
            }
            for row in rows
        }


Renew = Callable[[list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]


class LeaseAgent:
    """One cloud's side of the leases: renews every tick, or at once for a waiting request."""

    def __init__(
        self,
        config: GlobalConfig,
        redis: Any,
        prefix: str,
        budgets: Callable[[float], list[BudgetItem]],
        renew: Renew,
    ) -> None:
        self.config = config
        self.wait_s = config.lease_wait_s
        self.redis = redis  # redis-py asyncio client of this cloud's Redis
        self.prefix = prefix
        self.budgets = budgets  # the budgets with a limit now (from the registry)
        self.renew = renew  # sends reports to the home's ledger, returns its grants
        self._apply = redis.register_script(_APPLY)
        # budget id -> (item, total amount waiting, largest single amount)
        self._needs: dict[str, tuple[BudgetItem, int, int]] = {}
        self._seen: dict[str, BudgetItem] = {}  # budgets requests asked about (customers)
        self._last: dict[str, tuple[float, int, float]] = {}  # id -> (time, counter, rate)
        self.exhausted: set[str] = set()
        self._ticks = 0
        self.home_reachable = False
        self.renewals = 0
        self._wake = asyncio.Event()
        self._applied = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Renew in the background until :meth:`stop`."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop renewing (bounded wait)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5.0)
            self._task = None

    def refused_outright(self, item: BudgetItem) -> bool:
        """The home said the budget is spent (all of it granted, no share free)."""
        return budget_id(item) in self.exhausted

    async def need(self, item: BudgetItem, amount: int, timeout: float) -> bool:
        """A request found this cloud's lease of ``item`` spent: ask for an urgent renewal
        and wait (at most ``timeout``) for the next one applied; whether one was (False at
        once when the home said the budget is exhausted)."""
        ident = budget_id(item)
        if ident in self.exhausted:
            return False
        held = self._needs.get(ident)
        self._needs[ident] = (
            (item, held[1] + amount, max(held[2], amount)) if held else (item, amount, amount)
        )
        self._seen[ident] = item
        applied = self._applied
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(applied.wait(), timeout)
            return True
        return False

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.lease_tick_s)
            self._wake.clear()
            try:
                await self.renew_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.home_reachable:
                    log.warning("budget lease renewal failed (%s: %s)", type(exc).__name__, exc)
                self.home_reachable = False

    async def renew_once(self) -> None:
        """Report every active budget and apply the home's grants."""
        now = time.time()
        items = {budget_id(item): item for item in self.budgets(now)}
        for ident, item in list(self._seen.items()):
            if item.period_id in (i.period_id for i in items.values()) or ident in self._needs:
                items.setdefault(ident, item)
            else:
                del self._seen[ident]  # a past period
        needs, self._needs = self._needs, {}
        keys = [self.prefix + budget_key(i) for i in items.values()]
        counters = await self.redis.mget(keys) if keys else []
        # Every budget every 10 ticks; in between only those whose spend moved or that a
        # request waits for (thousands of idle budgets cost the ledger nothing).
        self._ticks += 1
        everything = self._ticks % 10 == 1
        reports = []
        previous, self._last = self._last, {}
        for (ident, _item), raw in zip(items.items(), counters, strict=True):
            counter = int(raw or 0)
            last = previous.get(ident)
            rate = 0.0
            if last is not None and now > last[0]:
                # Spend per second, smoothed (half from the last tick, half from before).
                rate = 0.5 * max(0.0, (counter - last[1]) / (now - last[0])) + 0.5 * last[2]
            self._last[ident] = (now, counter, rate)
            _, need, need_one = needs.get(ident, (None, 0, 0))
            if not (everything or need or last is None or counter != last[1] or rate > 0):
                continue
            reports.append(
                {
                    "budget": ident,
                    "spent_nusd": counter,
                    "need_nusd": need,
                    "need_one_nusd": need_one,
                    "rate_nusd_per_s": rate,
                }
            )
        try:
            # (Sent even with no report: it tells this cloud whether the home answers.)
            replies = await self.renew(reports)
        except BaseException:
            for ident, value in needs.items():  # still waiting: ask again next time
                self._needs.setdefault(ident, value)
            raise
        self.home_reachable = True
        self.renewals += 1
        for reply in replies:
            ident = reply["budget"]
            found = items.get(ident)
            if found is None:
                continue
            await self._apply(
                keys=[self.prefix + lease_key(found), self.prefix + budget_key(found)],
                args=[int(reply["granted_nusd"]), int(reply["granted_before_nusd"]), found.ttl_s],
            )
            if reply.get("exhausted"):
                self.exhausted.add(ident)
            else:
                self.exhausted.discard(ident)
        self._release_waiters()

    def _release_waiters(self) -> None:
        """Requests waiting for a renewal retry their reservation now."""
        applied, self._applied = self._applied, asyncio.Event()
        applied.set()
