"""The global governance plane: one home cloud owns writes, the others follow its feed.

The design and its bounds are in docs/decisions/0001-global-governance-plane.md;
docs/explanation/global-governance.md says what is built. In each cloud's
gateway, :class:`GlobalPlane` is three things:

* **The internal endpoint** (``/internal/v1/...``), answered only to a peer
  whose token :class:`~.peers.PeerVerifier` accepts (a virtual key, the admin
  key or a session is never enough):

  - ``GET /internal/v1/changes?after=<seq>`` (the home): the change feed as a
    stream of JSON lines, ``{"epoch", "head", "changes": [...]}``, one line per
    batch as it commits and a heartbeat line every ``heartbeat_s``; held open
    up to 5 minutes (and ended at once when the server drains);
  - ``POST /internal/v1/admin`` (the home): an admin call forwarded by a
    follower, with the caller the follower authenticated; answered as the home
    answers its own admin API, plus ``x-aigw-change-seq`` after a write.

* **The follower** (every other cloud): streams the home's feed from its
  durable cursor and applies each batch with its cursor in one transaction of
  its own database (:func:`.changes.apply`), then announces the changed
  records to its replicas (the registry's Redis channel). A feed silent for
  ``dead_after_s`` is reconnected (backoff 50 ms doubling to 1 s), so a
  partition heals by resuming from the cursor: no change lost or applied twice.

* **The forwarder** (every other cloud): every admin call is answered by the
  home; after a write the follower waits (at most ``read_your_writes_s``)
  until it has applied the write's change, so a key created through any cloud
  works there as soon as its creator has it. Home unreachable: 503
  ``governance_home_unreachable`` with ``Retry-After``; reads may ask
  ``?consistency=local`` for this cloud's copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import aiohttp
import orjson

from gateway_app.aio import pause
from gateway_app.config import ConfigError
from gateway_app.config.governance import GlobalConfig
from gateway_app.errors import GatewayError
from gateway_app.governance import audit, changes, rbac
from gateway_app.governance.admin import REPORT_PATHS, AdminAnswer
from gateway_app.governance.changes import Change
from gateway_app.governance.leases import NANO, LeaseAgent, Ledger, RateReport, Report
from gateway_app.governance.peers import OwnToken, PeerAuthError, PeerVerifier
from gateway_app.governance.rbac import Principal
from gateway_app.governance.service import period_ends
from gateway_app.governance.shipping import AuditShipper, ShipperLease
from gateway_app.state.governance import BudgetItem, RateItem
from gateway_app.state.governance_redis import RedisGovernanceState

if TYPE_CHECKING:
    from gateway_app.environment import Environment
    from gateway_app.governance.admin import AdminApi
    from gateway_app.governance.service import Governance

log = logging.getLogger("gateway_app.governance")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

_BATCH = 100  # changes per feed line (a key's row image is ~0.5 KB)
_STREAM_S = 300.0  # a feed response is held open this long, then the follower reconnects
_REPORT_MARGIN_S = 5.0  # a forwarded report waits this much past the home's query limit
_BACKOFF_S = (0.05, 1.0)  # reconnect backoff: first, cap
_JSON = [(b"content-type", b"application/json")]
_MAX_BODY = 16 << 20  # an internal call's body (an audit batch with prompts is the largest)
_BUFFER_LAG_S = 2.0  # an audit event reaches its cloud's database within this (drainer)


class _Signal:
    """Wakes every waiter when something changed (new changes committed or applied)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, *_: object) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()


class GlobalPlane:
    """This cloud's part of the global governance plane (see the module's docstring)."""

    def __init__(
        self, config: GlobalConfig, cloud: str, governance: Governance, admin: AdminApi
    ) -> None:
        self.config = config
        self.cloud = cloud
        self.home = config.home
        self.is_home = cloud == config.home
        self.governance = governance
        self.admin = admin
        self.db = governance.db
        self.token = OwnToken(config.token_file)
        self.verifier = PeerVerifier(config, cloud)
        self.home_url = config.peers[config.home].url.rstrip("/")
        self.applied_seq = 0  # this cloud's position in the home's feed
        self.home_head = 0  # the home's last sequence number, as its feed last said
        self.last_heard = 0.0  # monotonic time of the feed's last line
        self.committed = _Signal()  # (home) changes committed: feed streams send them
        self.applied = _Signal()  # (follower) a batch applied: forwarded writes wait on it
        governance.registry.listeners.append(self.committed.notify)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._shipper: asyncio.Task[None] | None = None
        audit.set_cloud(cloud)  # event ids and rows name this cloud from now on
        if self.is_home:
            admin.answer_headers = ((b"x-aigw-served-by", cloud.encode()),)
        else:
            admin.forwarder = self
        # Budgets: the home keeps the escrow ledger; every cloud (the home too) holds leases.
        registry = governance.registry
        self.ledger = Ledger(self.db, config, lambda: registry.limits) if self.is_home else None
        if self.ledger is not None:
            admin.budget_ledger = self.ledger.budget
            admin.audit_complete_through = self.complete_through
        state = governance.state
        if not isinstance(state, RedisGovernanceState):
            raise ConfigError("governance.global needs AIGW_REDIS_URL (budget leases)")
        self.leases = LeaseAgent(
            config, state.client, state.prefix, self._budgets, self._renew, self._rates
        )
        governance.leases = self.leases
        # A follower's audit reaches the home through one replica at a time (a lease).
        self.shipper = AuditShipper(
            self.db,
            self._post_audit,
            ShipperLease(state.client, state.prefix + "audit-shipper"),
            batch=config.audit_ship_batch,
            interval_s=config.audit_ship_s,
            max_body=_MAX_BODY // 2,
            buffer_lag_s=_BUFFER_LAG_S,
            oldest_buffered=state.oldest_audit_s,
        )

    @classmethod
    def build(
        cls, config: GlobalConfig, env: Environment, governance: Governance, admin: AdminApi
    ) -> GlobalPlane:
        """The plane for this process: its cloud is ``global.cloud``, else ``AIGW_CLOUD``."""
        cloud = config.cloud or env.cloud
        if not cloud:
            raise ConfigError(
                "governance.global is set but this gateway does not know its cloud: set "
                "AIGW_CLOUD (the deployment does) or governance.global.cloud"
            )
        if cloud not in config.peers:
            raise ConfigError(
                f"AIGW_CLOUD {cloud!r} is not among governance.global.peers "
                f"{sorted(config.peers)}: add this cloud's entry or fix AIGW_CLOUD"
            )
        return cls(config, cloud, governance, admin)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start renewing leases; in a follower, read the cursor and follow the home's feed."""
        self.leases.start()
        if self.is_home:
            return
        # What the shipper may claim complete also waits for every replica's floor.
        state = self.governance.state
        if isinstance(state, RedisGovernanceState):
            state.record_floors()
        _, self.applied_seq = await asyncio.to_thread(changes.cursor, self.db)
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._follow())
        self._shipper = loop.create_task(self.shipper.run())

    async def stop(self) -> None:
        """Stop following and renewing; close the internal channel's connections."""
        await self.leases.stop()
        for task in (self._task, self._shipper):
            if task is not None:
                task.cancel()
                await asyncio.wait([task], timeout=5.0)
        if self._shipper is not None:
            await self.shipper.stop()  # another replica takes over at once
        self._task = self._shipper = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            peer = self.config.peers[self.home]
            tls: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=peer.ca_file)
                if self.home_url.startswith("https:")
                else False
            )
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=tls),
                # Feed lines carry up to _BATCH row images.
                read_bufsize=1 << 22,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.config.dead_after_s),
            )
        return self._session

    # ------------------------------------------------------------ the internal endpoint

    @staticmethod
    def serves(path: str) -> bool:
        """Whether a path is the internal endpoint's."""
        return path.startswith("/internal/v1/")

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Answer one internal call (ASGI): the caller must be a peer."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        try:
            try:
                peer = await self.verifier.verify(headers.get("authorization"))
            except PeerAuthError as exc:
                error = exc.as_error()
                await _send(
                    send, error.status, error.to_bytes(), [(b"x-aigw-peer-auth", b"refused")]
                )
                return
            if not self.is_home:
                raise GatewayError(
                    409,
                    f"{self.cloud} is not the home of the governance plane; call {self.home}.",
                    code="not_home",
                )
            query = dict(parse_qsl(scope.get("query_string", b"").decode()))
            if (method, path) == ("GET", "/internal/v1/changes"):
                await self._stream(scope, receive, send, query, peer)
            elif (method, path) == ("POST", "/internal/v1/admin"):
                await self._forwarded(receive, send, peer)
            elif (method, path) == ("POST", "/internal/v1/leases/renew"):
                await self._renewal(receive, send, peer)
            elif (method, path) == ("POST", "/internal/v1/audit"):
                await self._audit_batch(receive, send, peer)
            else:
                raise GatewayError(
                    404, f"Unknown internal path {method} {path}.", code="unknown_url"
                )
        except GatewayError as error:
            extra = [(k.encode(), v.encode()) for k, v in error.headers.items()]
            await _send(send, error.status, error.to_bytes(), extra)

    async def _stream(
        self, scope: dict[str, Any], receive: Receive, send: Send, query: dict[str, str], peer: str
    ) -> None:
        """The change feed from ``after``: a line per batch, a heartbeat line when idle."""
        try:
            after = int(query.get("after", "0"))
            epoch = int(query.get("epoch", "0"))
        except ValueError:
            raise GatewayError(
                400, "`after` and `epoch` must be integers.", code="invalid_request"
            ) from None
        if epoch > self.config.epoch:
            raise GatewayError(
                409,
                f"{peer} has applied epoch {epoch}; this home is at epoch {self.config.epoch} "
                "(a stale home): follow the promoted one.",
                code="stale_home",
            )
        gone = asyncio.Event()
        extensions = scope.get("extensions") or {}
        stopping: Callable[[], bool] = extensions.get("aigw.stopping") or (lambda: False)
        register = extensions.get("aigw.disconnect")
        watcher: asyncio.Task[None] | None = None
        if register is not None:
            register(gone.set)
        else:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone.set()

            watcher = asyncio.get_running_loop().create_task(watch())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/x-ndjson"),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        ends = time.monotonic() + _STREAM_S
        try:
            while not gone.is_set() and not stopping() and time.monotonic() < ends:
                batch = await asyncio.to_thread(changes.read, self.db, after, _BATCH)
                if batch:
                    after = batch[-1].seq
                # The true head (a backlog arrives in several lines): the follower's lag.
                head = (
                    after if len(batch) < _BATCH else await asyncio.to_thread(changes.head, self.db)
                )
                line = {
                    "epoch": self.config.epoch,
                    "head": head,
                    "changes": [change.public() for change in batch],
                }
                await send(
                    {
                        "type": "http.response.body",
                        "body": orjson.dumps(line) + b"\n",
                        "more_body": True,
                    }
                )
                if len(batch) < _BATCH:
                    await self.committed.wait(self.config.heartbeat_s)
            await send({"type": "http.response.body", "body": b""})
        finally:
            if watcher is not None:
                watcher.cancel()

    @staticmethod
    async def _body(receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise GatewayError(400, "The caller left before its body arrived.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > _MAX_BODY:
                raise GatewayError(413, "The internal call is too large.", code="request_too_large")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _renewal(self, receive: Receive, send: Send, peer: str) -> None:
        """A cloud's lease renewal: its reports in, the ledger's cumulative grants and its
        shares of rate limits out."""
        assert self.ledger is not None
        try:
            data = orjson.loads(await self._body(receive))
            reports = [Report.parse(r) for r in data["budgets"]]
            rates = [RateReport.parse(r) for r in data.get("rates") or []]
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
            raise GatewayError(400, f"Malformed renewal: {exc}.", code="invalid_request") from None
        # The cloud is the authenticated peer, never a name in the body.
        grants, shares = await asyncio.to_thread(self.ledger.renew_all, peer, reports, rates)
        body = orjson.dumps({"epoch": self.config.epoch, "grants": grants, "shares": shares})
        await _send(send, 200, body, [])

    async def _audit_batch(self, receive: Receive, send: Send, peer: str) -> None:
        """A batch of a cloud's audit events: each stored once, whatever the retries."""
        try:
            batch = orjson.loads(await self._body(receive))
            rows, through = batch["events"], batch.get("through")
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ValueError("`events` must be a list of objects")
            if through is not None and not isinstance(through, int | float):
                raise ValueError("`through` must be a Unix time")
            stored, duplicates = await asyncio.to_thread(
                audit.store_shipped, self.db, peer, rows, through
            )
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
            raise GatewayError(
                400, f"Malformed audit batch: {exc}.", code="invalid_request"
            ) from None
        body = orjson.dumps({"stored": stored, "duplicates": duplicates})
        await _send(send, 200, body, [])

    async def _forwarded(self, receive: Receive, send: Send, peer: str) -> None:
        """An admin call forwarded by a follower: answered as the home's own admin API."""
        raw = await self._body(receive)
        try:
            envelope = orjson.loads(raw)
            principal = rbac.principal_from_public(envelope.get("principal"))
            method, path = str(envelope["method"]), str(envelope["path"])
            query = str(envelope.get("query") or "")
        except (orjson.JSONDecodeError, ValueError, KeyError, AttributeError) as exc:
            raise GatewayError(
                400, f"Malformed forwarded call: {exc}.", code="invalid_request"
            ) from None
        served_by = [(b"x-aigw-served-by", self.cloud.encode())]
        try:
            route, _ = self.admin.route(method, path)
            status, payload = await self.admin.serve_as(
                principal, method, path, query, envelope.get("body")
            )
        except GatewayError as error:
            extra = [(k.encode(), v.encode()) for k, v in error.headers.items()]
            await _send(send, error.status, error.to_bytes(), [*extra, *served_by])
            return
        if route.writes:
            head = await asyncio.to_thread(changes.head, self.db)
            served_by.append((b"x-aigw-change-seq", str(head).encode()))
        served_by += await self.admin.audit_headers(path)
        log.info("admin %s %s forwarded by %s for %s", method, path, peer, principal.actor)
        await _send(send, status, orjson.dumps(payload), served_by)

    # ------------------------------------------------------------ the follower

    async def _follow(self) -> None:
        backoff = _BACKOFF_S[0]
        while True:
            try:
                await self._follow_once()
                backoff = _BACKOFF_S[0]  # the home ended the stream: reconnect at once
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "governance feed from %s interrupted (%s: %s); reconnecting in %.2fs",
                    self.home,
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                await pause(backoff)
                backoff = min(_BACKOFF_S[1], backoff * 2)

    async def _follow_once(self) -> None:
        url = f"{self.home_url}/internal/v1/changes"
        epoch, _ = await asyncio.to_thread(changes.cursor, self.db)
        params = {"after": str(self.applied_seq), "epoch": str(epoch)}
        request = self._http().get(url, params=params, headers=self.token.header())
        async with asyncio.timeout(self.config.dead_after_s):
            response = await request
        async with response:
            if response.status != 200:
                text = (await response.content.read(2000)).decode(errors="replace")
                raise ConnectionError(f"HTTP {response.status} {text}")
            while True:
                async with asyncio.timeout(self.config.dead_after_s):
                    line = await response.content.readline()
                if not line:
                    return
                self.last_heard = time.monotonic()
                data = orjson.loads(line)
                batch = [Change.parse(change) for change in data["changes"]]
                self.home_head = max(self.home_head, int(data["head"]))
                if batch:
                    await self._apply(batch, int(data["epoch"]))

    async def _apply(self, batch: list[Change], epoch: int) -> None:
        applied, fresh = await asyncio.to_thread(changes.apply, self.db, batch, epoch)
        self.applied_seq = applied
        # Reload here and tell the other replicas (each announcement once per batch).
        for announcement in dict.fromkeys(change.announcement for change in fresh):
            await self.governance.registry.changed(announcement)
        self.applied.notify()

    # ------------------------------------------------------------ status

    async def status(self) -> dict[str, Any]:
        """What an operator watches (the ``aigw_gov_*`` metrics)."""

        def unshipped() -> int:
            if self.is_home:
                return 0
            # On the reports connection (bounded, like every report): a long backlog's
            # count must not hold up key lookups and the drain on the replica's own.
            return audit.unshipped_count(self.governance.reports_db)

        silence: float | None = 0.0
        behind: dict[str, float] = {}
        if self.is_home:
            head = await asyncio.to_thread(changes.head, self.db)
            applied = head
            # How far each follower's audit lags here (a follower that never reported:
            # since the epoch, so an alert on it fires unless it reports within its "for").
            followers = [name for name in self.config.peers if name != self.cloud]
            through = await asyncio.to_thread(audit.shipped_through, self.db, followers)
            now = time.time()
            behind = {cloud: max(0.0, now - at) for cloud, at in through.items()}
        else:
            head, applied = self.home_head, self.applied_seq
            silence = time.monotonic() - self.last_heard if self.last_heard else None
        return {
            "feed_applied_seq": applied,
            "feed_head_seq": head,
            "feed_silence_seconds": silence,
            "home_reachable": 1 if self.is_home or self.leases.home_reachable else 0,
            "audit_unshipped": await asyncio.to_thread(unshipped),
            "audit_behind_seconds": behind,
            "lease_overdrawn_nusd": self.leases.overdrawn_nusd,
            "peer_auth_failures": dict(self.verifier.failures),
        }

    # ------------------------------------------------------------ audit shipping

    async def _post_audit(self, body: bytes) -> None:
        """One audit batch to the home (:class:`~.shipping.AuditShipper`'s ``post``):
        returns once the home answered that it stored it."""
        async with asyncio.timeout(self.config.forward_timeout_s):
            response = await self._http().post(
                f"{self.home_url}/internal/v1/audit",
                data=body,
                headers={**self.token.header(), "content-type": "application/json"},
            )
        async with response, asyncio.timeout(self.config.forward_timeout_s):
            payload = await response.read()
        if response.status != 200:
            raise ConnectionError(f"HTTP {response.status} {payload[:300]!r}")

    def complete_through(self) -> float:
        """(The home) the time before which every cloud's audit is here (blocking)."""
        followers = [name for name in self.config.peers if name != self.cloud]
        return audit.complete_through(self.db, followers)

    # ------------------------------------------------------------ leases

    def _budgets(self, now: float) -> list[BudgetItem]:
        """Every budget with a limit now, for this period (the default per-customer budget
        joins per customer once a request of that customer asked for a lease)."""
        day, month, day_left, month_left = period_ends(now)
        items = []
        for limit in self.governance.registry.limits.values():
            if limit.scope == "customer" and limit.scope_id == "*":
                continue
            name = f"{limit.scope}:{limit.scope_id}"
            if limit.daily_usd is not None:
                items.append(
                    BudgetItem(
                        name, "daily", day, round(limit.daily_usd * NANO), 0, day_left + 3600
                    )
                )
            if limit.monthly_usd is not None:
                monthly = round(limit.monthly_usd * NANO)
                items.append(BudgetItem(name, "monthly", month, monthly, 0, month_left + 3600))
        return items

    def _rates(self) -> list[RateItem]:
        """Every RPM/TPM limit now (the default per-customer limit joins per customer once
        a request of that customer was refused by this cloud's share)."""
        items = []
        for limit in self.governance.registry.limits.values():
            if limit.scope == "customer" and limit.scope_id == "*":
                continue
            name = f"{limit.scope}:{limit.scope_id}"
            if limit.rpm is not None:
                items.append(RateItem(name, "rpm", limit.rpm, 0))
            if limit.tpm is not None:
                items.append(RateItem(name, "tpm", limit.tpm, 0))
        return items

    async def _renew(self, reports: dict[str, Any]) -> dict[str, Any]:
        """One renewal at the home's ledger: in process at the home, else over the channel:
        ``{"budgets": [...], "rates": [...]}`` in, ``{"grants": [...], "shares": [...]}``
        out."""
        if self.ledger is not None:
            budgets = [Report.parse(report) for report in reports["budgets"]]
            rates = [RateReport.parse(report) for report in reports["rates"]]
            grants, shares = await asyncio.to_thread(
                self.ledger.renew_all, self.cloud, budgets, rates
            )
            return {"grants": grants, "shares": shares}
        async with asyncio.timeout(self.config.dead_after_s):
            response = await self._http().post(
                f"{self.home_url}/internal/v1/leases/renew",
                data=orjson.dumps({"cloud": self.cloud, **reports}),
                headers={**self.token.header(), "content-type": "application/json"},
            )
        async with response, asyncio.timeout(self.config.dead_after_s):
            payload = await response.read()
        if response.status != 200:
            raise ConnectionError(f"HTTP {response.status} {payload[:300]!r}")
        data = orjson.loads(payload)
        if int(data.get("epoch", 0)) < self.config.epoch:
            raise ConnectionError("a stale home answered (lower epoch): its grants are ignored")
        return {"grants": data["grants"], "shares": data.get("shares") or []}

    # ------------------------------------------------------------ forwarding

    async def forward(
        self, principal: Principal, method: str, path: str, query: str, body: Any
    ) -> AdminAnswer:
        """Send an admin call to the home and relay its answer (see the module docstring)."""
        # A report may take the home up to its query limit (admin_query_timeout_s, the
        # same app config in every cloud): waiting less would answer "unreachable" for a
        # home still working on it, and the caller's retry would start another query there.
        timeout = self.config.forward_timeout_s
        if path.startswith(REPORT_PATHS):
            timeout = max(
                timeout, self.governance.settings.admin_query_timeout_s + _REPORT_MARGIN_S
            )
        envelope = {
            "principal": rbac.principal_public(principal),
            "method": method,
            "path": path,
            "query": query,
            "body": body,
        }
        try:
            async with asyncio.timeout(timeout):
                response = await self._http().post(
                    f"{self.home_url}/internal/v1/admin",
                    data=orjson.dumps(envelope),
                    headers={**self.token.header(), "content-type": "application/json"},
                )
            async with response, asyncio.timeout(timeout):
                payload = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("admin %s %s: the home %s is unreachable: %s", method, path, self.home, exc)
            raise self._unreachable(f"{type(exc).__name__}") from None
        if response.headers.get("x-aigw-peer-auth") == "refused":
            log.error("the home %s refused this cloud's token: %s", self.home, payload[:300])
            raise self._unreachable("it refused this cloud's identity token")
        seq = response.headers.get("x-aigw-change-seq")
        if seq is not None:
            await self.wait_applied(int(seq), self.config.read_your_writes_s)
        headers = [(b"x-aigw-served-by", self.home.encode())]
        for name in ("retry-after", "x-aigw-audit-complete-through"):
            value = response.headers.get(name)
            if value is not None:
                headers.append((name.encode(), value.encode()))
        return AdminAnswer(response.status, payload, tuple(headers))

    def _unreachable(self, why: str) -> GatewayError:
        return GatewayError(
            503,
            f"The home cloud of governance ({self.home}) cannot be reached from {self.cloud} "
            f"({why}), and it answers every admin call so that every cloud gives the same "
            "answer. Retry in a few seconds (through the global hostname another cloud may "
            "answer), or read this cloud's copy with ?consistency=local.",
            code="governance_home_unreachable",
            type="server_error",
            headers={"retry-after": "5"},
        )

    async def wait_applied(self, seq: int, timeout: float) -> bool:
        """Wait until this cloud has applied ``seq`` (at most ``timeout``); whether it has."""
        deadline = time.monotonic() + timeout
        while self.applied_seq < seq:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("change %d not applied here within %.1fs", seq, timeout)
                return False
            await self.applied.wait(left)
        return True

    def local_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """What a ``?consistency=local`` answer says about this cloud's copy."""
        return (
            (b"x-aigw-served-by", self.cloud.encode()),
            (b"x-aigw-consistency", b"local"),
            (b"x-aigw-applied-seq", str(self.applied_seq).encode()),
        )


async def _send(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
