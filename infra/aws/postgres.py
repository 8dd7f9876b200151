"""RDS for PostgreSQL: the gateway's system of record (keys, budgets, audit).

A single instance (multi-AZ with high availability) in the database subnets,
never publicly accessible, reachable only from the EKS nodes' security group,
storage and Performance Insights encrypted with the footprint's KMS key, TLS
forced by the parameter group (``rds.force_ssl``), backups kept per
environment, and in prod deletion protection plus a final snapshot. PostgreSQL
16+ ships pgvector, so ``CREATE EXTENSION vector`` works without a preload.

The master user's password is RDS's own (``manage_master_user_password``): RDS
generates it, keeps it in a Secrets Manager secret encrypted with the
footprint's KMS key and rotates it; it is never in the Pulumi state, the
cluster or an export. The migration Job reads it at run time with its own IAM
role (:class:`infra.aws.identity.MigrationIdentity`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.aws.security import encrypted_log_group, nodes_only_security_group
from infra.config import StackConfig
from infra.contracts.footprint import POSTGRES_APP_ROLE
from infra.decisions import aws as decisions

POSTGRES_PORT = 5432
DATABASE_NAME = "gateway"
MASTER_USER = "gateway_admin"
POSTGRES_LOG_EXPORTS = ("postgresql", "upgrade")
"""The logs RDS exports to CloudWatch (``/aws/rds/instance/<id>/<log>``)."""


@dataclass
class PostgresArgs:
    """Inputs of :class:`Postgres`."""

    name_prefix: str
    """Prefix of every physical name."""
    vpc_id: pulumi.Input[str]
    """The VPC of the security group."""
    subnet_ids: pulumi.Input[list[str]]
    """Database subnets (no internet route)."""
    client_security_group_id: pulumi.Input[str]
    """The only security group admitted: the EKS nodes'."""
    kms_key_arn: pulumi.Input[str]
    """Customer-managed key for storage, snapshots and Performance Insights."""
    instance_class: str
    """RDS instance class."""
    storage_gb: int
    """Allocated storage in GiB."""
    engine_version: str
    """PostgreSQL version, 16 or newer."""
    high_availability: bool
    """Multi-AZ standby with automatic failover."""
    backup_retention_days: int
    """Days of automated backups."""
    deletion_protection: bool
    """RDS deletion protection."""
    final_snapshot: bool
    """Snapshot the instance when it is deleted."""
    log_retention_days: int = 30
    """Days CloudWatch keeps the exported PostgreSQL and upgrade logs."""
    max_connections: int | None = None
    """``max_connections`` set in the parameter group; None keeps RDS's default for the class."""

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        vpc_id: pulumi.Input[str],
        subnet_ids: pulumi.Input[list[str]],
        client_security_group_id: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
    ) -> PostgresArgs:
        """The args from the stack's ``aws`` section; the keywords wire in other components."""
        s = config.aws
        return cls(
            name_prefix=config.name_prefix,
            instance_class=s.postgres_instance_class,
            storage_gb=s.postgres_storage_gb,
            engine_version=s.postgres_version,
            high_availability=s.high_availability,
            backup_retention_days=s.backup_retention_days,
            deletion_protection=s.deletion_protection,
            final_snapshot=s.postgres_final_snapshot,
            log_retention_days=s.log_retention_days,
            max_connections=s.postgres_max_connections,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            client_security_group_id=client_security_group_id,
            kms_key_arn=kms_key_arn,
        )


def connection_parameters(
    max_connections: int | None,
) -> list[aws.rds.ParameterGroupParameterArgs]:
    """The ``max_connections`` parameter when the stack sets one (``aws.postgresMaxConnections``).

    Static in RDS: applied at creation, and on a change at the next reboot
    (``pending-reboot``; RDS refuses ``immediate`` for a static parameter).
    """
    if max_connections is None:
        return []
    return [
        aws.rds.ParameterGroupParameterArgs(
            name="max_connections", value=str(max_connections), apply_method="pending-reboot"
        )
    ]


class Postgres(pulumi.ComponentResource):
    """An encrypted, private, TLS-only RDS PostgreSQL instance.

    Outputs: ``dsn`` (secret, ``sslmode=require``) as the gateway's role,
    ``owner_secret_arn`` (the RDS-managed master user secret), ``address``,
    ``port``, ``security_group_id``.
    """

    def __init__(
        self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:aws:Postgres", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        family = decisions.postgres_family(args.engine_version)
        identifier = decisions.aws_name(args.name_prefix, "postgres", "rds-instance")

        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=decisions.aws_name(args.name_prefix, "postgres", "rds-subnet-group"),
            description="RDS in the database subnets",
            subnet_ids=args.subnet_ids,
            opts=child,
        )
        self.security_group = nodes_only_security_group(
            name,
            name_prefix=args.name_prefix,
            service="postgres",
            port=POSTGRES_PORT,
            vpc_id=args.vpc_id,
            client_security_group_id=args.client_security_group_id,
            description="RDS PostgreSQL: port 5432 from the EKS nodes only",
            rule_description="PostgreSQL from the EKS nodes",
            opts=child,
        )

        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            name=decisions.aws_name(args.name_prefix, f"{family}-tls", "rds-parameter-group"),
            family=family,
            description="TLS-only connections; log slow statements and connections",
            parameters=[
                # Refuse every non-TLS connection at the server, whatever the client asks.
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_connections", value="1"),
                aws.rds.ParameterGroupParameterArgs(
                    name="log_min_duration_statement", value="1000"
                ),
                *connection_parameters(args.max_connections),
            ],
            opts=child,
        )

        # The gateway's own role (created by the migration Job): row access only.
        self.app_password = random.RandomPassword(
            f"{name}-app-password", length=40, special=False, opts=child
        )

        log_groups = [
            encrypted_log_group(
                f"{name}-{log}-logs",
                f"/aws/rds/instance/{identifier}/{log}",
                kms_key_arn=args.kms_key_arn,
                retention_days=args.log_retention_days,
                opts=child,
            )
            for log in POSTGRES_LOG_EXPORTS
        ]

        self.instance = aws.rds.Instance(
            f"{name}-db",
            identifier=identifier,
            engine=aws.rds.EngineType.POSTGRES,
            engine_version=args.engine_version,
            instance_class=args.instance_class,
            allocated_storage=args.storage_gb,
            max_allocated_storage=decisions.postgres_max_storage(args.storage_gb),
            storage_type=aws.rds.StorageType.GP3,
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            db_name=DATABASE_NAME,
            username=MASTER_USER,
            # RDS generates, stores (Secrets Manager, our key) and rotates the password.
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.kms_key_arn,
            port=POSTGRES_PORT,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            publicly_accessible=False,
            multi_az=args.high_availability,
            parameter_group_name=parameters.name,
            ca_cert_identifier="rds-ca-rsa2048-g1",
            iam_database_authentication_enabled=True,
            backup_retention_period=args.backup_retention_days,
            backup_window="03:00-04:00",
            maintenance_window="sun:05:00-sun:06:00",
            copy_tags_to_snapshot=True,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.final_snapshot,
            final_snapshot_identifier=f"{identifier}-final" if args.final_snapshot else None,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=args.kms_key_arn,
            performance_insights_retention_period=7,
            enabled_cloudwatch_logs_exports=list(POSTGRES_LOG_EXPORTS),
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.deletion_protection, depends_on=log_groups
            ),
        )

        self.address = self.instance.address
        self.port = POSTGRES_PORT
        self.security_group_id = self.security_group.id
        self.owner_secret_arn = self.instance.master_user_secrets.apply(master_secret_arn)
        self.dsn: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.instance.address, self.app_password.result).apply(
                lambda a: decisions.postgres_dsn(
                    POSTGRES_APP_ROLE, a[1], a[0], POSTGRES_PORT, DATABASE_NAME
                )
            )
        )
        self.register_outputs(
            {
                "address": self.address,
                "securityGroupId": self.security_group_id,
                "dsn": self.dsn,
                "ownerSecretArn": self.owner_secret_arn,
            }
        )


def master_secret_arn(secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret] | None) -> str:
    """The ARN of the master user secret RDS manages (the instance has exactly one)."""
    arns = [s.secret_arn for s in secrets or () if s.secret_arn]
    if len(arns) != 1:
        raise ValueError(
            f"RDS reported {len(arns)} master user secrets; the instance must be created with "
            "manage_master_user_password=True (it then has exactly one)"
        )
    return arns[0]
