"""Coverage of the anchor rule sets: which policy covers each relevant anchor check.

The anchors are the public rule sets a security reviewer compares a pack with:
checkov (``CKV_*``/``CKV2_*`` ids), Pulumi's compliance-ready policies
(``aws-...``, ``azurenative-...``, ``kubernetes-...`` names) and AWSGuard (``awsguard:``
names). The ids were read from checkov 3.3.30's own check list (``checkov --list``),
the compliance-policies repository and the AWSGuard rules; checks for another
engine (MySQL, SQL Server, Aurora flags on a PostgreSQL instance) are not listed.
:data:`CATALOG` lists, per resource type the program registers (or a user's
change is likely to add), the anchor checks that apply to it and the pack
policy that covers each, or why none does. ``docs/policy-coverage.md`` is
generated from it (``python -m policies.coverage > docs/policy-coverage.md``)
and a test keeps both current and the share of covered checks above the target.
"""

from __future__ import annotations

from dataclasses import dataclass

TARGET = 0.85
"""Share of relevant anchor checks the pack must cover."""


@dataclass(frozen=True)
class Anchor:
    """One anchor check on one resource type, and what the pack does about it."""

    check: str
    """The anchor's id (checkov id, compliance-ready policy name, ``awsguard:<name>``)."""
    what: str
    policy: str | None = None
    """The pack policy that covers it; None when none does."""
    reason: str = ""
    """Why no policy covers it (required when ``policy`` is None)."""


def _a(check: str, what: str, policy: str | None = None, reason: str = "") -> Anchor:
    return Anchor(check, what, policy, reason)


NO_ANCHOR = "no check of the anchor rule sets applies to this type"

# fmt: off

_POD = [
    _a("CKV_K8S_10", "CPU requests", "kubernetes-apps-workload-resource-limits"),
    _a("CKV_K8S_11", "CPU limits", "kubernetes-apps-workload-resource-limits"),
    _a("CKV_K8S_12", "memory requests", "kubernetes-apps-workload-resource-limits"),
    _a("CKV_K8S_13", "memory limits", "kubernetes-apps-workload-resource-limits"),
    _a("CKV_K8S_14", "image tag fixed, not latest or blank", "kubernetes-core-pod-image-pinned"),
    _a("CKV_K8S_15", "image pull policy Always", None, "images are pinned by version tag in registries with immutable tags: a cached image is the same image (allow-listed in the checkov test)"),
    _a("CKV_K8S_16", "not privileged", "kubernetes-apps-workload-no-privileged"),
    _a("CKV_K8S_17", "no host PID namespace", "kubernetes-core-pod-no-host-namespaces"),
    _a("CKV_K8S_18", "no host IPC namespace", "kubernetes-core-pod-no-host-namespaces"),
    _a("CKV_K8S_19", "no host network namespace", "kubernetes-core-pod-no-host-namespaces"),
    _a("CKV_K8S_20", "no privilege escalation", "kubernetes-apps-workload-no-privileged"),
    _a("CKV_K8S_21", "not in the default namespace", "kubernetes-core-object-no-default-namespace"),
    _a("CKV_K8S_22", "read-only root filesystem", "kubernetes-apps-workload-read-only-root-filesystem"),
    _a("CKV_K8S_23", "no root containers", "kubernetes-apps-workload-run-as-non-root"),
    _a("CKV_K8S_25", "no added capabilities", "kubernetes-core-pod-capabilities"),
    _a("CKV_K8S_26", "no hostPort", "kubernetes-core-pod-no-host-port"),
    _a("CKV_K8S_27", "no Docker socket mount", "kubernetes-core-pod-no-host-path"),
    _a("CKV_K8S_28", "NET_RAW dropped", "kubernetes-core-pod-capabilities"),
    _a("CKV_K8S_29", "pod security context", "kubernetes-apps-workload-run-as-non-root"),
    _a("CKV_K8S_30", "container security context", "kubernetes-apps-workload-no-privileged"),
    _a("CKV_K8S_31", "seccomp RuntimeDefault", "kubernetes-core-pod-seccomp"),
    _a("CKV_K8S_35", "secrets as files, not env", None, "the gateway reads its Redis URL and database DSN from env (secretKeyRef); files need a gateway change (follow-up; allow-listed in the checkov test)"),
    _a("CKV_K8S_37", "capabilities minimised (drop ALL)", "kubernetes-core-pod-capabilities"),
    _a("CKV_K8S_38", "service account token only where needed", "kubernetes-core-pod-no-token-automount"),
    _a("CKV_K8S_39", "no CAP_SYS_ADMIN", "kubernetes-core-pod-capabilities"),
    _a("CKV_K8S_40", "high UID", "kubernetes-apps-workload-run-as-non-root"),
    _a("CKV_K8S_43", "image by digest", None, "images are pinned by version tag; kubernetes-core-pod-image-pinned takes requireDigest=true for teams that promote by digest (allow-listed in the checkov test)"),
]

_POLICY_DOCUMENT = [
    # An IAM policy document, inline (RolePolicy) or managed (Policy).
    _a("CKV_AWS_62", "no '*:*' administrator", "aws-iam-policy-no-administrator"),
    _a("CKV_AWS_63", "no '*' actions", "aws-iam-policy-no-administrator"),
    _a("CKV_AWS_286", "no privilege escalation", "aws-iam-policy-no-administrator"),
    _a("CKV_AWS_287", "no credentials exposure", None, "needs a per-action catalogue of credential-returning APIs; the program's policies are reviewed in its tests"),
    _a("CKV_AWS_288", "no data exfiltration", None, "needs a per-action catalogue; the program's grants name their resources"),
    _a("CKV_AWS_289", "no permissions management without constraints", "aws-iam-policy-no-administrator"),
    _a("CKV_AWS_290", "no write access without constraints", None, "needs a per-action catalogue of resource-level permissions; the Load Balancer Controller's and Cluster Autoscaler's published policies act on resources created at run time, scoped by tag conditions"),
    _a("CKV_AWS_355", "no '*' resource for restrictable actions", None, "needs a per-action catalogue of resource-level permissions (same reason)"),
    _a("CKV2_AWS_40", "no full IAM privileges", "aws-iam-policy-no-administrator"),
]

CATALOG: dict[str, list[Anchor]] = {
    # ------------------------------------------------------------------ AWS
    "aws:eks/cluster:Cluster": [
        _a("CKV_AWS_37", "control-plane logging for all five log types", None, "aws-eks-cluster-control-plane-logs requires the security-relevant api, audit and authenticator logs by default (requiredLogTypes takes all five); controllerManager and scheduler logs are operational"),
        _a("CKV_AWS_38", "public endpoint not open to 0.0.0.0/0", "aws-eks-cluster-endpoint-restricted"),
        _a("CKV_AWS_39", "public endpoint disabled", None, "by design the deployer reaches the API over the public endpoint limited to deployerCidrs (the pack judges the union of those ranges); privateEndpointOnly turns it off"),
        _a("CKV_AWS_58", "secrets encryption", "aws-eks-cluster-secrets-encryption"),
        _a("CKV_AWS_339", "supported Kubernetes version", None, "the stack config accepts only supported minor versions (kubernetesVersion), before the plan; not a policy"),
        _a("aws-eks-cluster-disallow-api-endpoint-public-access", "API endpoint not public", None, "same as CKV_AWS_39: public access limited to the deployers' CIDRs is the design"),
        _a("aws-eks-cluster-enable-cluster-encryption-config", "encryption config", "aws-eks-cluster-secrets-encryption"),
    ],
    "aws:eks/nodeGroup:NodeGroup": [
        _a("CKV_AWS_100", "no implicit SSH from 0.0.0.0/0", "aws-eks-nodegroup-no-public-ssh"),
    ],
    "aws:ec2/launchTemplate:LaunchTemplate": [
        _a("CKV_AWS_79", "IMDSv1 disabled", "aws-ec2-launchtemplate-imdsv2"),
        _a("CKV_AWS_341", "metadata hop limit 1", "aws-ec2-launchtemplate-imdsv2"),
        _a("CKV_AWS_88", "no public IP", "aws-ec2-launchtemplate-no-public-ip"),
        _a("CKV_AWS_46", "no secrets in user data", "aws-ec2-launchtemplate-no-secrets-in-user-data"),
        _a("aws-ec2-launchtemplate-disallow-public-ip", "no public IP", "aws-ec2-launchtemplate-no-public-ip"),
        _a("aws-ec2-launchtemplate-disallow-unencrypted-block-device", "block devices encrypted", "aws-ec2-launchtemplate-ebs-encrypted"),
        _a("aws-ec2-launchtemplate-configure-customer-managed-key", "block devices with a CMK", None, "node root volumes hold images and scratch space, encrypted with the account's EBS key; data stores carry the customer-managed key"),
    ],
    "aws:ec2/securityGroup:SecurityGroup": [
        _a("CKV_AWS_24", "no SSH from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_25", "no RDP from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_260", "no port 80 from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_277", "no all-ports ingress from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_382", "no all-ports egress to 0.0.0.0/0", "aws-ec2-securitygroup-no-open-egress"),
        _a("CKV_AWS_23", "descriptions on groups and rules", "aws-ec2-securitygroup-descriptions"),
        _a("CKV2_AWS_5", "attached to a resource", "aws-ec2-resource-no-orphans"),
        _a("aws-ec2-securitygroup-disallow-inbound-http-traffic", "no HTTP from the internet", "aws-ec2-securitygroup-no-public-ingress"),
        _a("aws-ec2-securitygroup-disallow-public-internet-ingress", "no ingress from the internet", None, "HTTPS to the gateway's load balancer is the product (allowedPublicPorts [443]); every other port is covered"),
        _a("aws-ec2-securitygroup-missing-description", "has a description", "aws-ec2-securitygroup-descriptions"),
        _a("aws-ec2-securitygroup-missing-ingress-rule-description", "ingress rules described", "aws-ec2-securitygroup-descriptions"),
        _a("aws-ec2-securitygroup-missing-egress-rule-description", "egress rules described", "aws-ec2-securitygroup-descriptions"),
        _a("awsguard:security-group-no-rule-management-conflicts", "inline and separate rules not mixed", "aws-ec2-securitygroup-no-rule-conflicts"),
    ],
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": [
        _a("CKV_AWS_24", "no SSH from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_25", "no RDP from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_260", "no port 80 from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_277", "no all-ports ingress from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_23", "rule has a description", "aws-ec2-securitygroup-descriptions"),
    ],
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": [
        _a("CKV2_AWS_12", "default security group restricts all traffic", "aws-ec2-defaultsecuritygroup-no-rules"),
    ],
    "aws:ec2/vpc:Vpc": [
        _a("CKV2_AWS_11", "flow logging", "aws-ec2-vpc-flow-logs"),
        _a("CKV2_AWS_12", "default security group restricts all traffic", "aws-ec2-defaultsecuritygroup-no-rules"),
    ],
    "aws:ec2/subnet:Subnet": [
        _a("CKV_AWS_130", "no public IP on launch", "aws-ec2-subnet-no-public-ip-on-launch"),
        _a("CKV2_AWS_1", "network ACL attached", None, "the VPC's default network ACL applies; traffic is filtered by security groups and NetworkPolicy"),
    ],
    "aws:ec2/eip:Eip": [
        _a("CKV2_AWS_19", "attached to a resource", "aws-ec2-resource-no-orphans"),
    ],
    "aws:ec2/flowLog:FlowLog": [], "aws:ec2/natGateway:NatGateway": [],
    "aws:ec2/internetGateway:InternetGateway": [], "aws:ec2/routeTable:RouteTable": [],
    "aws:ec2/routeTableAssociation:RouteTableAssociation": [],
    "aws:rds/instance:Instance": [
        _a("CKV_AWS_16", "encrypted at rest", "aws-rds-instance-storage-encrypted"),
        _a("CKV_AWS_17", "not publicly accessible", "aws-rds-instance-not-public"),
        _a("CKV_AWS_118", "enhanced monitoring", None, "operational metric, not a security control"),
        _a("CKV_AWS_129", "logs exported", "aws-rds-instance-log-exports"),
        _a("CKV_AWS_133", "backup policy", "aws-rds-instance-backups"),
        _a("CKV_AWS_157", "Multi-AZ", "aws-rds-instance-multi-az"),
        _a("CKV_AWS_161", "IAM authentication", "aws-rds-instance-iam-authentication"),
        _a("CKV_AWS_211", "modern CA certificate", "aws-rds-instance-patching"),
        _a("CKV_AWS_226", "automatic minor upgrades", "aws-rds-instance-patching"),
        _a("CKV_AWS_250", "no vulnerable log_fdw version", None, "the program runs PostgreSQL 16, which is not affected; the stack config pins the major version"),
        _a("CKV_AWS_293", "deletion protection", "multicloud-database-instance-deletion-protection"),
        _a("CKV_AWS_353", "Performance Insights", "aws-rds-instance-performance-insights"),
        _a("CKV_AWS_354", "Performance Insights encrypted with a CMK", "aws-rds-instance-customer-managed-key"),
        _a("CKV2_AWS_30", "query logging", None, "statement text would copy request data into the logs; connections and errors are exported (aws-rds-instance-log-exports)"),
        _a("CKV2_AWS_60", "copy tags to snapshots", "aws-rds-instance-backups"),
        _a("CKV2_AWS_69", "encryption in transit", "aws-rds-parametergroup-force-ssl"),
        _a("aws-rds-instance-configure-backup-retention", "adequate backup retention", "aws-rds-instance-backups"),
        _a("aws-rds-instance-configure-customer-managed-key", "customer-managed key", "aws-rds-instance-customer-managed-key"),
        _a("aws-rds-instance-disallow-public-access", "not public", "aws-rds-instance-not-public"),
        _a("aws-rds-instance-disallow-unencrypted-performance-insights", "Performance Insights encrypted", "aws-rds-instance-customer-managed-key"),
        _a("aws-rds-instance-disallow-unencrypted-storage", "storage encrypted", "aws-rds-instance-storage-encrypted"),
        _a("aws-rds-instance-enable-backup-retention", "backups enabled", "aws-rds-instance-backups"),
        _a("aws-rds-instance-enable-performance-insights", "Performance Insights on", "aws-rds-instance-performance-insights"),
        _a("awsguard:rds-instance-backup-enabled", "backups", "aws-rds-instance-backups"),
        _a("awsguard:rds-instance-multi-az-enabled", "Multi-AZ", "aws-rds-instance-multi-az"),
        _a("awsguard:rds-instance-public-access", "not public", "aws-rds-instance-not-public"),
        _a("awsguard:rds-storage-encrypted", "storage encrypted", "aws-rds-instance-storage-encrypted"),
    ],
    "aws:rds/parameterGroup:ParameterGroup": [
        _a("CKV2_AWS_69", "encryption in transit (rds.force_ssl)", "aws-rds-parametergroup-force-ssl"),
        _a("CKV2_AWS_30", "query logging", None, "statement text would copy request data into the logs"),
    ],
    "aws:rds/subnetGroup:SubnetGroup": [],
    "aws:elasticache/replicationGroup:ReplicationGroup": [
        _a("CKV_AWS_29", "encrypted at rest", "aws-elasticache-replicationgroup-encrypted-at-rest"),
        _a("CKV_AWS_30", "encrypted in transit", "aws-elasticache-replicationgroup-encrypted-in-transit"),
        _a("CKV_AWS_31", "in transit with an auth token", "aws-elasticache-replicationgroup-auth"),
        _a("CKV_AWS_191", "customer-managed key", "aws-elasticache-replicationgroup-customer-managed-key"),
        _a("CKV2_AWS_50", "Multi-AZ automatic failover", "aws-elasticache-replicationgroup-multi-az"),
    ],
    "aws:elasticache/subnetGroup:SubnetGroup": [],
    "aws:kms/key:Key": [
        _a("CKV_AWS_7", "rotation", "aws-kms-key-rotation"),
        _a("CKV_AWS_33", "no wildcard principal", "aws-kms-key-policy-not-public"),
        _a("CKV_AWS_227", "key enabled", "aws-kms-key-enabled"),
        _a("CKV2_AWS_64", "key policy defined", "aws-kms-key-policy-not-public"),
        _a("aws-kms-key-enable-key-rotation", "rotation", "aws-kms-key-rotation"),
        _a("aws-kms-key-disallow-bypass-policy-lockout-safety-check", "lockout safety check kept", "aws-kms-key-no-lockout-bypass"),
        _a("aws-kms-key-missing-description", "has a description", "aws-kms-key-description"),
        _a("awsguard:cmk-backing-key-rotation-enabled", "rotation", "aws-kms-key-rotation"),
    ],
    "aws:kms/alias:Alias": [],
    "aws:cloudwatch/logGroup:LogGroup": [
        _a("CKV_AWS_158", "encrypted with KMS", "aws-cloudwatch-loggroup-kms"),
        _a("CKV_AWS_338", "retained at least a year", "aws-cloudwatch-loggroup-retention"),
        _a("CKV_AWS_66", "retention specified", "aws-cloudwatch-loggroup-retention"),
    ],
    "aws:cloudwatch/metricAlarm:MetricAlarm": [
        _a("CKV_AWS_319", "alarm actions enabled", "aws-cloudwatch-metricalarm-actions-enabled"),
    ],
    "aws:iam/role:Role": [
        _a("CKV_AWS_60", "only specific principals may assume", "aws-iam-role-trust-not-public"),
        _a("CKV_AWS_61", "no assume role across all services", "aws-iam-role-trust-not-public"),
        _a("CKV_AWS_274", "no AdministratorAccess", "aws-iam-policy-no-administrator"),
        _a("CKV_AWS_393", "GitHub OIDC trust pins safe claims", "aws-iam-role-trust-not-public"),
        _a("CKV2_AWS_56", "no IAMFullAccess", "aws-iam-policy-no-administrator"),
        _a("awsguard:iam-role-no-policy-management-conflicts", "inline and attached policies not mixed", "aws-ec2-securitygroup-no-rule-conflicts"),
    ],
    "aws:iam/rolePolicy:RolePolicy": _POLICY_DOCUMENT,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": [
        _a("CKV_AWS_274", "no AdministratorAccess", "aws-iam-policy-no-administrator"),
        _a("CKV2_AWS_56", "no IAMFullAccess", "aws-iam-policy-no-administrator"),
    ],
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": [],
    "aws:eks/accessEntry:AccessEntry": [],
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": [],
    "aws:route53/zone:Zone": [
        _a("CKV2_AWS_38", "DNSSEC signing", "multicloud-dns-zone-dnssec"),
        _a("CKV2_AWS_39", "query logging", "multicloud-network-traffic-logs"),
    ],
    "aws:route53/record:Record": [
        _a("CKV2_AWS_23", "A record points at a resource", None, "the records alias the clusters' load balancers of the same stack"),
    ],
    "aws:route53/healthCheck:HealthCheck": [],
    "aws:route53/queryLog:QueryLog": [], "aws:route53/keySigningKey:KeySigningKey": [],
    "aws:route53/hostedZoneDnsSec:HostedZoneDnsSec": [],
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": [],
    "aws:sns/topic:Topic": [
        _a("CKV_AWS_26", "encrypted at rest", "aws-sns-topic-kms"),
    ],
    "aws:sns/topicSubscription:TopicSubscription": [],
    "aws:iam/policy:Policy": _POLICY_DOCUMENT,
    "aws:eks/addon:Addon": [], "aws:eks/podIdentityAssociation:PodIdentityAssociation": [],
    # --------------------------------------------------------------- Azure
    "azure-native:containerservice:ManagedCluster": [
        _a("CKV_AZURE_4", "logging to Azure Monitor", "azure-containerservice-managedcluster-addons"),
        _a("CKV_AZURE_5", "RBAC", "azure-containerservice-managedcluster-rbac"),
        _a("CKV_AZURE_6", "API server authorized IP ranges", "azure-containerservice-managedcluster-api-restricted"),
        _a("CKV_AZURE_7", "network policy", "azure-containerservice-managedcluster-network-policy"),
        _a("CKV_AZURE_8", "Kubernetes dashboard disabled", "azure-containerservice-managedcluster-addons"),
        _a("CKV_AZURE_115", "private cluster", None, "by design the public API is limited to deployerCidrs; privateEndpointOnly makes it private"),
        _a("CKV_AZURE_116", "Azure Policy add-on", "azure-containerservice-managedcluster-addons"),
        _a("CKV_AZURE_117", "disk encryption set", None, "encryption at host (CKV_AZURE_227) is required instead; a disk encryption set needs a Key Vault the program does not create yet"),
        _a("CKV_AZURE_141", "local admin account disabled", "azure-containerservice-managedcluster-local-accounts-disabled"),
        _a("CKV_AZURE_143", "no node public IPs", "azure-containerservice-managedcluster-no-node-public-ip"),
        _a("CKV_AZURE_168", "at least 50 pods per node", "azure-containerservice-managedcluster-node-pools"),
        _a("CKV_AZURE_169", "scale sets", "azure-containerservice-managedcluster-node-pools"),
        _a("CKV_AZURE_170", "paid SKU with SLA", "azure-containerservice-managedcluster-uptime-sla"),
        _a("CKV_AZURE_171", "upgrade channel chosen", "azure-containerservice-managedcluster-auto-upgrade"),
        _a("CKV_AZURE_172", "Secrets Store CSI autorotation", None, "the gateway reads Kubernetes Secrets, not the CSI driver"),
        _a("CKV_AZURE_226", "ephemeral OS disks", None, "performance choice; host encryption covers OS disks"),
        _a("CKV_AZURE_227", "encryption at host", "azure-containerservice-managedcluster-host-encryption"),
        _a("CKV_AZURE_232", "only critical pods on system nodes", "azure-containerservice-managedcluster-node-pools"),
        _a("CKV_AZURE_246", "HTTP application routing disabled", "azure-containerservice-managedcluster-addons"),
        _a("CKV2_AZURE_29", "Azure CNI", "azure-containerservice-managedcluster-network-policy"),
        _a("azurenative-containerservice-managedcluster-configure-network-policy", "network policy", "azure-containerservice-managedcluster-network-policy"),
    ],
    "azure-native:containerservice:AgentPool": [
        _a("CKV_AZURE_168", "at least 50 pods per node", "azure-containerservice-managedcluster-node-pools"),
        _a("CKV_AZURE_227", "encryption at host", "azure-containerservice-agentpool-host-encryption"),
    ],
    "azure-native:dbforpostgresql:Server": [
        _a("CKV_AZURE_136", "geo-redundant backups", "azure-dbforpostgresql-server-high-availability"),
        _a("CKV2_AZURE_57", "private endpoint (or delegated subnet)", "azure-dbforpostgresql-server-no-public-access"),
    ],
    "azure-native:dbforpostgresql:Configuration": [], "azure-native:dbforpostgresql:Database": [],
    "azure-native:redisenterprise:RedisEnterprise": [], "azure-native:redisenterprise:Database": [],
    "azure-native:redisenterprise:AccessPolicyAssignment": [],
    "azure-native:network:NetworkSecurityGroup": [
        _a("CKV_AZURE_9", "no RDP from the internet", "azure-network-networksecuritygroup-no-public-ingress"),
        _a("CKV_AZURE_10", "no SSH from the internet", "azure-network-networksecuritygroup-no-public-ingress"),
        _a("CKV_AZURE_77", "no UDP from the internet", "azure-network-networksecuritygroup-no-public-ingress"),
        _a("CKV_AZURE_160", "no HTTP from the internet", "azure-network-networksecuritygroup-no-public-ingress"),
    ],
    "azure-native:network:Subnet": [
        _a("CKV2_AZURE_31", "subnet has an NSG", "azure-network-subnet-nsg"),
    ],
    "azure-native:network:VirtualNetwork": [
        _a("CKV_AZURE_182", "at least two DNS servers", None, "the VNet uses Azure DNS (highly available); custom DNS servers are not configured"),
        _a("CKV_AZURE_183", "local DNS addresses", None, "same: Azure-provided DNS"),
    ],
    "azure-native:network:NatGateway": [], "azure-native:network:PublicIPAddress": [],
    "azure-native:network:PrivateEndpoint": [], "azure-native:network:PrivateDnsZoneGroup": [],
    "azure-native:privatedns:PrivateZone": [], "azure-native:privatedns:VirtualNetworkLink": [],
    "azure-native:authorization:RoleAssignment": [],
    "azure-native:authorization:ManagementLockAtResourceGroupLevel": [],
    "azure-native:managedidentity:UserAssignedIdentity": [],
    "azure-native:managedidentity:FederatedIdentityCredential": [],
    "azure-native:monitor:DiagnosticSetting": [],
    "azure-native:monitor:DataCollectionRule": [],
    "azure-native:monitor:DataCollectionRuleAssociation": [],
    "azure-native:monitor:ActionGroup": [], "azure-native:monitor:MetricAlert": [],
    "azure-native:keyvault:Vault": [
        _a("CKV_AZURE_42", "recoverable", "azure-keyvault-vault-recoverable"),
        _a("CKV_AZURE_110", "purge protection", "azure-keyvault-vault-recoverable"),
        _a("CKV_AZURE_111", "soft delete", "azure-keyvault-vault-recoverable"),
        _a("CKV_AZURE_109", "firewall rules", None, "the vault holds only the AKS KMS key, reached by the cluster's identity under Entra RBAC; AKS KMS with a private vault needs a private endpoint and API server VNet integration the program does not create yet (follow-up)"),
        _a("CKV_AZURE_189", "public network access disabled", None, "same as CKV_AZURE_109: AKS KMS uses the vault's public endpoint until private KMS is built"),
        _a("CKV2_AZURE_32", "private endpoint", None, "same as CKV_AZURE_109"),
    ],
    "azure-native:keyvault:Key": [
        _a("CKV_AZURE_40", "expiration date set", None, "the key rotates yearly through its rotation policy; an expiry date would stop AKS decrypting its secrets if rotation ever failed"),
        _a("CKV_AZURE_112", "HSM-backed", None, "a Standard vault's software key; HSM keys need a Premium vault (a cost choice left to the deployer)"),
    ],
    "azure-native:keyvault:Secret": [
        _a("CKV_AZURE_114", "content type set", "azure-keyvault-secret-content-type"),
        _a("CKV_AZURE_41", "expiration date set", None, "the database owner's password, rotated with the stack; Key Vault still returns an expired secret on get (expiry is advisory for secrets), so an expiry would only raise alerts, not force a rotation"),
    ],
    "azure-native:security:Pricing": [
        _a("CKV_AZURE_19", "Defender plan on the Standard tier", "azure-security-pricing-standard"),
        _a("CKV_AZURE_85", "Defender for Kubernetes (Containers) on", "azure-security-pricing-standard"),
    ],
    "azure-native:authorization:RoleDefinition": [
        _a("CKV_AZURE_39", "no custom subscription owner roles", "azure-authorization-roledefinition-no-wildcard-actions"),
    ],
    "azure-native:authorization:PolicyAssignment": [],
    "azure-native:containerservice:MaintenanceConfiguration": [],
    "azure-native:dns:Zone": [], "azure-native:dns:RecordSet": [],
    "azure-native:dns:DnssecConfig": [],
    "azure-native:trafficmanager:Profile": [], "azure-native:trafficmanager:Endpoint": [],
    "azure-native:operationalinsights:Workspace": [],
    "azure-native:resources:ResourceGroup": [],
    # ---------------------------------------------------------------- GCP
    # Secret Manager (the database owner's password): no anchor rule set has a check for it.
    "gcp:secretmanager/secret:Secret": [],
    "gcp:secretmanager/secretVersion:SecretVersion": [],
    "gcp:secretmanager/secretIamMember:SecretIamMember": [],
    "gcp:container/cluster:Cluster": [
        _a("CKV_GCP_1", "Cloud Logging", "gcp-container-cluster-logging"),
        _a("CKV_GCP_7", "legacy authorization disabled", "gcp-container-cluster-no-legacy-auth"),
        _a("CKV_GCP_8", "Cloud Monitoring", "gcp-container-cluster-logging"),
        _a("CKV_GCP_12", "network policy", "gcp-container-cluster-network-policy"),
        _a("CKV_GCP_13", "no client certificate", "gcp-container-cluster-no-legacy-auth"),
        _a("CKV_GCP_18", "control plane not public", "gcp-container-cluster-endpoint-restricted"),
        _a("CKV_GCP_20", "master authorized networks", "gcp-container-cluster-endpoint-restricted"),
        _a("CKV_GCP_21", "labels", "gcp-labels-resource-required-keys"),
        _a("CKV_GCP_23", "alias IP ranges (VPC-native)", "gcp-container-cluster-patched"),
        _a("CKV_GCP_24", "PodSecurityPolicy controller", None, "PodSecurityPolicy was removed in Kubernetes 1.25; the pod-security policies judge workloads instead"),
        _a("CKV_GCP_25", "private cluster", "multicloud-kubernetes-nodes-private-subnets"),
        _a("CKV_GCP_61", "flow logs and intranode visibility", None, "subnet flow logs are required (gcp-compute-subnetwork-flow-logs); intranode visibility costs a flow log per pod pair and is not enabled"),
        _a("CKV_GCP_64", "private nodes", "multicloud-kubernetes-nodes-private-subnets"),
        _a("CKV_GCP_65", "Google Groups for RBAC", None, "an organisation choice; access goes through IAM"),
        _a("CKV_GCP_66", "Binary Authorization", "gcp-container-cluster-binary-authorization"),
        _a("CKV_GCP_68", "secure boot", "gcp-container-nodepool-shielded-nodes"),
        _a("CKV_GCP_69", "GKE metadata server", "gcp-container-nodepool-metadata-server"),
        _a("CKV_GCP_70", "release channel", "gcp-container-cluster-patched"),
        _a("CKV_GCP_71", "shielded nodes", "gcp-container-nodepool-shielded-nodes"),
        _a("CKV_GCP_72", "integrity monitoring", "gcp-container-nodepool-shielded-nodes"),
        _a("CKV_GCP_123", "no node pools in the cluster resource", "gcp-container-cluster-separate-node-pools"),
        _a("CKV2_GCP_19", "alpha cluster disabled", "gcp-container-cluster-patched"),
    ],
    "gcp:container/nodePool:NodePool": [
        _a("CKV_GCP_9", "auto-repair", "gcp-container-nodepool-auto-repair-upgrade"),
        _a("CKV_GCP_10", "auto-upgrade", "gcp-container-nodepool-auto-repair-upgrade"),
        _a("CKV_GCP_22", "Container-Optimized OS", "gcp-container-nodepool-cos-image"),
        _a("CKV_GCP_68", "secure boot", "gcp-container-nodepool-shielded-nodes"),
        _a("CKV_GCP_69", "GKE metadata server", "gcp-container-nodepool-metadata-server"),
        _a("CKV_GCP_72", "integrity monitoring", "gcp-container-nodepool-shielded-nodes"),
    ],
    "gcp:sql/databaseInstance:DatabaseInstance": [
        _a("CKV_GCP_6", "SSL required", "gcp-sql-databaseinstance-ssl-mode"),
        _a("CKV_GCP_11", "not open to the world", "gcp-sql-databaseinstance-no-public-ip"),
        _a("CKV_GCP_14", "backups", "gcp-sql-databaseinstance-backups"),
        _a("CKV_GCP_51", "log_checkpoints on", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_52", "log_connections on", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_53", "log_disconnections on", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_54", "log_lock_waits on", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_55", "log_min_messages valid", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_56", "log_temp_files 0", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_57", "log_min_duration_statement -1", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_60", "no public IP", "gcp-sql-databaseinstance-no-public-ip"),
        _a("CKV_GCP_79", "latest major version", None, "the stack config pins POSTGRES_16; a major upgrade is a planned change"),
        _a("CKV_GCP_108", "hostnames logged", None, "log_connections records client addresses; reverse lookups on every connection slow it down"),
        _a("CKV_GCP_109", "log levels ERROR or lower", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_110", "pgAudit", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_111", "SQL statements logged", None, "statement text would copy prompts and keys into the logs; pgAudit records DDL and role changes instead"),
        _a("CKV2_GCP_13", "log_duration on", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV2_GCP_14", "log_executor_stats off", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV2_GCP_15", "log_parser_stats off", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV2_GCP_16", "log_planner_stats off", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV2_GCP_17", "log_statement_stats off", "gcp-sql-databaseinstance-logging-flags"),
    ],
    "gcp:sql/database:Database": [], "gcp:sql/user:User": [],
    "gcp:redis/instance:Instance": [
        _a("CKV_GCP_95", "AUTH", "gcp-redis-instance-auth"),
        _a("CKV_GCP_97", "in-transit encryption", "gcp-redis-instance-transit-encryption"),
    ],
    "gcp:kms/cryptoKey:CryptoKey": [
        _a("CKV_GCP_43", "rotated within 90 days", "gcp-kms-cryptokey-rotation"),
        _a("CKV_GCP_82", "protected from deletion", None, "destroying a Pulumi CryptoKey only disables its versions; the key itself cannot be deleted"),
        _a("CKV2_GCP_6", "not publicly accessible", "gcp-iam-binding-no-public-principals"),
    ],
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": [
        _a("CKV2_GCP_6", "not publicly accessible", "gcp-iam-binding-no-public-principals"),
        _a("CKV_GCP_112", "KMS policy not public", "gcp-iam-binding-no-public-principals"),
    ],
    "gcp:kms/keyRing:KeyRing": [
        _a("CKV2_GCP_8", "key ring not publicly accessible", "gcp-iam-binding-no-public-principals"),
    ],
    "gcp:projects/iAMMember:IAMMember": [
        _a("CKV_GCP_41", "no Service Account User/Token Creator at project level", "gcp-iam-binding-least-privilege"),
        _a("CKV_GCP_42", "service accounts without admin roles", "gcp-iam-binding-least-privilege"),
        _a("CKV_GCP_46", "default service account not used at project level", "gcp-iam-binding-least-privilege"),
        _a("CKV_GCP_49", "no roles that impersonate or manage service accounts", "gcp-iam-binding-least-privilege"),
        _a("CKV_GCP_117", "no basic roles at project level", "gcp-iam-binding-no-basic-roles"),
    ],
    "gcp:serviceaccount/iAMMember:IAMMember": [], "gcp:serviceaccount/account:Account": [],
    "gcp:compute/firewall:Firewall": [
        _a("CKV_GCP_2", "no unrestricted SSH", "gcp-compute-firewall-no-public-ingress"),
        _a("CKV_GCP_3", "no unrestricted RDP", "gcp-compute-firewall-no-public-ingress"),
        _a("CKV_GCP_75", "no unrestricted FTP", "gcp-compute-firewall-no-public-ingress"),
        _a("CKV_GCP_77", "no FTP port", "gcp-compute-firewall-no-public-ingress"),
        _a("CKV_GCP_88", "no unrestricted MySQL", "gcp-compute-firewall-no-public-ingress"),
        _a("CKV_GCP_106", "no unrestricted HTTP", "gcp-compute-firewall-no-public-ingress"),
        _a("CKV2_GCP_12", "no unrestricted access to all ports", "gcp-compute-firewall-no-public-ingress"),
    ],
    "gcp:compute/subnetwork:Subnetwork": [
        _a("CKV_GCP_26", "VPC flow logs", "gcp-compute-subnetwork-flow-logs"),
        _a("CKV_GCP_74", "private Google access", "gcp-compute-subnetwork-private-google-access"),
        _a("CKV_GCP_76", "private Google access for IPv6", None, "the subnets are IPv4 only"),
    ],
    "gcp:compute/network:Network": [
        _a("CKV2_GCP_18", "defines its own firewall", "gcp-compute-network-firewall"),
        _a("CKV2_GCP_2", "no legacy network", None, "the provider cannot create legacy networks any more"),
    ],
    "gcp:compute/router:Router": [], "gcp:compute/routerNat:RouterNat": [],
    "gcp:compute/globalAddress:GlobalAddress": [],
    "gcp:compute/address:Address": [],
    "gcp:servicenetworking/connection:Connection": [], "gcp:projects/service:Service": [],
    "gcp:projects/serviceIdentity:ServiceIdentity": [],
    "gcp:dns/managedZone:ManagedZone": [
        _a("CKV_GCP_16", "DNSSEC on", "multicloud-dns-zone-dnssec"),
        _a("CKV_GCP_17", "no RSASHA1 for zone- and key-signing keys", "multicloud-dns-zone-dnssec"),
    ],
    "gcp:dns/recordSet:RecordSet": [],
    "gcp:dns/dnsManagedZoneIamMember:DnsManagedZoneIamMember": [],
    "gcp:compute/healthCheck:HealthCheck": [],
    "gcp:monitoring/alertPolicy:AlertPolicy": [],
    "gcp:monitoring/notificationChannel:NotificationChannel": [],
    "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig": [],
    # ---------------------------------------------------------- Kubernetes
    "kubernetes:apps/v1:Deployment": [
        *_POD,
        _a("CKV_K8S_8", "liveness probe", "kubernetes-apps-workload-probes"),
        _a("CKV_K8S_9", "readiness probe", "kubernetes-apps-workload-probes"),
        _a("CKV2_K8S_6", "pods covered by a NetworkPolicy", "kubernetes-networking-networkpolicy-every-namespace"),
        _a("kubernetes-apps-v1-deployment-enable-read-only-root-filesystem", "read-only root filesystem", "kubernetes-apps-workload-read-only-root-filesystem"),
        _a("kubernetes-apps-v1-deployment-configure-minimum-replica-count", "minimum replica count (through its HorizontalPodAutoscaler)", "kubernetes-autoscaling-hpa-min-replicas"),
        _a("kubernetes-apps-v1-deployment-configure-recommended-labels", "recommended labels", "kubernetes-apps-workload-recommended-labels"),
    ],
    "kubernetes:batch/v1:Job": [
        *_POD,
        _a("kubernetes-batch-v1-job-enable-read-only-root-filesystem", "read-only root filesystem", "kubernetes-apps-workload-read-only-root-filesystem"),
    ],
    "kubernetes:batch/v1:CronJob": [
        *_POD,
        _a("kubernetes-batch-v1-cronjob-enable-read-only-root-filesystem", "read-only root filesystem", "kubernetes-apps-workload-read-only-root-filesystem"),
    ],
    "kubernetes:core/v1:Service": [
        _a("CKV_K8S_21", "not in the default namespace", "kubernetes-core-object-no-default-namespace"),
        _a("kubernetes-core-v1-service-disallow-load-balancer", "no LoadBalancer Services", "kubernetes-core-service-loadbalancer-ingress-only"),
    ],
    "kubernetes:core/v1:ServiceAccount": [
        _a("CKV_K8S_21", "not in the default namespace", "kubernetes-core-object-no-default-namespace"),
        _a("CKV_K8S_41", "default service accounts not used", "kubernetes-core-pod-no-token-automount"),
    ],
    "kubernetes:rbac.authorization.k8s.io/v1:Role": [
        _a("CKV_K8S_21", "not in the default namespace", "kubernetes-core-object-no-default-namespace"),
        _a("CKV_K8S_49", "no wildcards", "kubernetes-rbac-role-no-wildcards"),
        _a("CKV_K8S_157", "no bind permission", "kubernetes-rbac-role-no-wildcards"),
        _a("CKV_K8S_158", "no escalate permission", "kubernetes-rbac-role-no-wildcards"),
        _a("CKV2_K8S_1", "no escalation through other RoleBindings", "kubernetes-rbac-role-no-wildcards"),
        _a("CKV2_K8S_2", "no create on pods/exec or nodes/proxy", "kubernetes-rbac-role-no-wildcards"),
        _a("CKV2_K8S_3", "no impersonate", "kubernetes-rbac-role-no-wildcards"),
        _a("CKV2_K8S_4", "no write on services/status", "kubernetes-rbac-role-no-wildcards"),
        _a("CKV2_K8S_5", "cannot read all secrets", "kubernetes-rbac-role-no-wildcards"),
    ],
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": [
        _a("CKV_K8S_21", "not in the default namespace", "kubernetes-core-object-no-default-namespace"),
        _a("CKV_K8S_42", "default service accounts not bound", "kubernetes-rbac-binding-least-privilege"),
    ],
    "kubernetes:core/v1:ConfigMap": [
        _a("CKV_K8S_21", "not in the default namespace", "kubernetes-core-object-no-default-namespace"),
    ],
    "kubernetes:core/v1:Secret": [
        _a("CKV_K8S_21", "not in the default namespace", "kubernetes-core-object-no-default-namespace"),
    ],
    "kubernetes:networking.k8s.io/v1:Ingress": [
        _a("CKV_K8S_21", "not in the default namespace", "kubernetes-core-object-no-default-namespace"),
        _a("CKV_K8S_152", "no snippets with Lua code", "kubernetes-networking-ingress-no-snippets"),
        _a("CKV_K8S_153", "no snippets", "kubernetes-networking-ingress-no-snippets"),
        _a("CKV_K8S_154", "no snippets with alias statements", "kubernetes-networking-ingress-no-snippets"),
    ],
    "kubernetes:policy/v1:PodDisruptionBudget": [
        _a("kubernetes-policy-v1-poddisruptionbudget-disallow-zero-voluntary-disruption", "allows voluntary disruption", "kubernetes-policy-poddisruptionbudget-allows-disruption"),
    ],
    "kubernetes:core/v1:Namespace": [],
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": [],
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": [],
    "kubernetes:cert-manager.io/v1:Certificate": [],
    "kubernetes:cert-manager.io/v1:ClusterIssuer": [],
    "kubernetes:helm.sh/v3:Release": [],
    # The edge (Envoy Gateway): no anchor rule set has checks for the Gateway API or
    # Envoy Gateway kinds; kubernetes-gateway-public-listener-tls judges Gateway and
    # HTTPRoute, kubernetes-gateway-console-allowed-cidrs the console's SecurityPolicy,
    # and checkov scans them (tests/policies/test_checkov.py).
    "kubernetes:gateway.networking.k8s.io/v1:GatewayClass": [],
    "kubernetes:gateway.networking.k8s.io/v1:Gateway": [],
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute": [],
    "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy": [],
    "kubernetes:gateway.envoyproxy.io/v1alpha1:ClientTrafficPolicy": [],
    "kubernetes:gateway.envoyproxy.io/v1alpha1:BackendTrafficPolicy": [],
    "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy": [],
    "command:local:Command": [],
    "random:index/randomId:RandomId": [], "random:index/randomPassword:RandomPassword": [],
}
# fmt: on


def rows() -> list[tuple[str, Anchor]]:
    """Every (type, anchor) pair of the catalog."""
    return [(t, a) for t, anchors in CATALOG.items() for a in anchors]


def covered_share() -> float:
    """Covered anchor checks over all relevant ones."""
    all_rows = rows()
    return sum(1 for _, a in all_rows if a.policy) / len(all_rows)


def render() -> str:
    """``docs/policy-coverage.md``: the table, per resource type."""
    all_rows = rows()
    covered = sum(1 for _, a in all_rows if a.policy)
    lines = [
        "# Policy pack coverage of the anchor rule sets",
        "",
        "Generated from `policies/coverage.py` (`python -m policies.coverage > "
        "docs/policy-coverage.md`); a test fails when this file, the catalog or the pack "
        "drift apart. Anchors: checkov (`CKV_*`), Pulumi's compliance-ready policies "
        "(`aws-...`, `azurenative-...`, `kubernetes-...`) and AWSGuard (`awsguard:`). Ids were "
        "read from checkov 3.3.30's own check list, the compliance-policies repository and "
        "the AWSGuard rules; checks for another engine (MySQL or SQL Server flags on a "
        "PostgreSQL instance) are not listed.",
        "",
        f"**{covered} of {len(all_rows)} relevant anchor checks covered "
        f"({covered / len(all_rows):.0%}; target {TARGET:.0%}).** Every uncovered one says why.",
        "",
    ]
    for type_token, anchors in CATALOG.items():
        lines.append(f"## `{type_token}`")
        lines.append("")
        if not anchors:
            lines.append(f"_{NO_ANCHOR}._")
            lines.append("")
            continue
        lines.append("| Anchor check | What | Covered by | Why not |")
        lines.append("| --- | --- | --- | --- |")
        for a in anchors:
            policy = f"`{a.policy}`" if a.policy else "—"
            lines.append(f"| `{a.check}` | {a.what} | {policy} | {a.reason} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
