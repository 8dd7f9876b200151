"""Server-side sessions and pending sign-ins: in-process, or in Redis for many replicas.

The browser holds only an opaque, random session token (256 bits) in an
HttpOnly cookie; the store keeps the session under the token's SHA-256, so a
copy of Redis reveals no usable cookie. A session ends at whichever comes first:

* logout, or revocation of all of a person's sessions (server-side: the cookie
  is then worthless even if kept);
* ``idle_timeout_s`` without use (measured from the last recorded use; uses are
  recorded at most every ``touch_interval_s``, which bounds the error);
* ``absolute_timeout_s`` after sign-in, however active.

A pending sign-in (state, nonce, PKCE verifier, where to return) lives ten
minutes and is taken exactly once (``GETDEL`` in Redis): a replayed or forged
``state`` finds nothing.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson

from gateway_app.identity.roles import Person

LOGIN_TTL_S = 600.0
_MAX_PENDING_LOGINS = 10_000  # in-process: anonymous callers can start sign-ins


def token_hash(token: str) -> str:
    """The store's key for a session token or a sign-in state."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in person (or a break-glass admin-key sign-in) and their CSRF token."""

    role: str
    team_id: str | None
    csrf_token: str
    created_at: float
    last_seen: float
    person: Person | None = None
    via: str = "oidc"  # "oidc", or "admin_key" (break-glass)
    id_token: str | None = None  # the logout hint for the provider
    rule: int | None = None  # which identity.roles rule granted the role

    def to_json(self) -> bytes:
        data = asdict(self)
        data["person"] = self.person.public() if self.person is not None else None
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Session:
        data = orjson.loads(raw)
        person = data.pop("person")
        return cls(**data, person=Person.from_public(person) if person else None)


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """What the callback needs to finish one sign-in."""

    nonce: str
    verifier: str
    return_to: str
    binding_hash: str  # SHA-256 of the value in the browser's sign-in cookie
    created_at: float

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> LoginAttempt:
        return cls(**orjson.loads(raw))


class SessionStore(ABC):
    """Sessions and pending sign-ins; the timeouts are enforced here, in one place."""

    def __init__(
        self,
        *,
        idle_timeout_s: float,
        absolute_timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.absolute_timeout_s = absolute_timeout_s
        self.clock = clock
        self.touch_interval_s = min(60.0, idle_timeout_s / 10)

    def _ttl(self, session: Session, now: float) -> float:
        return min(
            self.idle_timeout_s - (now - session.last_seen),
            self.absolute_timeout_s - (now - session.created_at),
        )

    async def create(self, session: Session) -> str:
        """Store a new session; its token (for the cookie). A new token on every sign-in."""
        token = new_token()
        key = token_hash(token)
        await self._put(key, session.to_json(), self._ttl(session, self.clock()))
        if session.person is not None:
            await self._index(token_hash(session.person.subject), key, self.absolute_timeout_s)
        return token

    async def get(self, token: str) -> Session | None:
        """The live session of a token (recording its use), or None."""
        if not token or len(token) > 128:
            return None
        key = token_hash(token)
        raw = await self._get(key)
        if raw is None:
            return None
        session = Session.from_json(raw)
        now = self.clock()
        ttl = self._ttl(session, now)
        if ttl <= 0:
            await self._delete(key)
            return None
        if now - session.last_seen >= self.touch_interval_s:
            session = replace(session, last_seen=now)
            await self._put(key, session.to_json(), self._ttl(session, now))
        return session

    def expiry(self, session: Session) -> tuple[float, float]:
        """(idle expiry, absolute expiry) as Unix times."""
        return (
            session.last_seen + self.idle_timeout_s,
            session.created_at + self.absolute_timeout_s,
        )

    async def delete(self, token: str) -> bool:
        """End one session (logout)."""
        return await self._delete(token_hash(token))

    async def delete_person(self, subject: str) -> int:
        """End every session of one person (all devices); how many there were."""
        ended = 0
        for key in await self._take_index(token_hash(subject)):
            ended += await self._delete(key)
        return ended

    async def put_login(self, state: str, attempt: LoginAttempt) -> None:
        """Remember a sign-in in progress for ``LOGIN_TTL_S``."""
        await self._put_login(token_hash(state), attempt.to_json(), LOGIN_TTL_S)

    async def take_login(self, state: str) -> LoginAttempt | None:
        """The sign-in of ``state``, removed as it is read (single use), or None."""
        if not state or len(state) > 128:
            return None
        raw = await self._take_login(token_hash(state))
        if raw is None:
            return None
        attempt = LoginAttempt.from_json(raw)
        if self.clock() - attempt.created_at > LOGIN_TTL_S:
            return None
        return attempt

    async def close(self) -> None:  # noqa: B027 (nothing to release in memory)
        """Release connections."""

    # ------------------------------------------------------------ backend

    @abstractmethod
    async def _get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def _put(self, key: str, value: bytes, ttl_s: float) -> None: ...

    @abstractmethod
    async def _delete(self, key: str) -> bool: ...

    @abstractmethod
    async def _index(self, subject_key: str, key: str, ttl_s: float) -> None: ...

    @abstractmethod
    async def _take_index(self, subject_key: str) -> list[str]: ...

    @abstractmethod
    async def _put_login(self, key: str, value: bytes, ttl_s: float) -> None: ...

    @abstractmethod
    async def _take_login(self, key: str) -> bytes | None: ...


class InProcessSessionStore(SessionStore):
    """One replica's memory (the embedded default): sessions end with the process."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sessions: dict[str, tuple[float, bytes]] = {}
        self._people: dict[str, set[str]] = {}
        self._logins: dict[str, tuple[float, bytes]] = {}

    def _live(self, store: dict[str, tuple[float, bytes]], key: str) -> bytes | None:
        found = store.get(key)
        if found is None:
            return None
        if found[0] <= self.clock():
            store.pop(key, None)
            return None
        return found[1]

    async def _get(self, key: str) -> bytes | None:
        return self._live(self._sessions, key)

    async def _put(self, key: str, value: bytes, ttl_s: float) -> None:
        now = self.clock()
        if len(self._sessions) % 256 == 0:  # now and then, forget the expired
            for old in [k for k, (until, _) in self._sessions.items() if until <= now]:
                del self._sessions[old]
        self._sessions[key] = (now + ttl_s, value)

    async def _delete(self, key: str) -> bool:
        return self._sessions.pop(key, None) is not None

    async def _index(self, subject_key: str, key: str, ttl_s: float) -> None:
        keys = self._people.setdefault(subject_key, set())
        keys.intersection_update(self._sessions)
        keys.add(key)

    async def _take_index(self, subject_key: str) -> list[str]:
        return list(self._people.pop(subject_key, ()))

    async def _put_login(self, key: str, value: bytes, ttl_s: float) -> None:
        while len(self._logins) >= _MAX_PENDING_LOGINS:
            self._logins.pop(next(iter(self._logins)))  # the oldest
        self._logins[key] = (self.clock() + ttl_s, value)

    async def _take_login(self, key: str) -> bytes | None:
        found = self._logins.pop(key, None)
        if found is None or found[0] <= self.clock():
            return None
        return found[1]


class RedisSessionStore(SessionStore):
    """Sessions shared by every replica (``AIGW_REDIS_URL``); Redis expires them too."""

    PREFIX = "{aigw}:identity:"

    def __init__(self, redis: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.redis = redis

    @classmethod
    def from_url(
        cls, url: str, ca_file: str | None = None, credential: Any = None, **kwargs: Any
    ) -> RedisSessionStore:
        from gateway_app.state.governance_redis import redis_client

        return cls(redis_client(url, ca_file, credential, max_connections=8), **kwargs)

    async def close(self) -> None:
        await self.redis.aclose()

    async def _get(self, key: str) -> bytes | None:
        return await self.redis.get(self.PREFIX + "session:" + key)

    async def _put(self, key: str, value: bytes, ttl_s: float) -> None:
        await self.redis.set(
            self.PREFIX + "session:" + key, value, px=max(1, math.ceil(ttl_s * 1000))
        )

    async def _delete(self, key: str) -> bool:
        return bool(await self.redis.delete(self.PREFIX + "session:" + key))

    async def _index(self, subject_key: str, key: str, ttl_s: float) -> None:
        name = self.PREFIX + "person:" + subject_key
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(name, key)
            pipe.expire(name, math.ceil(ttl_s))
            await pipe.execute()

    async def _take_index(self, subject_key: str) -> list[str]:
        name = self.PREFIX + "person:" + subject_key
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.smembers(name)
            pipe.delete(name)
            members, _ = await pipe.execute()
        return [m.decode() if isinstance(m, bytes) else m for m in members]

    async def _put_login(self, key: str, value: bytes, ttl_s: float) -> None:
        await self.redis.set(self.PREFIX + "login:" + key, value, px=math.ceil(ttl_s * 1000))

    async def _take_login(self, key: str) -> bytes | None:
        return await self.redis.getdel(self.PREFIX + "login:" + key)
