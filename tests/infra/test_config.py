"""Stack config validation: good files load, every kind of bad value names its key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from infra.config import Cloud, ConfigError, Environment, RoutingPolicy, parse
from infra.offline.stackfile import read_stack_file

ROOT = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "environment": "staging",
    "tags": {"owner": "platform", "costCenter": "cc-1"},
    "dns": {"domain": "ai.example.com", "alerts": {"emails": ["oncall@example.com"]}},
    "aws": {"enabled": True, "deployerCidrs": ["203.0.113.0/24"]},
}


def _with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    data = copy.deepcopy(base or BASE)
    node = data
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return data


def _section(file_values: dict[str, str]) -> dict[str, str]:
    return {k.split(":", 1)[1]: v for k, v in file_values.items() if k.startswith("ai-gateway:")}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_stack_file_loads(stack: str) -> None:
    config = parse(_section(read_stack_file(ROOT / f"Pulumi.{stack}.yaml").values))
    assert config.environment == Environment(stack)
    assert config.enabled_clouds == [Cloud.AWS, Cloud.AZURE, Cloud.GCP]


def test_environment_defaults_differ() -> None:
    dev = parse(_with("environment", "dev"))
    prod = parse(_with("environment", "prod"))
    assert (dev.aws.nat_gateways, prod.aws.nat_gateways) == ("single", "one-per-az")
    assert not dev.aws.deletion_protection and prod.aws.deletion_protection
    assert not dev.aws.high_availability and prod.aws.high_availability
    assert (dev.aws.backup_retention_days, prod.aws.backup_retention_days) == (7, 30)
    assert (dev.azure.aks_tier, prod.azure.aks_tier) == ("Free", "Standard")
    assert dev.gateway.replicas < prod.gateway.replicas


def test_stack_value_overrides_environment_default() -> None:
    config = parse(_with("aws.deletionProtection", False, _with("environment", "prod")))
    assert config.aws.deletion_protection is False


def test_structured_config_arrives_as_json_strings() -> None:
    # The Pulumi CLI hands objects to the program JSON-encoded.
    import json

    config = parse({k: json.dumps(v) if isinstance(v, dict) else v for k, v in BASE.items()})
    assert config.aws.deployer_cidrs == ["203.0.113.0/24"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            _with("aws.nodeCount", -1),
            "ai-gateway:aws.nodeCount: -1 is not allowed; use an integer from 1 to 100",
        ),
        (_with("aws.nodeCount", "three"), "ai-gateway:aws.nodeCount: three is not allowed"),
        (_with("aws.nodeCont", 3), "ai-gateway:aws.nodeCont: unknown key"),
        (_with("bogus", 1), "ai-gateway:bogus: unknown key"),
        (
            _with("environment", "qa"),
            "ai-gateway:environment: qa is not allowed; use one of dev, staging, prod",
        ),
        (
            _with("aws.natGateways", "two"),
            "ai-gateway:aws.natGateways: two is not allowed; use one of",
        ),
        (
            _with("aws.vpcCidr", "10.0.0.0/33"),
            "ai-gateway:aws.vpcCidr: '10.0.0.0/33' is not a valid CIDR block",
        ),
        (
            _with("aws.vpcCidr", "8.8.0.0/16"),
            "ai-gateway:aws.vpcCidr: '8.8.0.0/16' is not a private range",
        ),
        (
            _with("aws.deployerCidrs", ["0.0.0.0/0"]),
            "ai-gateway:aws.deployerCidrs: ['0.0.0.0/0'] open the cluster API",
        ),
        # The same rule as the policy pack: the union of the ranges is judged.
        (
            _with("azure.deployerCidrs", ["0.0.0.0/1", "128.0.0.0/1"]),
            "ai-gateway:azure.deployerCidrs: ['0.0.0.0/1', '128.0.0.0/1'] open the cluster "
            "API to the whole internet (together the IPv4 ranges admit",
        ),
        (
            _with("gcp.deployerCidrs", ["2000::/3"]),
            "ai-gateway:gcp.deployerCidrs: ['2000::/3'] open the cluster API",
        ),
        (_with("aws.deployerCidrs", []), "ai-gateway:aws.deployerCidrs: deployerCidrs is empty"),
        (_with("aws.region", "mars-1"), "ai-gateway:aws.region: mars-1 is not allowed"),
        (_with("aws.enabled", "maybe"), "ai-gateway:aws.enabled: maybe is not allowed"),
        (
            _with("aws.nodeMinCount", 5),
            "ai-gateway:aws.nodeCount: nodeCount 3 must lie between nodeMinCount 5",
        ),
        (_with("aws.enabled", False), "no cloud is enabled"),
        (
            _with("gcp.enabled", True),
            "ai-gateway:gcp.project: project is required when gcp is enabled",
        ),
        (
            _with("gcp.project", "Bad_Project", _with("gcp.enabled", True)),
            "ai-gateway:gcp.project: 'Bad_Project' is not a GCP project id",
        ),
        (_with("tags.costCenter", None), "ai-gateway:tags.costCenter"),
        ({k: v for k, v in BASE.items() if k != "dns"}, "ai-gateway:dns: is required"),
        (
            _with("tags.project", "AI Gateway"),
            "ai-gateway:tags.project: 'AI Gateway' cannot prefix resource names",
        ),
        (_with("dns.domain", "not a domain"), "ai-gateway:dns.domain"),
        (_with("dns.routingPolicy", "weighted"), "ai-gateway:dns.weights: no weight for aws"),
        (
            _with("dns.weights", {"aws": 0}, _with("dns.routingPolicy", "weighted")),
            "ai-gateway:dns.weights: every enabled cloud has weight 0",
        ),
        (
            _with("dns.weights", {"aws": 300}),
            "ai-gateway:dns.weights: weight 300 for aws exceeds 255, the largest Route 53 takes",
        ),
        (
            _with("gateway.maxReplicas", 1, _with("gateway.replicas", 2)),
            "ai-gateway:gateway.maxReplicas: maxReplicas 1 is below replicas 2",
        ),
        (
            _with("azure.postgresVersion", "15"),
            "ai-gateway:azure.postgresVersion: 15 is not allowed; use one of '16' or '17'",
        ),
    ],
)
def test_bad_values_name_the_key_value_and_fix(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(data)
    assert expected in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    data = _with("aws.nodeCount", -1, _with("aws.region", "nowhere"))
    with pytest.raises(ConfigError) as caught:
        parse(data)
    keys = {line.split(":")[1].split(" ")[0] for line in caught.value.problems}
    assert {"aws.nodeCount", "aws.region"} <= keys


def test_weighted_routing_accepts_complete_weights() -> None:
    config = parse(_with("dns.weights", {"aws": 10}, _with("dns.routingPolicy", "weighted")))
    assert config.dns.routing_policy == RoutingPolicy.WEIGHTED
    assert config.dns.weights[Cloud.AWS] == 10


def test_dev_allows_an_empty_deployer_list() -> None:
    config = parse(_with("aws.deployerCidrs", [], _with("environment", "dev")))
    assert config.aws.deployer_cidrs == []


def test_private_endpoint_only_replaces_deployer_cidrs() -> None:
    config = parse(_with("aws.privateEndpointOnly", True, _with("aws.deployerCidrs", [])))
    assert config.aws.private_endpoint_only
