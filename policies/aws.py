"""AWS policies: encryption at rest and in transit, and nothing reachable from the internet.

Rules follow (at least) pulumi/compliance-policies, checkov and trivy for the
same resource types; each description says why and how to fix.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy, Severity

from policies.config import Category
from policies.framework import (
    API_CIDRS,
    API_CIDRS_DOC,
    PROD_ONLY,
    PUBLIC_PORTS,
    PUBLIC_PORTS_DOC,
    WORLD,
    WORLD_DOC,
    Check,
    cidr_violations,
    get,
    is_true,
    is_world,
    items,
    ports_outside,
    requires,
    resource_policy,
)

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
RDS_CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
ELASTICACHE_REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
KMS_KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SNS_TOPIC = "aws:sns/topic:Topic"
EBS_VOLUME = "aws:ebs/volume:Volume"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
S3_BUCKET = "aws:s3/bucket:Bucket"
S3_BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
S3_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
S3_SSE_V2 = (
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
)
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP_EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ELASTIC_IP = "aws:ec2/eip:Eip"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SECURITY_GROUP_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
EC2_INSTANCE = "aws:ec2/instance:Instance"
INSTANCE_METADATA_DEFAULTS = "aws:ec2/instanceMetadataDefaults:InstanceMetadataDefaults"
EBS_ENCRYPTION_BY_DEFAULT = "aws:ebs/encryptionByDefault:EncryptionByDefault"
ACCOUNT_PUBLIC_ACCESS_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
ELASTICACHE_CLUSTER = "aws:elasticache/cluster:Cluster"
ELASTICACHE_SERVERLESS = "aws:elasticache/serverlessCache:ServerlessCache"


# ------------------------------------------------------------------ encryption


def _storage_encrypted(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "replicateSourceDb"):
        return  # a read replica inherits its source's encryption
    if not is_true(get(props, "storageEncrypted")):
        yield "storageEncrypted is not true: set storageEncrypted=True (it cannot be changed after creation)"


def _rds_backups(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "replicateSourceDb"):
        return  # replicas are backed up through their source
    if get(props, "copyTagsToSnapshot") is not True:
        yield (
            "copyTagsToSnapshot is not true: set it so snapshots carry the owner and cost-center "
            "tags (an untagged snapshot has no owner to ask before deleting it)"
        )
    days = get(props, "backupRetentionPeriod")
    minimum = int(config["minRetentionDays"])
    # Unset means the RDS default of 1 day.
    if (1 if days is None else int(days)) < minimum:
        yield (
            f"backupRetentionPeriod is {int(days) if days is not None else 'unset (1)'}: "
            f"set backupRetentionPeriod to at least {minimum}"
        )


def _customer_key(prop: str) -> Check:
    return requires(prop, "the ARN of a customer-managed KMS key")


def _major(text: str) -> int | None:
    """The major version in a family or version string (``postgres14`` -> 14, ``16.4`` -> 16)."""
    digits = re.search(r"(\d+)", text)
    return int(digits.group(1)) if digits else None


_ON = {"1", "on", "true"}


def _postgres_force_ssl(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    family = str(get(props, "family", ""))
    values = {get(p, "name"): str(get(p, "value", "")).strip() for p in items(props, "parameters")}
    if "mysql" in family or "mariadb" in family:
        secure = values.get("require_secure_transport")
        if (secure or "").lower() not in _ON:
            yield (
                f"require_secure_transport is {secure or 'unset (OFF)'}: add the parameter "
                "name='require_secure_transport', value='1' so clients must use TLS"
            )
        return
    if "postgres" not in family:
        return
    forced = values.get("rds.force_ssl")
    major = _major(family)
    # PostgreSQL 15 and later default rds.force_ssl to 1; older families default to 0.
    default_on = major is not None and major >= 15
    if (forced is not None and forced.lower() not in _ON) or (forced is None and not default_on):
        yield (
            f"rds.force_ssl is {forced or 'unset (0 for ' + family + ')'}: add the parameter "
            "name='rds.force_ssl', value='1' so clients must use TLS"
        )


def _instance_default_parameters(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    """An RDS PostgreSQL/MySQL instance on the engine's default parameter group keeps its TLS default."""
    engine = str(get(props, "engine", ""))
    group = str(get(props, "parameterGroupName", ""))
    if group and not group.startswith("default."):
        return  # its own group: judged by aws-rds-parametergroup-force-ssl
    major = _major(str(get(props, "engineVersion", "")))
    if "postgres" in engine and major is not None and major < 15:
        yield (
            f"engine {engine} {major} on the default parameter group leaves rds.force_ssl=0: "
            "set parameterGroupName to a group with rds.force_ssl=1 (or engine 15+)"
        )
    elif engine in {"mysql", "mariadb"}:
        yield (
            f"engine {engine} on the default parameter group accepts plaintext clients: set "
            "parameterGroupName to a group with require_secure_transport=1"
        )


def _elasticache_at_rest(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not is_true(get(props, "atRestEncryptionEnabled")):
        yield "atRestEncryptionEnabled is not true: set atRestEncryptionEnabled=True"


def _elasticache_in_transit(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not is_true(get(props, "transitEncryptionEnabled")):
        yield "transitEncryptionEnabled is not true: set transitEncryptionEnabled=True"
    elif str(get(props, "transitEncryptionMode", "required")).lower() == "preferred":
        yield "transitEncryptionMode is 'preferred': set transitEncryptionMode='required'"


def _elasticache_auth(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if (
        not get(props, "authToken")
        and not get(props, "authTokenWo")
        and not items(props, "userGroupIds")
    ):
        yield (
            "neither authToken nor userGroupIds is set: set authToken to a random secret "
            "(pulumi_random) or attach an RBAC user group with userGroupIds"
        )


def _eks_secrets_encryption(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    config = get(props, "encryptionConfig")
    if not config or "secrets" not in items(config, "resources"):
        yield (
            "encryptionConfig does not cover secrets: set encryptionConfig with "
            "resources=['secrets'] and provider.keyArn to a KMS key ARN"
        )
    elif not get(config, "provider.keyArn"):
        yield "encryptionConfig.provider.keyArn is not set: set it to a KMS key ARN"


def _kms_rotation(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    spec = str(get(props, "customerMasterKeySpec") or get(props, "keySpec") or "SYMMETRIC_DEFAULT")
    if spec != "SYMMETRIC_DEFAULT":
        return  # AWS rotates only symmetric keys automatically
    if not is_true(get(props, "enableKeyRotation")):
        yield "enableKeyRotation is not true: set enableKeyRotation=True"


def _ebs_volume_encrypted(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not is_true(get(props, "encrypted")):
        yield "encrypted is not true: set encrypted=True (and kmsKeyId to a customer-managed key)"


def _launch_template_ebs(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    for index, mapping in enumerate(items(props, "blockDeviceMappings")):
        ebs = get(mapping, "ebs")
        if ebs is not None and not is_true(get(ebs, "encrypted")):
            yield (
                f"blockDeviceMappings[{index}].ebs.encrypted is not 'true': "
                "set ebs.encrypted='true' on every block device mapping"
            )


def _instance_ebs(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not is_true(get(props, "rootBlockDevice.encrypted")):
        yield "rootBlockDevice.encrypted is not true: set rootBlockDevice.encrypted=True"
    for index, device in enumerate(items(props, "ebsBlockDevices")):
        if not is_true(get(device, "encrypted")):
            yield f"ebsBlockDevices[{index}].encrypted is not true: set encrypted=True"


def _encryption_by_default(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    # Account-wide: enabled=False lets every new volume in the region be created unencrypted.
    if get(props, "enabled", True) is False:
        yield "enabled is false: set enabled=True so every new EBS volume in the region is encrypted"


def _imds(options: Any, where: str, max_hops: int) -> Iterable[str]:
    if str(get(options, "httpEndpoint", "enabled")) == "disabled":
        return
    if get(options, "httpTokens") != "required":
        yield (
            f"{where}.httpTokens is not 'required': set {where}.httpTokens='required' so only "
            "IMDSv2 (session tokens) can read instance credentials"
        )
    hops = get(options, "httpPutResponseHopLimit")
    if hops is not None and int(hops) > max_hops:
        yield (
            f"{where}.httpPutResponseHopLimit is {int(hops)}: set it to at most {max_hops} so "
            "pods cannot reach the node's credentials through the metadata service"
        )


# What checkov's CKV_AWS_46 and secret scanners look for in user data: AWS access keys,
# private keys, and assignments of secret-looking names.
_USER_DATA_SECRETS = (
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (
        re.compile(
            r"(?i)\b[A-Z0-9_]*(SECRET|PASSWORD|PASSWD|TOKEN|API_KEY)[A-Z0-9_]*\s*[=:]\s*"
            r"['\"]?(?!\$)[^\s'\"]{8,}"
        ),
        "a secret-looking assignment",
    ),
)


def _decoded_user_data(props: Mapping[str, Any]) -> str:
    raw = get(props, "userData") or get(props, "userDataBase64") or ""
    if not isinstance(raw, str):
        return ""
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8", "replace")
    except ValueError:
        return raw  # an instance's userData is plain text


def _user_data_secrets(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    text = _decoded_user_data(props)
    for pattern, what in _USER_DATA_SECRETS:
        if pattern.search(text):
            yield (
                f"userData holds {what}: fetch it at boot from Secrets Manager or SSM "
                "Parameter Store with the instance's role instead"
            )


def _launch_template_imdsv2(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    yield from _imds(
        get(props, "metadataOptions", {}), "metadataOptions", int(config["maxHopLimit"])
    )


def _instance_metadata_defaults(
    props: Mapping[str, Any], config: Mapping[str, Any]
) -> Iterable[str]:
    # Account-wide defaults: an explicit "optional" (or a hop limit above the maximum)
    # applies to every instance launched without its own metadata options.
    if get(props, "httpTokens") not in (None, "required", "no-preference"):
        yield "httpTokens is not 'required': set httpTokens='required' (account-wide IMDSv2)"
    hops = get(props, "httpPutResponseHopLimit")
    if hops is not None and int(hops) > int(config["maxHopLimit"]):
        yield f"httpPutResponseHopLimit is {int(hops)}: set it to at most {config['maxHopLimit']}"


def _launch_template_public_ip(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    for index, interface in enumerate(items(props, "networkInterfaces")):
        if is_true(get(interface, "associatePublicIpAddress")):
            yield (
                f"networkInterfaces[{index}].associatePublicIpAddress is true: set it to 'false' "
                "(nodes reach the internet through NAT)"
            )


def _instance_public_ip(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if is_true(get(props, "associatePublicIpAddress")):
        yield "associatePublicIpAddress is true: set associatePublicIpAddress=False"


def _s3_public_access_block(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        if not is_true(get(props, flag)):
            yield f"{flag} is not true: set {flag}=True"


KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def s3_sse_violations(rules: list[Any], allowed: Iterable[str]) -> Iterable[str]:
    """Messages for S3 default-encryption rules (inline on a bucket or a separate resource)."""
    allowed = list(allowed)
    algorithms = [get(r, "applyServerSideEncryptionByDefault.sseAlgorithm") for r in rules]
    if not any(a in allowed for a in algorithms):
        yield (
            f"rules[].applyServerSideEncryptionByDefault.sseAlgorithm is {algorithms or 'unset'}: "
            f"set it to one of {allowed} with kmsMasterKeyId"
        )


def _s3_sse(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    yield from s3_sse_violations(items(props, "rules"), config["allowedAlgorithms"])


def _ecr_kms(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    kinds = [get(c, "encryptionType", "AES256") for c in items(props, "encryptionConfigurations")]
    if "KMS" not in kinds:
        yield (
            "encryptionConfigurations[].encryptionType is not 'KMS': set encryptionType='KMS' "
            "and kmsKey to a customer-managed key"
        )


# -------------------------------------------------------------------- exposure


def _not_publicly_accessible(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if is_true(get(props, "publiclyAccessible")):
        yield "publiclyAccessible is true: set publiclyAccessible=False and reach it from the VPC"


def _eks_endpoint(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    vpc = get(props, "vpcConfig", {})
    if get(vpc, "endpointPublicAccess", True) is False:
        return
    cidrs = items(vpc, "publicAccessCidrs")
    if not cidrs:
        yield (
            "vpcConfig.publicAccessCidrs is unset, so the public endpoint is open to 0.0.0.0/0: "
            "set vpcConfig.publicAccessCidrs to the deployers' CIDRs or endpointPublicAccess=False"
        )
    yield from cidr_violations(cidrs, config, "vpcConfig.publicAccessCidrs")
    if not is_true(get(vpc, "endpointPrivateAccess")):
        yield "vpcConfig.endpointPrivateAccess is not true: set endpointPrivateAccess=True"


def _open_ports(
    where: str, protocol: Any, from_port: Any, to_port: Any, allowed: list[int]
) -> Iterable[str]:
    proto = str(protocol).lower()
    if proto in {"-1", "all"}:
        from_port, to_port = 0, 65535
    if ports_outside(from_port, to_port, allowed):
        span = f"{_port(from_port)}-{_port(to_port)}" if from_port != to_port else _port(from_port)
        yield (
            f"{where} opens port {span}/{proto} to the internet: restrict the "
            f"source CIDRs to the VPC or known networks (only {allowed} may be public)"
        )


def _port(value: Any) -> str:
    # The engine sends numbers as floats; show ports as the user wrote them.
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return str(value)


def _security_group_ingress(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    allowed = [int(p) for p in config["allowedPublicPorts"]]
    for index, rule in enumerate(items(props, "ingress")):
        sources = items(rule, "cidrBlocks") + items(rule, "ipv6CidrBlocks")
        if is_world(sources, config):
            yield from _open_ports(
                f"ingress[{index}]",
                get(rule, "protocol"),
                get(rule, "fromPort"),
                get(rule, "toPort"),
                allowed,
            )


def _security_group_rule(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "type") != "ingress":
        return
    sources = items(props, "cidrBlocks") + items(props, "ipv6CidrBlocks")
    if is_world(sources, config):
        yield from _open_ports(
            "cidrBlocks",
            get(props, "protocol"),
            get(props, "fromPort"),
            get(props, "toPort"),
            [int(p) for p in config["allowedPublicPorts"]],
        )


def _security_group_ingress_rule(
    props: Mapping[str, Any], config: Mapping[str, Any]
) -> Iterable[str]:
    for prop in ("cidrIpv4", "cidrIpv6"):
        if is_world([get(props, prop)], config):
            yield from _open_ports(
                prop,
                get(props, "ipProtocol"),
                get(props, "fromPort"),
                get(props, "toPort"),
                [int(p) for p in config["allowedPublicPorts"]],
            )


def _default_security_group(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    # Anything launched without a security group lands in the default one.
    for field in ("ingress", "egress"):
        if items(props, field):
            yield (
                f"{field} is not empty: leave the default security group without rules and give "
                "every resource its own security group"
            )


def _rds_customer_keys(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    yield from _customer_key("kmsKeyId")(props, config)
    if is_true(get(props, "performanceInsightsEnabled")) and not get(
        props, "performanceInsightsKmsKeyId"
    ):
        yield (
            "performanceInsightsKmsKeyId is not set while Performance Insights is on: set it to "
            "the ARN of a customer-managed KMS key"
        )


def _rds_iam_auth(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "replicateSourceDb"):
        return
    engine = str(get(props, "engine", ""))
    if engine.startswith(("postgres", "mysql", "mariadb", "aurora")) and not is_true(
        get(props, "iamDatabaseAuthenticationEnabled")
    ):
        yield (
            "iamDatabaseAuthenticationEnabled is not true: set it to True so people sign in "
            "with IAM (short-lived tokens) instead of shared passwords"
        )


_OLD_RDS_CAS = {"rds-ca-2015", "rds-ca-2019"}


def _rds_maintenance(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "autoMinorVersionUpgrade") is False:
        yield "autoMinorVersionUpgrade is false: set it to True so security patches apply"
    ca = get(props, "caCertIdentifier")
    if ca in _OLD_RDS_CAS:
        yield f"caCertIdentifier is {ca} (expired): set it to 'rds-ca-rsa2048-g1' or newer"


def _kms_lockout(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if is_true(get(props, "bypassPolicyLockoutSafetyCheck")):
        yield (
            "bypassPolicyLockoutSafetyCheck is true: remove it; a policy that locks every "
            "administrator out of the key cannot be undone"
        )


def _node_group_ssh(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    access = get(props, "remoteAccess")
    if access and get(access, "ec2SshKey") and not items(access, "sourceSecurityGroupIds"):
        yield (
            "remoteAccess.ec2SshKey without sourceSecurityGroupIds opens SSH (22) to 0.0.0.0/0: "
            "remove remoteAccess (use SSM) or list sourceSecurityGroupIds"
        )


def _subnet_public_ip(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if is_true(get(props, "mapPublicIpOnLaunch")):
        yield (
            "mapPublicIpOnLaunch is true: set it to False; load balancers and NAT gateways get "
            "their public addresses explicitly"
        )


_DEFAULT_DESCRIPTION = "Managed by Pulumi"


def _group_descriptions(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if str(get(props, "description", _DEFAULT_DESCRIPTION)).strip() in ("", _DEFAULT_DESCRIPTION):
        yield "description is the default: say what the group admits and why"
    for field in ("ingress", "egress"):
        for index, rule in enumerate(items(props, field)):
            if not str(get(rule, "description", "")).strip():
                yield f"{field}[{index}].description is not set: say what the rule admits"


def _rule_description(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not str(get(props, "description", "")).strip():
        yield "description is not set: say what the rule admits and why"


def _open_egress(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    for index, rule in enumerate(items(props, "egress")):
        sources = items(rule, "cidrBlocks") + items(rule, "ipv6CidrBlocks")
        if str(get(rule, "protocol")) in {"-1", "all"} and is_world(sources, config):
            yield (
                f"egress[{index}] allows every protocol and port to the internet: name the "
                "ports (443 for provider APIs) or the destinations"
            )


def _open_egress_rule(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "type", "egress") != "egress":
        return
    sources = items(props, "cidrBlocks") + items(props, "ipv6CidrBlocks")
    sources += [get(props, "cidrIpv4"), get(props, "cidrIpv6")]
    protocol = str(get(props, "protocol", get(props, "ipProtocol")))
    if protocol in {"-1", "all"} and is_world(sources, config):
        yield "allows every protocol and port to the internet: name the ports or destinations"


def _rds_insights(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not is_true(get(props, "performanceInsightsEnabled")):
        yield (
            "performanceInsightsEnabled is not true: set it (with performanceInsightsKmsKeyId) "
            "so slow or abusive queries can be traced"
        )


def _kms_enabled(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "isEnabled") is False:
        yield "isEnabled is false: every store encrypted with this key is unreadable; enable it"


def _kms_description(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not str(get(props, "description", "")).strip():
        yield "description is not set: say what the key encrypts"


def _alarm_actions(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "actionsEnabled") is False:
        yield "actionsEnabled is false: the alarm fires silently; set actionsEnabled=True"


def _rds_multi_az(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "replicateSourceDb"):
        return
    if not is_true(get(props, "multiAz")):
        yield "multiAz is not true in production: set multiAz=True (a standby in another AZ)"


def _elasticache_multi_az(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not is_true(get(props, "automaticFailoverEnabled")):
        yield "automaticFailoverEnabled is not true in production: set it to True"
    if not is_true(get(props, "multiAzEnabled")):
        yield "multiAzEnabled is not true in production: set multiAzEnabled=True"
    if get(props, "numCacheClusters") is not None and int(get(props, "numCacheClusters")) < 2:
        yield "numCacheClusters is below 2 in production: add a replica in another AZ"


def _eks_logs(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    enabled = set(items(props, "enabledClusterLogTypes"))
    missing = [t for t in config["requiredLogTypes"] if t not in enabled]
    if missing:
        yield (
            f"enabledClusterLogTypes lacks {missing}: add them so API calls and sign-ins to the "
            "control plane are recorded"
        )


def _log_retention(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    days = get(props, "retentionInDays")
    minimum = int(config["minRetentionDays"])
    if days is None or int(days) == 0:
        yield (
            "retentionInDays is not set (logs kept forever, at a cost nobody chose): set it to "
            f"at least {minimum} days"
        )
    elif int(days) < minimum:
        yield f"retentionInDays is {int(days)}: keep logs at least {minimum} days"


def _rds_logs(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    engine = str(get(props, "engine", ""))
    wanted = "postgresql" if "postgres" in engine else ("error" if engine else None)
    if wanted and wanted not in items(props, "enabledCloudwatchLogsExports"):
        yield (
            f"enabledCloudwatchLogsExports lacks '{wanted}': export the engine log to "
            "CloudWatch Logs"
        )


def policies() -> list[ResourceValidationPolicy]:
    """Every AWS resource policy of the pack."""
    enc, exp = Category.ENCRYPTION, Category.EXPOSURE
    return [
        resource_policy(
            "aws-rds-instance-storage-encrypted",
            "RDS instances must encrypt their storage, snapshots and backups at rest. "
            "Fix: set storageEncrypted=True (needs a new instance: snapshot, copy encrypted, restore).",
            types=[RDS_INSTANCE],
            check=_storage_encrypted,
            category=enc,
        ),
        resource_policy(
            "aws-rds-instance-customer-managed-key",
            "RDS instances must encrypt with a customer-managed KMS key, so key policy, rotation "
            "and revocation stay under your control; Performance Insights (which holds query "
            "text) too. Fix: set kmsKeyId (and performanceInsightsKmsKeyId) to a KMS key ARN.",
            types=[RDS_INSTANCE],
            check=_rds_customer_keys,
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-rds-instance-backups",
            "RDS instances must keep automated backups (point-in-time recovery) whose snapshots "
            "carry the tags. Fix: set backupRetentionPeriod to at least the configured days (0 "
            "disables backups) and copyTagsToSnapshot=True.",
            types=[RDS_INSTANCE],
            check=_rds_backups,
            category=Category.RESILIENCE,
            params={"minRetentionDays": 1},
            param_docs={"minRetentionDays": "Shortest accepted backupRetentionPeriod, in days."},
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-rds-cluster-storage-encrypted",
            "Aurora/RDS clusters must encrypt their storage at rest. Fix: set storageEncrypted=True.",
            types=[RDS_CLUSTER],
            check=_storage_encrypted,
            category=enc,
        ),
        resource_policy(
            "aws-rds-cluster-customer-managed-key",
            "Aurora/RDS clusters must encrypt with a customer-managed KMS key. Fix: set kmsKeyId.",
            types=[RDS_CLUSTER],
            check=_customer_key("kmsKeyId"),
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-rds-parametergroup-force-ssl",
            "PostgreSQL on RDS must refuse unencrypted client connections. Fix: add the "
            "parameter rds.force_ssl=1 to the (cluster) parameter group.",
            types=[RDS_PARAMETER_GROUP, RDS_CLUSTER_PARAMETER_GROUP, RDS_INSTANCE],
            check={
                RDS_PARAMETER_GROUP: _postgres_force_ssl,
                RDS_CLUSTER_PARAMETER_GROUP: _postgres_force_ssl,
                RDS_INSTANCE: _instance_default_parameters,
            },
            category=enc,
        ),
        resource_policy(
            "aws-elasticache-replicationgroup-encrypted-at-rest",
            "ElastiCache replication groups must encrypt data at rest (snapshots, swap). "
            "Fix: set atRestEncryptionEnabled=True and kmsKeyId.",
            types=[ELASTICACHE_REPLICATION_GROUP],
            check=_elasticache_at_rest,
            category=enc,
        ),
        resource_policy(
            "aws-elasticache-replicationgroup-encrypted-in-transit",
            "ElastiCache replication groups must require TLS between clients and nodes. "
            "Fix: set transitEncryptionEnabled=True (transitEncryptionMode 'required').",
            types=[ELASTICACHE_REPLICATION_GROUP],
            check=_elasticache_in_transit,
            category=enc,
        ),
        resource_policy(
            "aws-elasticache-replicationgroup-auth",
            "ElastiCache replication groups must authenticate clients. Fix: set authToken "
            "(a pulumi_random password) or userGroupIds.",
            types=[ELASTICACHE_REPLICATION_GROUP],
            check=_elasticache_auth,
            category=enc,
        ),
        resource_policy(
            "aws-eks-cluster-secrets-encryption",
            "EKS clusters must envelope-encrypt Kubernetes secrets with a KMS key. Fix: set "
            "encryptionConfig with resources=['secrets'] and provider.keyArn.",
            types=[EKS_CLUSTER],
            check=_eks_secrets_encryption,
            category=enc,
        ),
        resource_policy(
            "aws-kms-key-rotation",
            "Symmetric KMS keys must rotate yearly so a leaked key version has a bounded life. "
            "Fix: set enableKeyRotation=True.",
            types=[KMS_KEY],
            check=_kms_rotation,
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-cloudwatch-loggroup-kms",
            "CloudWatch log groups can hold request data and must be encrypted with a KMS key. "
            "Fix: set kmsKeyId to a KMS key ARN (its key policy must allow the logs service).",
            types=[LOG_GROUP],
            check=_customer_key("kmsKeyId"),
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-sns-topic-kms",
            "SNS topics must encrypt messages at rest. Fix: set kmsMasterKeyId to a KMS key.",
            types=[SNS_TOPIC],
            check=_customer_key("kmsMasterKeyId"),
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-ebs-volume-encrypted",
            "EBS volumes must be encrypted at rest. Fix: set encrypted=True (and kmsKeyId).",
            types=[EBS_VOLUME],
            check=_ebs_volume_encrypted,
            category=enc,
        ),
        resource_policy(
            "aws-ec2-launchtemplate-ebs-encrypted",
            "Node volumes created from a launch template or an instance must be encrypted, and "
            "the region's EBS encryption-by-default must not be switched off. Fix: set "
            "ebs.encrypted='true' on every blockDeviceMappings entry (rootBlockDevice/"
            "ebsBlockDevices encrypted=True on instances; EncryptionByDefault enabled=True).",
            types=[LAUNCH_TEMPLATE, EC2_INSTANCE, EBS_ENCRYPTION_BY_DEFAULT],
            check={
                LAUNCH_TEMPLATE: _launch_template_ebs,
                EC2_INSTANCE: _instance_ebs,
                EBS_ENCRYPTION_BY_DEFAULT: _encryption_by_default,
            },
            category=enc,
        ),
        resource_policy(
            "aws-ec2-launchtemplate-no-secrets-in-user-data",
            "Launch templates and instances must not carry credentials in their user data: "
            "anyone who may describe the instance, and every process on it through the "
            "metadata service, can read it. Fix: fetch secrets at boot from Secrets Manager or "
            "SSM Parameter Store with the instance's role.",
            types=[LAUNCH_TEMPLATE, EC2_INSTANCE],
            check=_user_data_secrets,
            category=Category.IDENTITY,
            severity=Severity.HIGH,
        ),
        resource_policy(
            "aws-ec2-launchtemplate-imdsv2",
            "Instances must use IMDSv2 only: IMDSv1 lets any SSRF read the node's IAM "
            "credentials; a hop limit above 1 lets every pod on the node read them too. Fix: set "
            "metadataOptions.httpTokens='required' and httpPutResponseHopLimit=1 (launch "
            "templates, instances, and the account's InstanceMetadataDefaults).",
            types=[LAUNCH_TEMPLATE, EC2_INSTANCE, INSTANCE_METADATA_DEFAULTS],
            check={
                LAUNCH_TEMPLATE: _launch_template_imdsv2,
                EC2_INSTANCE: _launch_template_imdsv2,
                INSTANCE_METADATA_DEFAULTS: _instance_metadata_defaults,
            },
            category=enc,
            params={"maxHopLimit": 1},
            param_docs={
                "maxHopLimit": "Largest accepted httpPutResponseHopLimit (2 lets containers "
                "without their own identity reach the node's credentials)."
            },
        ),
        resource_policy(
            "aws-s3-bucketpublicaccessblock-enabled",
            "S3 public access blocks must block every kind of public access. Fix: set "
            "blockPublicAcls, blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets to True.",
            types=[S3_PUBLIC_ACCESS_BLOCK, ACCOUNT_PUBLIC_ACCESS_BLOCK],
            check=_s3_public_access_block,
            category=exp,
        ),
        resource_policy(
            "aws-s3-bucketserversideencryptionconfiguration-kms",
            "S3 default encryption must use KMS, so access to objects also needs the key. Fix: "
            "set rules[].applyServerSideEncryptionByDefault.sseAlgorithm='aws:kms' and kmsMasterKeyId.",
            types=[S3_SSE, S3_SSE_V2],
            check=_s3_sse,
            category=enc,
            params={"allowedAlgorithms": list(KMS_ALGORITHMS)},
            param_docs={"allowedAlgorithms": "Accepted sseAlgorithm values."},
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-ecr-repository-kms",
            "ECR repositories must encrypt images with a KMS key. Fix: set "
            "encryptionConfigurations=[{encryptionType: 'KMS', kmsKey: <key ARN>}].",
            types=[ECR_REPOSITORY],
            check=_ecr_kms,
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-rds-instance-not-public",
            "Databases must not be reachable from the internet. Fix: set publiclyAccessible=False.",
            types=[RDS_INSTANCE, RDS_CLUSTER_INSTANCE],
            check=_not_publicly_accessible,
            category=exp,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "aws-eks-cluster-endpoint-restricted",
            "The EKS API endpoint must be private or limited to known CIDRs (never 0.0.0.0/0 or "
            "::/0). Fix: set vpcConfig.endpointPrivateAccess=True and vpcConfig.publicAccessCidrs "
            "to the deployers' CIDRs, or endpointPublicAccess=False.",
            types=[EKS_CLUSTER],
            check=_eks_endpoint,
            category=exp,
            params=API_CIDRS,
            param_docs=API_CIDRS_DOC,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "aws-ec2-securitygroup-no-public-ingress",
            "Security groups must not open any port but HTTPS to 0.0.0.0/0 or ::/0. Fix: limit "
            "the rule's cidrBlocks/ipv6CidrBlocks (cidrIpv4/cidrIpv6) to the VPC or known networks.",
            types=[
                SECURITY_GROUP,
                DEFAULT_SECURITY_GROUP,
                SECURITY_GROUP_RULE,
                SECURITY_GROUP_INGRESS_RULE,
            ],
            check={
                SECURITY_GROUP: _security_group_ingress,
                DEFAULT_SECURITY_GROUP: _security_group_ingress,
                SECURITY_GROUP_RULE: _security_group_rule,
                SECURITY_GROUP_INGRESS_RULE: _security_group_ingress_rule,
            },
            category=exp,
            params=PUBLIC_PORTS,
            param_docs=PUBLIC_PORTS_DOC,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "aws-ec2-defaultsecuritygroup-no-rules",
            "The VPC's default security group must allow nothing: whatever is launched without "
            "a security group lands in it. Fix: declare aws.ec2.DefaultSecurityGroup with no "
            "ingress and no egress.",
            types=[DEFAULT_SECURITY_GROUP],
            check=_default_security_group,
            category=exp,
        ),
        resource_policy(
            "aws-ec2-launchtemplate-no-public-ip",
            "Nodes must not get public IPs. Fix: set networkInterfaces[].associatePublicIpAddress="
            "'false' in launch templates (associatePublicIpAddress=False on instances).",
            types=[LAUNCH_TEMPLATE, EC2_INSTANCE],
            check={LAUNCH_TEMPLATE: _launch_template_public_ip, EC2_INSTANCE: _instance_public_ip},
            category=exp,
        ),
        resource_policy(
            "aws-elasticache-replicationgroup-customer-managed-key",
            "ElastiCache must encrypt at rest with a customer-managed KMS key. Fix: set kmsKeyId.",
            types=[ELASTICACHE_REPLICATION_GROUP, ELASTICACHE_SERVERLESS],
            check=_customer_key("kmsKeyId"),
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-eks-cluster-control-plane-logs",
            "EKS must send its control-plane logs (API, audit, authenticator) to CloudWatch, so "
            "every change and sign-in is on record. Fix: set enabledClusterLogTypes to include "
            "the required types.",
            types=[EKS_CLUSTER],
            check=_eks_logs,
            category=Category.LOGGING,
            params={"requiredLogTypes": ["api", "audit", "authenticator"]},
            param_docs={
                "requiredLogTypes": "Log types that must be enabled (add controllerManager and "
                "scheduler for all five)."
            },
        ),
        resource_policy(
            "aws-cloudwatch-loggroup-retention",
            "In production log groups keep logs long enough for an investigation (a year by "
            "default). "
            "Fix: set retentionInDays to at least the configured days (or leave it unset: kept forever).",
            types=[LOG_GROUP],
            check=_log_retention,
            category=Category.LOGGING,
            params={"minRetentionDays": 365},
            param_docs={"minRetentionDays": "Shortest accepted retentionInDays."},
            severity=Severity.MEDIUM,
            non_production=PROD_ONLY,
        ),
        resource_policy(
            "aws-rds-instance-log-exports",
            "RDS instances must export their engine log to CloudWatch Logs (connections, errors, "
            "audit). Fix: set enabledCloudwatchLogsExports=['postgresql'] (MySQL: 'error', 'audit').",
            types=[RDS_INSTANCE],
            check=_rds_logs,
            category=Category.LOGGING,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-rds-instance-iam-authentication",
            "RDS PostgreSQL/MySQL must accept IAM authentication, so people sign in with "
            "short-lived IAM tokens rather than shared passwords. Fix: set "
            "iamDatabaseAuthenticationEnabled=True.",
            types=[RDS_INSTANCE, RDS_CLUSTER],
            check=_rds_iam_auth,
            category=Category.IDENTITY,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-rds-instance-patching",
            "RDS instances must take minor-version security patches and trust a current CA. "
            "Fix: keep autoMinorVersionUpgrade=True and caCertIdentifier at "
            "'rds-ca-rsa2048-g1' or newer.",
            types=[RDS_INSTANCE, RDS_CLUSTER_INSTANCE],
            check=_rds_maintenance,
            category=exp,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-kms-key-no-lockout-bypass",
            "KMS keys must keep the policy lockout safety check. Fix: remove "
            "bypassPolicyLockoutSafetyCheck.",
            types=[KMS_KEY, "aws:kms/keyPolicy:KeyPolicy"],
            check=_kms_lockout,
            category=enc,
        ),
        resource_policy(
            "aws-eks-nodegroup-no-public-ssh",
            "EKS node groups must not open SSH to the internet (an SSH key without source "
            "security groups admits 0.0.0.0/0). Fix: remove remoteAccess (reach nodes through "
            "SSM) or set remoteAccess.sourceSecurityGroupIds.",
            types=[EKS_NODE_GROUP],
            check=_node_group_ssh,
            category=exp,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "aws-ec2-subnet-no-public-ip-on-launch",
            "Subnets must not give every instance a public IP. Fix: set mapPublicIpOnLaunch=False.",
            types=[SUBNET],
            check=_subnet_public_ip,
            category=exp,
        ),
        resource_policy(
            "aws-ebs-volume-customer-managed-key",
            "EBS volumes must encrypt with a customer-managed KMS key. Fix: set kmsKeyId.",
            types=[EBS_VOLUME],
            check=_customer_key("kmsKeyId"),
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-ec2-securitygroup-descriptions",
            "Security groups and their rules say what they admit and why, so a reviewer can "
            "tell an intended rule from a mistake. Fix: set description on the group (not the "
            "default) and on every rule.",
            types=[SECURITY_GROUP, SECURITY_GROUP_RULE, SECURITY_GROUP_INGRESS_RULE],
            check={
                SECURITY_GROUP: _group_descriptions,
                SECURITY_GROUP_RULE: _rule_description,
                SECURITY_GROUP_INGRESS_RULE: _rule_description,
            },
            category=Category.HYGIENE,
            severity=Severity.LOW,
        ),
        resource_policy(
            "aws-ec2-securitygroup-no-open-egress",
            "Security groups must not allow every protocol and port to the internet. Fix: "
            "name the egress ports (443 for provider APIs) or the destination ranges.",
            types=[SECURITY_GROUP, SECURITY_GROUP_RULE, SECURITY_GROUP_EGRESS_RULE],
            check={
                SECURITY_GROUP: _open_egress,
                SECURITY_GROUP_RULE: _open_egress_rule,
                SECURITY_GROUP_EGRESS_RULE: _open_egress_rule,
            },
            category=exp,
            params=WORLD,
            param_docs=WORLD_DOC,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-rds-instance-performance-insights",
            "RDS instances record Performance Insights, so slow or abusive queries can be "
            "traced. Fix: set performanceInsightsEnabled=True with performanceInsightsKmsKeyId.",
            types=[RDS_INSTANCE],
            check=_rds_insights,
            category=Category.LOGGING,
            severity=Severity.LOW,
        ),
        resource_policy(
            "aws-kms-key-enabled",
            "KMS keys that data stores use must stay enabled. Fix: remove isEnabled=False.",
            types=[KMS_KEY],
            check=_kms_enabled,
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-kms-key-description",
            "KMS keys say what they encrypt. Fix: set description.",
            types=[KMS_KEY],
            check=_kms_description,
            category=Category.HYGIENE,
            severity=Severity.LOW,
        ),
        resource_policy(
            "aws-cloudwatch-metricalarm-actions-enabled",
            "Alarms must be able to notify. Fix: remove actionsEnabled=False.",
            types=[METRIC_ALARM],
            check=_alarm_actions,
            category=Category.LOGGING,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "aws-rds-instance-multi-az",
            "In production RDS instances run Multi-AZ, so one zone's outage does not take the "
            "database down. Fix: set multiAz=True.",
            types=[RDS_INSTANCE],
            check=_rds_multi_az,
            category=Category.RESILIENCE,
            non_production=PROD_ONLY,
        ),
        resource_policy(
            "aws-elasticache-replicationgroup-multi-az",
            "In production ElastiCache keeps a replica in another AZ with automatic failover. "
            "Fix: set automaticFailoverEnabled=True, multiAzEnabled=True and numCacheClusters>=2.",
            types=[ELASTICACHE_REPLICATION_GROUP],
            check=_elasticache_multi_az,
            category=Category.RESILIENCE,
            non_production=PROD_ONLY,
        ),
    ]
