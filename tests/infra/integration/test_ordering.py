"""Ordering invariants on every stack: what a first `pulumi up` needs to exist first.

Each rule is checked on the recorded plans of the three stack files and shown
to catch its bug class on a copy of the plan with one dependency removed.
Sources of the rules:

* AKS with Azure RBAC: "role assignments can take up to five minutes to be
  propagated" (Microsoft Learn, "Use Azure role-based access control for
  Kubernetes Authorization", https://learn.microsoft.com/azure/aks/manage-azure-rbac);
  EKS access entries are checked the same way.
* GCP: a call to a disabled API fails with SERVICE_DISABLED ("API has not been
  used in project ... before or it is disabled", https://cloud.google.com/service-usage/docs/enable-disable).
* GKE Workload Identity: the pool ``PROJECT_ID.svc.id.goog`` is created with the
  first cluster that enables it ("Authenticate to Google Cloud APIs from GKE
  workloads", https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity);
  binding a member in it before fails with "Identity Pool does not exist"
  (hashicorp/terraform-provider-google#7422 and its duplicates).
* Strings for outputs: the same class in general. An input equal to another
  resource's identifying output (id, ARN, name, endpoint, pool) that does not
  wait for that resource was built from config where the output exists; Pulumi
  orders resources only by the outputs they take ("Inputs and Outputs",
  https://www.pulumi.com/docs/iac/concepts/inputs-outputs/), so the first `up`
  may create it first.
"""

from __future__ import annotations

import pytest

from infra.offline import Plan
from tests.infra.conftest import STACKS
from tests.infra.integration import ordering

CLOUDS = ("aws", "azure", "gcp")


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest, plans: dict[str, Plan]) -> Plan:
    return plans[request.param]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_kubernetes_object_waits_for_access_nodes_and_addons(plan: Plan, cloud: str) -> None:
    assert ordering.cluster_readiness_violations(plan, cloud) == []


def test_every_gcp_resource_waits_for_its_api(plan: Plan) -> None:
    assert ordering.gcp_api_violations(plan) == []


def test_workload_pool_bindings_wait_for_the_cluster(plan: Plan) -> None:
    assert ordering.workload_pool_violations(plan) == []


def test_nothing_names_an_output_without_depending_on_it(plan: Plan) -> None:
    assert ordering.string_dependency_violations(plan) == []


def test_the_gke_gateway_waits_for_the_vertex_ai_api(plan: Plan) -> None:
    """The gateway calls Vertex AI at once: the API must be on before its pods start."""
    (vertex_api,) = [
        r
        for r in plan.of_type("gcp:projects/service:Service")
        if r.get("service") == "aiplatform.googleapis.com"
    ]
    deployments = [
        r
        for r in plan.of_type("kubernetes:apps/v1:Deployment")
        if ordering.footprint_of(plan, r) == "ai-gateway:gcp:Footprint"
        and r.get("metadata.name") == "ai-gateway"
    ]
    assert deployments
    for deployment in deployments:
        assert vertex_api.urn in plan.dependency_closure(deployment)


# ---------------------------------------------------- the checks catch the class


@pytest.mark.parametrize("cloud", CLOUDS)
def test_removing_a_readiness_dependency_of_the_kube_provider_is_caught(
    plans: dict[str, Plan], cloud: str
) -> None:
    plan = plans["dev"]
    (provider,) = ordering.kube_providers(plan, cloud)
    required = set().union(*ordering.readiness_urns(plan, cloud).values())
    direct = sorted(plan.direct_dependencies(provider) & required)
    assert direct, f"the {cloud} kube provider depends on none of its readiness resources directly"
    # The provider's depends_on removed: every object deployed through it is flagged.
    mutated = plan
    for urn in direct:
        mutated = ordering.without_dependency(mutated, provider, urn)
    violations = ordering.cluster_readiness_violations(mutated, cloud)
    assert any(v.startswith(f"{provider.type} {provider.name} ") for v in violations)
    assert len(violations) > len(list(ordering.kubernetes_objects(plan, provider)))


def test_removing_an_api_dependency_is_caught(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    services = {r.urn for r in plan.of_type("gcp:projects/service:Service")}
    (account,) = [
        r
        for r in plan.of_type("gcp:serviceaccount/account:Account")
        if "gateway-identity" in r.name
    ]
    mutated = plan
    for urn in plan.direct_dependencies(account) & services:
        mutated = ordering.without_dependency(mutated, account, urn)
    assert any(account.name in v for v in ordering.gcp_api_violations(mutated))


def test_removing_the_cluster_dependency_of_a_workload_binding_is_caught(
    plans: dict[str, Plan],
) -> None:
    plan = plans["dev"]
    (binding,) = [
        r
        for r in plan.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if "gateway-identity" in r.name
    ]
    (cluster,) = plan.of_type("gcp:container/cluster:Cluster")
    assert cluster.urn in plan.direct_dependencies(binding)
    mutated = ordering.without_dependency(plan, binding, cluster.urn)
    assert ordering.workload_pool_violations(mutated) == [
        f"{binding.type} {binding.name} names a workload pool before its cluster"
    ]


def test_a_string_standing_in_for_an_output_is_caught(plans: dict[str, Plan]) -> None:
    """The general check finds the workload-pool bug and an IRSA role named without waiting."""
    plan = plans["dev"]
    (binding,) = [
        r
        for r in plan.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if "gateway-identity" in r.name
    ]
    (cluster,) = plan.of_type("gcp:container/cluster:Cluster")
    pool = cluster.outputs["workloadIdentityConfig"]["workloadPool"]
    violations = ordering.string_dependency_violations(
        ordering.without_dependency(plan, binding, cluster.urn)
    )
    assert [v for v in violations if v.startswith(f"{binding.type} {binding.name} ")] == [
        f"{binding.type} {binding.name} input 'member' names {pool!r}, the output of "
        f"{cluster.type} {cluster.name}.workloadPool, without depending on it: take the "
        "output instead of the string"
    ]

    (account,) = [
        r
        for r in plan.of_type("kubernetes:core/v1:ServiceAccount")
        if r.get("metadata.name") == "ai-gateway-migrate"
        and ordering.footprint_of(plan, r) == "ai-gateway:aws:Footprint"
    ]
    (role,) = [r for r in plan.of_type("aws:iam/role:Role") if "migration-identity" in r.name]
    mutated = ordering.without_dependency(plan, account, role.urn)
    assert any(
        v.startswith(f"{account.type} {account.name} ") and role.outputs["arn"] in v
        for v in ordering.string_dependency_violations(mutated)
    )
