"""Sizing and availability decisions of the Azure footprint, per environment.

The per-environment defaults live in :class:`infra.config.AzureConfig`; these
functions turn them into what each Azure API accepts, and reject the
combinations Azure would reject only after minutes of ``pulumi up`` (a
Burstable PostgreSQL with high availability, a retiring Redis SKU, an API
server open to everyone).
"""

from __future__ import annotations

from dataclasses import dataclass

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
