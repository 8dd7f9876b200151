"""Security groups and log groups shared by the AWS data stores."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.decisions import aws as decisions


def nodes_only_security_group(
    name: str,
    *,
    name_prefix: str,
    service: str,
    port: int,
    vpc_id: pulumi.Input[str],
    client_security_group_id: pulumi.Input[str],
    description: str,
    rule_description: str,
    opts: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """A security group admitting only the EKS nodes' group on ``port`` (and nothing out).

    ``opts`` should carry ``parent=`` the owning component. The rule is its own
    resource, not inline, so it can change without replacing the group; with no
    egress rule the data store opens no connections.
    """
    group = aws.ec2.SecurityGroup(
        f"{name}-sg",
        # A prefix, not a name: a replacement group can exist beside the old one.
        name_prefix=decisions.aws_name(name_prefix, service, "security-group-prefix") + "-",
        description=description,
        vpc_id=vpc_id,
        opts=opts,
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-from-nodes",
        security_group_id=group.id,
        referenced_security_group_id=client_security_group_id,
        ip_protocol=aws.ec2.ProtocolType.TCP,
        from_port=port,
        to_port=port,
        description=rule_description,
        opts=opts,
    )
    return group


def encrypted_log_group(
    name: str,
    log_group_name: str,
    *,
    kms_key_arn: pulumi.Input[str],
    retention_days: int,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.LogGroup:
    """A log group at the fixed name a service writes to, created before the service.

    RDS, ElastiCache and EKS create their log groups themselves when they are
    missing: unencrypted and never expiring. Creating them first sets the
    footprint's key and the stack's retention.
    """
    return aws.cloudwatch.LogGroup(
        name,
        name=log_group_name,
        retention_in_days=retention_days,
        kms_key_id=kms_key_arn,
        opts=opts,
    )
