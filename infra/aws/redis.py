"""ElastiCache (Valkey or Redis OSS): the gateway's hot-path state store.

A replication group in the database subnets, reachable only from the EKS
nodes' security group on the Redis port, encrypted at rest with the
footprint's KMS key, TLS required in transit and an AUTH token from
pulumi_random. With high availability (staging, prod) a replica in a second AZ
takes over automatically; prod keeps daily snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.aws.security import encrypted_log_group, nodes_only_security_group
from infra.config import StackConfig
from infra.decisions import aws as decisions

REDIS_PORT = 6379
REDIS_LOG_TYPES = ("slow-log", "engine-log")
"""The logs ElastiCache delivers to CloudWatch Logs (Valkey and Redis OSS 6.2+)."""


@dataclass
class RedisArgs:
    """Inputs of :class:`Redis`."""

    name_prefix: str
    """Prefix of every physical name."""
    vpc_id: pulumi.Input[str]
    """The VPC of the security group."""
    subnet_ids: pulumi.Input[list[str]]
    """Database subnets (no internet route)."""
    client_security_group_id: pulumi.Input[str]
    """The only security group admitted: the EKS nodes'."""
    kms_key_arn: pulumi.Input[str]
    """Customer-managed key for data at rest and snapshots."""
    node_type: str
    """ElastiCache node type."""
    engine: str
    """``valkey`` or ``redis``."""
    engine_version: str | None
    """Engine version override; unset picks the newest major."""
    high_availability: bool
    """Replica in a second AZ with automatic failover."""
    snapshot_retention_days: int
    """Days of daily snapshots (0 = none)."""
    protect: bool = False
    """Pulumi ``protect``: ElastiCache has no deletion protection of its own."""
    log_retention_days: int = 30
    """Days CloudWatch keeps the slow and engine logs."""

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        vpc_id: pulumi.Input[str],
        subnet_ids: pulumi.Input[list[str]],
        client_security_group_id: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
    ) -> RedisArgs:
        """The args from the stack's ``aws`` section; the keywords wire in other components."""
        s = config.aws
        return cls(
            name_prefix=config.name_prefix,
            node_type=s.redis_node_type,
            engine=s.redis_engine,
            engine_version=s.redis_engine_version,
            high_availability=s.high_availability,
            snapshot_retention_days=s.redis_snapshot_retention_days,
            protect=s.deletion_protection,
            log_retention_days=s.log_retention_days,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            client_security_group_id=client_security_group_id,
            kms_key_arn=kms_key_arn,
        )


class Redis(pulumi.ComponentResource):
    """An encrypted, TLS-only, token-authenticated ElastiCache replication group.

    Outputs: ``url`` (secret ``rediss://:<token>@<primary>:6379``),
    ``primary_endpoint``, ``port`` and ``security_group_id``.
    """

    def __init__(
        self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:aws:Redis", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topology = decisions.redis_topology(args.high_availability)
        group_id = decisions.aws_name(args.name_prefix, "redis", "elasticache-replication-group")

        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            name=decisions.aws_name(args.name_prefix, "redis", "elasticache-subnet-group"),
            description="ElastiCache in the database subnets",
            subnet_ids=args.subnet_ids,
            opts=child,
        )
        self.security_group = nodes_only_security_group(
            name,
            name_prefix=args.name_prefix,
            service="redis",
            port=REDIS_PORT,
            vpc_id=args.vpc_id,
            client_security_group_id=args.client_security_group_id,
            description="ElastiCache: Redis port from the EKS nodes only",
            rule_description="Redis from the EKS nodes",
            opts=child,
        )

        # ElastiCache tokens are 16-128 printable characters without @, " or /;
        # letters and digits only keep the URL free of escaping surprises.
        self.auth_token = random.RandomPassword(
            f"{name}-auth-token", length=64, special=False, opts=child
        )

        # Slow commands and engine events (failovers, evictions) are what an
        # operator paged at night looks at first; encrypted and expiring like
        # every other log group of the footprint.
        log_groups = {
            log_type: encrypted_log_group(
                f"{name}-{log_type}",
                f"/aws/elasticache/{group_id}/{log_type}",
                kms_key_arn=args.kms_key_arn,
                retention_days=args.log_retention_days,
                opts=child,
            )
            for log_type in REDIS_LOG_TYPES
        }

        self.replication_group = aws.elasticache.ReplicationGroup(
            f"{name}-rg",
            replication_group_id=group_id,
            description=f"{args.name_prefix} gateway state (limits, budgets, cache)",
            engine=args.engine,
            engine_version=decisions.redis_engine_version(args.engine, args.engine_version),
            node_type=args.node_type,
            port=REDIS_PORT,
            num_cache_clusters=topology.cache_clusters,
            automatic_failover_enabled=topology.automatic_failover,
            multi_az_enabled=topology.multi_az,
            subnet_group_name=subnet_group.name,
            security_group_ids=[self.security_group.id],
            at_rest_encryption_enabled=True,
            kms_key_id=args.kms_key_arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=self.auth_token.result,
            auth_token_update_strategy="ROTATE",
            auto_minor_version_upgrade=True,
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window="03:00-04:00" if args.snapshot_retention_days else None,
            maintenance_window="sun:05:00-sun:06:00",
            final_snapshot_identifier=(
                f"{group_id}-final" if args.snapshot_retention_days else None
            ),
            log_delivery_configurations=[
                aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                    destination=group.name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type=log_type,
                )
                for log_type, group in log_groups.items()
            ],
            apply_immediately=False,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )

        self.primary_endpoint = self.replication_group.primary_endpoint_address
        self.port = REDIS_PORT
        self.security_group_id = self.security_group.id
        self.url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.primary_endpoint, self.auth_token.result).apply(
                lambda a: decisions.redis_url(a[0], REDIS_PORT, a[1])
            )
        )
        self.register_outputs(
            {
                "primaryEndpoint": self.primary_endpoint,
                "securityGroupId": self.security_group_id,
                "url": self.url,
            }
        )
