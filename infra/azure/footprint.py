"""The Azure footprint: one component composing network, cluster, Redis and PostgreSQL.

:func:`build` is what :mod:`infra.clouds` calls for Azure. The
``ai-gateway:azure:Footprint`` component owns an explicit azure-native
provider (located in ``ai-gateway:azure.location``) that every Azure
resource below it uses, and one resource group per stack. In prod
(``deletionProtection``) the group carries a ``CanNotDelete`` lock and the
cluster and data stores are ``protect``-ed in Pulumi.
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure_native
from pulumi_azure_native import authorization, resources

from infra.azure.cluster import Cluster, ClusterArgs
from infra.azure.network import Network, NetworkArgs
from infra.azure.postgres import Postgres, PostgresArgs
from infra.azure.redis import Redis, RedisArgs
from infra.config import Cloud, ConfigError, StackConfig
from infra.contracts.footprint import AzureOutputs, CloudFootprint
from infra.decisions.azure import api_server_access, azure_name, check_overlay_ranges, redis_sku

REDIS_PORT = 10000
"""Azure Managed Redis's TLS port (clientProtocol Encrypted)."""

LOAD_BALANCER_ANNOTATIONS = {
    # With externalTrafficPolicy Local the Azure load balancer probes kube-proxy's
    # health node port; /healthz is the path it serves.
    "service.beta.kubernetes.io/azure-load-balancer-health-probe-request-path": "/healthz",
}
"""The gateway's public Service on AKS (Envoy Gateway creates it): the cluster's Standard load balancer."""

PIP_NAME_ANNOTATION = "service.beta.kubernetes.io/azure-pip-name"
PIP_RESOURCE_GROUP_ANNOTATION = "service.beta.kubernetes.io/azure-load-balancer-resource-group"


def load_balancer_annotations(
    ip_name: pulumi.Input[str], resource_group: pulumi.Input[str]
) -> dict[str, pulumi.Input[str]]:
    """The Service annotations pinning the AKS load balancer to the stack's own public IP.

    "Use a static public IP address and DNS label with the AKS load balancer":
    ``azure-pip-name`` names the IP, ``azure-load-balancer-resource-group`` its
    group (outside the node resource group), so the NSG can admit exactly it.
    """
    return {
        **LOAD_BALANCER_ANNOTATIONS,
        PIP_NAME_ANNOTATION: ip_name,
        PIP_RESOURCE_GROUP_ANNOTATION: resource_group,
    }


def validate(config: StackConfig) -> None:
    """Check the Azure section's cross-field rules before any resource is registered.

    Raises :class:`ConfigError` naming each bad key, its value and the fix.
    """
    s = config.azure
    problems = []
    checks = (
        lambda: check_overlay_ranges(s.vnet_cidr, s.pod_cidr, s.service_cidr),
        lambda: redis_sku(s.redis_sku),
        lambda: api_server_access(s.deployer_cidrs, s.private_endpoint_only),
    )
    for check in checks:
        try:
            check()
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems)


class Footprint(pulumi.ComponentResource):
    """Everything the stack deploys in Azure (``ai-gateway:azure:Footprint``).

    Children: the azure-native provider, the resource group, and the
    ``Network``, ``Cluster``, ``Redis`` and ``Postgres`` components.
    """

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:azure:Footprint", name, None, opts)
        s = config.azure
        prefix = config.name_prefix
        location = s.location
        protect = s.deletion_protection

        self.provider = azure_native.Provider(
            f"{name}-provider", location=location, opts=pulumi.ResourceOptions(parent=self)
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        # Components pass the provider on to their own children.
        component = pulumi.ResourceOptions(parent=self, providers=[self.provider])

        client = authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=self.provider)
        )
        group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=azure_name("resource_group", "rg", prefix),
            location=location,
            opts=child,
        )
        if protect:
            authorization.ManagementLockAtResourceGroupLevel(
                f"{name}-rg-lock",
                lock_name="do-not-delete",
                level=authorization.LockLevel.CAN_NOT_DELETE,
                resource_group_name=group.name,
                notes="deletionProtection is on for this stack; turn it off in config first.",
                opts=child,
            )

        net = Network(
            f"{name}-network",
            NetworkArgs.from_config(
                config,
                resource_group_name=group.name,
                location=location,
            ),
            opts=component,
        )
        cluster = Cluster(
            f"{name}-cluster",
            ClusterArgs(
                resource_group_name=group.name,
                location=location,
                name_prefix=prefix,
                settings=s,
                subscription_id=client.subscription_id,
                tenant_id=client.tenant_id,
                deployer_object_id=client.object_id,
                vnet_id=net.vnet_id,
                node_subnet_id=net.node_subnet_id,
                egress_ip=net.egress_ip,
                ingress_ip_id=net.ingress_ip.id,
                governance_ip_id=net.governance_ip.id if net.governance_ip is not None else None,
                protect=protect,
            ),
            opts=component,
        )
        redis = Redis(
            f"{name}-redis",
            RedisArgs.from_config(
                config,
                resource_group_name=group.name,
                location=location,
                vnet_id=net.vnet_id,
                endpoint_subnet_id=net.endpoint_subnet_id,
                protect=protect,
            ),
            opts=component,
        )
        postgres = Postgres(
            f"{name}-postgres",
            PostgresArgs(
                resource_group_name=group.name,
                location=location,
                name_prefix=prefix,
                settings=s,
                vnet_id=net.vnet_id,
                postgres_subnet_id=net.postgres_subnet_id,
                key_vault_name=cluster.key_vault.name,
                protect=protect,
            ),
            opts=component,
        )

        self.resource_group_name = group.name
        self.load_balancer_annotations = load_balancer_annotations(net.ingress_ip.name, group.name)
        self.channel_load_balancer_annotations = (
            load_balancer_annotations(net.governance_ip.name, group.name)
            if net.governance_ip is not None
            else None
        )
        self.network = net
        self.cluster = cluster
        self.redis = redis
        self.postgres = postgres
        # What the workload-identity work needs to federate pod identities.
        self.outputs = AzureOutputs(
            oidc_issuer_url=cluster.oidc_issuer_url,
            resource_group_name=group.name,
            location=pulumi.Output.from_input(location),
            kubelet_identity_object_id=cluster.kubelet_identity_object_id,
            cluster_identity_principal_id=cluster.cluster_identity_principal_id,
            vnet_id=net.vnet_id,
            node_subnet_id=net.node_subnet_id,
            egress_ip=net.egress_ip,
            ingress_ip=net.ingress_ip.ip_address.apply(lambda ip: ip or ""),
            owner_secret_id=postgres.owner_secret_id,
            redis_cluster_name=redis.cluster_name,
            redis_database_name=redis.database_name,
        )
        self.register_outputs(
            {
                **self.outputs.by_key(),
                "clusterName": cluster.cluster_name,
                "kubeconfig": cluster.kubeconfig,
                "redisUrl": redis.url,
                "postgresDsn": postgres.dsn,
                "postgresOwnerSecretUri": postgres.owner_secret_uri,
            }
        )


def build(config: StackConfig) -> CloudFootprint[AzureOutputs]:
    """Build the Azure footprint and hand the program its per-cloud contract."""
    validate(config)
    footprint = Footprint("azure", config)
    return CloudFootprint(
        cloud=Cloud.AZURE,
        component=footprint,
        provider=footprint.provider,
        oidc_issuer_url=footprint.cluster.oidc_issuer_url,
        region=config.azure.location,
        cluster_name=footprint.cluster.cluster_name,
        kubeconfig=footprint.cluster.kubeconfig,
        kube_provider=footprint.cluster.kube_provider,
        redis_url=footprint.redis.url,
        postgres_dsn=footprint.postgres.dsn,
        owner_secret=footprint.postgres.owner_secret_uri,
        # Redis's private endpoint and PostgreSQL's delegated subnet are both in the VNet.
        data_store_cidrs=[config.azure.vnet_cidr],
        egress_ips=[footprint.outputs.egress_ip] if footprint.outputs.egress_ip else [],
        redis_port=REDIS_PORT,
        load_balancer_annotations=footprint.load_balancer_annotations,
        channel_load_balancer_annotations=footprint.channel_load_balancer_annotations,
        outputs=footprint.outputs,
    )
