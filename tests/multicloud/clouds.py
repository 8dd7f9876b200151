"""Three simulated clouds on loopback, each a gateway with its own Redis and PostgreSQL.

A :class:`Cloud` is what one cloud's footprint gives the gateway: a private
redis-server, a private PostgreSQL cluster (migrated), a fake upstream provider
and a gateway process (``python -m gateway_app serve``) wired to those three,
started the way ``tests/gateway/governance`` starts them. Clouds share nothing
but the links of the :class:`~tests.multicloud.faults.Injector` between them:
for every ordered pair ``(a, b)`` the link ``a->b`` is how cloud ``a`` reaches
cloud ``b`` (its gateway port), so a test can partition, delay or reset any
direction of any pair.

Everything is bounded: each service waits at most 30 s to start (the gateway)
or 20 s (Redis, PostgreSQL), and :meth:`Multicloud.stop` stops every process by
its own PID (the gateway with SIGTERM, PostgreSQL's postmaster with SIGINT)
and closes every link.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import redis

from gateway_app.governance import audit
from gateway_app.governance.storage import Database
from tests.fakes import FakeUpstream
from tests.gateway.governance.processes import GatewayProcess, gateway_config
from tests.gateway.governance.services import PostgresServer, RedisServer
from tests.multicloud.faults import Injector, Link
from tests.multicloud.identity import CloudIdentity
from tests.ports import kept_port

CLOUDS = ("aws", "azure", "gcp")
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a test's client coroutine on a loop of its own.

    Not ``asyncio.run``: it leaves the main thread without a current event loop,
    and later tests (Pulumi's mocks) ask for one.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def _parallel(work: Iterable[Callable[[], T]], undo: Callable[[T], None]) -> list[T]:
    """Run independent start-up steps at once (PostgreSQL's initdb dominates).

    If any step fails, ``undo`` is called on every result that did start (so no
    server is left running) and the first error is raised.
    """
    jobs = list(work)
    done: list[T] = []
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=len(jobs) or 1) as pool:
        for future in [pool.submit(job) for job in jobs]:
            try:
                done.append(future.result())
            except BaseException as exc:
                errors.append(exc)
    if errors:
        for result in done:
            with contextlib.suppress(Exception):
                undo(result)
        raise errors[0]
    return done


@dataclass
class Cloud:
    """One simulated cloud: its gateway and the state services only it uses."""

    name: str
    redis: RedisServer
    postgres: PostgresServer
    upstream: FakeUpstream
    gateway: GatewayProcess | None = None
    links: dict[str, Link] = field(default_factory=dict)  # peer name -> link to the peer
    internal_port: int | None = None  # the gateway's internal listener (governance.global.port)

    @property
    def url(self) -> str:
        """The gateway's base URL (what the global hostname sends this cloud's clients to)."""
        assert self.gateway is not None, f"cloud {self.name} has no gateway running"
        return self.gateway.url

    @property
    def internal_url(self) -> str:
        """The gateway's internal listener, where only ``/internal/v1/...`` is served."""
        assert self.internal_port is not None, f"cloud {self.name} is not in a plane"
        return f"http://127.0.0.1:{self.internal_port}"

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One admin API call to this cloud's gateway."""
        assert self.gateway is not None, f"cloud {self.name} has no gateway running"
        return self.gateway.admin(method, path, **kwargs)

    def database(self) -> Database:
        """A new connection to this cloud's PostgreSQL (close it after use)."""
        return Database(self.postgres.url)

    def pids(self) -> list[int]:
        """The PIDs of every process this cloud runs (gateway, redis-server, postmaster)."""
        pids = [self.redis.process.pid]
        if self.gateway is not None and self.gateway.process is not None:
            pids.append(self.gateway.process.pid)
        pid_file = os.path.join(self.postgres.data, "postmaster.pid")
        if os.path.exists(pid_file):
            with open(pid_file) as handle:
                pids.append(int(handle.readline()))
        return pids

    def stop(self) -> None:
        """Stop the gateway, the fake upstream, Redis and PostgreSQL, each by its PID."""
        if self.gateway is not None:
            self.gateway.stop()
        self.upstream.stop()
        self.redis.stop()
        self.postgres.destroy()


def _services(name: str) -> Cloud:
    """Redis, PostgreSQL (migrated) and a fake OpenAI upstream for cloud ``name``."""
    redis, postgres = _parallel(
        [RedisServer, PostgresServer],
        lambda server: server.destroy() if isinstance(server, PostgresServer) else server.stop(),
    )
    cloud = Cloud(name, redis, postgres, FakeUpstream("openai").start())
    try:
        db = cloud.database()
        db.migrate()
        db.close()
    except BaseException:
        cloud.stop()
        raise
    return cloud


def _start_gateway(
    cloud: Cloud,
    governance: dict[str, Any] | None,
    env: dict[str, str] | None,
    port: int | None = None,
) -> None:
    config = gateway_config(cloud.upstream.url, **(governance or {}))
    cloud.gateway = GatewayProcess(
        config,
        {
            "AIGW_REDIS_URL": cloud.redis.url,
            "AIGW_DATABASE_URL": cloud.postgres.url,
            # Which cloud this gateway is: its name in the global governance plane.
            "AIGW_CLOUD": cloud.name,
            **(env or {}),
        },
        port,
    )


def start_cloud(
    name: str, *, governance: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> Cloud:
    """Redis, PostgreSQL (migrated), a fake OpenAI upstream and a gateway for cloud ``name``."""
    cloud = _services(name)
    try:
        _start_gateway(cloud, governance, env)
    except BaseException:
        cloud.stop()
        raise
    return cloud


def _plane(
    cloud: Cloud, identities: dict[str, CloudIdentity], home: str, epoch: int
) -> dict[str, Any]:
    """``governance.global`` for ``cloud``: every peer through its link, ``home`` at ``epoch``."""
    peers = {
        name: identity.peer(cloud.links[name].url if name != cloud.name else cloud.internal_url)
        for name, identity in identities.items()
    }
    return {
        "global": {
            "home": home,
            "epoch": epoch,
            "port": cloud.internal_port,
            "peers": peers,
            "token_file": identities[cloud.name].token_file,
        }
    }


SHIPPER_LEASE = "{aigw}:audit-shipper"
"""The audit shipper's lease in a cloud's Redis (the governance state's prefix +
``audit-shipper``); its value, the holder's token, ends ``-<pid>-<hex>``."""


def shipper_holder(client: redis.Redis) -> int:
    """The process id of the replica holding the cloud's shipper lease; 0 when none does."""
    token = client.get(SHIPPER_LEASE)
    return int(token.decode().split("-")[-2]) if token else 0


def store_events(db: Database, cloud: str, n: int, key_id: str) -> list[str]:
    """``n`` request events of ``cloud`` stored in ``db`` as its drainers store them (for its
    shipper to send); their ids."""
    audit.set_cloud(cloud)
    try:
        events = [audit.event("request", key_id=key_id) for _ in range(n)]
    finally:
        audit.set_cloud(None)
    audit.insert_events(db, events)
    return [event["event_id"] for event in events]


def wait_until(condition: Callable[[], Any], within_s: float, what: str) -> float:
    """Poll ``condition`` every 50 ms until it holds; the seconds it took. Fails, naming
    ``what``, if it does not hold within ``within_s``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within_s, f"{what}: not within {within_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


class Multicloud:
    """Clouds on loopback and a fault-injecting link for each ordered pair of them."""

    def __init__(self, clouds: dict[str, Cloud], injector: Injector) -> None:
        self.clouds = clouds
        self.injector = injector
        self.identities: dict[str, CloudIdentity] = {}
        self.home: str | None = None
        self.options: tuple[dict[str, Any] | None, dict[str, str] | None] = (None, None)

    @classmethod
    def start(
        cls,
        names: Iterable[str] = CLOUDS,
        *,
        governance: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        home: str | None = "aws",
    ) -> Multicloud:
        """Start every cloud (in parallel) and the links between them.

        With a ``home`` (the default, ``aws``), the clouds form one global governance
        plane (``governance.global``): each cloud reaches every peer through its link
        to that peer, and trusts each peer's own issuer key (:mod:`.identity`).
        ``home=None`` starts three islands (the gateway without the plane).
        """
        started: list[Cloud] = []
        injector = Injector()
        identities: dict[str, CloudIdentity] = {}
        try:
            # Services in parallel (initdb waits on the disk); gateways one after the
            # other: each start is CPU-bound (imports, price data), and three at once
            # on two busy cores took longer than one gateway's 30 s start deadline.
            started += _parallel([functools.partial(_services, n) for n in names], Cloud.stop)
            # Ports kept for the gateways (kept_port: none of the suite's connections can
            # take one before its gateway binds it, or between a restart's stop and start).
            ports = {cloud.name: kept_port() for cloud in started}
            for cloud in started:
                # The peers call each other on the internal listener, never the public port.
                cloud.internal_port = kept_port()
            for source in started:
                for target in started:
                    if source is not target:
                        source.links[target.name] = injector.link(
                            f"{source.name}->{target.name}",
                            ("127.0.0.1", target.internal_port or 0),
                        )
            if home is not None:
                identities = {cloud.name: CloudIdentity(cloud.name) for cloud in started}
            for cloud in started:
                plane = _plane(cloud, identities, home, 1) if home is not None else {}
                _start_gateway(cloud, {**plane, **(governance or {})}, env, ports[cloud.name])
        except BaseException:
            injector.close()
            for cloud in started:
                cloud.stop()
            for identity in identities.values():
                identity.remove()
            raise
        multicloud = cls({c.name: c for c in started}, injector)
        multicloud.identities = identities
        multicloud.home = home
        multicloud.options = (governance, env)
        return multicloud

    def restart(self, name: str, *, home: str, epoch: int) -> None:
        """Restart cloud ``name``'s gateway (same port, same Redis and PostgreSQL) with the
        plane's ``home`` and ``epoch`` set as an operator's ``pulumi up`` sets them."""
        cloud = self.clouds[name]
        assert cloud.gateway is not None
        port = cloud.gateway.port
        cloud.gateway.stop()
        governance, env = self.options
        plane = _plane(cloud, self.identities, home, epoch)
        _start_gateway(cloud, {**plane, **(governance or {})}, env, port)

    def __getitem__(self, name: str) -> Cloud:
        return self.clouds[name]

    def link(self, source: str, target: str) -> Link:
        """The link ``source`` uses to reach ``target``."""
        return self.clouds[source].links[target]

    def isolate(self, name: str, mode: str = "drop") -> None:
        """Partition every link into and out of cloud ``name`` (the others stay connected)."""
        for cloud in self.clouds.values():
            for target, link in cloud.links.items():
                if name in (cloud.name, target):
                    link.partition(mode)  # type: ignore[arg-type]

    def heal(self) -> None:
        """Clear every fault on every link."""
        self.injector.heal_all()

    def stop(self) -> None:
        """Close the links, then stop every cloud's processes by PID."""
        self.injector.close()

        def stop(cloud: Cloud) -> None:
            with contextlib.suppress(Exception):
                cloud.stop()

        # In parallel: each gateway may wait for its graceful shutdown. stop() never raises.
        _parallel(
            [functools.partial(stop, cloud) for cloud in self.clouds.values()], lambda _: None
        )
        for identity in self.identities.values():
            identity.remove()

    def __enter__(self) -> Multicloud:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PeakSampler:
    """Samples a figure in every cloud's Redis on a background thread (``with``) and keeps
    the peak of its sum over the clouds: what a limit or a budget must bound at every
    instant, not only at the end. Subclasses say what :meth:`now` reads."""

    def __init__(self, clouds: Multicloud, interval_s: float) -> None:
        self.clients = {n: redis.Redis.from_url(c.redis.url) for n, c in clouds.clouds.items()}
        self.interval_s = interval_s
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> dict[str, float]:
        """The figure in each cloud's Redis now."""
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(self.now().values()))
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, sum(self.now().values()))

    def close(self) -> None:
        """Close the Redis clients (after the last :meth:`now`)."""
        for client in self.clients.values():
            client.close()
