"""The governance channel's policies (policies/governance.py) on the prod stack's plan.

The prod plan (three clouds, the plane on) is the compliant fixture: none of the four
rules fires. Each test then breaks one property of one cloud's channel, as a careless
edit would, and asserts the violation names the object and the fix.
"""

from __future__ import annotations

import pytest
import yaml

from infra.offline import Plan
from tests.policies.conftest import DELETE, mutated
from tests.policies.test_stack_policies import messages, swapped

SOURCE_RANGES = "kubernetes-governance-channel-source-ranges"
OWN_GATEWAY = "kubernetes-governance-channel-own-gateway"
TLS = "kubernetes-governance-plane-tls"
TOKEN = "kubernetes-governance-plane-token-audience"
ENVOY_PROXY = "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
RANGES = "spec.provider.kubernetes.envoyService.loadBalancerSourceRanges"


@pytest.fixture(scope="module")
def prod(plans: dict[str, Plan]) -> Plan:
    return plans["prod"]


def test_the_planned_channels_pass(prod: Plan) -> None:
    for policy in (SOURCE_RANGES, OWN_GATEWAY, TLS, TOKEN):
        assert messages(prod, policy) == [], policy


@pytest.mark.parametrize("ranges", [DELETE, [], ["0.0.0.0/0"], ["0.0.0.0/1", "128.0.0.0/1"]])
def test_a_channel_open_to_the_internet_is_flagged(prod: Plan, ranges: object) -> None:
    proxy = prod.one(ENVOY_PROXY, "gateway-aws-governance-envoy-proxy")
    found = messages(swapped(prod, mutated(proxy, {RANGES: ranges})), SOURCE_RANGES)
    assert [name for name, _ in found] == ["gateway-aws-governance-gateway"]
    assert (
        "Gateway ai-gateway-governance routes to the governance plane's internal port"
        in (found[0][1])
    )
    assert "NAT egress addresses" in found[0][1]


def test_the_internal_port_on_the_public_gateway_is_flagged(prod: Plan) -> None:
    public = prod.one(HTTP_ROUTE, "gateway-gcp-https-route")
    rules = public.get("spec.rules")
    leak = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/internal/v1/"}}],
        "backendRefs": [{"name": "ai-gateway-governance", "port": 8443}],
    }
    broken = mutated(public, {"spec.rules": [leak, *rules]})
    found = messages(swapped(prod, broken), OWN_GATEWAY)
    assert [name for name, _ in found] == ["gateway-gcp-https-route"]
    assert "Gateway ai-gateway, which also serves public routes" in found[0][1]
    # ...and through the public Gateway, whose proxies admit anyone.
    assert [n for n, _ in messages(swapped(prod, broken), SOURCE_RANGES)] == ["gateway-gcp-gateway"]


def test_a_plain_http_peer_is_flagged(prod: Plan) -> None:
    config_map = prod.one("kubernetes:core/v1:ConfigMap", "gateway-azure-config")
    document = yaml.safe_load(config_map.get("data")["config.yaml"])
    document["governance"]["global"]["peers"]["gcp"]["url"] = "http://governance-gcp.example"
    broken = mutated(config_map, {"data": {"config.yaml": yaml.safe_dump(document)}})
    found = messages(swapped(prod, broken), TLS)
    assert found == [
        (
            "gateway-azure-config",
            "ConfigMap ai-gateway-config calls governance peer gcp at http://governance-gcp.example "
            "without TLS: keys, budgets and audit would cross the internet in clear text; use "
            "the peer's https:// channel name",
        )
    ]


def test_a_gateway_without_its_token_is_flagged(prod: Plan) -> None:
    deployment = prod.one("kubernetes:apps/v1:Deployment", "gateway-aws-deployment")
    volumes = deployment.get("spec.template.spec.volumes")
    kept = [v for v in volumes if v["name"] != "governance-token"]
    for changed in (
        kept,
        [
            *kept,
            {
                "name": "t",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "t"}}
                    ]
                },
            },
        ],
    ):
        broken = mutated(deployment, {"spec.template.spec.volumes": changed})
        found = messages(swapped(prod, broken), TOKEN)
        assert [name for name, _ in found] == ["gateway-aws-deployment"]
        assert "for the audience aigw-governance" in found[0][1]
