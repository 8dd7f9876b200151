"""Replica-local admission leases: most governed requests make no Redis round trip.

Without this layer every governed request runs the reservation script in Redis
before its upstream call (:meth:`RedisGovernanceState.reserve_exact`): one
round trip, the largest share of the governance path's cost (bench/RESULTS.md).
With it, a replica reserves a *chunk* of headroom for each counter a request
touches (a rate limit's minute, a budget's period) through the **same script**,
in the same atomic call as the request's own amounts, and then admits the next
requests on those counters locally, from what the chunks still hold.

Exactness: a chunk is a real reservation in Redis. The script grants it only if
the counter (every replica's requests and chunks) stays within the limit, so

    everything admitted, by every replica, locally or not, is counted in Redis
    before it is admitted, and a counter never passes its limit:
    **no overspend, ever**; the price is that headroom one replica holds unused
    cannot be used by another (an early refusal there: underuse).

The underuse is bounded and shrinks near the limit. A chunk takes at most
``share`` of the headroom the replica last saw (the script returns it for rate
limits; for budgets a refusal names the spend) and at most ``max_requests``
requests' worth, and it is granted only if it holds at least one more request;
so far from a limit a replica makes one round trip per ``max_requests``
requests, and near it (headroom below ``1 / share + 1`` requests: 21 by default) every request
takes the exact per-request path. With R replicas at most ``R x share`` of the
headroom can sit unused, never more than ``R x max_requests`` requests' worth.

Unused parts go back to Redis (a negative correction through the same
:class:`~gateway_app.state.governance_redis.SettleBatcher` as settlements):
a rate limit's chunk when its minute ends, any chunk idle for ``hold_s``, every
chunk when the limits or keys change (:meth:`Admission.invalidate`, called on
the change notification; a chunk is also never used under a limit other than
the one it was granted under) and at shutdown (:meth:`Admission.release_all`).
A replica that crashes keeps its chunks counted until the counter expires (a
rate limit's minute, a budget's period): at most ``max_requests`` requests'
worth per counter, as reserved-but-unspent.

A chunk down to ``refill_at`` (a quarter) of what it held after its last grant is
topped up ahead, in the background, by the same script with the chunks' amounts
alone (:meth:`Admission._top_up`): far from the limits no request waits for a
refill. A top-up that would add nothing (near a limit) is not sent, and none is
tried again for that shape until a request's own reservation; one under way at a
flush or shutdown lands before the chunks are returned.

A caller whose items never change (a check plan: its :class:`Shape` has
``counted``) is admitted by its amounts alone (:meth:`Admission.admit`: one
request, its tokens, its cost per counter; no items built) from the chunks a
reservation with the items last passed every check on (``Shape.checked``: the
chunk generation, so the limits are the items'), in the same minute; anything
else takes :meth:`Admission.reserve`. The chunks are the same: it is as exact.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway_app.config.governance import AdmissionConfig
from gateway_app.state.governance import (
    NUSD,
    REQUEST,
    TOKENS,
    WINDOW_S,
    BudgetItem,
    Decision,
    RateItem,
    Shape,
    budget_key,
    rate_key,
)

log = logging.getLogger("gateway_app.governance")

# A lot (Admission._carve) holds at most this many requests' worth: one pass over a
# shape's chunks per this many requests, not one per request (with limits on four
# levels: 16 chunks, ~700 bytecodes a request before; bench/partial-lots.md).
LOT_MAX = 32

Remote = Callable[[tuple[RateItem, ...], tuple[BudgetItem, ...], float], Awaitable[Decision]]
GiveBack = Callable[[list[tuple[str, int]]], None]


@dataclass(slots=True)
class Chunk:
    """Headroom one replica holds of one counter (a rate limit's minute, a budget period)."""

    limit: int  # the limit it was granted under: unusable under another
    left: int  # units still admissible here
    base: float  # (rate limits) the window's use before the grant, for the headers
    taken: int  # units admitted from it since the grant
    minute: int  # (rate limits) the minute its units count in; -1 for budgets
    used_at: float  # monotonic time of the last admission from it
    low: int = 0  # below this many units left it is topped up ahead (refill_at of a grant)


def _groups(
    held: list[Chunk], counted: tuple[int, ...]
) -> tuple[list[Chunk], list[Chunk], list[Chunk], list[list[int]]]:
    """A shape's chunks by what each counts (:attr:`Shape.groups`): RPM, TPM, budgets,
    and the RPM and TPM chunks' indices in the rate items (the headers name them)."""
    by_kind: tuple[list[Chunk], list[Chunk], list[Chunk]] = ([], [], [])
    for chunk, kind in zip(held, counted, strict=True):
        by_kind[kind].append(chunk)
    indices: list[list[int]] = [[], []]
    for i, kind in enumerate(counted):
        if kind != NUSD:
            indices[kind].append(i)
    return by_kind[REQUEST], by_kind[TOKENS], by_kind[NUSD], indices


def _scan(indices: list[int], chunks: list[Chunk]) -> tuple[float, tuple[int, float, int] | None]:
    """The least any of one kind's ``chunks`` holds (infinity: none), and the tightest of
    them (the least room: limit less use) as (its index in the rate items, room, limit):
    every counter of a kind takes the same amount per request, so it stays the tightest
    while a lot lasts (the headers)."""
    least = math.inf
    tightest: tuple[int, float, int] | None = None
    room = math.inf
    for i, chunk in zip(indices, chunks, strict=True):
        if chunk.left < least:
            least = chunk.left
        free = chunk.limit - chunk.base - chunk.taken
        if free < room:
            room = free
            tightest = (i, free, chunk.limit)
    return least, tightest


def _with_amounts(
    rate: tuple[RateItem, ...], budgets: tuple[BudgetItem, ...], amounts: list[int]
) -> tuple[tuple[RateItem, ...], tuple[BudgetItem, ...]]:
    """The items with ``amounts`` in place of theirs (one per item: the rate items', then
    the budgets', as the counters' keys)."""
    n = len(rate)
    return (
        tuple(
            RateItem(item.scope, item.kind, item.limit, amount)
            for item, amount in zip(rate, amounts, strict=False)
        ),
        tuple(
            BudgetItem(b.scope, b.period, b.period_id, b.limit_nusd, amount, b.ttl_s)
            for b, amount in zip(budgets, amounts[n:], strict=True)
        ),
    )


class Admission:
    """Local admission from chunks reserved through the reservation script.

    ``remote`` is the exact, one-round-trip reservation (atomic, cancellation-safe);
    ``give_back`` queues counter corrections (negative: unused headroom returned).
    """

    def __init__(
        self, remote: Remote, give_back: GiveBack, prefix: str, config: AdmissionConfig
    ) -> None:
        self.remote = remote
        self.give_back = give_back
        self.prefix = prefix
        self.share = config.share
        self.max_requests = config.max_requests
        self.hold_s = config.hold_s
        # Top a shape's chunks up ahead (in the background, no request waits) once one of
        # them holds less than this share of what it held after its last grant.
        self.refill_at = config.refill_at
        self.chunks: dict[str, Chunk] = {}
        # Bumped whenever a chunk is added, replaced or returned: a :class:`Shape`'s list
        # of the chunks that hold its counters is valid while it is unchanged.
        self.generation = 0
        # What a counter had used when this replica last learnt it (a rate window's reply
        # says; a budget's refusal names its spend, a success adds what it reserved):
        # sizes the next chunk as a share of the limit's room. key -> (used, monotonic).
        self._used: dict[str, tuple[float, float]] = {}
        # The global plane's rate shares: this cloud's part of a rate limit, as the
        # script last reported it, by (scope, kind); a chunk is sized within it.
        self._share: dict[tuple[str, str], float] = {}
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.round_trips = 0  # reservation script calls made (the exact path's, and refills)
        self.local = 0  # requests admitted without a round trip
        self.ahead = 0  # of the round trips, top-ups ahead (no request waited on them)
        self.lots = 0  # lots carved (:meth:`_carve`): one pass over a shape's chunks each
        self._ahead: set[asyncio.Task[None]] = set()
        # The shapes that may hold a lot taken from the chunks (:meth:`_carve`).
        self._lots: set[Shape] = set()
        # (metrics) Called with each round trip's path: exact, refill or ahead.
        self.on_round_trip: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ admission

    async def reserve(
        self,
        rate: tuple[RateItem, ...],
        budgets: tuple[BudgetItem, ...],
        now: float,
        shape: Shape | None = None,
    ) -> Decision:
        """Admit from local chunks when they cover every counter; else one round trip
        that reserves the request and tops the chunks up (the exact path near a limit).

        With a ``shape`` (the caller's promise that its items name the same counters
        under the same limits each time), the counters' keys are computed once a minute
        and the chunks that hold them looked up once per chunk change, so a request the
        chunks cover costs a few integer operations per counter."""
        if not (rate or budgets):
            # Nothing limits the request: the script still runs (it answers whether the
            # state is reachable: governance.fail_closed refuses when it is not).
            self._note("exact")
            return await self.remote(rate, budgets, now)
        minute = int(now // WINDOW_S)
        if shape is None:
            keys = self._keys(rate, budgets, minute)
        elif shape.minute == minute:
            keys = shape.keys
        else:
            # A new minute: new rate counters (and, at midnight, new budget periods).
            keys = shape.keys = self._keys(rate, budgets, minute)
            shape.minute, shape.generation, shape.checked = minute, -1, -1
        if shape is not None and shape.counted:
            # What a top-up ahead reserves chunks of (this minute's items), and a new try.
            shape.items, shape.ahead = (rate, budgets), False
        for _ in range(8):
            decision = self._local(rate, budgets, keys, minute, shape)
            if decision is not None:
                decision.keys = keys  # settling corrects these counters (no reformatting)
                if shape is not None:
                    decision.counted = shape.counted
                return decision
            # A refill of one of these counters is under way: wait for it, then retry.
            pending = [self._inflight[k] for k in keys if k in self._inflight]
            if not pending:
                break
            await asyncio.wait(pending)
        decision = await self._refill(rate, budgets, keys, minute, now)
        if decision.allowed and decision.minute == minute:
            decision.keys = keys
            if shape is not None:
                decision.counted = shape.counted
        return decision

    def admit(self, shape: Shape, tokens: int, nusd: int, now: float) -> Decision | None:
        """Admit a request of a shape with ``counted`` by its amounts alone (no items
        built), from the shape's lot: three subtractions. When the lot does not hold the
        request, a new one is carved from the chunks (:meth:`_carve`); None when they do
        not hold it either (then :meth:`reserve` with the items). No await: atomic."""
        if (
            shape.lot_requests > 0
            and shape.lot_tokens >= tokens
            and shape.lot_nusd >= nusd
            and shape.minute == int(now // WINDOW_S)
        ):
            shape.lot_requests -= 1
            shape.lot_tokens -= tokens
            shape.lot_nusd -= nusd
            shape.lot_at = now
            self.local += 1
            return shape.decision
        return self._carve(shape, tokens, nusd, now)

    def _carve(self, shape: Shape, tokens: int, nusd: int, now: float) -> Decision | None:
        """Take a lot of up to ``LOT_MAX`` requests like this one from the chunks the shape
        last passed every check on (the limits included: ``Shape.checked``), in the same
        minute, and admit the request from it; None when a chunk does not hold one.

        A lot is half the requests like this one every chunk still holds (at most
        ``LOT_MAX``, at least one): other shapes on the same counters keep the rest. A chunk
        left with less than ``refill_at`` of what it held after its last grant
        (``Chunk.low``) is topped up ahead, in the background (:meth:`_top_up`): far from
        the limits no request then waits for a refill, nor takes the item-building path
        while one is under way."""
        counted = shape.counted
        if not counted or shape.checked != self.generation or shape.minute != int(now // WINDOW_S):
            return None
        if shape.lot_requests or shape.lot_tokens or shape.lot_nusd:
            self._uncarve(shape)  # what is left of its lot: the new one includes it
        # The chunks by kind (set with ``shape.chunks``): one loop per amount.
        requests, token_chunks, cost_chunks, indices = groups = shape.groups
        # How many requests like this one every chunk holds (at most 4 x LOT_MAX), and
        # each kind's tightest rate counter before the lot, for the headers.
        least_requests, tightest_requests = _scan(indices[0], requests)
        least_tokens, tightest_tokens = _scan(indices[1], token_chunks)
        fit = min(4 * LOT_MAX, least_requests)
        if token_chunks:
            if least_tokens <= 0:
                return None
            if tokens > 0 and least_tokens // tokens < fit:
                fit = least_tokens // tokens
        least_nusd = min((chunk.left for chunk in cost_chunks), default=math.inf)
        if cost_chunks:
            if least_nusd <= 0:
                return None
            if nusd > 0 and least_nusd // nusd < fit:
                fit = least_nusd // nusd
        if fit < 1:
            return None
        fit = int(fit)  # (an int already, unless no chunk of any kind bounded it)
        # Half the requests like this one the chunks hold, at most LOT_MAX; its tokens
        # and cost up to twice this one's per request, within half what the chunks hold:
        # the next requests' prompts differ (a larger one would need a new lot).
        size = min(LOT_MAX, max(1, fit // 2))
        lot_tokens = lot_nusd = 0
        if token_chunks:
            lot_tokens = min(2 * size * tokens, max(int(least_tokens) // 2, size * tokens))
        if cost_chunks:
            lot_nusd = min(2 * size * nusd, max(int(least_nusd) // 2, size * nusd))
        stamp = time.monotonic()
        ahead = False
        # The low-water mark is tested before the lot is taken: what the chunk holds with
        # this shape's lot (put back above) is what the replica holds for the shape.
        for chunk in requests:
            if chunk.left < chunk.low:
                ahead = True
            chunk.left -= size
            chunk.taken += size
            chunk.used_at = stamp
        for chunk in token_chunks:
            if chunk.left < chunk.low:
                ahead = True
            chunk.left -= lot_tokens
            chunk.taken += lot_tokens
            chunk.used_at = stamp
        for chunk in cost_chunks:
            if chunk.left < chunk.low:
                ahead = True
            chunk.left -= lot_nusd
            chunk.taken += lot_nusd
            chunk.used_at = stamp
        # This request is the lot's first (the headers count what it admitted: carved
        # less what it holds).
        shape.lot_requests = size - 1
        shape.lot_tokens = lot_tokens - tokens
        shape.lot_nusd = lot_nusd - nusd
        shape.carved_requests, shape.carved_tokens = size, lot_tokens
        shape.lot_groups = groups
        shape.lot_at = now
        shape.rooms = (tightest_requests, tightest_tokens)
        self._lots.add(shape)
        self.lots += 1
        self.local += 1
        if ahead and not shape.ahead and shape.items is not None:
            shape.ahead = True
            task = asyncio.get_running_loop().create_task(self._top_up(shape, tokens, nusd, now))
            self._ahead.add(task)
            task.add_done_callback(self._ahead.discard)
        decision = shape.decision = Decision(
            True, (), (), shape.minute, keys=shape.keys, counted=counted, lot=True
        )
        return decision

    def _uncarve(self, shape: Shape) -> None:
        """Put what is left of a shape's lot back into its chunks (they still hold it in
        Redis), and mark them used when the lot last admitted a request."""
        left_requests, left_tokens, left_nusd = shape.lot_requests, shape.lot_tokens, shape.lot_nusd
        shape.lot_requests = shape.lot_tokens = shape.lot_nusd = 0
        requests, token_chunks, cost_chunks, _ = shape.lot_groups
        # The lot's last use, on the chunks' clock (monotonic).
        used_at = time.monotonic() - max(0.0, time.time() - shape.lot_at)
        for chunk in requests:
            chunk.left += left_requests
            chunk.taken -= left_requests
            if used_at > chunk.used_at:
                chunk.used_at = used_at
        for chunk in token_chunks:
            chunk.left += left_tokens
            chunk.taken -= left_tokens
            if used_at > chunk.used_at:
                chunk.used_at = used_at
        for chunk in cost_chunks:
            chunk.left += left_nusd
            chunk.taken -= left_nusd
            if used_at > chunk.used_at:
                chunk.used_at = used_at

    def _uncarve_all(self) -> None:
        """Every lot back into its chunks: before a chunk is read whole, resized or returned."""
        for shape in self._lots:
            self._uncarve(shape)
        self._lots.clear()

    async def _top_up(self, shape: Shape, tokens: int, nusd: int, now: float) -> None:
        """Top up a shape's chunks ahead of need: the refill a request would otherwise make
        when one runs out (:meth:`_extra`'s sizes, the same script), reserving the chunks
        only (no request's amounts). A counter another refill is topping up is skipped; a
        failure changes nothing (the next request that finds a chunk short refills it)."""
        assert shape.items is not None
        minute = shape.minute
        keys = shape.keys
        # The items with this request's amounts (the size of a chunk is counted in them).
        rate, budgets = _with_amounts(
            *shape.items,
            [tokens if c == TOKENS else nusd if c == NUSD else 1 for c in shape.counted],
        )
        extras = [
            0 if k in self._inflight else x
            for k, x in zip(keys, self._extras(rate, budgets, keys, minute), strict=True)
        ]
        granted = False
        if any(extras):
            future = asyncio.get_running_loop().create_future()
            mine = [k for k, x in zip(keys, extras, strict=True) if x]
            for key in mine:
                self._inflight[key] = future
            chunks_only = _with_amounts(rate, budgets, extras)
            try:
                self.ahead += 1
                self._note("ahead")
                chunked = await self.remote(*chunks_only, now)
                self._learn_shares(rate, chunked)
                if chunked.allowed:
                    self._grant(*chunks_only, keys, extras, chunked.rate_used, minute, own=False)
                    granted = True
                else:
                    self._learn_refusal(chunked)
            except Exception as exc:
                log.debug("topping up admission chunks ahead failed: %s", exc)
            finally:
                for key in mine:
                    del self._inflight[key]
                future.set_result(None)
        # Near a limit (nothing to add, or refused) no second top-up is tried until a
        # request's own refill ran (:meth:`reserve` clears the flag).
        if granted:
            shape.ahead = False

    def _keys(
        self, rate: tuple[RateItem, ...], budgets: tuple[BudgetItem, ...], minute: int
    ) -> list[str]:
        """The counters' keys: each rate limit's this minute, each budget's period."""
        prefix = self.prefix
        keys = [prefix + rate_key(item, minute) for item in rate]
        keys += [prefix + budget_key(item) for item in budgets]
        return keys

    def _local(
        self,
        rate: tuple[RateItem, ...],
        budgets: tuple[BudgetItem, ...],
        keys: list[str],
        minute: int,
        shape: Shape | None = None,
    ) -> Decision | None:
        """Admit from the chunks if they hold every counter's amount (no await: atomic)."""
        if self._lots:
            self._uncarve_all()  # what a lot holds is the chunks' (no underuse in a replica)
        if shape is not None and shape.generation == self.generation and shape.minute == minute:
            held: list[Chunk] = shape.chunks
        else:
            chunks = self.chunks
            held = []
            for key in keys:
                chunk = chunks.get(key)
                if chunk is None:
                    return None
                held.append(chunk)
            if shape is not None:
                shape.chunks, shape.generation = held, self.generation
                if shape.counted:
                    shape.groups = _groups(held, shape.counted)
        n = len(rate)
        for i, item in enumerate(rate):
            chunk = held[i]
            if chunk.limit != item.limit:
                self._drop(keys[i])  # granted under another limit: return it, ask Redis
                return None
            if chunk.left < item.amount or chunk.left <= 0:
                return None
        for i, budget in enumerate(budgets, n):
            chunk = held[i]
            if chunk.limit != budget.limit_nusd:
                self._drop(keys[i])
                return None
            if chunk.left < budget.amount_nusd or chunk.left <= 0:
                return None
        if shape is not None and shape.minute == minute:
            shape.checked = self.generation  # these chunks hold the shape's limits
        stamp = time.monotonic()
        used = []
        for item, chunk in zip(rate, held, strict=False):
            used.append(chunk.base + chunk.taken)
            chunk.left -= item.amount
            chunk.taken += item.amount
            chunk.used_at = stamp
        for budget, chunk in zip(budgets, held[n:], strict=True):
            chunk.left -= budget.amount_nusd
            chunk.taken += budget.amount_nusd
            chunk.used_at = stamp
        self.local += 1
        return Decision(True, rate, budgets, minute, rate_used=used)

    def _used_of(self, key: str, default: float) -> float:
        """A counter's use last seen; ``default`` when unseen or ``hold_s`` old."""
        seen = self._used.get(key)
        if seen is None or time.monotonic() - seen[1] > self.hold_s:
            return default
        return seen[0]

    def _extra(self, key: str, limit: int, amount: int, room: float) -> int:
        """The chunk to add for a counter: a share of the room after this request, at
        most max_requests requests' worth, less what is held; 0 unless it fits one more."""
        if amount <= 0 or room <= amount:
            return 0
        target = min(self.max_requests * amount, math.floor(self.share * (room - amount)))
        held = self.chunks.get(key)
        if held is not None and held.limit == limit:
            target -= max(0, held.left)
        return target if target >= amount else 0

    async def _refill(
        self,
        rate: tuple[RateItem, ...],
        budgets: tuple[BudgetItem, ...],
        keys: list[str],
        minute: int,
        now: float,
    ) -> Decision:
        extras = self._extras(rate, budgets, keys, minute)
        if any(extras):
            mine = [k for k, x in zip(keys, extras, strict=True) if x and k not in self._inflight]
            future = asyncio.get_running_loop().create_future()
            for key in mine:
                self._inflight[key] = future
            try:
                self._note("refill")
                amounts = [item.amount for item in rate] + [b.amount_nusd for b in budgets]
                chunked = await self.remote(
                    *_with_amounts(
                        rate, budgets, [a + x for a, x in zip(amounts, extras, strict=True)]
                    ),
                    now,
                )
                self._learn_shares(rate, chunked)
                if chunked.allowed:
                    used = self._grant(rate, budgets, keys, extras, chunked.rate_used, minute)
                    return Decision(
                        True,
                        rate,
                        budgets,
                        minute,
                        rate_used=used,
                        rate_limits=chunked.rate_limits,
                    )
                self._learn_refusal(chunked)
            finally:
                for key in mine:
                    del self._inflight[key]
                future.set_result(None)
        # The exact request (near a limit, or where the chunks did not fit).
        self._note("exact")
        decision = await self.remote(rate, budgets, now)
        self._learn_shares(rate, decision)
        if decision.allowed:
            decision.rate_used = self._grant(
                rate, budgets, keys, [0] * len(keys), decision.rate_used, minute
            )
            return decision
        self._learn_refusal(decision)
        # A concurrent refill may have filled this replica's chunks meanwhile: what it
        # reserved admits the request (no underuse within one replica).
        return self._local(rate, budgets, keys, minute) or decision

    def _note(self, path: str) -> None:
        """Count a round trip (``round_trips``, and the metric by ``path``)."""
        self.round_trips += 1
        if self.on_round_trip is not None:
            self.on_round_trip(path)

    def _extras(
        self,
        rate: tuple[RateItem, ...],
        budgets: tuple[BudgetItem, ...],
        keys: list[str],
        minute: int,
    ) -> list[int]:
        """The chunk to add to each counter with a reservation of these items (:meth:`_extra`)."""
        if self._lots:
            self._uncarve_all()  # a chunk's size counts what its lots hold
        n = len(rate)
        # A rate window's room is known from the last reply (or the last minute's; else
        # no chunk this time);
        # a budget's only from a refusal, so it is assumed whole when not seen recently
        # (a chunk that does not fit costs one more round trip, then the room is known).
        prefix = self.prefix
        extras = [
            self._extra(
                keys[i],
                item.limit,
                item.amount,
                # A new minute starts with about the last one's use (its weight is ~1).
                min(item.limit, self._share.get((item.scope, item.kind), item.limit))
                - self._used_of(
                    keys[i], self._used_of(prefix + rate_key(item, minute - 1), item.limit)
                ),
            )
            for i, item in enumerate(rate)
        ]
        extras += [
            self._extra(
                keys[n + j],
                item.limit_nusd,
                item.amount_nusd,
                item.limit_nusd - self._used_of(keys[n + j], 0),
            )
            for j, item in enumerate(budgets)
        ]
        return extras

    def _learn_shares(self, rate: tuple[RateItem, ...], decision: Decision) -> None:
        """Remember this cloud's share of each rate limit the script reported (global plane)."""
        if not decision.rate_limits:
            return
        if decision.allowed:
            for item, limit in zip(rate, decision.rate_limits, strict=False):
                self._share[(item.scope, item.kind)] = limit
        elif isinstance(decision.refused, RateItem):
            self._share[(decision.refused.scope, decision.refused.kind)] = decision.rate_limits[0]

    def _learn_refusal(self, decision: Decision) -> None:
        """A refusal names the refused counter's use: its room is known."""
        refused = decision.refused
        stamp = time.monotonic()
        if isinstance(refused, BudgetItem) and decision.lease_held is None:
            key = self.prefix + budget_key(refused)
            self._used[key] = (decision.used, stamp)

    def _grant(
        self,
        rate: tuple[RateItem, ...],
        budgets: tuple[BudgetItem, ...],
        keys: list[str],
        extras: list[int],
        rate_used: list[float],
        minute: int,
        own: bool = True,
    ) -> list[float]:
        """Record a successful reply: the rooms it revealed and the chunks it reserved.
        ``own``: the items' amounts include a request's own (else they are the chunks
        alone: a top-up ahead). Returns each rate counter's use before the request for
        its headers: the reply's less what this replica holds unused (the reply counts
        it as used; the replica may still admit it)."""
        stamp = time.monotonic()
        n = len(rate)
        used: list[float] = []
        for i, extra in enumerate(extras):
            key = keys[i]
            held = self.chunks.get(key)
            if i < n:
                limit, amount = rate[i].limit, rate[i].amount if own else 0
                # The reply's use counts what this replica still holds as used: not for
                # the headers (the caller may use it), so the chunk's base leaves it out.
                before = rate_used[i]
                self._used[key] = (before + amount + extra, stamp)
                if held is not None and held.limit == limit:
                    before -= max(0, held.left)
                used.append(before)
                chunk_minute = minute
            else:
                limit = budgets[i - n].limit_nusd
                amount = budgets[i - n].amount_nusd if own else 0
                self._used[key] = (self._used_of(key, 0) + amount + extra, stamp)
                before, chunk_minute = 0.0, -1
            if not extra:
                continue
            if held is not None and held.limit == limit:
                held.left += extra
                held.used_at = stamp
                held.base, held.taken = before, amount
                held.low = int(held.left * self.refill_at)
            else:
                if held is not None:
                    self._drop(key)
                self.chunks[key] = Chunk(
                    limit, extra, before, amount, chunk_minute, stamp, int(extra * self.refill_at)
                )
                self.generation += 1
        self._arm()
        return used

    def held(self, key: str) -> int:
        """Units of a counter this replica holds unused (reserved in Redis, not admitted)."""
        if self._lots:
            self._uncarve_all()
        chunk = self.chunks.get(key)
        return max(0, chunk.left) if chunk is not None else 0

    # ------------------------------------------------------------------ returning

    def _drop(self, key: str) -> None:
        if self._lots:
            self._uncarve_all()
        chunk = self.chunks.pop(key, None)
        if chunk is None:
            return
        self.generation += 1
        if chunk.left > 0:
            self.give_back([(key, -chunk.left)])

    async def quiesce(self, timeout_s: float = 1.0) -> None:
        """Wait (at most ``timeout_s``) for the top-ups ahead under way to land. One takes
        a round trip (a millisecond); one still out after a second waits on a Redis that
        is slow or gone, and shutdown does not wait for it (:meth:`stop` cancels it)."""
        if self._ahead:
            await asyncio.wait(list(self._ahead), timeout=timeout_s)

    def release_all(self) -> None:
        """Return every chunk's unused part (shutdown, flush)."""
        if self._lots:
            self._uncarve_all()
        returned = [(key, -chunk.left) for key, chunk in self.chunks.items() if chunk.left > 0]
        self.chunks.clear()
        self.generation += 1
        if returned:
            self.give_back(returned)

    def invalidate(self) -> None:
        """Limits or keys changed: return every chunk (and forget what budgets had free),
        so no request is admitted from headroom reserved under the old rules."""
        self._used.clear()
        self.release_all()

    def sweep(self, now: float | None = None, stamp: float | None = None) -> None:
        """Return the chunks of ended minutes and those idle for ``hold_s``."""
        minute = int((time.time() if now is None else now) // WINDOW_S)
        stamp = time.monotonic() if stamp is None else stamp

        def stale_keys() -> list[str]:
            return [
                key
                for key, chunk in self.chunks.items()
                if stamp - chunk.used_at >= self.hold_s or 0 <= chunk.minute < minute
            ]

        stale = stale_keys()
        if stale and self._lots:
            # A chunk's lots admit requests without marking it used: put them back (which
            # marks it used when they last admitted one), then look again.
            self._uncarve_all()
            stale = stale_keys()
        returned = []
        if stale:
            self.generation += 1
        for key in stale:
            chunk = self.chunks.pop(key)
            if chunk.left > 0:
                returned.append((key, -chunk.left))
        if returned:
            self.give_back(returned)
        # What was seen of a counter's room is used for hold_s at most: forget it then.
        for key in [k for k, seen in self._used.items() if stamp - seen[1] > self.hold_s]:
            del self._used[key]

    def _arm(self) -> None:
        if self._sweeper is None:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(self.hold_s / 2, self._tick)

    def _tick(self) -> None:
        self._sweeper = None
        self.sweep()
        if self.chunks:
            self._arm()

    def stop(self) -> None:
        """Return every chunk and stop the sweeps and the top-ups ahead (one cancelled
        after its script was sent is released when its reply comes: ``remote``)."""
        for task in list(self._ahead):
            task.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self.release_all()
