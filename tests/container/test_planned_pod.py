"""The pod every shipped stack plans, run under podman as a kubelet would (issue 18).

For each stack file and each of its clusters: the migration Job against a
local TLS PostgreSQL, then the Deployment's pod against a local TLS Redis with
a CA and that PostgreSQL; its probes on the planned paths and ports; a request
for every model of the cluster's catalogue to the fake of its first
deployment, and the failover chain with the planned provider keys. The canary
track runs the same checks on the k8s fixture's canary Deployment. See
:mod:`tests.container.planned_pod` for what is substituted and why.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from infra.offline import Plan
from tests.container.kubelet import planned_pod, route_backend
from tests.container.planned_pod import PodBench, track_workloads

pytestmark = pytest.mark.timeout(900)

CLOUD_MODELS = {
    "aws": "aws-bedrock/amazon.nova-pro-v1:0",
    "azure": "azure-openai/gpt-4o",
    "gcp": "vertex/gemini-2.5-pro",
}


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_planned_pod_serves_its_catalogue(
    bench: PodBench, plans: dict[str, Plan], stack: str, cloud: str
) -> None:
    report = bench.run_track(plans[stack], cloud)
    assert report.models == ["chat", "chat-fast", "embeddings"]
    # Each cluster answers from its own cloud first, then fails over to the vendors' APIs.
    assert report.served["chat"] == CLOUD_MODELS[cloud]
    assert report.failovers == [
        CLOUD_MODELS[cloud],
        "openai/gpt-4o",
        "anthropic/claude-sonnet-4-6",
    ]


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_the_canary_track_runs_as_planned(
    bench: PodBench, k8s_plans: dict[int | None, Plan], cloud: str
) -> None:
    report = bench.run_track(k8s_plans[10], cloud, track="canary")
    assert report.models == ["chat"]
    expected = ["openai/gpt-4o", "anthropic/claude-sonnet-4-6"]
    if cloud == "aws":
        expected.insert(0, "aws-bedrock/amazon.nova-pro-v1:0")
    assert report.failovers == expected


# ------------------------------------------------- the route the pod is reached through


def _follow(plan: Plan, track: str) -> Any:
    _, deployment = track_workloads(plan, "aws", track)
    return route_backend(plan, deployment, planned_pod(plan, deployment))


def test_the_https_route_resolves_to_each_tracks_container_port(
    k8s_plans: dict[int | None, Plan],
) -> None:
    stable, canary = (_follow(k8s_plans[10], track) for track in ("stable", "canary"))
    assert (stable.service, stable.container_port, stable.health_path) == (
        "ai-gateway",
        8080,
        "/health/ready",
    )
    assert (canary.service, canary.container_port) == ("ai-gateway-canary", 8080)


def _edit(type_token: str, name: str, change: Callable[[dict[str, Any]], None]) -> Any:
    def apply(plan: Plan) -> Plan:
        broken = copy.deepcopy(plan)
        (resource,) = [r for r in broken.of_type(type_token) if r.name == f"gateway-aws-{name}"]
        change(resource.inputs["spec"])
        return broken

    return apply


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for step in parents:
            node = node[int(step)] if step.isdigit() else node[step]
        node[int(last) if last.isdigit() else last] = value

    return change


ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
SERVICE = "kubernetes:core/v1:Service"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (_edit(SERVICE, "service", _set("ports.0.targetPort", "https")), "names no port"),
        (_edit(ROUTE, "https-route", _set("rules.0.backendRefs.0.port", 8443)), "which ai-gateway lacks"),
        (_edit(ROUTE, "https-route", _set("rules.1.backendRefs", [])), "sends no request"),
        (_edit(ROUTE, "https-route", _set("rules.0.backendRefs.0.name", "ai-gateway-canary")), "stable track only"),
        (_edit(POLICY, "gateway-traffic", _set("ingress.0.ports.0.port", 9090)), "no NetworkPolicy admits"),
    ],
)  # fmt: skip
def test_a_route_that_does_not_reach_the_pod_fails_the_pod_test(
    k8s_plans: dict[int | None, Plan], breakage: Callable[[Plan], Plan], message: str
) -> None:
    with pytest.raises(AssertionError, match=message):
        _follow(breakage(k8s_plans[None]), "stable")
