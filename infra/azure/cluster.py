"""The AKS cluster, hardened the way Azure's verified modules build a production cluster.

* A user-assigned control-plane identity (it exists before the cluster, so
  its Network Contributor grant on the VNet is in place when AKS joins the
  node subnet).
* Microsoft Entra ID with Azure RBAC; local accounts disabled in staging and
  prod (``disableLocalAccounts``), so every API call is made by an identity.
* OIDC issuer and workload identity on, for pods to use managed identities.
* Azure CNI Overlay with the Cilium dataplane and network policy.
* A system pool tainted ``CriticalAddonsOnly`` and an autoscaling user pool
  for the gateway, both across availability zones, with encryption at host
  (the subscription needs the ``Microsoft.Compute/EncryptionAtHost`` feature
  registered).
* The API server is either private or public limited to the deployer CIDRs
  and the NAT gateway's egress address; never open to all.
* Standard tier (uptime SLA) in staging and prod; control-plane logs to a Log
  Analytics workspace; automatic patch upgrades of Kubernetes and node images
  inside weekly maintenance windows; ephemeral OS disks on the nodes.
* Kubernetes secrets in etcd encrypted with a customer-managed Key Vault key
  (KMS), Container Insights collecting through a data collection rule (the
  managed-identity mode needs one), the Azure Policy add-on with the Pod
  Security baseline initiative assigned, and Defender for Containers where on.
* The kube provider waits for the deployer's RBAC grant to work (propagation
  takes minutes) and for the user pool's nodes.

The kube provider authenticates through ``kubelogin`` (an exec kubeconfig,
see :func:`infra.decisions.azure.kubeconfig`), which works with local accounts disabled.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_kubernetes as kubernetes
import pulumi_random as random
from pulumi_azure_native import (
    authorization,
    containerservice,
    keyvault,
    managedidentity,
    monitor,
    operationalinsights,
    security,
)

from infra.config import AzureConfig
from infra.decisions.azure import (
    api_server_access,
    azure_name,
    check_name,
    cluster_endpoint,
    dns_service_ip,
    ephemeral_os_disk_gb,
    first_credential,
    kubeconfig,
    system_pool_bounds,
    with_suffix,
)
from infra.k8s.access import KUBECONFIG_ENV, wait_script

NETWORK_CONTRIBUTOR_ROLE = "4d97b98b-1d4f-4787-a291-c67834d212e7"
AKS_RBAC_CLUSTER_ADMIN_ROLE = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
KEY_VAULT_CRYPTO_USER_ROLE = "12338af0-0e69-4776-bea7-57ae8d297424"
"""Built-in ``Key Vault Crypto User``: wrap and unwrap with the vault's keys (AKS KMS)."""
POD_SECURITY_BASELINE_INITIATIVE = "a8640138-9b0a-4a28-b8cb-1666c838647d"
"""Built-in initiative "Kubernetes cluster pod security baseline standards for Linux-based
workloads", enforced by the Azure Policy add-on."""
CONTAINER_INSIGHTS_STREAMS = ("Microsoft-ContainerInsights-Group-Default",)
"""What the Container Insights data collection rule gathers (its default group)."""
_SUFFIX_BYTES = 3

CONTROL_PLANE_LOG_CATEGORIES = (
    "kube-apiserver",
    "kube-audit-admin",
    "kube-controller-manager",
    "cluster-autoscaler",
    "guard",
)
"""AKS resource logs sent to Log Analytics: API server, writes audit, autoscaler and Entra auth (guard)."""

SYSTEM_POOL = check_name("aks_node_pool", "system")
USER_POOL = check_name("aks_node_pool", "gateway")


@dataclass
class ClusterArgs:
    """Inputs of :class:`Cluster`."""

    resource_group_name: pulumi.Input[str]
    location: str
    name_prefix: str
    settings: AzureConfig
    """The stack's ``ai-gateway:azure`` section: sizes, tiers, access rules."""
    subscription_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    deployer_object_id: pulumi.Input[str]
    """The identity running ``pulumi up``; granted cluster admin to deploy the gateway."""
    vnet_id: pulumi.Input[str]
    node_subnet_id: pulumi.Input[str]
    egress_ip: pulumi.Input[str]
    """The NAT gateway's address: nodes reach a public API server from it."""
    ingress_ip_id: pulumi.Input[str]
    """The gateway's public IP: the cluster identity may attach it to the load balancer."""
    governance_ip_id: pulumi.Input[str] | None = None
    """The governance channel's public IP (``ai-gateway:governance``), attached the same way."""
    protect: bool = False
    """Pulumi ``protect`` on the cluster (deletion protection, prod)."""


class Cluster(pulumi.ComponentResource):
    """AKS with its identity, user pool, diagnostics and kube provider (``ai-gateway:azure:Cluster``).

    Outputs: ``cluster_name``, ``kubeconfig`` (secret), ``kube_provider``,
    ``oidc_issuer_url``, ``kubelet_identity_object_id``,
    ``cluster_identity_principal_id``.
    """

    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    kube_provider: kubernetes.Provider
    oidc_issuer_url: pulumi.Output[str]
    kubelet_identity_object_id: pulumi.Output[str]
    cluster_identity_principal_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:azure:Cluster", name, None, opts)
        identity, grants = self._identity(name, args)
        kms_key, kms_grant = self._kms_key(name, args, identity)
        workspace = self._workspace(name, args)
        cluster = self._cluster(name, args, identity, kms_key, workspace, [*grants, kms_grant])
        user_pool = self._user_pool(name, args, cluster)
        self._diagnostics(name, cluster, workspace)
        self._maintenance_windows(name, args, cluster)
        self._container_insights(name, args, cluster, workspace)
        self._policy(name, args, cluster)
        self.kubeconfig, self.kube_provider = self._kube_access(name, args, cluster, user_pool)

        self.cluster_name = cluster.name
        self.oidc_issuer_url = cluster.oidc_issuer_profile.apply(
            lambda profile: profile.issuer_url if profile else ""
        )
        # AKS sets the kubelet identity's object id with the managed identity profile.
        self.kubelet_identity_object_id = cluster.identity_profile.apply(
            lambda profile: (  # type: ignore[arg-type]
                profile["kubeletidentity"].object_id  # type: ignore[return-value]
                if profile and "kubeletidentity" in profile
                else ""
            )
        )
        self.cluster_identity_principal_id = identity.principal_id
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "oidcIssuerUrl": self.oidc_issuer_url,
                "kubeletIdentityObjectId": self.kubelet_identity_object_id,
                "clusterIdentityPrincipalId": self.cluster_identity_principal_id,
            }
        )

    # ------------------------------------------------------------------ parts

    def _identity(
        self, name: str, args: ClusterArgs
    ) -> tuple[managedidentity.UserAssignedIdentity, list[authorization.RoleAssignment]]:
        """The control-plane identity and its Network Contributor grants (VNet, ingress IP)."""
        child = pulumi.ResourceOptions(parent=self)
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=azure_name("user_assigned_identity", "id", args.name_prefix, "aks"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            opts=child,
        )
        # AKS joins the node subnet and attaches the NAT gateway with this
        # identity; without the grant the cluster create fails.
        network_grant = _identity_grant(
            f"{name}-network-contributor",
            identity,
            args,
            NETWORK_CONTRIBUTOR_ROLE,
            args.vnet_id,
            child,
        )
        # The cloud controller attaches the stack's own public IP to the AKS load
        # balancer (Service annotation azure-pip-name); that needs the cluster
        # identity's Network Contributor on the IP ("Use a static public IP
        # address with the Azure Kubernetes Service load balancer").
        ingress_ip_grant = _identity_grant(
            f"{name}-ingress-ip-contributor",
            identity,
            args,
            NETWORK_CONTRIBUTOR_ROLE,
            args.ingress_ip_id,
            child,
        )
        grants = [network_grant, ingress_ip_grant]
        # The governance channel's own load balancer takes its own static IP
        # (ai-gateway:governance): the same grant on that IP.
        if args.governance_ip_id is not None:
            grants.append(
                _identity_grant(
                    f"{name}-governance-ip-contributor",
                    identity,
                    args,
                    NETWORK_CONTRIBUTOR_ROLE,
                    args.governance_ip_id,
                    child,
                )
            )
        return identity, grants

    def _workspace(self, name: str, args: ClusterArgs) -> operationalinsights.Workspace:
        """The Log Analytics workspace: control-plane logs, Container Insights, Defender."""
        return operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=azure_name("log_analytics_workspace", "log", args.name_prefix),
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=operationalinsights.WorkspaceSkuArgs(
                name=operationalinsights.WorkspaceSkuNameEnum.PER_GB2018
            ),
            retention_in_days=args.settings.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _cluster(
        self,
        name: str,
        args: ClusterArgs,
        identity: managedidentity.UserAssignedIdentity,
        kms_key: keyvault.Key,
        workspace: operationalinsights.Workspace,
        grants: list[authorization.RoleAssignment],
    ) -> containerservice.ManagedCluster:
        """The managed cluster with its system pool, once the identity's grants exist."""
        s = args.settings
        rg = args.resource_group_name
        prefix = args.name_prefix
        access = api_server_access(s.deployer_cidrs, s.private_endpoint_only)
        system_min, system_max = system_pool_bounds(s.system_node_count)
        zones = list(s.availability_zones)
        authorized = (
            None
            if access.private_cluster
            else pulumi.Output.from_input(args.egress_ip).apply(
                lambda ip: [*access.authorized_ip_ranges, *([f"{ip}/32"] if ip else [])]
            )
        )
        return containerservice.ManagedCluster(
            f"{name}-aks",
            resource_name_=azure_name("aks_cluster", "aks", prefix),
            resource_group_name=rg,
            location=args.location,
            dns_prefix=azure_name("aks_dns_prefix", prefix),
            node_resource_group=azure_name("resource_group", "rg", prefix, "aks-nodes"),
            kubernetes_version=s.kubernetes_version,
            sku=containerservice.ManagedClusterSKUArgs(
                name=containerservice.ManagedClusterSKUName.BASE,
                tier=containerservice.ManagedClusterSKUTier(s.aks_tier),
            ),
            identity=containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[identity.id],
            ),
            enable_rbac=True,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(
                managed=True,
                enable_azure_rbac=True,
                tenant_id=args.tenant_id,
                admin_group_object_ids=list(s.admin_group_object_ids),
            ),
            disable_local_accounts=s.disable_local_accounts,
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(
                    enabled=True
                ),
                image_cleaner=containerservice.ManagedClusterSecurityProfileImageCleanerArgs(
                    enabled=True, interval_hours=168
                ),
                # etcd's secrets wrapped by the stack's Key Vault key (as EKS and
                # GKE do with KMS), not only by the platform-managed key.
                azure_key_vault_kms=containerservice.AzureKeyVaultKmsArgs(
                    enabled=True,
                    key_id=kms_key.key_uri_with_version,
                    key_vault_network_access=containerservice.KeyVaultNetworkAccessTypes.PUBLIC,
                ),
                defender=(
                    containerservice.ManagedClusterSecurityProfileDefenderArgs(
                        log_analytics_workspace_resource_id=workspace.id,
                        security_monitoring=containerservice.ManagedClusterSecurityProfileDefenderSecurityMonitoringArgs(
                            enabled=True
                        ),
                    )
                    if s.defender_for_containers
                    else None
                ),
            ),
            api_server_access_profile=containerservice.ManagedClusterAPIServerAccessProfileArgs(
                enable_private_cluster=access.private_cluster,
                private_dns_zone="system" if access.private_cluster else None,
                authorized_ip_ranges=authorized,
                disable_run_command=True,
            ),
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin=containerservice.NetworkPlugin.AZURE,
                network_plugin_mode=containerservice.NetworkPluginMode.OVERLAY,
                network_dataplane=containerservice.NetworkDataplane.CILIUM,
                network_policy=containerservice.NetworkPolicy.CILIUM,
                pod_cidr=s.pod_cidr,
                service_cidr=s.service_cidr,
                dns_service_ip=dns_service_ip(s.service_cidr),
                outbound_type=containerservice.OutboundType.USER_ASSIGNED_NAT_GATEWAY,
                load_balancer_sku=containerservice.LoadBalancerSku.STANDARD,
            ),
            agent_pool_profiles=[
                containerservice.ManagedClusterAgentPoolProfileArgs(
                    name=SYSTEM_POOL,
                    mode=containerservice.AgentPoolMode.SYSTEM,
                    type=containerservice.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
                    vm_size=s.system_node_vm_size,
                    os_type=containerservice.OSType.LINUX,
                    os_sku=containerservice.OSSKU.AZURE_LINUX,
                    os_disk_type=containerservice.OSDiskType.EPHEMERAL,
                    os_disk_size_gb=ephemeral_os_disk_gb(s.system_node_vm_size, "systemNodeVmSize"),
                    enable_encryption_at_host=True,
                    enable_node_public_ip=False,
                    enable_auto_scaling=True,
                    count=system_min,
                    min_count=system_min,
                    max_count=system_max,
                    availability_zones=zones or None,
                    vnet_subnet_id=args.node_subnet_id,
                    # Only critical add-ons (CoreDNS, metrics-server, Cilium)
                    # run here; the gateway runs on the user pool.
                    node_taints=["CriticalAddonsOnly=true:NoSchedule"],
                    upgrade_settings=containerservice.AgentPoolUpgradeSettingsArgs(max_surge="33%"),
                )
            ],
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=containerservice.UpgradeChannel.PATCH,
                node_os_upgrade_channel=containerservice.NodeOSUpgradeChannel.NODE_IMAGE,
            ),
            addon_profiles={
                "azurepolicy": containerservice.ManagedClusterAddonProfileArgs(enabled=True),
                "omsagent": containerservice.ManagedClusterAddonProfileArgs(
                    enabled=True,
                    config={
                        "logAnalyticsWorkspaceResourceID": workspace.id,
                        "useAADAuth": "true",
                    },
                ),
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=grants,
                protect=args.protect,
                # AKS scales the system pool itself; a later plan must not
                # fight the autoscaler over the node count.
                ignore_changes=["agentPoolProfiles[0].count"],
            ),
        )

    def _user_pool(
        self, name: str, args: ClusterArgs, cluster: containerservice.ManagedCluster
    ) -> containerservice.AgentPool:
        """The autoscaling user pool the gateway runs on, across the zones."""
        s = args.settings
        zones = list(s.availability_zones)
        return containerservice.AgentPool(
            f"{name}-{USER_POOL}",
            agent_pool_name=USER_POOL,
            resource_name_=cluster.name,
            resource_group_name=args.resource_group_name,
            mode=containerservice.AgentPoolMode.USER,
            type=containerservice.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
            vm_size=s.node_vm_size,
            os_type=containerservice.OSType.LINUX,
            os_sku=containerservice.OSSKU.AZURE_LINUX,
            os_disk_type=containerservice.OSDiskType.EPHEMERAL,
            os_disk_size_gb=ephemeral_os_disk_gb(s.node_vm_size, "nodeVmSize"),
            enable_encryption_at_host=True,
            enable_node_public_ip=False,
            enable_auto_scaling=True,
            count=s.node_count,
            min_count=s.node_min_count,
            max_count=s.node_max_count,
            availability_zones=zones or None,
            vnet_subnet_id=args.node_subnet_id,
            orchestrator_version=s.kubernetes_version,
            upgrade_settings=containerservice.AgentPoolUpgradeSettingsArgs(max_surge="33%"),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["count"]),
        )

    def _diagnostics(
        self,
        name: str,
        cluster: containerservice.ManagedCluster,
        workspace: operationalinsights.Workspace,
    ) -> None:
        """Control-plane logs (:data:`CONTROL_PLANE_LOG_CATEGORIES`) and metrics to the workspace."""
        monitor.DiagnosticSetting(
            f"{name}-diagnostics",
            name="control-plane-to-log-analytics",
            resource_uri=cluster.id,
            workspace_id=workspace.id,
            log_analytics_destination_type="Dedicated",
            logs=[
                monitor.DiagnosticsLogSettingsArgs(category=category, enabled=True)
                for category in CONTROL_PLANE_LOG_CATEGORIES
            ],
            metrics=[monitor.DiagnosticsMetricSettingsArgs(category="AllMetrics", enabled=True)],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _kube_access(
        self,
        name: str,
        args: ClusterArgs,
        cluster: containerservice.ManagedCluster,
        user_pool: containerservice.AgentPool,
    ) -> tuple[pulumi.Output[str], kubernetes.Provider]:
        """The deployer's admin grant, the exec kubeconfig (secret) and the kube provider.

        The provider waits until the API server honours the grant and the user
        pool has nodes.
        """
        child = pulumi.ResourceOptions(parent=self)
        # With Azure RBAC, Kubernetes permissions are Azure role assignments:
        # the deployer needs one to install the gateway in the same `pulumi up`.
        deployer_grant = authorization.RoleAssignment(
            f"{name}-deployer-admin",
            principal_id=args.deployer_object_id,
            role_definition_id=_role(args.subscription_id, AKS_RBAC_CLUSTER_ADMIN_ROLE),
            scope=cluster.id,
            opts=child,
        )

        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=args.resource_group_name,
            resource_name=cluster.name,
            format="exec",
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        kubeconfig_text: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, credentials.kubeconfigs).apply(
                lambda values: kubeconfig(values[0], *cluster_endpoint(first_credential(values[1])))
            )
        )
        # The grant exists in ARM long before the API server honours it: ask
        # the API server until it does (a new grant waits again).
        access_wait = command.local.Command(
            f"{name}-deployer-access-wait",
            create=wait_script(),
            environment={KUBECONFIG_ENV: kubeconfig_text},
            triggers=[deployer_grant.id],
            logging=command.local.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[deployer_grant, user_pool]),
        )
        # Only the kubeconfig text is computed inside apply(); the provider
        # itself is registered here, outside it, so preview and up register
        # the same resources. It waits for the deployer's access and for the
        # user pool's nodes (Helm `atomic` releases and the migration Job need
        # nodes to run on).
        provider = kubernetes.Provider(
            f"{name}-kubernetes",
            kubeconfig=kubeconfig_text,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_wait, user_pool]),
        )
        return kubeconfig_text, provider

    def _kms_key(
        self, name: str, args: ClusterArgs, identity: managedidentity.UserAssignedIdentity
    ) -> tuple[keyvault.Key, authorization.RoleAssignment]:
        """The Key Vault and key that encrypt etcd's secrets, and the cluster identity's grant.

        RBAC authorisation (no access policies), purge protection (a deleted
        key cannot take the cluster's secrets with it) and yearly rotation
        ("Add Key Management Service etcd encryption to an AKS cluster").
        """
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        base = azure_name("key_vault", "kv", args.name_prefix, reserve=_SUFFIX_BYTES * 2 + 1)
        suffix = random.RandomId(f"{name}-kv-suffix", byte_length=_SUFFIX_BYTES, opts=child)
        vault = keyvault.Vault(
            f"{name}-kms-vault",
            vault_name=suffix.hex.apply(lambda h: with_suffix("key_vault", base, h)),
            resource_group_name=args.resource_group_name,
            location=args.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=90,
                enable_purge_protection=True,
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        # The stack's vault: the database owner's secret lives here too (RBAC per secret).
        self.key_vault = vault
        key = keyvault.Key(
            f"{name}-kms-key",
            key_name="aks-etcd",
            vault_name=vault.name,
            resource_group_name=args.resource_group_name,
            properties=keyvault.KeyPropertiesArgs(
                kty=keyvault.JsonWebKeyType.RSA,
                key_size=s.kms_key_size,
                key_ops=["wrapKey", "unwrapKey", "encrypt", "decrypt"],
                rotation_policy=keyvault.RotationPolicyArgs(
                    lifetime_actions=[
                        keyvault.LifetimeActionArgs(
                            action=keyvault.ActionArgs(
                                type=keyvault.KeyRotationPolicyActionType.ROTATE
                            ),
                            trigger=keyvault.TriggerArgs(time_after_create="P365D"),
                        )
                    ],
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        grant = _identity_grant(
            f"{name}-kms-crypto-user", identity, args, KEY_VAULT_CRYPTO_USER_ROLE, vault.id, child
        )
        return key, grant

    def _maintenance_windows(
        self, name: str, args: ClusterArgs, cluster: containerservice.ManagedCluster
    ) -> None:
        """Kubernetes patch and node-image upgrades only in the weekly window (4 hours)."""
        s = args.settings
        for config_name in ("aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule"):
            containerservice.MaintenanceConfiguration(
                f"{name}-{config_name}",
                config_name=config_name,
                resource_name_=cluster.name,
                resource_group_name=args.resource_group_name,
                maintenance_window=containerservice.MaintenanceWindowArgs(
                    schedule=containerservice.ScheduleArgs(
                        weekly=containerservice.WeeklyScheduleArgs(
                            day_of_week=s.maintenance_day.capitalize(), interval_weeks=1
                        )
                    ),
                    start_time=f"{s.maintenance_hour_utc:02d}:00",
                    duration_hours=4,
                    utc_offset="+00:00",
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )

    def _container_insights(
        self,
        name: str,
        args: ClusterArgs,
        cluster: containerservice.ManagedCluster,
        workspace: operationalinsights.Workspace,
    ) -> None:
        """The data collection rule Container Insights reads with managed-identity auth.

        With ``useAADAuth`` the agent collects nothing until a data collection
        rule and its association with the cluster exist ("Enable monitoring for
        Kubernetes clusters", Azure Monitor: the DCR with the ContainerInsights
        extension and the ``ContainerInsightsExtension`` association).
        """
        child = pulumi.ResourceOptions(parent=self)
        rule = monitor.DataCollectionRule(
            f"{name}-container-insights",
            data_collection_rule_name=azure_name(
                "data_collection_rule", "dcr", args.name_prefix, "ci"
            ),
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="Linux",
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                extensions=[
                    monitor.ExtensionDataSourceArgs(
                        name="ContainerInsightsExtension",
                        extension_name="ContainerInsights",
                        streams=list(CONTAINER_INSIGHTS_STREAMS),
                        extension_settings={
                            "dataCollectionSettings": {
                                "interval": "1m",
                                "namespaceFilteringMode": "Off",
                                "enableContainerLogV2": True,
                            }
                        },
                    )
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                log_analytics=[
                    monitor.LogAnalyticsDestinationArgs(
                        name="ciworkspace", workspace_resource_id=workspace.id
                    )
                ]
            ),
            data_flows=[
                monitor.DataFlowArgs(
                    streams=list(CONTAINER_INSIGHTS_STREAMS), destinations=["ciworkspace"]
                )
            ],
            opts=child,
        )
        monitor.DataCollectionRuleAssociation(
            f"{name}-container-insights",
            association_name="ContainerInsightsExtension",
            resource_uri=cluster.id,
            data_collection_rule_id=rule.id,
            description="Container Insights of the gateway's AKS cluster",
            opts=child,
        )

    def _policy(
        self, name: str, args: ClusterArgs, cluster: containerservice.ManagedCluster
    ) -> None:
        """The Pod Security baseline initiative on the cluster (the add-on enforces assignments).

        ``Deny`` in staging and prod refuses privileged pods, host namespaces
        and host paths in every namespace but the system ones; ``Audit`` in dev
        reports them. Defender for Containers' plan on the subscription where on.
        """
        s = args.settings
        authorization.PolicyAssignment(
            f"{name}-pod-security-baseline",
            policy_assignment_name=azure_name("policy_assignment", "pa", args.name_prefix, "pss"),
            display_name="Pod security baseline (AI gateway cluster)",
            scope=cluster.id,
            policy_definition_id=(
                "/providers/Microsoft.Authorization/policySetDefinitions/"
                + POD_SECURITY_BASELINE_INITIATIVE
            ),
            parameters={"effect": authorization.ParameterValuesValueArgs(value=s.policy_effect)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        if s.defender_for_containers:
            # Subscription-wide plan: kept when the stack is destroyed (other
            # clusters may rely on it), never downgraded by this program.
            security.Pricing(
                f"{name}-defender-containers",
                pricing_name="Containers",
                pricing_tier=security.PricingTier.STANDARD,
                scope_id=pulumi.Output.concat("/subscriptions/", args.subscription_id),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )


def _identity_grant(
    resource_name: str,
    identity: managedidentity.UserAssignedIdentity,
    args: ClusterArgs,
    role_guid: str,
    scope: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> authorization.RoleAssignment:
    """One built-in role for the cluster's control-plane identity on one scope."""
    return authorization.RoleAssignment(
        resource_name,
        principal_id=identity.principal_id,
        principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
        role_definition_id=_role(args.subscription_id, role_guid),
        scope=scope,
        opts=opts,
    )


def _role(subscription_id: pulumi.Input[str], role_guid: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "/subscriptions/",
        subscription_id,
        "/providers/Microsoft.Authorization/roleDefinitions/",
        role_guid,
    )
