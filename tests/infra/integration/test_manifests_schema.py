"""The plan's Kubernetes objects, validated against the published Kubernetes schemas.

``kubernetes-validate`` (strict: unknown fields are errors, as the API server's
field validation makes them) judges every object the program deploys with a
typed resource, at the cluster's Kubernetes minor. Not judged here: custom
resources, whose schemas ship with their CRDs and not with the Kubernetes
schemas (the Gateway API and cert-manager kinds are judged by their published
models in tests/infra/k8s/test_gateway_api_schemas.py; Envoy Gateway's policy
kinds by the pinned release's CRD schemas in
tests/infra/k8s/test_envoy_gateway_schemas.py), and the Helm releases (values,
not objects).
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from infra.offline import Plan, RecordedResource
from infra.offline.engine import reveal
from tests.infra.conftest import STACKS
from tests.infra.k8s.test_gateway_api_schemas import KINDS as JUDGED_BY_THEIR_MODELS

ENVOY_GATEWAY_KINDS = {
    "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy",
    "kubernetes:gateway.envoyproxy.io/v1alpha1:ClientTrafficPolicy",
    "kubernetes:gateway.envoyproxy.io/v1alpha1:BackendTrafficPolicy",
    "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy",
}
NOT_JUDGED = JUDGED_BY_THEIR_MODELS | ENVOY_GATEWAY_KINDS | {"kubernetes:helm.sh/v3:Release"}


def rendered(resource: RecordedResource) -> dict[str, Any]:
    """The object as the provider sends it: the recorded inputs, secrets revealed."""
    return reveal(dict(resource.inputs))


def kubernetes_objects(plan: Plan) -> list[RecordedResource]:
    return [
        r
        for r in plan.resources
        if r.custom and r.package == "kubernetes" and r.type not in NOT_JUDGED
    ]


def kubernetes_minor(plan: Plan, resource: RecordedResource) -> str:
    """The Kubernetes minor of the cluster ``resource`` is deployed to (from its stack file)."""
    for ancestor in plan.ancestors(resource):
        for cloud in ("aws", "azure", "gcp"):
            if ancestor.type == f"ai-gateway:{cloud}:Footprint":
                return _versions(plan)[cloud]
    raise AssertionError(f"{resource.name} is not deployed to any cloud's cluster")


def _versions(plan: Plan) -> dict[str, str]:
    eks = plan.one("aws:eks/cluster:Cluster").get("version")
    aks = plan.one("azure-native:containerservice:ManagedCluster").get("kubernetesVersion")
    gke = plan.one("gcp:container/cluster:Cluster").get("minMasterVersion")
    return {"aws": eks, "azure": aks, "gcp": gke}


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_is_valid_for_its_cluster_version(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    objects = kubernetes_objects(plan)
    kinds = {r.type for r in objects}
    # Every kind the gateway needs is judged, not just the easy ones.
    assert {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:batch/v1:Job",
        "kubernetes:core/v1:Service",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "kubernetes:policy/v1:PodDisruptionBudget",
        "kubernetes:core/v1:Secret",
    } <= kinds
    errors = []
    for resource in objects:
        try:
            kubernetes_validate.validate(
                rendered(resource), f"{kubernetes_minor(plan, resource)}.0", strict=True
            )
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{resource.type} {resource.name}: {exc.message} at {list(exc.path)}")
    assert errors == []


def test_the_judge_rejects_a_misspelled_field(plans: dict[str, Plan]) -> None:
    """Strict mode catches what a typed Args class would: an unknown field."""
    plan = plans["dev"]
    (deployment, *_) = plan.of_type("kubernetes:apps/v1:Deployment")
    broken = rendered(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.33.0", strict=True)
