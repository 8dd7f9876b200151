"""Coverage of the anchor rule sets: which policy covers each relevant anchor check.

The anchors are the public rule sets a security reviewer compares a pack with:
checkov (``CKV_*``/``CKV2_*`` ids), Pulumi's compliance-ready policies
(``aws-...``/``azure-...``/``gcp-...`` names) and AWSGuard (``awsguard:`` names).
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


NO_ANCHOR = "no anchor rule set has a security check for this type"

# fmt: off
CATALOG: dict[str, list[Anchor]] = {
    # ------------------------------------------------------------------ AWS
    "aws:eks/cluster:Cluster": [
        _a("CKV_AWS_37", "control-plane logging enabled", "aws-eks-cluster-control-plane-logs"),
        _a("CKV_AWS_38", "public endpoint not open to 0.0.0.0/0", "aws-eks-cluster-endpoint-restricted"),
        _a("CKV_AWS_39", "public endpoint disabled or restricted", "aws-eks-cluster-endpoint-restricted"),
        _a("CKV_AWS_58", "secrets encryption enabled", "aws-eks-cluster-secrets-encryption"),
        _a("CKV_AWS_339", "supported Kubernetes version", None, "the config model only accepts supported minor versions (kubernetesVersion pattern), before the plan"),
        _a("aws-eks-cluster-disallow-api-endpoint-public-access", "API endpoint not public", "aws-eks-cluster-endpoint-restricted"),
        _a("aws-eks-cluster-enable-secrets-encryption", "secrets encryption", "aws-eks-cluster-secrets-encryption"),
        _a("aws-eks-cluster-configure-secrets-encryption-with-kms", "secrets encrypted with a KMS key", "aws-eks-cluster-secrets-encryption"),
    ],
    "aws:eks/nodeGroup:NodeGroup": [
        _a("CKV_AWS_100", "no SSH remote access from anywhere", "multicloud-kubernetes-nodes-private-subnets"),
    ],
    "aws:ec2/launchTemplate:LaunchTemplate": [
        _a("CKV_AWS_79", "IMDSv2 required", "aws-ec2-launchtemplate-imdsv2"),
        _a("CKV_AWS_341", "metadata hop limit 1", "aws-ec2-launchtemplate-imdsv2"),
        _a("CKV_AWS_88", "no public IP", "aws-ec2-launchtemplate-no-public-ip"),
        _a("CKV_AWS_8", "block devices encrypted", "aws-ec2-launchtemplate-ebs-encrypted"),
        _a("CKV_AWS_46", "no secrets in user data", None, "user data is not set by the program; secrets reach pods through Kubernetes Secrets (kubernetes resources are checked by checkov in the tests)"),
        _a("aws-ec2-launchtemplate-disallow-unencrypted-root-volume", "root volume encrypted", "aws-ec2-launchtemplate-ebs-encrypted"),
        _a("aws-ec2-launchtemplate-disallow-public-ip", "no public IP", "aws-ec2-launchtemplate-no-public-ip"),
    ],
    "aws:ec2/instance:Instance": [
        _a("CKV_AWS_79", "IMDSv2 required", "aws-ec2-launchtemplate-imdsv2"),
        _a("CKV_AWS_88", "no public IP", "aws-ec2-launchtemplate-no-public-ip"),
        _a("CKV_AWS_8", "EBS encrypted", "aws-ec2-launchtemplate-ebs-encrypted"),
        _a("aws-ec2-instance-disallow-public-ip", "no public IP", "aws-ec2-launchtemplate-no-public-ip"),
        _a("aws-ec2-instance-disallow-unencrypted-root-volume", "root volume encrypted", "aws-ec2-launchtemplate-ebs-encrypted"),
        _a("awsguard:ec2-instance-no-public-ip", "no public IP", "aws-ec2-launchtemplate-no-public-ip"),
    ],
    "aws:ebs/volume:Volume": [
        _a("CKV_AWS_3", "EBS volume encrypted", "aws-ebs-volume-encrypted"),
        _a("CKV_AWS_189", "encrypted with a customer-managed key", "aws-ebs-volume-encrypted"),
        _a("aws-ebs-volume-disallow-unencrypted-volume", "volume encrypted", "aws-ebs-volume-encrypted"),
        _a("awsguard:encrypted-volumes", "volumes encrypted", "aws-ebs-volume-encrypted"),
    ],
    "aws:ebs/encryptionByDefault:EncryptionByDefault": [
        _a("CKV_AWS_106", "EBS encryption by default", "aws-ec2-launchtemplate-ebs-encrypted"),
    ],
    "aws:ec2/securityGroup:SecurityGroup": [
        _a("CKV_AWS_24", "no SSH from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_25", "no RDP from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_260", "no port 80 from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_277", "no all-ports ingress from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_23", "every rule has a description", None, "documentation, not exposure: the program describes each group; not enforced"),
        _a("CKV2_AWS_5", "security group attached to a resource", None, "needs the cloud's inventory (attachments of groups made elsewhere)"),
        _a("aws-ec2-securitygroup-disallow-inbound-http-traffic", "no HTTP from the internet", "aws-ec2-securitygroup-no-public-ingress"),
        _a("aws-ec2-securitygroup-missing-description", "has a description", None, "documentation, not exposure"),
        _a("awsguard:ec2-security-group-no-public-ingress", "restricted common ports", "aws-ec2-securitygroup-no-public-ingress"),
    ],
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": [
        _a("CKV_AWS_24", "no SSH from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_25", "no RDP from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_260", "no port 80 from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_277", "no all-ports ingress from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
    ],
    "aws:ec2/securityGroupRule:SecurityGroupRule": [
        _a("CKV_AWS_24", "no SSH from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_25", "no RDP from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
        _a("CKV_AWS_277", "no all-ports ingress from 0.0.0.0/0", "aws-ec2-securitygroup-no-public-ingress"),
    ],
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": [
        _a("CKV2_AWS_12", "default security group restricts all traffic", "aws-ec2-defaultsecuritygroup-no-rules"),
    ],
    "aws:ec2/vpc:Vpc": [
        _a("CKV2_AWS_11", "VPC flow logging enabled", "aws-ec2-vpc-flow-logs"),
        _a("CKV2_AWS_12", "default security group restricts all traffic", "aws-ec2-defaultsecuritygroup-no-rules"),
        _a("awsguard:vpc-flow-logs-enabled", "flow logs enabled", "aws-ec2-vpc-flow-logs"),
    ],
    "aws:ec2/subnet:Subnet": [
        _a("CKV_AWS_130", "no public IPs assigned on launch", "multicloud-kubernetes-nodes-private-subnets"),
    ],
    "aws:ec2/flowLog:FlowLog": [],
    "aws:ec2/eip:Eip": [
        _a("CKV2_AWS_19", "EIP attached to an instance", None, "the program's EIPs belong to NAT gateways in the same stack; the check needs the cloud's inventory"),
    ],
    "aws:ec2/natGateway:NatGateway": [], "aws:ec2/internetGateway:InternetGateway": [],
    "aws:ec2/routeTable:RouteTable": [], "aws:ec2/routeTableAssociation:RouteTableAssociation": [],
    "aws:rds/instance:Instance": [
        _a("CKV_AWS_16", "storage encrypted", "aws-rds-instance-storage-encrypted"),
        _a("CKV_AWS_17", "not publicly accessible", "aws-rds-instance-not-public"),
        _a("CKV_AWS_129", "logs exported to CloudWatch", "aws-rds-instance-log-exports"),
        _a("CKV_AWS_133", "backup retention", "aws-rds-instance-backups"),
        _a("CKV_AWS_157", "Multi-AZ", "aws-rds-instance-multi-az"),
        _a("CKV_AWS_161", "IAM database authentication", None, "the gateway authenticates with a generated password over TLS; IAM auth tokens expire every 15 minutes and the gateway has no refresher yet"),
        _a("CKV_AWS_118", "enhanced monitoring", None, "operational metric, not a security control; Performance Insights is on"),
        _a("CKV_AWS_226", "auto minor version upgrade", None, "operational; on in the program, not enforced"),
        _a("CKV_AWS_293", "deletion protection", "multicloud-database-instance-deletion-protection"),
        _a("CKV_AWS_353", "Performance Insights", None, "operational metric, not a security control"),
        _a("CKV_AWS_354", "Performance Insights encrypted with a CMK", None, "Performance Insights is optional; its key defaults to the account key"),
        _a("CKV2_AWS_60", "copy tags to snapshots", "aws-tags-resource-required-keys"),
        _a("CKV2_AWS_69", "PostgreSQL encrypted in transit", "aws-rds-parametergroup-force-ssl"),
        _a("aws-rds-instance-disallow-public-access", "not public", "aws-rds-instance-not-public"),
        _a("aws-rds-instance-storage-encrypted", "storage encrypted", "aws-rds-instance-storage-encrypted"),
        _a("aws-rds-instance-configure-customer-managed-key", "customer-managed key", "aws-rds-instance-customer-managed-key"),
        _a("aws-rds-instance-enable-backup-retention", "backups kept", "aws-rds-instance-backups"),
        _a("awsguard:rds-instance-public-access-check", "not public", "aws-rds-instance-not-public"),
        _a("awsguard:rds-storage-encrypted", "storage encrypted", "aws-rds-instance-storage-encrypted"),
        _a("awsguard:rds-instance-backup-enabled", "backups", "aws-rds-instance-backups"),
        _a("awsguard:rds-multi-az-support", "Multi-AZ", "aws-rds-instance-multi-az"),
    ],
    "aws:rds/parameterGroup:ParameterGroup": [
        _a("CKV2_AWS_69", "rds.force_ssl on PostgreSQL", "aws-rds-parametergroup-force-ssl"),
    ],
    "aws:rds/subnetGroup:SubnetGroup": [],
    "aws:elasticache/replicationGroup:ReplicationGroup": [
        _a("CKV_AWS_29", "encrypted at rest", "aws-elasticache-replicationgroup-encrypted-at-rest"),
        _a("CKV_AWS_30", "encrypted in transit", "aws-elasticache-replicationgroup-encrypted-in-transit"),
        _a("CKV_AWS_31", "in transit with an auth token", "aws-elasticache-replicationgroup-auth"),
        _a("CKV_AWS_191", "encrypted with a KMS CMK", "aws-elasticache-replicationgroup-customer-managed-key"),
        _a("aws-elasticache-replicationgroup-configure-encryption-at-rest", "at rest", "aws-elasticache-replicationgroup-encrypted-at-rest"),
        _a("aws-elasticache-replicationgroup-configure-encryption-in-transit", "in transit", "aws-elasticache-replicationgroup-encrypted-in-transit"),
        _a("aws-elasticache-replicationgroup-configure-customer-managed-key", "customer-managed key", "aws-elasticache-replicationgroup-customer-managed-key"),
        _a("aws-elasticache-replicationgroup-enable-auth-token", "auth token", "aws-elasticache-replicationgroup-auth"),
        _a("aws-elasticache-replicationgroup-enable-automatic-failover", "automatic failover", "aws-elasticache-replicationgroup-multi-az"),
        _a("aws-elasticache-replicationgroup-enable-multi-az", "Multi-AZ", "aws-elasticache-replicationgroup-multi-az"),
    ],
    "aws:elasticache/subnetGroup:SubnetGroup": [],
    "aws:kms/key:Key": [
        _a("CKV_AWS_7", "rotation enabled", "aws-kms-key-rotation"),
        _a("CKV_AWS_33", "key policy has no wildcard principal", "aws-kms-key-policy-not-public"),
        _a("CKV_AWS_227", "key is enabled", None, "a disabled key breaks the stack at once (no silent exposure)"),
        _a("CKV2_AWS_64", "key policy defined", None, "a key without a policy gets the account-root default policy, which the key-policy rule accepts"),
        _a("aws-kms-key-enable-key-rotation", "rotation", "aws-kms-key-rotation"),
        _a("awsguard:cmk-backing-key-rotation-enabled", "rotation", "aws-kms-key-rotation"),
    ],
    "aws:kms/alias:Alias": [],
    "aws:cloudwatch/logGroup:LogGroup": [
        _a("CKV_AWS_158", "encrypted with KMS", "aws-cloudwatch-loggroup-kms"),
        _a("CKV_AWS_338", "retention at least one year", "aws-cloudwatch-loggroup-retention"),
        _a("CKV_AWS_66", "retention set", None, "unset retention keeps logs forever, which the retention rule accepts"),
        _a("aws-cloudwatch-loggroup-configure-customer-managed-key", "customer-managed key", "aws-cloudwatch-loggroup-kms"),
        _a("aws-cloudwatch-loggroup-configure-retention", "retention configured", "aws-cloudwatch-loggroup-retention"),
    ],
    "aws:cloudwatch/metricAlarm:MetricAlarm": [
        _a("CKV_AWS_319", "alarm actions enabled", None, "operational, not a security control"),
    ],
    "aws:iam/role:Role": [
        _a("CKV_AWS_60", "trust policy does not allow any principal", "aws-iam-role-trust-not-public"),
        _a("CKV_AWS_61", "trust policy does not allow all services", "aws-iam-role-trust-not-public"),
        _a("CKV_AWS_274", "AdministratorAccess not attached", "aws-iam-policy-no-administrator"),
        _a("CKV_AWS_358", "OIDC trust pins the subject", "aws-iam-role-trust-not-public"),
        _a("aws-iam-role-disallow-inline-policy", "no inline policies", None, "inline policies are judged like attached ones (administrator rule); their form is a style choice"),
    ],
    "aws:iam/rolePolicy:RolePolicy": [
        _a("CKV_AWS_62", "no full administrative privileges", "aws-iam-policy-no-administrator"),
        _a("CKV_AWS_63", "no '*' actions", "aws-iam-policy-no-administrator"),
        _a("CKV_AWS_286", "no privilege escalation", "aws-iam-policy-no-administrator"),
        _a("CKV_AWS_287", "no credentials exposure", None, "needs a per-action catalogue of credential-returning APIs; reviewed by hand (the program's policies are listed in its tests)"),
        _a("CKV_AWS_288", "no data exfiltration", None, "same: needs a per-action catalogue"),
        _a("CKV_AWS_289", "no permissions management without constraints", "aws-iam-policy-no-administrator"),
        _a("CKV_AWS_290", "no write access without constraints", None, "same: needs a per-action catalogue; the program's policies scope each write to named resources"),
        _a("CKV_AWS_355", "no '*' resource for restrictable actions", None, "same: needs a per-action catalogue of resource-level permissions"),
    ],
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": [
        _a("CKV_AWS_274", "AdministratorAccess not attached", "aws-iam-policy-no-administrator"),
    ],
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": [],
    "aws:eks/accessEntry:AccessEntry": [], "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": [],
    "aws:route53/zone:Zone": [
        _a("CKV2_AWS_38", "DNSSEC signing", None, "the gateway's name is served through a health-checked latency/weighted record set; DNSSEC with Route 53 needs a KMS key in us-east-1 and a DS record at the registrar, outside the stack"),
        _a("CKV2_AWS_39", "query logging", None, "Route 53 query logs need a log group in us-east-1 with a resource policy for Route 53; not yet created by the program (follow-up)"),
    ],
    "aws:route53/record:Record": [
        _a("CKV2_AWS_23", "record points at a resource", None, "records point at the clusters' load balancers, created in the same stack"),
    ],
    "aws:route53/healthCheck:HealthCheck": [],
    "aws:s3/bucket:Bucket": [
        _a("CKV_AWS_19", "default encryption", "aws-s3-bucket-default-encryption"),
        _a("CKV_AWS_145", "encrypted with KMS", "aws-s3-bucket-default-encryption"),
        _a("CKV_AWS_53", "block public ACLs", "aws-s3-bucket-public-access-block"),
        _a("CKV_AWS_54", "block public policy", "aws-s3-bucket-public-access-block"),
        _a("CKV_AWS_55", "ignore public ACLs", "aws-s3-bucket-public-access-block"),
        _a("CKV_AWS_56", "restrict public buckets", "aws-s3-bucket-public-access-block"),
        _a("CKV2_AWS_6", "public access block present", "aws-s3-bucket-public-access-block"),
        _a("CKV_AWS_18", "access logging", None, "no bucket holds request data; the state bucket (bootstrap) logs through CloudTrail"),
        _a("CKV_AWS_21", "versioning", None, "resilience of the state bucket is the bootstrap's job (it enables versioning)"),
        _a("CKV_AWS_144", "cross-region replication", None, "disaster recovery choice, not a security control"),
    ],
    # --------------------------------------------------------------- Azure
    "azure-native:containerservice:ManagedCluster": [
        _a("CKV_AZURE_4", "AKS logging to Azure Monitor", None, "the omsagent add-on ships logs to the workspace; the Defender rule requires the workspace too"),
        _a("CKV_AZURE_5", "RBAC enabled", "azure-containerservice-managedcluster-rbac"),
        _a("CKV_AZURE_6", "API server authorized IP ranges", "azure-containerservice-managedcluster-api-restricted"),
        _a("CKV_AZURE_7", "network policy", "azure-containerservice-managedcluster-network-policy"),
        _a("CKV_AZURE_115", "private cluster", "azure-containerservice-managedcluster-api-restricted"),
        _a("CKV_AZURE_116", "Azure Policy add-on", None, "on in the program; a governance add-on, not enforced by the pack"),
        _a("CKV_AZURE_117", "disk encryption set", "azure-containerservice-managedcluster-host-encryption"),
        _a("CKV_AZURE_141", "local admin account disabled", "azure-containerservice-managedcluster-local-accounts-disabled"),
        _a("CKV_AZURE_170", "paid SKU with uptime SLA", None, "availability tier is a cost decision"),
        _a("CKV_AZURE_171", "automatic upgrade channel", None, "on in the program (patch); operational"),
        _a("CKV_AZURE_172", "secrets store CSI autorotation", None, "the gateway reads secrets from Kubernetes Secrets, not the CSI driver"),
        _a("CKV_AZURE_226", "ephemeral OS disks", None, "host encryption covers OS disks; ephemeral disks are a performance choice"),
        _a("CKV_AZURE_227", "encryption at host", "azure-containerservice-managedcluster-host-encryption"),
        _a("CKV_AZURE_232", "system pool for critical pods only", None, "the program taints the system pool; scheduling, not security"),
        _a("azure-containerservice-managedcluster-enable-rbac", "RBAC", "azure-containerservice-managedcluster-rbac"),
        _a("azure-containerservice-managedcluster-disallow-public-ip", "no node public IPs", "azure-containerservice-managedcluster-no-node-public-ip"),
        _a("azure-containerservice-managedcluster-configure-defender", "Defender for Containers", "azure-containerservice-managedcluster-defender"),
        _a("azure-containerservice-managedcluster-configure-kms", "Key Vault KMS for secrets", "azure-containerservice-managedcluster-kms"),
    ],
    "azure-native:containerservice:AgentPool": [
        _a("CKV_AZURE_227", "encryption at host", "azure-containerservice-agentpool-host-encryption"),
        _a("azure-containerservice-agentpool-disallow-public-ip", "no node public IPs", "azure-containerservice-agentpool-no-node-public-ip"),
    ],
    "azure-native:dbforpostgresql:Server": [
        _a("CKV_AZURE_136", "geo-redundant backups", "azure-dbforpostgresql-server-high-availability"),
        _a("CKV_AZURE_68", "public network access disabled", "azure-dbforpostgresql-server-no-public-access"),
        _a("CKV2_AZURE_57", "private endpoint or delegated subnet", "azure-dbforpostgresql-server-no-public-access"),
        _a("CKV_AZURE_147", "TLS 1.2 (ssl_min_protocol_version)", "azure-dbforpostgresql-configuration-secure-transport"),
        _a("CKV2_AZURE_42", "customer-managed key", "azure-dbforpostgresql-server-customer-managed-key"),
        _a("azure-dbforpostgresql-server-enable-high-availability", "zone-redundant HA", "azure-dbforpostgresql-server-high-availability"),
    ],
    "azure-native:dbforpostgresql:Configuration": [
        _a("CKV_AZURE_29", "require_secure_transport on", "azure-dbforpostgresql-configuration-secure-transport"),
        _a("CKV_AZURE_30", "log_checkpoints on", None, "Azure defaults log_checkpoints on; not overridden by the program"),
        _a("CKV_AZURE_31", "log_connections on", None, "Azure defaults log_connections on; not overridden by the program"),
        _a("CKV_AZURE_32", "connection_throttling on", None, "Azure defaults connection throttling on; not overridden by the program"),
    ],
    "azure-native:dbforpostgresql:Database": [],
    "azure-native:redisenterprise:RedisEnterprise": [
        _a("CKV_AZURE_91", "TLS 1.2 minimum", "azure-redisenterprise-redisenterprise-minimum-tls"),
        _a("CKV_AZURE_89", "public network access disabled", "azure-redisenterprise-redisenterprise-no-public-access"),
        _a("azure-redisenterprise-redisenterprise-configure-customer-managed-key", "customer-managed key", "azure-redisenterprise-redisenterprise-customer-managed-key"),
        _a("azure-redisenterprise-redisenterprise-enable-high-availability", "replication", "azure-redisenterprise-redisenterprise-high-availability"),
    ],
    "azure-native:redisenterprise:Database": [
        _a("CKV_AZURE_15", "TLS-only client protocol", "azure-redisenterprise-database-encrypted-protocol"),
    ],
    "azure-native:network:NetworkSecurityGroup": [
        _a("CKV_AZURE_9", "no RDP from the internet", "azure-network-networksecuritygroup-no-public-ingress"),
        _a("CKV_AZURE_10", "no SSH from the internet", "azure-network-networksecuritygroup-no-public-ingress"),
        _a("CKV_AZURE_77", "no UDP from the internet", "azure-network-networksecuritygroup-no-public-ingress"),
        _a("CKV_AZURE_160", "no HTTP from the internet", "azure-network-networksecuritygroup-no-public-ingress"),
        _a("CKV_AZURE_12", "NSG flow logs retained", None, "NSG flow logs are retired by Azure (no new ones after June 2025); VNet flow logs need a Network Watcher and storage account the program does not create yet (follow-up)"),
    ],
    "azure-native:network:Subnet": [
        _a("CKV2_AZURE_31", "subnet has an NSG", None, "the program attaches an NSG to every subnet it creates; the delegated subnets of PaaS services cannot take all rules"),
    ],
    "azure-native:network:VirtualNetwork": [], "azure-native:network:NatGateway": [],
    "azure-native:network:PublicIPAddress": [], "azure-native:network:PrivateEndpoint": [],
    "azure-native:network:PrivateDnsZoneGroup": [], "azure-native:privatedns:PrivateZone": [],
    "azure-native:privatedns:VirtualNetworkLink": [],
    "azure-native:authorization:RoleAssignment": [
        _a("CKV_AZURE_39", "no custom subscription owner roles", "azure-authorization-roleassignment-no-privileged-broad-scope"),
        _a("CKV2_AZURE_...:owner-at-subscription", "no Owner/Contributor at subscription scope (issue's own rule)", "azure-authorization-roleassignment-no-privileged-broad-scope"),
    ],
    "azure-native:authorization:ManagementLockAtResourceGroupLevel": [],
    "azure-native:managedidentity:UserAssignedIdentity": [],
    "azure-native:managedidentity:FederatedIdentityCredential": [],
    "azure-native:monitor:DiagnosticSetting": [],
    "azure-native:operationalinsights:Workspace": [],
    "azure-native:resources:ResourceGroup": [],
    "azure-native:storage:StorageAccount": [
        _a("CKV_AZURE_3", "secure transfer required", "azure-storage-storageaccount-secure-transfer"),
        _a("CKV_AZURE_44", "TLS 1.2 minimum", "azure-storage-storageaccount-secure-transfer"),
        _a("CKV_AZURE_59", "public access disabled", "azure-storage-storageaccount-network-deny"),
        _a("CKV_AZURE_35", "default network access deny", "azure-storage-storageaccount-network-deny"),
        _a("CKV_AZURE_190", "no public blob access", "azure-storage-storageaccount-no-public-blob"),
    ],
    # ---------------------------------------------------------------- GCP
    "gcp:container/cluster:Cluster": [
        _a("CKV_GCP_1", "Stackdriver logging", None, "loggingConfig is set by the program; the cluster logs by default"),
        _a("CKV_GCP_7", "legacy ABAC disabled", "gcp-container-cluster-no-legacy-auth"),
        _a("CKV_GCP_12", "network policy", "gcp-container-cluster-network-policy"),
        _a("CKV_GCP_13", "no client certificate", "gcp-container-cluster-no-legacy-auth"),
        _a("CKV_GCP_18", "master authorized networks", "gcp-container-cluster-endpoint-restricted"),
        _a("CKV_GCP_20", "master authorized networks enabled", "gcp-container-cluster-endpoint-restricted"),
        _a("CKV_GCP_25", "private cluster", "multicloud-kubernetes-nodes-private-subnets"),
        _a("CKV_GCP_61", "VPC flow logs / intranode visibility", "gcp-compute-subnetwork-flow-logs"),
        _a("CKV_GCP_64", "private nodes", "multicloud-kubernetes-nodes-private-subnets"),
        _a("CKV_GCP_65", "Google Groups for RBAC", None, "access goes through IAM and Workload Identity; groups are an organisation choice"),
        _a("CKV_GCP_66", "Binary Authorization", "gcp-container-cluster-binary-authorization"),
        _a("CKV_GCP_69", "GKE metadata server", "gcp-container-nodepool-metadata-server"),
        _a("CKV_GCP_71", "shielded nodes", "gcp-container-nodepool-shielded-nodes"),
        _a("CKV_GCP_70", "release channel", None, "on in the program (REGULAR); operational"),
        _a("CKV_GCP_21", "resource labels", "gcp-labels-resource-required-keys"),
        _a("CKV_GCP_24", "PodSecurityPolicy", None, "PodSecurityPolicy was removed in Kubernetes 1.25; the pod-security policies judge workloads instead"),
        _a("gcp-container-cluster-configure-workload-identity", "Workload Identity", "gcp-container-cluster-workload-identity"),
        _a("gcp-container-cluster-enable-secrets-encryption", "application-layer secrets encryption", "gcp-container-cluster-secrets-encryption"),
    ],
    "gcp:container/nodePool:NodePool": [
        _a("CKV_GCP_9", "auto-repair", "gcp-container-nodepool-auto-repair-upgrade"),
        _a("CKV_GCP_10", "auto-upgrade", "gcp-container-nodepool-auto-repair-upgrade"),
        _a("CKV_GCP_22", "Container-Optimized OS", None, "COS_CONTAINERD in the program; image choice, shielded boot is enforced"),
        _a("CKV_GCP_68", "secure boot", "gcp-container-nodepool-shielded-nodes"),
        _a("CKV_GCP_72", "integrity monitoring", "gcp-container-nodepool-shielded-nodes"),
        _a("CKV_GCP_69", "GKE metadata server", "gcp-container-nodepool-metadata-server"),
    ],
    "gcp:sql/databaseInstance:DatabaseInstance": [
        _a("CKV_GCP_6", "SSL required", "gcp-sql-databaseinstance-ssl-mode"),
        _a("CKV_GCP_11", "no public IP / 0.0.0.0/0", "gcp-sql-databaseinstance-no-public-ip"),
        _a("CKV_GCP_14", "backups", "gcp-sql-databaseinstance-backups"),
        _a("CKV_GCP_60", "no public IP", "gcp-sql-databaseinstance-no-public-ip"),
        _a("CKV_GCP_108", "log_connections", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_109", "log_disconnections", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_110", "pgAudit", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_51", "log_checkpoints", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_54", "log_lock_waits", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_56", "log_temp_files 0", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_57", "log_min_duration_statement -1", "gcp-sql-databaseinstance-logging-flags"),
        _a("CKV_GCP_79", "latest major version", None, "the config model pins POSTGRES_16; upgrades are planned changes"),
        _a("gcp-sql-databaseinstance-configure-customer-managed-key", "CMEK", "gcp-sql-databaseinstance-customer-managed-key"),
        _a("gcp-sql-databaseinstance-enable-high-availability", "regional HA", "gcp-sql-databaseinstance-high-availability"),
        _a("gcp-sql-databaseinstance-enable-point-in-time-recovery", "PITR", "gcp-sql-databaseinstance-high-availability"),
        _a("gcp-sql-databaseinstance-enable-deletion-protection", "deletion protection", "multicloud-database-instance-deletion-protection"),
    ],
    "gcp:sql/database:Database": [], "gcp:sql/user:User": [],
    "gcp:redis/instance:Instance": [
        _a("CKV_GCP_95", "AUTH enabled", "gcp-redis-instance-auth"),
        _a("CKV_GCP_97", "transit encryption", "gcp-redis-instance-transit-encryption"),
        _a("gcp-redis-instance-configure-customer-managed-key", "CMEK", "gcp-redis-instance-customer-managed-key"),
        _a("gcp-redis-instance-enable-high-availability", "STANDARD_HA", "gcp-redis-instance-high-availability"),
    ],
    "gcp:kms/cryptoKey:CryptoKey": [
        _a("CKV_GCP_43", "rotation at most 90 days", "gcp-kms-cryptokey-rotation"),
        _a("CKV_GCP_82", "key protected from deletion", None, "Pulumi keeps KMS keys on destroy (the provider only disables versions)"),
    ],
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": [
        _a("CKV_GCP_...:kms-public", "key not public (allUsers)", "gcp-iam-binding-no-public-principals"),
    ],
    "gcp:kms/keyRing:KeyRing": [],
    "gcp:projects/iAMMember:IAMMember": [
        _a("CKV_GCP_41", "no basic roles / service account user at project", "gcp-iam-binding-no-basic-roles"),
        _a("CKV_GCP_42", "no service account with admin or basic role", "gcp-iam-binding-no-basic-roles"),
        _a("CKV_GCP_49", "no default service account roles", None, "the program runs nodes and workloads as dedicated accounts; default accounts are never granted"),
        _a("gcp-projects-iammember-disallow-public-members", "no allUsers", "gcp-iam-binding-no-public-principals"),
    ],
    "gcp:serviceaccount/iAMMember:IAMMember": [
        _a("CKV_GCP_...:sa-public", "no allUsers on a service account", "gcp-iam-binding-no-public-principals"),
    ],
    "gcp:serviceaccount/account:Account": [],
    "gcp:compute/firewall:Firewall": [
        _a("CKV_GCP_2", "no SSH from 0.0.0.0/0", "gcp-compute-firewall-no-public-ingress"),
        _a("CKV_GCP_3", "no RDP from 0.0.0.0/0", "gcp-compute-firewall-no-public-ingress"),
        _a("CKV_GCP_106", "no HTTP from 0.0.0.0/0", "gcp-compute-firewall-no-public-ingress"),
        _a("CKV_GCP_77", "no FTP from 0.0.0.0/0", "gcp-compute-firewall-no-public-ingress"),
        _a("CKV_GCP_88", "no MySQL from 0.0.0.0/0", "gcp-compute-firewall-no-public-ingress"),
    ],
    "gcp:compute/subnetwork:Subnetwork": [
        _a("CKV_GCP_26", "VPC flow logs", "gcp-compute-subnetwork-flow-logs"),
        _a("CKV_GCP_74", "private Google access", None, "on in the program; reachability, not exposure"),
    ],
    "gcp:compute/network:Network": [
        _a("CKV_GCP_...:no-default-network", "custom-mode network", None, "the program creates custom-mode networks only (autoCreateSubnetworks false)"),
    ],
    "gcp:compute/router:Router": [], "gcp:compute/routerNat:RouterNat": [],
    "gcp:compute/globalAddress:GlobalAddress": [],
    "gcp:servicenetworking/connection:Connection": [], "gcp:projects/service:Service": [],
    # ---------------------------------------------------------- Kubernetes
    "kubernetes:apps/v1:Deployment": [
        _a("CKV_K8S_1/CKV_K8S_16", "no privileged containers", "kubernetes-apps-workload-no-privileged"),
        _a("CKV_K8S_20", "no privilege escalation", "kubernetes-apps-workload-no-privileged"),
        _a("CKV_K8S_6/CKV_K8S_23", "run as non-root", "kubernetes-apps-workload-run-as-non-root"),
        _a("CKV_K8S_40", "high UID", "kubernetes-apps-workload-run-as-non-root"),
        _a("CKV_K8S_22", "read-only root filesystem", "kubernetes-apps-workload-read-only-root-filesystem"),
        _a("CKV_K8S_11/CKV_K8S_13", "CPU and memory limits", "kubernetes-apps-workload-resource-limits"),
        _a("CKV_K8S_17/CKV_K8S_18/CKV_K8S_19", "no host PID, IPC, network", "kubernetes-core-pod-no-host-namespaces"),
        _a("CKV_K8S_26", "no hostPort", "kubernetes-core-pod-no-host-port"),
        _a("CKV_K8S_27", "no Docker socket / hostPath", "kubernetes-core-pod-no-host-path"),
        _a("CKV_K8S_28/CKV_K8S_37", "drop capabilities (NET_RAW, ALL)", "kubernetes-core-pod-capabilities"),
        _a("CKV_K8S_39", "no SYS_ADMIN", "kubernetes-core-pod-capabilities"),
        _a("CKV_K8S_31/CKV_K8S_32", "seccomp profile", "kubernetes-core-pod-seccomp"),
        _a("CKV_K8S_14", "image tag not latest", "kubernetes-core-pod-image-pinned"),
        _a("CKV_K8S_43", "image by digest", "kubernetes-core-pod-image-pinned"),
        _a("CKV_K8S_38", "service account token only where needed", "kubernetes-core-pod-no-token-automount"),
        _a("CKV_K8S_21", "not in the default namespace", "kubernetes-core-object-no-default-namespace"),
        _a("CKV_K8S_8/CKV_K8S_9", "liveness and readiness probes", None, "availability, not security; the gateway declares both (checkov confirms in the tests)"),
        _a("CKV_K8S_15", "image pull policy Always", None, "with pinned tags or digests a cached image is the same image"),
        _a("CKV_K8S_35", "secrets as files, not env", None, "the gateway reads its connection strings from env (secretKeyRef), which the allow-list of the checkov test explains"),
        _a("CKV_K8S_10/CKV_K8S_12", "CPU and memory requests", None, "scheduling, not security"),
        _a("CKV_K8S_29", "pod security context", "kubernetes-apps-workload-run-as-non-root"),
        _a("CKV_K8S_30", "container security context", "kubernetes-apps-workload-no-privileged"),
    ],
    "kubernetes:batch/v1:Job": [
        _a("CKV_K8S_* (pod rules)", "the pod-security checks of Deployment", "kubernetes-apps-workload-no-privileged"),
    ],
    "kubernetes:core/v1:Service": [
        _a("CKV_K8S_150", "no NodePort", "kubernetes-core-service-no-node-port"),
        _a("CKV_K8S_151", "no externalIPs (CVE-2020-8554)", "kubernetes-core-service-no-node-port"),
        _a("kubernetes-core-service-disallow-loadbalancer", "no LoadBalancer outside the ingress", "kubernetes-core-service-loadbalancer-ingress-only"),
    ],
    "kubernetes:core/v1:ServiceAccount": [
        _a("CKV_K8S_38", "token automount off", "kubernetes-core-pod-no-token-automount"),
        _a("CKV_K8S_41", "default service account not used", "kubernetes-rbac-binding-least-privilege"),
    ],
    "kubernetes:rbac.authorization.k8s.io/v1:Role": [
        _a("CKV_K8S_49", "no wildcard in roles", "kubernetes-rbac-role-no-wildcards"),
        _a("CKV_K8S_155", "no escalate verb", "kubernetes-rbac-role-no-wildcards"),
        _a("CKV_K8S_156", "no bind verb", "kubernetes-rbac-role-no-wildcards"),
        _a("CKV_K8S_157", "no impersonate verb", "kubernetes-rbac-role-no-wildcards"),
        _a("CKV_K8S_158", "no secrets list/watch", "kubernetes-rbac-role-no-wildcards"),
    ],
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": [
        _a("CKV_K8S_42", "default service account not bound", "kubernetes-rbac-binding-least-privilege"),
        _a("kubernetes-rbac-binding-disallow-cluster-admin", "no cluster-admin binding", "kubernetes-rbac-binding-least-privilege"),
    ],
    "kubernetes:core/v1:Namespace": [],
    "kubernetes:core/v1:ConfigMap": [
        _a("CKV_K8S_21", "not in the default namespace", "kubernetes-core-object-no-default-namespace"),
    ],
    "kubernetes:core/v1:Secret": [
        _a("CKV_K8S_21", "not in the default namespace", "kubernetes-core-object-no-default-namespace"),
    ],
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": [],
    "kubernetes:networking.k8s.io/v1:Ingress": [
        _a("CKV_K8S_153", "no server-snippet annotations (CVE-2021-25742)", None, "the program writes no snippet annotations; ingress-nginx is replaced by Gateway API (issue 25)"),
    ],
    "kubernetes:policy/v1:PodDisruptionBudget": [],
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": [],
    "kubernetes:cert-manager.io/v1:Certificate": [],
    "kubernetes:cert-manager.io/v1:ClusterIssuer": [],
    "kubernetes:helm.sh/v3:Release": [
        _a("CKV_K8S_* (chart objects)", "the pod-security checks on the chart's objects", None, "a Helm release is one opaque resource to the engine; no helm binary ships in a registry package here, so the charts' templates are not rendered (stated in the README)"),
    ],
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
        "(`aws-...`, `azure-...`, `gcp-...`, `kubernetes-...`) and AWSGuard (`awsguard:`).",
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
