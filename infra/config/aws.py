"""``ai-gateway:aws``: the AWS footprint's settings."""

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
from infra.decisions.aws import image_tag, split_vpc_cidr

# The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
_CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip


class AwsConfig(_CloudConfig):
    """AWS footprint: VPC, EKS, ElastiCache, RDS PostgreSQL (``ai-gateway:aws``)."""

    @property
    def pod_cidrs(self) -> tuple[str, ...]:
        """The VPC: the VPC CNI gives pods addresses of the node subnets."""
        return (self.vpc_cidr,)

    _defaults: ClassVar[dict[Environment, dict[str, Any]]] = {
        Environment.DEV: {
            **_HA_DEFAULTS[Environment.DEV],
            "nodeInstanceType": "t3.large",
            "redisNodeType": "cache.t4g.small",
            "postgresInstanceClass": "db.t4g.medium",
            "natGateways": "single",
            "nodeCount": 2,
            "nodeMinCount": 1,
            "nodeMaxCount": 3,
            "logRetentionDays": 30,
            "redisSnapshotRetentionDays": 0,
            "postgresFinalSnapshot": False,
        },
        Environment.STAGING: {
            **_HA_DEFAULTS[Environment.STAGING],
            "nodeInstanceType": "m7i.large",
            "redisNodeType": "cache.m7g.large",
            "postgresInstanceClass": "db.m7g.large",
            "natGateways": "one-per-az",
            "nodeCount": 3,
            "nodeMinCount": 3,
            "nodeMaxCount": 6,
            "logRetentionDays": 90,
            "redisSnapshotRetentionDays": 0,
            "postgresFinalSnapshot": False,
        },
        Environment.PROD: {
            **_HA_DEFAULTS[Environment.PROD],
            "nodeInstanceType": "m7i.xlarge",
            "redisNodeType": "cache.m7g.large",
            "postgresInstanceClass": "db.m7g.large",
            "natGateways": "one-per-az",
            "nodeCount": 3,
            "nodeMinCount": 3,
            "nodeMaxCount": 12,
            "logRetentionDays": 365,
            "redisSnapshotRetentionDays": 7,
            "postgresFinalSnapshot": True,
        },
    }

    region: str = Field(
        default="us-east-1",
        pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$",
        description="AWS region, for example us-east-1.",
    )
    vpc_cidr: str = Field(
        default="10.10.0.0/16",
        description="VPC CIDR; split into public, private and database subnets across the AZs.",
    )
    availability_zone_count: int = Field(
        default=3, ge=2, le=6, description="AZs the VPC spans (EKS needs at least two)."
    )
    nat_gateways: Literal["single", "one-per-az"] = Field(
        default="single",
        description="`single` saves cost in dev; `one-per-az` survives an AZ outage (staging/prod).",
    )
    node_instance_type: str = Field(
        default="t3.large", description="EC2 instance type of the EKS managed node group."
    )
    bedrock_model_ids: list[str] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        description=(
            "Bedrock models the gateway's IAM role may invoke in the region (foundation-model "
            "and inference-profile ids or patterns, for example anthropic.claude-*). `*` "
            "allows every model of the region; narrow it to what the gateway routes to."
        ),
    )
    redis_node_type: str = Field(default="cache.t4g.small", description="ElastiCache node type.")
    postgres_instance_class: str = Field(default="db.t4g.medium", description="RDS instance class.")
    postgres_storage_gb: int = Field(
        default=50, ge=20, le=65536, description="RDS allocated storage in GiB."
    )
    postgres_version: Literal["16", "17"] = Field(
        default="16",
        description=(
            "RDS PostgreSQL major version. Major only: RDS applies minor versions itself "
            "(autoMinorVersionUpgrade) and stops creating old ones, so a pinned minor fails "
            "to create or becomes a downgrade RDS refuses; the minor in use is the "
            "instance's engineVersionActual."
        ),
    )

    node_disk_gb: int = Field(
        default=50,
        ge=20,
        le=16384,
        description=(
            "Root volume of each node in GiB (gp3, encrypted); 50 leaves room for "
            "container images, where the EKS default of 20 fills up."
        ),
    )
    log_retention_days: int = Field(
        default=30,
        description=(
            "Days CloudWatch keeps VPC flow logs, EKS control-plane logs and the Route 53 "
            "query log (30 in dev, 90 in staging, 365 in prod for audit trails); a value "
            "CloudWatch accepts."
        ),
    )
    redis_engine: Literal["valkey", "redis"] = Field(
        default="valkey",
        description=(
            "ElastiCache engine: `valkey` (Redis-compatible, the engine AWS develops and "
            "prices lower) or `redis`."
        ),
    )
    redis_engine_version: str | None = Field(
        default=None,
        pattern=r"^\d+\.\d+$",
        description="ElastiCache engine version; unset picks the newest major (valkey 8.0, redis 7.1).",
    )
    redis_snapshot_retention_days: int = Field(
        default=0,
        ge=0,
        le=35,
        description=(
            "Days of daily ElastiCache snapshots (0 = none). 7 in prod so budgets and rate "
            "limit state survive a bad failover; dev and staging rebuild from scratch."
        ),
    )
    postgres_final_snapshot: bool = Field(
        default=False,
        description=(
            "Take a final RDS snapshot when the instance is deleted (on in prod, where the "
            "data matters; off in dev and staging so stacks tear down cleanly)."
        ),
    )
    admin_principal_arns: list[str] = Field(
        default_factory=list,
        description=(
            "IAM role or user ARNs granted cluster admin through EKS access entries, besides "
            "the deployer (for example a break-glass SSO role). Empty by default: least "
            "privilege."
        ),
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _check_vpc_cidr(cls, value: str) -> str:
        return _private_cidr(value)

    @field_validator("log_retention_days")
    @classmethod
    def _check_log_retention(cls, value: int) -> int:
        if value not in _CLOUDWATCH_RETENTION_DAYS:
            allowed = ", ".join(str(d) for d in _CLOUDWATCH_RETENTION_DAYS)
            raise ValueError(f"{value} is not a CloudWatch retention period; use one of {allowed}")
        return value

    @field_validator("admin_principal_arns")
    @classmethod
    def _check_principals(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+", value):
                raise ValueError(
                    f"{value!r} is not an IAM role or user ARN; use "
                    "arn:aws:iam::<account>:role/<name> (not an sts assumed-role ARN)"
                )
        return values

    @model_validator(mode="after")
    def _check_subnet_layout(self) -> AwsConfig:
        # The CIDR split is the footprint's own pure function; run it here so a
        # VPC too small for the AZ count is a config error naming the key.
        try:
            split_vpc_cidr(self.vpc_cidr, self.availability_zone_count)
        except ValueError as exc:
            raise _SectionError("vpcCidr", str(exc).split(": ", 1)[1]) from None
        return self

    @model_validator(mode="after")
    def _check_autoscaler_release(self) -> AwsConfig:
        # The node autoscaler must match the cluster's minor: refuse a minor
        # with no pinned release before any resource exists.
        try:
            image_tag(self.kubernetes_version)
        except ValueError as exc:
            raise _SectionError("kubernetesVersion", str(exc).split(": ", 1)[1]) from None
        return self
