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

import pytest

from infra.offline import Plan
from tests.container.planned_pod import PodBench

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
