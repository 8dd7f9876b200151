"""The PostgreSQL connection budget of one cloud: what the gateway needs at its peak against
what the database size allows. Pure functions, no Pulumi resources.

Past ``max_connections`` PostgreSQL refuses new connections (``remaining connection slots
are reserved``): the replicas that cannot connect answer keys created elsewhere with 503
``key_store_unavailable`` and their audit waits in Redis. That happens at peak traffic,
when the HPA has scaled to ``maxReplicas``, long after a deploy that looked fine; so the
stack config refuses a plan whose peak does not fit (:func:`check_budget`), naming the
cloud, the keys, both numbers and the fixes.

**What the gateway needs** (:func:`connections_needed`, docs/operations/sizing.md,
"PostgreSQL connections"): each gateway process holds at most 3 connections (its
first one, its audit drain's own, and the admin reports' own once they ran on it); the
one replica of a follower cloud holding the audit-shipper lease holds one more; each migration Job
(the stable track's, and the canary's when a canary runs) and the ``audit-maintain``
CronJob (``concurrencyPolicy: Forbid``) hold one while they run. The pods are counted at a
rollout at the HPA's ceiling (:meth:`ConnectionDemand.rollout_pods`): the ceiling, the
pods the rollout runs above it, and the old pods it replaced that are still shutting down.

**What the database allows** (:func:`rds_max_connections`,
:func:`flexible_server_max_connections`, :func:`cloud_sql_max_connections`): the
provider's default ``max_connections`` for the size, or the stack's own
``postgresMaxConnections`` (which the footprint then sets on the server), less the
connections the server keeps for itself. ``None`` means the size is not in the tables
here: the check then refuses the plan and asks for ``postgresMaxConnections``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from infra.contracts import Cloud
from infra.decisions.k8s import rolling_surge

CONNECTIONS_PER_PROCESS = 3
"""A gateway process's first connection, its audit drain's own (always open on PostgreSQL:
the drain's ``COPY`` runs on the event loop, away from the key lookups), plus the admin
reports' own once they ran on it.

Held to the gateway itself by ``tests/gateway/governance/test_connection_budget.py`` and
``tests/multicloud/test_connections.py``, which count real ``serve`` processes' (and the
Jobs' and the audit shipper's) connections on a real PostgreSQL against this module's
arithmetic."""

GATEWAY_WORKERS_PER_POD = 1
"""Processes per gateway pod: the Deployment runs the image's ``serve`` without ``--workers``."""

POSTGRES_SUPERUSER_RESERVED = 3
"""PostgreSQL's default ``superuser_reserved_connections``: slots the gateway's role
(not a superuser) can never take
(https://www.postgresql.org/docs/16/runtime-config-connection.html)."""

# ------------------------------------------------------------------ AWS (RDS)

RDS_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html#RDS_Limits.MaxConnections"
RDS_BYTES_PER_CONNECTION = 9_531_392
"""RDS for PostgreSQL's default: ``max_connections = LEAST({DBInstanceClassMemory/9531392}, 5000)``."""
RDS_DEFAULT_CEILING = 5000

# RDS gives no figure for DBInstanceClassMemory, only that it is smaller than the class's
# memory "because of memory reserved for the operating system and RDS management
# processes" (RDS_DOC). Counted here as 90% of the class's memory less 256 MiB: below what
# instances report (87, 413, 856 and 1,660 connections for 1, 4, 8 and 15.25 GiB classes:
# 78-97% of the nominal memory over 9531392), so the check never overstates the limit.
RDS_MEMORY_FRACTION = 0.9
RDS_MEMORY_RESERVE_BYTES = 256 * 2**20
_GIB = 2**30

# GiB per vCPU of the classes' families (RDS "Hardware specifications for DB instance
# classes"); the burstable families by size.
_RDS_GIB_PER_VCPU = {
    **dict.fromkeys(("m5", "m5d", "m6g", "m6gd", "m6i", "m6id", "m7g", "m7i", "m8g"), 4),
    **dict.fromkeys(("r5", "r5d", "r6g", "r6gd", "r6i", "r6id", "r7g", "r7i", "r8g"), 8),
}
_RDS_BURSTABLE_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
_RDS_BURSTABLE_FAMILIES = ("t3", "t4g")
_RDS_CLASS = re.compile(r"db\.(?P<family>[a-z0-9]+)\.(?P<size>[a-z0-9]+)")
_RDS_SIZE = re.compile(r"(?P<times>\d*)xlarge")


def rds_memory_gib(instance_class: str) -> int | None:
    """The memory of an RDS instance class in GiB (``db.m7g.large`` -> 8), or None if unknown."""
    match = _RDS_CLASS.fullmatch(instance_class)
    if match is None:
        return None
    family, size = match["family"], match["size"]
    if family in _RDS_BURSTABLE_FAMILIES:
        return _RDS_BURSTABLE_GIB.get(size)
    per_vcpu = _RDS_GIB_PER_VCPU.get(family)
    if per_vcpu is None:
        return None
    if size == "large":
        return 2 * per_vcpu
    sized = _RDS_SIZE.fullmatch(size)
    if sized is None:
        return None
    return 4 * int(sized["times"] or 1) * per_vcpu


def rds_max_connections(instance_class: str) -> int | None:
    """RDS for PostgreSQL's default ``max_connections`` for a class, counted conservatively.

    ``LEAST(DBInstanceClassMemory/9531392, 5000)`` (:data:`RDS_DOC`), with
    ``DBInstanceClassMemory`` taken as 90% of the class's memory less 256 MiB (RDS
    gives no figure; see :data:`RDS_MEMORY_FRACTION`). None for a class not known here.
    """
    gib = rds_memory_gib(instance_class)
    if gib is None:
        return None
    usable = gib * _GIB * RDS_MEMORY_FRACTION - RDS_MEMORY_RESERVE_BYTES
    return min(math.floor(usable / RDS_BYTES_PER_CONNECTION), RDS_DEFAULT_CEILING)


# ------------------------------------------------- Azure (Flexible Server)

FLEXIBLE_SERVER_DOC = (
    "https://learn.microsoft.com/en-us/azure/postgresql/flexible-server/concepts-limits"
)
FLEXIBLE_SERVER_RESERVED = 15
"""Connections Flexible Server keeps for physical replication and monitoring (:data:`FLEXIBLE_SERVER_DOC`)."""

_FLEXIBLE_SERVER_BURSTABLE = {
    "Standard_B1ms": 50,
    "Standard_B2s": 429,
    "Standard_B2ms": 859,
    "Standard_B4ms": 1718,
    "Standard_B8ms": 3437,
    "Standard_B12ms": 5000,
    "Standard_B16ms": 5000,
    "Standard_B20ms": 5000,
}
# General Purpose (D) and Memory Optimized (E) by vCores; the table lists the same value
# for every generation of a size (s_v3, ds_v4, ds_v5, ads_v5).
_FLEXIBLE_SERVER_BY_VCORES = {
    "D": {2: 859, 4: 1718, 8: 3437, 16: 5000, 32: 5000, 48: 5000, 64: 5000, 96: 5000},
    "E": {2: 1718, 4: 3437, 8: 5000, 16: 5000, 20: 5000, 32: 5000, 48: 5000, 64: 5000, 96: 5000},
}
_FLEXIBLE_SERVER_SKU = re.compile(
    r"Standard_(?P<series>[DE])(?P<vcores>\d+)(?P<generation>s_v3|ds_v4|ds_V4|ds_v5|ads_v5)"
)


def flexible_server_max_connections(sku: str) -> int | None:
    """Flexible Server's default ``max_connections`` for a compute SKU, or None if unknown.

    The "Maximum connections" table of :data:`FLEXIBLE_SERVER_DOC` (before the 15 the
    server keeps, :data:`FLEXIBLE_SERVER_RESERVED`).
    """
    if sku in _FLEXIBLE_SERVER_BURSTABLE:
        return _FLEXIBLE_SERVER_BURSTABLE[sku]
    match = _FLEXIBLE_SERVER_SKU.fullmatch(sku)
    if match is None:
        return None
    return _FLEXIBLE_SERVER_BY_VCORES[match["series"]].get(int(match["vcores"]))


# ---------------------------------------------------------- GCP (Cloud SQL)

CLOUD_SQL_DOC = "https://cloud.google.com/sql/docs/postgres/quotas#maximum_concurrent_connections"

_CLOUD_SQL_SHARED_CORE = {"db-f1-micro": 25, "db-g1-small": 50}
# (memory from, in GiB, connections): the table by memory of CLOUD_SQL_DOC.
_CLOUD_SQL_BY_MEMORY = (
    (120.0, 1000),
    (60.0, 800),
    (30.0, 600),
    (15.0, 500),
    (7.5, 400),
    (6.0, 200),
    (3.75, 100),
)
_CLOUD_SQL_CUSTOM = re.compile(r"db-custom-(?P<vcpus>\d+)-(?P<mb>\d+)")
_CLOUD_SQL_PREDEFINED = re.compile(r"db-n1-(?P<kind>standard|highmem)-(?P<vcpus>\d+)")
_CLOUD_SQL_PREDEFINED_GB_PER_VCPU = {"standard": 3.75, "highmem": 6.5}


def cloud_sql_memory_gb(tier: str) -> float | None:
    """The memory of a dedicated-core Cloud SQL tier in GB (``db-custom-1-3840`` -> 3.75)."""
    custom = _CLOUD_SQL_CUSTOM.fullmatch(tier)
    if custom is not None:
        return int(custom["mb"]) / 1024
    predefined = _CLOUD_SQL_PREDEFINED.fullmatch(tier)
    if predefined is not None:
        return int(predefined["vcpus"]) * _CLOUD_SQL_PREDEFINED_GB_PER_VCPU[predefined["kind"]]
    return None


def cloud_sql_max_connections(tier: str) -> int | None:
    """Cloud SQL for PostgreSQL's default ``max_connections`` for a tier, or None if unknown.

    The shared-core tiers (``db-f1-micro`` 25, ``db-g1-small`` 50) and the table by
    memory for the rest (:data:`CLOUD_SQL_DOC`): ``db-custom-<vCPUs>-<MB>`` and the
    predefined ``db-n1-standard-<n>`` (3.75 GB per vCPU) and ``db-n1-highmem-<n>``
    (6.5 GB per vCPU). A tier below 3.75 GB that is not shared-core is unknown.
    """
    if tier in _CLOUD_SQL_SHARED_CORE:
        return _CLOUD_SQL_SHARED_CORE[tier]
    memory = cloud_sql_memory_gb(tier)
    if memory is None:
        return None
    return next((n for floor, n in _CLOUD_SQL_BY_MEMORY if memory >= floor), None)


# ------------------------------------------------------------------ the budget


@dataclass(frozen=True)
class DatabaseSize:
    """One cloud's PostgreSQL size as the stack sets it, and what it allows."""

    key: str
    """The config key of the size in the ``ai-gateway`` namespace, for example ``gcp.postgresTier``."""
    value: str
    """The size, for example ``db-custom-1-3840``."""
    default_max_connections: int | None
    """The provider's default for the size (None: not known here)."""
    reserved: int
    """Connections the server keeps that the gateway's role cannot take."""
    doc: str
    """Where the provider documents the default."""
    override: int | None = None
    """``postgresMaxConnections``: the value the footprint sets on the server."""

    @property
    def max_connections(self) -> int | None:
        """The server's ``max_connections``: the override, else the provider's default."""
        return self.override if self.override is not None else self.default_max_connections

    @property
    def allowed(self) -> int | None:
        """Connections the gateway's role may open: ``max_connections`` less the reserved."""
        limit = self.max_connections
        return None if limit is None else max(limit - self.reserved, 0)


def rds_size(instance_class: str, override: int | None) -> DatabaseSize:
    """The AWS database size (``aws.postgresInstanceClass``)."""
    return DatabaseSize(
        key="aws.postgresInstanceClass",
        value=instance_class,
        default_max_connections=rds_max_connections(instance_class),
        reserved=POSTGRES_SUPERUSER_RESERVED,
        doc=RDS_DOC,
        override=override,
    )


def flexible_server_size(sku: str, override: int | None) -> DatabaseSize:
    """The Azure database size (``azure.postgresSku``)."""
    return DatabaseSize(
        key="azure.postgresSku",
        value=sku,
        default_max_connections=flexible_server_max_connections(sku),
        reserved=FLEXIBLE_SERVER_RESERVED,
        doc=FLEXIBLE_SERVER_DOC,
        override=override,
    )


def cloud_sql_size(tier: str, override: int | None) -> DatabaseSize:
    """The GCP database size (``gcp.postgresTier``)."""
    return DatabaseSize(
        key="gcp.postgresTier",
        value=tier,
        default_max_connections=cloud_sql_max_connections(tier),
        reserved=POSTGRES_SUPERUSER_RESERVED,
        doc=CLOUD_SQL_DOC,
        override=override,
    )


@dataclass(frozen=True)
class ConnectionDemand:
    """What one cloud's gateway and its Jobs hold at their peak."""

    max_replicas: int
    """``gateway.maxReplicas``: the stable Deployment's HPA ceiling."""
    canary_max_replicas: int = 0
    """The canary Deployment's HPA ceiling when a canary runs beside the stable one."""
    workers: int = GATEWAY_WORKERS_PER_POD
    follower: bool = False
    """A follower cloud of the global governance plane (one replica ships its audit)."""
    rollout: bool = True
    """Count a rollout at the ceiling (:meth:`rollout_pods`), as the plan does; False: the
    pods alone (a fixed fleet, as the tests that count real processes run)."""

    @staticmethod
    def rollout_pods(replicas: int) -> int:
        """A track's gateway pods holding connections at a rollout at its HPA ceiling of
        ``replicas``: the ceiling, the surge the Deployment runs above it
        (:func:`~infra.decisions.k8s.rolling_surge`: ``maxSurge`` 25%, rounded up), and as
        many old pods it replaced that are still shutting down.

        The Deployment does not count a terminating pod
        (https://www.kubernetes.dev/resources/keps/3973/), so it starts the next new pods
        while the old ones are still in their preStop pause and shutdown, holding their
        connections. With ``maxUnavailable: 0`` it removes old pods only as new ones become
        available, at most a surge's worth at a time, and a new pod is available only after
        ``minReadySeconds``, no shorter than the preStop pause: one wave of old pods is
        counted. A pod that takes longer than that to shut down (long streams in flight)
        can make it more for a while; docs/operations/sizing.md says what then happens."""
        return replicas + 2 * rolling_surge(replicas)

    @property
    def pods(self) -> int:
        """Gateway pods at the peak, both tracks (:meth:`rollout_pods` each)."""
        if not self.rollout:
            return self.max_replicas + self.canary_max_replicas
        return self.rollout_pods(self.max_replicas) + self.rollout_pods(self.canary_max_replicas)

    @property
    def processes(self) -> int:
        """Gateway processes at the peak: the pods times their workers."""
        return self.pods * self.workers

    @property
    def jobs(self) -> int:
        """The migration Job of each track, and ``audit-maintain``."""
        return (2 if self.canary_max_replicas else 1) + 1

    @property
    def total(self) -> int:
        """Connections at the peak."""
        return CONNECTIONS_PER_PROCESS * self.processes + int(self.follower) + self.jobs

    def _track(self, replicas: int) -> str:
        if not self.rollout:
            return f"{replicas}"
        surge = rolling_surge(replicas)
        return f"{replicas} + {surge} surge + {surge} shutting down"

    def describe(self) -> str:
        """The sum, term by term, as the error shows it."""
        pods = f"({self._track(self.max_replicas)})"
        if self.canary_max_replicas:
            pods = f"({pods} + ({self._track(self.canary_max_replicas)}) canary)"
        parts = [f"{CONNECTIONS_PER_PROCESS} x {pods} pods x {self.workers} worker(s)"]
        if self.follower:
            parts.append("1 audit shipper")
        parts.append(f"{self.jobs} Jobs")
        return " + ".join(parts)

    def fitting_max_replicas(self, allowed: int) -> int:
        """The largest ``gateway.maxReplicas`` whose peak fits ``allowed`` connections (the
        canary's HPA, when one runs, with the same ceiling); 0 when none does."""
        for replicas in range(self.max_replicas, 0, -1):
            fewer = replace(
                self,
                max_replicas=replicas,
                canary_max_replicas=replicas if self.canary_max_replicas else 0,
            )
            if fewer.total <= allowed:
                return replicas
        return 0


def connections_needed(
    max_replicas: int,
    *,
    canary: bool,
    follower: bool,
    workers: int = GATEWAY_WORKERS_PER_POD,
    rollout: bool = True,
) -> ConnectionDemand:
    """One cloud's peak: the canary's HPA has the stable one's ceiling when a canary runs;
    ``rollout`` (the plan's count): at a rollout at that ceiling."""
    return ConnectionDemand(
        max_replicas=max_replicas,
        canary_max_replicas=max_replicas if canary else 0,
        workers=workers,
        follower=follower,
        rollout=rollout,
    )


def check_budget(
    cloud: Cloud, demand: ConnectionDemand, size: DatabaseSize
) -> tuple[str, str] | None:
    """``(key, message)`` when ``size`` cannot hold ``demand`` on ``cloud``, else None.

    The key (relative to the ``ai-gateway`` namespace) is the size's, or
    ``postgresMaxConnections`` when that override set the limit.
    """
    override_key = f"{cloud.value}.postgresMaxConnections"
    needed = demand.total
    allowed = size.allowed
    if allowed is None:
        return (
            size.key,
            f"{size.value} is a size whose default max_connections this check does not "
            f"know, so the {cloud.value} gateway's peak of {needed} PostgreSQL connections "
            f"({demand.describe()}) cannot be checked against it; use a size from {size.doc}, "
            f"or set ai-gateway:{override_key} to the max_connections the database should "
            f"have, at least {needed + size.reserved} (the footprint sets it on the server)",
        )
    if needed <= allowed:
        return None
    if size.override is not None:
        key, source = override_key, f"max_connections {size.max_connections} set here"
    else:
        key = size.key
        source = f"the default max_connections {size.max_connections} of {size.value} ({size.doc})"
    fitting = demand.fitting_max_replicas(allowed)
    return (
        key,
        f"the {cloud.value} database allows the gateway {allowed} connections ({source}, "
        f"less {size.reserved} reserved) but at ai-gateway:gateway.maxReplicas "
        f"{demand.max_replicas} it needs {needed} ({demand.describe()}); past the limit "
        "PostgreSQL refuses new connections and the replicas without one answer 503 "
        f"key_store_unavailable. Choose a larger ai-gateway:{size.key}, lower "
        f"ai-gateway:gateway.maxReplicas to {fitting} or less, or set "
        f"ai-gateway:{override_key} to at least {needed + size.reserved} (the footprint "
        "sets it on the server; each connection takes memory)",
    )
