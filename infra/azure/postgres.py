"""PostgreSQL Flexible Server with private access, TLS required and pgvector allowed.

* Private access (VNet integration): the server lives in the delegated
  subnet, its name resolves through a private DNS zone linked to the VNet,
  and public network access is disabled.
* ``require_secure_transport`` on (TLS 1.2 minimum); the DSN says
  ``sslmode=require``.
* ``vector`` allowed in ``azure.extensions``, so the gateway can
  ``CREATE EXTENSION vector`` for the semantic cache.
* Backups kept ``backupRetentionDays`` (7 in dev and staging, 30 in prod),
  geo-redundant in prod; zone-redundant high availability where
  ``highAvailability`` (staging and prod).
* The administrator password comes from ``pulumi_random`` and stays secret; it
  is written to a Key Vault secret (``postgres-owner``: ``{"username",
  "password"}``), never to the cluster: the migration Job reads it there with
  its own workload identity and creates the gateway's own role
  (:data:`infra.contracts.footprint.POSTGRES_APP_ROLE`, row access only, its own generated
  password). Password authentication is the only method: Microsoft Entra
  authentication stays off until the gateway authenticates with Entra tokens
  (an unused second way in is only attack surface).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_azure_native import dbforpostgresql, keyvault, privatedns

from infra.config import AzureConfig
from infra.contracts.footprint import POSTGRES_APP_ROLE
from infra.decisions.azure import (
    azure_name,
    postgres_availability,
    postgres_backup_retention,
    postgres_tier,
    with_suffix,
)

ADMIN_LOGIN = "aigwadmin"
OWNER_SECRET_NAME = "postgres-owner"
"""The Key Vault secret holding the administrator's ``{"username", "password"}``."""
DATABASE = "gateway"
PORT = 5432
_SUFFIX_BYTES = 3

SERVER_PARAMETERS = (
    ("require_secure_transport", "on"),
    ("ssl_min_protocol_version", "TLSv1.2"),
    ("azure.extensions", "vector"),
)
"""Server parameters set after creation, in this order (Azure allows one change at a time)."""


def server_parameters(max_connections: int | None) -> tuple[tuple[str, str], ...]:
    """:data:`SERVER_PARAMETERS`, and ``max_connections`` when ``azure.postgresMaxConnections``
    sets it (a static parameter: Azure applies it when the server restarts)."""
    if max_connections is None:
        return SERVER_PARAMETERS
    return (*SERVER_PARAMETERS, ("max_connections", str(max_connections)))


@dataclass
class PostgresArgs:
    """Inputs of :class:`Postgres`."""

    resource_group_name: pulumi.Input[str]
    location: str
    name_prefix: str
    settings: AzureConfig
    """The stack's ``ai-gateway:azure`` section: SKU, tier, storage, HA, backups."""
    vnet_id: pulumi.Input[str]
    postgres_subnet_id: pulumi.Input[str]
    key_vault_name: pulumi.Input[str]
    """The stack's Key Vault (RBAC authorisation), where the administrator's secret is kept."""
    protect: bool = False


class Postgres(pulumi.ComponentResource):
    """A private PostgreSQL Flexible Server and the gateway's database (``ai-gateway:azure:Postgres``).

    Outputs: ``fqdn``, ``dsn`` (``postgresql://...?sslmode=require``, secret, the
    gateway's role), ``owner_secret_uri`` (the Key Vault secret holding the
    administrator) and ``owner_secret_id`` (its ARM id, the scope of the read grant).
    """

    fqdn: pulumi.Output[str]
    dsn: pulumi.Output[str]
    owner_secret_uri: pulumi.Output[str]
    owner_secret_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:azure:Postgres", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        rg = args.resource_group_name
        tier = postgres_tier(s.postgres_sku, s.postgres_tier)
        availability = postgres_availability(s.high_availability, tier, list(s.availability_zones))
        retention = postgres_backup_retention(s.backup_retention_days)

        password = random.RandomPassword(
            f"{name}-admin-password",
            length=32,
            # Letters and digits only: the password goes into a URL unescaped
            # by some clients, and Azure's complexity rule needs 3 classes.
            special=False,
            min_upper=2,
            min_lower=2,
            min_numeric=2,
            opts=child,
        )
        app_password = random.RandomPassword(
            f"{name}-app-password", length=32, special=False, opts=child
        )
        # Server names are global (<name>.postgres.database.azure.com).
        base = azure_name(
            "postgres_server", "psql", args.name_prefix, reserve=_SUFFIX_BYTES * 2 + 1
        )
        suffix = random.RandomId(f"{name}-suffix", byte_length=_SUFFIX_BYTES, opts=child)

        zone = privatedns.PrivateZone(
            f"{name}-dns",
            private_zone_name=private_dns_zone_name(args.name_prefix),
            resource_group_name=rg,
            location="global",
            opts=child,
        )
        link = privatedns.VirtualNetworkLink(
            f"{name}-dns-link",
            virtual_network_link_name=azure_name(
                "virtual_network", "link", args.name_prefix, "postgres"
            ),
            private_zone_name=zone.name,
            resource_group_name=rg,
            location="global",
            virtual_network=privatedns.SubResourceArgs(id=args.vnet_id),
            registration_enabled=False,
            opts=child,
        )
        server = dbforpostgresql.Server(
            f"{name}-server",
            server_name=suffix.hex.apply(lambda h: with_suffix("postgres_server", base, h)),
            resource_group_name=rg,
            location=args.location,
            version=dbforpostgresql.PostgresMajorVersion(s.postgres_version),
            sku=dbforpostgresql.SkuArgs(name=s.postgres_sku, tier=dbforpostgresql.SkuTier(tier)),
            storage=dbforpostgresql.StorageArgs(
                storage_size_gb=s.postgres_storage_gb,
                auto_grow=dbforpostgresql.StorageAutoGrow.ENABLED,
            ),
            administrator_login=ADMIN_LOGIN,
            administrator_login_password=password.result,
            auth_config=dbforpostgresql.AuthConfigArgs(
                password_auth=dbforpostgresql.PasswordBasedAuth.ENABLED,
                active_directory_auth=dbforpostgresql.MicrosoftEntraAuth.DISABLED,
            ),
            network=dbforpostgresql.NetworkArgs(
                delegated_subnet_resource_id=args.postgres_subnet_id,
                private_dns_zone_arm_resource_id=zone.id,
                public_network_access=dbforpostgresql.ServerPublicNetworkAccessState.DISABLED,
            ),
            backup=dbforpostgresql.BackupArgs(
                backup_retention_days=retention,
                geo_redundant_backup=(
                    dbforpostgresql.GeographicallyRedundantBackup.ENABLED
                    if s.postgres_geo_redundant_backup
                    else dbforpostgresql.GeographicallyRedundantBackup.DISABLED
                ),
            ),
            high_availability=dbforpostgresql.HighAvailabilityArgs(
                mode=dbforpostgresql.PostgreSqlFlexibleServerHighAvailabilityMode(
                    availability.mode
                ),
                standby_availability_zone=availability.standby_zone,
            ),
            availability_zone=availability.primary_zone,
            maintenance_window=dbforpostgresql.MaintenanceWindowArgs(
                custom_window="Enabled", day_of_week=0, start_hour=2, start_minute=0
            ),
            # The DNS zone must resolve in the VNet before the server registers in it.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[link],
                protect=args.protect,
                additional_secret_outputs=["administratorLoginPassword"],
            ),
        )

        previous: pulumi.Resource = server
        for parameter, value in server_parameters(s.postgres_max_connections):
            previous = dbforpostgresql.Configuration(
                f"{name}-{parameter.replace('.', '-').replace('_', '-')}",
                configuration_name=parameter,
                server_name=server.name,
                resource_group_name=rg,
                value=value,
                source="user-override",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous]),
            )
        database = dbforpostgresql.Database(
            f"{name}-database",
            database_name=DATABASE,
            server_name=server.name,
            resource_group_name=rg,
            charset="UTF8",
            collation="en_US.utf8",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[previous], protect=args.protect),
        )

        self.fqdn = server.fully_qualified_domain_name.apply(lambda f: f or "")
        owner_secret = keyvault.Secret(
            f"{name}-owner-secret",
            secret_name=OWNER_SECRET_NAME,
            vault_name=args.key_vault_name,
            resource_group_name=rg,
            properties=keyvault.SecretPropertiesArgs(
                value=pulumi.Output.secret(
                    password.result.apply(
                        lambda p: json.dumps({"username": ADMIN_LOGIN, "password": p})
                    )
                ),
                content_type="application/json",
            ),
            # The secret holds the server's password: it exists once the server accepts it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[server]),
        )
        # `properties` is secret as a whole (it carries the value in); its URI is not.
        self.owner_secret_uri = pulumi.Output.unsecret(owner_secret.properties.secret_uri)
        self.owner_secret_id = owner_secret.id
        self.dsn = pulumi.Output.secret(
            pulumi.Output.all(self.fqdn, database.name, app_password.result).apply(
                lambda values: postgres_dsn(values[0], values[1], POSTGRES_APP_ROLE, values[2])
            )
        )
        self.register_outputs(
            {"fqdn": self.fqdn, "dsn": self.dsn, "ownerSecretUri": self.owner_secret_uri}
        )


def private_dns_zone_name(name_prefix: str) -> str:
    """The server's private DNS zone: ``<prefix>.private.postgres.database.azure.com``.

    Flexible Server requires a zone ending in ``.postgres.database.azure.com``;
    a per-stack label keeps stacks sharing a DNS setup apart.
    """
    label = azure_name("postgres_server", name_prefix)
    return f"{label}.private.postgres.database.azure.com"


def postgres_dsn(host: str, database: str, user: str, password: str) -> str:
    """``postgresql://user:password@host:5432/database?sslmode=require``, escaped."""
    from urllib.parse import quote

    if not host:
        raise ValueError("PostgreSQL returned no host name; check that the server is ready")
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{PORT}/"
        f"{quote(database, safe='')}?sslmode=require"
    )
