"""The gate: the real pack over gRPC, as the Pulumi CLI runs it, against the in-process path.

The fixture program in noncompliant mode breaks every guarded resource type;
the gate must block it and find every violation, with the same verdict over
gRPC as in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.cli import EXIT_ERROR, EXIT_OK, EXIT_POLICY, main
from infra.offline import Plan
from infra.offline.policy_gate import PolicyGateError, Verdict, evaluate, pack_python
from policies.config import Category
from policies.pack import all_policies
from tests.conftest import ROOT
from tests.policies.conftest import PACK

EXPECTED_BROKEN = {
    # The governance channel (policies/governance.py): the peer over plain HTTP, the proxy
    # open to the internet, the internal route on the public Gateway too (whose load
    # balancer admits anyone), the token for another audience.
    ("kubernetes-governance-plane-tls", "kubernetes:core/v1:ConfigMap", "governance-config"),
    (
        "kubernetes-governance-channel-source-ranges",
        "kubernetes:gateway.networking.k8s.io/v1:Gateway",
        "governance",
    ),
    (
        "kubernetes-governance-channel-source-ranges",
        "kubernetes:gateway.networking.k8s.io/v1:Gateway",
        "edge",
    ),
    (
        "kubernetes-governance-channel-own-gateway",
        "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
        "governance-route",
    ),
    (
        "kubernetes-governance-plane-token-audience",
        "kubernetes:apps/v1:Deployment",
        "governance-gateway",
    ),
    (
        "kubernetes-networking-networkpolicy-every-namespace",
        "kubernetes:apps/v1:Deployment",
        "governance-gateway",
    ),
    ("aws-cloudwatch-loggroup-kms", "aws:cloudwatch/logGroup:LogGroup", "cluster-logs"),
    ("aws-cloudwatch-loggroup-retention", "aws:cloudwatch/logGroup:LogGroup", "cluster-logs"),
    (
        "aws-cloudwatch-metricalarm-actions-enabled",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "errors",
    ),
    ("aws-ebs-volume-customer-managed-key", "aws:ebs/volume:Volume", "data"),
    ("aws-ebs-volume-encrypted", "aws:ebs/volume:Volume", "data"),
    (
        "aws-ec2-defaultsecuritygroup-no-rules",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "default-sg",
    ),
    (
        "aws-ec2-launchtemplate-ebs-encrypted",
        "aws:ebs/encryptionByDefault:EncryptionByDefault",
        "ebs-default",
    ),
    ("aws-ec2-launchtemplate-ebs-encrypted", "aws:ec2/instance:Instance", "bastion"),
    ("aws-ec2-launchtemplate-ebs-encrypted", "aws:ec2/launchTemplate:LaunchTemplate", "nodes"),
    (
        "aws-ec2-launchtemplate-imdsv2",
        "aws:ec2/instanceMetadataDefaults:InstanceMetadataDefaults",
        "imds-defaults",
    ),
    ("aws-ec2-launchtemplate-imdsv2", "aws:ec2/launchTemplate:LaunchTemplate", "nodes"),
    ("aws-ec2-launchtemplate-no-public-ip", "aws:ec2/launchTemplate:LaunchTemplate", "nodes"),
    ("aws-ec2-resource-no-orphans", "aws:ec2/eip:Eip", "unused"),
    (
        "aws-ec2-securitygroup-combined-public-ingress",
        "aws:ec2/securityGroup:SecurityGroup",
        "data-sg",
    ),
    (
        "aws-ec2-securitygroup-descriptions",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "conflict",
    ),
    ("aws-ec2-securitygroup-no-open-egress", "aws:ec2/securityGroup:SecurityGroup", "cluster-sg"),
    (
        "aws-ec2-securitygroup-no-public-ingress",
        "aws:ec2/securityGroup:SecurityGroup",
        "cluster-sg",
    ),
    (
        "aws-ec2-securitygroup-no-public-ingress",
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "redis-in",
    ),
    (
        "aws-ec2-securitygroup-no-public-ingress",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "postgres-in",
    ),
    (
        "aws-ec2-securitygroup-no-rule-conflicts",
        "aws:ec2/securityGroup:SecurityGroup",
        "cluster-sg",
    ),
    ("aws-ec2-subnet-no-public-ip-on-launch", "aws:ec2/subnet:Subnet", "public"),
    ("aws-ec2-vpc-flow-logs", "aws:ec2/vpc:Vpc", "vpc"),
    ("aws-ecr-repository-kms", "aws:ecr/repository:Repository", "images"),
    ("aws-eks-cluster-control-plane-logs", "aws:eks/cluster:Cluster", "eks"),
    ("aws-eks-cluster-endpoint-restricted", "aws:eks/cluster:Cluster", "eks"),
    ("aws-eks-cluster-secrets-encryption", "aws:eks/cluster:Cluster", "eks"),
    ("aws-eks-nodegroup-no-public-ssh", "aws:eks/nodeGroup:NodeGroup", "nodes"),
    (
        "aws-elasticache-replicationgroup-auth",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "redis",
    ),
    (
        "aws-elasticache-replicationgroup-customer-managed-key",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "redis",
    ),
    (
        "aws-elasticache-replicationgroup-encrypted-at-rest",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "redis",
    ),
    (
        "aws-elasticache-replicationgroup-encrypted-in-transit",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "redis",
    ),
    (
        "aws-elasticache-replicationgroup-multi-az",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "redis",
    ),
    ("aws-iam-policy-no-administrator", "aws:iam/rolePolicy:RolePolicy", "app"),
    ("aws-iam-policy-no-administrator", "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "app"),
    ("aws-iam-resourcepolicy-not-public", "aws:s3/bucketPolicy:BucketPolicy", "artifacts"),
    ("aws-iam-role-trust-not-public", "aws:iam/role:Role", "app"),
    ("aws-kms-key-description", "aws:kms/key:Key", "key"),
    ("aws-kms-key-enabled", "aws:kms/key:Key", "key"),
    ("aws-kms-key-no-lockout-bypass", "aws:kms/key:Key", "key"),
    ("aws-kms-key-policy-not-public", "aws:kms/key:Key", "key"),
    ("aws-kms-key-rotation", "aws:kms/key:Key", "key"),
    ("aws-rds-cluster-customer-managed-key", "aws:rds/cluster:Cluster", "aurora"),
    ("aws-rds-cluster-storage-encrypted", "aws:rds/cluster:Cluster", "aurora"),
    ("aws-rds-instance-backups", "aws:rds/instance:Instance", "postgres"),
    ("aws-rds-instance-customer-managed-key", "aws:rds/instance:Instance", "postgres"),
    ("aws-rds-instance-iam-authentication", "aws:rds/instance:Instance", "postgres"),
    ("aws-rds-instance-log-exports", "aws:rds/instance:Instance", "postgres"),
    ("aws-rds-instance-multi-az", "aws:rds/instance:Instance", "postgres"),
    ("aws-rds-instance-not-public", "aws:rds/clusterInstance:ClusterInstance", "aurora-1"),
    ("aws-rds-instance-not-public", "aws:rds/instance:Instance", "postgres"),
    ("aws-rds-instance-patching", "aws:rds/instance:Instance", "postgres"),
    ("aws-rds-instance-performance-insights", "aws:rds/instance:Instance", "postgres"),
    ("aws-rds-instance-storage-encrypted", "aws:rds/instance:Instance", "postgres"),
    (
        "aws-rds-parametergroup-force-ssl",
        "aws:rds/clusterParameterGroup:ClusterParameterGroup",
        "aurora",
    ),
    ("aws-rds-parametergroup-force-ssl", "aws:rds/parameterGroup:ParameterGroup", "postgres"),
    ("aws-s3-bucket-default-encryption", "aws:s3/bucket:Bucket", "bare"),
    ("aws-s3-bucket-public-access-block", "aws:s3/bucket:Bucket", "bare"),
    (
        "aws-s3-bucketpublicaccessblock-enabled",
        "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
        "account",
    ),
    (
        "aws-s3-bucketpublicaccessblock-enabled",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "artifacts",
    ),
    (
        "aws-s3-bucketserversideencryptionconfiguration-kms",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
        "logs",
    ),
    ("aws-sns-topic-kms", "aws:sns/topic:Topic", "alerts"),
    ("aws-tags-resource-required-keys", "aws:sns/topic:Topic", "untagged"),
    (
        "azure-authorization-roleassignment-no-privileged-broad-scope",
        "azure-native:authorization:RoleAssignment",
        "reader",
    ),
    ("azure-cache-redis-no-public-access", "azure-native:redis:Redis", "legacy-redis"),
    ("azure-cache-redis-tls", "azure-native:redis:Redis", "legacy-redis"),
    (
        "azure-containerservice-agentpool-host-encryption",
        "azure-native:containerservice:AgentPool",
        "user",
    ),
    (
        "azure-containerservice-agentpool-no-node-public-ip",
        "azure-native:containerservice:AgentPool",
        "user",
    ),
    (
        "azure-containerservice-managedcluster-addons",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-containerservice-managedcluster-api-restricted",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-containerservice-managedcluster-auto-upgrade",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-containerservice-managedcluster-defender",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-containerservice-managedcluster-host-encryption",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-containerservice-managedcluster-kms",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-containerservice-managedcluster-local-accounts-disabled",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-containerservice-managedcluster-network-policy",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-containerservice-managedcluster-no-node-public-ip",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-containerservice-managedcluster-node-pools",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-containerservice-managedcluster-rbac",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-containerservice-managedcluster-uptime-sla",
        "azure-native:containerservice:ManagedCluster",
        "aks",
    ),
    (
        "azure-dbforpostgresql-configuration-secure-transport",
        "azure-native:dbforpostgresql:Configuration",
        "require-secure-transport",
    ),
    (
        "azure-dbforpostgresql-server-customer-managed-key",
        "azure-native:dbforpostgresql:Server",
        "postgres",
    ),
    (
        "azure-dbforpostgresql-server-high-availability",
        "azure-native:dbforpostgresql:Server",
        "postgres",
    ),
    (
        "azure-dbforpostgresql-server-no-public-access",
        "azure-native:dbforpostgresql:Server",
        "postgres",
    ),
    (
        "azure-network-networksecuritygroup-no-public-ingress",
        "azure-native:network:NetworkSecurityGroup",
        "nsg",
    ),
    (
        "azure-network-networksecuritygroup-no-public-ingress",
        "azure-native:network:SecurityRule",
        "rdp",
    ),
    ("azure-network-subnet-nsg", "azure-native:network:Subnet", "nodes"),
    (
        "azure-redisenterprise-database-encrypted-protocol",
        "azure-native:redisenterprise:Database",
        "redis",
    ),
    (
        "azure-redisenterprise-redisenterprise-customer-managed-key",
        "azure-native:redisenterprise:RedisEnterprise",
        "redis",
    ),
    (
        "azure-redisenterprise-redisenterprise-high-availability",
        "azure-native:redisenterprise:RedisEnterprise",
        "redis",
    ),
    (
        "azure-redisenterprise-redisenterprise-minimum-tls",
        "azure-native:redisenterprise:RedisEnterprise",
        "redis",
    ),
    (
        "azure-redisenterprise-redisenterprise-no-public-access",
        "azure-native:redisenterprise:RedisEnterprise",
        "redis",
    ),
    ("azure-storage-storageaccount-network-deny", "azure-native:storage:StorageAccount", "storage"),
    (
        "azure-storage-storageaccount-no-public-blob",
        "azure-native:storage:StorageAccount",
        "storage",
    ),
    (
        "azure-storage-storageaccount-secure-transfer",
        "azure-native:storage:StorageAccount",
        "storage",
    ),
    ("azure-tags-resource-required-keys", "azure-native:resources:ResourceGroup", "untagged"),
    ("gcp-compute-firewall-no-public-ingress", "gcp:compute/firewall:Firewall", "ingress"),
    ("gcp-compute-network-firewall", "gcp:compute/network:Network", "bare"),
    ("gcp-compute-subnetwork-flow-logs", "gcp:compute/subnetwork:Subnetwork", "nodes"),
    ("gcp-compute-subnetwork-private-google-access", "gcp:compute/subnetwork:Subnetwork", "nodes"),
    ("gcp-container-cluster-binary-authorization", "gcp:container/cluster:Cluster", "gke"),
    ("gcp-container-cluster-endpoint-restricted", "gcp:container/cluster:Cluster", "gke"),
    ("gcp-container-cluster-logging", "gcp:container/cluster:Cluster", "gke"),
    ("gcp-container-cluster-network-policy", "gcp:container/cluster:Cluster", "gke"),
    ("gcp-container-cluster-no-legacy-auth", "gcp:container/cluster:Cluster", "gke"),
    ("gcp-container-cluster-patched", "gcp:container/cluster:Cluster", "gke"),
    ("gcp-container-cluster-secrets-encryption", "gcp:container/cluster:Cluster", "gke"),
    ("gcp-container-cluster-separate-node-pools", "gcp:container/cluster:Cluster", "gke"),
    ("gcp-container-cluster-workload-identity", "gcp:container/cluster:Cluster", "gke"),
    ("gcp-container-nodepool-auto-repair-upgrade", "gcp:container/nodePool:NodePool", "pool"),
    ("gcp-container-nodepool-cos-image", "gcp:container/nodePool:NodePool", "pool"),
    ("gcp-container-nodepool-metadata-server", "gcp:container/nodePool:NodePool", "pool"),
    ("gcp-container-nodepool-shielded-nodes", "gcp:container/nodePool:NodePool", "pool"),
    ("gcp-iam-binding-least-privilege", "gcp:projects/iAMMember:IAMMember", "sa-user"),
    ("gcp-iam-binding-no-basic-roles", "gcp:projects/iAMMember:IAMMember", "logs-writer"),
    (
        "gcp-iam-binding-no-public-principals",
        "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
        "key-user",
    ),
    ("gcp-kms-cryptokey-rotation", "gcp:kms/cryptoKey:CryptoKey", "key"),
    ("gcp-labels-resource-required-keys", "gcp:storage/bucket:Bucket", "untagged"),
    ("gcp-redis-instance-auth", "gcp:redis/instance:Instance", "redis"),
    ("gcp-redis-instance-customer-managed-key", "gcp:redis/instance:Instance", "redis"),
    ("gcp-redis-instance-high-availability", "gcp:redis/instance:Instance", "redis"),
    ("gcp-redis-instance-transit-encryption", "gcp:redis/instance:Instance", "redis"),
    ("gcp-sql-databaseinstance-backups", "gcp:sql/databaseInstance:DatabaseInstance", "postgres"),
    (
        "gcp-sql-databaseinstance-customer-managed-key",
        "gcp:sql/databaseInstance:DatabaseInstance",
        "postgres",
    ),
    (
        "gcp-sql-databaseinstance-high-availability",
        "gcp:sql/databaseInstance:DatabaseInstance",
        "postgres",
    ),
    (
        "gcp-sql-databaseinstance-logging-flags",
        "gcp:sql/databaseInstance:DatabaseInstance",
        "postgres",
    ),
    (
        "gcp-sql-databaseinstance-no-public-ip",
        "gcp:sql/databaseInstance:DatabaseInstance",
        "postgres",
    ),
    ("gcp-sql-databaseinstance-ssl-mode", "gcp:sql/databaseInstance:DatabaseInstance", "postgres"),
    ("kubernetes-apps-workload-no-privileged", "kubernetes:apps/v1:Deployment", "gateway"),
    ("kubernetes-apps-workload-no-privileged", "kubernetes:batch/v1:Job", "migrate"),
    ("kubernetes-apps-workload-probes", "kubernetes:apps/v1:DaemonSet", "gateway-agent"),
    (
        "kubernetes-apps-workload-read-only-root-filesystem",
        "kubernetes:apps/v1:DaemonSet",
        "gateway-agent",
    ),
    ("kubernetes-apps-workload-read-only-root-filesystem", "kubernetes:core/v1:Pod", "debug"),
    ("kubernetes-apps-workload-recommended-labels", "kubernetes:core/v1:Pod", "host-debug"),
    (
        "kubernetes-apps-workload-resource-limits",
        "kubernetes:apps/v1:ReplicaSet",
        "gateway-replicas",
    ),
    ("kubernetes-apps-workload-resource-limits", "kubernetes:core/v1:Pod", "host-debug"),
    ("kubernetes-apps-workload-run-as-non-root", "kubernetes:apps/v1:StatefulSet", "gateway-state"),
    ("kubernetes-apps-workload-run-as-non-root", "kubernetes:batch/v1:CronJob", "compact"),
    (
        "kubernetes-autoscaling-hpa-min-replicas",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "gateway",
    ),
    ("kubernetes-core-object-no-default-namespace", "kubernetes:core/v1:Pod", "host-debug"),
    ("kubernetes-core-pod-capabilities", "kubernetes:core/v1:Pod", "host-debug"),
    ("kubernetes-core-pod-image-pinned", "kubernetes:core/v1:Pod", "host-debug"),
    ("kubernetes-core-pod-no-host-namespaces", "kubernetes:core/v1:Pod", "host-debug"),
    ("kubernetes-core-pod-no-host-path", "kubernetes:core/v1:Pod", "host-debug"),
    ("kubernetes-core-pod-no-host-port", "kubernetes:core/v1:Pod", "host-debug"),
    ("kubernetes-core-pod-no-token-automount", "kubernetes:core/v1:ServiceAccount", "gateway"),
    ("kubernetes-core-pod-seccomp", "kubernetes:core/v1:Pod", "host-debug"),
    ("kubernetes-core-service-loadbalancer-ingress-only", "kubernetes:core/v1:Service", "gateway"),
    (
        "kubernetes-gateway-console-allowed-cidrs",
        "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy",
        "console-networks",
    ),
    (
        "kubernetes-gateway-public-listener-tls",
        "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
        "api",
    ),
    ("kubernetes-core-service-no-node-port", "kubernetes:core/v1:Service", "node-port"),
    (
        "kubernetes-networking-ingress-no-snippets",
        "kubernetes:networking.k8s.io/v1:Ingress",
        "gateway",
    ),
    (
        "kubernetes-networking-networkpolicy-every-namespace",
        "kubernetes:apps/v1:DaemonSet",
        "gateway-agent",
    ),
    (
        "kubernetes-networking-networkpolicy-every-namespace",
        "kubernetes:apps/v1:Deployment",
        "gateway",
    ),
    (
        "kubernetes-networking-networkpolicy-every-namespace",
        "kubernetes:apps/v1:ReplicaSet",
        "gateway-replicas",
    ),
    (
        "kubernetes-networking-networkpolicy-every-namespace",
        "kubernetes:apps/v1:StatefulSet",
        "gateway-state",
    ),
    (
        "kubernetes-networking-networkpolicy-every-namespace",
        "kubernetes:batch/v1:CronJob",
        "compact",
    ),
    ("kubernetes-networking-networkpolicy-every-namespace", "kubernetes:batch/v1:Job", "migrate"),
    ("kubernetes-networking-networkpolicy-every-namespace", "kubernetes:core/v1:Pod", "debug"),
    ("kubernetes-networking-networkpolicy-every-namespace", "kubernetes:core/v1:Pod", "host-debug"),
    (
        "kubernetes-policy-poddisruptionbudget-allows-disruption",
        "kubernetes:policy/v1:PodDisruptionBudget",
        "gateway",
    ),
    (
        "kubernetes-rbac-binding-least-privilege",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
        "gateway",
    ),
    (
        "kubernetes-rbac-role-no-wildcards",
        "kubernetes:rbac.authorization.k8s.io/v1:Role",
        "gateway",
    ),
    ("multicloud-database-instance-deletion-protection", "aws:eks/cluster:Cluster", "eks"),
    ("multicloud-database-instance-deletion-protection", "aws:rds/instance:Instance", "postgres"),
    (
        "multicloud-database-instance-deletion-protection",
        "azure-native:dbforpostgresql:Server",
        "postgres",
    ),
    (
        "multicloud-database-instance-deletion-protection",
        "gcp:sql/databaseInstance:DatabaseInstance",
        "postgres",
    ),
    ("multicloud-kubernetes-nodes-private-subnets", "aws:eks/nodeGroup:NodeGroup", "nodes"),
    ("multicloud-kubernetes-nodes-private-subnets", "gcp:container/nodePool:NodePool", "pool"),
    ("multicloud-network-traffic-logs", "aws:route53/zone:Zone", "public-zone"),
    ("multicloud-network-traffic-logs", "azure-native:network:VirtualNetwork", "vnet"),
    ("multicloud-dns-zone-dnssec", "aws:route53/zone:Zone", "public-zone"),
    ("multicloud-dns-zone-dnssec", "gcp:dns/managedZone:ManagedZone", "cloud-dns-zone"),
    ("multicloud-dns-zone-dnssec", "azure-native:dns:Zone", "azure-zone"),
    (
        "azure-authorization-roledefinition-no-wildcard-actions",
        "azure-native:authorization:RoleDefinition",
        "txt-records",
    ),
    ("azure-keyvault-vault-recoverable", "azure-native:keyvault:Vault", "kms-vault"),
    ("azure-keyvault-secret-content-type", "azure-native:keyvault:Secret", "owner-secret"),
    (
        "aws-ec2-launchtemplate-no-secrets-in-user-data",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "nodes",
    ),
    ("azure-security-pricing-standard", "azure-native:security:Pricing", "defender-containers"),
}


@pytest.fixture(scope="module")
def grpc_broken(broken_plan: Plan) -> Verdict:
    """The pack's verdict on the noncompliant program, through its gRPC server."""
    return evaluate(broken_plan, pack_dir=PACK, transport="grpc")


def test_noncompliant_program_is_blocked_with_every_violation(grpc_broken: Verdict) -> None:
    found = {(v.policy, v.resource_type, v.resource_name) for v in grpc_broken.violations}
    assert found == EXPECTED_BROKEN
    assert not grpc_broken.passed
    advisory = {p.name for p in all_policies() if p.category == Category.HYGIENE}
    assert {v.policy for v in grpc_broken.violations if v.level == "advisory"} == advisory


def test_every_policy_fires_on_the_noncompliant_program(grpc_broken: Verdict) -> None:
    assert {v.policy for v in grpc_broken.violations} == {p.name for p in all_policies()}


def test_grpc_and_in_process_give_the_same_verdicts(
    grpc_broken: Verdict, broken_plan: Plan, compliant_plan: Plan
) -> None:
    assert evaluate(broken_plan, pack_dir=PACK, transport="in-process") == grpc_broken
    compliant_grpc = evaluate(compliant_plan, pack_dir=PACK, transport="grpc")
    assert compliant_grpc == evaluate(compliant_plan, pack_dir=PACK, transport="in-process")
    assert compliant_grpc.violations == ()
    assert len(compliant_grpc.policies) == len(all_policies())


def test_grpc_and_in_process_agree_on_config(broken_plan: Plan) -> None:
    config = {
        "all": "advisory",
        "aws-kms-key-rotation": "mandatory",
        "kubernetes-core-service-loadbalancer-ingress-only": {"enforcementLevel": "disabled"},
        "aws-ec2-securitygroup-no-public-ingress": {"allowedPublicPorts": [443, 22, 5432, 6379]},
    }
    over_grpc = evaluate(broken_plan, pack_dir=PACK, config=config, transport="grpc")
    assert over_grpc == evaluate(broken_plan, pack_dir=PACK, config=config, transport="in-process")
    assert [v.policy for v in over_grpc.mandatory] == ["aws-kms-key-rotation"]
    policies = {v.policy for v in over_grpc.violations}
    assert "kubernetes-core-service-loadbalancer-ingress-only" not in policies
    assert "aws-ec2-securitygroup-no-public-ingress" not in policies


def test_each_resource_violation_carries_its_resource_urn(
    grpc_broken: Verdict, broken_plan: Plan
) -> None:
    urns = {r.urn: r for r in broken_plan.resources}
    for violation in grpc_broken.violations:
        resource = urns[violation.urn]
        assert (resource.type, resource.name) == (
            violation.resource_type,
            violation.resource_name,
        )


def test_render_groups_violations_by_policy(grpc_broken: Verdict) -> None:
    text = grpc_broken.render()
    count, mandatory = len(grpc_broken.violations), len(grpc_broken.mandatory)
    assert text.startswith(f"Policies: {count} violations ({mandatory} mandatory")
    block = text.split("[mandatory] aws-ec2-securitygroup-no-public-ingress (3)\n")[1].split(
        "\n\n"
    )[0]
    assert block.splitlines() == [
        line
        for line in block.splitlines()
        if line.startswith(("    cluster-sg (", "    redis-in (", "    postgres-in ("))
    ]
    assert len(block.splitlines()) == 3


def test_unknown_policy_or_parameter_in_config_is_an_error(compliant_plan: Plan) -> None:
    with pytest.raises(PolicyGateError, match=r"unknown policies \['aws-no-such-policy'\]"):
        evaluate(
            compliant_plan,
            pack_dir=PACK,
            config={"aws-no-such-policy": "advisory"},
            transport="in-process",
        )
    with pytest.raises(PolicyGateError, match=r"unknown parameters \['ports'\]"):
        evaluate(
            compliant_plan,
            pack_dir=PACK,
            config={"aws-ec2-securitygroup-no-public-ingress": {"ports": [22]}},
            transport="in-process",
        )
    with pytest.raises(PolicyGateError, match="enforcement level 'strict' is not one of"):
        evaluate(compliant_plan, pack_dir=PACK, config={"all": "strict"}, transport="in-process")


def test_a_pack_that_fails_to_start_is_reported(tmp_path: Path, compliant_plan: Plan) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text("raise SystemExit('no pack here')\n")
    with pytest.raises(PolicyGateError, match="did not start"):
        evaluate(compliant_plan, pack_dir=tmp_path, transport="grpc")


def test_the_pack_runs_in_the_repository_virtualenv() -> None:
    assert pack_python(PACK) == str(ROOT / ".venv" / "bin" / "python")


def test_aigw_plan_exits_one_on_a_mandatory_violation(
    broken_plan: Plan, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("infra.offline.engine.record", lambda *a, **k: broken_plan)
    assert main(["plan", "--stack", "prod", "--project-dir", str(ROOT)]) == EXIT_POLICY
    out = capsys.readouterr().out
    assert "[mandatory] aws-rds-instance-storage-encrypted (1)" in out
    assert "    postgres (aws:rds/instance:Instance): storageEncrypted is not true" in out


def test_aigw_plan_honours_the_pack_config(
    broken_plan: Plan,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setattr("infra.offline.engine.record", lambda *a, **k: broken_plan)
    config = tmp_path / "advisory.json"
    config.write_text(json.dumps({"all": "advisory"}))
    args = [
        "plan",
        "--stack",
        "prod",
        "--project-dir",
        str(ROOT),
        "--policy-pack-config",
        str(config),
    ]
    assert main(args) == EXIT_OK
    assert "[advisory] aws-rds-instance-storage-encrypted (1)" in capsys.readouterr().out
    config.write_text(json.dumps({"no-such-policy": "advisory"}))
    assert main(args) == EXIT_ERROR
    assert "unknown policies ['no-such-policy']" in capsys.readouterr().err


def test_a_stack_file_that_splits_the_internet_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's break: deployerCidrs [0.0.0.0/1, 128.0.0.0/1] on every cloud used to pass."""
    import yaml

    stack = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    for cloud in ("aws", "azure", "gcp"):
        stack["config"][f"ai-gateway:{cloud}"]["deployerCidrs"] = ["0.0.0.0/1", "128.0.0.0/1"]
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(stack))
    args = ["plan", "--stack", "prod", "--stack-file", str(path), "--project-dir", str(ROOT)]
    assert main(args) != EXIT_OK
    err = capsys.readouterr().err
    assert "deployerCidrs: ['0.0.0.0/1', '128.0.0.0/1'] open the cluster API" in err
