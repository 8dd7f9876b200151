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
applied once: only its excess over the grant last applied is added). A cloud
cut off from the home spends what it holds, then refuses: the price is
underuse, never overspend (docs/explanation/global-governance.md states the
bounds). A cloud holding more than its recent spend needs is asked to give
the excess back; it lowers its lease before it reports the return, so the
ledger frees only what the cloud can no longer spend. With the opt-in
``partition_overdraft_leases`` a cut-off cloud may spend up to k leases more
per budget and period, reported on heal.

The same renewals carry **RPM/TPM shares**: each cloud enforces its share of
each rate limit (read by the reservation script next to the window counters);
the ledger moves shares by demand, lowering one cloud's share (acknowledged)
before raising another's, and counts every cloud's floor, so the clouds'
sliding windows never sum past the limit (the proof is in decision record
0001, "RPM and TPM limits").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway_app.aio import stop_if_cancelled
from gateway_app.config.governance import GlobalConfig
from gateway_app.governance.keys import Limit
from gateway_app.governance.storage import Database, Transaction
from gateway_app.state.governance import (
    SHARE_ONE,
    WINDOW_S,
    BudgetItem,
    RateItem,
    budget_key,
    lease_key,
    rate_key,
    share_key,
)

log = logging.getLogger("gateway_app.governance")

NANO = 1_000_000_000
_LEDGER_LOCK = 715103
_SILENT_MARGIN_S = 5.0  # clock-rate drift and scheduling between a cloud's expiry and ours
_SHARE_STEP = SHARE_ONE // 100  # shares move in steps of at least 1% (no churn)
# Apply one reply of the home for one budget. The lease key is what this cloud may spend
# (granted - returned + overdraft); ``seen`` the cumulative grant applied, ``ret`` what
# it gave back, ``od`` what it overdrew (cumulative). A grant is applied once (only its
# excess over ``seen``: a repeated or late reply changes nothing). A lease key that is
# gone while the home had granted before means this Redis lost its state: what the home
# counts as held then counts as spent (it may have been). Then what the home asks back
# is given back, never more than is unreserved.
# KEYS: lease, counter, seen, returned, overdraft.
# ARGV: granted (cumulative), granted before this reply, ttl, the home's returned and
#       overdraft (cumulative), the amount to give back.
_APPLY = """
local ttl = ARGV[3]
local held = redis.call('GET', KEYS[1])
if not held then
  held = 0
  if tonumber(ARGV[2]) > 0 then
    held = tonumber(ARGV[2]) - tonumber(ARGV[4]) + tonumber(ARGV[5])
    redis.call('INCRBY', KEYS[2], string.format('%.0f', held))
    redis.call('EXPIRE', KEYS[2], ttl)
    redis.call('SET', KEYS[3], ARGV[2], 'EX', ttl)
    redis.call('SET', KEYS[4], ARGV[4], 'EX', ttl)
    redis.call('SET', KEYS[5], ARGV[5], 'EX', ttl)
  end
  redis.call('SET', KEYS[1], string.format('%.0f', held), 'EX', ttl)
end
local seen = tonumber(redis.call('GET', KEYS[3]) or held)
local granted = tonumber(ARGV[1])
if granted > seen then
  redis.call('INCRBY', KEYS[1], string.format('%.0f', granted - seen))
  redis.call('SET', KEYS[3], ARGV[1], 'EX', ttl)
end
local give = tonumber(ARGV[6])
local gave = 0
if give > 0 then
  local spent = tonumber(redis.call('GET', KEYS[2]) or '0')
  gave = math.min(give, tonumber(redis.call('GET', KEYS[1])) - spent)
  if gave > 0 then
    redis.call('DECRBY', KEYS[1], string.format('%.0f', gave))
    redis.call('INCRBY', KEYS[4], string.format('%.0f', gave))
    redis.call('EXPIRE', KEYS[4], ttl)
  else
    gave = 0
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
return string.format('%.0f', gave)
"""
# Overdraw (cut off from the home, opted in): raise the lease by what is left of the
# allowance ``cap`` this period (cumulative: at most ``cap`` in all, however many cuts).
# KEYS: lease, seen, overdraft. ARGV: cap, ttl.
_OVERDRAW = """
local od = tonumber(redis.call('GET', KEYS[3]) or '0')
local add = tonumber(ARGV[1]) - od
if add <= 0 then return 0 end
local held = redis.call('GET', KEYS[1]) or '0'
if not redis.call('GET', KEYS[2]) then redis.call('SET', KEYS[2], held, 'EX', ARGV[2]) end
redis.call('INCRBY', KEYS[1], string.format('%.0f', add))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
return string.format('%.0f', add)
"""
# Apply a share of a rate limit granted by the home (never an older one: ``gen`` orders
# them), for what is left of its lease (measured from the renewal's sending). When the
# share key expires the reservation script enforces the floor share.
# KEYS: share, gen. ARGV: share (ppm), gen, lease left (ms).
_SHARE = """
local g = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) < g then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', 86400)
return 1
"""


def lease_keys(prefix: str, item: BudgetItem) -> list[str]:
    """A budget's keys in a cloud's Redis: lease, counter, seen, returned, overdraft."""
    lease = prefix + lease_key(item)
    return [lease, prefix + budget_key(item), lease + ":seen", lease + ":ret", lease + ":od"]


def rate_id(item: RateItem) -> str:
    """A rate limit's name on the internal channel: ``team:t1|tpm``."""
    return f"{item.scope}|{item.kind}"


def rate_limit(limits: dict[tuple[str, str], Limit], rate: str) -> int | None:
    """The limit (per minute) the home's records give a rate; None: no such limit."""
    try:
        scope_name, kind = rate.split("|")
        scope, scope_id = scope_name.split(":", 1)
    except ValueError:
        return None
    limit = limits.get((scope, scope_id))
    if limit is None and scope == "customer":
        limit = limits.get(("customer", "*"))
    if limit is None or kind not in ("rpm", "tpm"):
        return None
    value: int | None = limit.rpm if kind == "rpm" else limit.tpm
    return value


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


def _amount(data: dict[str, Any], name: str, what: str) -> float:
    value = data.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"`{name}` of {what!r} must be a non-negative number")
    return value


@dataclass(frozen=True, slots=True)
class Report:
    """One budget as a cloud reports it in a renewal."""

    budget: str
    spent_nusd: int  # the cloud's counter: spend plus open reservations
    need_nusd: int  # requests wait for this much more in all (0: none waiting)
    need_one_nusd: int  # the largest of them (a lease must fit at least one request)
    rate_nusd_per_s: float  # the cloud's recent spend rate
    returned_nusd: int = 0  # what the cloud gave back (cumulative, taken locally first)
    overdraft_nusd: int = 0  # what it overdrew while cut off (cumulative)
    # The cumulative grant the cloud has applied (its leases' ``seen``): what a home that
    # has no row of the cloud (a promoted one) adopts, with returned and overdraft.
    granted_nusd: int = 0

    @classmethod
    def parse(cls, data: Any) -> Report:
        """A report from the wire; ValueError naming the field."""
        if not isinstance(data, dict) or not isinstance(data.get("budget"), str):
            raise ValueError("each report needs `budget`, a string")
        name = data["budget"]
        values = [
            _amount(data, field, name)
            for field in (
                "spent_nusd",
                "need_nusd",
                "need_one_nusd",
                "rate_nusd_per_s",
                "returned_nusd",
                "overdraft_nusd",
                "granted_nusd",
            )
        ]
        whole = [int(v) for v in values]
        return cls(
            name, whole[0], whole[1], whole[2], float(values[3]), whole[4], whole[5], whole[6]
        )


@dataclass(frozen=True, slots=True)
class RateReport:
    """One rate limit (RPM or TPM of a scope) as a cloud reports it in a renewal."""

    rate: str  # ``team:t1|tpm``
    used: float  # the cloud's sliding-window count now (units per minute)
    demand: float  # used plus what this cloud refused in the last minute
    gen: int  # the generation of the share the cloud has applied (0: none yet)

    @classmethod
    def parse(cls, data: Any) -> RateReport:
        """A report from the wire; ValueError naming the field."""
        if not isinstance(data, dict) or not isinstance(data.get("rate"), str):
            raise ValueError("each rate report needs `rate`, a string")
        name = data["rate"]
        used, demand, gen = (_amount(data, field, name) for field in ("used", "demand", "gen"))
        return cls(name, float(used), float(demand), int(gen))


@dataclass(slots=True)
class _Share:
    granted: int
    held: int
    gen: int
    demand: float
    reported_at: float


class Ledger:
    """The home's ledger (its database): escrow leases of budgets, shares of rate limits.

    Budgets: it grants leases, never more than is free, and asks a cloud holding more
    than its recent spend needs to give the excess back. Rate limits: it splits each
    limit into shares by demand, lowering a share in one cloud (acknowledged) before
    raising another's, so the shares held never sum to more than the limit.
    """

    def __init__(
        self,
        db: Database,
        config: GlobalConfig,
        limits: Callable[[], dict[tuple[str, str], Limit]],
    ) -> None:
        self.db = db
        self.config = config
        self.limits = limits  # the home's current limits (its registry)
        self.floor = round(config.rate_share_floor * SHARE_ONE)
        self._since: float | None = None  # when this ledger first served at this epoch

    def renew(
        self, cloud: str, reports: list[Report], rates: list[RateReport] | None = None
    ) -> list[dict[str, Any]]:
        """Record a cloud's reports and grant what it wants and is free, in one transaction:
        per budget ``{"budget", "granted_nusd" (cumulative), "granted_before_nusd",
        "returned_nusd", "overdraft_nusd" (the ledger's, cumulative), "return_nusd" (to
        give back now), "exhausted"}``. Blocking (run in a thread)."""
        return self.renew_all(cloud, reports, rates or [])[0]

    def renew_all(
        self, cloud: str, reports: list[Report], rates: list[RateReport], now: float | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """:meth:`renew` and the rate limits' shares (``{"rate", "share_ppm", "gen"}`` per
        rate report), in one transaction. Blocking (run in a thread)."""
        limits = self.limits()
        if not reports and not rates:
            return [], []  # a cloud checking the home answers: nothing to record
        when = time.time() if now is None else now

        def work(tx: Transaction) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            tx.lock(_LEDGER_LOCK)  # renewals are a few per second: one at a time
            grants = [self._renew_one(tx, cloud, report, limits, when) for report in reports]
            shares = []
            for rate in rates:
                share = self._share_one(tx, cloud, rate, limits, when)
                if share is not None:
                    shares.append(share)
            return grants, shares

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
        # Rows of this home's epoch only: one left from an earlier tenure as home is stale.
        rows = tx.fetch(
            "SELECT cloud, granted_nusd, returned_nusd, overdraft_nusd, adopted_nusd "
            "FROM budget_ledger WHERE budget = ? AND epoch = ?",
            (report.budget, self.config.epoch),
        )
        book = {
            row["cloud"]: [
                int(row["granted_nusd"]),
                int(row["returned_nusd"]),
                int(row["overdraft_nusd"]),
            ]
            for row in rows
        }
        adopted = {row["cloud"]: int(row["adopted_nusd"]) for row in rows}
        if cloud not in book:
            # The cloud's first report to this home: adopt what it holds (its leases
            # from an earlier home, after a promotion) so the sum stays within the limit.
            book[cloud] = [report.granted_nusd, report.returned_nusd, report.overdraft_nusd]
            adopted[cloud] = max(0, book[cloud][0] - book[cloud][1] + book[cloud][2])
        mine = book[cloud]
        before = mine[0]
        # Cumulative: a late or repeated report never undoes a newer one.
        mine[1] = max(mine[1], report.returned_nusd)
        mine[2] = max(mine[2], report.overdraft_nusd)
        grant = give_back = 0
        exhausted = limit is None
        if limit is not None:
            lmax = max(1, math.floor(self.config.lease_fraction * limit))
            free = limit - sum(g - r + o for g, r, o in book.values())
            if self.config.peers.keys() - book.keys() and self._predates(tx, report.budget):
                # A promoted home, a budget of a period the old home served, and a cloud
                # not yet heard (the old home itself, lost?): it may hold at most what the
                # others did not hold when adopted. That stays reserved until it reports:
                # the clouds heard from trade what they give back, never more.
                free -= max(0, limit - sum(adopted.values()))
            # What waits is granted up to a fair share of what is free (1/N, at least one
            # lease or one request): a burst in one cloud does not take the whole budget
            # from the others, and a burst anywhere is not held to one lease per renewal.
            share = max(lmax, report.need_one_nusd, max(0, free) // len(self.config.peers))
            need = min(report.need_nusd, share)
            lmin = max(need, lmax // 4)
            remainder = before - mine[1] + mine[2] - report.spent_nusd
            rate_target = round(report.rate_nusd_per_s * self.config.lease_cover_s)
            target = min(max(lmax, need), max(lmin, rate_target))
            want = max(0, target - remainder, need - remainder)
            grant = max(0, min(want, free))
            exhausted = want > grant and free - grant < max(1, need)
            # A cloud whose demand fell gives back what its recent spend does not need
            # (it keeps a lease or its spend over lease_cover_s), so others can use it.
            keep = max(target, rate_target)
            if not need and remainder > keep + max(1, lmax // 4):
                give_back = remainder - keep
        tx.execute(
            "INSERT INTO budget_ledger (budget, cloud, limit_nusd, granted_nusd, spent_nusd, "
            "reported_at, returned_nusd, overdraft_nusd, epoch, adopted_nusd) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (budget, cloud) DO UPDATE SET "
            "limit_nusd = excluded.limit_nusd, granted_nusd = excluded.granted_nusd, "
            "spent_nusd = excluded.spent_nusd, reported_at = excluded.reported_at, "
            "returned_nusd = excluded.returned_nusd, overdraft_nusd = excluded.overdraft_nusd, "
            "epoch = excluded.epoch, adopted_nusd = excluded.adopted_nusd",
            (
                report.budget,
                cloud,
                limit or 0,
                before + grant,
                report.spent_nusd,
                now,
                mine[1],
                mine[2],
                self.config.epoch,
                adopted[cloud],
            ),
        )
        return {
            "budget": report.budget,
            "granted_nusd": before + grant,
            "granted_before_nusd": before,
            "returned_nusd": mine[1],
            "overdraft_nusd": mine[2],
            "return_nusd": give_back,
            "exhausted": exhausted,
        }

    def _predates(self, tx: Transaction, budget: str) -> bool:
        """A promoted home (epoch > 1) and a budget whose period began before it first
        served as home at this epoch (the old home may have granted leases of it)."""
        if self.config.epoch <= 1:
            return False  # the first home: no earlier one granted anything
        if self._since is None:
            tx.execute(
                "INSERT INTO ledger_epochs (epoch, since) VALUES (?, ?) "
                "ON CONFLICT (epoch) DO NOTHING",
                (self.config.epoch, time.time()),
            )
            rows = tx.fetch("SELECT since FROM ledger_epochs WHERE epoch = ?", (self.config.epoch,))
            self._since = float(rows[0]["since"])
        parts = budget.split("|")
        if len(parts) != 3:
            return True
        _, period, period_id = parts
        started = datetime.fromtimestamp(self._since, UTC)
        return period_id <= started.strftime("%Y-%m-%d" if period == "daily" else "%Y-%m")

    def _share_one(
        self,
        tx: Transaction,
        cloud: str,
        report: RateReport,
        limits: dict[tuple[str, str], Limit],
        now: float,
    ) -> dict[str, Any] | None:
        """One cloud's share of one rate limit (see the class docstring)."""
        limit = rate_limit(limits, report.rate)
        if not limit:
            return None  # no such limit here (yet): the cloud keeps its floor
        floor, peers = self.floor, list(self.config.peers)
        rows = tx.fetch(
            "SELECT cloud, granted_ppm, held_ppm, gen, demand, reported_at FROM rate_shares "
            "WHERE rate = ?",
            (report.rate,),
        )
        shares = {
            row["cloud"]: _Share(
                int(row["granted_ppm"]),
                int(row["held_ppm"]),
                int(row["gen"]),
                float(row["demand"]),
                float(row["reported_at"]),
            )
            for row in rows
        }
        changed = {cloud}
        mine = shares.setdefault(cloud, _Share(floor, floor, 0, 0.0, now))
        if report.gen == mine.gen:
            # The cloud enforces the share last granted: its window holds at most that,
            # or what it counted before (which only decays): the rest is free again.
            used = math.ceil(report.used * SHARE_ONE / limit)
            mine.held = min(mine.held, max(floor, mine.granted, used))
        mine.demand, mine.reported_at = report.demand, now
        # A cloud silent past its share's lease has enforced the floor since, and its
        # window has drained of the rest two windows later: reassign it.
        silent_after = self.config.rate_share_lease_s + 2 * WINDOW_S + _SILENT_MARGIN_S
        for name, other in shares.items():
            if name != cloud and now - other.reported_at > silent_after and other.held > floor:
                other.granted = other.held = floor
                other.demand = 0.0
                other.gen += 1
                changed.add(name)
        demand = {name: shares[name].demand if name in shares else 0.0 for name in peers}
        pool = SHARE_ONE - floor * len(peers)
        total = sum(demand.values())
        share = demand.get(cloud, 0.0) / total if total > 0 else 1 / len(peers)
        target = floor + math.floor(pool * share)
        if target < mine.granted - _SHARE_STEP or (target < mine.granted and target == floor):
            mine.granted = target  # lowered now, freed once acknowledged (held stays)
            mine.gen += 1
        elif target > mine.granted + _SHARE_STEP:
            held = sum(shares[name].held if name in shares else floor for name in peers)
            raised = min(target, mine.held + SHARE_ONE - held)
            if raised > mine.granted:
                mine.granted = raised
                mine.held = max(mine.held, raised)
                mine.gen += 1
        for name in changed:
            row = shares[name]
            tx.execute(
                "INSERT INTO rate_shares (rate, cloud, granted_ppm, held_ppm, gen, demand, "
                "reported_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rate, cloud) DO UPDATE "
                "SET granted_ppm = excluded.granted_ppm, held_ppm = excluded.held_ppm, "
                "gen = excluded.gen, demand = excluded.demand, "
                "reported_at = excluded.reported_at",
                (report.rate, name, row.granted, row.held, row.gen, row.demand, row.reported_at),
            )
        return {"rate": report.rate, "share_ppm": mine.granted, "gen": mine.gen}

    def shares(self, rate: str) -> dict[str, dict[str, Any]]:
        """One rate limit's shares as the ledger knows them, per cloud."""
        rows = self.db.fetch(
            "SELECT cloud, granted_ppm, held_ppm, gen, demand, reported_at FROM rate_shares "
            "WHERE rate = ? ORDER BY cloud",
            (rate,),
        )
        return {
            row["cloud"]: {
                "granted_ppm": int(row["granted_ppm"]),
                "held_ppm": int(row["held_ppm"]),
                "gen": int(row["gen"]),
                "demand": float(row["demand"]),
            }
            for row in rows
        }

    def budget(self, budget: str) -> dict[str, Any]:
        """One budget as the ledger knows it: per cloud granted, held (granted - returned +
        overdraft), overdrawn and last reported spend."""
        rows = self.db.fetch(
            "SELECT cloud, limit_nusd, granted_nusd, returned_nusd, overdraft_nusd, spent_nusd, "
            "reported_at FROM budget_ledger WHERE budget = ? ORDER BY cloud",
            (budget,),
        )
        return {
            row["cloud"]: {
                "granted_nusd": int(row["granted_nusd"]),
                "held_nusd": int(row["granted_nusd"])
                - int(row["returned_nusd"])
                + int(row["overdraft_nusd"]),
                "overdraft_nusd": int(row["overdraft_nusd"]),
                "spent_nusd": int(row["spent_nusd"]),
                "reported_at": float(row["reported_at"]),
            }
            for row in rows
        }


Renew = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class LeaseAgent:
    """One cloud's side of the ledger: renews every tick, or at once for a waiting request.

    Per tick it reports each active budget (its counter, spend rate, what it gave back
    and overdrew) and each active rate limit (its window count and demand), and applies
    the home's replies: cumulative grants, what to give back, and shares of rate limits.
    """

    def __init__(
        self,
        config: GlobalConfig,
        redis: Any,
        prefix: str,
        budgets: Callable[[float], list[BudgetItem]],
        renew: Renew,
        rates: Callable[[], list[RateItem]] | None = None,
    ) -> None:
        self.config = config
        self.wait_s = config.lease_wait_s
        self.redis = redis  # redis-py asyncio client of this cloud's Redis
        self.prefix = prefix
        self.budgets = budgets  # the budgets with a limit now (from the registry)
        self.rates = rates or list  # the rate limits now (from the registry)
        self.renew = renew  # sends reports to the home's ledger, returns its replies
        self._apply = redis.register_script(_APPLY)
        self._overdraw = redis.register_script(_OVERDRAW)
        self._share = redis.register_script(_SHARE)
        # budget id -> (item, total amount waiting, largest single amount)
        self._needs: dict[str, tuple[BudgetItem, int, int]] = {}
        self._seen: dict[str, BudgetItem] = {}  # budgets requests asked about (customers)
        self._last: dict[str, tuple[float, int, float]] = {}  # id -> (time, counter, rate)
        # rate id -> (item, units refused, time of the last refusal) (customers' limits too)
        self._refused: dict[str, tuple[RateItem, float, float]] = {}
        # Budgets the home said are spent, with the limit this cloud knew then: a limit
        # changed since (the operator raised it) makes the reply stale, so the next
        # request asks the home again instead of being refused until the next renewal.
        self.exhausted: dict[str, int] = {}
        self._ticks = 0
        self.home_reachable = False
        self.last_success = time.monotonic()  # (from the start: a cloud that never heard)
        self.renewals = 0
        self.overdrawn_nusd = 0  # this process's overdrafts (operators alert on any)
        self._wake = asyncio.Event()
        self._applied = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Renew in the background until :meth:`stop`."""
        self.last_success = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop renewing (bounded wait)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5.0)
            self._task = None

    def refused_outright(self, item: BudgetItem) -> bool:
        """The home said the budget is spent (all of it granted, no share free), under
        the limit ``item`` still has."""
        return self.exhausted.get(budget_id(item)) == item.limit_nusd

    def refused_rate(self, item: RateItem) -> None:
        """A request was refused by this cloud's share of a rate limit: the refused units
        count as demand (for a minute) in the next reports, so the share can grow."""
        ident = rate_id(item)
        held = self._refused.get(ident)
        units = float(item.amount) + (held[1] if held else 0.0)
        self._refused[ident] = (item, units, time.monotonic())

    async def need(self, item: BudgetItem, amount: int, timeout: float) -> bool:
        """A request found this cloud's lease of ``item`` spent: ask for an urgent renewal
        and wait (at most ``timeout``) for the next one applied; whether one was (False at
        once when the home said the budget is exhausted)."""
        ident = budget_id(item)
        if self.refused_outright(item):
            return False
        if await self._overdraw_one(item):
            return True
        held = self._needs.get(ident)
        self._needs[ident] = (
            (item, held[1] + amount, max(held[2], amount)) if held else (item, amount, amount)
        )
        self._seen[ident] = item
        applied = self._applied
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await applied.wait()
            return True
        return False

    async def _run(self) -> None:
        while True:
            stop_if_cancelled()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.lease_tick_s):
                    await self._wake.wait()
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
        """Report every active budget and rate limit; apply the home's replies."""
        now = time.time()
        items = {budget_id(item): item for item in self.budgets(now)}
        for ident, item in list(self._seen.items()):
            if item.period_id in (i.period_id for i in items.values()) or ident in self._needs:
                items.setdefault(ident, item)
            else:
                del self._seen[ident]  # a past period
        needs, self._needs = self._needs, {}
        keys = [key for item in items.values() for key in lease_keys(self.prefix, item)]
        rates = self._active_rates()
        minute = int(now // WINDOW_S)
        for limit in rates.values():
            keys += [
                self.prefix + rate_key(limit, minute),
                self.prefix + rate_key(limit, minute - 1),
                self.prefix + share_key(limit) + ":gen",
            ]
        values = await self.redis.mget(keys) if keys else []
        # Every budget every 10 ticks; in between only those whose spend moved or that a
        # request waits for (thousands of idle budgets cost the ledger nothing).
        self._ticks += 1
        everything = self._ticks % 10 == 1
        reports = []
        previous, self._last = self._last, {}
        for n, ident in enumerate(items):
            held, counter, seen, returned, overdraft = (
                int(v or 0) for v in values[5 * n : 5 * n + 5]
            )
            applied = seen if values[5 * n + 2] is not None else held
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
                    "returned_nusd": returned,
                    "overdraft_nusd": overdraft,
                    "granted_nusd": applied,
                }
            )
        rate_reports = self._rate_reports(rates, values[5 * len(items) :], now, everything)
        sent = time.monotonic()
        try:
            # (Sent even with no report: it tells this cloud whether the home answers.)
            replies = await self.renew({"budgets": reports, "rates": rate_reports})
        except BaseException:
            for ident, value in needs.items():  # still waiting: ask again next time
                self._needs.setdefault(ident, value)
            raise
        self.home_reachable = True
        self.last_success = sent
        self.renewals += 1
        for reply in replies.get("grants", []):
            ident = reply["budget"]
            found = items.get(ident)
            if found is None:
                continue
            await self._apply(
                keys=lease_keys(self.prefix, found),
                args=[
                    int(reply["granted_nusd"]),
                    int(reply["granted_before_nusd"]),
                    found.ttl_s,
                    int(reply.get("returned_nusd", 0)),
                    int(reply.get("overdraft_nusd", 0)),
                    int(reply.get("return_nusd", 0)),
                ],
            )
            if reply.get("exhausted"):
                self.exhausted[ident] = found.limit_nusd
            else:
                self.exhausted.pop(ident, None)
        # A share lasts rate_share_lease_s from this renewal's sending, then the floor.
        left_ms = int((self.config.rate_share_lease_s - (time.monotonic() - sent)) * 1000)
        for reply in replies.get("shares", []):
            granted = rates.get(reply["rate"])
            if granted is None or left_ms <= 0:
                continue
            share = self.prefix + share_key(granted)
            await self._share(
                keys=[share, share + ":gen"],
                args=[int(reply["share_ppm"]), int(reply["gen"]), left_ms],
            )
        self._release_waiters()

    def _active_rates(self) -> dict[str, RateItem]:
        """The rate limits to report: the registry's, and those refused in the last minute."""
        rates = {rate_id(item): item for item in self.rates()}
        cutoff = time.monotonic() - WINDOW_S
        for ident, (item, _, at) in list(self._refused.items()):
            if at < cutoff:
                del self._refused[ident]
            else:
                rates.setdefault(ident, item)
        return rates

    def _rate_reports(
        self, rates: dict[str, RateItem], values: list[Any], now: float, everything: bool
    ) -> list[dict[str, Any]]:
        frac = (now % WINDOW_S) / WINDOW_S
        reports = []
        for n, ident in enumerate(rates):
            cur, prev, gen = values[3 * n : 3 * n + 3]
            used = float(prev or 0) * (1 - frac) + float(cur or 0)
            refused = self._refused.get(ident)
            demand = used + (refused[1] if refused else 0.0)
            # Limits in use every tick; idle ones every 10 ticks (which renews their
            # shares' 30 s lease too); a limit never granted here at once.
            if not (everything or demand > 0 or gen is None):
                continue
            reports.append({"rate": ident, "used": used, "demand": demand, "gen": int(gen or 0)})
        return reports

    async def _overdraw_one(self, item: BudgetItem) -> bool:
        """Cut off from the home for two ticks, with the overdraft opted in: raise this
        cloud's lease of ``item`` by what is left of its allowance this period (k leases);
        whether it was raised."""
        k = self.config.partition_overdraft_leases
        if not k or time.monotonic() - self.last_success < 2 * self.config.lease_tick_s:
            return False
        cap = k * max(1, math.floor(self.config.lease_fraction * item.limit_nusd))
        lease, _, seen, _, overdraft = lease_keys(self.prefix, item)
        added = int(await self._overdraw(keys=[lease, seen, overdraft], args=[cap, item.ttl_s]))
        if added:
            self.overdrawn_nusd += added
            log.warning(
                "cut off from the home: overdrew %d nano-USD of %s (allowance %d per period, "
                "partition_overdraft_leases=%d); reported to the home on heal",
                added,
                budget_id(item),
                cap,
                k,
            )
        return added > 0

    def _release_waiters(self) -> None:
        """Requests waiting for a renewal retry their reservation now."""
        applied, self._applied = self._applied, asyncio.Event()
        applied.set()
