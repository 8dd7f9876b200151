"""Fakes for pulumi-aws: ARNs, ids and the data sources the program reads."""

from __future__ import annotations

import base64
from typing import Any

from infra.offline.fakes import FakeContext, fake_hex, function, generic, resource


@generic("aws")
def _aws_generic(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    # aws:ec2/vpc:Vpc -> service ec2, kind vpc
    service, kind = token.split(":")[1].split("/")
    resource_id = f"{kind[:4].lower()}-{fake_hex(token, name)}"
    return {
        "id": resource_id,
        "arn": f"arn:aws:{service}:{ctx.aws_region}:{ctx.aws_account_id}:{kind}/{resource_id}",
        "tagsAll": inputs.get("tags") or {},
    }


@function("aws:index/getAvailabilityZones:getAvailabilityZones")
def _azs(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    letters = "abcdef"
    return {
        "id": ctx.aws_region,
        "names": [f"{ctx.aws_region}{c}" for c in letters],
        "zoneIds": [f"{_region_code(ctx.aws_region)}-az{i + 1}" for i in range(len(letters))],
        "groupNames": [ctx.aws_region] * len(letters),
        "state": "available",
    }


@function("aws:index/getCallerIdentity:getCallerIdentity")
def _caller(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ctx.aws_account_id,
        "accountId": ctx.aws_account_id,
        "arn": f"arn:aws:sts::{ctx.aws_account_id}:assumed-role/deployer/offline-session",
        "userId": "AROAOFFLINEDEPLOYER:session",
    }


@function("aws:index/getRegion:getRegion")
def _region(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    region = args.get("name") or args.get("region") or ctx.aws_region
    return {
        "id": region,
        "name": region,
        "region": region,
        "endpoint": f"ec2.{region}.amazonaws.com",
        "description": region,
    }


@function("aws:index/getPartition:getPartition")
def _partition(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "aws",
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
    }


# ---------------------------------------------------------------------------
# Global layer (infra/global_lb/route53.py): Route 53, DNSSEC, CloudWatch alarms, SNS.
# Kept as one block at the end of the file so it merges cleanly.
# ---------------------------------------------------------------------------


@resource("aws:route53/zone:Zone")
def _route53_zone(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    zone_id = "Z" + fake_hex(token, name, length=20).upper()
    digits = int(fake_hex(token, name, "ns", length=6), 16)
    return {
        "id": zone_id,
        "zoneId": zone_id,
        "arn": f"arn:aws:route53:::hostedzone/{zone_id}",
        "nameServers": [
            f"ns-{digits % 512}.awsdns-{digits % 64:02d}.com",
            f"ns-{512 + digits % 512}.awsdns-{digits % 64:02d}.net",
            f"ns-{1024 + digits % 512}.awsdns-{digits % 64:02d}.org",
            f"ns-{1536 + digits % 512}.awsdns-{digits % 64:02d}.co.uk",
        ],
        "primaryNameServer": f"ns-{digits % 512}.awsdns-{digits % 64:02d}.com",
    }


@resource("aws:route53/keySigningKey:KeySigningKey")
def _route53_key_signing_key(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    """An active KSK: ECDSA P-256 (algorithm 13), SHA-256 digest (type 2), as Route 53 reports it."""
    key_tag = int(fake_hex(token, name, "tag", length=4), 16) % 65536
    digest = fake_hex(token, name, "digest", length=64).upper()
    return {
        "id": f"{inputs.get('hostedZoneId')},{inputs.get('name')}",
        "keyTag": key_tag,
        "signingAlgorithmType": 13,
        "digestAlgorithmType": 2,
        "digestValue": digest,
        "flag": 257,
        "dsRecord": f"{key_tag} 13 2 {digest}",
    }


@resource("aws:route53/record:Record")
def _route53_record(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    fqdn = str(inputs.get("name", "")).rstrip(".")
    parts = [inputs.get("zoneId"), fqdn, inputs.get("type")]
    if inputs.get("setIdentifier"):
        parts.append(inputs["setIdentifier"])
    return {"id": "_".join(str(p) for p in parts), "fqdn": fqdn}


@resource("aws:route53/healthCheck:HealthCheck")
def _route53_health_check(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    h = fake_hex(token, name, length=32)
    check_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"
    return {"id": check_id, "arn": f"arn:aws:route53:::healthcheck/{check_id}"}


@resource("aws:cloudwatch/metricAlarm:MetricAlarm")
def _metric_alarm(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    alarm_name = inputs.get("name") or name
    return {
        "id": alarm_name,
        "arn": f"arn:aws:cloudwatch:{ctx.aws_region}:{ctx.aws_account_id}:alarm:{alarm_name}",
    }


@resource("aws:sns/topic:Topic")
def _sns_topic(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    arn = f"arn:aws:sns:{ctx.aws_region}:{ctx.aws_account_id}:{inputs.get('name') or name}"
    return {"id": arn, "arn": arn, "owner": ctx.aws_account_id}


@resource("aws:sns/topicSubscription:TopicSubscription")
def _sns_subscription(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    arn = f"{inputs.get('topic')}:{fake_hex(token, name, length=32)}"
    # Email subscriptions stay pending until the recipient confirms.
    return {"id": arn, "arn": arn, "pendingConfirmation": inputs.get("protocol") == "email"}


# --------------------------------------------------------------- footprint fakes
# Shapes follow the AWS APIs (and the provider's output names): ids with their
# service prefixes, ARNs per service, endpoints as AWS formats them.


def _region_code(region: str) -> str:
    """``us-east-1`` -> ``use1``, ``ap-southeast-2`` -> ``apse2`` (as in AWS hostnames)."""
    area, direction, number = region.split("-")[0], region.split("-")[1], region.split("-")[-1]
    short = {"northeast": "ne", "southeast": "se", "northwest": "nw", "southwest": "sw"}
    return f"{area}{short.get(direction, direction[0])}{number}"


def _ec2_arn(ctx: FakeContext, kind: str, resource_id: str) -> str:
    return f"arn:aws:ec2:{ctx.aws_region}:{ctx.aws_account_id}:{kind}/{resource_id}"


def _uuid(*parts: str) -> str:
    h = fake_hex(*parts, length=32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


@resource("aws:ec2/vpc:Vpc")
def _vpc(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    vpc_id = f"vpc-{fake_hex(token, name)}"
    return {
        "id": vpc_id,
        "arn": _ec2_arn(ctx, "vpc", vpc_id),
        "defaultSecurityGroupId": f"sg-{fake_hex('default-sg', name)}",
        "defaultNetworkAclId": f"acl-{fake_hex('default-acl', name)}",
        "defaultRouteTableId": f"rtb-{fake_hex('main-rtb', name)}",
        "mainRouteTableId": f"rtb-{fake_hex('main-rtb', name)}",
        "ownerId": ctx.aws_account_id,
        "instanceTenancy": "default",
    }


# (token, id prefix, ARN resource kind)
_EC2_IDS = {
    "aws:ec2/subnet:Subnet": ("subnet", "subnet"),
    "aws:ec2/securityGroup:SecurityGroup": ("sg", "security-group"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("sg", "security-group"),
    "aws:ec2/internetGateway:InternetGateway": ("igw", "internet-gateway"),
    "aws:ec2/natGateway:NatGateway": ("nat", "natgateway"),
    "aws:ec2/routeTable:RouteTable": ("rtb", "route-table"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("rtbassoc", "route-table-association"),
    "aws:ec2/flowLog:FlowLog": ("fl", "vpc-flow-log"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("lt", "launch-template"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("sgr", "security-group-rule"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": ("sgr", "security-group-rule"),
}


@resource(*_EC2_IDS)
def _ec2_object(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    prefix, kind = _EC2_IDS[token]
    resource_id = f"{prefix}-{fake_hex(token, name)}"
    outputs: dict[str, Any] = {
        "id": resource_id,
        "arn": _ec2_arn(ctx, kind, resource_id),
        "ownerId": ctx.aws_account_id,
    }
    if token == "aws:ec2/natGateway:NatGateway":
        octet = int(fake_hex("nat-ip", name, length=2), 16) % 250 + 1
        outputs |= {"publicIp": f"198.51.100.{octet}", "privateIp": f"10.0.0.{octet}"}
    elif token == "aws:ec2/launchTemplate:LaunchTemplate":
        outputs |= {"latestVersion": 1, "defaultVersion": 1}
    elif token.startswith("aws:vpc/"):
        outputs["securityGroupRuleId"] = resource_id
    elif token == "aws:ec2/securityGroup:SecurityGroup":
        # name_prefix + the 26 digits the provider appends
        outputs["name"] = inputs.get("name") or (
            f"{inputs.get('namePrefix', 'terraform-')}{fake_hex(token, name, length=26)}"
        )
    elif token == "aws:ec2/subnet:Subnet":
        zone = str(inputs.get("availabilityZone") or f"{ctx.aws_region}a")
        outputs["availabilityZoneId"] = f"{_region_code(ctx.aws_region)}-az{ord(zone[-1]) - 96}"
    return outputs


@resource("aws:ec2/eip:Eip")
def _eip(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    allocation = f"eipalloc-{fake_hex(token, name)}"
    octet = int(fake_hex("eip", name, length=2), 16) % 250 + 1
    return {
        "id": allocation,
        "allocationId": allocation,
        "publicIp": f"198.51.100.{octet}",
        "publicDns": f"ec2-198-51-100-{octet}.compute-1.amazonaws.com",
        "arn": _ec2_arn(ctx, "elastic-ip", allocation),
    }


@resource("aws:kms/key:Key")
def _kms_key(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    key_id = _uuid(token, name)
    return {
        "id": key_id,
        "keyId": key_id,
        "arn": f"arn:aws:kms:{ctx.aws_region}:{ctx.aws_account_id}:key/{key_id}",
        "keyUsage": "ENCRYPT_DECRYPT",
        "customerMasterKeySpec": "SYMMETRIC_DEFAULT",
    }


@resource("aws:kms/alias:Alias")
def _kms_alias(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    alias = str(inputs.get("name") or f"alias/{name}")
    return {
        "id": alias,
        "arn": f"arn:aws:kms:{ctx.aws_region}:{ctx.aws_account_id}:{alias}",
        "targetKeyArn": (
            f"arn:aws:kms:{ctx.aws_region}:{ctx.aws_account_id}:key/{inputs.get('targetKeyId')}"
        ),
    }


@resource("aws:iam/role:Role")
def _iam_role(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    role_name = str(inputs.get("name") or f"{name}-{fake_hex(token, name, length=7)}")
    return {
        "id": role_name,
        "name": role_name,
        "arn": f"arn:aws:iam::{ctx.aws_account_id}:role/{role_name}",
        "uniqueId": "AROA" + fake_hex("role", name, length=17).upper(),
        "createDate": "2026-01-01T00:00:00Z",
    }


@resource("aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _iam_role_policy(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    return {"id": f"{inputs.get('role')}:{name}-{fake_hex(token, name, length=8)}"}


@resource("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
def _oidc_provider(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    host = str(inputs.get("url", "")).removeprefix("https://")
    arn = f"arn:aws:iam::{ctx.aws_account_id}:oidc-provider/{host}"
    return {"id": arn, "arn": arn, "thumbprintLists": [fake_hex("thumb", host, length=40)]}


@resource("aws:cloudwatch/logGroup:LogGroup")
def _log_group(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    group = str(inputs.get("name") or f"{name}-{fake_hex(token, name, length=7)}")
    return {
        "id": group,
        "name": group,
        "arn": f"arn:aws:logs:{ctx.aws_region}:{ctx.aws_account_id}:log-group:{group}",
    }


def _pem_base64(*parts: str) -> str:
    # A base64 PEM of the right shape (not a parseable certificate).
    body = base64.b64encode(bytes.fromhex(fake_hex("ca", *parts, length=64) * 12)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
    return base64.b64encode(pem.encode()).decode()


@resource("aws:eks/cluster:Cluster")
def _eks_cluster(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    cluster = str(inputs.get("name") or name)
    oidc_id = fake_hex("oidc", cluster, length=32).upper()
    vpc_config = dict(inputs.get("vpcConfig") or {})
    vpc_config |= {
        "clusterSecurityGroupId": f"sg-{fake_hex('eks-cluster-sg', cluster)}",
        "vpcId": f"vpc-{fake_hex('eks-vpc', cluster)}",
    }
    return {
        "id": cluster,
        "name": cluster,
        "arn": f"arn:aws:eks:{ctx.aws_region}:{ctx.aws_account_id}:cluster/{cluster}",
        "endpoint": (
            f"https://{fake_hex('endpoint', cluster, length=32).upper()}"
            f".gr7.{ctx.aws_region}.eks.amazonaws.com"
        ),
        "certificateAuthority": {"data": _pem_base64(cluster)},
        "identities": [
            {"oidcs": [{"issuer": f"https://oidc.eks.{ctx.aws_region}.amazonaws.com/id/{oidc_id}"}]}
        ],
        "vpcConfig": vpc_config,
        "platformVersion": "eks.1",
        "status": "ACTIVE",
        "clusterId": _uuid("cluster-id", cluster),
        "createdAt": "2026-01-01T00:00:00Z",
    }


@resource("aws:eks/nodeGroup:NodeGroup")
def _eks_node_group(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    cluster = inputs.get("clusterName")
    group = str(
        inputs.get("nodeGroupName")
        or f"{inputs.get('nodeGroupNamePrefix', name)}{fake_hex(token, name, length=26)}"
    )
    uid = _uuid(token, name)
    return {
        "id": f"{cluster}:{group}",
        "arn": (
            f"arn:aws:eks:{ctx.aws_region}:{ctx.aws_account_id}:nodegroup/{cluster}/{group}/{uid}"
        ),
        "status": "ACTIVE",
        "nodeGroupName": group,
        "releaseVersion": "1.33.0-20260101",
        "resources": [{"autoscalingGroups": [{"name": f"eks-{group}-{uid}"}]}],
    }


@resource(
    "aws:eks/accessEntry:AccessEntry", "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
)
def _eks_access(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    cluster, principal = inputs.get("clusterName"), inputs.get("principalArn")
    outputs: dict[str, Any] = {"id": f"{cluster}#{principal}"}
    if token.endswith("AccessEntry"):
        outputs |= {
            "accessEntryArn": (
                f"arn:aws:eks:{ctx.aws_region}:{ctx.aws_account_id}:access-entry/{cluster}/"
                f"role/{ctx.aws_account_id}/{fake_hex(token, name, length=8)}"
            ),
            "kubernetesGroups": [],
            "userName": str(principal),
        }
    else:
        outputs["associatedAt"] = "2026-01-01T00:00:00Z"
    return outputs


@resource("aws:elasticache/subnetGroup:SubnetGroup", "aws:rds/subnetGroup:SubnetGroup")
def _subnet_group(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    group = str(inputs.get("name") or name)
    service, kind = ("elasticache", "subnetgroup") if "elasticache" in token else ("rds", "subgrp")
    return {
        "id": group,
        "name": group,
        "arn": f"arn:aws:{service}:{ctx.aws_region}:{ctx.aws_account_id}:{kind}:{group}",
    }


@resource("aws:rds/parameterGroup:ParameterGroup")
def _rds_parameter_group(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    group = str(inputs.get("name") or name)
    return {
        "id": group,
        "name": group,
        "arn": f"arn:aws:rds:{ctx.aws_region}:{ctx.aws_account_id}:pg:{group}",
    }


@resource("aws:elasticache/replicationGroup:ReplicationGroup")
def _replication_group(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    group = str(inputs.get("replicationGroupId") or name)
    suffix = (
        f"{fake_hex('cache', group, length=6)}.{_region_code(ctx.aws_region)}.cache.amazonaws.com"
    )
    members = int(inputs.get("numCacheClusters") or 1)
    return {
        "id": group,
        "arn": f"arn:aws:elasticache:{ctx.aws_region}:{ctx.aws_account_id}:replicationgroup:{group}",
        "primaryEndpointAddress": f"master.{group}.{suffix}",
        "readerEndpointAddress": f"replica.{group}.{suffix}",
        "memberClusters": [f"{group}-{i + 1:03d}" for i in range(members)],
        "engineVersionActual": f"{inputs.get('engineVersion') or '8.0'}.1",
        "clusterEnabled": False,
    }


@resource("aws:rds/instance:Instance")
def _rds_instance(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    identifier = str(inputs.get("identifier") or name)
    port = int(inputs.get("port") or 5432)
    address = (
        f"{identifier}.{fake_hex('rds', ctx.aws_account_id, length=12)}"
        f".{ctx.aws_region}.rds.amazonaws.com"
    )
    resource_id = "db-" + fake_hex("rds-resource", identifier, length=26).upper()
    return {
        "id": resource_id,
        "resourceId": resource_id,
        "identifier": identifier,
        "address": address,
        "endpoint": f"{address}:{port}",
        "port": port,
        "arn": f"arn:aws:rds:{ctx.aws_region}:{ctx.aws_account_id}:db:{identifier}",
        "hostedZoneId": "Z2R2ITUGPM61AM",
        "status": "available",
        "engineVersionActual": inputs.get("engineVersion"),
        # RDS names its managed secret rds!db-<uuid>, and Secrets Manager appends 6 characters.
        "masterUserSecrets": (
            [
                {
                    "secretArn": f"arn:aws:secretsmanager:{ctx.aws_region}:{ctx.aws_account_id}"
                    f":secret:rds!db-{fake_hex('rds-secret', identifier, length=8)}-"
                    f"{fake_hex(identifier, length=6)}",
                    "kmsKeyId": inputs.get("masterUserSecretKmsKeyId"),
                    "secretStatus": "active",
                }
            ]
            if inputs.get("manageMasterUserPassword")
            else []
        ),
    }


@function("aws:iam/getSessionContext:getSessionContext")
def _session_context(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    arn = str(args.get("arn", ""))
    if ":assumed-role/" in arn:
        role, session = arn.split(":assumed-role/", 1)[1].split("/", 1)
        issuer = f"arn:aws:iam::{ctx.aws_account_id}:role/{role}"
        return {
            "id": arn,
            "arn": arn,
            "issuerArn": issuer,
            "issuerId": "AROAOFFLINEDEPLOYER",
            "issuerName": role,
            "sessionName": session,
        }
    return {
        "id": arn,
        "arn": arn,
        "issuerArn": arn,
        "issuerId": "",
        "issuerName": "",
        "sessionName": "",
    }


# ---------------------------------------------------------------------------
# Container registry (infra/aws/registry.py).
# ---------------------------------------------------------------------------


@resource("aws:ecr/repository:Repository")
def _ecr_repository(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    repo = str(inputs.get("name") or name)
    return {
        "id": repo,
        "name": repo,
        "arn": f"arn:aws:ecr:{ctx.aws_region}:{ctx.aws_account_id}:repository/{repo}",
        "registryId": ctx.aws_account_id,
        "repositoryUrl": f"{ctx.aws_account_id}.dkr.ecr.{ctx.aws_region}.amazonaws.com/{repo}",
    }


@function("aws:ecr/getAuthorizationToken:getAuthorizationToken")
def _ecr_token(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    """A 12-hour push token, shaped like ECR's (base64 of ``AWS:<password>``)."""
    password = "offline-ecr-" + fake_hex("ecr-token", ctx.stack, length=48)
    registry = args.get("registryId") or ctx.aws_account_id
    return {
        "id": ctx.aws_region,
        "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
        "userName": "AWS",
        "password": password,
        "proxyEndpoint": f"https://{registry}.dkr.ecr.{ctx.aws_region}.amazonaws.com",
        "expiresAt": "2026-01-01T12:00:00Z",
    }
