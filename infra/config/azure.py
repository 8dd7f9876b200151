"""``ai-gateway:azure``: the Azure footprint's settings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from infra.config.base import _private_cidr, _SectionError
from infra.config.cloud import _HA_DEFAULTS, _CloudConfig
from infra.contracts import Environment
from infra.decisions.azure import ephemeral_os_disk_gb

_ALL_ZONES: tuple[Literal["1", "2", "3"], ...] = ("1", "2", "3")


class AzureConfig(_CloudConfig):
    """Azure footprint: VNet, AKS, Azure Managed Redis, PostgreSQL Flexible Server (``ai-gateway:azure``)."""

    @property
    def pod_cidrs(self) -> tuple[str, ...]:
        """The Azure CNI Overlay pod range."""
        return (self.pod_cidr,)

    _defaults: ClassVar[dict[Environment, dict[str, Any]]] = {
        Environment.DEV: {
            **_HA_DEFAULTS[Environment.DEV],
            "systemNodeVmSize": "Standard_D2ds_v5",
            "nodeVmSize": "Standard_D4ds_v5",
            "redisSku": "Balanced_B0",
            "postgresSku": "Standard_B2ms",
            "postgresTier": "Burstable",
            "aksTier": "Free",
            "systemNodeCount": 1,
            "disableLocalAccounts": False,
            "defenderForContainers": False,
            "policyEffect": "Audit",
            "redisPersistence": False,
            "postgresGeoRedundantBackup": False,
            "nodeCount": 2,
            "nodeMinCount": 1,
            "nodeMaxCount": 3,
        },
        Environment.STAGING: {
            **_HA_DEFAULTS[Environment.STAGING],
            "systemNodeVmSize": "Standard_D4ds_v5",
            "nodeVmSize": "Standard_D4ds_v5",
            "redisSku": "Balanced_B1",
            "postgresSku": "Standard_D2ds_v5",
            "postgresTier": "GeneralPurpose",
            "aksTier": "Standard",
            "systemNodeCount": 3,
            "disableLocalAccounts": True,
            "defenderForContainers": True,
            "policyEffect": "Deny",
            "redisPersistence": False,
            "postgresGeoRedundantBackup": False,
            "nodeCount": 3,
            "nodeMinCount": 3,
            "nodeMaxCount": 6,
        },
        Environment.PROD: {
            **_HA_DEFAULTS[Environment.PROD],
            "systemNodeVmSize": "Standard_D4ds_v5",
            "nodeVmSize": "Standard_D8ds_v5",
            "redisSku": "Balanced_B3",
            "postgresSku": "Standard_D4ds_v5",
            "postgresTier": "GeneralPurpose",
            "aksTier": "Standard",
            "systemNodeCount": 3,
            "disableLocalAccounts": True,
            "defenderForContainers": True,
            "policyEffect": "Deny",
            "redisPersistence": True,
            "postgresGeoRedundantBackup": True,
            "nodeCount": 3,
            "nodeMinCount": 3,
            "nodeMaxCount": 12,
        },
    }

    location: str = Field(
        default="eastus2",
        pattern=r"^[a-z]+[a-z0-9]*$",
        description="Azure region, for example eastus2.",
    )
    vnet_cidr: str = Field(
        default="10.20.0.0/16",
        description="VNet address space; split into node, database and endpoint subnets.",
    )
    system_node_vm_size: str = Field(
        default="Standard_D2ds_v5",
        description=(
            "VM size of the AKS system pool (critical add-ons only). A size with a local "
            "temp disk (Ddsv5/Edsv5): nodes boot from an ephemeral OS disk on it."
        ),
    )
    node_vm_size: str = Field(
        default="Standard_D4ds_v5",
        description=(
            "VM size of the autoscaling user pool running the gateway; a Ddsv5/Edsv5 size "
            "(ephemeral OS disk on the local temp disk)."
        ),
    )
    aks_tier: Literal["Free", "Standard", "Premium"] = Field(
        default="Free",
        description="AKS pricing tier; Standard gives the uptime SLA (staging/prod).",
    )
    admin_group_object_ids: list[str] = Field(
        default_factory=list,
        description=(
            "Microsoft Entra group object ids granted cluster admin (break-glass for people: "
            "with local accounts off, nobody else can reach the API). Required in staging "
            "and prod."
        ),
    )
    defender_for_containers: bool = Field(
        default=False,
        description=(
            "Microsoft Defender for Containers: the cluster's sensor reports to the Log "
            "Analytics workspace and the subscription's Containers plan is set to Standard "
            "(kept on destroy). On in staging and prod; off in dev (billed per vCore)."
        ),
    )
    policy_effect: Literal["Audit", "Deny"] = Field(
        default="Audit",
        description=(
            "Effect of the Pod Security baseline initiative assigned to the cluster (Azure "
            "Policy add-on): Deny in staging and prod, Audit in dev."
        ),
    )
    kms_key_size: Literal[2048, 3072, 4096] = Field(
        default=3072,
        description="RSA size of the Key Vault key that encrypts etcd's secrets (KMS).",
    )
    maintenance_day: Literal[
        "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"
    ] = Field(
        default="SUNDAY",
        description="Weekly maintenance day of AKS upgrades (Kubernetes patches, node images).",
    )
    maintenance_hour_utc: int = Field(
        default=2,
        ge=0,
        le=23,
        description="Start hour (UTC) of the 4-hour weekly AKS maintenance window.",
    )
    redis_sku: str = Field(
        default="Balanced_B0", description="Azure Managed Redis SKU (for example Balanced_B1)."
    )
    postgres_sku: str = Field(
        default="Standard_B2ms", description="PostgreSQL Flexible Server compute SKU."
    )
    postgres_tier: Literal["Burstable", "GeneralPurpose", "MemoryOptimized"] = Field(
        default="Burstable", description="PostgreSQL Flexible Server tier matching postgresSku."
    )
    postgres_storage_gb: int = Field(
        default=64, ge=32, le=32768, description="PostgreSQL storage in GiB."
    )
    postgres_version: Literal["16", "17"] = Field(
        default="16", description="PostgreSQL major version (16 or newer)."
    )
    availability_zones: list[Literal["1", "2", "3"]] = Field(
        default_factory=lambda: list(_ALL_ZONES),
        description=(
            "Zones the AKS node pools span and PostgreSQL's primary and standby use; all three "
            "so a zone outage leaves nodes running. Use [] only in a region without zones."
        ),
    )
    openai_account_id: str | None = Field(
        default=None,
        pattern=(
            r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/"
            r"Microsoft\.CognitiveServices/accounts/[^/]+$"
        ),
        description=(
            "Resource id of the Azure OpenAI account the gateway calls; its managed identity "
            "gets `Cognitive Services OpenAI User` on that account only. Unset: on the "
            "footprint's resource group (where no OpenAI account lives unless you add one)."
        ),
    )
    pod_cidr: str = Field(
        default="10.244.0.0/16",
        description=(
            "Azure CNI Overlay pod range: pods take no VNet addresses, so the node subnet "
            "stays small. Must not overlap vnetCidr or serviceCidr."
        ),
    )
    service_cidr: str = Field(
        default="10.0.0.0/16",
        description=(
            "Kubernetes service range (AKS's default); the cluster DNS service takes its "
            "tenth address. Must not overlap vnetCidr or podCidr."
        ),
    )
    system_node_count: int = Field(
        default=1,
        ge=1,
        le=10,
        description=(
            "Nodes of the system pool (critical add-ons only; autoscales up to twice this). "
            "1 in dev for cost; 3 in staging and prod, one per zone, as AKS's production "
            "baseline recommends."
        ),
    )
    disable_local_accounts: bool = Field(
        default=False,
        description=(
            "Entra-only cluster access: no static admin kubeconfig exists. On in staging and "
            "prod (every action is attributable to an identity); off in dev for break-glass."
        ),
    )
    redis_persistence: bool = Field(
        default=False,
        description=(
            "Append-only-file persistence (every second) on Azure Managed Redis, so budgets "
            "and rate-limit counters survive a node restart. On in prod."
        ),
    )
    postgres_geo_redundant_backup: bool = Field(
        default=False,
        description=(
            "Copy PostgreSQL backups to the paired region (restorable after a regional "
            "outage). On in prod; cannot be changed after the server is created."
        ),
    )
    log_retention_days: int = Field(
        default=30,
        ge=30,
        le=730,
        description=(
            "Days the Log Analytics workspace keeps cluster diagnostics (API server audit, "
            "autoscaler). 30 is the free retention."
        ),
    )

    @field_validator("vnet_cidr", "pod_cidr", "service_cidr")
    @classmethod
    def _check_vnet_cidr(cls, value: str) -> str:
        return _private_cidr(value)

    @model_validator(mode="after")
    def _check_ephemeral_os_disks(self) -> AzureConfig:
        for key, size in (
            ("systemNodeVmSize", self.system_node_vm_size),
            ("nodeVmSize", self.node_vm_size),
        ):
            try:
                ephemeral_os_disk_gb(size, key)
            except ValueError as exc:
                raise _SectionError(key, str(exc).split(": ", 1)[1]) from None
        return self

    @field_validator("postgres_max_connections")
    @classmethod
    def _flexible_server_connections(cls, value: int | None) -> int | None:
        # Flexible Server's allowed values for the parameter (concepts-limits).
        if value is not None and value > 5000:
            raise ValueError(
                f"{value} is above 5000, the most PostgreSQL Flexible Server allows for "
                "max_connections; use 25 to 5000, or a connection pooler"
            )
        return value

    @field_validator("admin_group_object_ids")
    @classmethod
    def _check_group_ids(cls, value: list[str]) -> list[str]:
        for group in value:
            if not re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", group):
                raise ValueError(
                    f"{group!r} is not a Microsoft Entra object id; use the group's Object ID "
                    "(a GUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301), not its name"
                )
        return value


def routes_to_azure_openai(app_config: Mapping[str, Any] | None) -> bool:
    """Whether the gateway's catalogue has an ``azure_openai`` provider."""
    providers = app_config.get("providers") if isinstance(app_config, Mapping) else None
    if not isinstance(providers, Mapping):
        return False
    return any(
        isinstance(p, Mapping) and p.get("type") == "azure_openai" for p in providers.values()
    )
