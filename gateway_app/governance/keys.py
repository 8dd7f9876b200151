"""Virtual keys and limits: durable in the database, served from memory.

A key is ``sk-aigw-<id>-<secret>``; it is returned once at creation (or
rotation) and stored only as HMAC-SHA256 under the server secret
(``AIGW_KEY_HASH_SECRET``), so a database leak reveals no usable key and
hashes cannot be brute-forced offline without the secret.

The hot path never queries the database: every replica keeps all keys and
limits in memory (:class:`Registry`). A change made through the admin API is
applied locally at once and announced on a Redis pub/sub channel; the other
replicas reload the changed record within milliseconds. A full reload every
``key_refresh_s`` seconds bounds the revocation delay if an announcement is lost
(Redis reconnecting): **a revoked key stops working on every replica within
``key_refresh_s`` (default 10 s), usually within milliseconds.** An unknown key
is looked up in the database once (a key created on another replica a moment
ago, before its announcement arrived) and remembered as unknown for
``_NEGATIVE_TTL_S``; such lookups are capped at ``_LOOKUPS_PER_S`` per second.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

import orjson

from gateway_app.aio import pause, stop_if_cancelled
from gateway_app.errors import GatewayError
from gateway_app.governance import changes
from gateway_app.governance.storage import Database, Transaction

log = logging.getLogger("gateway_app.governance")

KEY_PREFIX = "sk-aigw-"
SCOPES = ("org", "team", "project", "key", "customer")
CHANNEL = "{aigw}:gov:changes"
_NEGATIVE_TTL_S = 2.0
_LOOKUPS_PER_S = 50
HASHES_REMEMBERED = 65_536
"""Known keys' stored forms a registry remembers by digest (Registry.authenticate)."""
_RESUBSCRIBE_MAX_S = 30.0  # the longest wait between resubscriptions while Redis is down
_STORE_DOWN_S = 1.0  # after a failed lookup, unknown keys get 503 without asking for this long
RELOAD_LOG_S = 60.0  # while loads of the keys keep failing, one log line this often


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A virtual key as stored (never the key itself)."""

    id: str
    key_hash: str
    team_id: str
    project_id: str
    name: str = ""
    role: str = "member"
    models: tuple[str, ...] | None = None
    expires_at: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    revoked_at: float | None = None

    def usable(self, now: float) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def public(self) -> dict[str, Any]:
        """What the admin API shows (no hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "team_id": self.team_id,
            "project_id": self.project_id,
            "role": self.role,
            "models": list(self.models) if self.models is not None else None,
            "expires_at": self.expires_at,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> KeyRecord:
        models = orjson.loads(row["models"]) if row.get("models") else None
        return cls(
            id=row["id"],
            key_hash=row["key_hash"],
            team_id=row["team_id"],
            project_id=row["project_id"],
            name=row.get("name") or "",
            role=row.get("role") or "member",
            models=tuple(models) if models is not None else None,
            expires_at=row.get("expires_at"),
            metadata=orjson.loads(row.get("metadata") or "{}"),
            created_at=row.get("created_at") or 0.0,
            revoked_at=row.get("revoked_at"),
        )


@dataclass(frozen=True, slots=True)
class Limit:
    """Budgets (USD per UTC day / month) and rate limits (per minute) of one scope."""

    scope: str
    scope_id: str
    daily_usd: float | None = None
    monthly_usd: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    team_id: str | None = None  # owner, for team admins' access to project/key limits

    def public(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "scope_id": self.scope_id,
            "daily_usd": self.daily_usd,
            "monthly_usd": self.monthly_usd,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "team_id": self.team_id,
        }


def new_key() -> tuple[str, str]:
    """A fresh (key id, full key)."""
    key_id = "key_" + secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}{key_id}-{secrets.token_urlsafe(32)}"


def hash_key(secret: bytes, key: str) -> str:
    """The stored form of a key."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


class KeyStore:
    """Key and limit records in the database (blocking; run in a thread).

    Every write appends its change to the change feed in the same transaction
    (:mod:`.changes`): the feed the other clouds of a global plane follow."""

    def __init__(self, db: Database, *, epoch: int = 1) -> None:
        self.db = db
        self.epoch = epoch  # the home's generation, recorded with each change

    def _write(self, kind: str, entity_id: str, sql: str, params: tuple[Any, ...]) -> int:
        """One statement and its change, in one transaction; the rows it changed (no change
        is recorded when it changed none)."""

        def work(tx: Transaction) -> int:
            count = tx.execute(sql, params)
            if count > 0:
                changes.record(tx, kind, entity_id, self.epoch)
            return count

        return self.db.transaction(work)

    def insert(self, record: KeyRecord) -> None:
        self._write(
            "key",
            record.id,
            "INSERT INTO virtual_keys (id, key_hash, name, team_id, project_id, role, models, "
            "expires_at, metadata, created_at, revoked_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                record.id,
                record.key_hash,
                record.name,
                record.team_id,
                record.project_id,
                record.role,
                orjson.dumps(list(record.models)).decode() if record.models is not None else None,
                record.expires_at,
                orjson.dumps(record.metadata).decode(),
                record.created_at,
                record.revoked_at,
            ),
        )

    def get(self, key_id: str) -> KeyRecord | None:
        rows = self.db.fetch("SELECT * FROM virtual_keys WHERE id = ?", (key_id,))
        return KeyRecord.from_row(rows[0]) if rows else None

    def by_hash(self, key_hash: str) -> KeyRecord | None:
        rows = self.db.fetch("SELECT * FROM virtual_keys WHERE key_hash = ?", (key_hash,))
        return KeyRecord.from_row(rows[0]) if rows else None

    def all(self, team_id: str | None = None) -> list[KeyRecord]:
        if team_id is None:
            rows = self.db.fetch("SELECT * FROM virtual_keys ORDER BY created_at")
        else:
            rows = self.db.fetch(
                "SELECT * FROM virtual_keys WHERE team_id = ? ORDER BY created_at", (team_id,)
            )
        return [KeyRecord.from_row(row) for row in rows]

    def revoke(self, key_id: str, when: float) -> bool:
        return (
            self._write(
                "key",
                key_id,
                "UPDATE virtual_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (when, key_id),
            )
            > 0
        )

    def rehash(self, key_id: str, key_hash: str) -> bool:
        return (
            self._write(
                "key",
                key_id,
                "UPDATE virtual_keys SET key_hash = ? WHERE id = ? AND revoked_at IS NULL",
                (key_hash, key_id),
            )
            > 0
        )

    def put_limit(self, limit: Limit) -> None:
        self._write(
            "limit",
            f"{limit.scope}/{limit.scope_id}",
            "INSERT INTO limits (scope, scope_id, daily_usd, monthly_usd, rpm, tpm, team_id) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT (scope, scope_id) DO UPDATE SET "
            "daily_usd = excluded.daily_usd, monthly_usd = excluded.monthly_usd, "
            "rpm = excluded.rpm, tpm = excluded.tpm, team_id = excluded.team_id",
            (
                limit.scope,
                limit.scope_id,
                limit.daily_usd,
                limit.monthly_usd,
                limit.rpm,
                limit.tpm,
                limit.team_id,
            ),
        )

    def delete_limit(self, scope: str, scope_id: str) -> bool:
        return (
            self._write(
                "limit",
                f"{scope}/{scope_id}",
                "DELETE FROM limits WHERE scope = ? AND scope_id = ?",
                (scope, scope_id),
            )
            > 0
        )

    def limits(self) -> list[Limit]:
        return [Limit(**row) for row in self.db.fetch("SELECT * FROM limits")]

    def projects(self) -> dict[str, str]:
        """Project id -> owning team."""
        return {row["id"]: row["team_id"] for row in self.db.fetch("SELECT * FROM projects")}

    def project_owner(self, project_id: str) -> str | None:
        rows = self.db.fetch("SELECT team_id FROM projects WHERE id = ?", (project_id,))
        return rows[0]["team_id"] if rows else None

    def claim_project(self, project_id: str, team_id: str, when: float) -> str:
        """Give an unowned project to ``team_id``; the owner now (the first claim wins)."""
        self._write(
            "project",
            project_id,
            "INSERT INTO projects (id, team_id, created_at) VALUES (?,?,?) "
            "ON CONFLICT (id) DO NOTHING",
            (project_id, team_id, when),
        )
        owner = self.project_owner(project_id)
        assert owner is not None
        return owner

    def team_projects(self, team_id: str | None) -> list[dict[str, Any]]:
        if team_id is None:
            return self.db.fetch("SELECT * FROM projects ORDER BY created_at, id")
        return self.db.fetch(
            "SELECT * FROM projects WHERE team_id = ? ORDER BY created_at, id", (team_id,)
        )


class KeyLookupFailed(Exception):
    """A presented key is not in memory and the key store could not be asked."""


def key_store_unavailable() -> GatewayError:
    """The 503 for :class:`KeyLookupFailed`: the client retries; a 401 would say the key
    is invalid, which it may not be."""
    return GatewayError(
        503,
        "The key store cannot be reached, so this API key cannot be checked right now; "
        "retry shortly.",
        code="key_store_unavailable",
        type="server_error",
        headers={"retry-after": "1"},
    )


async def _close_quietly(pubsub: Any) -> None:
    """Release a failed subscription's connection (errors closing it do not matter)."""
    if pubsub is None:
        return
    try:
        await pubsub.aclose()
    except Exception:
        log.debug("closing a failed key change subscription", exc_info=True)


class Registry:
    """All keys and limits in memory; kept fresh by announcements and periodic reloads."""

    def __init__(
        self,
        store: KeyStore,
        secret: bytes,
        *,
        refresh_s: float = 10.0,
        redis: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.secret = secret
        # hash_key's HMAC keyed once: a copy per request skips setting the key up again.
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)
        # BLAKE2b digest of a presented key -> its stored form (hash_key), for keys that
        # were found (a made-up key adds nothing); at most HASHES_REMEMBERED, then anew.
        self._hashes: dict[bytes, str] = {}
        self.refresh_s = refresh_s
        self.redis = redis
        self.clock = clock  # monotonic seconds: negative-cache expiry and the lookup cap
        self.by_hash: dict[str, KeyRecord] = {}
        self.by_id: dict[str, KeyRecord] = {}
        self.limits: dict[tuple[str, str], Limit] = {}
        self.projects: dict[str, str] = {}  # project id -> owning team
        self._unknown: dict[str, float] = {}
        self._store_down_until = 0.0  # monotonic: until then a lookup is not tried
        self._lookup_second = 0
        self._lookups = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.loaded = False  # keys, limits and projects loaded once (readiness waits)
        self._reload_failures = 0  # failed loads in a row (the log's count)
        self._reload_logged_at = 0.0  # clock() of the last line about them
        # Called with each change applied here (the global plane's change feed wakes on it).
        self.listeners: list[Callable[[str], None]] = []

    # -- hot path

    def known(self, key: str) -> KeyRecord | None:
        """The record of a presented key this replica has matched before and still holds,
        else None (then :meth:`authenticate`, which may also find it): no await, no HMAC.

        A known key's stored form is remembered by the key's BLAKE2b digest: the HMAC
        costs ~18,000 instructions, the digest ~3,000 (no key is kept in plain text)."""
        key_hash = self._hashes.get(blake2b(key.encode(), digest_size=32).digest())
        return None if key_hash is None else self.by_hash.get(key_hash)

    async def authenticate(self, key: str) -> KeyRecord | None:
        """The record of a presented key, if it exists (usable or not).

        Raises :class:`KeyLookupFailed` when the key is not in memory and the key store
        is unreachable (the key may exist: the caller answers 503, not 401)."""
        record = self.known(key)
        if record is not None:
            return record
        encoded = key.encode()
        mac = self._keyed.copy()
        mac.update(encoded)
        key_hash = mac.hexdigest()  # = hash_key(self.secret, key)
        record = self.by_hash.get(key_hash)
        if record is not None:
            if len(self._hashes) >= HASHES_REMEMBERED:
                self._hashes.clear()
            self._hashes[blake2b(encoded, digest_size=32).digest()] = key_hash
            return record
        if not key.startswith(KEY_PREFIX):
            return None
        now = self.clock()
        if self._unknown.get(key_hash, 0.0) > now:
            return None
        # The id has no "-" (new_key); the secret may (URL-safe base64).
        key_id = key[len(KEY_PREFIX) :].split("-", 1)[0]
        if key_id in self.by_id:
            return None  # a known key with a wrong (or rotated-away) secret
        if now < self._store_down_until:
            # The store failed a moment ago: answer 503 without a lookup that would wait
            # on the same outage (at most one lookup per _STORE_DOWN_S while it lasts).
            raise KeyLookupFailed(key_id)
        # A key created on another replica a moment ago: look it up, but cap the
        # database lookups so a flood of made-up keys cannot load the database.
        second = int(now)
        if second != self._lookup_second:
            self._lookup_second, self._lookups = second, 0
        self._lookups += 1
        if self._lookups > _LOOKUPS_PER_S:
            return None
        try:
            record = await asyncio.to_thread(self.store.by_hash, key_hash)
        except Exception as exc:
            # Not "unknown": the key may be valid (created on another replica), so the
            # caller answers 503 and the client retries, rather than a 401 it may act on.
            self._store_down_until = self.clock() + _STORE_DOWN_S
            log.warning("key lookup failed (%s: %s); answering 503", type(exc).__name__, exc)
            raise KeyLookupFailed(key_id) from exc
        if record is None:
            if len(self._unknown) > 10000:
                self._unknown.clear()
            self._unknown[key_hash] = now + _NEGATIVE_TTL_S
            return None
        self._put(record)
        return record

    def limit(self, scope: str, scope_id: str) -> Limit | None:
        return self.limits.get((scope, scope_id))

    # -- changes

    def _put(self, record: KeyRecord) -> None:
        old = self.by_id.get(record.id)
        if old is not None and old.key_hash != record.key_hash:
            self.by_hash.pop(old.key_hash, None)
        self.by_id[record.id] = record
        self.by_hash[record.key_hash] = record
        self._unknown.pop(record.key_hash, None)

    async def reload_key(self, key_id: str) -> None:
        record = await asyncio.to_thread(self.store.get, key_id)
        if record is not None:
            self._put(record)

    async def reload_all(self) -> None:
        keys = await asyncio.to_thread(self.store.all)
        limits = await asyncio.to_thread(self.store.limits)
        projects = await asyncio.to_thread(self.store.projects)
        self.by_id = {k.id: k for k in keys}
        self.by_hash = {k.key_hash: k for k in keys}
        self.projects = projects
        self.limits = {(lim.scope, lim.scope_id): lim for lim in limits}
        self._unknown.clear()
        self.loaded = True

    async def changed(self, what: str, local: bool = True) -> None:
        """Apply a change here and announce it to the other replicas."""
        if local:
            await self._apply(what)
        if self.redis is not None:
            try:
                await self.redis.publish(CHANNEL, what)
            except Exception:
                log.warning(
                    "could not announce %s; replicas reload within %ss", what, self.refresh_s
                )

    async def _apply(self, what: str) -> None:
        kind, _, ident = what.partition(":")
        if kind == "key":
            await self.reload_key(ident)
        elif kind == "projects":
            projects = await asyncio.to_thread(self.store.projects)
            self.projects = projects
            self.limits = dict(self.limits)  # a new dict: cached limit levels start over
        else:
            limits = await asyncio.to_thread(self.store.limits)
            self.limits = {(lim.scope, lim.scope_id): lim for lim in limits}
        for listener in self.listeners:
            listener(what)

    # -- lifecycle

    async def start(self) -> None:
        try:
            await self.reload_all()
        except Exception as exc:
            # PostgreSQL down at start-up: keep serving what we can (readiness says the
            # keys are not loaded); the reloader retries every second.
            self._reload_failed(exc)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._reload_forever()))
        if self.redis is not None:
            self._tasks.append(loop.create_task(self._listen()))

    async def _reload_forever(self) -> None:
        while not self._stopping:
            await pause(self.refresh_s if self.loaded else min(1.0, self.refresh_s))
            try:
                await self.reload_all()
            except Exception as exc:
                self._reload_failed(exc)
                continue
            if self._reload_failures:
                log.warning(
                    "keys and limits loaded after %d failed attempts",
                    self._reload_failures,
                )
                self._reload_failures = 0

    def _reload_failed(self, exc: Exception) -> None:
        """Log a failed load of the keys and limits: the first of an outage with its
        traceback, then one line every RELOAD_LOG_S with the count (until they are loaded
        once, a load is tried every second: a traceback each would flood the log)."""
        self._reload_failures += 1
        now = self.clock()
        what = "load" if not self.loaded else "reload"
        if self._reload_failures == 1:
            self._reload_logged_at = now
            log.warning(
                "could not %s keys and limits (%s: %s); retrying every %gs",
                what,
                type(exc).__name__,
                exc,
                self.refresh_s if self.loaded else min(1.0, self.refresh_s),
                exc_info=True,
            )
        elif now - self._reload_logged_at >= RELOAD_LOG_S:
            self._reload_logged_at = now
            log.warning(
                "still cannot %s keys and limits after %d attempts (%s: %s)",
                what,
                self._reload_failures,
                type(exc).__name__,
                exc,
            )

    async def _listen(self) -> None:
        # While Redis is down, resubscribe with a doubling delay (1 s up to
        # _RESUBSCRIBE_MAX_S) and log one line per attempt; the traceback only for the
        # first failure of an outage. The periodic reload keeps keys fresh meanwhile.
        failures = 0
        while not self._stopping:
            pubsub = None
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(CHANNEL)
                # (redis-py's send may drop a cancellation: ``gateway_app/aio.py``.
                # Reading on would wait for a key change to notice it.)
                stop_if_cancelled()
                if failures:
                    log.warning("key change subscription restored after %d failures", failures)
                failures = 0
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = message["data"]
                    await self._apply(data.decode() if isinstance(data, bytes) else data)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A cancelled blocked read may surface as another error: the flag
                # says whether we are stopping.
                if self._stopping:
                    return
                failures += 1
                delay = min(2.0 ** (failures - 1), _RESUBSCRIBE_MAX_S)
                log.warning(
                    "key change subscription lost (%s: %s); resubscribing in %.0fs "
                    "(keys and limits still reload every %ss)",
                    type(exc).__name__,
                    exc,
                    delay,
                    self.refresh_s,
                    exc_info=failures == 1,
                )
                await _close_quietly(pubsub)
                await pause(delay)

    async def stop(self) -> None:
        """Stop the background reload and subscription (bounded wait)."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        self._tasks.clear()
