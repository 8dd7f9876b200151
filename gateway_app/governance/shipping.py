"""Audit shipping: one replica of each follower cloud ships the cloud's stored events to
the home (docs/explanation/global-governance.md, "Audit").

Every replica of a follower stores its events in the cloud's PostgreSQL; the shipper
sends the unshipped ones, oldest first, to the home (``POST /internal/v1/audit``) and
marks them shipped only after the home's answer. Three things make it fit a cloud serving
tens of thousands of requests per second (``bench/audit-shipping.md``):

* **One shipper per cloud.** The replicas share a lease in the cloud's Redis (the
  governance state's, which the plane always has): ``SET <prefix>audit-shipper <token>
  NX PX <ttl>`` takes it, the holder renews it every ``renew_s`` with a compare-and-extend
  script and deletes it (compare-and-delete) when it stops. The others stand by and
  try every ``renew_s``: a stopped shipper is replaced within ``renew_s``, a dead one
  within ``ttl_s + renew_s``. A holder that cannot renew stops shipping when its lease
  would expire (counted from before its last renewal was sent), so two shippers overlap
  only while a batch already sent completes: harmless, since the home stores each event
  once whatever the copies (``audit.store_shipped``), and marking an event shipped twice
  marks it once.
* **Large batches.** A batch is ``audit_ship_batch`` events (2,000 by default), cut
  short at ``max_body`` bytes so it always fits the home's internal body limit.

* **A pipeline.** While a batch is on its way, the one before is marked shipped and
  the next is selected (:class:`AuditShipper`).

``through`` (the time before which this cloud has shipped everything) never claims
more than the home has: batches are sent one after the other, each after the home
stored the one before; an event still in the cloud's buffer (Redis) is covered by the
oldest entry the buffer holds, and one still in a replica's memory (Redis unreachable
from it) by that replica's floor (``oldest_buffered``,
:meth:`~gateway_app.state.governance_redis.RedisGovernanceState.oldest_audit_s`), and
one stored late by a slow drainer by ``buffer_lag_s``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from gateway_app.aio import pause
from gateway_app.governance import audit
from gateway_app.governance.storage import ConnectionName, Database

log = logging.getLogger("gateway_app.governance")

LEASE_TTL_S = 5.0
"""How long the shipper lease lasts unrenewed: a dead shipper is replaced after this."""
LEASE_RENEW_S = 1.0
"""How often the holder renews the lease and the others try to take it."""

# KEYS[1] the lease; ARGV[1] the holder's token, ARGV[2] the lease's time to live (ms).
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class ShipperLease:
    """The cloud's audit-shipper lease in its Redis: at most one holder at a time."""

    def __init__(
        self,
        redis: Any,
        key: str,
        *,
        ttl_s: float = LEASE_TTL_S,
        renew_s: float = LEASE_RENEW_S,
    ) -> None:
        if not 0 < renew_s < ttl_s:
            raise ValueError(f"renew_s ({renew_s}) must be above 0 and below ttl_s ({ttl_s})")
        self.redis = redis  # redis-py asyncio client of this cloud's Redis
        self.key = key
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.token = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(6)}"
        self._extend = redis.register_script(_EXTEND)
        self._release = redis.register_script(_RELEASE)
        self._until = 0.0  # monotonic time this process's lease surely lasts until

    @property
    def held(self) -> bool:
        """Whether this process holds the lease now (by its own clock, conservatively)."""
        return time.monotonic() < self._until

    async def renew(self) -> bool:
        """Take the lease if it is free, extend it if this process holds it; whether it
        does now. A Redis error propagates (and the lease lapses by its own clock)."""
        sent = time.monotonic()
        ttl_ms = int(self.ttl_s * 1000)
        # Extend first: after a missed renewal this process may still be the holder.
        held = bool(await self._extend(keys=[self.key], args=[self.token, ttl_ms]))
        if not held:
            held = bool(await self.redis.set(self.key, self.token, nx=True, px=ttl_ms))
        # Redis started the lease after ``sent``: counting from ``sent`` is conservative.
        self._until = sent + self.ttl_s if held else 0.0
        return held

    async def release(self) -> None:
        """Give the lease up (only if this process holds it), so another replica takes
        over within ``renew_s`` instead of ``ttl_s``."""
        self._until = 0.0
        await self._release(keys=[self.key], args=[self.token])


Post = Callable[[bytes], Awaitable[None]]
"""Sends one batch's body to the home; returns once the home has stored it (raises if not)."""


class AuditShipper:
    """Ships this cloud's stored audit events to the home while it holds the lease.

    Batches go one after the other (each sent once the home stored the one before), and
    while one is on its way the one before is marked shipped (on a connection of its
    own) and the next is selected past it (``ts``, ``event_id``), so a batch never holds
    an event still being marked. A sweep of batches ends when one holds all there was;
    the next starts again from the oldest unshipped event (once every mark is in), so
    an event a slow drainer stored late, older than the batches before, is shipped
    then."""

    def __init__(
        self,
        db: Database,
        post: Post,
        lease: ShipperLease | None,
        *,
        batch: int,
        interval_s: float,
        max_body: int,
        buffer_lag_s: float = 2.0,
        oldest_buffered: Callable[[], Awaitable[float | None]] | None = None,
    ) -> None:
        self.db = db
        self.post = post
        self.lease = lease  # None: the only process of its cloud ships (tests, one replica)
        self.batch = batch
        self.interval_s = interval_s
        self.max_body = max_body
        self.buffer_lag_s = buffer_lag_s
        # When the oldest event still in the cloud's buffer (Redis) was added, if any: an
        # outage of the cloud's database keeps events there for minutes, and ``through``
        # must not pass them while they are.
        self.oldest_buffered = oldest_buffered
        self.shipped = 0  # events the home has stored from this process's batches
        self.batches = 0
        self.caught_up = False  # the last batch held everything stored here
        # PostgreSQL: marks go over a second connection, alongside the next batch's select
        # (one connection runs one statement at a time). SQLite: the same connection.
        self._mark_db = db.another(ConnectionName.AUDIT_SHIPPER) if db.kind == "postgres" else db
        self._marking: asyncio.Future[None] | None = None
        self._marks_open = False  # the marks' own connection may be open (PostgreSQL)
        # The sweep's next batch, selected past the last one while that one is sent.
        self._next: asyncio.Future[list[dict[str, Any]]] | None = None
        self._sweep_at = 0.0  # when the sweep's first batch was selected
        # What every event not selected by the sweep is newer than (less the buffer lag):
        # the sweep's start, or the oldest event then still in the buffer if older.
        self._sweep_floor = 0.0

    @property
    def shipping(self) -> bool:
        """Whether this process is the cloud's shipper now."""
        return self.lease is None or self.lease.held

    async def run(self) -> None:
        """Ship while holding the lease (renewed alongside), until cancelled."""
        renewer = None
        if self.lease is not None:
            renewer = asyncio.get_running_loop().create_task(self._keep_lease(self.lease))
        backoff = 0.05
        try:
            while True:
                if not self.shipping:
                    try:
                        await self._end_sweep()  # a shipper taking over starts from the oldest
                        await self.marked()
                        await self._close_marks()
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        # The last mark failed as the lease went (the database, say): its
                        # events stay unmarked and are shipped again, stored once at the
                        # home. This replica stays a candidate for the lease.
                        log.warning(
                            "audit shipper: the last batch's mark failed (%s: %s); it is "
                            "shipped again",
                            type(exc).__name__,
                            exc,
                        )
                    await pause(self.lease.renew_s if self.lease else self.interval_s)
                    continue
                try:
                    await self.ship_once()
                    backoff = 0.05
                    if self.caught_up:
                        await pause(self.interval_s)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("audit shipping failed (%s: %s)", type(exc).__name__, exc)
                    await self._end_sweep()
                    await pause(backoff)
                    backoff = min(5.0, backoff * 2)
        finally:
            if renewer is not None:
                renewer.cancel()
                await asyncio.wait([renewer], timeout=1.0)

    async def _keep_lease(self, lease: ShipperLease) -> None:
        was = False
        while True:
            try:
                now = await lease.renew()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = lease.held  # what is left of a lease renewed before
                if was:
                    log.warning(
                        "audit shipper lease not renewed (%s: %s); shipping stops when it lapses",
                        type(exc).__name__,
                        exc,
                    )
            if now != was:
                log.info(
                    "audit shipper lease %s by this replica (%s)",
                    "taken" if now else "lost",
                    lease.token,
                )
                was = now
            # (A renewal's Redis call may drop the renewer's cancellation, when the
            # shipper stops: it stops here, not renewing a lease no one ships under.)
            await pause(lease.renew_s)

    async def stop(self) -> None:
        """At shutdown, after :meth:`run` was cancelled: wait (bounded) for the last mark,
        close the marks' connection, give the lease up so another replica takes over
        within ``renew_s``. A failure only delays the takeover (or ships a batch again)."""
        await self._end_sweep()
        if self._marking is not None:
            await asyncio.wait([self._marking], timeout=5.0)
        if self._mark_db is not self.db:
            await asyncio.to_thread(self._mark_db.close)
        if self.lease is None or not self.lease.held:
            return
        try:
            async with asyncio.timeout(1.0):
                await self.lease.release()
        except Exception as exc:
            log.warning("audit shipper lease not released (%s: %s)", type(exc).__name__, exc)

    async def _close_marks(self) -> None:
        """Close the marks' connection once this replica no longer ships: the plan counts
        one shipper connection per follower cloud, the lease holder's
        (``infra/decisions/postgres.py``); a replica that lost the lease to another must
        not keep its own open beside the new holder's."""
        if self._marks_open and self._mark_db is not self.db:
            self._marks_open = False
            await asyncio.to_thread(self._mark_db.close)

    async def marked(self) -> None:
        """Wait until the batch sent last is marked shipped here (its error raised)."""
        marking, self._marking = self._marking, None
        if marking is not None:
            await marking

    def body(self, rows: list[dict[str, Any]]) -> tuple[bytes, int]:
        """A batch's body holding the first of ``rows`` that fit ``max_body`` (at least one)
        and its ``through``; how many of ``rows`` it holds."""
        parts: list[bytes] = []
        size = 64
        for data in rows:
            part = orjson.dumps(data)
            size += len(part) + 1
            if parts and size > self.max_body:
                break
            parts.append(part)
        taken = len(parts)
        # Every event stored here when the sweep began is in this batch or one before
        # it (sent in (ts, event_id) order, each after the home stored the one before),
        # unless it is past this batch's last: then it is not older than that one. An
        # event stored since, or still in the cloud's buffer, was added to the buffer
        # (Redis) at most ``buffer_lag_s`` after it happened: it is not older than the
        # sweep's start, or than the oldest event the buffer held then, less that.
        through = self._sweep_floor - self.buffer_lag_s
        if taken < len(rows) or len(rows) >= self.batch:
            through = min(through, float(rows[taken - 1]["ts"]))
        body = b'{"events":[%s],"through":%s}' % (b",".join(parts), orjson.dumps(through))
        return body, taken

    async def _end_sweep(self) -> None:
        """Drop the next batch selected ahead: the next batch is selected from the oldest."""
        upcoming, self._next = self._next, None
        if upcoming is not None:
            upcoming.cancel()
            await asyncio.wait([upcoming], timeout=5.0)

    async def ship_once(self) -> int:
        """Ship one batch (an empty one too: it says how complete the home's copy is);
        how many events it held. A three-stage pipeline: while the batch is sent, the one
        before it is marked shipped and the next one is selected (past this one)."""
        if self._next is None:
            await self.marked()  # a sweep selects from the oldest: every mark must be in
            self._sweep_at = floor = time.time()
            if self.oldest_buffered is not None:
                # Read before the select: an event drained meanwhile is in the select.
                oldest = await self.oldest_buffered()
                if oldest is not None:
                    floor = min(floor, oldest)
            self._sweep_floor = floor
            rows = await asyncio.to_thread(audit.unshipped, self.db, self.batch)
        else:
            upcoming, self._next = self._next, None
            rows = await upcoming
        body, taken = self.body(rows)
        # Caught up: nothing more was stored here than this batch holds.
        self.caught_up = taken == len(rows) < self.batch
        rows = rows[:taken]
        if not self.caught_up:
            after = (rows[-1]["ts"], rows[-1]["event_id"])
            self._next = asyncio.ensure_future(
                asyncio.to_thread(audit.unshipped, self.db, self.batch, after)
            )
        try:
            await self.post(body)
        except BaseException:
            await self._end_sweep()  # sent again from the sweep's start: stored once
            raise
        await self.marked()  # one mark at a time
        self._marks_open = True
        self._marking = asyncio.ensure_future(
            asyncio.to_thread(audit.mark_shipped, self._mark_db, rows, time.time())
        )
        self.shipped += len(rows)
        self.batches += 1
        return len(rows)
