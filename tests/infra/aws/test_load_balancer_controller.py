"""The AWS Load Balancer Controller: what provisions the gateway's NLB on EKS.

Rules checked against AWS's documentation:
* "Route internet traffic with AWS Load Balancer Controller" / "Install AWS Load
  Balancer Controller with Helm" (EKS user guide): IRSA for the
  ``kube-system/aws-load-balancer-controller`` ServiceAccount, chart values
  ``clusterName``, ``region``, ``vpcId``, ``serviceAccount.annotations``.
* The controller's "Network Load Balancer" guide: a Service annotated
  ``aws-load-balancer-type: external`` with ``nlb-target-type`` is reconciled by
  the controller, never by the legacy in-tree controller; IP targets need
  ``preserve_client_ip.enabled=true`` to keep the client's address.
* ``docs/install/iam_policy.json`` of controller v3.5.0: mutating calls are
  limited to resources tagged ``elbv2.k8s.aws/cluster``.
"""

from __future__ import annotations

import json

from infra.aws.load_balancer_controller import LOAD_BALANCER_ANNOTATIONS, controller_policy
from infra.offline import Plan
from tests.infra.aws.conftest import child_of

COMPONENT = "ai-gateway:aws:LoadBalancerController"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
RELEASE = "kubernetes:helm.sh/v3:Release"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"


def _owned(plan: Plan, type_token: str) -> list:
    return [r for r in plan.of_type(type_token) if child_of(plan, r, COMPONENT)]


def test_controller_has_its_own_irsa_role_and_release(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    (role,) = _owned(plan, ROLE)
    (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    conditions = statement["Condition"]["StringEquals"]
    assert sorted(conditions.values()) == sorted(
        ["system:serviceaccount:kube-system:aws-load-balancer-controller", "sts.amazonaws.com"]
    )
    cluster_provider = plan.one(
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "ai-gateway-prod-aws-cluster-oidc"
    )
    assert statement["Principal"]["Federated"] == cluster_provider.outputs["arn"]

    (release,) = _owned(plan, RELEASE)
    assert release.get("chart") == "aws-load-balancer-controller"
    assert release.get("namespace") == "kube-system"
    values = release.get("values")
    assert values["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": role.outputs["arn"]
    }
    assert values["serviceAccount"]["name"] == "aws-load-balancer-controller"
    assert values["clusterName"] == plan.outputs["clusterNames"]["aws"]
    assert values["region"] == "us-east-1"
    assert values["replicaCount"] == 2
    # Installed into the EKS cluster, not another one.
    footprint = plan.one("ai-gateway:aws:Footprint")
    kube = next(r for r in plan.children(footprint) if r.type == "pulumi:providers:kubernetes")
    assert release.provider and release.provider.startswith(kube.urn + "::")


def test_the_gateway_waits_for_the_controller_and_asks_it_for_an_nlb(
    plans: dict[str, Plan],
) -> None:
    plan = plans["prod"]
    (release,) = _owned(plan, RELEASE)
    (gateway,) = [r for r in plan.of_type(GATEWAY) if r.name == "gateway-aws-gateway"]
    assert release.urn in gateway.dependencies
    annotations = gateway.get("spec.infrastructure.annotations")
    assert annotations == LOAD_BALANCER_ANNOTATIONS
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-type"] == "external"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"
    assert (
        "preserve_client_ip.enabled=true"
        in (annotations["service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"])
    )


def test_every_mutating_statement_is_limited_to_the_controllers_tagged_resources() -> None:
    policy = controller_policy("aws")
    destructive = {
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:DeleteTargetGroup",
        "ec2:DeleteSecurityGroup",
        "elasticloadbalancing:CreateLoadBalancer",
    }
    seen = set()
    for statement in policy["Statement"]:
        hits = destructive & set(statement["Action"])
        if hits:
            seen |= hits
            null = statement["Condition"]["Null"]
            assert set(null) & {
                "aws:ResourceTag/elbv2.k8s.aws/cluster",
                "aws:RequestTag/elbv2.k8s.aws/cluster",
            }
            assert set(null.values()) == {"false"}
    assert seen == destructive
    assert "arn:aws-cn:ec2:*:*:security-group/*" in json.dumps(controller_policy("aws-cn"))


def test_control_plane_reaches_the_webhooks_through_the_cluster_security_group(
    plans: dict[str, Plan],
) -> None:
    """EKS attaches the cluster security group (control plane <-> nodes, all ports) to
    managed nodes whose launch template names no security group ("Amazon EKS security
    group requirements"): the controller's and Envoy Gateway's webhooks on 9443 need it."""
    plan = plans["prod"]
    (template,) = plan.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert not template.get("vpcSecurityGroupIds")
    assert not template.get("networkInterfaces")
