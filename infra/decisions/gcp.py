"""The GCP footprint's pure decisions: names and address ranges. No Pulumi resources.

**Names.** Physical names of GCP resources that fit each service's rules: pure functions, no Pulumi.

Most GCP names follow RFC 1035 (lowercase letters, digits and hyphens, starting
with a letter, not ending with a hyphen) but the length limits differ: a GKE
cluster or a Memorystore instance takes 40 characters, a service account id
6 to 30. :func:`resource_name` builds ``<prefix>-<role>`` and, when that is too
long, shortens the prefix and adds a stable 4-character hash so two long
prefixes still give different names.

**Ranges.** Address-range decisions for a VPC-native GKE cluster: pure functions, no Pulumi.

GKE gives every node a slice of the pods range sized from ``maxPodsPerNode``,
and every node an address in the subnet's primary range; the control plane
takes a /28 and private service access (Cloud SQL, Memorystore) takes its own
peered range. A range that is too small or overlaps another one is only found
by the GKE API, minutes into ``pulumi up``; :func:`check_ranges` finds it while
the config is read, naming the key, the value and the fix.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from infra.decisions import k8s
from infra.decisions.k8s import ExecPlugin

# ----------------------------------------------------------------------- names


LIMITS: dict[str, tuple[int, int]] = {
    # kind: (min length, max length)
    "network": (1, 63),
    "subnetwork": (1, 63),
    "router": (1, 63),
    "router_nat": (1, 63),
    "firewall": (1, 63),
    "global_address": (1, 63),
    "address": (1, 63),
    "cluster": (1, 40),
    "node_pool": (1, 40),
    "redis_instance": (1, 40),
    # Cloud SQL allows 98 characters for "<project>:<instance>"; a project id
    # takes up to 30, so 63 always fits.
    "sql_instance": (1, 63),
    "service_account": (6, 30),
    "artifact_repository": (1, 63),
    "key_ring": (1, 63),
    "crypto_key": (1, 63),
    "dns_zone": (1, 63),
    "health_check": (1, 63),
    "workload_identity_pool": (4, 32),
    # Secret Manager allows 255; kept to the RFC 1035 label length like the rest.
    "secret": (1, 63),
}
"""Name length limits of each kind of resource the footprint names."""

_PART = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_HASH_LENGTH = 4


def resource_name(prefix: str, role: str, kind: str, reserve: int = 0) -> str:
    """``<prefix>-<role>``, valid and within the limit of ``kind``.

    ``reserve`` keeps room for a suffix appended later (for example ``-1a2b``
    from a random id, 5 characters). When the name does not fit, the prefix is
    shortened and a hash of the full name is added, so the name stays unique
    and stable. Raises ValueError naming the bad input and the fix.
    """
    if kind not in LIMITS:
        raise ValueError(f"kind {kind!r} is unknown; use one of {', '.join(sorted(LIMITS))}")
    for what, value in (("prefix", prefix), ("role", role)):
        if not _PART.fullmatch(value):
            raise ValueError(
                f"{what} {value!r} cannot be part of a GCP name; use lowercase letters, "
                "digits and hyphens, starting with a letter and not ending with a hyphen"
            )
    minimum, maximum = LIMITS[kind]
    if reserve < 0:
        raise ValueError(f"reserve {reserve} is negative; use 0 or more")
    limit = maximum - reserve
    name = f"{prefix}-{role}"
    if len(name) <= limit:
        if len(name) + reserve < minimum:
            raise ValueError(
                f"{kind} name {name!r} is shorter than {minimum} characters; use a longer role"
            )
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
    keep = limit - len(role) - len(digest) - 2
    if keep < 1:
        raise ValueError(
            f"role {role!r} is too long for a {kind} name (at most {maximum} characters, "
            f"{reserve} reserved); use a role of at most {limit - len(digest) - 3} characters"
        )
    short = prefix[:keep].rstrip("-")
    return f"{short}-{role}-{digest}"


# ---------------------------------------------------------------------- ranges


ZONES_PER_REGION = 3
"""Zones a regional GKE node pool spans when no node locations are given."""

SURGE_NODES_PER_ZONE = 1
"""Extra nodes per zone during a surge upgrade (``maxSurge`` of the node pool)."""

MIN_PODS_PER_NODE = 8
MAX_PODS_PER_NODE = 256
MASTER_PREFIX = 28
"""GKE requires exactly a /28 for the private control plane endpoint."""

_SUBNET_RESERVED = 4
"""Addresses GCP reserves in every subnet's primary range."""


class RangeError(ValueError):
    """A bad address range; ``key`` is the config key (camelCase) to fix."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


@dataclass(frozen=True)
class GkeRanges:
    """The ranges of one GKE network, as config keys to CIDR strings."""

    subnet_cidr: str
    pods_cidr: str
    services_cidr: str
    master_cidr: str
    private_service_cidr: str

    def named(self) -> Mapping[str, str]:
        """Config key (camelCase) to CIDR, in the order errors should mention them."""
        return {
            "subnetCidr": self.subnet_cidr,
            "podsCidr": self.pods_cidr,
            "servicesCidr": self.services_cidr,
            "masterCidr": self.master_cidr,
            "privateServiceCidr": self.private_service_cidr,
        }


def pod_range_prefix_per_node(max_pods_per_node: int) -> int:
    """The prefix length of the pod range GKE gives each node.

    GKE reserves at least twice ``max_pods_per_node`` addresses per node,
    rounded up to a power of two, so pod IPs are not reused too soon: 110 pods
    (the default) take a /24, 32 pods a /26, 8 pods a /28.
    """
    if not MIN_PODS_PER_NODE <= max_pods_per_node <= MAX_PODS_PER_NODE:
        raise RangeError(
            "maxPodsPerNode",
            f"maxPodsPerNode {max_pods_per_node} is outside what GKE accepts; use an integer "
            f"from {MIN_PODS_PER_NODE} to {MAX_PODS_PER_NODE}",
        )
    return 32 - math.ceil(math.log2(2 * max_pods_per_node))


def nodes_in_pods_range(pods_cidr: str, max_pods_per_node: int) -> int:
    """How many nodes the pods range can serve at ``max_pods_per_node``."""
    per_node = pod_range_prefix_per_node(max_pods_per_node)
    prefix = _network("podsCidr", pods_cidr).prefixlen
    return 0 if prefix > per_node else 2 ** (per_node - prefix)


def nodes_in_subnet(subnet_cidr: str) -> int:
    """How many nodes the subnet's primary range can address (GCP keeps 4 per subnet)."""
    return max(0, _network("subnetCidr", subnet_cidr).num_addresses - _SUBNET_RESERVED)


def peak_nodes(
    node_max_count: int,
    zones: int = ZONES_PER_REGION,
    surge_per_zone: int = SURGE_NODES_PER_ZONE,
) -> int:
    """Nodes a regional pool can reach: the per-zone maximum plus surge, in every zone."""
    if node_max_count < 1:
        raise RangeError(
            "nodeMaxCount", f"nodeMaxCount {node_max_count} must be at least 1; use 1 or more"
        )
    if zones < 1:
        raise RangeError("zones", f"zones {zones} must be at least 1")
    return zones * (node_max_count + surge_per_zone)


def check_ranges(ranges: GkeRanges, node_max_count: int, max_pods_per_node: int) -> None:
    """Raise :class:`RangeError` for the first range that is malformed, too small or overlapping.

    Checks, in order: every value is a CIDR; the control plane range is a /28;
    no two ranges overlap; the pods range and the subnet fit the node pool at
    its autoscaler maximum in every zone, plus one surge node per zone.
    """
    networks = {key: _network(key, value) for key, value in ranges.named().items()}

    master = networks["masterCidr"]
    if master.prefixlen != MASTER_PREFIX:
        raise RangeError(
            "masterCidr",
            f"masterCidr {master} is a /{master.prefixlen}; GKE needs exactly a /28 for the "
            f"control plane, for example {master.network_address}/28",
        )

    keys = list(networks)
    for i, first in enumerate(keys):
        for second in keys[i + 1 :]:
            if networks[first].overlaps(networks[second]):
                raise RangeError(
                    second,
                    f"{second} {networks[second]} overlaps {first} {networks[first]}; every "
                    "GKE range must be disjoint: choose a block outside the others",
                )

    needed = peak_nodes(node_max_count)
    per_node = pod_range_prefix_per_node(max_pods_per_node)
    pods = networks["podsCidr"]
    if nodes_in_pods_range(str(pods), max_pods_per_node) < needed:
        wanted = per_node - math.ceil(math.log2(needed))
        raise RangeError(
            "podsCidr",
            f"podsCidr {pods} holds pod ranges for "
            f"{nodes_in_pods_range(str(pods), max_pods_per_node)} node(s) at maxPodsPerNode "
            f"{max_pods_per_node} (a /{per_node} each), but nodeMaxCount {node_max_count} in "
            f"{ZONES_PER_REGION} zones plus {SURGE_NODES_PER_ZONE} surge node per zone needs "
            f"{needed}; use a /{wanted} or larger, or lower maxPodsPerNode",
        )

    subnet = networks["subnetCidr"]
    if nodes_in_subnet(str(subnet)) < needed:
        wanted = 32 - math.ceil(math.log2(needed + _SUBNET_RESERVED))
        raise RangeError(
            "subnetCidr",
            f"subnetCidr {subnet} addresses {nodes_in_subnet(str(subnet))} node(s), but "
            f"nodeMaxCount {node_max_count} in {ZONES_PER_REGION} zones plus surge needs "
            f"{needed}; use a /{wanted} or larger",
        )


def _network(key: str, value: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise RangeError(
            key,
            f"{key} {value!r} is not a valid CIDR block ({exc}); use a network address with "
            "a prefix length, for example 10.30.0.0/20",
        ) from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise RangeError(key, f"{key} {value} is IPv6; GKE ranges here are IPv4, use a 10.x block")
    return network


# --------------------------------------------------------------------- cluster


def workload_pool(project: str) -> str:
    """The Workload Identity pool of a project: ``<project>.svc.id.goog``."""
    if not project:
        raise ValueError("project is empty; set ai-gateway:gcp.project to the GCP project id")
    return f"{project}.svc.id.goog"


def daily_window_start(hour_utc: int) -> str:
    """``HH:MM`` for GKE's daily maintenance window, from an hour (0-23)."""
    if not 0 <= hour_utc <= 23:
        raise ValueError(f"maintenance hour {hour_utc} is not an hour; use 0 to 23 (UTC)")
    return f"{hour_utc:02d}:00"


# ------------------------------------------------------------------ kubeconfig


TOKEN_PLUGIN = ExecPlugin(
    command="gke-gcloud-auth-plugin",
    install_hint=(
        "Install gke-gcloud-auth-plugin: `gcloud components install "
        "gke-gcloud-auth-plugin` (or the Debian package "
        "google-cloud-cli-gke-gcloud-auth-plugin)"
    ),
    provide_cluster_info=True,
)
"""``gke-gcloud-auth-plugin``: a short-lived token from the deployer's gcloud credentials."""


def kubeconfig(cluster_name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig for one GKE cluster that authenticates with :data:`TOKEN_PLUGIN`.

    ``endpoint`` is the control plane's address and ``ca_certificate`` the base64
    PEM GKE returns in ``masterAuth.clusterCaCertificate``. Names follow
    ``gcloud container clusters get-credentials`` (``gke_...``).
    """
    if not endpoint:
        raise ValueError("endpoint is empty; the cluster must be created before its kubeconfig")
    context = f"gke_{cluster_name}" if cluster_name else ""
    return k8s.kubeconfig(
        context, f"https://{endpoint}", ca_certificate, TOKEN_PLUGIN, user=context
    )
