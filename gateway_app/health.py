"""Liveness and readiness.

``/health/live`` says the process serves HTTP. ``/health/ready`` checks the
configured dependencies: Redis when ``AIGW_REDIS_URL`` is set (a PING over TCP
or TLS with ``AIGW_REDIS_CA_FILE``), and with governance on, that the virtual keys
and limits were loaded once (a replica that started while its database refused it
would answer every caller 503 ``key_store_unavailable``; once loaded, a database
outage does not make it unready: it keeps the keys it holds). It reports providers
without credentials without failing: the embedded default must be ready with no
keys at all, and models with keyed deployments keep working. During shutdown it
reports 503 so load balancers stop sending new requests. The report is public (the
edge routes it for the DNS health checks): a failing check says what failed, not
where; its reason (addresses, host names) goes to the log.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from gateway_app.config import GatewayConfig
from gateway_app.environment import Environment
from gateway_app.providers import ADAPTERS
from gateway_app.state.resp import TokenCredential

log = logging.getLogger("gateway_app.health")

REASON_LOG_S = 60.0
"""A failing check's reason is logged when it changes, else at most this often."""

REDIS_CHECK_S = 1.0
"""A Redis check's answer serves the probes of the next second, and probes that arrive
while a check is under way wait for it: ``/health/ready`` is public (the edge routes it
for the DNS health checkers), and each check opens a connection to Redis (TLS, AUTH), so
no rate of probes opens more than about one a second per replica."""

KEYS_NOT_LOADED = (
    "the virtual keys and limits are not loaded yet: the governance database did not "
    "answer this replica since it started (its log says why); retried every second"
)
"""The ``keys`` check's error. Fixed text: the report is public (load balancers and the
DNS health checkers read it, through the edge), so it names no host, user or database;
nor does the ``redis`` check's (its reason, with the address, is logged)."""


class KeysLoaded(Protocol):
    """What readiness reads of governance's key registry."""

    loaded: bool
    """The keys, limits and projects were loaded once."""


class Health:
    """Computes the readiness report."""

    def __init__(
        self, config: GatewayConfig, env: Environment | None = None, keys: KeysLoaded | None = None
    ) -> None:
        env = env or Environment()
        self.config = config
        self.keys = keys  # governance's key registry (None: governance is off)
        self._logged: dict[str, tuple[str, float]] = {}  # check -> (reason, monotonic)
        self.shutting_down = False
        self.redis_url = env.redis_url
        self.redis_ca_file = env.redis_ca_file
        self.redis_credential = env.redis_credential()
        # The last Redis check: (monotonic time it ended, its error or None), and the one
        # under way (REDIS_CHECK_S).
        self._redis_checked: tuple[float, BaseException | None] | None = None
        self._redis_check: asyncio.Future[BaseException | None] | None = None
        self.providers: dict[str, Any] = {}
        for name, provider in config.providers.items():
            # Cloud adapters detect their credential sources (environment, token files).
            hints = ADAPTERS[provider.type].missing_credentials(provider)
            if hints:
                self.providers[name] = {
                    "status": "missing_credentials",
                    "type": provider.type,
                    "set": hints,
                }
            elif provider.api_key or not provider.api_key_env:
                self.providers[name] = {"status": "ok", "type": provider.type}
            else:
                self.providers[name] = {
                    "status": "missing_credentials",
                    "type": provider.type,
                    "set": list(provider.api_key_env),
                }

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, report)``: the JSON body of ``/health/ready``."""
        checks: dict[str, Any] = {
            "config": {"status": "ok", "models": len(self.config.models)},
            "state": {"status": "ok", "backend": "redis" if self.redis_url else "in-process"},
        }
        ready = not self.shutting_down
        if self.redis_url:
            exc = await self._check_redis()
            if exc is None:
                checks["redis"] = {"status": "ok"}
                self._logged.pop("redis", None)  # a later failure is logged at once
            else:
                checks["redis"] = {
                    "status": "error",
                    "error": f"Redis did not answer PING ({type(exc).__name__}); the "
                    "gateway's log says why",
                }
                self._log_reason("redis", f"{type(exc).__name__}: {exc}")
                ready = False
        if self.keys is not None:
            if self.keys.loaded:
                checks["keys"] = {"status": "ok"}
            else:
                checks["keys"] = {"status": "error", "error": KEYS_NOT_LOADED}
                ready = False
        missing = [n for n, p in self.providers.items() if p["status"] != "ok"]
        report = {
            "status": "ready"
            if ready
            else ("shutting_down" if self.shutting_down else "not_ready"),
            "checks": checks,
            "providers": self.providers,
            "providers_missing_credentials": missing,
        }
        return ready, report

    async def _check_redis(self) -> BaseException | None:
        """The error of a PING to Redis within 2 s, or None: the last check's if it
        ended less than REDIS_CHECK_S ago, else the one under way (shared), else a new one."""
        checked = self._redis_checked
        if checked is not None and time.monotonic() - checked[0] < REDIS_CHECK_S:
            return checked[1]
        check = self._redis_check
        if check is None or check.done() or check.get_loop() is not asyncio.get_running_loop():
            check = self._redis_check = asyncio.ensure_future(self._ping_redis())
        # Shielded: a probe that hangs up does not cancel the check the others wait for.
        return await asyncio.shield(check)

    async def _ping_redis(self) -> BaseException | None:
        try:
            async with asyncio.timeout(2.0):
                await redis_ping(self.redis_url or "", self.redis_ca_file, self.redis_credential)
            error: BaseException | None = None
        except Exception as exc:
            error = exc
        self._redis_checked = (time.monotonic(), error)
        self._redis_check = None
        return error

    def _log_reason(self, check: str, reason: str) -> None:
        """Log why ``check`` failed: when the reason changes, else every REASON_LOG_S (the
        probes ask every few seconds; the log is the operator's, the report the public's)."""
        now = time.monotonic()
        last = self._logged.get(check)
        if last is None or last[0] != reason or now - last[1] >= REASON_LOG_S:
            self._logged[check] = (reason, now)
            log.warning("not ready: the %s check failed: %s", check, reason)


async def redis_ping(
    url: str, ca_file: str | None = None, credential: TokenCredential | None = None
) -> None:
    """AUTH (with ``credential``'s token, or the URL's password) and PING; raise unless
    Redis answers PONG."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(
            f"AIGW_REDIS_URL must start with redis:// or rediss://, not {parts.scheme}://"
        )
    context = None
    if parts.scheme == "rediss":
        context = ssl.create_default_context(cafile=ca_file)
    reader, writer = await asyncio.open_connection(
        parts.hostname or "localhost", parts.port or 6379, ssl=context
    )
    try:
        commands = []
        if credential is not None:
            user, token, _ = await credential.current()
            commands.append(["AUTH", user, token])
        elif parts.password:
            auth = [parts.username or "default", unquote(parts.password)]
            commands.append(["AUTH", *auth])
        commands.append(["PING"])
        for command in commands:
            payload = f"*{len(command)}\r\n" + "".join(
                f"${len(arg.encode())}\r\n{arg}\r\n" for arg in command
            )
            writer.write(payload.encode())
            await writer.drain()
            line = await reader.readline()
            if line.startswith(b"-"):
                raise ConnectionError(line[1:].strip().decode(errors="replace"))
        if not line.startswith(b"+PONG"):
            raise ConnectionError(f"unexpected reply {line!r}")
    finally:
        writer.close()
