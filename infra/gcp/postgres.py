"""Cloud SQL for PostgreSQL: private IP only, TLS enforced, backups with PITR, query insights.

The instance takes its private IP from the network's peered range, so it must
wait for the service networking connection. The gateway's database and the
built-in user that owns its schema are created here; Cloud SQL makes every
built-in user a ``cloudsqlsuperuser``, so that user is only the migration
Job's. The gateway connects as its own role (:data:`infra.contracts.footprint.POSTGRES_APP_ROLE`,
row access only), which the Job creates. Both passwords come from
``pulumi_random``; the owner's is kept in a Secret Manager secret (encrypted with
the footprint's data key, replicated only in the region), never in the cluster:
the migration Job reads it there with its own service account.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from infra.config import StackConfig
from infra.contracts.footprint import POSTGRES_APP_ROLE
from infra.decisions.gcp import resource_name

DATABASE = "gateway"
USER = "gateway_admin"
"""The built-in user owning the schema (a cloudsqlsuperuser): the migration Job's."""
PORT = 5432

DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")

LOG_FLAGS = {
    # CIS Google Cloud Platform Foundation Benchmark (v3.0), section 6.2
    # "PostgreSQL Database": each flag and the value the benchmark asks for.
    "log_error_verbosity": "default",  # 6.2.1: DEFAULT or stricter
    "log_connections": "on",  # 6.2.2
    "log_disconnections": "on",  # 6.2.3
    # Checkpoints and statement durations (no statement text): CIS 6.2 in earlier
    # versions, and checkov's CKV_GCP_51 / CKV2_GCP_13, which the policy pack requires.
    "log_checkpoints": "on",
    "log_duration": "on",
    "log_statement": "ddl",  # 6.2.4: schema changes, not every query (prompts stay out)
    "log_min_messages": "warning",  # 6.2.5: WARNING or stricter
    "log_min_error_statement": "error",  # 6.2.6: ERROR or stricter
    "log_min_duration_statement": "-1",  # 6.2.7: off (statements would carry request data)
    # 6.2.8: pgAudit on; it logs DDL and role changes (who granted what).
    "cloudsql.enable_pgaudit": "on",
    "pgaudit.log": "ddl,role",
    # Operational logging beyond the benchmark: lock waits and temp files.
    "log_lock_waits": "on",
    "log_temp_files": "0",
}


def database_flags(max_connections: int | None) -> dict[str, str]:
    """:data:`LOG_FLAGS`, and ``max_connections`` when ``gcp.postgresMaxConnections`` sets it
    (setting or changing the flag restarts the instance)."""
    if max_connections is None:
        return dict(LOG_FLAGS)
    return {**LOG_FLAGS, "max_connections": str(max_connections)}


@dataclass
class PostgresArgs:
    """Inputs of :class:`Postgres`.

    ``high_availability`` makes the instance REGIONAL (a standby in another
    zone, automatic failover); ``deletion_protection`` blocks deletion both in
    Pulumi and in the Cloud SQL API.
    """

    name_prefix: str
    region: str
    network_id: pulumi.Input[str]
    allocated_ip_range: pulumi.Input[str]
    service_connection: pulumi.Resource
    database_version: str
    tier: str
    disk_gb: int
    high_availability: bool
    deletion_protection: bool
    backup_retention_days: int
    maintenance_day: str
    maintenance_hour_utc: int
    kms_key_id: pulumi.Input[str] | None = None
    """Cloud KMS key encrypting data, backups and logs at rest (CMEK); Google-managed when None."""
    max_connections: int | None = None
    """The ``max_connections`` flag; None keeps Cloud SQL's default for the tier."""
    apis: Sequence[pulumi.Resource] = field(default_factory=list)
    secret_apis: Sequence[pulumi.Resource] = field(default_factory=list)
    """What the owner's secret waits for: Secret Manager's API and its agent's grant on the key."""

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        network_id: pulumi.Input[str],
        allocated_ip_range: pulumi.Input[str],
        service_connection: pulumi.Resource,
        kms_key_id: pulumi.Input[str] | None,
        apis: Sequence[pulumi.Resource],
        secret_apis: Sequence[pulumi.Resource],
    ) -> PostgresArgs:
        """The args from the stack's ``gcp`` section; the keywords wire in other components."""
        s = config.gcp
        return cls(
            name_prefix=config.name_prefix,
            region=s.region,
            database_version=s.postgres_version,
            tier=s.postgres_tier,
            max_connections=s.postgres_max_connections,
            disk_gb=s.postgres_disk_gb,
            high_availability=s.high_availability,
            deletion_protection=s.deletion_protection,
            backup_retention_days=s.backup_retention_days,
            maintenance_day=s.maintenance_day,
            maintenance_hour_utc=s.maintenance_hour_utc,
            network_id=network_id,
            allocated_ip_range=allocated_ip_range,
            service_connection=service_connection,
            kms_key_id=kms_key_id,
            apis=apis,
            secret_apis=secret_apis,
        )


def availability_type(high_availability: bool) -> str:
    """``REGIONAL`` (standby in a second zone) when highly available, else ``ZONAL``."""
    return "REGIONAL" if high_availability else "ZONAL"


def sql_maintenance_day(day: str) -> int:
    """Cloud SQL's day number (1 = Monday ... 7 = Sunday) of a weekday name."""
    try:
        return DAYS.index(day.upper()) + 1
    except ValueError:
        raise ValueError(
            f"maintenance day {day!r} is not a weekday; use one of {', '.join(DAYS)}"
        ) from None


def postgres_dsn(user: str, password: str, host: str, database: str, port: int = PORT) -> str:
    """``postgresql://user:password@host:port/database?sslmode=require`` (credentials URL-encoded)."""
    if not host:
        raise ValueError("the DSN needs the instance's private IP; the instance has none yet")
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
        f"{quote(database, safe='')}?sslmode=require"
    )


SECRET_MANAGER_API = "https://secretmanager.googleapis.com/v1"


def secret_access_url(version_name: str) -> str:
    """The ``versions.access`` URL of a secret version (``projects/.../versions/N``)."""
    if not version_name.startswith("projects/") or "/versions/" not in version_name:
        raise ValueError(
            f"secret version {version_name!r} is not projects/P/secrets/S/versions/V; pass the "
            "SecretVersion's name"
        )
    return f"{SECRET_MANAGER_API}/{version_name}:access"


class Postgres(pulumi.ComponentResource):
    """A private Cloud SQL for PostgreSQL instance with the gateway's database and user.

    Outputs: ``instance`` (the resource), ``private_ip``, ``connection_name``,
    ``dsn`` (secret, the gateway's role), ``owner_secret`` (the Secret Manager secret
    holding the owner) and ``owner_secret_url`` (its version's access URL).
    """

    def __init__(
        self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:gcp:Postgres", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Cloud SQL keeps a deleted instance's name for up to a week; a random
        # suffix lets a destroyed stack be rebuilt at once (as the sql-db module does).
        suffix = random.RandomId("instance-suffix", byte_length=2, opts=child)
        base = resource_name(args.name_prefix, "pg", "sql_instance", reserve=5)
        self.instance = gcp.sql.DatabaseInstance(
            "postgres",
            name=suffix.hex.apply(lambda hex_suffix: f"{base}-{hex_suffix}"),
            region=args.region,
            database_version=args.database_version,
            encryption_key_name=args.kms_key_id,
            deletion_protection=args.deletion_protection,
            settings=gcp.sql.DatabaseInstanceSettingsArgs(
                # db-custom tiers need the Enterprise edition (PostgreSQL 16+
                # defaults to Enterprise Plus, which rejects them).
                edition="ENTERPRISE",
                tier=args.tier,
                availability_type=availability_type(args.high_availability),
                disk_type="PD_SSD",
                disk_size=args.disk_gb,
                disk_autoresize=True,
                deletion_protection_enabled=args.deletion_protection,
                ip_configuration=gcp.sql.DatabaseInstanceSettingsIpConfigurationArgs(
                    ipv4_enabled=False,
                    private_network=args.network_id,
                    allocated_ip_range=args.allocated_ip_range,
                    ssl_mode="ENCRYPTED_ONLY",
                ),
                backup_configuration=gcp.sql.DatabaseInstanceSettingsBackupConfigurationArgs(
                    enabled=True,
                    point_in_time_recovery_enabled=True,
                    start_time="02:00",
                    transaction_log_retention_days=7,
                    backup_retention_settings=gcp.sql.DatabaseInstanceSettingsBackupConfigurationBackupRetentionSettingsArgs(
                        retained_backups=args.backup_retention_days, retention_unit="COUNT"
                    ),
                ),
                insights_config=gcp.sql.DatabaseInstanceSettingsInsightsConfigArgs(
                    query_insights_enabled=True,
                    query_string_length=1024,
                    record_application_tags=True,
                    # Client addresses are personal data in some jurisdictions.
                    record_client_address=False,
                ),
                maintenance_window=gcp.sql.DatabaseInstanceSettingsMaintenanceWindowArgs(
                    day=sql_maintenance_day(args.maintenance_day),
                    hour=args.maintenance_hour_utc,
                    update_track="stable",
                ),
                database_flags=[
                    gcp.sql.DatabaseInstanceSettingsDatabaseFlagArgs(name=flag, value=value)
                    for flag, value in database_flags(args.max_connections).items()
                ],
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*args.apis, args.service_connection]
            ),
        )
        self.database = gcp.sql.Database(
            "gateway",
            name=DATABASE,
            instance=self.instance.name,
            charset="UTF8",
            collation="en_US.UTF8",
            opts=child,
        )
        # Alphanumeric: the password goes into a URL; 32 characters is ~190 bits.
        self.password = random.RandomPassword("gateway", length=32, special=False, opts=child)
        self.user = gcp.sql.User(
            "gateway",
            name=USER,
            instance=self.instance.name,
            password=self.password.result,
            type="BUILT_IN",
            # PostgreSQL refuses to drop a role that owns objects; the instance's
            # deletion removes it anyway.
            deletion_policy="ABANDON",
            opts=child,
        )

        self.app_password = random.RandomPassword(
            "gateway-app", length=32, special=False, opts=child
        )

        self.private_ip = self.instance.private_ip_address
        self.connection_name = self.instance.connection_name
        self.owner_secret = gcp.secretmanager.Secret(
            "postgres-owner",
            secret_id=resource_name(args.name_prefix, "pg-owner", "secret"),
            replication=gcp.secretmanager.SecretReplicationArgs(
                user_managed=gcp.secretmanager.SecretReplicationUserManagedArgs(
                    replicas=[
                        gcp.secretmanager.SecretReplicationUserManagedReplicaArgs(
                            location=args.region,
                            customer_managed_encryption=gcp.secretmanager.SecretReplicationUserManagedReplicaCustomerManagedEncryptionArgs(
                                kms_key_name=args.kms_key_id
                            )
                            if args.kms_key_id is not None
                            else None,
                        )
                    ]
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.secret_apis)),
        )
        owner_data: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.user.name, self.password.result).apply(
                lambda v: json.dumps({"username": v[0], "password": v[1]})
            )
        )
        owner_version = gcp.secretmanager.SecretVersion(
            "postgres-owner",
            secret=self.owner_secret.id,
            secret_data=owner_data,
            opts=child,
        )
        self.owner_secret_url = owner_version.name.apply(secret_access_url)
        self.dsn: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.app_password.result, self.private_ip, self.database.name).apply(
                lambda values: postgres_dsn(POSTGRES_APP_ROLE, values[0], values[1], values[2])
            )
        )
        self.register_outputs(
            {
                "privateIp": self.private_ip,
                "connectionName": self.connection_name,
                "dsn": self.dsn,
                "ownerSecretUrl": self.owner_secret_url,
            }
        )
