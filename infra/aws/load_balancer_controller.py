"""The AWS Load Balancer Controller on EKS, with its own IRSA role.

Envoy Gateway creates one ``LoadBalancer`` Service per Gateway; on EKS that
Service must become a Network Load Balancer provisioned by the **AWS Load
Balancer Controller** (annotation ``aws-load-balancer-type: external``), not by
the legacy in-tree cloud controller, which AWS no longer develops: only the
controller does IP targets, its own security groups, client-IP preservation and
the current NLB attributes. See "Network Load Balancing on Amazon EKS" and the
controller's service annotations guide.

The controller runs in ``kube-system`` (where AWS installs it) under the
ServiceAccount ``aws-load-balancer-controller``, whose IRSA role carries the
permissions AWS publishes for this release (``docs/install/iam_policy.json`` of
the controller): the load balancers, target groups and security groups it
manages are all tagged ``elbv2.k8s.aws/cluster``, and the mutating calls are
limited to resources with that tag. Its webhooks (port 9443) are reached by the
EKS control plane through the cluster security group the nodes share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.aws.identity import web_identity_trust_policy
from infra.decisions import aws as decisions
from infra.k8s.edge import pinned_release

CHART = "aws-load-balancer-controller"
CHART_VERSION = "3.5.0"
"""The chart of controller v3.5.0 (the IAM policy below is that release's)."""
CHART_REPOSITORY = "https://aws.github.io/eks-charts"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
SUBJECT = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
"""The OIDC subject the controller's role trusts."""

LOAD_BALANCER_ANNOTATIONS = {
    # Handled by the AWS Load Balancer Controller (never the in-tree controller).
    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
    # IP targets: the NLB sends to the Envoy pods directly, no extra node hop.
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
    "service.beta.kubernetes.io/aws-load-balancer-attributes": (
        "load_balancing.cross_zone.enabled=true"
    ),
    # IP targets do not preserve the client's address unless told to; the
    # gateway's per-client limits need it.
    "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": (
        "preserve_client_ip.enabled=true"
    ),
}
"""The Gateway's Service annotations on EKS: an internet-facing NLB with IP targets."""


def controller_policy(partition: str) -> dict[str, Any]:
    """The controller's IAM policy: AWS's published ``iam_policy.json`` for v3.5.0.

    Reads are account-wide (the controller discovers subnets, security groups
    and certificates); every create, modify and delete of a load balancer,
    target group or security group requires the ``elbv2.k8s.aws/cluster`` tag
    the controller puts on what it owns.
    """
    tagged = {"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}
    requested = {"Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}}
    retag = {
        "Null": {
            "aws:RequestTag/elbv2.k8s.aws/cluster": "true",
            "aws:ResourceTag/elbv2.k8s.aws/cluster": "false",
        }
    }
    elb = f"arn:{partition}:elasticloadbalancing:*:*"
    balancers = [
        f"{elb}:targetgroup/*/*",
        f"{elb}:loadbalancer/net/*/*",
        f"{elb}:loadbalancer/app/*/*",
    ]
    security_groups = f"arn:{partition}:ec2:*:*:security-group/*"

    def allow(actions: list[str], resource: Any = "*", condition: dict | None = None) -> dict:
        statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resource}
        if condition:
            statement["Condition"] = condition
        return statement

    return {
        "Version": "2012-10-17",
        "Statement": [
            allow(
                ["iam:CreateServiceLinkedRole"],
                condition={
                    "StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}
                },
            ),
            allow(
                [
                    "ec2:DescribeAccountAttributes",
                    "ec2:DescribeAddresses",
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeInternetGateways",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeVpcPeeringConnections",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeInstances",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeTags",
                    "ec2:GetCoipPoolUsage",
                    "ec2:DescribeCoipPools",
                    "ec2:GetSecurityGroupsForVpc",
                    "ec2:DescribeIpamPools",
                    "ec2:DescribeRouteTables",
                    "elasticloadbalancing:DescribeLoadBalancers",
                    "elasticloadbalancing:DescribeLoadBalancerAttributes",
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeListenerCertificates",
                    "elasticloadbalancing:DescribeSSLPolicies",
                    "elasticloadbalancing:DescribeRules",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetGroupAttributes",
                    "elasticloadbalancing:DescribeTargetHealth",
                    "elasticloadbalancing:DescribeTags",
                    "elasticloadbalancing:DescribeTrustStores",
                    "elasticloadbalancing:DescribeListenerAttributes",
                    "elasticloadbalancing:DescribeCapacityReservation",
                ]
            ),
            allow(
                [
                    "cognito-idp:DescribeUserPoolClient",
                    "acm:ListCertificates",
                    "acm:DescribeCertificate",
                    "iam:ListServerCertificates",
                    "iam:GetServerCertificate",
                    "waf-regional:GetWebACL",
                    "waf-regional:GetWebACLForResource",
                    "waf-regional:AssociateWebACL",
                    "waf-regional:DisassociateWebACL",
                    "wafv2:GetWebACL",
                    "wafv2:GetWebACLForResource",
                    "wafv2:AssociateWebACL",
                    "wafv2:DisassociateWebACL",
                    "shield:GetSubscriptionState",
                    "shield:DescribeProtection",
                    "shield:CreateProtection",
                    "shield:DeleteProtection",
                ]
            ),
            allow(["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]),
            allow(["ec2:CreateSecurityGroup"]),
            allow(
                ["ec2:CreateTags"],
                security_groups,
                {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}, **requested},
            ),
            allow(["ec2:CreateTags", "ec2:DeleteTags"], security_groups, retag),
            allow(
                [
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:DeleteSecurityGroup",
                ],
                condition=tagged,
            ),
            allow(
                [
                    "elasticloadbalancing:CreateLoadBalancer",
                    "elasticloadbalancing:CreateTargetGroup",
                ],
                condition=requested,
            ),
            allow(
                [
                    "elasticloadbalancing:CreateListener",
                    "elasticloadbalancing:DeleteListener",
                    "elasticloadbalancing:CreateRule",
                    "elasticloadbalancing:DeleteRule",
                ]
            ),
            allow(
                ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                balancers,
                retag,
            ),
            allow(
                ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                [
                    f"{elb}:listener/net/*/*/*",
                    f"{elb}:listener/app/*/*/*",
                    f"{elb}:listener-rule/net/*/*/*",
                    f"{elb}:listener-rule/app/*/*/*",
                ],
            ),
            allow(
                [
                    "elasticloadbalancing:ModifyLoadBalancerAttributes",
                    "elasticloadbalancing:SetIpAddressType",
                    "elasticloadbalancing:SetSecurityGroups",
                    "elasticloadbalancing:SetSubnets",
                    "elasticloadbalancing:DeleteLoadBalancer",
                    "elasticloadbalancing:ModifyTargetGroup",
                    "elasticloadbalancing:ModifyTargetGroupAttributes",
                    "elasticloadbalancing:DeleteTargetGroup",
                    "elasticloadbalancing:ModifyListenerAttributes",
                    "elasticloadbalancing:ModifyCapacityReservation",
                    "elasticloadbalancing:ModifyIpPools",
                ],
                condition=tagged,
            ),
            allow(
                ["elasticloadbalancing:AddTags"],
                balancers,
                {
                    "StringEquals": {
                        "elasticloadbalancing:CreateAction": [
                            "CreateTargetGroup",
                            "CreateLoadBalancer",
                        ]
                    },
                    **requested,
                },
            ),
            allow(
                ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                f"{elb}:targetgroup/*/*",
            ),
            allow(
                [
                    "elasticloadbalancing:SetWebAcl",
                    "elasticloadbalancing:ModifyListener",
                    "elasticloadbalancing:AddListenerCertificates",
                    "elasticloadbalancing:RemoveListenerCertificates",
                    "elasticloadbalancing:ModifyRule",
                    "elasticloadbalancing:SetRulePriorities",
                ]
            ),
        ],
    }


def controller_values(
    cluster_name: str, region: str, vpc_id: str, role_arn: str, high_availability: bool
) -> dict[str, Any]:
    """Chart values: the cluster, region and VPC given (no IMDS lookups), the IRSA ServiceAccount."""
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "replicaCount": 2 if high_availability else 1,
        "podDisruptionBudget": {"maxUnavailable": 1} if high_availability else {},
        "serviceAccount": {
            "create": True,
            "name": SERVICE_ACCOUNT,
            "annotations": {"eks.amazonaws.com/role-arn": role_arn},
        },
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


@dataclass
class LoadBalancerControllerArgs:
    """Inputs of :class:`LoadBalancerController`: the cluster, its VPC and its OIDC provider."""

    name_prefix: str
    cluster_name: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    high_availability: bool


class LoadBalancerController(pulumi.ComponentResource):
    """``ai-gateway:aws:LoadBalancerController``: the IRSA role and the Helm release.

    Pass the footprint's ``aws`` and ``kubernetes`` providers through ``opts``.
    ``release`` is what a Gateway's load balancer must wait for (the
    controller's webhook admits every new LoadBalancer Service).
    """

    release: k8s.helm.v3.Release
    role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: LoadBalancerControllerArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:aws:LoadBalancerController", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        role = aws.iam.Role(
            f"{name}-role",
            name=decisions.aws_name(args.name_prefix, "lb-controller", "iam-role"),
            description="AWS Load Balancer Controller on the gateway's EKS cluster (IRSA).",
            assume_role_policy=pulumi.Output.all(
                args.oidc_provider_arn, args.oidc_issuer_url
            ).apply(lambda v: json.dumps(web_identity_trust_policy(v[0], v[1], SUBJECT))),
            opts=child,
        )
        policy = aws.iam.Policy(
            f"{name}-policy",
            name=decisions.aws_name(args.name_prefix, "lb-controller", "iam-policy"),
            description="AWS Load Balancer Controller v3.5.0 (AWS's published policy).",
            policy=partition.apply(lambda p: json.dumps(controller_policy(p))),
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-policy", role=role.name, policy_arn=policy.arn, opts=child
        )
        self.role_arn = role.arn
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            pinned_release(
                CHART,
                CHART_VERSION,
                NAMESPACE,
                pulumi.Output.all(args.cluster_name, args.vpc_id, role.arn).apply(
                    lambda v: controller_values(
                        v[0], args.region, v[1], v[2], args.high_availability
                    )
                ),
                name=CHART,
                repository=CHART_REPOSITORY,
            ),
            # The role must carry its policy before the controller's first call.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]),
        )
        self.register_outputs({"roleArn": self.role_arn, "releaseName": self.release.name})
