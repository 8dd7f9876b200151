"""The pure decisions of the AWS footprint: CIDR layout, sizing per environment, names.

Nothing here imports Pulumi or talks to AWS: every function maps plain values
to plain values, so the arithmetic and policy of the footprint are unit-tested
directly (``tests/infra/aws/test_decisions.py``) and the components only wire
resources together. Errors name the config key, the bad value and the fix.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from dataclasses import dataclass
from urllib.parse import quote

from infra.decisions import k8s
from infra.decisions.k8s import ExecPlugin

# AWS accepts VPC CIDRs from /16 to /28 and subnets no smaller than /28.
_VPC_MIN_PREFIX = 16
_SUBNET_MAX_PREFIX = 28


@dataclass(frozen=True)
class SubnetLayout:
    """The subnets of a VPC, one CIDR per availability zone in each tier.

    ``private`` (nodes and pods: the VPC CNI gives every pod a VPC address, so
    this tier gets half the VPC), ``public`` (load balancers and NAT gateways)
    and ``database`` (RDS and ElastiCache, no route to the internet).
    """

    public: tuple[str, ...]
    private: tuple[str, ...]
    database: tuple[str, ...]


def split_vpc_cidr(vpc_cidr: str, zone_count: int) -> SubnetLayout:
    """Split ``vpc_cidr`` into public, private and database subnets for ``zone_count`` AZs.

    The first half of the VPC holds the private subnets (each a ``1/2^k`` of
    that half, with ``2^k`` the smallest power of two >= ``zone_count``); the
    next eighth holds the public subnets and the eighth after it the database
    subnets, split the same way. The last quarter stays free for later tiers.
    A /16 over three AZs gives /19 private subnets (8,187 usable addresses
    each) and /21 public and database subnets: like terraform-aws-modules/vpc
    examples, the private tier is the large one because pods take VPC addresses.
    """
    try:
        network = ipaddress.IPv4Network(vpc_cidr, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"ai-gateway:aws.vpcCidr: {vpc_cidr!r} is not an IPv4 network ({exc}); use a "
            "network address with a prefix, for example 10.10.0.0/16"
        ) from None
    if not 2 <= zone_count <= 6:
        raise ValueError(
            f"ai-gateway:aws.availabilityZoneCount: {zone_count} is not allowed; use an "
            "integer from 2 to 6 (EKS needs subnets in at least two AZs)"
        )
    bits = math.ceil(math.log2(zone_count))
    smallest = network.prefixlen + 3 + bits
    if network.prefixlen < _VPC_MIN_PREFIX or smallest > _SUBNET_MAX_PREFIX:
        largest_prefix = _SUBNET_MAX_PREFIX - 3 - bits
        raise ValueError(
            f"ai-gateway:aws.vpcCidr: {vpc_cidr} cannot hold {zone_count} AZs of public, "
            f"private and database subnets; use a prefix from /{_VPC_MIN_PREFIX} to "
            f"/{largest_prefix} (AWS VPCs are /16 to /28 and subnets at least /28)"
        )
    private_half, rest = network.subnets(prefixlen_diff=1)
    eighths = list(rest.subnets(prefixlen_diff=2))
    public_block, database_block = eighths[0], eighths[1]

    def split(block: ipaddress.IPv4Network) -> tuple[str, ...]:
        return tuple(str(s) for s in list(block.subnets(prefixlen_diff=bits))[:zone_count])

    return SubnetLayout(
        public=split(public_block), private=split(private_half), database=split(database_block)
    )


def pick_zones(available: list[str], zone_count: int, region: str) -> list[str]:
    """The first ``zone_count`` AZ names of the region, or an error saying how many exist."""
    if len(available) < zone_count:
        raise ValueError(
            f"ai-gateway:aws.availabilityZoneCount: {zone_count} AZs requested but {region} "
            f"offers {len(available)} ({', '.join(available) or 'none'}); lower "
            "availabilityZoneCount or pick another region"
        )
    return sorted(available)[:zone_count]


def nat_gateway_count(mode: str, zone_count: int) -> int:
    """NAT gateways to create: one for ``single``, one per AZ for ``one-per-az``."""
    if mode == "single":
        return 1
    if mode == "one-per-az":
        return zone_count
    raise ValueError(
        f"ai-gateway:aws.natGateways: {mode!r} is not allowed; use single or one-per-az"
    )


def nat_gateway_for_zone(zone_index: int, nat_count: int) -> int:
    """Which NAT gateway the private route table of AZ ``zone_index`` uses.

    With one NAT per AZ each zone keeps its egress inside the zone (an AZ outage
    takes down only that zone's egress); with a single NAT every zone uses it.
    """
    if nat_count < 1 or zone_index < 0:
        raise ValueError(f"no NAT gateway for zone {zone_index} of {nat_count}")
    return zone_index if nat_count > 1 else 0


# ------------------------------------------------------------------------ names

# Per-resource-type name rules: (max length, pattern of one valid name).
NAME_LIMITS: dict[str, int] = {
    "eks-cluster": 100,
    # A name prefix: the provider appends a 26-character unique suffix.
    "eks-node-group-prefix": 37,
    "security-group-prefix": 74,
    "iam-role": 64,
    "iam-policy": 128,
    "elasticache-replication-group": 40,
    "elasticache-subnet-group": 255,
    "rds-instance": 63,
    "rds-parameter-group": 255,
    "rds-subnet-group": 255,
    "launch-template": 128,
}


def aws_name(prefix: str, suffix: str, kind: str) -> str:
    """A physical name ``<prefix>-<suffix>`` that fits the AWS limit of ``kind``.

    Too long a name is cut and ends in a 6-character hash of the full name, so
    two long names that share a prefix stay distinct and the same input always
    gives the same name. Names are lowercase letters, digits and single hyphens,
    starting with a letter and not ending in a hyphen: the strictest rule of the
    kinds above (ElastiCache and RDS identifiers), valid for all of them.
    """
    try:
        limit = NAME_LIMITS[kind]
    except KeyError:
        raise ValueError(
            f"unknown AWS name kind {kind!r}; use one of {', '.join(sorted(NAME_LIMITS))}"
        ) from None
    full = re.sub(r"-{2,}", "-", f"{prefix}-{suffix}".lower().strip("-"))
    if not re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", full):
        raise ValueError(
            f"ai-gateway:tags.project: {full!r} cannot name AWS resources; use lowercase "
            "letters, digits and hyphens, starting with a letter"
        )
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:6]
    return f"{full[: limit - 7].rstrip('-')}-{digest}"


# --------------------------------------------------------------- data stores


@dataclass(frozen=True)
class RedisTopology:
    """How many cache nodes and whether the replication group fails over across AZs."""

    cache_clusters: int
    automatic_failover: bool
    multi_az: bool


def redis_topology(high_availability: bool) -> RedisTopology:
    """One primary in dev; a primary and a replica in another AZ with failover in HA."""
    if high_availability:
        return RedisTopology(cache_clusters=2, automatic_failover=True, multi_az=True)
    return RedisTopology(cache_clusters=1, automatic_failover=False, multi_az=False)


_REDIS_DEFAULT_VERSIONS = {"valkey": "8.0", "redis": "7.1"}


def redis_engine_version(engine: str, override: str | None) -> str:
    """The engine version: the override, else the newest major AWS offers for ``engine``."""
    if engine not in _REDIS_DEFAULT_VERSIONS:
        raise ValueError(
            f"ai-gateway:aws.redisEngine: {engine!r} is not allowed; use valkey or redis"
        )
    return override or _REDIS_DEFAULT_VERSIONS[engine]


_RDS_MAX_STORAGE_GB = 65536


def postgres_max_storage(storage_gb: int) -> int:
    """The storage-autoscaling ceiling: 4x the allocated storage, within RDS's 64 TiB.

    Growth of the audit tables then never fills the disk (an outage), while a
    runaway writer cannot grow the bill without bound.
    """
    if storage_gb < 20:
        raise ValueError(
            f"ai-gateway:aws.postgresStorageGb: {storage_gb} is not allowed; use at least 20 "
            "(the RDS gp3 minimum)"
        )
    return min(storage_gb * 4, _RDS_MAX_STORAGE_GB)


def postgres_family(version: str) -> str:
    """The RDS parameter group family of a major version: ``16`` -> ``postgres16``.

    Only a major version is accepted: with ``autoMinorVersionUpgrade`` RDS moves
    the minor itself and retires old minors, so a pinned minor either cannot be
    created any more or later reads as a downgrade RDS refuses.
    """
    match = re.fullmatch(r"\d+", version)
    if match is None or int(version) < 16:
        raise ValueError(
            f"ai-gateway:aws.postgresVersion: {version!r} is not allowed; use a major version "
            "of PostgreSQL 16 or newer, for example 16 (RDS tracks the minor itself)"
        )
    return f"postgres{version}"


def redis_url(host: str, port: int, token: str) -> str:
    """``rediss://:<token>@host:port``: TLS (the ``s``) with the AUTH token as password."""
    return f"rediss://:{quote(token, safe='')}@{host}:{port}"


def postgres_dsn(user: str, password: str, host: str, port: int, database: str) -> str:
    """A libpq URL that refuses plaintext: ``sslmode=require``."""
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
        f"{quote(database, safe='')}?sslmode=require"
    )


# ------------------------------------------------------------------------ EKS


def endpoint_access(
    deployer_cidrs: list[str], private_endpoint_only: bool
) -> tuple[bool, list[str]]:
    """Whether the public API endpoint is on, and the CIDRs it admits.

    The private endpoint is always on (nodes reach the API inside the VPC). The
    public one is off when the deployer runs inside the network, and otherwise
    admits only the deployer CIDRs: never 0.0.0.0/0. An empty list (allowed in
    dev only) turns the public endpoint off rather than letting EKS default it
    to 0.0.0.0/0.
    """
    if private_endpoint_only or not deployer_cidrs:
        return False, []
    for cidr in deployer_cidrs:
        if ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
            raise ValueError(
                f"ai-gateway:aws.deployerCidrs: {cidr} opens the API to the internet; list "
                "the deployer's egress CIDRs instead"
            )
    return True, list(deployer_cidrs)


def token_plugin(cluster_name: str, region: str) -> ExecPlugin:
    """``aws eks get-token``: a 15-minute token from the caller's own AWS credentials.

    The cluster maps the caller's IAM identity through its access entries.
    """
    return ExecPlugin(
        command="aws",
        args=(
            "eks",
            "get-token",
            "--cluster-name",
            cluster_name,
            "--region",
            region,
            "--output",
            "json",
        ),
    )


def kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """The EKS cluster's kubeconfig: its user runs :func:`token_plugin`, no token is stored."""
    return k8s.kubeconfig(
        cluster_name,
        endpoint,
        ca_data,
        token_plugin(cluster_name, region),
        user=f"aws-{cluster_name}",
    )


def oidc_issuer_host(issuer_url: str) -> str:
    """The issuer without ``https://``: the form IAM trust-policy condition keys use."""
    if not issuer_url.startswith("https://"):
        raise ValueError(f"EKS OIDC issuer {issuer_url!r} is not an https URL")
    return issuer_url.removeprefix("https://")


# ------------------------------------------------------------- cluster autoscaler


IMAGE_TAGS = {
    "1.28": "v1.28.7",
    "1.29": "v1.29.5",
    "1.30": "v1.30.7",
    "1.31": "v1.31.5",
    "1.32": "v1.32.7",
    "1.33": "v1.33.6",
    "1.34": "v1.34.5",
    "1.35": "v1.35.2",
    "1.36": "v1.36.1",
}
"""The newest Cluster Autoscaler release of each Kubernetes minor (upstream tags
``cluster-autoscaler-1.x.y``). "We recommend using Cluster Autoscaler with the
Kubernetes control plane version for which it was meant" (its FAQ)."""


def image_tag(kubernetes_version: str) -> str:
    """The Cluster Autoscaler image for a cluster's minor version, or an error naming the fix."""
    try:
        return IMAGE_TAGS[kubernetes_version]
    except KeyError:
        known = ", ".join(IMAGE_TAGS)
        raise ValueError(
            f"ai-gateway:aws.kubernetesVersion: {kubernetes_version} has no Cluster Autoscaler "
            f"release pinned in infra/decisions/aws.py; use one of {known}, or add the "
            "autoscaler release of that minor to IMAGE_TAGS"
        ) from None
