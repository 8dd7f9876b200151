"""Redis credentials from Microsoft Entra: Azure Managed Redis without access keys.

With access keys disabled on the database, Azure Managed Redis accepts
``AUTH <object id> <access token>``: the user is the object id of the identity
(the ``oid`` claim of its token), the password an Entra access token for
``https://redis.azure.com/.default``. A connection stays authenticated only
until that token expires, so a client must fetch the next token before expiry
and send ``AUTH`` again on every live connection ("Use Microsoft Entra for cache
authentication", Microsoft Learn, azure/redis/entra-for-authentication).

:class:`EntraRedisCredential` is that credential for this pod's workload
identity (the token from :mod:`gateway_app.credentials.azure`'s exchange,
shared by every client of the process). Both Redis clients use it:

* :class:`gateway_app.state.resp.RespClient` (the request path) authenticates
  each connection with it and re-sends ``AUTH`` on the live connection ahead of
  expiry (:meth:`EntraRedisCredential.renewed`);
* redis-py (cold paths) through :class:`EntraCredentialProvider`, a
  ``StreamingCredentialProvider``: new connections authenticate with the
  current token; redis-py re-authenticates its pooled connections whenever the
  provider hands it the next one.

``AIGW_REDIS_AUTH=entra`` turns it on (:func:`redis_credential`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from gateway_app.aio import pause
from gateway_app.credentials import azure, cache
from gateway_app.credentials.cache import RefreshingCredential, credential_for
from gateway_app.errors import GatewayError

log = logging.getLogger("gateway_app.credentials")

REDIS_SCOPE = "https://redis.azure.com/.default"
"""The scope of an Entra token Azure Managed Redis accepts as an ``AUTH`` password."""
RENEW_BEFORE_S = 300.0
"""Send the next token this long before the current one expires (Entra tokens live ~1 h)."""
RETRY_S = 15.0
"""After a failed renewal, try again this soon (the current token is still valid)."""


class RedisAuthError(Exception):
    """The Redis credential could not be obtained; the message names the setting to fix."""


def token_object_id(token: str) -> str:
    """The ``oid`` claim of an Entra access token (the Redis user name).

    The token is not verified here: it comes straight from Entra's token
    endpoint over TLS, and Redis verifies it.
    """
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        oid = claims["oid"]
    except (IndexError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise RedisAuthError(
            "the Entra token for Azure Managed Redis has no 'oid' claim; put the identity's "
            "object id in AIGW_REDIS_URL's user name (rediss://<object-id>@host:10000)"
        ) from None
    if not isinstance(oid, str) or not oid:
        raise RedisAuthError("the Entra token's 'oid' claim is empty")
    return oid


class EntraRedisCredential:
    """``(user, token, expires_at)`` for ``AUTH``: the workload identity's Entra token.

    ``username`` overrides the token's ``oid`` claim (the URL's user name, if set).
    """

    def __init__(self, token: RefreshingCredential[str], username: str | None = None) -> None:
        self.token = token
        self.username = username

    async def current(self) -> tuple[str, str, float | None]:
        """The credential to authenticate a new connection with."""
        value = await self.token.get()
        return self.username or token_object_id(value), value, self.token.expires_at

    async def renewed(self) -> tuple[str, str, float | None]:
        """A credential valid for more than :data:`RENEW_BEFORE_S` (fetched if need be)."""
        value = await self.token.get_fresh(RENEW_BEFORE_S)
        return self.username or token_object_id(value), value, self.token.expires_at


def renew_delay(expires_at: float | None) -> float | None:
    """Seconds until a connection authenticated until ``expires_at`` must re-``AUTH``."""
    if expires_at is None:
        return None
    return max(1.0, expires_at - RENEW_BEFORE_S - cache.now())


def redis_credential(mode: str | None, url: str | None) -> EntraRedisCredential | None:
    """The credential ``AIGW_REDIS_AUTH`` asks for: None (the URL's password) or ``entra``.

    With ``entra`` the URL carries no password; its user name, if any, overrides the
    token's ``oid`` claim as the Redis user.
    """
    if not mode or mode == "password" or not url:
        return None
    if mode != "entra":
        raise RedisAuthError(
            f"AIGW_REDIS_AUTH={mode!r} is not a Redis authentication mode; use 'entra' "
            "(Microsoft Entra token of the pod's workload identity) or leave it unset "
            "(the password in AIGW_REDIS_URL)"
        )
    missing = azure.missing_env()
    if missing:
        raise RedisAuthError(
            f"AIGW_REDIS_AUTH=entra needs the pod's Azure workload identity, but "
            f"{', '.join(missing)} are unset (label the pod azure.workload.identity/use=true "
            "and annotate its ServiceAccount with the identity's client id)"
        )
    import os
    from urllib.parse import unquote, urlsplit

    from gateway_app.credentials.database import BlockingHttpClient

    parts = urlsplit(url)
    if parts.password:
        raise RedisAuthError(
            "AIGW_REDIS_AUTH=entra authenticates with Entra tokens, but AIGW_REDIS_URL has "
            "a password too; remove it (rediss://[object-id@]host:port)"
        )
    username = unquote(parts.username) if parts.username else None

    client_id, tenant, token_file = (os.environ[name] for name in azure.WORKLOAD_IDENTITY_ENV)
    token_url = azure.authority_token_url(tenant)

    async def fetch() -> tuple[str, float]:
        try:
            return await azure.exchange(token_url, client_id, token_file, REDIS_SCOPE, http)
        except GatewayError as exc:
            raise RedisAuthError(f"no Entra token for Redis: {exc.message}") from None

    http = BlockingHttpClient()
    token = credential_for(
        ("entra", token_url, client_id, token_file, REDIS_SCOPE),
        lambda: RefreshingCredential(fetch, refresh_before=RENEW_BEFORE_S * 2),
    )
    return EntraRedisCredential(token, username)


# ------------------------------------------------------------------ redis-py


def redis_py_provider(credential: EntraRedisCredential) -> Any:
    """A redis-py ``StreamingCredentialProvider`` over ``credential`` (one per client)."""
    from redis.auth.token import SimpleToken
    from redis.credentials import StreamingCredentialProvider

    class EntraCredentialProvider(StreamingCredentialProvider):
        """New connections ``AUTH`` with the current token; each renewal re-``AUTH``s the pool.

        redis-py subscribes with :meth:`on_next` when the client is built; the
        renewal loop starts with the first connection (there is a running loop
        then) and hands redis-py each new token ahead of the old one's expiry.
        """

        def __init__(self) -> None:
            self._next: list[Callable[[Any], Awaitable[None] | None]] = []
            self._task: asyncio.Task[None] | None = None

        def on_next(self, callback: Callable[[Any], Any]) -> None:
            self._next.append(callback)

        def on_error(self, callback: Callable[[Exception], Any]) -> None:
            # redis-py's handler raises out of the renewal loop; failures are logged and
            # retried there instead, while the current token is still valid.
            pass

        def is_streaming(self) -> bool:
            return True

        def get_credentials(self) -> tuple[str, str]:
            raise RedisAuthError("Entra Redis credentials are for redis.asyncio clients only")

        async def get_credentials_async(self) -> tuple[str, str]:
            user, token, expires_at = await credential.current()
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._renew(expires_at))
            return user, token

        async def _renew(self, expires_at: float | None) -> None:
            sent: str | None = None
            while (delay := renew_delay(expires_at)) is not None:
                await pause(delay)
                try:
                    user, token, expires_at = await credential.renewed()
                except Exception as exc:
                    log.warning("Redis token renewal failed, retrying: %s", exc)
                    await pause(RETRY_S)
                    continue
                if token == sent:
                    continue
                sent = token
                expires_ms = (expires_at or 0) * 1000
                new = SimpleToken(token, expires_ms, cache.now() * 1000, {"oid": user})
                for callback in self._next:
                    try:
                        result = callback(new)
                        if asyncio.iscoroutine(result):
                            await result
                    except Exception as exc:
                        log.warning("Redis re-AUTH of pooled connections failed: %s", exc)

        def close(self) -> None:
            if self._task is not None:
                with contextlib.suppress(RuntimeError):
                    self._task.cancel()

    return EntraCredentialProvider()


def redis_py_arguments(
    url: str, credential: EntraRedisCredential | None
) -> tuple[str, dict[str, Any]]:
    """``(url, options)`` for a redis-py client: with a credential, the URL's user moves into
    it (redis-py refuses a user name next to a credential provider)."""
    if credential is None:
        return url, {}
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, {"credential_provider": redis_py_provider(credential)}
