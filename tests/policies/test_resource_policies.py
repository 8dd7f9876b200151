"""Every resource policy: the compliant fixture passes; each way to break it is caught.

Each case changes one property (occasionally two that only mean something
together) of one compliant resource of the guarded fixture program, evaluates
the whole pack on that resource alone, and asserts that exactly the expected
policy fires, with a message naming the property to set.
"""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import ResourceValidationPolicy

from infra.offline import Plan
from policies import aws, azure, gcp
from policies.pack import all_policies
from tests.policies.conftest import DELETE, mutated, only, verdict

WORLD = "0.0.0.0/0"
DEP = "kubernetes:apps/v1:Deployment"
POD = "spec.template.spec"
CONTAINER = f"{POD}.containers.0"

# (policy, type, resource name, {path: new value}, expected text in the message, pack config)
# fmt: off
CASES: list[tuple[str, str, str, dict[str, Any], str, dict[str, Any] | None]] = [
    # --------------------------------------------------------- AWS
    ("aws-rds-instance-backups", aws.RDS_INSTANCE, "postgres", {"backupRetentionPeriod": 0}, "backupRetentionPeriod is 0: set backupRetentionPeriod to at least 1", None),
    ("aws-rds-instance-backups", aws.RDS_INSTANCE, "postgres", {}, "backupRetentionPeriod is 7: set backupRetentionPeriod to at least 14", {"aws-rds-instance-backups": {"minRetentionDays": 14}}),
    ("aws-rds-instance-storage-encrypted", aws.RDS_INSTANCE, "postgres", {"storageEncrypted": False}, "set storageEncrypted=True", None),
    ("aws-rds-instance-storage-encrypted", aws.RDS_INSTANCE, "postgres", {"storageEncrypted": DELETE}, "storageEncrypted is not true", None),
    ("aws-rds-instance-customer-managed-key", aws.RDS_INSTANCE, "postgres", {"kmsKeyId": DELETE}, "kmsKeyId is not set: set kmsKeyId", None),
    ("aws-rds-cluster-storage-encrypted", aws.RDS_CLUSTER, "aurora", {"storageEncrypted": False}, "set storageEncrypted=True", None),
    ("aws-rds-cluster-customer-managed-key", aws.RDS_CLUSTER, "aurora", {"kmsKeyId": DELETE}, "set kmsKeyId", None),
    ("aws-rds-parametergroup-force-ssl", aws.RDS_PARAMETER_GROUP, "postgres", {"parameters.0.value": "0"}, "rds.force_ssl is 0: add the parameter name='rds.force_ssl', value='1'", None),
    ("aws-rds-parametergroup-force-ssl", aws.RDS_PARAMETER_GROUP, "postgres", {"family": "postgres14", "parameters": []}, "rds.force_ssl is unset (0 for postgres14)", None),
    ("aws-elasticache-replicationgroup-encrypted-at-rest", aws.ELASTICACHE_REPLICATION_GROUP, "redis", {"atRestEncryptionEnabled": False}, "set atRestEncryptionEnabled=True", None),
    ("aws-elasticache-replicationgroup-encrypted-in-transit", aws.ELASTICACHE_REPLICATION_GROUP, "redis", {"transitEncryptionEnabled": False}, "set transitEncryptionEnabled=True", None),
    ("aws-elasticache-replicationgroup-encrypted-in-transit", aws.ELASTICACHE_REPLICATION_GROUP, "redis", {"transitEncryptionMode": "preferred"}, "set transitEncryptionMode='required'", None),
    ("aws-elasticache-replicationgroup-auth", aws.ELASTICACHE_REPLICATION_GROUP, "redis", {"authToken": DELETE}, "set authToken", None),
    ("aws-eks-cluster-secrets-encryption", aws.EKS_CLUSTER, "eks", {"encryptionConfig": DELETE}, "resources=['secrets']", None),
    ("aws-eks-cluster-secrets-encryption", aws.EKS_CLUSTER, "eks", {"encryptionConfig.resources": []}, "encryptionConfig does not cover secrets", None),
    ("aws-eks-cluster-secrets-encryption", aws.EKS_CLUSTER, "eks", {"encryptionConfig.provider.keyArn": DELETE}, "encryptionConfig.provider.keyArn is not set", None),
    ("aws-kms-key-rotation", aws.KMS_KEY, "key", {"enableKeyRotation": False}, "set enableKeyRotation=True", None),
    ("aws-cloudwatch-loggroup-kms", aws.LOG_GROUP, "cluster-logs", {"kmsKeyId": DELETE}, "kmsKeyId is not set", None),
    ("aws-sns-topic-kms", aws.SNS_TOPIC, "alerts", {"kmsMasterKeyId": DELETE}, "set kmsMasterKeyId", None),
    ("aws-ebs-volume-encrypted", aws.EBS_VOLUME, "data", {"encrypted": False}, "set encrypted=True", None),
    ("aws-ec2-launchtemplate-ebs-encrypted", aws.LAUNCH_TEMPLATE, "nodes", {"blockDeviceMappings.0.ebs.encrypted": "false"}, "blockDeviceMappings[0].ebs.encrypted is not 'true'", None),
    ("aws-ec2-launchtemplate-imdsv2", aws.LAUNCH_TEMPLATE, "nodes", {"metadataOptions.httpTokens": "optional"}, "set metadataOptions.httpTokens='required'", None),
    ("aws-ec2-launchtemplate-imdsv2", aws.LAUNCH_TEMPLATE, "nodes", {"metadataOptions": DELETE}, "metadataOptions.httpTokens is not 'required'", None),
    ("aws-s3-bucketpublicaccessblock-enabled", aws.S3_PUBLIC_ACCESS_BLOCK, "artifacts", {"blockPublicAcls": False}, "set blockPublicAcls=True", None),
    ("aws-s3-bucketpublicaccessblock-enabled", aws.S3_PUBLIC_ACCESS_BLOCK, "artifacts", {"blockPublicPolicy": False}, "set blockPublicPolicy=True", None),
    ("aws-s3-bucketpublicaccessblock-enabled", aws.S3_PUBLIC_ACCESS_BLOCK, "artifacts", {"ignorePublicAcls": DELETE}, "set ignorePublicAcls=True", None),
    ("aws-s3-bucketpublicaccessblock-enabled", aws.S3_PUBLIC_ACCESS_BLOCK, "artifacts", {"restrictPublicBuckets": False}, "set restrictPublicBuckets=True", None),
    ("aws-s3-bucketserversideencryptionconfiguration-kms", aws.S3_SSE, "artifacts", {"rules.0.applyServerSideEncryptionByDefault.sseAlgorithm": "AES256"}, "sseAlgorithm is ['AES256']", None),
    ("aws-ecr-repository-kms", aws.ECR_REPOSITORY, "images", {"encryptionConfigurations.0.encryptionType": "AES256"}, "set encryptionType='KMS'", None),
    ("aws-ecr-repository-kms", aws.ECR_REPOSITORY, "images", {"encryptionConfigurations": DELETE}, "set encryptionType='KMS'", None),
    ("aws-rds-instance-not-public", aws.RDS_INSTANCE, "postgres", {"publiclyAccessible": True}, "set publiclyAccessible=False", None),
    ("aws-eks-cluster-endpoint-restricted", aws.EKS_CLUSTER, "eks", {"vpcConfig.publicAccessCidrs": [WORLD]}, "vpcConfig.publicAccessCidrs contains 0.0.0.0/0", None),
    ("aws-eks-cluster-endpoint-restricted", aws.EKS_CLUSTER, "eks", {"vpcConfig.publicAccessCidrs": ["::/0"]}, "contains ::/0", None),
    ("aws-eks-cluster-endpoint-restricted", aws.EKS_CLUSTER, "eks", {"vpcConfig.publicAccessCidrs": DELETE}, "vpcConfig.publicAccessCidrs is unset", None),
    ("aws-eks-cluster-endpoint-restricted", aws.EKS_CLUSTER, "eks", {"vpcConfig.endpointPrivateAccess": False}, "set endpointPrivateAccess=True", None),
    ("aws-eks-cluster-endpoint-restricted", aws.EKS_CLUSTER, "eks", {}, "outside the allowed CIDRs ['198.51.100.0/24']", {"aws-eks-cluster-endpoint-restricted": {"allowedCidrs": ["198.51.100.0/24"]}}),
    ("aws-ec2-securitygroup-no-public-ingress", aws.SECURITY_GROUP, "cluster-sg", {"ingress.1.cidrBlocks": [WORLD]}, "ingress[1] opens port 22/tcp to the internet", None),
    ("aws-ec2-securitygroup-no-public-ingress", aws.SECURITY_GROUP, "cluster-sg", {"ingress.0.toPort": 444}, "ingress[0] opens port 443-444/tcp", None),
    ("aws-ec2-securitygroup-no-public-ingress", aws.SECURITY_GROUP, "cluster-sg", {"ingress.0.protocol": "-1"}, "opens port 0-65535/-1", None),
    ("aws-ec2-securitygroup-no-public-ingress", aws.SECURITY_GROUP, "cluster-sg", {"ingress.1.cidrBlocks": [], "ingress.1.ipv6CidrBlocks": ["::/0"]}, "ingress[1] opens port 22/tcp", None),
    ("aws-ec2-securitygroup-no-public-ingress", aws.SECURITY_GROUP_RULE, "redis-in", {"cidrBlocks": [WORLD]}, "cidrBlocks opens port 6379/tcp", None),
    ("aws-ec2-securitygroup-no-public-ingress", aws.SECURITY_GROUP_INGRESS_RULE, "postgres-in", {"cidrIpv6": "::/0"}, "cidrIpv6 opens port 5432/tcp", None),
    ("aws-ec2-securitygroup-no-public-ingress", aws.SECURITY_GROUP_INGRESS_RULE, "postgres-in", {"cidrIpv6": DELETE, "cidrIpv4": WORLD}, "cidrIpv4 opens port 5432/tcp", None),
    # ------------------------------------------------------- Azure
    ("azure-containerservice-managedcluster-rbac", azure.MANAGED_CLUSTER, "aks", {"enableRBAC": False}, "enableRBAC is false: set enableRBAC=True", None),
    ("azure-containerservice-managedcluster-local-accounts-disabled", azure.MANAGED_CLUSTER, "aks", {"disableLocalAccounts": DELETE}, "disableLocalAccounts is not true in prod: set disableLocalAccounts=True", None),
    ("azure-containerservice-managedcluster-local-accounts-disabled", azure.MANAGED_CLUSTER, "aks", {"disableLocalAccounts": False, "tags.environment": "dev"}, "not true in dev", {"azure-containerservice-managedcluster-local-accounts-disabled": {"environments": []}}),
    ("azure-redisenterprise-redisenterprise-minimum-tls", azure.REDIS_ENTERPRISE, "redis", {"minimumTlsVersion": "1.0"}, "set minimumTlsVersion='1.2'", None),
    ("azure-redisenterprise-redisenterprise-no-public-access", azure.REDIS_ENTERPRISE, "redis", {"publicNetworkAccess": "Enabled"}, "set publicNetworkAccess='Disabled'", None),
    ("azure-redisenterprise-redisenterprise-no-public-access", azure.REDIS_ENTERPRISE, "redis", {"publicNetworkAccess": DELETE}, "publicNetworkAccess is unset", None),
    ("azure-redisenterprise-database-encrypted-protocol", azure.REDIS_ENTERPRISE_DATABASE, "redis", {"clientProtocol": "Plaintext"}, "set clientProtocol='Encrypted'", None),
    ("azure-cache-redis-tls", azure.CACHE_REDIS, "legacy-redis", {"enableNonSslPort": True}, "set enableNonSslPort=False", None),
    ("azure-cache-redis-tls", azure.CACHE_REDIS, "legacy-redis", {"minimumTlsVersion": "1.0"}, "set minimumTlsVersion='1.2'", None),
    ("azure-cache-redis-no-public-access", azure.CACHE_REDIS, "legacy-redis", {"publicNetworkAccess": "Enabled"}, "set publicNetworkAccess='Disabled'", None),
    ("azure-dbforpostgresql-server-no-public-access", azure.POSTGRES_SERVER, "postgres", {"network.publicNetworkAccess": "Enabled"}, "set network.publicNetworkAccess='Disabled'", None),
    ("azure-dbforpostgresql-server-no-public-access", azure.POSTGRES_SERVER, "postgres", {"network": DELETE}, "network.publicNetworkAccess is unset (Enabled)", None),
    ("azure-dbforpostgresql-configuration-secure-transport", azure.POSTGRES_CONFIGURATION, "require-secure-transport", {"value": "off"}, "require_secure_transport is 'off': set value='on'", None),
    ("azure-dbforpostgresql-configuration-secure-transport", azure.POSTGRES_CONFIGURATION, "require-secure-transport", {"configurationName": "ssl_min_protocol_version", "value": "TLSv1.1"}, "ssl_min_protocol_version is 'TLSv1.1': set value='TLSv1.2'", None),
    ("azure-containerservice-managedcluster-host-encryption", azure.MANAGED_CLUSTER, "aks", {"agentPoolProfiles.0.enableEncryptionAtHost": False}, "agentPoolProfiles[0].enableEncryptionAtHost is not true: set enableEncryptionAtHost=True", None),
    ("azure-containerservice-agentpool-host-encryption", azure.AGENT_POOL, "user", {"enableEncryptionAtHost": DELETE}, "set enableEncryptionAtHost=True", None),
    ("azure-containerservice-managedcluster-api-restricted", azure.MANAGED_CLUSTER, "aks", {"apiServerAccessProfile.authorizedIPRanges": [WORLD]}, "authorizedIPRanges contains 0.0.0.0/0", None),
    ("azure-containerservice-managedcluster-api-restricted", azure.MANAGED_CLUSTER, "aks", {"apiServerAccessProfile": DELETE}, "apiServerAccessProfile.authorizedIPRanges is unset", None),
    ("azure-containerservice-managedcluster-no-node-public-ip", azure.MANAGED_CLUSTER, "aks", {"agentPoolProfiles.0.enableNodePublicIP": True}, "agentPoolProfiles[0].enableNodePublicIP is true: set enableNodePublicIP=False", None),
    ("azure-containerservice-agentpool-no-node-public-ip", azure.AGENT_POOL, "user", {"enableNodePublicIP": True}, "set enableNodePublicIP=False", None),
    ("azure-storage-storageaccount-secure-transfer", azure.STORAGE_ACCOUNT, "storage", {"enableHttpsTrafficOnly": False}, "set enableHttpsTrafficOnly=True", None),
    ("azure-storage-storageaccount-secure-transfer", azure.STORAGE_ACCOUNT, "storage", {"minimumTlsVersion": "TLS1_1"}, "set minimumTlsVersion='TLS1_2'", None),
    ("azure-storage-storageaccount-no-public-blob", azure.STORAGE_ACCOUNT, "storage", {"allowBlobPublicAccess": True}, "set allowBlobPublicAccess=False", None),
    ("azure-network-networksecuritygroup-no-public-ingress", azure.NETWORK_SECURITY_GROUP, "nsg", {"securityRules.1.sourceAddressPrefix": "*"}, "securityRules[ssh] opens port(s) ['22']", None),
    ("azure-network-networksecuritygroup-no-public-ingress", azure.NETWORK_SECURITY_GROUP, "nsg", {"securityRules.1.sourceAddressPrefix": "Internet"}, "securityRules[ssh] opens port(s) ['22']", None),
    ("azure-network-networksecuritygroup-no-public-ingress", azure.NETWORK_SECURITY_GROUP, "nsg", {"securityRules.0.destinationPortRange": "*"}, "securityRules[https] opens port(s) ['*']", None),
    ("azure-network-networksecuritygroup-no-public-ingress", azure.SECURITY_RULE, "rdp", {"sourceAddressPrefixes": [WORLD]}, "opens port(s) ['3389'] to the internet", None),
    # --------------------------------------------------------- GCP
    ("gcp-container-cluster-no-legacy-auth", gcp.GKE_CLUSTER, "gke", {"enableLegacyAbac": True}, "set enableLegacyAbac=False", None),
    ("gcp-container-cluster-no-legacy-auth", gcp.GKE_CLUSTER, "gke", {"masterAuth": {"clientCertificateConfig": {"issueClientCertificate": True}}}, "issueClientCertificate is true: set it to False", None),
    ("gcp-redis-instance-transit-encryption", gcp.REDIS_INSTANCE, "redis", {"transitEncryptionMode": "DISABLED"}, "set transitEncryptionMode='SERVER_AUTHENTICATION'", None),
    ("gcp-redis-instance-transit-encryption", gcp.REDIS_INSTANCE, "redis", {"transitEncryptionMode": DELETE}, "transitEncryptionMode is unset (DISABLED)", None),
    ("gcp-redis-instance-auth", gcp.REDIS_INSTANCE, "redis", {"authEnabled": False}, "set authEnabled=True", None),
    ("gcp-sql-databaseinstance-ssl-mode", gcp.SQL_INSTANCE, "postgres", {"settings.ipConfiguration.sslMode": "ALLOW_UNENCRYPTED_AND_ENCRYPTED"}, "set settings.ipConfiguration.sslMode to one of", None),
    ("gcp-sql-databaseinstance-ssl-mode", gcp.SQL_INSTANCE, "postgres", {"settings.ipConfiguration.sslMode": DELETE}, "sslMode is unset (ALLOW_UNENCRYPTED_AND_ENCRYPTED)", None),
    ("gcp-sql-databaseinstance-ssl-mode", gcp.SQL_INSTANCE, "postgres", {}, "sslMode is ENCRYPTED_ONLY: set settings.ipConfiguration.sslMode to one of ['TRUSTED_CLIENT_CERTIFICATE_REQUIRED']", {"gcp-sql-databaseinstance-ssl-mode": {"allowedSslModes": ["TRUSTED_CLIENT_CERTIFICATE_REQUIRED"]}}),
    ("gcp-sql-databaseinstance-backups", gcp.SQL_INSTANCE, "postgres", {"settings.backupConfiguration.enabled": False}, "settings.backupConfiguration.enabled is not true", None),
    ("gcp-sql-databaseinstance-no-public-ip", gcp.SQL_INSTANCE, "postgres", {"settings.ipConfiguration.ipv4Enabled": True}, "set ipv4Enabled=False", None),
    ("gcp-sql-databaseinstance-no-public-ip", gcp.SQL_INSTANCE, "postgres", {"settings.ipConfiguration.ipv4Enabled": DELETE}, "ipv4Enabled is not false", None),
    ("gcp-sql-databaseinstance-no-public-ip", gcp.SQL_INSTANCE, "postgres", {"settings.ipConfiguration.authorizedNetworks": [{"value": WORLD}]}, "authorizedNetworks contains 0.0.0.0/0", None),
    ("gcp-container-cluster-secrets-encryption", gcp.GKE_CLUSTER, "gke", {"databaseEncryption.state": "DECRYPTED"}, "set databaseEncryption.state='ENCRYPTED'", None),
    ("gcp-container-cluster-secrets-encryption", gcp.GKE_CLUSTER, "gke", {"databaseEncryption.keyName": DELETE}, "databaseEncryption.keyName", None),
    ("gcp-container-cluster-endpoint-restricted", gcp.GKE_CLUSTER, "gke", {"masterAuthorizedNetworksConfig.cidrBlocks.0.cidrBlock": WORLD}, "cidrBlocks contains 0.0.0.0/0", None),
    ("gcp-container-cluster-endpoint-restricted", gcp.GKE_CLUSTER, "gke", {"masterAuthorizedNetworksConfig": DELETE}, "masterAuthorizedNetworksConfig.cidrBlocks is empty", None),
    ("gcp-container-cluster-endpoint-restricted", gcp.GKE_CLUSTER, "gke", {"masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled": True}, "gcpPublicCidrsAccessEnabled is true: set it to False", None),
    ("gcp-kms-cryptokey-rotation", gcp.KMS_CRYPTO_KEY, "key", {"rotationPeriod": "31536000s"}, "rotationPeriod is 31536000s: set rotationPeriod to at most '7776000s'", None),
    ("gcp-kms-cryptokey-rotation", gcp.KMS_CRYPTO_KEY, "key", {"rotationPeriod": DELETE}, "rotationPeriod is unset", None),
    ("gcp-compute-firewall-no-public-ingress", gcp.FIREWALL, "ingress", {"allows.0.ports": ["22"]}, "allows[0] opens tcp ['22'] to 0.0.0.0/0", None),
    ("gcp-compute-firewall-no-public-ingress", gcp.FIREWALL, "ingress", {"allows.0.ports": []}, "allows[0] opens tcp ['all']", None),
    ("gcp-compute-firewall-no-public-ingress", gcp.FIREWALL, "ingress", {"allows.0.ports": ["400-500"]}, "opens tcp ['400-500']", None),
    ("gcp-compute-firewall-no-public-ingress", gcp.FIREWALL, "ingress", {"allows.0.protocol": "icmp", "allows.0.ports": []}, "opens icmp ['icmp']", None),
    # -------------------------------------------------- Kubernetes
    ("kubernetes-apps-workload-run-as-non-root", DEP, "gateway", {f'{POD}.securityContext.runAsNonRoot': False}, "may run as root: set securityContext.runAsNonRoot=True", None),
    ("kubernetes-apps-workload-run-as-non-root", DEP, "gateway", {f'{POD}.securityContext': DELETE}, "containers[gateway] may run as root", None),
    ("kubernetes-apps-workload-run-as-non-root", DEP, "gateway", {f'{CONTAINER}.securityContext.runAsUser': 0}, "runs as user 0: set securityContext.runAsUser", None),
    ("kubernetes-apps-workload-no-privileged", DEP, "gateway", {f'{CONTAINER}.securityContext.privileged': True}, "is privileged: set securityContext.privileged=False", None),
    ("kubernetes-apps-workload-no-privileged", DEP, "gateway", {f'{CONTAINER}.securityContext.allowPrivilegeEscalation': True}, "set securityContext.allowPrivilegeEscalation=False", None),
    ("kubernetes-apps-workload-read-only-root-filesystem", DEP, "gateway", {f'{CONTAINER}.securityContext.readOnlyRootFilesystem': False}, "set securityContext.readOnlyRootFilesystem=True", None),
    ("kubernetes-apps-workload-resource-limits", DEP, "gateway", {f'{CONTAINER}.resources.limits.memory': DELETE}, "has no memory limit: set resources.limits.memory", None),
    ("kubernetes-apps-workload-resource-limits", DEP, "gateway", {f'{CONTAINER}.resources.limits': DELETE}, "has no cpu/memory limit", None),
    ("kubernetes-core-service-loadbalancer-ingress-only", "kubernetes:core/v1:Service", "gateway", {"spec.type": "LoadBalancer"}, "Service gateway is type LoadBalancer: set spec.type='ClusterIP'", None),
    # ----------------------------------------------------- tagging
    ("aws-tags-resource-required-keys", aws.KMS_KEY, "key", {"tags.owner": DELETE}, "missing required tags ['owner']: set them in tags", None),
    ("aws-tags-resource-required-keys", aws.RDS_INSTANCE, "postgres", {"tags.cost-center": ""}, "missing required tags ['cost-center']", None),
    ("aws-tags-resource-required-keys", aws.KMS_KEY, "key", {}, "missing required tags ['team']", {"aws-tags-resource-required-keys": {"requiredKeys": ["owner", "team"]}}),
    ("azure-tags-resource-required-keys", "azure-native:resources:ResourceGroup", "rg", {"tags": DELETE}, "missing required tags ['environment', 'owner', 'cost-center', 'managed-by', 'project']", None),
    ("azure-tags-resource-required-keys", azure.MANAGED_CLUSTER, "aks", {"tags.environment": DELETE}, "missing required tags ['environment']", None),
    ("gcp-labels-resource-required-keys", gcp.REDIS_INSTANCE, "redis", {"labels.cost-center": DELETE}, "missing required labels ['cost-center']: set them in labels", None),
    ("gcp-labels-resource-required-keys", gcp.SQL_INSTANCE, "postgres", {"settings.userLabels.owner": DELETE}, "missing required labels ['owner']", None),
    ("gcp-labels-resource-required-keys", gcp.GKE_CLUSTER, "gke", {"resourceLabels.project": DELETE}, "missing required labels ['project']", None),
]
# fmt: on


def _case_id(case: tuple) -> str:
    policy, _, _, changes, _, _config = case
    return f"{policy}[{','.join(changes) or 'config'}]"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_breaking_one_property_is_caught(compliant_plan: Plan, case: tuple) -> None:
    policy, type_token, name, changes, expected, config = case
    broken = mutated(compliant_plan.one(type_token, name), changes)
    found = verdict(only(compliant_plan, [broken]), config).violations
    assert found, f"{policy} did not fire for {changes}"
    assert {v.policy for v in found} == {policy}, [v.message for v in found]
    assert all(v.urn == broken.urn and v.level == "mandatory" for v in found)
    assert any(expected in v.message for v in found), [v.message for v in found]


def test_every_resource_policy_has_a_breaking_case() -> None:
    covered = {case[0] for case in CASES}
    resource_policies = {p.name for p in all_policies() if isinstance(p, ResourceValidationPolicy)}
    assert resource_policies - covered == set()


def test_compliant_fixture_passes_every_policy(compliant_plan: Plan) -> None:
    result = verdict(compliant_plan)
    assert result.violations == (), result.render()


def test_compliant_fixture_has_a_resource_of_every_guarded_type(compliant_plan: Plan) -> None:
    types = {r.type for r in compliant_plan.resources}
    for policy in all_policies():
        missing = set(policy.resource_types) - types
        assert not missing, f"{policy.name}: no compliant {sorted(missing)} in the fixture"


def test_variant_types(compliant_plan: Plan) -> None:
    """Types that spell a fixture type's rule the same way are judged the same way."""
    variants = [
        (
            aws.RDS_INSTANCE,
            "postgres",
            aws.RDS_CLUSTER_INSTANCE,
            {"publiclyAccessible": True},
            "aws-rds-instance-not-public",
        ),
        (
            aws.RDS_PARAMETER_GROUP,
            "postgres",
            aws.RDS_CLUSTER_PARAMETER_GROUP,
            {"parameters.0.value": "0"},
            "aws-rds-parametergroup-force-ssl",
        ),
        (
            aws.S3_SSE,
            "artifacts",
            aws.S3_SSE_V2,
            {"rules": []},
            "aws-s3-bucketserversideencryptionconfiguration-kms",
        ),
        (
            DEP,
            "gateway",
            "kubernetes:apps/v1:StatefulSet",
            {f"{CONTAINER}.securityContext.privileged": True},
            "kubernetes-apps-workload-no-privileged",
        ),
        (
            DEP,
            "gateway",
            "kubernetes:apps/v1:DaemonSet",
            {f"{CONTAINER}.securityContext.privileged": True},
            "kubernetes-apps-workload-no-privileged",
        ),
    ]
    from dataclasses import replace

    for source_type, name, variant, changes, policy in variants:
        good = replace(compliant_plan.one(source_type, name), type=variant)
        good = replace(good, urn=good.urn.replace(source_type, variant))
        assert not [
            v for v in verdict(only(compliant_plan, [good])).violations if v.policy == policy
        ]
        bad = mutated(good, changes)
        assert policy in {v.policy for v in verdict(only(compliant_plan, [bad])).violations}


def test_cronjob_and_pod_templates_are_found(compliant_plan: Plan) -> None:
    from dataclasses import replace

    deployment = compliant_plan.one(DEP, "gateway")
    pod_spec = deployment.inputs["spec"]["template"]["spec"]
    pod = replace(deployment, type="kubernetes:core/v1:Pod", inputs={"spec": pod_spec})
    cron = replace(
        deployment,
        type="kubernetes:batch/v1:CronJob",
        inputs={"spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}},
    )
    assert verdict(only(compliant_plan, [pod, cron])).violations == ()
    broken = mutated(cron, {"spec.jobTemplate.spec.template.spec.containers.0.resources": DELETE})
    found = verdict(only(compliant_plan, [broken])).violations
    assert [v.policy for v in found] == ["kubernetes-apps-workload-resource-limits"]
    assert "spec.jobTemplate.spec.template.spec.containers[gateway]" in found[0].message


def test_private_api_endpoints_need_no_cidrs(compliant_plan: Plan) -> None:
    private = [
        mutated(
            compliant_plan.one(aws.EKS_CLUSTER, "eks"),
            {"vpcConfig.endpointPublicAccess": False, "vpcConfig.publicAccessCidrs": [WORLD]},
        ),
        mutated(
            compliant_plan.one(azure.MANAGED_CLUSTER, "aks"),
            {"apiServerAccessProfile": {"enablePrivateCluster": True}},
        ),
        mutated(
            compliant_plan.one(gcp.GKE_CLUSTER, "gke"),
            {
                "privateClusterConfig.enablePrivateEndpoint": True,
                "masterAuthorizedNetworksConfig": DELETE,
            },
        ),
    ]
    assert verdict(only(compliant_plan, private)).violations == ()


def test_allowed_public_ports_are_configurable(compliant_plan: Plan) -> None:
    ssh_open = mutated(
        compliant_plan.one(aws.SECURITY_GROUP, "cluster-sg"), {"ingress.1.cidrBlocks": [WORLD]}
    )
    plan = only(compliant_plan, [ssh_open])
    assert verdict(plan).mandatory
    config = {"aws-ec2-securitygroup-no-public-ingress": {"allowedPublicPorts": [443, 22]}}
    assert verdict(plan, config).violations == ()


def test_enforcement_level_is_configurable_per_policy(compliant_plan: Plan) -> None:
    broken = mutated(compliant_plan.one(aws.KMS_KEY, "key"), {"enableKeyRotation": False})
    plan = only(compliant_plan, [broken])
    advisory = verdict(plan, {"aws-kms-key-rotation": "advisory"})
    assert [v.level for v in advisory.violations] == ["advisory"]
    assert advisory.passed
    assert (
        verdict(plan, {"aws-kms-key-rotation": {"enforcementLevel": "disabled"}}).violations == ()
    )
    assert verdict(plan, {"all": "advisory"}).passed


def test_workload_rules_skip_exempt_namespaces_only(compliant_plan: Plan) -> None:
    root = mutated(
        compliant_plan.one(DEP, "gateway"),
        {f"{POD}.securityContext.runAsNonRoot": False, "metadata.namespace": "third-party"},
    )
    plan = only(compliant_plan, [root])
    policy = "kubernetes-apps-workload-run-as-non-root"
    assert [v.policy for v in verdict(plan).violations] == [policy]
    assert verdict(plan, {policy: {"exemptNamespaces": ["third-party"]}}).violations == ()
    assert verdict(plan, {policy: {"exemptNamespaces": ["monitoring"]}}).violations


def test_aks_disks_may_be_encrypted_with_a_disk_encryption_set(compliant_plan: Plan) -> None:
    no_host = {"agentPoolProfiles.0.enableEncryptionAtHost": False}
    cluster = mutated(compliant_plan.one(azure.MANAGED_CLUSTER, "aks"), no_host)
    assert verdict(only(compliant_plan, [cluster])).violations
    with_set = mutated(cluster, {"diskEncryptionSetID": "/subscriptions/x/diskEncryptionSets/des"})
    assert verdict(only(compliant_plan, [with_set])).violations == ()


def test_aks_local_accounts_are_allowed_outside_the_listed_environments(
    compliant_plan: Plan,
) -> None:
    changes = {"disableLocalAccounts": False, "tags.environment": "dev"}
    dev_cluster = mutated(compliant_plan.one(azure.MANAGED_CLUSTER, "aks"), changes)
    assert verdict(only(compliant_plan, [dev_cluster])).violations == ()
