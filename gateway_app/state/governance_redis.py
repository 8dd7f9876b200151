"""Governance state in Redis: one Lua script before the call; settlements batched after.

The exact request path makes one round trip (the reservation script, on the
pipelining :class:`~gateway_app.state.resp.RespClient`); with admission leases
(:mod:`gateway_app.state.admission`, on by default) most requests are admitted
from chunks of headroom the same script reserved, with none. Settlements and audit
events are queued in memory and written by a per-replica :class:`SettleBatcher`
in one pipeline every few milliseconds, shared by all the requests in between.

Every key carries the ``{aigw}`` hash tag, so the script's keys live in one
slot and it also runs on a clustered Redis. The audit buffer is a Redis stream
read through a consumer group: an event stays pending until the drainer has
written it to the database and acknowledged it; a replica that dies with
pending events has them taken over by another (``XAUTOCLAIM``) after
``claim_idle_s``.

The stream is ``{aigw}:audit-v3``: one entry per batcher flush, holding the flush's
events (``n``: how many; ``b``: them, concatenated). On PostgreSQL a request's event is the
line its batch's ``COPY`` takes (:func:`~gateway_app.governance.audit.request_line`), so
a drainer appends an entry's block to its ``COPY`` as it is. Replicas of the release
before read and write ``{aigw}:audit-v2`` (one event per entry: they would drop an entry
of several events as unreadable), those before that ``{aigw}:audit`` (JSON objects); this
release writes neither and drains all three in the same commands, so during a canary or a
rolling update every event is stored once, whoever buffered it. ``{aigw}:audit-v3:events``
counts the events in ``audit-v3`` (the depth gauge counts events, not entries).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from gateway_app.config.governance import AdmissionConfig
from gateway_app.credentials.redis_entra import EntraRedisCredential, redis_py_arguments
from gateway_app.state.admission import Admission
from gateway_app.state.governance import (
    NUSD,
    TOKENS,
    WINDOW_S,
    AuditEntry,
    BudgetItem,
    Decision,
    RateItem,
    Shape,
    budget_key,
    counted_of,
    lease_key,
    rate_key,
    retry_after,
    share_key,
)
from gateway_app.state.resp import ReplyError, RespClient

# KEYS: per rate item its current and previous minute; then one per budget item; then,
#       with leases (the global governance plane), one lease key per budget item; then,
#       with rate shares (the same plane), one share key per rate item.
# ARGV: now, n_rate, n_budget, window, leased (0/1), then (limit, amount) per rate item,
#       then (limit, amount, ttl) per budget item; then, with rate shares only, '1' and
#       the floor share (parts per million, for a share key that is absent).
# A budget item is refused ('b') past its limit; with leases, also ('l') past what this
# cloud holds of it (its escrow lease: the home granted it; absent = nothing held).
# With rate shares each rate limit is this cloud's share of it (the 7th value of an 'r'
# refusal; after the used values of an admission).
_RESERVE = """
local now = tonumber(ARGV[1])
local nr = tonumber(ARGV[2])
local nb = tonumber(ARGV[3])
local win = tonumber(ARGV[4])
local leased = ARGV[5] == '1'
local into = now % win
local frac = into / win
local used = {}
local shared = ARGV[6 + 2 * nr + 3 * nb] == '1'
local floor = tonumber(ARGV[7 + 2 * nr + 3 * nb] or '0')
local sk = 2 * nr + nb + (leased and nb or 0)
local lims = {}
local a = 6
for i = 1, nr do
  local limit = tonumber(ARGV[a])
  local amount = tonumber(ARGV[a + 1])
  a = a + 2
  if shared then
    limit = limit * tonumber(redis.call('GET', KEYS[sk + i]) or floor) / 1000000
    lims[i] = tostring(limit)
  end
  local cur = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local u = prev * (1 - frac) + cur
  if u + amount > limit then
    return {0, 'r', i, tostring(u), tostring(prev), tostring(into), tostring(limit)}
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
  if leased then
    local held = tonumber(redis.call('GET', KEYS[2 * nr + nb + j]) or '0')
    if spent + amount > held then
      return {0, 'l', j, tostring(spent), tostring(held), tostring(into)}
    end
  end
end
a = 6
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
if shared then
  for i = 1, nr do out[#out + 1] = lims[i] end
end
return out
"""

_PREFIX = "{aigw}:"
GROUP = "aigw-audit"
READ_CHUNK = 100  # audit entries per XREADGROUP reply at most (a batch may take several)
STREAM = "audit-v3"
"""The audit stream this version writes (after the prefix): an entry per batcher flush,
``n`` events (``COPY`` lines, newline-terminated JSON objects) concatenated in ``b``."""
DEPTH_SUFFIX = ":events"
"""After :data:`STREAM`'s key: the counter of the events in it (``INCRBY`` with each
entry, decremented by the acknowledgement that deletes the entry)."""
V2_STREAM = "audit-v2"
"""The audit stream of the release before (one JSON object or ``COPY`` line per entry):
drained, never written."""
LEGACY_STREAM = "audit"
"""The audit stream of the releases before that (JSON objects only): drained, never written."""
V2_ID = "v2:"
LEGACY_ID = "v1:"
"""What :meth:`RedisGovernanceState.read_audit` puts before the id of an entry of
:data:`V2_STREAM` (:data:`V2_ID`) or of :data:`LEGACY_STREAM` (this); ids of
:data:`STREAM` carry nothing."""
OLDER_STREAMS = ((V2_ID, V2_STREAM), (LEGACY_ID, LEGACY_STREAM))
"""The older streams drained, with the mark of their ids, newest first."""
ENTRY_EVENTS_MAX = 256
"""Events per audit stream entry at most: a flush's events are one entry (about 100 at
5,000 requests/s a process), but a flush of events held through a Redis outage or while
Redis was full (up to ``max_batch``, 2,000) is several, since a drainer's write takes an
entry whole and a large ``COPY`` lengthens the 1-connection p99
(``bench/partial-audit-batch.md``). The batcher's ``max_items`` default (256) is the same
bound for a flush under load."""
CLAIM_EVERY_S = 0.5
"""How often a drainer looks for a dead replica's pending audit entries (``XAUTOCLAIM``;
more often when ``claim_idle_s`` is shorter than twice this): they become claimable only
after ``claim_idle_s``, so looking on every pass cost a round trip per batch for nothing."""
LEGACY_CLAIM_EVERY_S = 5.0
"""How often a drainer takes over idle pending entries of the older streams (every
:data:`CLAIM_EVERY_S` for the current one): a dead old replica's events wait at most this
much longer."""

# The acknowledgement of audit entries, in one round trip: XACK and XDEL of each id, and
# the current stream's event counter decremented by the ``n`` of the entries this call
# deleted (an entry acknowledged twice, after a claim, is subtracted once).
# KEYS: the current stream, its counter, the older streams (newest first).
# ARGV: the group, how many ids of the current stream, of each older one; then the ids.
_ACK = """
local group = ARGV[1]
local a = #KEYS  -- ARGV[a]: the last read (the group, a count per stream)
local gone = 0
for s = 1, #KEYS do
  if s ~= 2 then
    local n = tonumber(ARGV[s == 1 and 2 or s])
    for i = a + 1, a + n do
      local id = ARGV[i]
      redis.call('XACK', KEYS[s], group, id)
      if s == 1 then
        local entry = redis.call('XRANGE', KEYS[1], id, id)
        if #entry > 0 and redis.call('XDEL', KEYS[1], id) == 1 then
          local fields = entry[1][2]
          for f = 1, #fields, 2 do
            if fields[f] == 'n' then gone = gone + tonumber(fields[f + 1]) end
          end
        end
      else
        redis.call('XDEL', KEYS[s], id)
      end
    end
    a = a + n
  end
end
if gone > 0 then redis.call('DECRBY', KEYS[2], gone) end
return gone
"""

log = logging.getLogger("gateway_app.governance")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SettleBatcher:
    """Settlements and audit events of many requests, written in one pipeline per flush.

    :meth:`add` only appends to memory. A flush starts ``interval_s`` after the
    first addition, or at once when ``max_items`` events wait; one flush is in
    flight at a time and what arrives meanwhile waits for the next. A flush is
    one ``MULTI ... EXEC`` pipeline: the counter corrections, summed per key,
    and one ``XADD`` of its events (at most ``max_batch``) as one stream entry (one per
    ``max_entry`` events: :data:`ENTRY_EVENTS_MAX`),
    with the ``INCRBY`` of the stream's event counter (:func:`entry_block`). When Redis is unreachable the batch is kept and
    retried with backoff; at most ``max_held`` events are held (then new events
    are dropped and an error names how many are held and dropped). So an event
    reaches the durable stream within ``interval_s`` plus a round trip
    normally; only a crash of this process while Redis is unreachable (or
    within that window) loses the events it holds.

    With ``memory_below`` the batcher also reads Redis' memory use (``INFO memory``, before
    a flush, at most every ``memory_check_s``) and, while ``used_memory`` is at or
    above that share of ``maxmemory``, appends no audit events: it keeps them here (up to
    ``max_held``, then drops new ones, as while Redis is unreachable) and still writes the
    counter corrections. A stream that grows while PostgreSQL is down would otherwise fill
    Redis, and Redis' eviction (``volatile-lru``) would remove budget counters to make room.

    With :meth:`heartbeat` (the global plane's follower clouds) every flush also
    records, in the same transaction, this replica's *floor* in a Redis hash: the time
    before which every event it queued is in Redis once the flush applies. An idle
    replica records it every ``every_s``; a replica that cannot reach Redis records
    nothing, so its last floor stays, before the events it holds. The audit shipper
    never claims its cloud complete past the lowest floor
    (:meth:`RedisGovernanceState.oldest_audit_s`).
    """

    def __init__(
        self,
        client: RespClient,
        stream: str,
        *,
        interval_s: float = 0.02,
        max_items: int = 256,
        max_held: int = 100_000,
        max_batch: int = 2000,
        max_entry: int = ENTRY_EVENTS_MAX,
        memory_below: float | None = None,
        memory_check_s: float = 1.0,
        depth_key: str | None = None,
    ) -> None:
        self.client = client
        self.stream = stream
        # The stream's event counter (the depth gauge counts events; an entry holds many).
        self.depth_key = depth_key if depth_key is not None else stream + DEPTH_SUFFIX
        self.interval_s = interval_s
        self.max_items = max_items
        self.max_held = max_held
        self.max_batch = max_batch
        self.max_entry = max_entry  # events per stream entry at most
        self._events: list[bytes] = []
        self._deltas: dict[str, int] = {}
        # Settlements of requests admitted locally, summed per check plan's counters:
        # id(keys) -> [keys, what each counts, tokens delta, cost delta]. A request adds two
        # integers here instead of one correction per counter (12 with limits on four
        # levels); a flush spreads each sum over the plan's counters (``_spread``). The
        # entry holds ``keys``, so its id is not reused while the entry lives.
        self._settled: dict[int, list[Any]] = {}
        self._inflight = 0
        self._sending: list[bytes] = []  # the events of the flush in flight
        self._sending_deltas: dict[str, int] = {}  # and its counter corrections
        self._task: asyncio.Task[bool] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._retrying = False
        self._failures = 0
        self._warned_at = 0.0
        self.dropped = 0
        self.on_drop: Callable[[], None] | None = None  # (metrics) one call per event dropped
        self.flushes = 0
        self.drain_timeout_s = 5.0  # how long shutdown retries before giving events back
        # The replica's floor (:meth:`heartbeat`): the hash, this replica's field in it.
        self.beat_key: str | None = None
        self.replica = ""
        self.beat_s = 1.0
        self._beat: asyncio.TimerHandle | None = None
        self._beat_due = False
        self._first_at = 0.0  # (wall clock) when the oldest event waiting here was queued
        # Set by :meth:`RedisGovernanceState.mark_lines`: the layout of the COPY lines
        # the events are when none is a JSON object (``_objects``: one may be among those
        # waiting); the entries of such a flush carry it (``l``), so a drainer that knows
        # the layout appends them whole, without scanning them (:meth:`RowBatch.add_lines`).
        self.layout: bytes | None = None
        self._objects = False
        self._beaten_at = 0.0  # (monotonic) when a flush last recorded the floor
        # Redis' memory (``memory_below``): while full, audit events stay here.
        self.memory_below = memory_below if memory_below is not None and memory_below < 1 else None
        self.memory_check_s = memory_check_s
        self.memory_ratio: float | None = None  # used_memory / maxmemory when last read
        self.memory_full = False
        self._memory_at = -math.inf  # (monotonic) when it was last read

    @property
    def held(self) -> int:
        """Events not yet in Redis (waiting or in the flush in flight)."""
        return len(self._events) + self._inflight

    @property
    def unsent(self) -> int:
        """Events waiting for a flush (not those of the flush in flight: its commands are
        already written to this batcher's connection)."""
        return len(self._events)

    def add(self, deltas: Iterable[tuple[str, int]], event: bytes | None) -> None:
        """Queue counter corrections and (unless None) one audit event."""
        for key, delta in deltas:
            self._deltas[key] = self._deltas.get(key, 0) + delta
        if event is None:
            pass
        elif self.held >= self.max_held:
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop()
            now = time.monotonic()
            if self.dropped == 1 or now - self._warned_at >= 10:
                self._warned_at = now
                log.error(
                    "audit buffer full: holding %d events in memory while Redis is %s; "
                    "dropped %d events so far",
                    self.held,
                    "short of memory" if self.memory_full else "unreachable",
                    self.dropped,
                )
        else:
            if not self._events:
                self._first_at = time.time()
            if event[:1] == b"{":
                self._objects = True
            self._events.append(event)
        self._schedule()

    def add_settled(
        self,
        keys: list[str],
        counted: tuple[int, ...],
        tokens_delta: int,
        cost_delta_nusd: int,
        event: bytes,
    ) -> None:
        """Queue one request's settlement and its audit event: ``tokens_delta`` for each
        counter of ``keys`` that counts tokens, ``cost_delta_nusd`` for each that counts
        nano-USD (``counted``: :data:`~gateway_app.state.governance.TOKENS`, ``NUSD``).
        Counters named by the same ``keys`` list (admission's, one per check plan and
        minute) are summed per flush."""
        entry = self._settled.get(id(keys))
        if entry is None:
            self._settled[id(keys)] = [keys, counted, tokens_delta, cost_delta_nusd]
        else:
            entry[2] += tokens_delta
            entry[3] += cost_delta_nusd
        events = self._events
        if len(events) + self._inflight < self.max_held:
            if not events:
                self._first_at = time.time()
            if event[:1] == b"{":
                self._objects = True
            events.append(event)
            # With the timer armed and the batch short of max_items, _schedule does
            # nothing in any branch: most requests skip the call.
            if self._timer is None or len(events) >= self.max_items:
                self._schedule()
        else:
            self.add((), event)  # the buffer is full: add counts and reports the drop

    def _spread(self) -> None:
        """Move the settlements summed per plan into the per-counter corrections."""
        deltas = self._deltas
        for keys, counted, tokens, cost in self._settled.values():
            for key, kind in zip(keys, counted, strict=True):
                delta = tokens if kind == TOKENS else cost if kind == NUSD else 0
                if delta:
                    deltas[key] = deltas.get(key, 0) + delta
        self._settled = {}

    def _schedule(self) -> None:
        if self._task is not None or self._retrying:
            return  # the flush in flight (or the retry timer) reschedules
        if self.memory_full:
            # Events wait for room: flush (corrections, and a new reading) on a slow timer.
            if self._timer is None:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self.memory_check_s, self._start)
            return
        if len(self._events) >= self.max_items:
            if self._timer is not None:
                self._timer.cancel()
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval_s, self._start)

    def _start(self) -> None:
        self._timer = None
        self._retrying = False
        if self._task is None and (self._events or self._deltas or self._settled or self._beat_due):
            self._task = asyncio.get_running_loop().create_task(self._flush())

    def heartbeat(self, key: str, replica: str, every_s: float = 1.0) -> None:
        """Record this replica's floor under ``replica`` in the hash ``key`` with every
        flush, and at least every ``every_s`` (from now: call it on the event loop)."""
        self.beat_key, self.replica, self.beat_s = key, replica, every_s
        self._beat_due = True
        self._tick()

    def _tick(self) -> None:
        """The idle heartbeat: a flush of nothing but the floor when none recorded it
        for ``beat_s`` (none while a retry waits: the last floor recorded must stay)."""
        loop = asyncio.get_running_loop()
        self._beat = loop.call_later(self.beat_s, self._tick)
        if time.monotonic() - self._beaten_at >= self.beat_s:
            self._beat_due = True
            if self._task is None and not self._retrying and self._timer is None:
                self._start()

    async def forget_floor(self, remove: bool = True) -> None:
        """Stop the heartbeat and (``remove``: a clean shutdown, after :meth:`drain`)
        remove this replica's floor: a replica gone holds its cloud's completeness claim
        back no longer. Events it could not write keep their floor (until it is stale)."""
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        if self.beat_key is None or not remove:
            return
        try:
            await self.client.execute("HDEL", self.beat_key, self.replica)
        except Exception as exc:  # Redis unreachable: the floor stays until it is stale
            log.warning("could not remove this replica's audit floor (%s)", exc)

    async def _flush(self) -> bool:
        now = time.monotonic()
        if self.memory_below is not None and now - self._memory_at >= self.memory_check_s:
            # One more round trip a second at most, so the events' fate is decided on a
            # current reading (its failure: Redis unreachable, which the flush handles).
            self._memory_at = now
            reply: Any = None
            try:
                reply = await self.client.execute("INFO", "memory")
            except ReplyError as exc:  # (an ACL without INFO: unguarded, logged once)
                reply = exc
            except (TimeoutError, ConnectionError, OSError):
                pass  # Redis unreachable: the flush below fails and is retried
            if reply is not None:
                self._read_memory(reply)
        if self.memory_full:
            events: list[bytes] = []  # they wait here for room (see the class docstring)
        else:
            events, self._events = self._events[: self.max_batch], self._events[self.max_batch :]
        # (A JSON object among the events taken, or left: both flagged, the left until
        # a flush takes the last of them.)
        objects = self._objects
        if not self._events:
            self._objects = False
        layout = None if objects else self.layout
        first_at = self._first_at
        taken_at = time.time()
        self._spread()
        deltas, self._deltas = self._deltas, {}
        self._inflight = len(events)
        self._sending, self._sending_deltas = events, deltas
        beat_due, self._beat_due = self._beat_due, False
        ok = True
        try:
            commands: list[tuple[Any, ...]] = [("MULTI",)]
            commands += [("INCRBY", key, delta) for key, delta in deltas.items() if delta]
            if events:
                # One entry per max_entry events: a flush of events held through an outage
                # (up to max_batch) is several, so no drainer write takes thousands at once.
                step = self.max_entry
                for at in range(0, len(events), step):
                    part = events[at : at + step]
                    if layout is None:
                        block = entry_block(part)
                        commands.append(("XADD", self.stream, "*", "n", len(part), "b", block))
                    else:
                        # COPY lines only, each ending in its one newline (request_line):
                        # joined as they are, unscanned, and marked with their layout.
                        block = b"".join(part)
                        commands.append(
                            ("XADD", self.stream, "*", "n", len(part), "b", block, "l", layout)
                        )
                commands.append(("INCRBY", self.depth_key, len(events)))
            if self.beat_key is not None:
                # Once this applies, every event queued before ``taken_at`` is in Redis,
                # but those left for the next flush (at most since ``first_at``).
                floor = first_at if self._events else taken_at
                commands.append(("HSET", self.beat_key, self.replica, repr(floor)))
            commands.append(("EXEC",))
            replies = await self.client.pipeline(commands)
            result = replies[-1]
            if not isinstance(result, list):
                # EXECABORT (a command was refused while queueing): nothing was applied.
                raise ReplyError(f"EXEC failed: {result!r} ({replies[:-1]!r})")
            errors = [r for r in result if isinstance(r, ReplyError)]
            if errors:  # applied, but some command failed (a key of the wrong type)
                log.error("audit/settle flush: %d commands failed: %s", len(errors), errors[0])
            self._failures = 0
            self.flushes += 1
            self._beaten_at = time.monotonic()
        except Exception as exc:
            ok = False
            self._beat_due = beat_due
            # Keep the batch, ahead of what arrived meanwhile, and retry after a backoff.
            if events:
                self._first_at = first_at  # the oldest held is the batch's again
            self._events[:0] = events
            self._objects = self._objects or objects
            for key, delta in deltas.items():
                self._deltas[key] = self._deltas.get(key, 0) + delta
            self._failures += 1
            now = time.monotonic()
            if self._failures == 1 or now - self._warned_at >= 10:
                self._warned_at = now
                log.warning(
                    "could not write %d audit events and settlements to Redis (%s); "
                    "holding %d events and retrying",
                    len(events),
                    exc,
                    len(self._events),
                )
        finally:
            self._inflight = 0
            self._sending, self._sending_deltas = [], {}
            self._task = None
        if ok:
            if self._events or self._deltas or self._settled:
                self._schedule()
        else:
            self._retrying = True
            delay = min(0.05 * 2 ** (self._failures - 1), 2.0)
            self._timer = asyncio.get_running_loop().call_later(delay, self._start)
        return ok

    def _read_memory(self, reply: Any) -> None:
        """Take Redis' ``INFO memory`` reply: hold the audit events while it is full."""
        if isinstance(reply, ReplyError):
            log.warning(
                "could not read Redis' memory use (%s): audit events are appended without "
                "redis.buffer_below_memory's check",
                reply,
            )
            self.memory_below = None
            self.memory_full = False
            return
        fields = dict(line.split(":", 1) for line in _text(reply).splitlines() if ":" in line)
        limit = int(fields.get("maxmemory", "0") or 0)
        ratio = int(fields.get("used_memory", "0") or 0) / limit if limit else None
        self.memory_ratio = ratio
        full = ratio is not None and self.memory_below is not None and ratio >= self.memory_below
        if full and not self.memory_full:
            log.error(
                "Redis memory is %.0f%% of maxmemory, at or above redis.buffer_below_memory "
                "(%.0f%%): audit events are held in this process (up to %d, then dropped) so "
                "Redis does not evict budget counters; is PostgreSQL down "
                "(aigw_audit_buffer_depth)?",
                (ratio or 0) * 100,
                (self.memory_below or 0) * 100,
                self.max_held,
            )
        elif self.memory_full and not full:
            log.warning("Redis has room again: appending the %d audit events held", self.held)
        self.memory_full = full

    async def drain(self, timeout_s: float | None = None) -> list[bytes]:
        """Write everything held now (shutdown), retrying until ``timeout_s``
        (:attr:`drain_timeout_s` by default).

        Returns the audit events it could not write (Redis unreachable until then) and
        forgets everything still held, so the caller can store those events elsewhere
        (the gateway writes them to its database) and a second drain returns at once.
        Counter corrections not written are logged: the counters keep the amounts the
        requests reserved (an over-count until their window or period ends)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._retrying = False
        deadline = time.monotonic() + (self.drain_timeout_s if timeout_s is None else timeout_s)
        while True:
            task = self._task
            if task is not None:
                await asyncio.wait([task], timeout=max(0.0, deadline - time.monotonic()))
                if not task.done():
                    break
                # A flush that leaves more than one batch starts the next one itself.
                continue
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._retrying = False
            if not (self._events or self._deltas or self._settled):
                return []
            if time.monotonic() >= deadline or (
                self.memory_full and not (self._deltas or self._settled)
            ):
                break  # (Redis full: the events go back to the caller, to the database)
            self._task = asyncio.get_running_loop().create_task(self._flush())
            if not await self._task:
                await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        return self._abandon()

    def _abandon(self) -> list[bytes]:
        """Forget everything held (past the shutdown deadline): the audit events are
        returned, in order (the flush in flight's first: it may yet land in Redis, and
        the database stores an event once either way)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        events, self._sending, self._events = [*self._sending, *self._events], [], []
        self._inflight = 0
        self._spread()
        held = [*self._sending_deltas.values(), *self._deltas.values()]
        self._sending_deltas, self._deltas = {}, {}
        corrections = sum(1 for delta in held if delta)
        if corrections:
            log.error(
                "shutting down with %d counter corrections Redis did not confirm (unreachable): "
                "unless they were applied, those counters keep what their requests reserved "
                "until their window or budget period ends",
                corrections,
            )
        return events


class RedisGovernanceState:
    """Counters, reservations and the audit stream in Redis.

    The request path goes through ``hot`` (a :class:`RespClient`): ``reserve``
    admits from this replica's chunks (``admission``) or makes one script call
    (:meth:`reserve_exact`); ``settle`` only queues for the :class:`SettleBatcher`.
    The audit reader's blocking reads and its acknowledgements use ``reader`` (by
    default ``hot``'s settings on a connection of its own: a blocked read would
    stall the hot path's), a :class:`RespClient` too: redis-py spent ~7 CPU µs per
    event there (``bench/audit_drain.py``). Admin reads use ``client`` (redis-py).
    """

    def __init__(
        self,
        client: Any,
        hot: RespClient,
        *,
        reader: RespClient | None = None,
        claim_idle_s: float = 30.0,
        prefix: str = _PREFIX,
        flush_interval_s: float = 0.02,
        flush_items: int = 256,
        max_held: int = 100_000,
        buffer_below_memory: float | None = None,
        leased: bool = False,
        admission: AdmissionConfig | None = None,
        share_floor_ppm: int | None = None,
    ) -> None:
        self.client = client
        # Connects on the first audit read: only the drainer's state ever does.
        self.reader = reader if reader is not None else hot.clone()
        # The global governance plane: each budget is also limited by this cloud's lease,
        # and (with a floor) each rate limit is this cloud's share of it.
        self.leased = leased
        self.share_floor = share_floor_ppm
        self.hot = hot
        self.prefix = prefix
        self.stream = prefix + STREAM
        self.depth_key = self.stream + DEPTH_SUFFIX
        self.v2_stream = prefix + V2_STREAM
        self.legacy_stream = prefix + LEGACY_STREAM
        # The older streams' keys by the mark of their ids (read, claimed, acknowledged).
        self.older_streams = {mark: prefix + name for mark, name in OLDER_STREAMS}
        self._marks = {key: mark for mark, key in self.older_streams.items()}
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.legacy_claim_every_s = LEGACY_CLAIM_EVERY_S
        self._legacy_claim_at = 0.0  # (monotonic) when to claim on the older streams next
        # Events per entry of the current stream, as last read: each XREADGROUP's COUNT is
        # chosen from it (an older stream's entry is one event).
        self.events_per_entry = 1.0
        self.claim_every_s = min(CLAIM_EVERY_S, claim_idle_s / 2)
        self._claim_at = 0.0  # (monotonic) when to claim on the current stream next
        # Entries this consumer read and has not acknowledged (a failed database write, or
        # a process that read before): the next pass re-reads its pending list first. None:
        # not known (at start, after the group was recreated): look.
        self._unacked: int | None = None
        # Entries stored and acknowledged with the next read (ack_later), once Redis is
        # known to hold the acknowledgement script (the first one is sent alone).
        self._ack_queued: list[str] | None = None
        self._ack_loaded = False
        self._more = False  # (audit_more) the last read stopped at the bound
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._reserve = hot.script(_RESERVE)
        self._ack = self.reader.script(_ACK)
        self.batcher = SettleBatcher(
            hot,
            self.stream,
            interval_s=flush_interval_s,
            max_items=flush_items,
            max_held=max_held,
            memory_below=buffer_below_memory,
            depth_key=self.depth_key,
        )
        self._group_ready = False
        admission = AdmissionConfig() if admission is None else admission
        self.admission = (
            Admission(self.reserve_exact, self._give_back, prefix, admission)
            if admission.enabled
            else None
        )
        self._on_reservation: Callable[[str], None] | None = None

    @property
    def on_reservation(self) -> Callable[[str], None] | None:
        """(metrics) Called with the path of each reservation script call: ``exact`` (a
        request checked in Redis: near a limit, admission off, or no chunk fits),
        ``refill`` (a request's own, with chunks) or ``ahead`` (chunks topped up in the
        background)."""
        return self._on_reservation

    @on_reservation.setter
    def on_reservation(self, note: Callable[[str], None] | None) -> None:
        self._on_reservation = note
        if self.admission is not None:
            self.admission.on_round_trip = note

    @classmethod
    def from_url(
        cls,
        url: str,
        ca_file: str | None = None,
        *,
        max_connections: int = 8,
        credential: EntraRedisCredential | None = None,
        **kwargs: Any,
    ) -> RedisGovernanceState:
        """A state on new clients for ``url`` (``rediss://`` + ``ca_file`` for TLS;
        ``credential`` for Entra tokens instead of the URL's password)."""
        return cls(
            redis_client(url, ca_file, max_connections=max_connections, credential=credential),
            RespClient.from_url(url, ca_file, credential=credential),
            **kwargs,
        )

    async def reserve(
        self,
        rate: tuple[RateItem, ...],
        budgets: tuple[BudgetItem, ...],
        now: float,
        shape: Shape | None = None,
    ) -> Decision:
        if self.admission is not None:
            return await self.admission.reserve(rate, budgets, now, shape)
        if self.on_reservation is not None:
            self.on_reservation("exact")
        return await self.reserve_exact(rate, budgets, now)

    def _give_back(self, deltas: list[tuple[str, int]]) -> None:
        self.batcher.add(deltas, None)

    def invalidate(self) -> None:
        """Limits or keys changed: return this replica's chunks of headroom."""
        if self.admission is not None:
            self.admission.invalidate()

    def admit(self, shape: Shape, tokens: int, nusd: int, now: float) -> Decision | None:
        if self.admission is None:
            return None
        return self.admission.admit(shape, tokens, nusd, now)

    async def reserve_exact(
        self, rate: tuple[RateItem, ...], budgets: tuple[BudgetItem, ...], now: float
    ) -> Decision:
        """One round trip: the reservation script checks and reserves the amounts given."""
        minute = int(now // WINDOW_S)
        keys: list[str] = []
        leased = self.leased and bool(budgets)
        args: list[Any] = [repr(now), len(rate), len(budgets), WINDOW_S, "1" if leased else "0"]
        for item in rate:
            keys.append(self.prefix + rate_key(item, minute))
            keys.append(self.prefix + rate_key(item, minute - 1))
            args += [item.limit, item.amount]
        for budget in budgets:
            keys.append(self.prefix + budget_key(budget))
            args += [budget.limit_nusd, budget.amount_nusd, budget.ttl_s]
        if leased:
            keys += [self.prefix + lease_key(budget) for budget in budgets]
        shared = self.share_floor is not None and bool(rate)
        if shared:
            keys += [self.prefix + share_key(item) for item in rate]
            args += ["1", self.share_floor]

        def release(reply: Any) -> None:
            # The caller was cancelled (client gone, shutdown) after the script was
            # sent: it never learns of this reservation, so release it here, once.
            if isinstance(reply, list) and int(reply[0]) == 1:
                log.info("a request cancelled during admission: releasing its reservation")
                self.batcher.add(release_deltas(self.prefix, rate, budgets, minute), None)

        reply = await self._reserve.call_or_hand_off(keys, args, release)
        if int(reply[0]) == 1:
            values = [float(_text(u)) for u in reply[6:]]
            if shared:
                n = len(rate)
                return Decision(
                    True, rate, budgets, minute, rate_used=values[:n], rate_limits=values[n:]
                )
            return Decision(True, rate, budgets, minute, rate_used=values)
        kind, index = _text(reply[1]), int(reply[2]) - 1
        used, prev, into = float(_text(reply[3])), float(_text(reply[4])), float(_text(reply[5]))
        if kind == "r":
            item = rate[index]
            limit = float(_text(reply[6])) if shared else float(item.limit)
            return Decision(
                False,
                refused=item,
                used=used,
                retry_after_s=retry_after(used, item.amount, limit, prev, into),
                rate_limits=[limit] if shared else [],
            )
        # 'l': within the budget but past this cloud's lease (``prev`` carries the holding).
        return Decision(
            False, refused=budgets[index], used=used, lease_held=prev if kind == "l" else None
        )

    async def settle(
        self, decision: Decision | None, tokens_delta: int, cost_delta_nusd: int, event: bytes
    ) -> None:
        self.settle_nowait(decision, tokens_delta, cost_delta_nusd, event)

    def settle_nowait(
        self, decision: Decision | None, tokens_delta: int, cost_delta_nusd: int, event: bytes
    ) -> None:
        if decision is None or not decision.allowed:
            self.batcher.add((), event)
            return
        keys = decision.keys  # admission's, for decision.minute: none to format
        if keys is not None:
            counted = decision.counted or counted_of(decision.rate, decision.budgets)
            self.batcher.add_settled(keys, counted, tokens_delta, cost_delta_nusd, event)
            return
        deltas: list[tuple[str, int]] = []
        if tokens_delta:
            for item in decision.rate:
                if item.kind == "tpm":
                    deltas.append((self.prefix + rate_key(item, decision.minute), tokens_delta))
        if cost_delta_nusd:
            for budget in decision.budgets:
                deltas.append((self.prefix + budget_key(budget), cost_delta_nusd))
        self.batcher.add(deltas, event)

    def mark_lines(self, layout: bytes) -> None:
        self.batcher.layout = layout

    async def flush(self) -> list[bytes]:
        if self.admission is not None:
            await self.admission.quiesce()  # no top-up lands after the release
            self.admission.release_all()
        return await self.batcher.drain()

    async def append(self, event: bytes) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.stream, {"n": 1, "b": entry_block([event])})
            pipe.incrby(self.depth_key, 1)
            await pipe.execute()

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        for stream in (self.stream, *self.older_streams.values()):
            try:
                await self.reader.execute("XGROUP", "CREATE", stream, GROUP, "0", "MKSTREAM")
            except Exception as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._group_ready = True

    async def read_audit(self, count: int, block_s: float) -> list[tuple[str, bytes]]:
        events: list[tuple[str, bytes]] = []
        for entry in await self.read_audit_entries(count, block_s):
            lines = entry.block.split(b"\n")
            if lines[-1] == b"":
                del lines[-1]
            # (a JSON object as it was buffered; a COPY line with its newline)
            events += [(entry.id, line if line[:1] == b"{" else line + b"\n") for line in lines]
        return events

    async def read_audit_entries(self, count: int, block_s: float) -> list[AuditEntry]:
        try:
            return await self._read_audit(count, block_s)
        except Exception as exc:
            if not _no_group(exc):
                raise
            # Redis restarted empty (or the stream was deleted): the group is gone and
            # XREADGROUP would fail forever. Recreate it from the stream's start, so the
            # events queued since (XADD recreated the stream) are all read.
            log.warning(
                "the audit stream's consumer group is gone (Redis restarted?); recreating it"
            )
            self._group_ready = False
            self._unacked = None
            return await self._read_audit(count, block_s)

    async def _read_audit(self, count: int, block_s: float) -> list[AuditEntry]:
        await self._ensure_group()
        streams = (self.stream, *self.older_streams.values())
        # 1. ours, read before but not acknowledged (the database write failed; or unknown)
        entries: list[AuditEntry] = []
        more_pending = False
        if self._unacked != 0:
            more_pending = await self._fill(entries, dict.fromkeys(streams, "0"), count)
        now = time.monotonic()
        if not entries and now >= self._claim_at:
            # 2. those of a replica that died with events pending, once they are claimable
            # (now and then; the older streams': old replicas only, less often)
            want = self._count(count, self.events_per_entry)
            claimed = await self._read_call(
                "XAUTOCLAIM", self.stream, GROUP, self.consumer, self.claim_idle_ms, "0-0",
                "COUNT", want,
            )  # fmt: skip
            entries += self._entries(self.stream, claimed[1] if claimed else [])
            # A full read claimed: there may be more, look again on the next pass.
            full = bool(claimed) and len(claimed[1]) >= want
            self._claim_at = now + (0.0 if full else self.claim_every_s)
            if not entries and now >= self._legacy_claim_at:
                self._legacy_claim_at = now + self.legacy_claim_every_s
                claim = ("XAUTOCLAIM", GROUP, self.consumer, self.claim_idle_ms, "0-0")
                replies = await self.reader.pipeline(
                    [
                        (claim[0], key, *claim[1:], "COUNT", count)
                        for key in self.older_streams.values()
                    ]
                )
                for key, reply in zip(self.older_streams.values(), replies, strict=True):
                    if isinstance(reply, ReplyError):
                        raise reply
                    entries += self._entries(key, reply[1] if reply else [])
        # 3. new ones: wait for the first (unless there are some), then take what is there
        # up to ``count`` events
        more_new = await self._fill(entries, dict.fromkeys(streams, ">"), count, block_s)
        # At most ``count`` events (or the first entry's): those past it stay pending, read
        # again by the next pass.
        kept, events = 0, 0
        for entry in entries:
            if kept and events + entry.events > count:
                break
            kept += 1
            events += entry.events
        self._unacked = kept if kept == len(entries) and not more_pending else None
        self._more = kept < len(entries) or more_pending or more_new
        del entries[kept:]
        return entries

    @property
    def audit_more(self) -> bool:
        return self._more

    @staticmethod
    def _count(events: int, per_entry: float) -> int:
        """An XREADGROUP's COUNT for ``events`` more events at ``per_entry`` each."""
        return max(1, min(READ_CHUNK, int(events / per_entry)))

    async def _fill(
        self,
        entries: list[AuditEntry],
        after: dict[str, str],
        count: int,
        block_s: float | None = None,
    ) -> bool:
        """Add to ``entries`` what ``after``'s streams hold past each one's id (``0``: this
        consumer's pending entries; ``>``: new ones) until ``count`` events are read or the
        next entry would likely not fit; ``block_s``: wait that long for a first entry when
        ``entries`` is empty. Each reply holds at most :data:`READ_CHUNK` entries per
        stream (parsed on the event loop, between the requests it serves). True if it
        stopped with entries perhaps left to read (a batch full)."""
        events = sum(entry.events for entry in entries)
        while after:
            # Entries of the current stream hold what a flush held; an older one's, one event.
            per_entry = self.events_per_entry if self.stream in after else 1.0
            if entries and count - events < per_entry:
                break
            want = self._count(count - events, per_entry)
            block: tuple[Any, ...] = ()
            if block_s is not None and not entries:
                block = ("BLOCK", max(1, int(block_s * 1000)))
            reply = await self._read_call(
                "XREADGROUP", "GROUP", GROUP, self.consumer, "COUNT", want, *block, "STREAMS",
                *after, *after.values(),
            )  # fmt: skip
            for stream, got in self._by_stream(reply, tuple(after)):
                new = self._entries(stream, got)
                if stream == self.stream and new:
                    self.events_per_entry = max(1.0, sum(e.events for e in new) / len(new))
                entries += new
                events += sum(entry.events for entry in new)
                if len(got) < want:
                    del after[stream]
                elif after[stream] != ">":
                    after[stream] = _text(got[-1][0])
            if block and not entries:
                break  # nothing arrived while it waited
        return bool(after)

    @staticmethod
    def _by_stream(reply: Any, streams: tuple[str, ...]) -> list[tuple[str, list[Any]]]:
        """An XREADGROUP reply's entries for each of ``streams`` (none for a stream the
        reply leaves out), in that order."""
        got = {_text(name): entries for name, entries in reply or ()}
        return [(stream, got.get(stream) or []) for stream in streams]

    def _entries(self, stream: str, entries: list[Any]) -> list[AuditEntry]:
        # RESP2: fields as a flat list. An entry deleted while pending comes back without
        # fields. An older stream's entry is one event (its id marked, for ``ack``).
        if stream != self.stream:
            mark = self._marks[stream]
            return [
                AuditEntry(mark + entry_id.decode(), 1, fields[1])
                for entry_id, fields in entries
                if fields
            ]
        read: list[AuditEntry] = []
        for entry_id, fields in entries:
            if not fields:
                continue
            # Ours: n, b, and (COPY lines of one layout, marked by the writer) l.
            if len(fields) == 4 and fields[0] == b"n":
                read.append(AuditEntry(entry_id.decode(), int(fields[1]), fields[3]))
                continue
            if len(fields) == 6 and fields[0] == b"n" and fields[4] == b"l":
                read.append(AuditEntry(entry_id.decode(), int(fields[1]), fields[3], fields[5]))
                continue
            named = dict(zip(fields[::2], fields[1::2], strict=False))
            if b"b" in named and b"n" in named:
                read.append(
                    AuditEntry(
                        entry_id.decode(), int(named[b"n"]), named[b"b"], named.get(b"l", b"")
                    )
                )
            elif b"e" in named:  # one event, as the release before wrote it
                read.append(AuditEntry(entry_id.decode(), 1, named[b"e"]))
            else:
                # Not an audit entry: acknowledged with the batch (nothing to store).
                log.error("dropping an unreadable audit entry %s: %r", entry_id, fields[:4])
                read.append(AuditEntry(entry_id.decode(), 0, b""))
        return read

    def _ack_call(self, ids: list[str]) -> tuple[list[Any], list[Any], int]:
        """The acknowledgement script's keys and arguments for ``ids``, and how many
        entries it names."""
        current: list[str] = []
        older: dict[str, list[str]] = {mark: [] for mark in self.older_streams}
        for entry_id in dict.fromkeys(ids):  # (read_audit repeats an entry's id per event)
            if entry_id[:1].isdigit():
                current.append(entry_id)
            else:
                mark = entry_id[: entry_id.index(":") + 1]
                older[mark].append(entry_id[len(mark) :])
        keys: list[Any] = [self.stream, self.depth_key, *self.older_streams.values()]
        args: list[Any] = [GROUP, len(current), *(len(v) for v in older.values()), *current]
        for marked in older.values():
            args += marked
        return keys, args, len(current) + sum(map(len, older.values()))

    def _lost_group(self) -> None:
        """Redis lost the group (and the entries acknowledged) after we read them: they
        are in the database; nothing is pending in a group recreated since."""
        self._group_ready = False
        self._unacked = None

    async def ack(self, ids: list[str]) -> None:
        if not ids:
            return
        keys, args, named = self._ack_call(ids)
        try:
            await self._ack(keys, args)
        except Exception as exc:
            if not _no_group(exc):
                raise
            self._lost_group()
            return
        if self._unacked is not None:
            self._unacked = max(0, self._unacked - named)

    def ack_later(self, ids: list[str]) -> None:
        if not ids:
            return
        named = self._ack_call(ids)[2]
        self._ack_queued = [*(self._ack_queued or ()), *ids]
        # The read it goes with runs after it in Redis: none of these is pending then.
        if self._unacked is not None:
            self._unacked = max(0, self._unacked - named)

    async def _read_call(self, *command: Any) -> Any:
        """``command`` on the reader's connection, after the acknowledgement
        :meth:`ack_later` queued, if any, in the same write (one round trip for both)."""
        queued, self._ack_queued = self._ack_queued, None
        if queued is None:
            return await self.reader.execute(*command)
        keys, args, _ = self._ack_call(queued)
        if not self._ack_loaded:
            # Redis may not hold the script yet (EVALSHA would fail, and the read after it
            # run without the acknowledgement): the first is sent alone (EVAL on NOSCRIPT).
            try:
                await self._ack(keys, args)
            except BaseException as exc:
                if not isinstance(exc, Exception) or not _no_group(exc):
                    self._unacked = None  # its fate unknown: read this reader's again
                    raise
                self._lost_group()
            self._ack_loaded = True
            return await self.reader.execute(*command)
        try:
            acked, reply = await self.reader.pipeline([self._ack.command(keys, args), command])
        except BaseException:
            # The acknowledgement's fate is unknown: this reader's pending entries are
            # read again (and stored again: a row stored before is skipped).
            self._unacked = None
            raise
        if self._ack.noscript(acked):
            # Redis lost its scripts (a restart, SCRIPT FLUSH): the read ran before the
            # acknowledgement, now made. A pending read may have returned these entries
            # again (stored again: each row stored before is skipped).
            acked = (await self.reader.pipeline([self._ack.eval_command(keys, args)]))[0]
            self._unacked = None
        if isinstance(acked, ReplyError):
            if _no_group(acked):
                self._lost_group()
            else:
                log.warning("acknowledging stored audit entries failed (%s): read again", acked)
                self._unacked = None
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def spent_nusd(self, scope: str, period: str, period_id: str) -> int:
        key = f"{self.prefix}b:{scope}:{period}:{period_id}"
        value = int(await self.client.get(key) or 0)
        # Headroom this replica holds unused is not spent, nor reserved by a request.
        return value - (self.admission.held(key) if self.admission is not None else 0)

    async def audit_depth(self) -> int:
        # The shared streams' events (every replica's until a drainer acknowledges them:
        # the current stream's counter, as its entries hold many; the older streams' one
        # per entry, of older replicas) plus what this replica holds before its next flush.
        # Read on the batcher's own connection, the events waiting counted as the read is
        # written: Redis runs a flush already written before the read, so each event is
        # counted once, in Redis or here. (On another connection, a flush in flight could
        # be missed by both, or counted by both, as the replies raced.)
        unsent = self.batcher.unsent
        counted, *lengths = await self.hot.pipeline(
            [("GET", self.depth_key), *(("XLEN", key) for key in self.older_streams.values())]
        )
        for reply in (counted, *lengths):
            if isinstance(reply, Exception):
                raise reply
        return max(0, int(counted or 0)) + sum(int(n) for n in lengths) + unsent

    def record_floors(self, every_s: float = 1.0) -> None:
        """Have this replica's batcher record its floor (:meth:`SettleBatcher.heartbeat`)
        in the cloud's ``{prefix}audit-floor`` hash, for :meth:`oldest_audit_s`. The
        global plane's follower clouds call it at start (on the event loop)."""
        self.batcher.heartbeat(self.prefix + "audit-floor", self.consumer, every_s)

    async def oldest_audit_s(self) -> float | None:
        """A time before which every audit event of this cloud is in its database, as a
        Unix time; None when nothing says otherwise. The global plane's audit shipper never
        claims its cloud complete past it. It is the lowest of:

        - when the oldest event still in the shared streams (not yet stored by a drainer:
          stored ones are deleted; the older streams' too) was added (its entry id's
          milliseconds): events wait there while the cloud's database is down, and for a
          while after as the drainers catch up;
        - with :meth:`record_floors`, every replica's floor: a replica that cannot reach
          Redis holds its events in memory with their times, and adds them to the stream
          later, under new ids; its floor, recorded before, stays below them. A floor not
          renewed for :data:`FLOOR_STALE_S` is a replica gone (a clean shutdown removes its
          own): it is removed and logged, so a dead replica holds the claim back no
          longer than that.
        """
        async with self.client.pipeline(transaction=False) as pipe:
            for key in (self.stream, *self.older_streams.values()):
                pipe.xrange(key, count=1)
            replies = await pipe.execute()
        firsts = [_text(entries[0][0]) for entries in replies if entries]
        oldest = (
            min(int(entry_id.split("-", 1)[0]) for entry_id in firsts) / 1000.0 if firsts else None
        )
        beat_key = self.batcher.beat_key
        if beat_key is None:
            return oldest
        stale = time.time() - FLOOR_STALE_S
        for replica, value in (await self.client.hgetall(beat_key)).items():
            floor = float(value)
            if floor < stale:
                name = _text(replica)
                log.warning(
                    "replica %s recorded no audit floor for %.0f s: taken as gone (its "
                    "unwritten audit events, if it ever writes them, may arrive after this "
                    "cloud was reported complete past them)",
                    name,
                    time.time() - floor,
                )
                await self.client.hdel(beat_key, name)
                continue
            oldest = floor if oldest is None else min(oldest, floor)
        return oldest

    async def close(self) -> None:
        if self.admission is not None:
            await self.admission.quiesce()
            self.admission.stop()
        lost = await self.batcher.drain()
        if lost:
            log.error(
                "shutting down with %d audit events not written to Redis: they are lost",
                len(lost),
            )
        await self.batcher.forget_floor(remove=not lost)
        await self.hot.aclose()
        await self.reader.aclose()
        await self.client.aclose()


FLOOR_STALE_S = 600.0
"""A replica's audit floor not renewed for this long is taken as a replica gone."""


def entry_block(events: list[bytes]) -> bytes:
    """``events`` as one stream entry's block: concatenated, each newline-terminated (a
    ``COPY`` line ends in one already: the common block is one C join, checked by one
    count; a JSON object gets one, orjson never writes a raw newline)."""
    block = b"".join(events)
    if block.count(10) != len(events):
        block = b"".join(event if event[-1:] == b"\n" else event + b"\n" for event in events)
    return block


def _no_group(exc: BaseException) -> bool:
    return "NOGROUP" in str(exc)


def release_deltas(
    prefix: str, rate: tuple[RateItem, ...], budgets: tuple[BudgetItem, ...], minute: int
) -> list[tuple[str, int]]:
    """The corrections that undo a whole reservation (rate units and budget amounts)."""
    deltas = [(prefix + rate_key(item, minute), -item.amount) for item in rate]
    deltas += [(prefix + budget_key(budget), -budget.amount_nusd) for budget in budgets]
    return deltas


def redis_client(
    url: str,
    ca_file: str | None = None,
    credential: EntraRedisCredential | None = None,
    **options: Any,
) -> Any:
    """An asyncio Redis client; ``rediss://`` verifies the server against ``ca_file``;
    ``credential`` authenticates (and re-authenticates pooled connections) with Entra tokens."""
    import redis.asyncio as redis

    url, auth = redis_py_arguments(url, credential)
    options.update(auth)
    if url.startswith("rediss://") and ca_file:
        options["ssl_ca_certs"] = ca_file
    options.setdefault("socket_connect_timeout", 5.0)
    options.setdefault("socket_timeout", 5.0)
    options.setdefault("health_check_interval", 15)
    # Requests beyond the pool wait for a connection instead of failing.
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=options.pop("max_connections", 64), timeout=10, **options
    )
    # The provider is named to the client too: that is where redis-py subscribes the
    # pool to the provider's renewed tokens (re-AUTH of pooled connections).
    return redis.Redis(connection_pool=pool, credential_provider=auth.get("credential_provider"))
