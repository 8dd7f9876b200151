"""The stack configuration, as typed pydantic models.

Everything the Pulumi program reads from ``Pulumi.<stack>.yaml`` lives in the
``ai-gateway:`` namespace and is validated here, once, before any resource is
registered. The stack file uses camelCase keys (``ai-gateway:aws.nodeCount``);
the models use snake_case attributes with camelCase aliases.

Defaults depend on the environment: ``dev`` is the smallest and cheapest
footprint that is still private and encrypted; ``prod`` is highly available and
protected against deletion. Every default can be overridden from the stack file;
the field descriptions (rendered into docs/reference/configuration.md by
``aigw config-reference``) say why each default is what it is.

A bad value raises :class:`ConfigError`, whose message names the full config
key, the bad value and the fix, for example::

    ai-gateway:aws.nodeCount: -1 is not allowed; use an integer from 1 to 100
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from infra.k8s.decisions import Resources

NAMESPACE = "ai-gateway"
"""The Pulumi config namespace of this project (the ``name`` in ``Pulumi.yaml``)."""

PROVIDER_KEYS = "providerKeys"
"""Secret config mapping a provider key's name to its value (``providerKeys.groq``).

Each becomes an entry of the gateway's Kubernetes Secret and the environment
variable ``<NAME>_API_KEY`` of its pods (:func:`provider_key_variable`), which
the gateway config references as ``api_key: "${GROQ_API_KEY}"``."""

OIDC_CLIENT_SECRET = "oidcClientSecret"
"""Secret config: the OpenID Connect client secret of the console's sign-in (people's SSO).

It reaches the gateway's pods as ``AIGW_OIDC_CLIENT_SECRET`` from its Kubernetes Secret on
every cluster; ``gateway.appConfig``'s ``identity.oidc`` names only the client id."""

SECRET_SETTINGS = (PROVIDER_KEYS, "adminKey", OIDC_CLIENT_SECRET)
"""Top-level keys that must be secret (``pulumi config set --secret``). Their values are not part
of :class:`StackConfig` (a plain, loggable model; it keeps only the provider keys' names);
:func:`secret_settings` reads them as secret Outputs."""

LEGACY_PROVIDER_KEYS = {"openaiApiKey": "openai", "anthropicApiKey": "anthropic"}
"""Secret settings replaced by ``providerKeys.<name>``: refused with the command that moves them."""

SECRET_SETTING_DOCS = {
    PROVIDER_KEYS: (
        "Upstream provider API keys by name, any number: `pulumi config set --secret --path "
        "'ai-gateway:providerKeys.groq' VALUE`. Each reaches the gateway's pods as the "
        "environment variable `<NAME>_API_KEY` (`groq` → `GROQ_API_KEY`, `azure-openai` → "
        '`AZURE_OPENAI_API_KEY`), referenced in `gateway.appConfig` as `api_key: "${GROQ_API_KEY}"`. '
        "Names: lowercase letters, digits and hyphens."
    ),
    "adminKey": (
        "The gateway's admin API key (`AIGW_ADMIN_KEY`), the same on every cluster so any "
        "cluster behind the global hostname accepts it. When unset the program generates one "
        "with pulumi_random."
    ),
    OIDC_CLIENT_SECRET: (
        "The client secret of the console's OpenID Connect sign-in (`identity.oidc` in "
        "`gateway.appConfig`, a confidential client): `pulumi config set --secret "
        "ai-gateway:oidcClientSecret VALUE`. It reaches the gateway's pods as "
        "`AIGW_OIDC_CLIENT_SECRET` from their Kubernetes Secret on every cluster; `aigw plan` "
        "refuses an `identity.oidc` section without it (unless `token_auth_method: none`)."
    ),
}
"""What each secret setting is (rendered into docs/reference/configuration.md)."""

# Sections the program reads: the top-level keys of the ``ai-gateway:`` namespace.
# The secret settings are top-level keys too (a secret must be a whole config value).
SECTIONS = ("environment", "tags", "aws", "azure", "gcp", "dns", "gateway", *SECRET_SETTINGS)

_PROVIDER_KEY_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}[a-z0-9]|[a-z]")


def provider_key_variable(name: str) -> str:
    """The environment variable of provider key ``name``: ``groq`` -> ``GROQ_API_KEY``.

    Raises :class:`ValueError` naming the fix for a name that cannot be one.
    """
    if not isinstance(name, str) or not _PROVIDER_KEY_NAME.fullmatch(name) or "--" in name:
        raise ValueError(
            f"{name!r} cannot name a provider key; use lowercase letters, digits and single "
            "hyphens, starting with a letter (for example groq or azure-openai)"
        )
    if name.startswith("aigw"):
        raise ValueError(f"{name!r} is reserved (AIGW_* are the gateway's own variables)")
    return f"{name.upper().replace('-', '_')}_API_KEY"


class Environment(StrEnum):
    """The deployment environment; it selects the defaults of every section."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class Cloud(StrEnum):
    """The clouds the program can deploy to."""

    AWS = "aws"
    AZURE = "azure"
    GCP = "gcp"


class RoutingPolicy(StrEnum):
    """How the global hostname spreads traffic across the clouds."""

    LATENCY = "latency"
    GEO = "geo"
    WEIGHTED = "weighted"


class DnsProvider(StrEnum):
    """The cloud whose DNS service hosts the global name."""

    ROUTE53 = "route53"
    AZURE = "azure"
    GCP = "gcp"

    @classmethod
    def of(cls, cloud: Cloud) -> DnsProvider:
        """A cloud's own DNS service."""
        return {Cloud.AWS: cls.ROUTE53, Cloud.AZURE: cls.AZURE, Cloud.GCP: cls.GCP}[cloud]


class ConfigError(ValueError):
    """A stack configuration error; ``str()`` is a message ready for the user.

    ``problems`` holds one line per bad key, each naming the key, the value and
    the fix.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Model(BaseModel):
    """Base of every config model: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a valid CIDR block ({exc}); use a network address with a "
            "prefix length, for example 10.10.0.0/16"
        ) from None
    return str(network)


def _private_cidr(value: str) -> str:
    cidr = _cidr(value)
    if not ipaddress.ip_network(cidr).is_private:
        raise ValueError(
            f"{value!r} is not a private range; use a block inside 10.0.0.0/8, "
            "172.16.0.0/12 or 192.168.0.0/16"
        )
    return cidr


def _deployer_cidrs(values: list[str]) -> list[str]:
    # The policy pack's own rule (policies/cidrs.py): the union of the ranges is
    # judged, so [0.0.0.0/1, 128.0.0.0/1] is the whole internet just like 0.0.0.0/0.
    from policies.cidrs import exposure

    cleaned = [_cidr(value) for value in values]
    found = exposure(cleaned)
    if found.is_world:
        raise ValueError(
            f"{cleaned} open the cluster API to the whole internet ({found.describe()}); "
            "list the deployer's egress addresses instead (for example 203.0.113.10/32), "
            "or set privateEndpointOnly: true and deploy from inside the network"
        )
    return cleaned


PrivateCidr = Annotated[str, Field(description="A private IPv4 CIDR block")]
NodeCount = Annotated[int, Field(ge=1, le=100)]


# --------------------------------------------------------------------------- tags


class TagsConfig(_Model):
    """The organisational tags every taggable resource carries (``ai-gateway:tags``).

    ``environment``, ``managed-by`` and ``project`` are derived; ``owner`` and
    ``cost-center`` must be set so every bill and alert reaches a person.
    """

    owner: str = Field(
        min_length=1,
        max_length=128,
        description="Team or person accountable for the stack (tag `owner`). Required.",
    )
    cost_center: str = Field(
        min_length=1,
        max_length=128,
        description="Cost centre billed for the stack (tag `cost-center`). Required.",
    )
    project: str = Field(
        default="ai-gateway",
        min_length=1,
        max_length=63,
        description="Project name (tag `project`); also the prefix of resource names.",
    )
    extra: dict[str, str] = Field(
        default_factory=dict,
        description="Additional tags applied everywhere; they cannot override the required ones.",
    )

    @field_validator("project")
    @classmethod
    def _project_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", value):
            raise ValueError(
                f"{value!r} cannot prefix resource names in every cloud; use lowercase "
                "letters, digits and hyphens, starting with a letter (for example ai-gateway)"
            )
        return value


# ------------------------------------------------------------------ per-cloud common


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


# The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
_CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip

_HA_DEFAULTS = {
    Environment.DEV: {"highAvailability": False, "deletionProtection": False},
    Environment.STAGING: {"highAvailability": True, "deletionProtection": False},
    Environment.PROD: {
        "highAvailability": True,
        "deletionProtection": True,
        "backupRetentionDays": 30,
    },
}


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
        from infra.aws.decisions import split_vpc_cidr

        try:
            split_vpc_cidr(self.vpc_cidr, self.availability_zone_count)
        except ValueError as exc:
            raise _SectionError("vpcCidr", str(exc).split(": ", 1)[1]) from None
        return self

    @model_validator(mode="after")
    def _check_autoscaler_release(self) -> AwsConfig:
        # The node autoscaler must match the cluster's minor: refuse a minor
        # with no pinned release before any resource exists.
        from infra.aws.autoscaler import image_tag

        try:
            image_tag(self.kubernetes_version)
        except ValueError as exc:
            raise _SectionError("kubernetesVersion", str(exc).split(": ", 1)[1]) from None
        return self


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
        default_factory=lambda: ["1", "2", "3"],
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
        from infra.azure.sizing import ephemeral_os_disk_gb

        for key, size in (
            ("systemNodeVmSize", self.system_node_vm_size),
            ("nodeVmSize", self.node_vm_size),
        ):
            try:
                ephemeral_os_disk_gb(size, key)
            except ValueError as exc:
                raise _SectionError(key, str(exc).split(": ", 1)[1]) from None
        return self

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


def routes_to_azure_openai(app_config: Mapping[str, Any]) -> bool:
    """Whether the gateway's catalogue has an ``azure_openai`` provider."""
    providers = app_config.get("providers") if isinstance(app_config, Mapping) else None
    if not isinstance(providers, Mapping):
        return False
    return any(
        isinstance(p, Mapping) and p.get("type") == "azure_openai" for p in providers.values()
    )


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
        from infra.gcp.ranges import GkeRanges, RangeError, check_ranges

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


# --------------------------------------------------------------------- dns, gateway


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


class AlertsConfig(_Model):
    """Where the global health alerts go (``ai-gateway:dns.alerts``); prod must name one.

    ``emails`` work on every DNS cloud (subscribed to the SNS topic, an Azure
    Action Group or Cloud Monitoring email channels the stack creates); the
    other keys name an existing destination on the DNS cloud only.
    """

    emails: list[str] = Field(
        default_factory=list,
        description=(
            "Email addresses that get every health alert of the global name (each confirms "
            "its subscription on Route 53's SNS topic). Works with every dns.provider."
        ),
    )
    sns_topic_arn: str | None = Field(
        default=None,
        description=(
            "Existing SNS topic in us-east-1 the Route 53 alarms notify (dns.provider route53 "
            "only; if encrypted, with a key CloudWatch may use)."
        ),
    )
    action_group_id: str | None = Field(
        default=None,
        description="Existing Azure Monitor Action Group resource id (dns.provider azure only).",
    )
    notification_channels: list[str] = Field(
        default_factory=list,
        description=(
            "Existing Cloud Monitoring notification channels, "
            "projects/<project>/notificationChannels/<id> (dns.provider gcp only)."
        ),
    )

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if not _EMAIL.fullmatch(email):
                raise ValueError(
                    f"{email!r} is not an email address; list addresses like oncall@example.com"
                )
        return value

    @field_validator("sns_topic_arn")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(
            r"arn:aws[a-z-]*:sns:us-east-1:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?", value
        ):
            raise ValueError(
                f"{value!r} is not an SNS topic ARN in us-east-1; CloudWatch alarms on Route 53 "
                "health checks live in us-east-1 and can only notify a topic there (for "
                "example arn:aws:sns:us-east-1:123456789012:gateway-alarms)"
            )
        return value

    @field_validator("action_group_id")
    @classmethod
    def _action_group(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(
            r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/"
            r"(microsoft\.insights|Microsoft\.Insights)/actionGroups/[^/]+",
            value,
        ):
            raise ValueError(
                f"{value!r} is not an Action Group resource id; use /subscriptions/<id>/"
                "resourceGroups/<group>/providers/microsoft.insights/actionGroups/<name>"
            )
        return value

    @field_validator("notification_channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        for channel in value:
            if not re.fullmatch(
                r"projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/\d+", channel
            ):
                raise ValueError(
                    f"{channel!r} is not a notification channel name; use "
                    "projects/<project>/notificationChannels/<id> (gcloud beta monitoring "
                    "channels list)"
                )
        return value

    @property
    def configured(self) -> bool:
        """Whether any destination is set."""
        return bool(
            self.emails or self.sns_topic_arn or self.action_group_id or self.notification_channels
        )


class HealthCheckConfig(_Model):
    """How the DNS service checks each cloud's gateway (``ai-gateway:dns.healthCheck``)."""

    interval_seconds: int = Field(
        default=30,
        ge=10,
        le=300,
        description=(
            "Seconds between checks from each checker: Route 53 and Traffic Manager take 10 "
            "or 30 (10 costs extra), Cloud DNS at least 30."
        ),
    )
    failure_threshold: int = Field(
        default=3,
        ge=1,
        le=10,
        description=(
            "Consecutive failed checks before a cloud leaves the answer (and passes before it "
            "returns). 3 with 30 s: a dead cloud is out in about 90 s plus the TTL."
        ),
    )


class DnsConfig(_Model):
    """The global hostname in front of every cloud's gateway (``ai-gateway:dns``)."""

    provider: DnsProvider = Field(
        default=None,  # type: ignore[assignment]  # filled in by StackConfig from the clouds
        description=(
            "Which cloud hosts the global name: `route53`, `azure` (Azure DNS + Traffic "
            "Manager) or `gcp` (Cloud DNS routing policies). Default: the enabled cloud's own "
            "DNS in a single-cloud stack, `route53` when several clouds are enabled."
        ),
    )
    domain: str = Field(
        description="The zone the gateway's names live in, for example ai.example.com. Required.",
    )
    hostname: str = Field(
        default="gateway",
        description="Label of the global name: <hostname>.<domain>; each cloud also gets <hostname>-<cloud>.<domain>.",
    )
    hosted_zone_id: str | None = Field(
        default=None,
        description="Existing Route 53 hosted zone id of `domain` (route53 only); when unset the zone is created.",
    )
    routing_policy: RoutingPolicy = Field(
        default=None,  # type: ignore[assignment]  # filled in by StackConfig from the provider
        description=(
            "`latency` sends each client to the lowest-latency healthy cloud (route53, azure; "
            "the default there); `geo` to the cloud nearest the client's location (gcp, the "
            "default there); `weighted` splits by `weights`."
        ),
    )
    weights: dict[Cloud, int] = Field(
        default_factory=dict,
        description=(
            "Per-cloud weight for the weighted policy; 0 drains a cloud. 0-255 on route53, "
            "0-1000 on azure and gcp."
        ),
    )
    ttl_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="TTL of the global answer: 60 or less lets clients follow a failover quickly.",
    )
    health_check: HealthCheckConfig = Field(
        default_factory=HealthCheckConfig, description="How often each cloud is checked."
    )
    dnssec: bool = Field(
        default=True,
        description=(
            "Sign the zone (every provider supports it for a zone the stack creates); the "
            "`dnssecDsRecord` output is the DS record to add at the registrar."
        ),
    )
    query_logging: bool | None = Field(
        default=None,
        description=(
            "Log every query of the public zone (Route 53 to CloudWatch Logs, Cloud DNS to "
            "Cloud Logging). Default: on where supported; Azure DNS public zones have no query "
            "log, so true is refused there."
        ),
    )
    alerts: AlertsConfig = Field(
        default_factory=AlertsConfig,
        description="Where health alerts go. Required in prod.",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            moved = {
                "alarmEmails": "alerts.emails",
                "alarmTopicArn": "alerts.snsTopicArn",
                "alarmTopic": "alerts.emails",
            }
            for old, new in moved.items():
                if old in data:
                    raise _SectionError(
                        old, f"{old} moved to ai-gateway:dns.{new}; set that instead"
                    )
        return data

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().rstrip(".").lower()
        if not re.fullmatch(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", value):
            raise ValueError(f"{value!r} is not a DNS domain; use a name like ai.example.com")
        return value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[Cloud, int]) -> dict[Cloud, int]:
        for cloud, weight in value.items():
            if not 0 <= weight <= 1000:
                raise ValueError(
                    f"weight {weight} for {cloud.value} is out of range; use an integer from 0 "
                    "to 1000 (0 to 255 on route53)"
                )
        return value

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        # Leaves room for the longest per-cloud suffix ("-azure") in one 63-character label.
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,55}[a-z0-9])?", value):
            raise ValueError(
                f"{value!r} is not a usable DNS label; use 1-57 lowercase letters, digits and "
                "hyphens, not starting or ending with a hyphen (for example gateway)"
            )
        return value

    @field_validator("hosted_zone_id")
    @classmethod
    def _hosted_zone_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        zone_id = value.strip().removeprefix("/hostedzone/")
        if not re.fullmatch(r"Z[A-Z0-9]{1,31}", zone_id):
            raise ValueError(
                f"{value!r} is not a Route 53 hosted zone id; use the id shown by "
                "`aws route53 list-hosted-zones` (for example Z0123456789ABCDEFGHIJ), or "
                "leave hostedZoneId unset to create the zone"
            )
        return zone_id

    @property
    def logs_queries(self) -> bool:
        """Whether the zone's queries are logged (the default: where the provider can)."""
        if self.query_logging is None:
            return self.provider != DnsProvider.AZURE
        return self.query_logging


class GatewayConfig(_Model):
    """The gateway workload on every cluster (``ai-gateway:gateway``).

    Provider API keys and the admin key are not here: they are secret config
    (``ai-gateway:providerKeys.<name>``, ``ai-gateway:adminKey``), read by
    :func:`secret_settings`.
    """

    _defaults: ClassVar[dict[Environment, dict[str, Any]]] = {
        Environment.DEV: {
            "replicas": 1,
            "maxReplicas": 3,
            "cpuRequest": "100m",
            "cpuLimit": "1",
            "memoryRequest": "256Mi",
            "memoryLimit": "512Mi",
        },
        Environment.STAGING: {
            "replicas": 2,
            "maxReplicas": 6,
            "cpuRequest": "250m",
            "cpuLimit": "1",
            "memoryRequest": "512Mi",
            "memoryLimit": "1Gi",
        },
        Environment.PROD: {
            "replicas": 3,
            "maxReplicas": 20,
            "cpuRequest": "500m",
            "cpuLimit": "2",
            "memoryRequest": "1Gi",
            "memoryLimit": "1Gi",
        },
    }

    image: str = Field(
        default="ghcr.io/example/ai-gateway:0.1.0",
        description="Published gateway image reference (tag or digest).",
    )
    build_image: bool = Field(
        default=False,
        description=(
            "Build gateway_app/Dockerfile (context: the repository root) and push it to a registry "
            "in each enabled cloud (ECR, ACR, Artifact Registry), tagged with `image`'s tag, "
            "instead of pulling `image`. Off by default: a published, tested image needs no Docker "
            "engine in the deploy job. The deploy job must be logged in to ACR (`az acr login`)."
        ),
    )
    registry_keep_images: int = Field(
        default=30,
        ge=1,
        le=1000,
        description=(
            "Gateway images each cloud registry keeps (newest first) when `buildImage` is on; "
            "older ones are deleted by the registry's lifecycle / cleanup policy."
        ),
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Minimum gateway replicas per cluster (at least 2 in staging and prod, so a node drain is never an outage).",
    )
    max_replicas: int = Field(default=3, ge=1, le=500, description="HPA upper bound per cluster.")
    cpu_request: str = Field(
        default="100m",
        description="CPU request per gateway pod: what the scheduler reserves and the HPA's 100%.",
    )
    cpu_limit: str = Field(
        default="1",
        description="CPU limit per gateway pod: bounds a noisy pod without throttling normal bursts.",
    )
    memory_request: str = Field(default="256Mi", description="Memory request per gateway pod.")
    memory_limit: str = Field(
        default="512Mi",
        description="Memory limit per gateway pod (equal to the request in prod: memory is never overcommitted there).",
    )
    canary_image: str | None = Field(
        default=None,
        description=(
            "Second image that runs beside `image` (canary / blue-green). Unset: no canary objects. "
            "Promote by setting `image` to it and unsetting it."
        ),
    )
    canary_weight: int = Field(
        default=0,
        ge=0,
        le=100,
        description=(
            "Percentage of requests sent to `canaryImage`. 0 keeps it warm but idle (reachable with "
            "the `X-Gateway-Canary: always` header), 100 switches all traffic to it (blue-green)."
        ),
    )
    acme_email: str | None = Field(
        default=None,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Contact address of the ACME account (certificate expiry and account notices). Optional.",
    )
    acme_server: str = Field(
        default="https://acme-v02.api.letsencrypt.org/directory",
        pattern=r"^https://",
        description=(
            "ACME directory that issues the gateway's certificates. Let's Encrypt production by "
            "default so certificates are valid; its staging directory avoids rate limits while testing."
        ),
    )
    console_allowed_cidrs: list[str] = Field(
        default_factory=list,
        description=(
            "Networks (CIDRs) the console (`/console`) and sign-in (`/auth`) may be reached "
            "from, such as the corporate egress or VPN ranges: enforced at each cluster's edge "
            "(an Envoy Gateway SecurityPolicy on the console's route, judged on the client's "
            "own address) and again by the gateway (`identity.console_allowed_cidrs`). Empty: "
            "any network. The API (`/v1`, and `/admin` with a key) is not affected."
        ),
    )
    app_config: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The gateway's own config file (`providers`, `models`, routing, cache, governance), "
            "validated at plan time by the gateway's config model and rendered per cluster into "
            'a ConfigMap. Keys are references, never values: `api_key: "${GROQ_API_KEY}"` '
            'with `providerKeys.groq` set. Unset: the default catalogue (docs: "Model '
            'catalogue rules").'
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_environment_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        env = (info.context or {}).get("environment", Environment.DEV)
        return {**cls._defaults.get(env, {}), **data}

    @field_validator("console_allowed_cidrs")
    @classmethod
    def _console_networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                network = ipaddress.ip_network(str(cidr), strict=True)
            except ValueError as exc:
                raise ValueError(
                    f"{cidr!r} is not a network in CIDR notation ({exc}); use for example "
                    "10.0.0.0/8 or 203.0.113.0/24"
                ) from None
            if network.prefixlen == 0:
                raise ValueError(
                    f"{cidr} admits every address; list the organisation's networks, or leave "
                    "consoleAllowedCidrs empty to allow any"
                )
        return value

    @model_validator(mode="after")
    def _replica_bounds(self) -> GatewayConfig:
        if self.max_replicas < self.replicas:
            raise _SectionError(
                "maxReplicas",
                f"maxReplicas {self.max_replicas} is below replicas {self.replicas}; "
                "raise maxReplicas",
            )
        return self

    @model_validator(mode="after")
    def _workload_checks(self) -> GatewayConfig:
        # Imported here: infra.k8s.decisions imports this module.
        from infra.k8s import decisions

        checks = [
            ("cpuRequest", lambda: decisions.cpu_millicores(self.cpu_request, "cpuRequest")),
            ("cpuLimit", lambda: decisions.cpu_millicores(self.cpu_limit, "cpuLimit")),
            ("memoryRequest", lambda: decisions.memory_bytes(self.memory_request, "memoryRequest")),
            ("memoryLimit", lambda: decisions.memory_bytes(self.memory_limit, "memoryLimit")),
            ("cpuRequest", lambda: self.resources),
            (
                "canaryWeight",
                lambda: decisions.canary_plan(
                    self.canary_image,
                    self.canary_weight,
                    decisions.Scaling(self.replicas, self.max_replicas),
                ),
            ),
        ]
        for key, check in checks:
            try:
                check()
            except ValueError as exc:
                raise _SectionError(key, str(exc)) from None
        if self.canary_image is not None and self.canary_image == self.image:
            raise _SectionError(
                "canaryImage",
                f"canaryImage {self.canary_image} is the stable image; set it to the new version "
                "or unset it",
            )
        return self

    @property
    def resources(self) -> Resources:
        """The container requests and limits, validated (each request at most its limit)."""
        from infra.k8s.decisions import Resources

        return Resources(self.cpu_request, self.cpu_limit, self.memory_request, self.memory_limit)


# ------------------------------------------------------------------------ the stack


class StackConfig(_Model):
    """The whole ``ai-gateway:`` namespace of a stack file."""

    environment: Environment = Field(
        description="dev, staging or prod: selects the defaults of every section. Required."
    )
    tags: TagsConfig = Field(description="Organisational tags. Required.")
    aws: AwsConfig = Field(default_factory=AwsConfig, description="AWS footprint.")
    azure: AzureConfig = Field(default_factory=AzureConfig, description="Azure footprint.")
    gcp: GcpConfig = Field(default_factory=GcpConfig, description="GCP footprint.")
    dns: DnsConfig = Field(description="Global hostname. Required.")
    gateway: GatewayConfig = Field(default_factory=GatewayConfig, description="Gateway workload.")
    provider_keys: tuple[str, ...] = Field(
        default=(),
        description="Names of the provider keys set under ai-gateway:providerKeys (values are secret).",
    )
    oidc_client_secret: bool = Field(
        default=False,
        description="Whether ai-gateway:oidcClientSecret is set (its value is secret and never here).",
    )

    @model_validator(mode="before")
    @classmethod
    def _sections_default_to_empty(cls, data: Any) -> Any:
        # Sections left out still get their per-environment defaults: validate
        # them from an empty mapping rather than from the class defaults.
        if isinstance(data, Mapping):
            data = dict(data)
            for section in ("aws", "azure", "gcp", "gateway"):
                data.setdefault(section, {})
            if isinstance(data.get("dns"), Mapping):
                data["dns"] = _dns_defaults(data["dns"], data)
        return data

    def _azure_cross_checks(self) -> None:
        azure = self.azure
        if self.environment != Environment.DEV and not azure.admin_group_object_ids:
            raise _SectionError(
                "azure.adminGroupObjectIds",
                "adminGroupObjectIds is empty: in staging and prod local accounts are off, so "
                "list the Microsoft Entra group(s) whose members may administer the cluster "
                "(break-glass), for example [3f2504e0-4f89-41d3-9a0c-0305e82c3301]",
            )
        if routes_to_azure_openai(self.gateway.app_config) and not azure.openai_account_id:
            raise _SectionError(
                "azure.openaiAccountId",
                "openaiAccountId is not set but gateway.appConfig routes to an azure_openai "
                "provider; set it to the Azure OpenAI account's resource id so the gateway's "
                "identity may call it (and only it)",
            )

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        if not self.enabled_clouds:
            raise ValueError(
                "no cloud is enabled; set enabled: true under at least one of "
                "ai-gateway:aws, ai-gateway:azure or ai-gateway:gcp"
            )
        for cloud in self.enabled_clouds:
            try:
                self.cloud(cloud).require_api_access_rule(self.environment)
            except ValueError as exc:
                raise _SectionError(f"{cloud.value}.deployerCidrs", str(exc)) from None
        if Cloud.AZURE in self.enabled_clouds:
            self._azure_cross_checks()
        from infra.k8s import decisions  # imported here: it imports this module

        try:
            decisions.scaling(self.environment, self.gateway.replicas, self.gateway.max_replicas)
        except ValueError as exc:
            raise _SectionError("gateway.replicas", str(exc)) from None
        from infra.global_lb.capabilities import problems  # imports this module

        for key, message in problems(self.dns, self.enabled_clouds):
            raise _SectionError(f"dns.{key}", message)
        if self.environment == Environment.PROD and not self.dns.alerts.configured:
            raise _SectionError(
                "dns.alerts",
                "prod needs somewhere to send health alerts; set ai-gateway:dns.alerts.emails "
                "(on-call addresses) or the DNS cloud's own destination "
                "(alerts.snsTopicArn, alerts.actionGroupId or alerts.notificationChannels)",
            )
        if self.dns.routing_policy == RoutingPolicy.WEIGHTED:
            weights = {c: self.dns.weights.get(c) for c in self.enabled_clouds}
            missing = [c.value for c, w in weights.items() if w is None]
            if missing:
                raise _SectionError(
                    "dns.weights",
                    f"no weight for {', '.join(missing)}; the weighted policy needs a weight "
                    "for every enabled cloud",
                )
            if not any(weights.values()):
                raise _SectionError(
                    "dns.weights",
                    "every enabled cloud has weight 0, which would drain all traffic; give "
                    "at least one cloud a positive weight",
                )
        problems: dict[tuple[str, str], None] = {}
        for cloud in self.enabled_clouds:
            try:
                self.gateway_config_file(cloud)
            except ValueError as exc:
                for key, message in getattr(exc, "problems", [("", str(exc))]):
                    problems[(f"gateway.appConfig{'.' + key if key else ''}", message)] = None
        if problems:
            raise _SectionError.many(list(problems))
        return self

    @property
    def app_config(self) -> dict[str, Any]:
        """The gateway catalogue: ``gateway.appConfig``, or the default one when it is unset."""
        if self.gateway.app_config is not None:
            return self.gateway.app_config
        from infra.k8s.catalogue import default_catalogue  # it imports this module

        return default_catalogue(self, self.provider_keys)

    def gateway_config_file(self, cloud: Cloud) -> str:
        """The gateway's config file on ``cloud``'s cluster (see :mod:`infra.k8s.catalogue`)."""
        from infra.k8s.catalogue import CatalogueError, cluster_config_file, reachable

        catalogue = self.app_config
        try:
            return cluster_config_file(
                catalogue,
                cloud,
                self.provider_keys,
                oidc_client_secret=self.oidc_client_secret,
                console_allowed_cidrs=self.gateway.console_allowed_cidrs,
                trusted_proxies=self.cloud(cloud).pod_cidrs,
            )
        except CatalogueError:
            if self.gateway.app_config is not None:
                raise
            types = [p["type"] for p in catalogue["providers"].values()]
            starved = [
                c.value
                for c in self.enabled_clouds
                if not any(reachable(t, False, c) for t in types)
            ]
            if not starved:
                raise
            # Only an Azure cluster without an OpenAI account and without keys gets here.
            raise CatalogueError(
                [
                    (
                        "",
                        "is unset, and the default catalogue has no model the "
                        f"{' and '.join(starved)} cluster can call; set "
                        "ai-gateway:azure.openaiAccountId (Azure OpenAI "
                        "through the cluster's workload identity) or a provider key (`pulumi "
                        "config set --secret --path 'ai-gateway:providerKeys.openai' VALUE`), "
                        "or write ai-gateway:gateway.appConfig",
                    )
                ]
            ) from None

    def gateway_warnings(self) -> list[str]:
        """What the plan should point out about the catalogue (providers whose key is unset)."""
        from infra.k8s.catalogue import identity_warnings, unset_key_warnings

        return unset_key_warnings(self.app_config, self.provider_keys) + identity_warnings(
            self.app_config, self.oidc_client_secret, self.gateway.console_allowed_cidrs
        )

    @property
    def enabled_clouds(self) -> list[Cloud]:
        """The enabled clouds, in a fixed order (aws, azure, gcp)."""
        return [c for c in Cloud if self.cloud(c).enabled]

    def cloud(self, cloud: Cloud) -> _CloudConfig:
        """The section of one cloud."""
        return getattr(self, cloud.value)

    @property
    def name_prefix(self) -> str:
        """``<project>-<environment>``: the prefix of every physical resource name."""
        return f"{self.tags.project}-{self.environment.value}"


def _dns_defaults(dns: Mapping[str, Any], stack: Mapping[str, Any]) -> dict[str, Any]:
    """``dns.provider`` and ``dns.routingPolicy`` filled in from the enabled clouds when unset.

    A single-cloud stack defaults to its own cloud's DNS (nothing of another
    cloud is planned); the routing policy defaults to what that DNS measures
    best (latency, or geolocation on Cloud DNS).
    """
    from infra.global_lb.capabilities import default_provider, default_routing_policy

    dns = dict(dns)
    if dns.get("provider") is None:
        enabled = [
            c
            for c in Cloud
            if isinstance(stack.get(c.value), Mapping) and stack[c.value].get("enabled") is True
        ]
        dns["provider"] = default_provider(enabled).value
    known = {p.value for p in DnsProvider}
    # An unknown provider gets its own error, naming the key, from the model.
    if dns.get("routingPolicy") is None and dns["provider"] in known:
        dns["routingPolicy"] = default_routing_policy(DnsProvider(dns["provider"])).value
    return dns


class _SectionError(ValueError):
    """A cross-field error that belongs to one key, relative to the model raising it.

    ``more`` holds further ``(key, message)`` pairs found by the same check.
    """

    def __init__(self, key: str, message: str, more: tuple[tuple[str, str], ...] = ()) -> None:
        self.key = key
        self.more = more
        super().__init__(message)

    @classmethod
    def many(cls, problems: list[tuple[str, str]]) -> _SectionError:
        """One error carrying several ``(key, message)`` problems."""
        (key, message), *more = problems
        return cls(key, message, tuple(more))


# ------------------------------------------------------------------ error messages


def _fix_for(error: Mapping[str, Any]) -> str:
    """The 'how to fix it' half of a message, from a pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return ""  # completed by the caller, which knows both bounds
    if kind == "int_parsing" or kind == "int_type" or kind == "int_from_float":
        return "use a whole number"
    if kind in {"bool_parsing", "bool_type"}:
        return "use true or false"
    if kind in {"string_type"}:
        return "use a string"
    if kind in {"list_type"}:
        return "use a list"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "use a mapping of keys to values"
    if kind in {"literal_error", "enum"}:
        expected = ctx.get("expected", "")
        return f"use one of {expected}"
    if kind == "string_pattern_mismatch":
        return f"use a value matching {ctx.get('pattern')}"
    if kind == "string_too_short":
        return f"use at least {ctx.get('min_length')} character(s)"
    if kind == "string_too_long":
        return f"use at most {ctx.get('max_length')} characters"
    return ""


def _bounds(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> tuple[Any, Any]:
    """The ge/le bounds of the field at ``loc`` (for 'use an integer from A to B')."""
    field = None
    for part in loc:
        if model is None:
            return None, None
        field = next((f for n, f in model.model_fields.items() if part in {n, f.alias}), None)
        if field is None:
            return None, None
        annotation = field.annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    low = high = None
    for meta in field.metadata if field else []:
        low = getattr(meta, "ge", low)
        high = getattr(meta, "le", high)
    return low, high


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if value == "" or " " in value else value
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _messages(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(str(p) for p in error["loc"])
        key = f"{NAMESPACE}:" + ".".join(loc) if loc else NAMESPACE
        value = error.get("input")
        kind = error["type"]
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, _SectionError):
            for sub, message in ((original.key, str(original)), *original.more):
                problems.append(f"{NAMESPACE}:" + ".".join((*loc, sub)) + f": {message}")
            continue
        if kind == "extra_forbidden":
            model = _model_at(loc[:-1])
            known = (
                ", ".join(sorted(f.alias or n for n, f in model.model_fields.items()))
                if model
                else ""
            )
            problems.append(f"{key}: unknown key; check the spelling (known keys here: {known})")
        elif kind == "missing":
            problems.append(
                f"{key}: is required; set it in Pulumi.<stack>.yaml or with "
                f"`pulumi config set --path '{key}' VALUE`"
            )
        elif kind in {"greater_than_equal", "less_than_equal"}:
            low, high = _bounds(StackConfig, loc)
            what = "an integer" if isinstance(value, int) else "a number"
            fix = (
                f"use {what} from {low} to {high}"
                if low is not None and high is not None
                else (
                    f"use {what} of at least {low}"
                    if low is not None
                    else f"use {what} of at most {high}"
                )
            )
            problems.append(f"{key}: {_format_value(value)} is not allowed; {fix}")
        elif kind == "value_error":
            message = str(original) if original is not None else error["msg"]
            problems.append(f"{key}: {message}")
        else:
            fix = _fix_for(error)
            reason = "" if kind in {"literal_error", "enum"} else f" ({error['msg'].lower()})"
            problems.append(
                f"{key}: {_format_value(value)} is not allowed{reason}"
                + (f"; {fix}" if fix else "")
            )
    return problems


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = StackConfig
    for part in loc:
        if model is None:
            return None
        field = next((f for n, f in model.model_fields.items() if part in {n, f.alias}), None)
        if field is None:
            return None
        annotation = field.annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return model


# --------------------------------------------------------------------------- loading


def parse(values: Mapping[str, Any], secret_keys: Collection[str] | None = None) -> StackConfig:
    """Validate the ``ai-gateway:`` namespace, given as ``{section: value}``.

    Values may be JSON strings (as the Pulumi engine passes structured config)
    or already-decoded objects. Raises :class:`ConfigError` naming every bad
    key at once.

    The secret settings (:data:`SECRET_SETTINGS`) are accepted but left out of
    the returned model; when ``secret_keys`` (the full keys the engine marks
    secret) is given, a secret setting stored in plain text is an error.
    """
    decoded: dict[str, Any] = {}
    problems = []
    for key, raw in values.items():
        if key in LEGACY_PROVIDER_KEYS:
            name = LEGACY_PROVIDER_KEYS[key]
            problems.append(
                f"{NAMESPACE}:{key}: replaced by {NAMESPACE}:{PROVIDER_KEYS}.{name}; run "
                f"`pulumi config rm {NAMESPACE}:{key}` and `pulumi config set --secret --path "
                f"'{NAMESPACE}:{PROVIDER_KEYS}.{name}' VALUE`"
            )
            continue
        if key not in SECTIONS:
            problems.append(
                f"{NAMESPACE}:{key}: unknown key; check the spelling (known keys: "
                f"{', '.join(SECTIONS)})"
            )
            continue
        if key in SECRET_SETTINGS:
            if secret_keys is not None and f"{NAMESPACE}:{key}" not in secret_keys:
                how = f"--path '{NAMESPACE}:{key}.<name>'" if key == PROVIDER_KEYS else key
                problems.append(
                    f"{NAMESPACE}:{key}: is stored in plain text in the stack file; remove it "
                    f"and run `pulumi config set --secret {how} VALUE` so it is encrypted"
                )
            elif key == PROVIDER_KEYS:
                names, bad = _provider_key_names(_decode(raw))
                problems += bad
                decoded[key] = names
            elif key == OIDC_CLIENT_SECRET:
                if not isinstance(raw, str) or not raw.strip():
                    problems.append(
                        f"{NAMESPACE}:{key}: is empty; set it with `pulumi config set --secret "
                        f"{NAMESPACE}:{key} VALUE` or remove it"
                    )
                decoded[key] = True
            continue
        decoded[key] = _decode(raw)
    env = decoded.get("environment")
    try:
        env = Environment(env) if env is not None else None
    except ValueError:
        problems.append(
            f"{NAMESPACE}:environment: {_format_value(env)} is not allowed; use one of "
            "dev, staging, prod"
        )
        env = None
    if problems:
        raise ConfigError(problems)
    try:
        return StackConfig.model_validate(decoded, context={"environment": env or Environment.DEV})
    except ValidationError as exc:
        raise ConfigError(_messages(exc)) from None


def _provider_key_names(keys: Any) -> tuple[list[str], list[str]]:
    """The names of ``providerKeys`` and the problems with it (never showing a value)."""
    where = f"{NAMESPACE}:{PROVIDER_KEYS}"
    if not isinstance(keys, Mapping) or not keys:
        return [], [
            f"{where}: is not a mapping of names to keys; set each key with `pulumi config set "
            f"--secret --path '{where}.<name>' VALUE` (for example {where}.openai)"
        ]
    names, problems = [], []
    for name, value in keys.items():
        try:
            provider_key_variable(name)
        except ValueError as exc:
            problems.append(f"{where}.{name}: {exc}")
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(
                f"{where}.{name}: is empty; set the key with `pulumi config set --secret "
                f"--path '{where}.{name}' VALUE` or remove it"
            )
            continue
        names.append(name)
    return sorted(names), problems


def _decode(raw: Any) -> Any:
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped[:1] in {"{", "["}:
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return raw
    return raw


def load() -> StackConfig:
    """Read and validate the current stack's ``ai-gateway:`` config from ``pulumi.Config``.

    Call once, at the top of the program, before registering any resource.
    """
    from pulumi.runtime import config as runtime_config

    prefix = f"{NAMESPACE}:"
    values = {
        key[len(prefix) :]: value
        for key, value in runtime_config.CONFIG.get().items()
        if key.startswith(prefix)
    }
    secret_keys = {
        f"{prefix}{key}"
        for key in values
        if key in SECRET_SETTINGS and runtime_config.is_config_secret(f"{prefix}{key}")
    }
    return parse(values, secret_keys)


def secret_settings(config: StackConfig) -> dict[str, Any]:
    """The secret settings that are set, as secret ``pulumi.Output`` values.

    ``{"adminKey": Output[str], "oidcClientSecret": Output[str], "providerKeys": {name:
    Output[str]}}``; an unset admin key or OIDC client secret is absent (the program then generates one with pulumi_random),
    and ``providerKeys`` holds exactly ``config.provider_keys``. Call after
    :func:`load`, which has already refused plain-text values.
    """
    import pulumi

    settings = pulumi.Config(NAMESPACE)
    found: dict[str, Any] = {PROVIDER_KEYS: {}}
    admin_key = settings.get_secret("adminKey")
    if admin_key is not None:
        found["adminKey"] = admin_key
    if config.oidc_client_secret:
        found[OIDC_CLIENT_SECRET] = settings.require_secret(OIDC_CLIENT_SECRET)
    if config.provider_keys:
        keys = settings.require_secret_object(PROVIDER_KEYS)
        found[PROVIDER_KEYS] = {
            name: pulumi.Output.secret(keys.apply(lambda values, name=name: str(values[name])))
            for name in config.provider_keys
        }
    return found
