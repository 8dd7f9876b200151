"""``ai-gateway:gcp``: the GCP footprint's settings."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from infra.config.base import _private_cidr, _SectionError
from infra.config.cloud import _HA_DEFAULTS, _CloudConfig
from infra.contracts import Environment
from infra.decisions.gcp import GkeRanges, RangeError, check_ranges


class GcpConfig(_CloudConfig):
    """GCP footprint: VPC, GKE, Memorystore, Cloud SQL PostgreSQL (``ai-gateway:gcp``)."""

    @property
    def pod_cidrs(self) -> tuple[str, ...]:
        """The subnet's secondary range for pods (VPC-native)."""
        return (self.pods_cidr,)

    _defaults: ClassVar[dict[Environment, dict[str, Any]]] = {
        Environment.DEV: {
            **_HA_DEFAULTS[Environment.DEV],
            "machineType": "e2-standard-4",
            "redisMemoryGb": 1,
            "postgresTier": "db-custom-1-3840",
            "postgresDiskGb": 20,
            "redisPersistence": False,
            "nodeCount": 1,
            "nodeMinCount": 1,
            "nodeMaxCount": 3,
        },
        Environment.STAGING: {
            **_HA_DEFAULTS[Environment.STAGING],
            "postgresDiskGb": 50,
            "redisPersistence": False,
            "machineType": "n2-standard-4",
            "redisMemoryGb": 5,
            "postgresTier": "db-custom-2-7680",
            "nodeCount": 1,
            "nodeMinCount": 1,
            "nodeMaxCount": 3,
        },
        Environment.PROD: {
            **_HA_DEFAULTS[Environment.PROD],
            "postgresDiskGb": 100,
            "redisPersistence": True,
            "machineType": "n2-standard-8",
            "redisMemoryGb": 5,
            "postgresTier": "db-custom-4-15360",
            "nodeCount": 1,
            "nodeMinCount": 1,
            "nodeMaxCount": 4,
        },
    }

    project: str = Field(
        default="",
        description="GCP project id to deploy into. Required when enabled.",
    )
    region: str = Field(
        default="us-central1",
        pattern=r"^[a-z]+-[a-z]+\d$",
        description="GCP region, for example us-central1.",
    )
    subnet_cidr: str = Field(
        default="10.30.0.0/20", description="Primary range of the node subnet."
    )
    pods_cidr: str = Field(
        default="10.32.0.0/14", description="Secondary range for pods (VPC-native)."
    )
    services_cidr: str = Field(default="10.36.0.0/20", description="Secondary range for services.")
    master_cidr: str = Field(
        default="172.16.0.0/28", description="/28 for the GKE control plane's private endpoint."
    )
    machine_type: str = Field(default="e2-standard-4", description="GKE node machine type.")
    redis_memory_gb: int = Field(
        default=1, ge=1, le=300, description="Memorystore capacity in GiB."
    )
    postgres_tier: str = Field(default="db-custom-1-3840", description="Cloud SQL machine tier.")
    postgres_version: Literal["POSTGRES_16", "POSTGRES_17"] = Field(
        default="POSTGRES_16", description="Cloud SQL database version (16 or newer)."
    )
    private_service_cidr: str = Field(
        default="10.40.0.0/16",
        description=(
            "Range peered to Google's service network (private service access) where Cloud SQL "
            "and Memorystore get their private IPs; a /16 as Google recommends, so later "
            "instances and regions fit. Must not overlap the other ranges."
        ),
    )
    max_pods_per_node: int = Field(
        default=110,
        ge=8,
        le=256,
        description=(
            "GKE max pods per node (the GKE and safer-cluster default is 110); sets the pod "
            "range each node takes (110 -> /24), so podsCidr must hold every node at "
            "nodeMaxCount in 3 zones plus surge."
        ),
    )
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field(
        default="REGULAR",
        description=(
            "GKE release channel: REGULAR (the safer-cluster default) gets security patches "
            "weeks after RAPID with fewer surprises; STABLE trades patch latency for maturity."
        ),
    )
    postgres_disk_gb: int = Field(
        default=20,
        ge=10,
        le=65536,
        description=(
            "Cloud SQL SSD size in GiB at creation (20 dev, 50 staging, 100 prod; SSD "
            "throughput grows with size); storage auto-increase is on, so this is a floor."
        ),
    )
    redis_version: Literal["REDIS_7_2", "REDIS_7_0"] = Field(
        default="REDIS_7_2",
        description="Memorystore Redis version (7.2: the newest with TLS and AUTH on every tier).",
    )
    redis_persistence: bool = Field(
        default=False,
        description=(
            "RDB snapshots of Memorystore every hour (on in prod: budgets and rate-limit "
            "state survive a full restart; off elsewhere, where the data is disposable)."
        ),
    )
    maintenance_day: Literal[
        "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"
    ] = Field(
        default="SUNDAY",
        description="Weekly maintenance day of Cloud SQL and Memorystore (lowest traffic).",
    )
    maintenance_hour_utc: int = Field(
        default=3,
        ge=0,
        le=23,
        description=(
            "Start hour (UTC) of the maintenance windows: weekly for Cloud SQL and "
            "Memorystore, daily (4 hours) for GKE, which needs 48 hours of windows a month."
        ),
    )

    @field_validator(
        "subnet_cidr", "pods_cidr", "services_cidr", "master_cidr", "private_service_cidr"
    )
    @classmethod
    def _check_ranges(cls, value: str) -> str:
        return _private_cidr(value)

    @field_validator("project")
    @classmethod
    def _project_id(cls, value: str) -> str:
        if value and not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", value):
            raise ValueError(
                f"{value!r} is not a GCP project id; use 6-30 lowercase letters, digits "
                "and hyphens, starting with a letter"
            )
        return value

    @model_validator(mode="after")
    def _project_required(self) -> GcpConfig:
        if self.enabled and not self.project:
            raise _SectionError(
                "project",
                "project is required when gcp is enabled; set ai-gateway:gcp.project to "
                "the id of the GCP project to deploy into",
            )
        return self

    @model_validator(mode="after")
    def _ranges_fit(self) -> GcpConfig:
        try:
            check_ranges(
                GkeRanges(
                    subnet_cidr=self.subnet_cidr,
                    pods_cidr=self.pods_cidr,
                    services_cidr=self.services_cidr,
                    master_cidr=self.master_cidr,
                    private_service_cidr=self.private_service_cidr,
                ),
                node_max_count=self.node_max_count,
                max_pods_per_node=self.max_pods_per_node,
            )
        except RangeError as exc:
            raise _SectionError(exc.key, str(exc)) from None
        return self
