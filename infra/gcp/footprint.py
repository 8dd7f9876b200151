"""The GCP footprint: one component composing network, GKE, Memorystore and Cloud SQL.

It owns an explicit ``pulumi_gcp.Provider`` (project and region from
``ai-gateway:gcp``, the required tags as ``default_labels``) that every child
uses, enables the service APIs the children call, and hands the program the
per-cloud :class:`~infra.contracts.footprint.CloudFootprint` contract.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import Cloud, GcpConfig, StackConfig
from infra.contracts.footprint import CloudFootprint, GcpOutputs
from infra.decisions.gcp import resource_name
from infra.gcp.cluster import KMS_ROTATION_PERIOD, Cluster, ClusterArgs
from infra.gcp.network import Network, NetworkArgs
from infra.gcp.postgres import Postgres, PostgresArgs
from infra.gcp.redis import TLS_PORT as REDIS_PORT
from infra.gcp.redis import Redis, RedisArgs
from infra.k8s.edge import TOPOLOGY_INJECTOR_PORT
from infra.tags import gcp_labels, required_tags

REQUIRED_APIS = (
    "compute.googleapis.com",
    "container.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "redis.googleapis.com",
    "cloudkms.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    # GKE Binary Authorization: the cluster's evaluation mode reads the project policy.
    "binaryauthorization.googleapis.com",
    # GKE Workload Identity: the metadata server mints the gateway's tokens
    # through the IAM Service Account Credentials API.
    "iamcredentials.googleapis.com",
    # Vertex AI, which the gateway calls at run time.
    "aiplatform.googleapis.com",
    # The database owner's credential, which the migration Job reads at run time.
    "secretmanager.googleapis.com",
)
"""APIs the footprint and the gateway call; enabled here, never disabled on destroy (others
may use them). Sources: each product's "Enable the API" page; Workload Identity Federation
for GKE lists ``iamcredentials.googleapis.com``."""

LOAD_BALANCER_HEALTH_CHECK_PORTS = ("10256", "30000-32767")
"""Where Google's load balancer health checks reach GKE nodes.

The gateway is published by Envoy Gateway's ``LoadBalancer`` Service (a
passthrough Network Load Balancer, not container-native NEGs), so checks never
reach a pod port: with ``externalTrafficPolicy: Local`` they hit the Service's
health check node port (the NodePort range), and kube-proxy's health port
(10256) for ``Cluster`` Services.
"""

CONTROL_PLANE_WEBHOOK_PORTS = (str(TOPOLOGY_INJECTOR_PORT),)
"""Ports the private control plane must reach on the nodes besides 443 and 10250.

Envoy Gateway's topology injector (a mutating webhook on proxy pod bindings)
listens on 9443; cert-manager's webhook listens on 10250, which GKE already
allows, so it needs no rule.
"""

LOAD_BALANCER_ANNOTATIONS = {
    # Backend-service based passthrough NLB: the current GKE default for new
    # Services, with per-node health checks and connection draining.
    "cloud.google.com/l4-rbs": "enabled",
}
"""The gateway's public Service on GKE (Envoy Gateway creates it)."""


DATA_KEY_USERS = (
    "sqladmin.googleapis.com",
    "redis.googleapis.com",
    "secretmanager.googleapis.com",
)
"""The services whose agents encrypt with the footprint's data key (Cloud SQL, Memorystore,
Secret Manager: "Enable customer-managed encryption keys for Secret Manager")."""


def api_resource_name(api: str) -> str:
    """The logical name of the ``projects.Service`` enabling ``api`` (``api-compute``)."""
    service = api.split(".", 1)[0]
    if not service or not api.endswith(".googleapis.com"):
        raise ValueError(f"api {api!r} is not a Google API name; use e.g. compute.googleapis.com")
    return f"api-{service}"


class GcpFootprint(pulumi.ComponentResource):
    """Everything the gateway needs on GCP, behind one explicit provider.

    Children: the APIs, :class:`~infra.gcp.network.Network`,
    :class:`~infra.gcp.cluster.Cluster`, :class:`~infra.gcp.redis.Redis` and
    :class:`~infra.gcp.postgres.Postgres`.
    """

    def __init__(
        self,
        name: str,
        config: StackConfig,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:gcp:Footprint", name, None, opts)
        gcp_config: GcpConfig = config.gcp
        prefix = config.name_prefix
        node_tag = resource_name(prefix, "gke-node", "firewall")

        self.provider = gcp.Provider(
            "gcp",
            project=gcp_config.project,
            region=gcp_config.region,
            default_labels=gcp_labels(required_tags(config)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_gcp = pulumi.ResourceOptions(parent=self, providers=[self.provider])

        self.apis = [
            gcp.projects.Service(
                api_resource_name(api),
                project=gcp_config.project,
                service=api,
                # Other workloads in the project may rely on the API; a stack's
                # destroy must not switch it off under them.
                disable_on_destroy=False,
                opts=on_gcp,
            )
            for api in REQUIRED_APIS
        ]

        self.network = Network(
            "network",
            NetworkArgs.from_config(
                config,
                node_tag=node_tag,
                health_check_ports=LOAD_BALANCER_HEALTH_CHECK_PORTS,
                control_plane_webhook_ports=CONTROL_PLANE_WEBHOOK_PORTS,
                apis=self.apis,
            ),
            opts=on_gcp,
        )
        self.cluster = Cluster(
            "cluster",
            ClusterArgs.from_config(
                config,
                network_id=self.network.network_id,
                subnetwork_id=self.network.subnetwork_id,
                pods_range_name=self.network.pods_range_name,
                services_range_name=self.network.services_range_name,
                node_tag=node_tag,
                apis=self.apis,
            ),
            opts=on_gcp,
        )
        # Cloud SQL and Memorystore encrypt with the stack's own key (CMEK) rather
        # than a Google-managed one: each product's service agent may use it,
        # nothing else ("Customer-managed encryption keys", Cloud SQL and
        # Memorystore for Redis docs: the agent needs cryptoKeyEncrypterDecrypter
        # on a key in the instance's region before the instance is created).
        self.data_key = gcp.kms.CryptoKey(
            "data",
            name=resource_name(prefix, "data", "crypto_key"),
            key_ring=self.cluster.key_ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=KMS_ROTATION_PERIOD,
            opts=pulumi.ResourceOptions.merge(
                on_gcp, pulumi.ResourceOptions(protect=gcp_config.deletion_protection)
            ),
        )
        data_key_grants = {}
        for api in DATA_KEY_USERS:
            agent = gcp.projects.ServiceIdentity(
                f"agent-{api.split('.')[0]}",
                project=gcp_config.project,
                service=api,
                opts=pulumi.ResourceOptions.merge(
                    on_gcp, pulumi.ResourceOptions(depends_on=self.apis)
                ),
            )
            data_key_grants[api] = gcp.kms.CryptoKeyIAMMember(
                f"data-key-{api.split('.')[0]}",
                crypto_key_id=self.data_key.id,
                role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
                member=agent.member,
                opts=on_gcp,
            )

        self.redis = Redis(
            "redis",
            RedisArgs.from_config(
                config,
                network_id=self.network.network_id,
                reserved_ip_range=self.network.private_service_range.name,
                service_connection=self.network.service_connection,
                kms_key_id=self.data_key.id,
                apis=[*self.apis, data_key_grants["redis.googleapis.com"]],
            ),
            opts=on_gcp,
        )
        self.postgres = Postgres(
            "postgres",
            PostgresArgs.from_config(
                config,
                network_id=self.network.network_id,
                allocated_ip_range=self.network.private_service_range.name,
                service_connection=self.network.service_connection,
                kms_key_id=self.data_key.id,
                apis=[*self.apis, data_key_grants["sqladmin.googleapis.com"]],
                secret_apis=[*self.apis, data_key_grants["secretmanager.googleapis.com"]],
            ),
            opts=on_gcp,
        )

        self.outputs = GcpOutputs(
            workload_pool=self.cluster.workload_pool,
            project=pulumi.Output.from_input(gcp_config.project),
            region=pulumi.Output.from_input(gcp_config.region),
            node_service_account_email=self.cluster.node_service_account_email,
            # GKE publishes each cluster's token issuer at this public URL.
            oidc_issuer_url=pulumi.Output.concat(
                "https://container.googleapis.com/v1/projects/",
                gcp_config.project,
                "/locations/",
                gcp_config.region,
                "/clusters/",
                self.cluster.cluster_name,
            ),
            network_id=self.network.network_id,
            subnetwork_id=self.network.subnetwork_id,
            owner_secret_id=self.postgres.owner_secret.id,
        )
        self.register_outputs(
            {
                "clusterName": self.cluster.cluster_name,
                "kubeconfig": self.cluster.kubeconfig,
                "redisUrl": self.redis.url,
                "redisCaCert": self.redis.ca_certificate,
                "postgresDsn": self.postgres.dsn,
                **self.outputs.by_key(),
            }
        )


def build(config: StackConfig) -> CloudFootprint[GcpOutputs]:
    """Build the GCP footprint of the stack and return the per-cloud contract."""
    footprint = GcpFootprint(f"{config.name_prefix}-gcp", config)
    return CloudFootprint(
        cloud=Cloud.GCP,
        component=footprint,
        provider=footprint.provider,
        oidc_issuer_url=footprint.outputs.oidc_issuer_url,
        region=config.gcp.region,
        cluster_name=footprint.cluster.cluster_name,
        kubeconfig=footprint.cluster.kubeconfig,
        kube_provider=footprint.cluster.kube_provider,
        redis_url=footprint.redis.url,
        postgres_dsn=footprint.postgres.dsn,
        owner_secret=footprint.postgres.owner_secret_url,
        redis_ca_cert=footprint.redis.ca_certificate,
        # Memorystore and Cloud SQL get their private IPs from the peered range.
        data_store_cidrs=[
            # The reserved range itself (the same CIDR as the config), so the policy names a
            # range that exists.
            pulumi.Output.concat(
                footprint.network.private_service_range.address,
                "/",
                footprint.network.private_service_range.prefix_length.apply(str),
            )
        ],
        egress_ips=[footprint.network.egress_ip],
        redis_port=REDIS_PORT,
        load_balancer_annotations=dict(LOAD_BALANCER_ANNOTATIONS),
        api_services=list(footprint.apis),
        outputs=footprint.outputs,
    )
