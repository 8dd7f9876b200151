"""Every resource policy: the compliant fixture passes; each way to break it is caught.

Each case changes one property (occasionally two that only mean something
together) of one compliant resource of the guarded fixture program, evaluates
the whole pack on that resource alone, and asserts that exactly the expected
policy fires, with a message naming the property to set.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pulumi_policy import ResourceValidationPolicy

from infra.offline import Plan
from policies import aws, azure, gcp, iam, kubernetes, tagging
from policies.pack import all_policies
from tests.policies.conftest import DELETE, as_type, mutated, only, verdict

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
    # CKV_AWS_46: credentials in user data (base64 on launch templates, plain on instances).
    ("aws-ec2-launchtemplate-no-secrets-in-user-data", aws.LAUNCH_TEMPLATE, "nodes", {"userData": "IyEvYmluL3NoCmV4cG9ydCBBV1NfQUNDRVNTX0tFWV9JRD1BS0lBSU9TRk9ETk43RVhBTVBMRQo="}, "userData holds an AWS access key id", None),
    ("aws-ec2-launchtemplate-no-secrets-in-user-data", aws.LAUNCH_TEMPLATE, "nodes", {"userData": "IyEvYmluL3NoCkRCX1BBU1NXT1JEPWh1bnRlcjJodW50ZXIyCg=="}, "userData holds a secret-looking assignment", None),
    ("aws-ec2-launchtemplate-no-secrets-in-user-data", aws.EC2_INSTANCE, "bastion", {"userData": "-----BEGIN RSA PRIVATE KEY-----"}, "userData holds a private key", None),
    ("aws-ec2-launchtemplate-imdsv2", aws.LAUNCH_TEMPLATE, "nodes", {"metadataOptions": DELETE}, "metadataOptions.httpTokens is not 'required'", None),
    ("aws-s3-bucketpublicaccessblock-enabled", aws.S3_PUBLIC_ACCESS_BLOCK, "artifacts", {"blockPublicAcls": False}, "set blockPublicAcls=True", None),
    ("aws-s3-bucketpublicaccessblock-enabled", aws.S3_PUBLIC_ACCESS_BLOCK, "artifacts", {"blockPublicPolicy": False}, "set blockPublicPolicy=True", None),
    ("aws-s3-bucketpublicaccessblock-enabled", aws.S3_PUBLIC_ACCESS_BLOCK, "artifacts", {"ignorePublicAcls": DELETE}, "set ignorePublicAcls=True", None),
    ("aws-s3-bucketpublicaccessblock-enabled", aws.S3_PUBLIC_ACCESS_BLOCK, "artifacts", {"restrictPublicBuckets": False}, "set restrictPublicBuckets=True", None),
    ("aws-s3-bucketserversideencryptionconfiguration-kms", aws.S3_SSE, "artifacts", {"rules.0.applyServerSideEncryptionByDefault.sseAlgorithm": "AES256"}, "sseAlgorithm is ['AES256']", None),
    ("aws-ecr-repository-kms", aws.ECR_REPOSITORY, "images", {"encryptionConfigurations.0.encryptionType": "AES256"}, "set encryptionType='KMS'", None),
    ("aws-ecr-repository-kms", aws.ECR_REPOSITORY, "images", {"encryptionConfigurations": DELETE}, "set encryptionType='KMS'", None),
    ("aws-rds-instance-not-public", aws.RDS_INSTANCE, "postgres", {"publiclyAccessible": True}, "set publiclyAccessible=False", None),
    ("aws-eks-cluster-endpoint-restricted", aws.EKS_CLUSTER, "eks", {"vpcConfig.publicAccessCidrs": [WORLD]}, "vpcConfig.publicAccessCidrs ['0.0.0.0/0'] opens the endpoint", None),
    ("aws-eks-cluster-endpoint-restricted", aws.EKS_CLUSTER, "eks", {"vpcConfig.publicAccessCidrs": ["::/0"]}, "['::/0'] opens the endpoint", None),
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
    ("aws-rds-parametergroup-force-ssl", aws.RDS_PARAMETER_GROUP, "postgres", {"parameters.0.value": "false"}, "rds.force_ssl is false", None),
    ("aws-rds-parametergroup-force-ssl", aws.RDS_PARAMETER_GROUP, "postgres", {"family": "mysql8.0", "parameters": []}, "require_secure_transport is unset (OFF)", None),
    # Omitted = the engine's default group: TLS optional before PostgreSQL 15.
    ("aws-rds-parametergroup-force-ssl", aws.RDS_INSTANCE, "postgres", {"parameterGroupName": DELETE, "engineVersion": "14.9"}, "postgres 14 on the default parameter group leaves rds.force_ssl=0", None),
    ("aws-rds-parametergroup-force-ssl", aws.RDS_INSTANCE, "postgres", {"parameterGroupName": "default.postgres13", "engineVersion": "13.4"}, "on the default parameter group", None),
    ("aws-rds-instance-multi-az", aws.RDS_INSTANCE, "postgres", {"multiAz": DELETE}, "multiAz is not true in production", None),
    ("aws-rds-instance-log-exports", aws.RDS_INSTANCE, "postgres", {"enabledCloudwatchLogsExports": ["upgrade"]}, "enabledCloudwatchLogsExports lacks 'postgresql'", None),
    ("aws-elasticache-replicationgroup-multi-az", aws.ELASTICACHE_REPLICATION_GROUP, "redis", {"multiAzEnabled": False}, "set multiAzEnabled=True", None),
    ("aws-elasticache-replicationgroup-multi-az", aws.ELASTICACHE_REPLICATION_GROUP, "redis", {"numCacheClusters": 1}, "numCacheClusters is below 2", None),
    ("aws-elasticache-replicationgroup-customer-managed-key", aws.ELASTICACHE_REPLICATION_GROUP, "redis", {"kmsKeyId": DELETE}, "kmsKeyId is not set", None),
    ("aws-eks-cluster-control-plane-logs", aws.EKS_CLUSTER, "eks", {"enabledClusterLogTypes": DELETE}, "enabledClusterLogTypes lacks ['api', 'audit', 'authenticator']", None),
    ("aws-eks-cluster-control-plane-logs", aws.EKS_CLUSTER, "eks", {"enabledClusterLogTypes": ["api", "authenticator"]}, "lacks ['audit']", None),
    ("aws-cloudwatch-loggroup-retention", aws.LOG_GROUP, "cluster-logs", {"retentionInDays": 90}, "retentionInDays is 90: keep logs at least 365 days", None),
    ("aws-ec2-launchtemplate-imdsv2", aws.LAUNCH_TEMPLATE, "nodes", {"metadataOptions.httpPutResponseHopLimit": 2}, "httpPutResponseHopLimit is 2: set it to at most 1", None),
    ("aws-ec2-launchtemplate-imdsv2", aws.EC2_INSTANCE, "bastion", {"metadataOptions": DELETE}, "metadataOptions.httpTokens is not 'required'", None),
    ("aws-ec2-launchtemplate-imdsv2", aws.INSTANCE_METADATA_DEFAULTS, "imds-defaults", {"httpTokens": "optional"}, "account-wide IMDSv2", None),
    ("aws-ec2-launchtemplate-ebs-encrypted", aws.EC2_INSTANCE, "bastion", {"rootBlockDevice": DELETE}, "rootBlockDevice.encrypted is not true", None),
    ("aws-ec2-launchtemplate-ebs-encrypted", aws.EBS_ENCRYPTION_BY_DEFAULT, "ebs-default", {"enabled": False}, "every new EBS volume in the region is encrypted", None),
    ("aws-ec2-launchtemplate-no-public-ip", aws.LAUNCH_TEMPLATE, "nodes", {"networkInterfaces.0.associatePublicIpAddress": "true"}, "networkInterfaces[0].associatePublicIpAddress is true", None),
    ("aws-ec2-launchtemplate-no-public-ip", aws.EC2_INSTANCE, "bastion", {"associatePublicIpAddress": True}, "associatePublicIpAddress is true", None),
    ("aws-ec2-defaultsecuritygroup-no-rules", aws.DEFAULT_SECURITY_GROUP, "default-sg", {"egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.0.0.0/8"]}]}, "egress is not empty", None),
    ("aws-ec2-securitygroup-no-public-ingress", aws.SECURITY_GROUP, "cluster-sg", {"ingress.1.cidrBlocks": ["0.0.0.0/1", "128.0.0.0/1"]}, "ingress[1] opens port 22/tcp", None),
    ("aws-s3-bucketpublicaccessblock-enabled", aws.ACCOUNT_PUBLIC_ACCESS_BLOCK, "account", {"blockPublicPolicy": False}, "set blockPublicPolicy=True", None),
    ("aws-rds-instance-customer-managed-key", aws.RDS_INSTANCE, "postgres", {"performanceInsightsKmsKeyId": DELETE}, "performanceInsightsKmsKeyId is not set while Performance Insights is on", None),
    ("aws-rds-instance-iam-authentication", aws.RDS_INSTANCE, "postgres", {"iamDatabaseAuthenticationEnabled": DELETE}, "iamDatabaseAuthenticationEnabled is not true", None),
    ("aws-rds-instance-iam-authentication", aws.RDS_CLUSTER, "aurora", {"iamDatabaseAuthenticationEnabled": False}, "iamDatabaseAuthenticationEnabled is not true", None),
    ("aws-rds-instance-patching", aws.RDS_INSTANCE, "postgres", {"autoMinorVersionUpgrade": False}, "autoMinorVersionUpgrade is false", None),
    ("aws-rds-instance-patching", aws.RDS_CLUSTER_INSTANCE, "aurora-1", {"caCertIdentifier": "rds-ca-2019"}, "caCertIdentifier is rds-ca-2019 (expired)", None),
    ("aws-kms-key-no-lockout-bypass", aws.KMS_KEY, "key", {"bypassPolicyLockoutSafetyCheck": True}, "bypassPolicyLockoutSafetyCheck is true", None),
    ("aws-kms-key-policy-not-public", aws.KMS_KEY, "key", {"policy": DELETE}, "policy is not set", None),
    ("aws-eks-nodegroup-no-public-ssh", aws.EKS_NODE_GROUP, "nodes", {"remoteAccess": {"ec2SshKey": "ops"}}, "opens SSH (22) to 0.0.0.0/0", None),
    ("aws-ec2-subnet-no-public-ip-on-launch", aws.SUBNET, "public", {"mapPublicIpOnLaunch": True}, "mapPublicIpOnLaunch is true", None),
    ("aws-ebs-volume-customer-managed-key", aws.EBS_VOLUME, "data", {"kmsKeyId": DELETE}, "kmsKeyId is not set", None),
    ("aws-iam-policy-no-administrator", iam.ROLE_POLICY, "app", {"policy": '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::bucket"}]}'}, "allows Action '*' on ['arn:aws:s3:::bucket']", None),
    ("aws-iam-role-trust-not-public", iam.ROLE, "app", {"assumeRolePolicy": '{"Statement": [{"Effect": "Allow", "Principal": {"Service": "*"}, "Action": "sts:AssumeRole"}]}'}, "allows Principal '*'", None),
    ("aws-ec2-securitygroup-descriptions", aws.SECURITY_GROUP, "cluster-sg", {"description": "Managed by Pulumi"}, "description is the default", None),
    ("aws-ec2-securitygroup-descriptions", aws.SECURITY_GROUP_INGRESS_RULE, "postgres-in", {"description": DELETE}, "description is not set", None),
    ("aws-ec2-securitygroup-no-open-egress", aws.SECURITY_GROUP, "cluster-sg", {"egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"], "description": "all"}]}, "egress[0] allows every protocol and port", None),
    ("aws-ec2-securitygroup-no-open-egress", aws.SECURITY_GROUP_RULE, "redis-in", {"type": "egress", "protocol": "-1", "cidrBlocks": ["0.0.0.0/1", "128.0.0.0/1"]}, "allows every protocol and port", None),
    ("aws-rds-instance-performance-insights", aws.RDS_INSTANCE, "postgres", {"performanceInsightsEnabled": DELETE, "performanceInsightsKmsKeyId": DELETE}, "performanceInsightsEnabled is not true", None),
    ("aws-rds-instance-backups", aws.RDS_INSTANCE, "postgres", {"copyTagsToSnapshot": DELETE}, "copyTagsToSnapshot is not true", None),
    ("aws-kms-key-enabled", aws.KMS_KEY, "key", {"isEnabled": False}, "isEnabled is false", None),
    ("aws-kms-key-description", aws.KMS_KEY, "key", {"description": DELETE}, "description is not set", None),
    ("aws-cloudwatch-metricalarm-actions-enabled", aws.METRIC_ALARM, "errors", {"actionsEnabled": False}, "actionsEnabled is false", None),
    ("aws-cloudwatch-loggroup-retention", aws.LOG_GROUP, "cluster-logs", {"retentionInDays": DELETE}, "retentionInDays is not set", None),
    ("azure-containerservice-managedcluster-node-pools", azure.MANAGED_CLUSTER, "aks", {"agentPoolProfiles.0.maxPods": 30}, "maxPods is 30", None),
    ("azure-containerservice-managedcluster-node-pools", azure.AGENT_POOL, "user", {"type": "AvailabilitySet"}, "type is AvailabilitySet", None),
    ("azure-containerservice-managedcluster-uptime-sla", azure.MANAGED_CLUSTER, "aks", {"sku": DELETE}, "sku.tier is Free in production", None),
    ("azure-containerservice-managedcluster-network-policy", azure.MANAGED_CLUSTER, "aks", {"networkProfile.networkPlugin": "kubenet"}, "networkPlugin is kubenet", None),
    ("azure-network-subnet-nsg", azure.SUBNET, "nodes", {"networkSecurityGroup": DELETE}, "networkSecurityGroup is not set", None),
    ("gcp-container-cluster-separate-node-pools", gcp.GKE_CLUSTER, "gke", {"nodePools": [{"name": "inline"}]}, "nodePools are declared inside the cluster", None),
    ("kubernetes-autoscaling-hpa-min-replicas", kubernetes.HPA, "gateway", {"spec.minReplicas": DELETE}, "spec.minReplicas is 1 in production", None),
    ("kubernetes-apps-workload-recommended-labels", DEP, "gateway", {"metadata.labels": DELETE}, "lacks ['app.kubernetes.io/name']", None),
    # ------------------------------------------------------ AWS IAM and key policies
    ("aws-iam-policy-no-administrator", iam.ROLE_POLICY, "app", {"policy": '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'}, "allows Action '*' on Resource '*'", None),
    ("aws-iam-policy-no-administrator", iam.ROLE_POLICY, "app", {"policy": '{"Statement": {"Effect": "Allow", "Action": ["*:*"], "Resource": ["*"]}}'}, "allows Action '*' on Resource '*'", None),
    ("aws-iam-policy-no-administrator", iam.ROLE_POLICY, "app", {"policy": '{"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]}'}, "allows NotAction", None),
    ("aws-iam-policy-no-administrator", iam.ROLE_POLICY, "app", {"policy": '{"Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]}'}, "privilege escalation", None),
    ("aws-iam-policy-no-administrator", iam.ROLE_POLICY_ATTACHMENT, "app", {"policyArn": "arn:aws:iam::aws:policy/PowerUserAccess"}, "policyArn is arn:aws:iam::aws:policy/PowerUserAccess", None),
    ("aws-iam-role-trust-not-public", iam.ROLE, "app", {"assumeRolePolicy": '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}]}'}, "allows Principal '*' without a condition", None),
    ("aws-iam-role-trust-not-public", iam.ROLE, "app", {"assumeRolePolicy": '{"Statement": [{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}}]}'}, "add a condition on the token's ':sub'", None),
    ("aws-kms-key-policy-not-public", aws.KMS_KEY, "key", {"policy": '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContextKeys": "x"}}}]}'}, "allows Principal '*' without a condition on the caller", None),
    ("aws-iam-resourcepolicy-not-public", iam.BUCKET_POLICY, "artifacts", {"policy": '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}'}, "allows Principal '*'", None),
    # ------------------------------------------------------- Azure
    ("azure-containerservice-managedcluster-rbac", azure.MANAGED_CLUSTER, "aks", {"enableRBAC": False}, "enableRBAC is false: set enableRBAC=True", None),
    ("azure-containerservice-managedcluster-local-accounts-disabled", azure.MANAGED_CLUSTER, "aks", {"disableLocalAccounts": DELETE}, "disableLocalAccounts is not true in stack prod: set disableLocalAccounts=True", None),
    # A tag the resource sets never relaxes a rule: the stack is prod whatever the tag says.
    ("azure-containerservice-managedcluster-local-accounts-disabled", azure.MANAGED_CLUSTER, "aks", {"disableLocalAccounts": False, "tags.environment": "dev"}, "not true in stack prod", None),
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
    ("azure-containerservice-managedcluster-api-restricted", azure.MANAGED_CLUSTER, "aks", {"apiServerAccessProfile.authorizedIPRanges": [WORLD]}, "authorizedIPRanges ['0.0.0.0/0'] opens", None),
    ("azure-containerservice-managedcluster-api-restricted", azure.MANAGED_CLUSTER, "aks", {"apiServerAccessProfile": DELETE}, "apiServerAccessProfile.authorizedIPRanges is unset", None),
    ("azure-containerservice-managedcluster-no-node-public-ip", azure.MANAGED_CLUSTER, "aks", {"agentPoolProfiles.0.enableNodePublicIP": True}, "agentPoolProfiles[0].enableNodePublicIP is true: set enableNodePublicIP=False", None),
    ("azure-containerservice-agentpool-no-node-public-ip", azure.AGENT_POOL, "user", {"enableNodePublicIP": True}, "set enableNodePublicIP=False", None),
    ("azure-storage-storageaccount-secure-transfer", azure.STORAGE_ACCOUNT, "storage", {"enableHttpsTrafficOnly": False}, "set enableHttpsTrafficOnly=True", None),
    ("azure-storage-storageaccount-secure-transfer", azure.STORAGE_ACCOUNT, "storage", {"minimumTlsVersion": "TLS1_1"}, "set minimumTlsVersion='TLS1_2'", None),
    ("azure-storage-storageaccount-no-public-blob", azure.STORAGE_ACCOUNT, "storage", {"allowBlobPublicAccess": True}, "set allowBlobPublicAccess=False", None),
    ("azure-containerservice-managedcluster-addons", azure.MANAGED_CLUSTER, "aks", {"addonProfiles.omsagent.enabled": False}, "addonProfiles.omsagent is not enabled", None),
    ("azure-containerservice-managedcluster-addons", azure.MANAGED_CLUSTER, "aks", {"addonProfiles.kubeDashboard": {"enabled": True}}, "addonProfiles.kubedashboard is enabled", None),
    ("azure-containerservice-managedcluster-addons", azure.MANAGED_CLUSTER, "aks", {"addonProfiles.httpApplicationRouting": {"enabled": True}}, "addonProfiles.httpapplicationrouting is enabled", None),
    ("azure-containerservice-managedcluster-auto-upgrade", azure.MANAGED_CLUSTER, "aks", {"autoUpgradeProfile": DELETE}, "autoUpgradeProfile.upgradeChannel is none", None),
    # The allowed public port is TCP: UDP (or any protocol) 443 from the internet is not.
    ("azure-network-networksecuritygroup-no-public-ingress", azure.NETWORK_SECURITY_GROUP, "nsg", {"securityRules.0.protocol": "Udp"}, "securityRules[https] opens port(s) ['443']", None),
    ("azure-network-networksecuritygroup-no-public-ingress", azure.NETWORK_SECURITY_GROUP, "nsg", {"securityRules.0.protocol": "*"}, "securityRules[https] opens port(s) ['443']", None),
    ("azure-authorization-roleassignment-no-privileged-broad-scope", azure.ROLE_ASSIGNMENT, "reader", {"roleDefinitionId": "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"}, "grants Contributor at scope '/subscriptions/x'", None),
    ("azure-authorization-roleassignment-no-privileged-broad-scope", azure.ROLE_ASSIGNMENT, "reader", {"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/8E3AF657-A8FF-443C-A75C-2FE8C4BCB635", "scope": "/providers/Microsoft.Management/managementGroups/root"}, "grants Owner", None),
    ("azure-containerservice-managedcluster-network-policy", azure.MANAGED_CLUSTER, "aks", {"networkProfile.networkPolicy": DELETE}, "networkProfile.networkPolicy is none", None),
    ("azure-containerservice-managedcluster-defender", azure.MANAGED_CLUSTER, "aks", {"securityProfile.defender": DELETE}, "securityProfile.defender is not enabled", None),
    ("azure-authorization-roledefinition-no-wildcard-actions", azure.ROLE_DEFINITION, "txt-records", {"permissions.0.actions": ["Microsoft.Network/dnsZones/TXT/*", " * "]}, "permissions[0].actions contains '*'", None),
    ("azure-keyvault-vault-recoverable", azure.KEY_VAULT, "kms-vault", {"properties.enablePurgeProtection": DELETE}, "set properties.enablePurgeProtection=True", None),
    ("azure-keyvault-vault-recoverable", azure.KEY_VAULT, "kms-vault", {"properties.enableSoftDelete": False}, "set properties.enableSoftDelete=True", None),
    ("azure-keyvault-secret-content-type", azure.KEY_VAULT_SECRET, "owner-secret", {"properties.contentType": DELETE}, "properties.contentType is not set", None),
    ("azure-security-pricing-standard", azure.DEFENDER_PRICING, "defender-containers", {"pricingTier": "Free"}, "pricingTier is Free for the Containers plan", None),
    ("azure-security-pricing-standard", azure.DEFENDER_PRICING, "defender-containers", {"pricingTier": DELETE}, "pricingTier is unset", None),
    ("azure-containerservice-managedcluster-kms", azure.MANAGED_CLUSTER, "aks", {"securityProfile.azureKeyVaultKms.enabled": False}, "securityProfile.azureKeyVaultKms is not enabled", None),
    ("azure-dbforpostgresql-server-high-availability", azure.POSTGRES_SERVER, "postgres", {"highAvailability": DELETE}, "highAvailability.mode is unset (Disabled) in production", None),
    ("azure-dbforpostgresql-server-high-availability", azure.POSTGRES_SERVER, "postgres", {"backup.geoRedundantBackup": "Disabled"}, "backup.geoRedundantBackup is not Enabled", None),
    ("azure-dbforpostgresql-server-customer-managed-key", azure.POSTGRES_SERVER, "postgres", {"dataEncryption": DELETE}, "dataEncryption.type is not AzureKeyVault", None),
    ("azure-redisenterprise-redisenterprise-high-availability", azure.REDIS_ENTERPRISE, "redis", {"highAvailability": "Disabled"}, "highAvailability is Disabled in production", None),
    ("azure-redisenterprise-redisenterprise-customer-managed-key", azure.REDIS_ENTERPRISE, "redis", {"encryption": DELETE}, "encryption.customerManagedKeyEncryption is not set", None),
    ("azure-storage-storageaccount-network-deny", azure.STORAGE_ACCOUNT, "storage", {"networkRuleSet": DELETE}, "networkRuleSet.defaultAction is not Deny", None),
    ("azure-network-networksecuritygroup-no-public-ingress", azure.NETWORK_SECURITY_GROUP, "nsg", {"securityRules.1.sourceAddressPrefix": "AzureCloud"}, "securityRules[ssh] opens port(s) ['22']", None),
    ("azure-network-networksecuritygroup-no-public-ingress", azure.SECURITY_RULE, "rdp", {"sourceAddressPrefixes": ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"]}, "opens port(s) ['3389']", None),
    ("azure-network-networksecuritygroup-no-public-ingress", azure.SECURITY_RULE, "rdp", {"sourceAddressPrefixes": ["::/0"]}, "opens port(s) ['3389']", None),
    ("azure-containerservice-managedcluster-api-restricted", azure.MANAGED_CLUSTER, "aks", {"apiServerAccessProfile.authorizedIPRanges": ["0.0.0.0/1", "128.0.0.0/1"]}, "opens the endpoint to the whole internet", None),
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
    ("gcp-sql-databaseinstance-no-public-ip", gcp.SQL_INSTANCE, "postgres", {"settings.ipConfiguration.authorizedNetworks": [{"value": WORLD}]}, "authorizedNetworks ['0.0.0.0/0'] admit the whole internet", None),
    ("gcp-container-cluster-secrets-encryption", gcp.GKE_CLUSTER, "gke", {"databaseEncryption.state": "DECRYPTED"}, "set databaseEncryption.state='ENCRYPTED'", None),
    ("gcp-container-cluster-secrets-encryption", gcp.GKE_CLUSTER, "gke", {"databaseEncryption.keyName": DELETE}, "databaseEncryption.keyName", None),
    ("gcp-container-cluster-endpoint-restricted", gcp.GKE_CLUSTER, "gke", {"masterAuthorizedNetworksConfig.cidrBlocks.0.cidrBlock": WORLD}, "cidrBlocks ['0.0.0.0/0'] opens", None),
    ("gcp-container-cluster-endpoint-restricted", gcp.GKE_CLUSTER, "gke", {"masterAuthorizedNetworksConfig": DELETE}, "masterAuthorizedNetworksConfig.cidrBlocks is empty", None),
    ("gcp-container-cluster-endpoint-restricted", gcp.GKE_CLUSTER, "gke", {"masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled": True}, "gcpPublicCidrsAccessEnabled is true: set it to False", None),
    ("gcp-container-cluster-endpoint-restricted", gcp.GKE_CLUSTER, "gke", {"masterAuthorizedNetworksConfig.cidrBlocks": [{"cidrBlock": "0.0.0.0/1"}, {"cidrBlock": "128.0.0.0/1"}]}, "opens the endpoint to the whole internet", None),
    ("gcp-container-cluster-endpoint-restricted", gcp.GKE_CLUSTER, "gke", {"masterAuthorizedNetworksConfig.cidrBlocks": [{"cidrBlock": "::/1"}, {"cidrBlock": "8000::/1"}]}, "IPv6 ranges admit more public addresses", None),
    # A rule with no source at all admits 0.0.0.0/0.
    ("gcp-compute-firewall-no-public-ingress", gcp.FIREWALL, "ingress", {"sourceRanges": DELETE, "allows.0.ports": ["22"]}, "allows[0] opens tcp ['22']", None),
    ("gcp-compute-firewall-no-public-ingress", gcp.FIREWALL, "ingress", {"sourceRanges": ["::/0"], "allows.0.ports": ["3389"]}, "opens tcp ['3389']", None),
    ("gcp-compute-firewall-no-public-ingress", gcp.FIREWALL, "ingress", {"sourceRanges": [f"{n}.0.0.0/8" for n in range(1, 40)], "allows.0.ports": ["22"]}, "opens tcp ['22']", None),
    ("gcp-sql-databaseinstance-no-public-ip", gcp.SQL_INSTANCE, "postgres", {"settings.ipConfiguration.authorizedNetworks": [{"value": "0.0.0.0/1"}, {"value": "128.0.0.0/1"}]}, "admit the whole internet", None),
    ("gcp-iam-binding-least-privilege", gcp.IAM_TYPES[0], "sa-user", {"role": "roles/iam.serviceAccountTokenCreator"}, "grants roles/iam.serviceAccountTokenCreator on the whole project", None),
    ("gcp-iam-binding-least-privilege", gcp.IAM_TYPES[0], "logs-writer", {"member": "serviceAccount:123-compute@developer.gserviceaccount.com"}, "to the default service account", None),
    ("gcp-iam-binding-least-privilege", gcp.IAM_TYPES[0], "logs-writer", {"role": "roles/storage.admin"}, "grants the administrator role roles/storage.admin", None),
    ("gcp-container-cluster-logging", gcp.GKE_CLUSTER, "gke", {"monitoringService": "none"}, "monitoringService is 'none'", None),
    ("gcp-container-cluster-logging", gcp.GKE_CLUSTER, "gke", {"loggingConfig": {"enableComponents": []}}, "loggingConfig.enableComponents is empty", None),
    ("gcp-container-cluster-patched", gcp.GKE_CLUSTER, "gke", {"releaseChannel": DELETE}, "releaseChannel.channel is unset", None),
    ("gcp-container-cluster-patched", gcp.GKE_CLUSTER, "gke", {"enableKubernetesAlpha": True}, "enableKubernetesAlpha is true", None),
    ("gcp-container-cluster-patched", gcp.GKE_CLUSTER, "gke", {"networkingMode": "ROUTES"}, "the cluster is routes-based", None),
    ("gcp-container-nodepool-cos-image", gcp.GKE_NODE_POOL, "pool", {"nodeConfig.imageType": "UBUNTU_CONTAINERD"}, "nodeConfig.imageType is UBUNTU_CONTAINERD", None),
    ("gcp-compute-subnetwork-private-google-access", gcp.SUBNETWORK, "nodes", {"privateIpGoogleAccess": DELETE}, "privateIpGoogleAccess is not true", None),
    ("gcp-sql-databaseinstance-logging-flags", gcp.SQL_INSTANCE, "postgres", {"settings.databaseFlags.0": {"name": "log_statement_stats", "value": "on"}}, "log_statement_stats is on", None),
    ("gcp-iam-binding-no-public-principals", gcp.IAM_TYPES[9], "key-user", {"member": "allAuthenticatedUsers"}, "to ['allAuthenticatedUsers']", None),
    ("gcp-iam-binding-no-basic-roles", gcp.IAM_TYPES[0], "logs-writer", {"role": "roles/owner"}, "grants the basic role roles/owner", None),
    ("gcp-container-cluster-workload-identity", gcp.GKE_CLUSTER, "gke", {"workloadIdentityConfig": DELETE}, "workloadIdentityConfig.workloadPool is not set", None),
    ("gcp-container-cluster-network-policy", gcp.GKE_CLUSTER, "gke", {"datapathProvider": DELETE}, "NetworkPolicy is not enforced", None),
    ("gcp-container-cluster-binary-authorization", gcp.GKE_CLUSTER, "gke", {"binaryAuthorization": DELETE}, "binaryAuthorization.evaluationMode is unset (DISABLED)", None),
    ("gcp-container-nodepool-metadata-server", gcp.GKE_NODE_POOL, "pool", {"nodeConfig.workloadMetadataConfig": DELETE}, "workloadMetadataConfig.mode is unset", None),
    ("gcp-container-nodepool-metadata-server", gcp.GKE_NODE_POOL, "pool", {"nodeConfig.metadata": {"disable-legacy-endpoints": "false"}}, "disable-legacy-endpoints is false", None),
    ("gcp-container-nodepool-metadata-server", gcp.GKE_CLUSTER, "gke", {"nodeConfig": {"machineType": "e2-small", "shieldedInstanceConfig": {"enableSecureBoot": True}}}, "nodeConfig.workloadMetadataConfig.mode is unset", None),
    ("gcp-container-nodepool-shielded-nodes", gcp.GKE_NODE_POOL, "pool", {"nodeConfig.shieldedInstanceConfig": DELETE}, "enableSecureBoot is not true", None),
    ("gcp-container-nodepool-shielded-nodes", gcp.GKE_CLUSTER, "gke", {"enableShieldedNodes": False}, "enableShieldedNodes is false", None),
    ("gcp-container-nodepool-auto-repair-upgrade", gcp.GKE_NODE_POOL, "pool", {"management.autoRepair": False}, "management.autoRepair is false", None),
    ("gcp-sql-databaseinstance-logging-flags", gcp.SQL_INSTANCE, "postgres", {"settings.databaseFlags.6.value": "off"}, "cloudsql.enable_pgaudit is off", None),
    ("gcp-sql-databaseinstance-logging-flags", gcp.SQL_INSTANCE, "postgres", {"settings.databaseFlags": [{"name": "log_min_duration_statement", "value": "0"}]}, "log_min_duration_statement is 0", None),
    ("gcp-sql-databaseinstance-customer-managed-key", gcp.SQL_INSTANCE, "postgres", {"encryptionKeyName": DELETE}, "encryptionKeyName is not set", None),
    ("gcp-redis-instance-customer-managed-key", gcp.REDIS_INSTANCE, "redis", {"customerManagedKey": DELETE}, "customerManagedKey is not set", None),
    ("gcp-sql-databaseinstance-high-availability", gcp.SQL_INSTANCE, "postgres", {"settings.availabilityType": DELETE}, "availabilityType is not REGIONAL in production", None),
    ("gcp-sql-databaseinstance-high-availability", gcp.SQL_INSTANCE, "postgres", {"settings.backupConfiguration.pointInTimeRecoveryEnabled": False}, "pointInTimeRecoveryEnabled is not true", None),
    ("gcp-redis-instance-high-availability", gcp.REDIS_INSTANCE, "redis", {"tier": DELETE}, "tier is unset (BASIC) in production", None),
    ("gcp-compute-subnetwork-flow-logs", gcp.SUBNETWORK, "nodes", {"logConfig": DELETE}, "logConfig is not set", None),
    ("gcp-kms-cryptokey-rotation", gcp.KMS_CRYPTO_KEY, "key", {"rotationPeriod": "31536000s"}, "rotationPeriod is 31536000s: set rotationPeriod to at most '7776000s'", None),
    ("gcp-kms-cryptokey-rotation", gcp.KMS_CRYPTO_KEY, "key", {"rotationPeriod": DELETE}, "rotationPeriod is unset", None),
    ("gcp-compute-firewall-no-public-ingress", gcp.FIREWALL, "ingress", {"allows.0.ports": ["22"]}, "allows[0] opens tcp ['22'] to 0.0.0.0/0", None),
    ("gcp-compute-firewall-no-public-ingress", gcp.FIREWALL, "ingress", {"allows.0.ports": []}, "allows[0] opens tcp ['all']", None),
    ("gcp-compute-firewall-no-public-ingress", gcp.FIREWALL, "ingress", {"allows.0.ports": ["400-500"]}, "opens tcp ['400-500']", None),
    ("gcp-compute-firewall-no-public-ingress", gcp.FIREWALL, "ingress", {"allows.0.protocol": "icmp", "allows.0.ports": []}, "opens icmp ['icmp']", None),
    # -------------------------------------------------- Kubernetes
    ("kubernetes-apps-workload-run-as-non-root", DEP, "gateway", {f'{POD}.securityContext.runAsNonRoot': False}, "may run as root: set securityContext.runAsNonRoot=True", None),
    ("kubernetes-apps-workload-run-as-non-root", DEP, "gateway", {f'{POD}.securityContext.runAsNonRoot': DELETE}, "containers[gateway] may run as root", None),
    ("kubernetes-apps-workload-run-as-non-root", DEP, "gateway", {f'{CONTAINER}.securityContext.runAsUser': 0}, "runs as user 0: set securityContext.runAsUser", None),
    ("kubernetes-apps-workload-no-privileged", DEP, "gateway", {f'{CONTAINER}.securityContext.privileged': True}, "is privileged: set securityContext.privileged=False", None),
    ("kubernetes-apps-workload-no-privileged", DEP, "gateway", {f'{CONTAINER}.securityContext.allowPrivilegeEscalation': True}, "set securityContext.allowPrivilegeEscalation=False", None),
    ("kubernetes-apps-workload-read-only-root-filesystem", DEP, "gateway", {f'{CONTAINER}.securityContext.readOnlyRootFilesystem': False}, "set securityContext.readOnlyRootFilesystem=True", None),
    ("kubernetes-apps-workload-resource-limits", DEP, "gateway", {f'{CONTAINER}.resources.limits.memory': DELETE}, "has no memory limit: set resources.limits.memory", None),
    ("kubernetes-apps-workload-resource-limits", DEP, "gateway", {f'{CONTAINER}.resources.limits': DELETE}, "has no cpu/memory limit", None),
    ("kubernetes-apps-workload-run-as-non-root", DEP, "gateway", {f'{POD}.ephemeralContainers': [{"name": "dbg", "image": "busybox:1.36", "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}}]}, "ephemeralContainers[dbg] runs as user 0", None),
    ("kubernetes-apps-workload-run-as-non-root", DEP, "gateway", {f'{CONTAINER}.securityContext.runAsUser': 1000}, "runs as UID 1000: use a UID of at least 10000", None),
    ("kubernetes-apps-workload-resource-limits", DEP, "gateway", {f'{CONTAINER}.resources.requests': DELETE}, "has no cpu/memory request", None),
    ("kubernetes-apps-workload-probes", DEP, "gateway", {f'{CONTAINER}.readinessProbe': DELETE}, "has no readinessProbe", None),
    ("kubernetes-apps-workload-probes", DEP, "gateway", {f'{CONTAINER}.livenessProbe': DELETE}, "has no livenessProbe", None),
    ("kubernetes-rbac-role-no-wildcards", kubernetes.ROLE, "gateway", {"rules.0.resources": ["pods/exec"], "rules.0.verbs": ["create"]}, "can write pods/exec", None),
    ("kubernetes-rbac-role-no-wildcards", kubernetes.ROLE, "gateway", {"rules.0.resources": ["certificatesigningrequests/approval"], "rules.0.verbs": ["update"]}, "can issue cluster credentials", None),
    ("kubernetes-networking-ingress-no-snippets", "kubernetes:networking.k8s.io/v1:Ingress", "gateway", {"metadata.annotations": {"nginx.ingress.kubernetes.io/server-snippet": "location /x {}"}}, "sets nginx.ingress.kubernetes.io/server-snippet", None),
    ("kubernetes-policy-poddisruptionbudget-allows-disruption", "kubernetes:policy/v1:PodDisruptionBudget", "gateway", {"spec.maxUnavailable": DELETE, "spec.minAvailable": "100%"}, "allows no voluntary disruption", None),
    ("kubernetes-core-pod-no-host-namespaces", DEP, "gateway", {f'{POD}.hostPID': True}, "hostPID is true", None),
    ("kubernetes-core-pod-no-host-namespaces", DEP, "gateway", {f'{POD}.hostIPC': True}, "hostIPC is true", None),
    ("kubernetes-core-pod-no-host-path", DEP, "gateway", {f'{POD}.volumes': [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]}, "volume docker is a hostPath", None),
    ("kubernetes-core-pod-no-host-port", DEP, "gateway", {f'{CONTAINER}.ports': [{"containerPort": 8080, "hostPort": 8080}]}, "binds hostPort 8080", None),
    ("kubernetes-core-pod-capabilities", DEP, "gateway", {f'{CONTAINER}.securityContext.capabilities.add': ["CAP_NET_ADMIN"]}, "adds capabilities ['CAP_NET_ADMIN']", None),
    ("kubernetes-core-pod-capabilities", DEP, "gateway", {f'{CONTAINER}.securityContext.capabilities': DELETE}, "set securityContext.capabilities.drop=['ALL']", None),
    ("kubernetes-core-pod-seccomp", DEP, "gateway", {f'{POD}.securityContext.seccompProfile': DELETE}, "has no seccomp profile", None),
    ("kubernetes-core-pod-seccomp", DEP, "gateway", {f'{CONTAINER}.securityContext.seccompProfile': {"type": "Unconfined"}}, "seccompProfile.type is Unconfined", None),
    ("kubernetes-core-pod-image-pinned", DEP, "gateway", {f'{CONTAINER}.image': "ghcr.io/acme/ai-gateway"}, "uses a mutable tag (none, so latest)", None),
    ("kubernetes-core-pod-image-pinned", DEP, "gateway", {f'{CONTAINER}.image': "registry.local:5000/gateway:latest"}, "uses a mutable tag (latest)", None),
    ("kubernetes-core-pod-image-pinned", DEP, "gateway", {}, "has no digest: pin it", {"kubernetes-core-pod-image-pinned": {"requireDigest": True}}),
    ("kubernetes-core-pod-no-token-automount", DEP, "gateway", {f'{POD}.automountServiceAccountToken': True}, "automountServiceAccountToken is true", None),
    ("kubernetes-core-pod-no-token-automount", DEP, "gateway", {f'{POD}.automountServiceAccountToken': DELETE, f'{POD}.serviceAccountName': DELETE}, "runs as the namespace's default service account", None),
    ("kubernetes-core-pod-no-token-automount", "kubernetes:core/v1:ServiceAccount", "gateway", {"automountServiceAccountToken": DELETE}, "automountServiceAccountToken is not false", None),
    ("kubernetes-core-object-no-default-namespace", "kubernetes:core/v1:ServiceAccount", "gateway", {"metadata.namespace": DELETE}, "metadata.namespace is unset (the default namespace)", None),
    ("kubernetes-core-object-no-default-namespace", "kubernetes:core/v1:Service", "gateway", {"metadata.namespace": "default"}, "metadata.namespace is default", None),
    ("kubernetes-core-service-no-node-port", "kubernetes:core/v1:Service", "gateway", {"spec.type": "NodePort"}, "spec.type is NodePort", None),
    ("kubernetes-core-service-no-node-port", "kubernetes:core/v1:Service", "gateway", {"spec.externalIPs": ["203.0.113.7"]}, "spec.externalIPs is set", None),
    ("kubernetes-rbac-role-no-wildcards", kubernetes.ROLE, "gateway", {"rules.0.resources": ["*"]}, "rules[0].resources contains '*'", None),
    ("kubernetes-rbac-role-no-wildcards", kubernetes.ROLE, "gateway", {"rules.0.verbs": ["get", "escalate"]}, "grants ['escalate']", None),
    ("kubernetes-rbac-role-no-wildcards", kubernetes.ROLE, "gateway", {"rules.0.resources": ["secrets"], "rules.0.verbs": ["list"]}, "can list or watch secrets", None),
    ("kubernetes-rbac-binding-least-privilege", kubernetes.ROLE_BINDING, "gateway", {"roleRef.name": "cluster-admin"}, "roleRef is cluster-admin", None),
    ("kubernetes-rbac-binding-least-privilege", kubernetes.ROLE_BINDING, "gateway", {"subjects.0.name": "default"}, "subjects include a default service account", None),
    ("kubernetes-rbac-binding-least-privilege", kubernetes.ROLE_BINDING, "gateway", {"subjects": [{"kind": "Group", "name": "system:unauthenticated"}]}, "subjects include system:unauthenticated", None),
    ("kubernetes-core-service-loadbalancer-ingress-only", "kubernetes:core/v1:Service", "gateway", {"spec.type": "LoadBalancer"}, "Service gateway is type LoadBalancer: set spec.type='ClusterIP'", None),
    # ----------------------------------------------------- tagging
    ("aws-tags-resource-required-keys", aws.KMS_KEY, "key", {"tags.owner": DELETE}, "missing required tags ['owner']: set them in tags", None),
    ("aws-tags-resource-required-keys", aws.RDS_INSTANCE, "postgres", {"tags.cost-center": ""}, "missing required tags ['cost-center']", None),
    ("aws-tags-resource-required-keys", aws.SNS_TOPIC, "alerts", {}, "missing required tags ['team']", {"aws-tags-resource-required-keys": {"requiredKeys": ["owner", "team"]}}),
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
    plan = only(compliant_plan, [broken])
    # A config that changes a requirement (requiredKeys) may hold the context resources
    # that came along to it too; the case is about the broken resource.
    context = {r.urn for r in plan.resources if r.urn != broken.urn}
    found = [v for v in verdict(plan, config).violations if not (config and v.urn in context)]
    assert found, f"{policy} did not fire for {changes}"
    assert {v.policy for v in found} == {policy}, [v.message for v in found]
    level = {p.name: p.enforcement_level.value for p in all_policies()}[policy]
    assert all(v.urn == broken.urn and v.level == level for v in found)
    assert any(expected in v.message for v in found), [v.message for v in found]


def test_every_resource_policy_has_a_breaking_case() -> None:
    covered = {case[0] for case in CASES}
    resource_policies = {p.name for p in all_policies() if isinstance(p, ResourceValidationPolicy)}
    assert resource_policies - covered == set()


def test_compliant_fixture_passes_every_policy(compliant_plan: Plan) -> None:
    result = verdict(compliant_plan)
    assert result.violations == (), result.render()


def _privileged_at(kind: str) -> dict[str, Any]:
    path = kubernetes.POD_SPEC_PATHS.get(kind) or kubernetes.PATCH_PATHS[kind]
    return {f"{path}.containers.0.securityContext.privileged": True}


_ADMIN = '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
_PUBLIC = '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}'
# (variant type, fixture type, fixture name, {path: breaking value}, policy): types that
# carry the same setting as a fixture resource, judged the same way.
VARIANTS: list[tuple[str, str, str, dict[str, Any], str]] = [
    (
        aws.RDS_CLUSTER_INSTANCE,
        aws.RDS_INSTANCE,
        "postgres",
        {"publiclyAccessible": True},
        "aws-rds-instance-not-public",
    ),
    (
        aws.RDS_CLUSTER_PARAMETER_GROUP,
        aws.RDS_PARAMETER_GROUP,
        "postgres",
        {"parameters.0.value": "0"},
        "aws-rds-parametergroup-force-ssl",
    ),
    (
        aws.S3_SSE_V2,
        aws.S3_SSE,
        "artifacts",
        {"rules": []},
        "aws-s3-bucketserversideencryptionconfiguration-kms",
    ),
    (
        aws.ELASTICACHE_SERVERLESS,
        aws.ELASTICACHE_REPLICATION_GROUP,
        "redis",
        {"kmsKeyId": DELETE},
        "aws-elasticache-replicationgroup-customer-managed-key",
    ),
    *[
        (t, iam.ROLE_POLICY, "app", {"policy": _ADMIN}, "aws-iam-policy-no-administrator")
        for t in (iam.USER_POLICY, iam.GROUP_POLICY, iam.POLICY)
    ],
    *[
        (
            t,
            iam.ROLE_POLICY_ATTACHMENT,
            "app",
            {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            "aws-iam-policy-no-administrator",
        )
        for t in (iam.USER_POLICY_ATTACHMENT, iam.GROUP_POLICY_ATTACHMENT, iam.POLICY_ATTACHMENT)
    ],
    (iam.KMS_KEY_POLICY, aws.KMS_KEY, "key", {"policy": _PUBLIC}, "aws-kms-key-policy-not-public"),
    *[
        (
            t,
            iam.BUCKET_POLICY,
            "artifacts",
            {"policy": _PUBLIC},
            "aws-iam-resourcepolicy-not-public",
        )
        for t in (iam.TOPIC_POLICY, iam.QUEUE_POLICY, iam.ECR_REPOSITORY_POLICY, iam.SECRET_POLICY)
    ],
    *[
        (
            t,
            gcp.IAM_TYPES[0],
            "logs-writer",
            {"member": "allUsers"},
            "gcp-iam-binding-no-public-principals",
        )
        for t in gcp.IAM_TYPES[1:]
        if t != gcp.IAM_TYPES[9]
    ],
    *[
        (t, DEP, "gateway", _privileged_at(t), "kubernetes-apps-workload-no-privileged")
        for t in kubernetes.WORKLOADS
        if t != DEP
    ],
    *[
        (
            t,
            kubernetes.ROLE,
            "gateway",
            {"rules.0.verbs": ["*"]},
            "kubernetes-rbac-role-no-wildcards",
        )
        for t in kubernetes.ROLES
        if t != kubernetes.ROLE
    ],
    *[
        (
            t,
            kubernetes.ROLE_BINDING,
            "gateway",
            {"roleRef.name": "cluster-admin"},
            "kubernetes-rbac-binding-least-privilege",
        )
        for t in kubernetes.BINDINGS
        if t != kubernetes.ROLE_BINDING
    ],
    (
        aws.SECURITY_GROUP_EGRESS_RULE,
        aws.SECURITY_GROUP_INGRESS_RULE,
        "postgres-in",
        {"ipProtocol": "-1", "cidrIpv6": "::/0"},
        "aws-ec2-securitygroup-no-open-egress",
    ),
    (
        kubernetes.SERVICE_PATCH,
        kubernetes.SERVICE,
        "gateway",
        {"spec.type": "NodePort"},
        "kubernetes-core-service-no-node-port",
    ),
    (
        f"{kubernetes.INGRESS}Patch",
        kubernetes.INGRESS,
        "gateway",
        {"metadata.annotations": {"x/server-snippet": "y"}},
        "kubernetes-networking-ingress-no-snippets",
    ),
    (
        f"{kubernetes.PDB}Patch",
        kubernetes.PDB,
        "gateway",
        {"spec.maxUnavailable": 0},
        "kubernetes-policy-poddisruptionbudget-allows-disruption",
    ),
    *[
        (
            t,
            kubernetes.SERVICE_ACCOUNT,
            "gateway",
            {"metadata.namespace": DELETE},
            "kubernetes-core-object-no-default-namespace",
        )
        for t in kubernetes.NAMESPACED
        if t not in kubernetes.POD_SPEC_PATHS
        and t
        not in (
            kubernetes.SERVICE,
            kubernetes.SERVICE_ACCOUNT,
            kubernetes.ROLE,
            kubernetes.ROLE_BINDING,
            kubernetes.HPA,
            kubernetes.PDB,
            kubernetes.INGRESS,
        )
    ],
]


def test_compliant_fixture_has_a_resource_of_every_guarded_type(compliant_plan: Plan) -> None:
    types = {r.type for r in compliant_plan.resources} | {v[0] for v in VARIANTS}
    for policy in all_policies():
        missing = set(policy.resource_types) - types
        assert not missing, f"{policy.name}: no compliant {sorted(missing)} in the fixture"


@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0].split(":", 1)[1] for v in VARIANTS])
def test_variant_types(compliant_plan: Plan, variant: tuple) -> None:
    """Types that spell a fixture type's setting are judged the same way (patches too)."""
    type_token, source_type, name, changes, policy = variant
    good = as_type(compliant_plan.one(source_type, name), type_token)
    if tagging.tag_path(type_token) == ("tags",) and "tags" not in good.inputs:
        # A taggable variant of an untaggable source carries the stack's tags too.
        good = mutated(good, {"tags": compliant_plan.one(aws.KMS_KEY, "key").inputs["tags"]})
    assert verdict(only(compliant_plan, [good])).violations == ()
    bad = mutated(good, changes)
    assert policy in {v.policy for v in verdict(only(compliant_plan, [bad])).violations}


def test_a_patch_is_judged_on_what_it_sets() -> None:
    """A patch that leaves a field out keeps the object's value; one that sets it badly is caught."""
    from infra.offline import RecordedResource

    patch_type = "kubernetes:apps/v1:DeploymentPatch"
    spec = {"containers": [{"name": "gateway", "image": "ghcr.io/acme/ai-gateway:0.1.0"}]}
    inputs = {
        "metadata": {"name": "gateway", "namespace": "ai-gateway"},
        "spec": {"template": {"spec": spec}},
    }
    patch = RecordedResource(
        urn=f"urn:pulumi:prod::fixture::{patch_type}::scale",
        type=patch_type,
        name="scale",
        custom=True,
        parent=None,
        provider=None,
        inputs=inputs,
        outputs=inputs,
    )
    plan = Plan(project="fixture", stack="prod", resources=[patch], outputs={}, stack_urn="")
    assert verdict(plan).violations == ()
    for changes, policy in (
        ({"spec.template.spec.hostNetwork": True}, "kubernetes-core-pod-no-host-namespaces"),
        (
            {"spec.template.spec.containers.0.securityContext": {"runAsUser": 0}},
            "kubernetes-apps-workload-run-as-non-root",
        ),
        (
            {"spec.template.spec.containers.0.securityContext": {"privileged": True}},
            "kubernetes-apps-workload-no-privileged",
        ),
        ({"spec.template.spec.containers.0.image": "busybox"}, "kubernetes-core-pod-image-pinned"),
    ):
        found = {
            v.policy for v in verdict(replace(plan, resources=[mutated(patch, changes)])).violations
        }
        assert found == {policy}, (changes, found)


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


def test_exemptions_name_a_urn_or_a_type_never_a_namespace_or_label(compliant_plan: Plan) -> None:
    root = mutated(
        compliant_plan.one(DEP, "gateway"),
        {
            f"{POD}.securityContext.runAsNonRoot": False,
            "metadata.namespace": "kube-system",
            "metadata.labels": {"app.kubernetes.io/name": "envoy"},
        },
    )
    plan = only(compliant_plan, [root])
    policy = "kubernetes-apps-workload-run-as-non-root"

    def fired(config: dict | None = None) -> bool:
        return policy in {v.policy for v in verdict(plan, config).violations}

    # Nothing the resource sets (namespace, labels, name) exempts it.
    assert fired()
    assert not fired({policy: {"exempt": [{"urn": root.urn, "reason": "vendor image, reviewed"}]}})
    assert not fired({policy: {"exempt": [{"type": DEP, "reason": "reviewed"}]}})
    assert fired({policy: {"exempt": [{"urn": root.urn + "-other", "reason": "another one"}]}})


def test_an_exemption_needs_a_reason_and_one_target(compliant_plan: Plan) -> None:
    from infra.offline.policy_gate import PolicyGateError

    plan = only(compliant_plan, [compliant_plan.one(DEP, "gateway")])
    policy = "kubernetes-apps-workload-run-as-non-root"
    for bad, why in (
        ([{"type": DEP}], "'reason' is a required property"),
        ([{"type": DEP, "reason": ""}], "should be non-empty"),
        ([{"type": DEP, "urn": "urn:pulumi:x", "reason": "r"}], "valid under each of"),
        ([{"name": "gateway", "reason": "r"}], "Additional properties"),
    ):
        with pytest.raises(PolicyGateError, match=why):
            verdict(plan, {policy: {"exempt": bad}})


def test_production_rules_follow_the_stack_not_the_tags(compliant_plan: Plan) -> None:
    single_az = mutated(
        compliant_plan.one(aws.RDS_INSTANCE, "postgres"),
        {"multiAz": False, "tags.environment": "dev"},
    )
    plan = only(compliant_plan, [single_az])
    assert [v.policy for v in verdict(plan).violations] == ["aws-rds-instance-multi-az"]
    relaxed = {"aws-rds-instance-multi-az": {"nonProductionStacks": ["pr*"]}}
    assert verdict(plan, relaxed).violations == ()


def test_aks_disks_may_be_encrypted_with_a_disk_encryption_set(compliant_plan: Plan) -> None:
    no_host = {"agentPoolProfiles.0.enableEncryptionAtHost": False}
    cluster = mutated(compliant_plan.one(azure.MANAGED_CLUSTER, "aks"), no_host)
    assert verdict(only(compliant_plan, [cluster])).violations
    with_set = mutated(cluster, {"diskEncryptionSetID": "/subscriptions/x/diskEncryptionSets/des"})
    assert verdict(only(compliant_plan, [with_set])).violations == ()


def test_aks_local_accounts_are_allowed_in_dev_stacks(compliant_plan: Plan) -> None:
    cluster = mutated(
        compliant_plan.one(azure.MANAGED_CLUSTER, "aks"), {"disableLocalAccounts": False}
    )
    dev = replace(cluster, urn=cluster.urn.replace("urn:pulumi:prod::", "urn:pulumi:dev::"))
    assert verdict(only(compliant_plan, [dev])).violations == ()
    assert verdict(only(compliant_plan, [cluster])).violations


def test_inline_role_policies_are_judged_like_attached_ones(compliant_plan: Plan) -> None:
    """A role's own inlinePolicies and managedPolicyArns: the administrator rule applies, and
    mixing them with separate attachments is a conflict of its own."""
    role = compliant_plan.one(iam.ROLE, "app")
    admin = '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
    for changes, expected in (
        (
            {"inlinePolicies": [{"name": "all", "policy": admin}]},
            "inlinePolicies[0].policy: Statement[0] allows Action '*'",
        ),
        (
            {"managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]},
            "managedPolicyArns contains arn:aws:iam::aws:policy/AdministratorAccess",
        ),
    ):
        found = verdict(only(compliant_plan, [mutated(role, changes)])).violations
        assert {v.policy for v in found} == {
            "aws-iam-policy-no-administrator",
            "aws-ec2-securitygroup-no-rule-conflicts",
        }
        assert any(expected in v.message for v in found), [v.message for v in found]
