"""The GKE cluster: private, VPC-native, Workload Identity, Dataplane V2, secrets encrypted with KMS.

Reads top to bottom in dependency order: the nodes' own least-privilege
service account and its roles, the Cloud KMS key that encrypts Kubernetes
secrets (and the grant letting GKE use it), the cluster with its default pool
removed, the autoscaling node pool, and the kube provider the rest of the
program deploys through. Where the issue is silent the choices follow
terraform-google-modules' ``safer-cluster``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as kubernetes
import pulumi_random as random

from infra.config import StackConfig
from infra.decisions.gcp import daily_window_start, kubeconfig, resource_name, workload_pool

NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
)
"""What a node needs to ship logs and metrics, and nothing more (as safer-cluster grants)."""

NODE_OAUTH_SCOPES = (
    "https://www.googleapis.com/auth/logging.write",
    "https://www.googleapis.com/auth/monitoring",
    # Image pulls from Artifact Registry need this scope (or cloud-platform) on
    # top of the repository's reader role ("Configure access control",
    # Artifact Registry docs: the Compute Engine default scopes include
    # devstorage.read_only, narrow custom scopes must add it).
    "https://www.googleapis.com/auth/devstorage.read_only",
)
"""Narrow scopes: workloads get Google credentials through Workload Identity, not the node;
the node itself only writes logs and metrics and reads images."""

KMS_ROTATION_PERIOD = "7776000s"
"""90 days: the rotation period CIS and Google recommend for symmetric keys."""


@dataclass
class ClusterArgs:
    """Inputs of :class:`Cluster`.

    ``node_count``, ``node_min_count`` and ``node_max_count`` are per zone (a
    regional pool spans 3 zones). ``deployer_cidrs`` may reach the public
    control plane endpoint; ``private_endpoint_only`` disables it.
    """

    name_prefix: str
    project: str
    region: str
    network_id: pulumi.Input[str]
    subnetwork_id: pulumi.Input[str]
    pods_range_name: str
    services_range_name: str
    master_cidr: str
    deployer_cidrs: Sequence[str]
    private_endpoint_only: bool
    kubernetes_version: str
    release_channel: str
    machine_type: str
    node_count: int
    node_min_count: int
    node_max_count: int
    max_pods_per_node: int
    node_tag: str
    deletion_protection: bool
    maintenance_hour_utc: int
    apis: Sequence[pulumi.Resource] = field(default_factory=list)

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        network_id: pulumi.Input[str],
        subnetwork_id: pulumi.Input[str],
        pods_range_name: str,
        services_range_name: str,
        node_tag: str,
        apis: Sequence[pulumi.Resource],
    ) -> ClusterArgs:
        """The args from the stack's ``gcp`` section; the keywords wire in other components."""
        s = config.gcp
        return cls(
            name_prefix=config.name_prefix,
            project=s.project,
            region=s.region,
            master_cidr=s.master_cidr,
            deployer_cidrs=s.deployer_cidrs,
            private_endpoint_only=s.private_endpoint_only,
            kubernetes_version=s.kubernetes_version,
            release_channel=s.release_channel,
            machine_type=s.machine_type,
            node_count=s.node_count,
            node_min_count=s.node_min_count,
            node_max_count=s.node_max_count,
            max_pods_per_node=s.max_pods_per_node,
            deletion_protection=s.deletion_protection,
            maintenance_hour_utc=s.maintenance_hour_utc,
            network_id=network_id,
            subnetwork_id=subnetwork_id,
            pods_range_name=pods_range_name,
            services_range_name=services_range_name,
            node_tag=node_tag,
            apis=apis,
        )


class Cluster(pulumi.ComponentResource):
    """A private regional GKE cluster with one autoscaling node pool and a kube provider.

    Outputs: ``cluster`` (the resource), ``cluster_name``, ``kubeconfig``
    (secret), ``kube_provider``, ``node_service_account_email``,
    ``workload_pool`` and ``kms_key_id``.
    """

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:gcp:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.apis))
        node_roles = self._node_identity(args, child)
        key_grant = self._secrets_key(args, child)
        self.cluster = self._cluster(
            args,
            pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[*node_roles, key_grant])
            ),
        )
        self.node_pool = self._node_pool(args, child)
        self.kubeconfig, self.kube_provider = self._kube_access()

        self.cluster_name = self.cluster.name
        # From the cluster, not from config: GKE creates the pool with the first
        # Workload Identity cluster of a project, and bindings naming it must wait.
        self.workload_pool: pulumi.Output[str] = self.cluster.workload_identity_config.apply(
            lambda wi: wi.workload_pool if wi and wi.workload_pool else ""
        )
        self.node_service_account_email = self.node_service_account.email
        self.kms_key_id = self.secrets_key.id
        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "kubeconfig": self.kubeconfig,
                "nodeServiceAccountEmail": self.node_service_account.email,
                "workloadPool": self.workload_pool,
                "kmsKeyId": self.secrets_key.id,
            }
        )

    # ------------------------------------------------------------------ parts

    def _node_identity(
        self, args: ClusterArgs, child: pulumi.ResourceOptions
    ) -> list[gcp.projects.IAMMember]:
        """The nodes' own service account (:attr:`node_service_account`) and its roles."""
        prefix = args.name_prefix
        # Nodes run as their own account, never the default compute account
        # (Editor on the project).
        self.node_service_account = gcp.serviceaccount.Account(
            "nodes",
            account_id=resource_name(prefix, "gke-nodes", "service_account"),
            display_name=f"GKE nodes of {prefix}",
            description="Least-privilege identity of the gateway's GKE nodes (logs and metrics only).",
            project=args.project,
            opts=child,
        )
        return [
            gcp.projects.IAMMember(
                f"nodes-{role.split('/')[1].replace('.', '-').lower()}",
                project=args.project,
                role=role,
                member=self.node_service_account.member,
                opts=child,
            )
            for role in NODE_ROLES
        ]

    def _secrets_key(
        self, args: ClusterArgs, child: pulumi.ResourceOptions
    ) -> gcp.kms.CryptoKeyIAMMember:
        """The key ring and key that encrypt Kubernetes secrets; GKE's grant to use the key."""
        prefix = args.name_prefix
        # Key ring names can never be reused in a project (key rings are not
        # deletable), so a random suffix lets a destroyed stack be rebuilt.
        key_suffix = random.RandomId(
            "kms-suffix", byte_length=2, opts=pulumi.ResourceOptions(parent=self)
        )
        key_ring_base = resource_name(prefix, "gke", "key_ring", reserve=5)
        self.key_ring = gcp.kms.KeyRing(
            "secrets",
            name=key_suffix.hex.apply(lambda suffix: f"{key_ring_base}-{suffix}"),
            location=args.region,
            project=args.project,
            opts=child,
        )
        self.secrets_key = gcp.kms.CryptoKey(
            "secrets",
            name=resource_name(prefix, "gke-secrets", "crypto_key"),
            key_ring=self.key_ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=KMS_ROTATION_PERIOD,
            # Destroying the key makes the cluster's secrets unreadable: protected
            # wherever the cluster is (turning deletionProtection off lifts both).
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(protect=args.deletion_protection)
            ),
        )
        project_info = gcp.organizations.get_project_output(
            project_id=args.project, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        # GKE's service agent encrypts and decrypts secrets with the key.
        return gcp.kms.CryptoKeyIAMMember(
            "secrets-gke-agent",
            crypto_key_id=self.secrets_key.id,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=project_info.number.apply(
                lambda number: (
                    f"serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com"
                )
            ),
            opts=child,
        )

    def _cluster(self, args: ClusterArgs, opts: pulumi.ResourceOptions) -> gcp.container.Cluster:
        """The private, VPC-native regional cluster, its default pool removed at once."""
        prefix = args.name_prefix
        shielded = gcp.container.ClusterNodeConfigShieldedInstanceConfigArgs(
            enable_secure_boot=True, enable_integrity_monitoring=True
        )
        return gcp.container.Cluster(
            "gke",
            name=resource_name(prefix, "gke", "cluster"),
            description="AI gateway cluster: private nodes, Workload Identity, Dataplane V2.",
            project=args.project,
            location=args.region,
            network=args.network_id,
            subnetwork=args.subnetwork_id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=args.pods_range_name,
                services_secondary_range_name=args.services_range_name,
            ),
            default_max_pods_per_node=args.max_pods_per_node,
            # The default pool cannot be managed separately; it is created (as
            # the nodes' account, never the compute default) and removed at once.
            remove_default_node_pool=True,
            initial_node_count=1,
            node_config=gcp.container.ClusterNodeConfigArgs(
                service_account=self.node_service_account.email,
                oauth_scopes=list(NODE_OAUTH_SCOPES),
                shielded_instance_config=shielded,
                workload_metadata_config=gcp.container.ClusterNodeConfigWorkloadMetadataConfigArgs(
                    mode="GKE_METADATA"
                ),
            ),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,
                enable_private_endpoint=args.private_endpoint_only,
                master_ipv4_cidr_block=args.master_cidr,
                master_global_access_config=gcp.container.ClusterPrivateClusterConfigMasterGlobalAccessConfigArgs(
                    enabled=True
                ),
            ),
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                        cidr_block=cidr, display_name=f"deployer-{index}"
                    )
                    for index, cidr in enumerate(args.deployer_cidrs)
                ],
                gcp_public_cidrs_access_enabled=False,
            ),
            master_auth=gcp.container.ClusterMasterAuthArgs(
                client_certificate_config=gcp.container.ClusterMasterAuthClientCertificateConfigArgs(
                    issue_client_certificate=False
                )
            ),
            enable_legacy_abac=False,
            enable_shielded_nodes=True,
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=workload_pool(args.project)
            ),
            # Every image is checked against the project's Binary Authorization policy
            # (its default admits all images until the platform team tightens it).
            binary_authorization=gcp.container.ClusterBinaryAuthorizationArgs(
                evaluation_mode="PROJECT_SINGLETON_POLICY_ENFORCE"
            ),
            # Dataplane V2 enforces NetworkPolicy itself; the Calico add-on stays off.
            datapath_provider="ADVANCED_DATAPATH",
            addons_config=gcp.container.ClusterAddonsConfigArgs(
                http_load_balancing=gcp.container.ClusterAddonsConfigHttpLoadBalancingArgs(
                    disabled=False
                ),
                horizontal_pod_autoscaling=gcp.container.ClusterAddonsConfigHorizontalPodAutoscalingArgs(
                    disabled=False
                ),
                network_policy_config=gcp.container.ClusterAddonsConfigNetworkPolicyConfigArgs(
                    disabled=True
                ),
                gce_persistent_disk_csi_driver_config=gcp.container.ClusterAddonsConfigGcePersistentDiskCsiDriverConfigArgs(
                    enabled=True
                ),
            ),
            database_encryption=gcp.container.ClusterDatabaseEncryptionArgs(
                state="ENCRYPTED", key_name=self.secrets_key.id
            ),
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=args.release_channel),
            min_master_version=args.kubernetes_version,
            maintenance_policy=gcp.container.ClusterMaintenancePolicyArgs(
                daily_maintenance_window=gcp.container.ClusterMaintenancePolicyDailyMaintenanceWindowArgs(
                    start_time=daily_window_start(args.maintenance_hour_utc)
                )
            ),
            logging_config=gcp.container.ClusterLoggingConfigArgs(
                enable_components=["SYSTEM_COMPONENTS", "WORKLOADS"]
            ),
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                enable_components=["SYSTEM_COMPONENTS"],
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(
                    enabled=True
                ),
            ),
            security_posture_config=gcp.container.ClusterSecurityPostureConfigArgs(
                mode="BASIC", vulnerability_mode="VULNERABILITY_BASIC"
            ),
            deletion_protection=args.deletion_protection,
            opts=opts,
        )

    def _node_pool(
        self, args: ClusterArgs, child: pulumi.ResourceOptions
    ) -> gcp.container.NodePool:
        """The gateway's autoscaling node pool (shielded COS nodes, GKE metadata server)."""
        return gcp.container.NodePool(
            "gateway",
            name=resource_name(args.name_prefix, "gateway", "node_pool"),
            project=args.project,
            location=args.region,
            cluster=self.cluster.id,
            initial_node_count=args.node_count,
            max_pods_per_node=args.max_pods_per_node,
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                min_node_count=args.node_min_count,
                max_node_count=args.node_max_count,
                location_policy="BALANCED",
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            upgrade_settings=gcp.container.NodePoolUpgradeSettingsArgs(
                strategy="SURGE", max_surge=1, max_unavailable=0
            ),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=args.machine_type,
                image_type="COS_CONTAINERD",
                disk_type="pd-balanced",
                disk_size_gb=100,
                service_account=self.node_service_account.email,
                oauth_scopes=list(NODE_OAUTH_SCOPES),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                    mode="GKE_METADATA"
                ),
                metadata={"disable-legacy-endpoints": "true"},
                tags=[args.node_tag],
            ),
            opts=child,
        )

    def _kube_access(self) -> tuple[pulumi.Output[str], kubernetes.Provider]:
        """The plugin kubeconfig (secret) and the kube provider, which waits for the nodes."""
        kubeconfig_text: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(
                self.cluster.name,
                self.cluster.endpoint,
                self.cluster.master_auth.cluster_ca_certificate,
            ).apply(lambda values: kubeconfig(values[0], values[1], values[2] or ""))
        )
        # The provider waits for the node pool: workloads need nodes to schedule on.
        provider = kubernetes.Provider(
            "gke",
            kubeconfig=kubeconfig_text,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_pool]),
        )
        return kubeconfig_text, provider
