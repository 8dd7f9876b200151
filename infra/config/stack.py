"""The whole ``ai-gateway:`` namespace of a stack: :class:`StackConfig` and its cross-section checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import (
    Field,
    model_validator,
)

from infra.config.aws import AwsConfig
from infra.config.azure import AzureConfig, routes_to_azure_openai
from infra.config.base import _Model, _SectionError
from infra.config.capabilities import default_provider, default_routing_policy
from infra.config.capabilities import problems as dns_problems
from infra.config.catalogue import (
    CatalogueError,
    cluster_config_file,
    default_catalogue,
    identity_warnings,
    reachable,
    unset_key_warnings,
)
from infra.config.cloud import _CloudConfig
from infra.config.dns import DnsConfig
from infra.config.gateway import GatewayConfig
from infra.config.gcp import GcpConfig
from infra.config.governance import GovernanceConfig
from infra.config.tags import TagsConfig
from infra.contracts import Cloud, DnsProvider, Environment, RoutingPolicy
from infra.decisions import k8s as decisions
from infra.decisions import postgres


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
    governance: GovernanceConfig = Field(
        default_factory=GovernanceConfig,
        description="One governance plane across the enabled clouds (on by default with 2+).",
    )
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
        try:
            decisions.scaling(self.environment, self.gateway.replicas, self.gateway.max_replicas)
        except ValueError as exc:
            raise _SectionError("gateway.replicas", str(exc)) from None
        budget = [
            found
            for cloud in self.enabled_clouds
            if (
                found := postgres.check_budget(
                    cloud, self.connection_demand(cloud), self.database_size(cloud)
                )
            )
        ]
        if budget:
            raise _SectionError.many(budget)
        for key, message in dns_problems(self.dns, self.enabled_clouds):
            raise _SectionError(f"dns.{key}", message)
        for key, message in self.governance.problems(self.enabled_clouds):
            raise _SectionError(f"governance.{key}", message)
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
        return default_catalogue(self, self.provider_keys)

    def gateway_config_file(self, cloud: Cloud) -> str:
        """The gateway's config file on ``cloud``'s cluster (see :mod:`infra.config.catalogue`)."""
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
        return unset_key_warnings(self.app_config, self.provider_keys) + identity_warnings(
            self.app_config, self.oidc_client_secret, self.gateway.console_allowed_cidrs
        )

    def connection_demand(self, cloud: Cloud) -> postgres.ConnectionDemand:
        """The PostgreSQL connections ``cloud``'s gateway holds at ``gateway.maxReplicas``."""
        clouds = self.enabled_clouds
        follower = self.governance.active(clouds) and self.governance.home_cloud(clouds) != cloud
        return postgres.connections_needed(
            self.gateway.max_replicas,
            canary=bool(self.gateway.canary_image),
            follower=follower,
        )

    def database_size(self, cloud: Cloud) -> postgres.DatabaseSize:
        """``cloud``'s PostgreSQL size and the ``max_connections`` it allows the gateway."""
        if cloud == Cloud.AWS:
            return postgres.rds_size(
                self.aws.postgres_instance_class, self.aws.postgres_max_connections
            )
        if cloud == Cloud.AZURE:
            return postgres.flexible_server_size(
                self.azure.postgres_sku, self.azure.postgres_max_connections
            )
        return postgres.cloud_sql_size(self.gcp.postgres_tier, self.gcp.postgres_max_connections)

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
