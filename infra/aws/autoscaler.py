"""``ai-gateway:aws:ClusterAutoscaler``: what moves the EKS node group between its bounds.

Why Cluster Autoscaler (not Karpenter, not EKS Auto Mode): it scales the
managed node group the footprint already owns between the same
``nodeMinCount``/``nodeMaxCount`` bounds that AKS's and GKE's built-in
autoscalers honour, so the three clouds share one scaling model and one set of
config keys. Karpenter would replace the node group with its own NodePools
(plus an SQS interruption queue and EventBridge rules) and ignore those
bounds; Auto Mode would hand the CNI, kube-proxy, CoreDNS and the nodes to AWS
at a per-instance surcharge and replace the managed add-ons this footprint
configures (VPC CNI with NetworkPolicy).

Parts: an IAM role for EKS Pod Identity (no OIDC condition strings: the EKS
Pod Identity Agent add-on hands the credentials to the ServiceAccount named in
the association), the permissions of Cluster Autoscaler's AWS guide with the
two write actions limited to this cluster's node groups by tag, and the
upstream Helm chart pinned, with the image that matches the cluster's
Kubernetes minor (the autoscaler's own compatibility rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.decisions import aws as decisions

CHART_VERSION = "9.59.0"
CHART_REPOSITORY = "https://kubernetes.github.io/autoscaler"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"


def pod_identity_trust_policy() -> dict:
    """Trust for EKS Pod Identity: the ``pods.eks.amazonaws.com`` service, as AWS documents."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }


def autoscaler_policy(cluster_name: str) -> dict:
    """Cluster Autoscaler's recommended AWS permissions, writes limited to this cluster's groups.

    EKS tags a managed node group's Auto Scaling group with
    ``k8s.io/cluster-autoscaler/<cluster>: owned``; the condition keeps the role
    from resizing or terminating anything else in the account.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Discover",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                    "eks:DescribeNodegroup",
                ],
                "Resource": "*",
            },
            {
                "Sid": "ScaleThisClusterOnly",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:SetDesiredCapacity",
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"
                    }
                },
            },
        ],
    }


def chart_values(cluster_name: str, region: str, kubernetes_version: str) -> dict:
    """Chart values: auto-discovery of this cluster's groups, hardened pod, balanced zones."""
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "image": {"tag": decisions.image_tag(kubernetes_version)},
        "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT}},
        "extraArgs": {
            # The node group spans every zone; keep zones even as it grows.
            "balance-similar-node-groups": "true",
            "expander": "least-waste",
            "skip-nodes-with-local-storage": "false",
        },
        "priorityClassName": "system-cluster-critical",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containerSecurityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "300Mi"},
            "limits": {"memory": "600Mi"},
        },
    }


@dataclass
class ClusterAutoscalerArgs:
    """Inputs of :class:`ClusterAutoscaler`."""

    name_prefix: str
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name, from the cluster (never from config: it must exist)."""
    cluster_name_text: str
    """The same name as plain text, for the chart's values (read at preview)."""
    region: str
    kubernetes_version: str
    kube_provider: pulumi.ProviderResource


class ClusterAutoscaler(pulumi.ComponentResource):
    """The autoscaler's IAM role, its Pod Identity association and the Helm release."""

    def __init__(
        self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:aws:ClusterAutoscaler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        values = chart_values(args.cluster_name_text, args.region, args.kubernetes_version)
        role = aws.iam.Role(
            f"{name}-role",
            name=decisions.aws_name(args.name_prefix, "cluster-autoscaler", "iam-role"),
            description="Cluster Autoscaler (EKS Pod Identity): resizes this cluster's node groups.",
            assume_role_policy=json.dumps(pod_identity_trust_policy()),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            name="cluster-autoscaler",
            role=role.id,
            # From the cluster's output: the condition names a cluster that exists.
            policy=pulumi.Output.from_input(args.cluster_name).apply(
                lambda cluster: json.dumps(autoscaler_policy(cluster))
            ),
            opts=child,
        )
        association = aws.eks.PodIdentityAssociation(
            f"{name}-pod-identity",
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            role_arn=role.arn,
            opts=child,
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            k8s.helm.v3.ReleaseArgs(
                name="cluster-autoscaler",
                chart="cluster-autoscaler",
                version=CHART_VERSION,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
                namespace=NAMESPACE,
                values=values,
                atomic=True,
                cleanup_on_fail=True,
                max_history=5,
                timeout=600,
            ),
            # The pod must find its credentials when it starts.
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.kube_provider, depends_on=[association]
            ),
        )
        self.role_arn = role.arn
        self.register_outputs({"roleArn": self.role_arn})
