"""The Azure footprint's pure decisions: names, the address plan, sizing. No Pulumi resources.

**Names.** Azure resource names that fit each resource type's rules.

Azure's naming rules differ per resource type (length, allowed characters,
case, hyphens) and a name that breaks them fails only at deploy time, deep in
``pulumi up``. :func:`azure_name` builds a name from parts and fits it to the
type's rule (shortening with a stable hash when too long);
:func:`check_name` validates a name and says how to fix it.

Names follow the Cloud Adoption Framework abbreviations (``rg-``, ``vnet-``,
``aks-``, ``psql-``...), as Azure's verified modules do.

**Addressing.** Address plan of the Azure VNet: subnets, and the overlay ranges AKS must not clash with.

With Azure CNI Overlay, pods take addresses from ``podCidr`` (outside the VNet)
and only nodes take VNet addresses, so the node subnet can be small. The VNet
is carved, in order, into aligned blocks: nodes, the PostgreSQL delegated
subnet, private endpoints; the rest stays free for later subnets.

**Sizing.** Sizing and availability decisions of the Azure footprint, per environment.

The per-environment defaults live in :class:`infra.config.AzureConfig`; these
functions turn them into what each Azure API accepts, and reject the
combinations Azure would reject only after minutes of ``pulumi up`` (a
Burstable PostgreSQL with high availability, a retiring Redis SKU, an API
server open to everyone).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from infra.decisions import k8s
from infra.decisions.k8s import ExecPlugin

# ----------------------------------------------------------------------- names


@dataclass(frozen=True)
class NameRule:
    """The naming rule of one Azure resource type."""

    min_length: int
    max_length: int
    pattern: str
    """Full-match regex of a valid name."""
    allowed: str
    """The rule in words, for error messages."""
    lowercase: bool = False
    separator: str = "-"
    """What joins name parts; empty where the type allows no hyphen."""
    no_double_hyphen: bool = False

    @property
    def specials(self) -> str:
        """The non-alphanumeric characters the type allows (read from ``pattern``)."""
        return "".join(c for c in "-_.()" if re.fullmatch(self.pattern, f"a{c}a"))


_ALNUM_EDGES = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"

RULES: dict[str, NameRule] = {
    "resource_group": NameRule(
        1,
        90,
        r"[A-Za-z0-9_().-]*[A-Za-z0-9_()-]",
        "letters, digits, '_', '-', '.', '(' and ')', not ending with '.'",
    ),
    "virtual_network": NameRule(
        2, 64, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "subnet": NameRule(
        1, 80, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "network_security_group": NameRule(
        1, 80, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "nat_gateway": NameRule(
        1, 80, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "public_ip": NameRule(
        1, 80, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "private_endpoint": NameRule(
        2, 64, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "user_assigned_identity": NameRule(
        3,
        128,
        r"[A-Za-z0-9][A-Za-z0-9_-]*",
        "letters, digits, '_' and '-', starting with a letter or digit",
    ),
    "log_analytics_workspace": NameRule(
        4,
        63,
        r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
        "letters, digits and '-', starting and ending with a letter or digit",
    ),
    "aks_cluster": NameRule(
        1,
        63,
        r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?",
        "letters, digits, '_' and '-', starting and ending with a letter or digit",
    ),
    "aks_dns_prefix": NameRule(
        1,
        54,
        r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
        "letters, digits and '-', starting and ending with a letter or digit",
    ),
    "aks_node_pool": NameRule(
        1,
        12,
        r"[a-z][a-z0-9]*",
        "lowercase letters and digits, starting with a letter",
        lowercase=True,
        separator="",
    ),
    "postgres_server": NameRule(
        3,
        63,
        r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?",
        "lowercase letters, digits and '-', starting and ending with a letter or digit",
        lowercase=True,
    ),
    "redis_enterprise": NameRule(
        1,
        60,
        r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
        "letters, digits and '-', starting and ending with a letter or digit, no '--'",
        no_double_hyphen=True,
    ),
    "storage_account": NameRule(
        3, 24, r"[a-z0-9]+", "lowercase letters and digits only", lowercase=True, separator=""
    ),
    "container_registry": NameRule(
        5, 50, r"[a-z0-9]+", "lowercase letters and digits only", lowercase=True, separator=""
    ),
    "key_vault": NameRule(
        3,
        24,
        r"[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
        "letters, digits and '-', starting with a letter, ending with a letter or digit, no '--'",
        no_double_hyphen=True,
    ),
    "data_collection_rule": NameRule(
        3, 64, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "policy_assignment": NameRule(
        1, 64, r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?", "letters, digits, '_', '-' and '.'"
    ),
}
"""The rule of every resource type this project names, by kind."""

_HASH_LENGTH = 6


def rule(kind: str) -> NameRule:
    """The rule of ``kind``; a clear error for an unknown kind."""
    try:
        return RULES[kind]
    except KeyError:
        raise ValueError(
            f"no Azure naming rule for resource kind {kind!r}; use one of {', '.join(sorted(RULES))}"
        ) from None


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid ``kind`` name, else raise ValueError saying how to fix it."""
    r = rule(kind)
    label = kind.replace("_", " ")
    if not r.min_length <= len(name) <= r.max_length:
        raise ValueError(
            f"{label} name {name!r} is {len(name)} characters long; Azure allows "
            f"{r.min_length} to {r.max_length}: shorten ai-gateway:tags.project or pick a shorter name"
        )
    if not re.fullmatch(r.pattern, name) or (r.no_double_hyphen and "--" in name):
        raise ValueError(
            f"{label} name {name!r} has characters Azure does not allow there; use {r.allowed}"
        )
    return name


def azure_name(kind: str, *parts: str, reserve: int = 0) -> str:
    """A valid ``kind`` name from ``parts`` (joined by the type's separator).

    Characters the type does not allow are dropped (and the name lowercased
    where the type requires it). A name longer than the type allows (minus
    ``reserve`` characters kept free for a suffix added later, see
    :func:`with_suffix`) is cut and ends with a hash of the full name, so two
    long names stay distinct. Raises ValueError when nothing valid remains.
    """
    r = rule(kind)
    if not parts or not any(parts):
        raise ValueError(f"{kind} name: no name parts given; pass at least one non-empty part")
    name = r.separator.join(p for p in parts if p)
    if r.lowercase:
        name = name.lower()
    allowed = _allowed_chars(r)
    name = "".join(c for c in name if c in allowed)
    if r.no_double_hyphen or r.separator == "-":
        name = re.sub(r"-{2,}", "-", name)
    limit = r.max_length - reserve
    if limit < r.min_length:
        raise ValueError(
            f"{kind} name: reserve={reserve} leaves no room in Azure's {r.max_length}-character "
            "limit; reserve fewer characters"
        )
    if len(name) > limit:
        digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
        head = name[: limit - _HASH_LENGTH - len(r.separator)]
        name = f"{head.rstrip('-_.')}{r.separator}{digest}"
    name = name.strip("-_.") if kind != "resource_group" else name.rstrip(".")
    return check_name(kind, name)


def with_suffix(kind: str, base: str, suffix: str) -> str:
    """``base`` plus a suffix (a random id making a globally unique name), validated."""
    r = rule(kind)
    suffix = suffix.lower() if r.lowercase else suffix
    return check_name(kind, f"{base}{r.separator}{suffix}")


def _allowed_chars(r: NameRule) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    chars = letters + "0123456789"
    if not r.lowercase:
        chars += letters.upper()
    return chars + r.specials


# ------------------------------------------------------------------ addressing


NODE_PREFIX = 20
"""/20: 4,091 node addresses, ample for the autoscaler's bounds with pods on the overlay."""
POSTGRES_PREFIX = 24
"""/24: Azure asks for at least /28 for a delegated Flexible Server subnet; /24 leaves room for HA and replicas."""
ENDPOINT_PREFIX = 24
"""/24: one address per private endpoint (Redis today, Key Vault or ACR later)."""


@dataclass(frozen=True)
class SubnetPlan:
    """The CIDR of each subnet of the VNet."""

    nodes: str
    postgres: str
    endpoints: str


def allocate(vnet_cidr: str, prefixes: list[int], *, key: str = "vnetCidr") -> list[str]:
    """Carve ``vnet_cidr`` into aligned blocks of the given prefix lengths, in order.

    Each block starts at the first address after the previous one that is
    aligned to its own size. Raises ValueError naming ``ai-gateway:azure.<key>``
    when a prefix is shorter than the VNet's or the blocks do not fit.
    """
    try:
        vnet = ipaddress.ip_network(vnet_cidr, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"ai-gateway:azure.{key}: {vnet_cidr!r} is not a CIDR block ({exc}); use a "
            "network address with a prefix length, for example 10.20.0.0/16"
        ) from None
    blocks: list[str] = []
    cursor = int(vnet.network_address)
    end = int(vnet.broadcast_address)
    for prefix in prefixes:
        if not vnet.prefixlen <= prefix <= 29:
            raise ValueError(
                f"ai-gateway:azure.{key}: a /{prefix} subnet cannot be carved from "
                f"{vnet_cidr}; use subnet prefixes from /{vnet.prefixlen} to /29"
            )
        size = 2 ** (32 - prefix)
        start = -(-cursor // size) * size  # round up to the block's alignment
        if start + size - 1 > end:
            raise ValueError(
                f"ai-gateway:azure.{key}: {vnet_cidr} is too small for subnets of "
                f"{', '.join(f'/{p}' for p in prefixes)}; use a /{minimum_vnet_prefix(prefixes)} "
                "or larger address space"
            )
        blocks.append(str(ipaddress.ip_network((start, prefix))))
        cursor = start + size
    return blocks


def minimum_vnet_prefix(prefixes: list[int]) -> int:
    """The longest VNet prefix whose aligned blocks of ``prefixes`` still fit."""
    total = 0
    for prefix in prefixes:
        size = 2 ** (32 - prefix)
        total = -(-total // size) * size + size
    prefix = 32
    while 2 ** (32 - prefix) < total:
        prefix -= 1
    return prefix


def subnet_plan(vnet_cidr: str) -> SubnetPlan:
    """The node, PostgreSQL and private-endpoint subnets of ``vnet_cidr`` (a /19 or larger)."""
    nodes, postgres, endpoints = allocate(
        vnet_cidr, [NODE_PREFIX, POSTGRES_PREFIX, ENDPOINT_PREFIX]
    )
    return SubnetPlan(nodes=nodes, postgres=postgres, endpoints=endpoints)


def check_overlay_ranges(vnet_cidr: str, pod_cidr: str, service_cidr: str) -> None:
    """Fail when the VNet, pod and service ranges overlap (AKS rejects it at create time)."""
    ranges = {
        "vnetCidr": ipaddress.ip_network(vnet_cidr),
        "podCidr": ipaddress.ip_network(pod_cidr),
        "serviceCidr": ipaddress.ip_network(service_cidr),
    }
    names = list(ranges)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if ranges[a].overlaps(ranges[b]):
                raise ValueError(
                    f"ai-gateway:azure.{b}: {ranges[b]} overlaps {a} {ranges[a]}; pick a range "
                    "outside it (AKS needs the VNet, pod and service ranges disjoint)"
                )


def dns_service_ip(service_cidr: str) -> str:
    """The cluster DNS service address: the tenth address of the service range, as AKS uses."""
    network = ipaddress.ip_network(service_cidr)
    if network.num_addresses < 16:
        raise ValueError(
            f"ai-gateway:azure.serviceCidr: {service_cidr} is too small for Kubernetes "
            "services; use a /28 or larger range (AKS's default is 10.0.0.0/16)"
        )
    return str(network.network_address + 10)


# ---------------------------------------------------------------------- sizing


_AMR_SKU_FAMILIES = ("Balanced_", "MemoryOptimized_", "ComputeOptimized_", "FlashOptimized_")
_PG_TIER_BY_SKU_FAMILY = {
    "Standard_B": "Burstable",
    "Standard_D": "GeneralPurpose",
    "Standard_E": "MemoryOptimized",
}


def redis_sku(sku: str) -> str:
    """The Azure Managed Redis SKU, checked: only the Managed Redis families are accepted.

    ``Enterprise_*`` and ``EnterpriseFlash_*`` belong to Azure Cache for Redis
    Enterprise, which Microsoft retires on 2027-03-31.
    """
    from pulumi_azure_native import redisenterprise

    known = {s.value for s in redisenterprise.SkuName}
    if sku not in known or not sku.startswith(_AMR_SKU_FAMILIES):
        raise ValueError(
            f"ai-gateway:azure.redisSku: {sku!r} is not an Azure Managed Redis SKU; use one of "
            "the Balanced_, MemoryOptimized_, ComputeOptimized_ or FlashOptimized_ sizes, for "
            "example Balanced_B1 (Enterprise_* SKUs retire on 2027-03-31)"
        )
    return sku


def postgres_tier(sku: str, tier: str) -> str:
    """The PostgreSQL tier, checked against the SKU's family (Standard_B is Burstable...)."""
    family = next((f for f in _PG_TIER_BY_SKU_FAMILY if sku.startswith(f)), None)
    if family is None:
        raise ValueError(
            f"ai-gateway:azure.postgresSku: {sku!r} is not a Flexible Server compute size; use "
            "a Standard_B*, Standard_D*ds_v5 or Standard_E*ds_v5 size, for example Standard_D2ds_v5"
        )
    expected = _PG_TIER_BY_SKU_FAMILY[family]
    if tier != expected:
        raise ValueError(
            f"ai-gateway:azure.postgresTier: {tier!r} does not match postgresSku {sku!r}; "
            f"set postgresTier to {expected}"
        )
    return tier


@dataclass(frozen=True)
class PostgresAvailability:
    """High-availability mode of the Flexible Server and where its standby lives."""

    mode: str
    """``Disabled``, ``SameZone`` or ``ZoneRedundant``."""
    primary_zone: str | None
    standby_zone: str | None


def postgres_availability(
    high_availability: bool, tier: str, zones: list[str]
) -> PostgresAvailability:
    """Zone-redundant HA when asked for and the region has two zones, same-zone HA otherwise.

    Burstable servers cannot run a standby: asking for both is an error that
    says which key to change.
    """
    primary = zones[0] if zones else None
    if not high_availability:
        return PostgresAvailability("Disabled", primary, None)
    if tier == "Burstable":
        raise ValueError(
            "ai-gateway:azure.highAvailability: Burstable PostgreSQL servers cannot have a "
            "standby; set postgresTier: GeneralPurpose with postgresSku: Standard_D2ds_v5, or "
            "highAvailability: false"
        )
    if len(zones) >= 2:
        return PostgresAvailability("ZoneRedundant", zones[0], zones[1])
    return PostgresAvailability("SameZone", primary, None)


def postgres_backup_retention(days: int) -> int:
    """Backup retention in days, within Flexible Server's 7-35."""
    if not 7 <= days <= 35:
        raise ValueError(
            f"ai-gateway:azure.backupRetentionDays: {days} is not allowed for PostgreSQL "
            "Flexible Server; use an integer from 7 to 35"
        )
    return days


def system_pool_bounds(count: int) -> tuple[int, int]:
    """(min, max) of the system pool's autoscaler: ``count`` up to twice it."""
    if count < 1:
        raise ValueError(
            f"ai-gateway:azure.systemNodeCount: {count} is not allowed; the system pool needs "
            "at least 1 node"
        )
    return count, 2 * count


@dataclass(frozen=True)
class ApiServerAccess:
    """How the deployer reaches the AKS API server."""

    private_cluster: bool
    authorized_ip_ranges: list[str]


def api_server_access(deployer_cidrs: list[str], private_endpoint_only: bool) -> ApiServerAccess:
    """A private cluster, or a public endpoint limited to the deployer CIDRs; never open.

    AKS treats an empty authorised range list as "open to all", so an empty
    list without ``privateEndpointOnly`` is an error, in every environment.
    """
    if private_endpoint_only:
        return ApiServerAccess(private_cluster=True, authorized_ip_ranges=[])
    if not deployer_cidrs:
        raise ValueError(
            "ai-gateway:azure.deployerCidrs: is empty, which would open the AKS API server "
            "to the whole internet; list the egress CIDRs of the machines that run "
            "`pulumi up` (for example 203.0.113.10/32), or set privateEndpointOnly: true"
        )
    return ApiServerAccess(private_cluster=False, authorized_ip_ranges=list(deployer_cidrs))


_EPHEMERAL_OS_MAX_GB = 128
# Ddsv5/Edsv5 sizes carry a local temp disk of 37.5 GiB per vCPU (the Azure VM
# size pages "Ddsv5 and Ddv5-series", "Edsv5 and Edv5-series").
_TEMP_DISK = r"Standard_([DE])(\d+)a?ds_v5"


def ephemeral_os_disk_gb(vm_size: str, key: str) -> int:
    """The OS disk size of an ephemeral OS disk on ``vm_size``: at most its temp disk, 128 GiB.

    Ephemeral OS disks live on the VM's local disk ("Ephemeral OS disks", AKS
    docs): faster node start and reimage, no storage cost, nothing persisted.
    The disk must fit the size's temp disk, so only sizes with one (``*ds_v5``)
    are accepted; ``key`` names the config key in the error.
    """
    import re

    match = re.fullmatch(_TEMP_DISK, vm_size)
    if match is None:
        raise ValueError(
            f"ai-gateway:azure.{key}: {vm_size!r} has no local temp disk for an ephemeral OS "
            "disk; use a Ddsv5 or Edsv5 size, for example Standard_D4ds_v5"
        )
    temp_gb = int(int(match.group(2)) * 37.5)
    return min(_EPHEMERAL_OS_MAX_GB, temp_gb)


# ------------------------------------------------------------------ kubeconfig


AKS_ENTRA_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
"""The application id of the AKS Microsoft Entra server (the token audience), the same in every tenant."""


def token_plugin(login: str = "azurecli") -> ExecPlugin:
    """``kubelogin get-token``: an Entra token (works with local accounts off).

    ``--login azurecli`` reuses the deployer's ``az login`` session. CI runners
    override the login mode without editing the file: kubelogin reads
    ``AAD_LOGIN_METHOD`` (``workloadidentity``, ``spn``, ``msi``) and the
    matching ``AZURE_*`` variables from the environment.
    """
    return ExecPlugin(
        command="kubelogin",
        args=("get-token", "--login", login, "--server-id", AKS_ENTRA_SERVER_APP_ID),
        provide_cluster_info=False,
        interactive_mode="IfAvailable",
    )


def kubeconfig(cluster_name: str, server: str, certificate_authority_data: str) -> str:
    """The AKS cluster's kubeconfig: its user runs :func:`token_plugin`, no token is stored.

    Names follow ``az aks get-credentials`` (user ``clusterUser_<cluster>``).
    """
    return k8s.kubeconfig(
        cluster_name,
        server,
        certificate_authority_data,
        token_plugin(),
        user=f"clusterUser_{cluster_name}",
    )


def first_credential(kubeconfigs: Sequence[Any]) -> str:
    """The first base64 kubeconfig of AKS's ``listClusterUserCredentials`` answer."""
    # The invoke result's list items arrive as plain mappings, not as the
    # SDK's CredentialResultResponse; accept both shapes.
    if not kubeconfigs:
        raise ValueError(
            "AKS returned no user credentials; check that the cluster finished provisioning"
        )
    entry = kubeconfigs[0]
    return str(entry["value"] if isinstance(entry, Mapping) else entry.value)


def cluster_endpoint(kubeconfig_b64: str) -> tuple[str, str]:
    """(server URL, CA data) from the base64 kubeconfig AKS's credential API returns."""
    try:
        document = yaml.safe_load(base64.b64decode(kubeconfig_b64))
        cluster = document["clusters"][0]["cluster"]
        return cluster["server"], cluster["certificate-authority-data"]
    except (ValueError, TypeError, KeyError, IndexError, yaml.YAMLError) as exc:
        raise ValueError(
            f"the AKS user credentials are not a kubeconfig with a cluster entry ({exc!r}); "
            "check that the cluster finished provisioning and retry"
        ) from None
