"""Governance state on the hot path: rate limits, budget reservations, the audit buffer.

One interface, two implementations: :class:`InProcessGovernanceState` (one
replica, a lock) and ``RedisGovernanceState`` (many replicas, one Lua script).
Before the upstream call, :meth:`reserve` checks every rate limit and every
budget level and, only if all pass, counts the request and reserves its
maximum cost at every level, atomically. After the response, :meth:`settle`
corrects the reservation to the actual tokens and cost and appends the audit
event (Redis: queued and written in batches, one pipeline per few ms). Audit events wait in a durable buffer until a
drainer has written them to the database and acknowledged them.

Rate limits are sliding windows of one minute (the previous minute's count
weighted by the share of it still inside the window, plus the current
minute's). Money is counted in integer nano-USD so Redis' ``INCRBY`` is exact.
"""

from __future__ import annotations

import collections
import itertools
import math
import threading
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

WINDOW_S = 60


# Not frozen: built ~20 times per governed request, and a frozen dataclass's
# __init__ (object.__setattr__ per field) costs 3x a plain one. Treat as read-only.
@dataclass(slots=True)
class RateItem:
    """One per-minute limit to check: ``scope`` like ``key:key_1``, ``kind`` rpm or tpm."""

    scope: str
    kind: str
    limit: int
    amount: int


@dataclass(slots=True)
class BudgetItem:
    """One budget level and period: ``scope`` like ``team:t1``, period daily or monthly."""

    scope: str
    period: str
    period_id: str
    limit_nusd: int
    amount_nusd: int
    ttl_s: int


@dataclass(slots=True)
class Decision:
    """The outcome of a reservation; when allowed, the handle :meth:`settle` takes."""

    allowed: bool
    rate: tuple[RateItem, ...] = ()
    budgets: tuple[BudgetItem, ...] = ()
    minute: int = 0
    refused: RateItem | BudgetItem | None = None
    used: float = 0.0  # the refusing counter's value (before this request)
    retry_after_s: float = 0.0
    rate_used: list[float] = field(default_factory=list)  # per rate item, before this request
    # Refused within the budget but past this cloud's escrow lease of it (the global
    # governance plane): what the cloud holds. None: not a lease refusal.
    lease_held: float | None = None
    # Per rate item, the limit this cloud enforces now: its share of the limit (the global
    # governance plane's rate shares). Empty: the limits themselves.
    rate_limits: list[float] = field(default_factory=list)
    # The counters' keys for ``minute`` (each rate item's, then each budget's), when the
    # state that decided computed them (admission): settling corrects the same counters.
    keys: list[str] | None = None
    # With ``keys``: what each counter counts (:data:`REQUEST`, :data:`TOKENS`, :data:`NUSD`),
    # when known from the shape; empty: from ``rate`` and ``budgets``.
    counted: tuple[int, ...] = ()
    # Admitted from the shape's lot (admission by amounts): no ``rate_used``; the headers
    # are the shape's ``rooms`` less what the lot has admitted (CheckPlan.rate_headers).
    lot: bool = False


# Why a reservation script call (one Redis round trip) was made: a request checked in
# Redis (exact), a request's own reserving chunks too (refill), chunks topped up in the
# background (ahead). The ``aigw_governance_reservations_total`` label.
RESERVATION_PATHS = ("exact", "refill", "ahead")

# What a counter counts, per request: one request (RPM), the request's tokens (TPM), its
# reserved cost in nano-USD (a budget). See Shape.counted.
REQUEST, TOKENS, NUSD = 0, 1, 2


def counted_of(rate: tuple[RateItem, ...], budgets: tuple[BudgetItem, ...]) -> tuple[int, ...]:
    """What each counter of these items counts, in the keys' order (rate items, budgets)."""
    kinds = [TOKENS if item.kind == "tpm" else REQUEST for item in rate]
    return (*kinds, *(NUSD for _ in budgets))


class Shape:
    """What a state may remember between reservations that name the same counters.

    The caller keeps one per kind of request whose items always have the same scopes,
    kinds and limits (governance: one per check plan, i.e. per caller, customer and
    model, dropped when a key or a limit changes) and passes it with each reservation
    of such items; a state may fill it and must check that what it holds is still
    valid (admission: the counters' keys for the minute, and the chunks that hold
    them while no chunk was added, replaced or returned). A state may ignore it.
    """

    __slots__ = (
        "ahead",
        "carved_requests",
        "carved_tokens",
        "checked",
        "chunks",
        "counted",
        "decision",
        "generation",
        "groups",
        "items",
        "keys",
        "lot_at",
        "lot_groups",
        "lot_nusd",
        "lot_requests",
        "lot_tokens",
        "minute",
        "rooms",
    )

    def __init__(self, counted: tuple[int, ...] = ()) -> None:
        self.minute = -1  # the minute ``keys`` were computed for
        self.keys: list[str] = []
        self.generation = -1  # admission's chunk generation ``chunks`` belong to
        self.chunks: list[Any] = []
        # (admission) ``chunks`` by what they count, set with them when ``counted`` is:
        # (the RPM chunks, the TPM chunks, the budgets', and the RPM and TPM chunks' indices
        # in the rate items).
        self.groups: tuple[list[Any], list[Any], list[Any], list[list[int]]] = ([], [], [], [])
        # Set by a caller whose items are fixed: what each counter counts per request (a
        # check plan's RPM, TPM and budget items: one request, the tokens, the cost), the
        # promise that every reservation through this shape has the same items, limits
        # included, in the same order. A state may then admit from the amounts alone
        # (:meth:`GovernanceState.admit`), without the items.
        self.counted = counted
        # Admission's chunk generation in which a reservation through this shape passed
        # every check (the chunks' limits are the items'): -1 none.
        self.checked = -1
        # (admission) The items of the shape's last reservation with them (their minute's
        # counters), and whether a top-up ahead of its chunks is under way or found
        # nothing to add (none is tried again until the next reservation with items).
        self.items: tuple[tuple[Any, ...], tuple[Any, ...]] | None = None
        self.ahead = False
        # (admission) The lot: a few requests' worth taken from ``groups`` at once (still
        # reserved in Redis, no longer in the chunks), which admits this shape's requests
        # by three subtractions; what is left of it goes back to the chunks before any
        # chunk is returned, resized or read (Admission._uncarve).
        self.lot_requests = 0  # requests it still admits (one per request)
        self.lot_tokens = 0  # tokens it still holds (each TPM counter's)
        self.lot_nusd = 0  # nano-USD it still holds (each budget's)
        self.carved_requests = 0  # what it held when carved: less what it holds, the
        self.carved_tokens = 0  # requests and tokens it admitted since (the headers)
        self.lot_at = 0.0  # the time (time.time()) of its last admission: the chunks' use
        self.lot_groups: tuple[list[Any], list[Any], list[Any], list[list[int]]] = (
            [],
            [],
            [],
            [],
        )
        # Per kind (0: requests, 1: tokens), the tightest rate counter when the lot was
        # carved: (its index in the rate items, its room then, its limit); None: no counter.
        self.rooms: tuple[tuple[int, float, int] | None, tuple[int, float, int] | None] = (
            None,
            None,
        )
        # The decision every request admitted from this lot shares (read-only).
        self.decision: Decision | None = None


class AuditEntry(NamedTuple):
    """One entry of the audit buffer, as :meth:`GovernanceState.read_audit_entries` reads it.

    ``block`` holds ``events`` events concatenated: a request's ``COPY`` line (ends in a
    newline; :func:`~gateway_app.governance.audit.request_line`) or a JSON object,
    newline-terminated in an entry of several events (alone, its newline is optional).
    """

    id: str
    events: int
    block: bytes
    # The writer's mark: every event of ``block`` is a ``COPY`` line of this layout
    # (:data:`~gateway_app.governance.audit.LAYOUT`), one newline each, none a JSON
    # object; b"": unmarked (a drainer checks the block before appending it whole).
    layout: bytes = b""


class GovernanceState(Protocol):
    """Counters and the audit buffer, shared by every replica that uses the same store."""

    async def reserve(
        self,
        rate: tuple[RateItem, ...],
        budgets: tuple[BudgetItem, ...],
        now: float,
        shape: Shape | None = None,
    ) -> Decision:
        """Check everything, then count and reserve everything, atomically.

        ``shape``: the items' :class:`Shape` when the caller keeps one (a speed-up only:
        the decision is the same with or without it).

        Cancellation-safe: if the caller is cancelled, whatever this call reserved
        is released by the state itself (the caller, never having the decision,
        settles nothing). So every reservation is settled or released exactly once.
        """
        ...

    def admit(self, shape: Shape, tokens: int, nusd: int, now: float) -> Decision | None:
        """Admit at once, without the items, from what this replica holds for a shape with
        ``counted`` (``tokens`` on each TPM counter, ``nusd`` on each budget, one request
        on each RPM counter): the decision, with empty ``rate`` and ``budgets``; None when
        it cannot (then :meth:`reserve` decides). No await: atomic."""
        ...

    async def settle(
        self, decision: Decision | None, tokens_delta: int, cost_delta_nusd: int, event: bytes
    ) -> None:
        """Correct a reservation (deltas = actual - reserved) and append the audit event:
        :meth:`settle_nowait`, awaitable."""
        ...

    def settle_nowait(
        self, decision: Decision | None, tokens_delta: int, cost_delta_nusd: int, event: bytes
    ) -> None:
        """:meth:`settle` without an await: every state queues the correction and the
        event (Redis: for the next batch) or applies them at once (in process). What a
        request settles with: no coroutine per request (~700 instructions)."""
        ...

    async def flush(self) -> list[bytes]:
        """Write every settlement and event still queued in this process (shutdown), and
        return whatever headroom this replica holds unused (admission leases).

        Returns the audit events it could not write to the shared buffer in time (the
        store unreachable), forgotten here: the caller stores them another way."""
        ...

    def mark_lines(self, layout: bytes) -> None:
        """Every request event :meth:`settle` gets is a ``COPY`` line of ``layout``
        (:data:`~gateway_app.governance.audit.LAYOUT`; PostgreSQL deployments): a buffer
        read by other processes marks its entries of such lines only with it
        (:attr:`AuditEntry.layout`), so a drainer that knows the layout appends them
        without scanning them. A buffer read by this process alone ignores it."""
        ...

    def invalidate(self) -> None:
        """Limits or keys changed: admit nothing from headroom reserved under the old ones."""
        ...

    async def append(self, event: bytes) -> None:
        """Append one audit event (admin actions, refused requests)."""
        ...

    async def read_audit(self, count: int, block_s: float) -> list[tuple[str, bytes]]:
        """Unacknowledged events: this reader's pending ones first, then new ones; each
        with the id of its buffer entry (events of one entry share it)."""
        ...

    async def read_audit_entries(self, count: int, block_s: float) -> list[AuditEntry]:
        """:meth:`read_audit` by buffer entry: at most ``count`` events, or one entry's
        when it alone holds more (the drainer's read)."""
        ...

    @property
    def audit_more(self) -> bool:
        """True when the last :meth:`read_audit_entries` stopped at ``count`` with entries
        perhaps left (the next did not fit): fewer events than ``count`` is then no sign of
        an empty buffer, and the drainer reads again at once."""
        ...

    async def ack(self, ids: list[str]) -> None:
        """The events are in the database: drop their entries from the buffer."""
        ...

    def ack_later(self, ids: list[str]) -> None:
        """:meth:`ack`, sent with the next :meth:`read_audit_entries` (for a drainer that
        reads again at once: one round trip for both, where a state has them). The next
        read returns none of these entries; if the acknowledgement is lost with the
        read's failure, they are read again (stored again: a row stored before is
        skipped) and acknowledged then."""
        ...

    async def spent_nusd(self, scope: str, period: str, period_id: str) -> int:
        """Spend plus open reservations of one budget level and period."""
        ...

    async def audit_depth(self) -> int:
        """Audit events not yet in the database: buffered, in flight or unacknowledged."""
        ...

    async def close(self) -> None: ...


def rate_key(item: RateItem, minute: int) -> str:
    return f"rl:{item.scope}:{item.kind}:{minute}"


def budget_key(item: BudgetItem) -> str:
    return f"b:{item.scope}:{item.period}:{item.period_id}"


def lease_key(item: BudgetItem) -> str:
    """What this cloud holds of a budget (nano-USD), granted by the home's ledger."""
    return f"lease:{item.scope}:{item.period}:{item.period_id}"


def share_key(item: RateItem) -> str:
    """This cloud's share of a rate limit (parts per million), granted by the home's ledger;
    absent (never granted, or expired in a partition): the configured floor."""
    return f"share:{item.scope}:{item.kind}"


SHARE_ONE = 1_000_000  # a whole limit, in the parts per million a share is counted in


def retry_after(used: float, amount: int, limit: float, prev: float, into_window: float) -> float:
    """Seconds until the sliding window has room for ``amount`` (nobody else counting).

    ``used`` = ``prev`` x (1 - share of this minute gone) + this minute's count. The
    previous minute's weight decays until this minute ends; then this minute's
    count becomes the previous one and decays in turn. Not the next clock minute:
    a client that waited only for it would find this minute's count still there.
    An ``amount`` above ``limit`` never fits: two windows.
    """
    if amount > limit:
        return 2.0 * WINDOW_S
    rest = WINDOW_S - into_window
    left_of_prev = prev * rest / WINDOW_S
    current = max(0.0, used - left_of_prev)
    need = used + amount - limit
    if need <= 0:
        return 0.001
    if prev > 0 and need <= left_of_prev:
        return max(need / prev * WINDOW_S, 0.001)
    if current + amount <= limit:
        return max(rest, 0.001)
    # Into the next minute, where ``current`` weighs (1 - f): need current*(1-f) + amount <= limit.
    return rest + (1.0 - (limit - amount) / current) * WINDOW_S


class InProcessGovernanceState:
    """Counters in a dict under a lock; the audit buffer in memory (embedded mode).

    The embedded audit buffer lives only in this process: the drainer writes it
    to SQLite every ``block_s`` (0.2 s by default), so a crash can lose at most
    that much. Use Redis for the crash-proof buffer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, float] = collections.defaultdict(float)
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self._pending: dict[str, bytes] = {}
        self._ids = itertools.count(1)

    async def reserve(
        self,
        rate: tuple[RateItem, ...],
        budgets: tuple[BudgetItem, ...],
        now: float,
        shape: Shape | None = None,
    ) -> Decision:
        # No await inside: a cancellation cannot land between reserving and returning.
        minute = int(now // WINDOW_S)
        into = now - minute * WINDOW_S
        frac = into / WINDOW_S
        with self._lock:
            used_list = []
            for item in rate:
                cur = self._counters.get(rate_key(item, minute), 0.0)
                prev = self._counters.get(rate_key(item, minute - 1), 0.0)
                used = prev * (1 - frac) + cur
                if used + item.amount > item.limit:
                    return Decision(
                        False,
                        refused=item,
                        used=used,
                        retry_after_s=retry_after(used, item.amount, item.limit, prev, into),
                    )
                used_list.append(used)
            for budget in budgets:
                spent = self._counters.get(budget_key(budget), 0.0)
                if spent + budget.amount_nusd > budget.limit_nusd:
                    return Decision(False, refused=budget, used=spent)
            for item in rate:
                self._counters[rate_key(item, minute)] += item.amount
            for budget in budgets:
                self._counters[budget_key(budget)] += budget.amount_nusd
            if len(self._counters) > 100_000:
                self._expire(minute)
        return Decision(True, rate, budgets, minute, rate_used=used_list)

    def admit(self, shape: Shape, tokens: int, nusd: int, now: float) -> Decision | None:
        return None  # every reservation takes the lock and the items

    def _expire(self, minute: int) -> None:
        for key in [k for k in self._counters if k.startswith("rl:")]:
            if int(key.rsplit(":", 1)[1]) < minute - 1:
                del self._counters[key]

    async def settle(
        self, decision: Decision | None, tokens_delta: int, cost_delta_nusd: int, event: bytes
    ) -> None:
        self.settle_nowait(decision, tokens_delta, cost_delta_nusd, event)

    def settle_nowait(
        self, decision: Decision | None, tokens_delta: int, cost_delta_nusd: int, event: bytes
    ) -> None:
        with self._lock:
            if decision is not None and decision.allowed:
                for item in decision.rate:
                    if item.kind == "tpm" and tokens_delta:
                        self._counters[rate_key(item, decision.minute)] += tokens_delta
                for budget in decision.budgets:
                    if cost_delta_nusd:
                        self._counters[budget_key(budget)] += cost_delta_nusd
            self._queue.append((str(next(self._ids)), event))

    async def flush(self) -> list[bytes]:
        return []  # settle writes at once

    def mark_lines(self, layout: bytes) -> None:
        pass  # (this process alone reads its buffer)

    def invalidate(self) -> None:
        return None  # no headroom is held: every reservation is exact

    async def append(self, event: bytes) -> None:
        with self._lock:
            self._queue.append((str(next(self._ids)), event))

    async def read_audit(self, count: int, block_s: float) -> list[tuple[str, bytes]]:
        import asyncio

        with self._lock:
            if self._pending:
                return list(self._pending.items())[:count]
        if not self._queue:
            await asyncio.sleep(block_s)
        with self._lock:
            batch: list[tuple[str, bytes]] = []
            while self._queue and len(batch) < count:
                batch.append(self._queue.popleft())
            self._pending.update(batch)
        return batch

    async def read_audit_entries(self, count: int, block_s: float) -> list[AuditEntry]:
        return [AuditEntry(i, 1, event) for i, event in await self.read_audit(count, block_s)]

    @property
    def audit_more(self) -> bool:
        return False  # an event per entry: a read short of ``count`` took every one

    async def ack(self, ids: list[str]) -> None:
        with self._lock:
            for event_id in ids:
                self._pending.pop(event_id, None)

    def ack_later(self, ids: list[str]) -> None:
        with self._lock:  # (no round trip to save: acknowledged now)
            for event_id in ids:
                self._pending.pop(event_id, None)

    async def spent_nusd(self, scope: str, period: str, period_id: str) -> int:
        with self._lock:
            return math.floor(self._counters.get(f"b:{scope}:{period}:{period_id}", 0.0))

    async def audit_depth(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._pending)

    async def close(self) -> None:
        return None
