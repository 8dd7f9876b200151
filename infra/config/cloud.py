"""What every cloud section (``ai-gateway:aws``, ``azure``, ``gcp``) shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra.config.base import NodeCount, _deployer_cidrs, _Model, _SectionError
from infra.contracts import Environment


class _CloudConfig(_Model):
    """Settings every cloud shares. Sizes default by environment (see ``_defaults``)."""

    # Per-environment defaults, filled in before validation for every key the
    # stack file leaves out. Subclasses extend them.
    _defaults: ClassVar[dict[Environment, dict[str, Any]]] = {}

    enabled: bool = Field(default=False, description="Deploy this cloud's footprint and gateway.")
    kubernetes_version: str = Field(
        default="1.33",
        pattern=r"^1\.(2[89]|3[0-9])$",
        description="Kubernetes minor version of the managed cluster (1.28 to 1.39).",
    )
    node_count: NodeCount = Field(
        default=2, description="Desired worker nodes of the gateway node pool at creation."
    )
    node_min_count: NodeCount = Field(default=1, description="Autoscaler lower bound.")
    node_max_count: NodeCount = Field(default=3, description="Autoscaler upper bound.")
    deployer_cidrs: list[str] = Field(
        default_factory=list,
        description=(
            "CIDRs allowed to reach the cluster's public API endpoint (the machines that "
            "run `pulumi up`). Required in staging and prod unless privateEndpointOnly; "
            "never 0.0.0.0/0."
        ),
    )
    private_endpoint_only: bool = Field(
        default=False,
        description=(
            "Disable the public API endpoint entirely. Only for deployers that run inside "
            "the network (a self-hosted runner in the VPC/VNet or a peered network)."
        ),
    )
    high_availability: bool = Field(
        default=False,
        description="Zone-redundant Redis and PostgreSQL with automatic failover (default on in staging and prod).",
    )
    deletion_protection: bool = Field(
        default=False,
        description="Protect the cluster and databases from deletion (default on in prod).",
    )
    backup_retention_days: int = Field(
        default=7,
        ge=1,
        le=35,
        description="Days of automated database backups (7 in dev and staging, 30 in prod).",
    )
    postgres_max_connections: int | None = Field(
        default=None,
        ge=25,
        le=262143,
        description=(
            "`max_connections` of the PostgreSQL server, set by the footprint (RDS parameter "
            "group, Flexible Server parameter, Cloud SQL flag; a change restarts the server). "
            "Unset: the provider's default for the size. The plan refuses a size whose "
            "connections cannot hold the gateway at `gateway.maxReplicas` (docs: Sizing, "
            "PostgreSQL connections), and a size whose default it does not know until this is "
            "set. 25 to 262143 (5000 on Azure). Each connection takes memory: prefer a "
            "larger size."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_environment_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        env = (info.context or {}).get("environment", Environment.DEV)
        merged: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            merged.update(getattr(klass, "_defaults", {}).get(env, {}))
        merged.update(data)
        return merged

    @field_validator("deployer_cidrs")
    @classmethod
    def _no_open_api(cls, value: list[str]) -> list[str]:
        return _deployer_cidrs(value)

    @model_validator(mode="after")
    def _node_bounds(self) -> _CloudConfig:
        if not self.node_min_count <= self.node_count <= self.node_max_count:
            raise _SectionError(
                "nodeCount",
                f"nodeCount {self.node_count} must lie between nodeMinCount "
                f"{self.node_min_count} and nodeMaxCount {self.node_max_count}; raise "
                "nodeMaxCount or lower nodeCount",
            )
        return self

    @property
    def pod_cidrs(self) -> tuple[str, ...]:
        """The ranges the cluster's pods take addresses from (the edge's Envoy proxies
        among them: the gateway believes their ``X-Forwarded-For`` entry)."""
        raise NotImplementedError

    def require_api_access_rule(self, environment: Environment) -> None:
        """Staging and prod must say who may reach the API server."""
        if (
            self.enabled
            and environment != Environment.DEV
            and not self.private_endpoint_only
            and not self.deployer_cidrs
        ):
            raise ValueError(
                "deployerCidrs is empty: in staging and prod list the CIDRs of the machines "
                "that run `pulumi up`, or set privateEndpointOnly: true"
            )


_HA_DEFAULTS: dict[Environment, dict[str, Any]] = {
    Environment.DEV: {"highAvailability": False, "deletionProtection": False},
    Environment.STAGING: {"highAvailability": True, "deletionProtection": False},
    Environment.PROD: {
        "highAvailability": True,
        "deletionProtection": True,
        "backupRetentionDays": 30,
    },
}
