"""The global layer: one health-checked hostname across the enabled clouds.

The component is recorded once per scenario (cloud count x routing policy x
alarm destination) on the fixture program, which hands it fake gateway
endpoints as the clouds' footprints will; the decisions behind it are unit-tested
directly, with bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi_aws as aws
import pytest

from infra.cli import render_plan
from infra.config import Cloud, ConfigError, DnsProvider, RoutingPolicy, parse
from infra.global_lb import (
    AZURE_REGION_POSITIONS,
    GCP_REGION_POSITIONS,
    VALID_HEALTH_CHECKER_REGIONS,
    GlobalDnsBackend,
    GlobalDnsError,
    Route53GlobalEndpoint,
    assign_latency_regions,
    cloud_hostname,
    health_check_timing,
    health_checker_regions,
    nearest_aws_region,
    nearest_aws_regions,
    record_type_for,
    routing_weights,
)
from infra.offline import Plan, RecordedResource, Secret, record
from infra.offline.engine import ProgramError

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = Path(__file__).parent / "fixtures" / "global_lb_program" / "__main__.py"
AWS_REGIONS = {r.value for r in aws.Region}

COMPONENT = "ai-gateway:global:Route53GlobalEndpoint"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
ZONE = "aws:route53/zone:Zone"

OFF = {"enabled": False}
EXISTING_ZONE = "Z0EXISTING1234567"
EXISTING_TOPIC = "arn:aws:sns:us-east-1:123456789012:oncall"


def _dns(**overrides: Any) -> dict[str, Any]:
    # Route 53 explicitly: a single-cloud stack would otherwise default to its own DNS.
    return {"domain": "ai.example.com", "hostname": "gw", "provider": "route53", **overrides}


# name -> (stack file, config overrides, enabled clouds)
SCENARIOS: dict[str, tuple[str, dict[str, Any], list[Cloud]]] = {
    "prod-latency-3-clouds-topic": (
        "prod",
        {"ai-gateway:dns": _dns(alerts={"emails": ["oncall@example.com", "sre@example.com"]})},
        [Cloud.AWS, Cloud.AZURE, Cloud.GCP],
    ),
    "dev-latency-3-clouds-shared-us-east": (
        "dev",
        {"ai-gateway:dns": _dns()},
        [Cloud.AWS, Cloud.AZURE, Cloud.GCP],
    ),
    "dev-weighted-3-clouds-gcp-drained": (
        "dev",
        {
            "ai-gateway:dns": _dns(
                routingPolicy="weighted",
                weights={"aws": 90, "azure": 10, "gcp": 0},
                alerts={"snsTopicArn": EXISTING_TOPIC},
            )
        },
        [Cloud.AWS, Cloud.AZURE, Cloud.GCP],
    ),
    "dev-latency-2-clouds-existing-zone": (
        "dev",
        {"ai-gateway:dns": _dns(hostedZoneId=EXISTING_ZONE), "ai-gateway:azure": OFF},
        [Cloud.AWS, Cloud.GCP],
    ),
    "dev-weighted-2-clouds": (
        "dev",
        {
            "ai-gateway:dns": _dns(routingPolicy="weighted", weights={"azure": 1, "gcp": 3}),
            "ai-gateway:aws": OFF,
        },
        [Cloud.AZURE, Cloud.GCP],
    ),
    "dev-latency-1-cloud": (
        "dev",
        {"ai-gateway:dns": _dns(), "ai-gateway:aws": OFF, "ai-gateway:gcp": OFF},
        [Cloud.AZURE],
    ),
    "dev-weighted-1-cloud": (
        "dev",
        {
            "ai-gateway:dns": _dns(routingPolicy="weighted", weights={"gcp": 5}),
            "ai-gateway:aws": OFF,
            "ai-gateway:azure": OFF,
        },
        [Cloud.GCP],
    ),
}


@pytest.fixture(scope="module")
def global_plans() -> dict[str, Plan]:
    """Every scenario recorded once for the module."""
    return {
        name: record(stack, project_dir=ROOT, program=PROGRAM, config=overrides)
        for name, (stack, overrides, _) in SCENARIOS.items()
    }


def _names(policy: RoutingPolicy | None = None, clouds: int | None = None) -> list[str]:
    """Scenario names, optionally only those of one routing policy or cloud count."""
    return [
        name
        for name, (_, overrides, enabled) in SCENARIOS.items()
        if (policy is None or overrides["ai-gateway:dns"].get("routingPolicy", "latency") == policy)
        and (clouds is None or len(enabled) == clouds)
    ]


@pytest.fixture(params=list(SCENARIOS))
def scenario(request: pytest.FixtureRequest, global_plans: dict[str, Plan]) -> Scenario:
    """Each scenario in turn (tests narrow the list with ``indirect`` parametrization)."""
    _, overrides, clouds = SCENARIOS[request.param]
    return Scenario(request.param, global_plans[request.param], overrides["ai-gateway:dns"], clouds)


class Scenario:
    """One recorded scenario and what it was asked for."""

    def __init__(self, name: str, plan: Plan, dns: dict[str, Any], clouds: list[Cloud]):
        self.name = name
        self.plan = plan
        self.dns = dns
        self.clouds = clouds
        self.global_name = f"{dns['hostname']}.{dns['domain']}"

    def cloud_name(self, cloud: Cloud) -> str:
        return f"{self.dns['hostname']}-{cloud.value}.{self.dns['domain']}"

    def routed(self) -> list[RecordedResource]:
        return [r for r in self.plan.of_type(RECORD) if r.get("name") == self.global_name]

    def direct(self) -> dict[str, RecordedResource]:
        return {
            r.get("name"): r for r in self.plan.of_type(RECORD) if r.get("name") != self.global_name
        }

    def health_checks(self) -> dict[str, RecordedResource]:
        return {r.get("fqdn"): r for r in self.plan.of_type(HEALTH_CHECK)}

    @property
    def policy(self) -> RoutingPolicy:
        return RoutingPolicy(self.dns.get("routingPolicy", "latency"))


# ------------------------------------------------------------- the recorded layer


def test_one_health_check_per_enabled_cloud(scenario: Scenario) -> None:
    checks = scenario.health_checks()
    assert len(scenario.plan.of_type(HEALTH_CHECK)) == len(scenario.clouds)
    assert set(checks) == {scenario.cloud_name(c) for c in scenario.clouds}


def test_health_checks_probe_readiness_over_https(scenario: Scenario) -> None:
    for check in scenario.plan.of_type(HEALTH_CHECK):
        assert check.get("type") == "HTTPS_STR_MATCH"
        assert check.get("port") == 443
        assert check.get("resourcePath") == "/health/ready"
        assert check.get("searchString")
        assert check.get("enableSni") is True
        assert 1 <= check.get("failureThreshold") <= 10
        assert check.get("requestInterval") in (10, 30)
        regions = check.get("regions")
        assert len(set(regions)) >= 3 and set(regions) <= VALID_HEALTH_CHECKER_REGIONS


def test_per_cloud_names_point_at_the_endpoints(scenario: Scenario) -> None:
    direct = scenario.direct()
    assert set(direct) == {scenario.cloud_name(c) for c in scenario.clouds}
    endpoints = scenario.plan.outputs["cloudEndpoints"]
    for cloud in scenario.clouds:
        rec = direct[scenario.cloud_name(cloud)]
        assert rec.get("records") == [endpoints[cloud.value]]
        # The fixture's AWS endpoint is a load-balancer hostname, the others are IPs.
        assert rec.get("type") == ("CNAME" if cloud == Cloud.AWS else "A")
        assert rec.get("ttl") <= 60


def test_routed_records_carry_their_clouds_health_check(scenario: Scenario) -> None:
    routed = scenario.routed()
    checks = scenario.health_checks()
    assert len(routed) == len(scenario.clouds)
    assert len({r.get("setIdentifier") for r in routed}) == len(routed)
    assert {r.get("type") for r in routed} == {"CNAME"}
    for rec in routed:
        (target,) = rec.get("records")
        assert rec.get("healthCheckId") == checks[target].id
        assert rec.get("ttl") <= 60
    assert {r.get("records")[0] for r in routed} == {
        scenario.cloud_name(c) for c in scenario.clouds
    }


def test_records_are_deleted_before_replaced(scenario: Scenario) -> None:
    # Route 53 rejects a CNAME beside an A record, and latency beside weighted
    # records, under one name: a replacement must remove the old record first.
    assert all(r.delete_before_replace for r in scenario.plan.of_type(RECORD))


def test_routing_policy_follows_config(scenario: Scenario) -> None:
    for rec in scenario.routed():
        latency = rec.get("latencyRoutingPolicies")
        weighted = rec.get("weightedRoutingPolicies")
        if scenario.policy == RoutingPolicy.LATENCY:
            assert latency and not weighted
        else:
            assert weighted and not latency


@pytest.mark.parametrize("scenario", _names(RoutingPolicy.LATENCY), indirect=True)
def test_latency_labels_are_distinct_valid_aws_regions(scenario: Scenario) -> None:
    labels = {
        r.get("setIdentifier"): r.get("latencyRoutingPolicies")[0]["region"]
        for r in scenario.routed()
    }
    assert set(labels.values()) <= AWS_REGIONS
    assert len(set(labels.values())) == len(labels)  # Route 53: one latency record per region
    if Cloud.AWS in scenario.clouds:
        stack = scenario.name.split("-")[0]
        aws_region = _stack_values(stack)["aws"]["region"]
        assert labels["aws"] == aws_region


def test_prod_labels_follow_each_clouds_geography(global_plans: dict[str, Plan]) -> None:
    plan = global_plans["prod-latency-3-clouds-topic"]
    prod = _stack_values("prod")
    labels = {
        r.get("setIdentifier"): r.get("latencyRoutingPolicies")[0]["region"]
        for r in plan.of_type(RECORD)
        if r.get("setIdentifier")
    }
    assert labels["azure"] == nearest_aws_region(Cloud.AZURE, prod["azure"]["location"])
    assert labels["gcp"] == nearest_aws_region(Cloud.GCP, prod["gcp"]["region"])
    # Both prod's Azure and GCP regions are in Europe.
    assert labels["azure"].startswith("eu-") and labels["gcp"].startswith("eu-")


@pytest.mark.parametrize("scenario", _names(RoutingPolicy.WEIGHTED), indirect=True)
def test_weighted_records_use_the_configured_weights(scenario: Scenario) -> None:
    weights = {
        r.get("setIdentifier"): r.get("weightedRoutingPolicies")[0]["weight"]
        for r in scenario.routed()
    }
    assert weights == {c.value: scenario.dns["weights"][c.value] for c in scenario.clouds}


def test_drained_cloud_keeps_its_record_and_health_check(global_plans: dict[str, Plan]) -> None:
    plan = global_plans["dev-weighted-3-clouds-gcp-drained"]
    (gcp,) = [r for r in plan.of_type(RECORD) if r.get("setIdentifier") == "gcp"]
    assert gcp.get("weightedRoutingPolicies") == [{"weight": 0}]
    # Still health-checked: Route 53 falls back to it only if every weighted cloud is down.
    assert gcp.get("healthCheckId") == plan.outputs["healthCheckIds"]["gcp"]


@pytest.mark.parametrize("scenario", _names(clouds=1), indirect=True)
def test_single_cloud_points_the_global_name_straight_at_it(scenario: Scenario) -> None:
    (cloud,) = scenario.clouds
    (routed,) = scenario.routed()
    assert routed.get("records") == [scenario.cloud_name(cloud)]
    assert routed.get("healthCheckId") == scenario.health_checks()[scenario.cloud_name(cloud)].id


def test_one_alarm_per_health_check_on_route53_status(scenario: Scenario) -> None:
    alarms = scenario.plan.of_type(ALARM)
    check_ids = {c.id for c in scenario.plan.of_type(HEALTH_CHECK)}
    assert len(alarms) == len(check_ids)
    assert {a.get("dimensions")["HealthCheckId"] for a in alarms} == check_ids
    for alarm in alarms:
        assert alarm.get("namespace") == "AWS/Route53"
        assert alarm.get("metricName") == "HealthCheckStatus"
        assert alarm.get("comparisonOperator") == "LessThanThreshold"
        assert alarm.get("threshold") == 1


def test_alarms_notify_the_encrypted_topic(global_plans: dict[str, Plan]) -> None:
    plan = global_plans["prod-latency-3-clouds-topic"]
    topic = plan.one(TOPIC)
    key = plan.one("aws:kms/key:Key", "global-alarms")
    assert topic.get("kmsMasterKeyId") == key.outputs["arn"]
    assert key.get("enableKeyRotation") is True
    policy = json.loads(key.get("policy"))
    cloudwatch = [
        s
        for s in policy["Statement"]
        if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])
    for alarm in plan.of_type(ALARM):
        assert alarm.get("alarmActions") == [topic.outputs["arn"]]
        assert alarm.get("okActions") == [topic.outputs["arn"]]
    subscriptions = plan.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s.get("endpoint") for s in subscriptions) == [
        "oncall@example.com",
        "sre@example.com",
    ]
    assert {s.get("protocol") for s in subscriptions} == {"email"}


def test_existing_topic_is_used_not_created(global_plans: dict[str, Plan]) -> None:
    plan = global_plans["dev-weighted-3-clouds-gcp-drained"]
    assert plan.of_type(TOPIC) == []
    assert {tuple(a.get("alarmActions")) for a in plan.of_type(ALARM)} == {(EXISTING_TOPIC,)}


def test_without_topic_alarms_still_exist(global_plans: dict[str, Plan]) -> None:
    plan = global_plans["dev-latency-1-cloud"]
    assert plan.of_type(TOPIC) == []
    assert len(plan.of_type(ALARM)) == 1
    assert not plan.one(ALARM).get("alarmActions")


def test_zone_is_created_or_reused(global_plans: dict[str, Plan]) -> None:
    created = global_plans["prod-latency-3-clouds-topic"]
    zone = created.one(ZONE)
    assert zone.get("name") == "ai.example.com"
    assert {r.get("zoneId") for r in created.of_type(RECORD)} == {zone.outputs["zoneId"]}
    assert created.outputs["dnsNameServers"] == zone.outputs["nameServers"]

    reused = global_plans["dev-latency-2-clouds-existing-zone"]
    assert reused.of_type(ZONE) == []
    assert {r.get("zoneId") for r in reused.of_type(RECORD)} == {EXISTING_ZONE}
    assert reused.outputs["dnsZoneId"] == EXISTING_ZONE


def test_whole_layer_runs_in_us_east_1_under_the_component(scenario: Scenario) -> None:
    plan = scenario.plan
    component = plan.one(COMPONENT)
    zone = plan.one("ai-gateway:global:DnsZone")
    owned = [r for r in plan.resources if r.type.startswith(("aws:", "pulumi:providers:aws"))]
    assert owned
    for resource in owned:
        # The zone (its provider, signing, query log) or the records, checks and alarms.
        assert resource.parent in {component.urn, zone.urn}, resource.name
    for resource in (r for r in owned if r.custom and not r.type.startswith("pulumi:")):
        provider = plan.by_urn(resource.provider.rsplit("::", 1)[0])
        assert provider.get("region") == "us-east-1", resource.name


def test_outputs_exist(scenario: Scenario) -> None:
    outputs = scenario.plan.outputs
    enabled = {c.value for c in scenario.clouds}
    assert outputs["globalUrl"] == f"https://{scenario.global_name}"
    assert outputs["globalHostname"] == scenario.global_name
    assert set(outputs["cloudEndpoints"]) == enabled
    assert outputs["cloudUrls"] == {
        c.value: f"https://{scenario.cloud_name(c)}" for c in scenario.clouds
    }
    assert outputs["healthCheckIds"] == {
        c.value: scenario.health_checks()[scenario.cloud_name(c)].id for c in scenario.clouds
    }
    assert set(outputs["clusterNames"]) == enabled
    kubeconfigs = outputs["kubeconfigs"]
    assert isinstance(kubeconfigs, Secret)
    assert set(kubeconfigs.value) == enabled


def test_component_registers_its_outputs(global_plans: dict[str, Plan]) -> None:
    plan = global_plans["prod-latency-3-clouds-topic"]
    outputs = plan.one(COMPONENT).outputs
    assert outputs["globalUrl"] == plan.outputs["globalUrl"]
    assert outputs["routingPolicy"] == "latency"
    assert set(outputs["alarmArns"]) == {"aws", "azure", "gcp"}


def test_plan_shows_the_global_layer(global_plans: dict[str, Plan]) -> None:
    text = render_plan(global_plans["prod-latency-3-clouds-topic"])
    section = text.split("\nglobal (", 1)[1]
    assert COMPONENT in section and HEALTH_CHECK in section


def test_all_zero_weights_are_rejected() -> None:
    with pytest.raises(ProgramError, match=r"ai-gateway:dns\.weights: .*weight 0"):
        record(
            "dev",
            project_dir=ROOT,
            program=PROGRAM,
            config={
                "ai-gateway:dns": _dns(
                    routingPolicy="weighted", weights={"aws": 0, "azure": 0, "gcp": 0}
                )
            },
        )


def test_every_backend_declares_the_interface() -> None:
    from infra.global_lb.azure import TrafficManagerGlobalEndpoint
    from infra.global_lb.gcp import CloudDnsGlobalEndpoint

    for backend in (Route53GlobalEndpoint, TrafficManagerGlobalEndpoint, CloudDnsGlobalEndpoint):
        declared = {
            name
            for klass in backend.__mro__
            for name in (*vars(klass).get("__annotations__", {}), *vars(klass))
        }
        assert set(GlobalDnsBackend.__annotations__) <= declared, backend.__name__
        assert isinstance(backend.dns_provider, DnsProvider), backend.__name__


# ----------------------------------------------------------------- pure functions


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("k8s-gw-123.elb.us-east-1.amazonaws.com", "CNAME"),
        ("gw.example.com.", "CNAME"),
        ("20.50.1.10", "A"),
        ("2600:1f18::10", "AAAA"),
    ],
)
def test_record_type_for_endpoint(endpoint: str, expected: str) -> None:
    assert record_type_for(endpoint) == expected


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("", "empty"),
        ("https://gw.example.com", "neither an IP address nor a DNS hostname"),
        ("gw.example.com:443", "neither an IP address nor a DNS hostname"),
        ("localhost", "neither an IP address nor a DNS hostname"),
        ("10.0.0.5", "not a public address"),
    ],
)
def test_record_type_for_rejects_bad_endpoints(endpoint: str, message: str) -> None:
    with pytest.raises(GlobalDnsError, match=message) as error:
        record_type_for(endpoint, Cloud.GCP)
    assert "gcp gateway endpoint" in str(error.value)


@pytest.mark.parametrize(
    ("cloud", "region", "expected_prefix"),
    [
        (Cloud.AWS, "eu-west-3", "eu-west-3"),
        (Cloud.AZURE, "westeurope", "eu-"),
        (Cloud.AZURE, "japaneast", "ap-northeast-1"),
        (Cloud.AZURE, "australiaeast", "ap-southeast-2"),
        (Cloud.GCP, "europe-west4", "eu-"),
        (Cloud.GCP, "us-east4", "us-east-1"),
        (Cloud.GCP, "southamerica-east1", "sa-east-1"),
    ],
)
def test_nearest_aws_region(cloud: Cloud, region: str, expected_prefix: str) -> None:
    assert nearest_aws_region(cloud, region).startswith(expected_prefix)


def test_every_known_region_maps_to_a_real_aws_region() -> None:
    for cloud, table in ((Cloud.AZURE, AZURE_REGION_POSITIONS), (Cloud.GCP, GCP_REGION_POSITIONS)):
        for region in table:
            ranked = nearest_aws_regions(cloud, region)
            assert ranked[0] in AWS_REGIONS
            assert sorted(ranked) == sorted(set(ranked))


@pytest.mark.parametrize(
    ("cloud", "region", "key"),
    [
        (Cloud.AZURE, "marsnorth", "ai-gateway:azure.location"),
        (Cloud.GCP, "europe-west99", "ai-gateway:gcp.region"),
        (Cloud.AWS, "cn-north-1", "ai-gateway:aws.region"),
    ],
)
def test_unknown_region_is_a_clear_error(cloud: Cloud, region: str, key: str) -> None:
    with pytest.raises(GlobalDnsError) as error:
        nearest_aws_region(cloud, region)
    message = str(error.value)
    assert message.startswith(f"{key}: {region!r}")
    assert "routingPolicy: weighted" in message


def test_latency_labels_stay_distinct_when_clouds_share_a_nearest_region() -> None:
    regions = {Cloud.AWS: "us-east-1", Cloud.AZURE: "eastus2", Cloud.GCP: "us-east4"}
    assert nearest_aws_region(Cloud.AZURE, "eastus2") == "us-east-1"  # the clash
    labels = assign_latency_regions(regions)
    assert labels[Cloud.AWS] == "us-east-1"
    assert len(set(labels.values())) == 3
    assert all(label.startswith(("us-", "ca-")) for label in labels.values())


def test_latency_labels_are_distinct_for_any_region_mix() -> None:
    azure = ["eastus", "westeurope", "japaneast", "uksouth"]
    gcp = ["us-east4", "europe-west2", "asia-northeast1", "europe-west4"]
    aws_regions = ["us-east-1", "eu-west-2", "ap-northeast-1"]
    for a in aws_regions:
        for z in azure:
            for g in gcp:
                labels = assign_latency_regions({Cloud.AWS: a, Cloud.AZURE: z, Cloud.GCP: g})
                assert labels[Cloud.AWS] == a
                assert len(set(labels.values())) == 3, (a, z, g, labels)


def test_latency_labels_alone_are_the_nearest() -> None:
    assert assign_latency_regions({Cloud.GCP: "asia-southeast1"}) == {Cloud.GCP: "ap-southeast-1"}


def test_latency_labels_need_a_cloud() -> None:
    with pytest.raises(GlobalDnsError, match="no cloud is enabled"):
        assign_latency_regions({})


def test_cloud_hostname() -> None:
    assert (
        cloud_hostname("gateway", Cloud.AZURE, "ai.example.com") == "gateway-azure.ai.example.com"
    )
    with pytest.raises(GlobalDnsError, match=r"ai-gateway:dns\.hostname: .*shorter"):
        cloud_hostname("g" * 60, Cloud.AZURE, "ai.example.com")


def test_health_checker_regions() -> None:
    assert health_checker_regions(["us-east-1", "eu-west-1", "sa-east-1", "eu-west-1"]) == [
        "us-east-1",
        "eu-west-1",
        "sa-east-1",
    ]
    with pytest.raises(GlobalDnsError, match="at least three"):
        health_checker_regions(["us-east-1", "eu-west-1"])
    with pytest.raises(GlobalDnsError, match="eu-central-1 not supported"):
        health_checker_regions(["us-east-1", "eu-west-1", "eu-central-1"])


def test_health_check_timing() -> None:
    assert health_check_timing(3, 30) == (3, 30)
    with pytest.raises(GlobalDnsError, match="request_interval: 20 is not allowed"):
        health_check_timing(3, 20)
    with pytest.raises(GlobalDnsError, match="failure_threshold: 0 is not allowed"):
        health_check_timing(0, 10)


def test_routing_weights() -> None:
    dns = _parsed_dns(routingPolicy="weighted", weights={"aws": 3, "azure": 0})
    assert routing_weights(dns, [Cloud.AWS, Cloud.AZURE]) == {Cloud.AWS: 3, Cloud.AZURE: 0}
    with pytest.raises(GlobalDnsError, match=r"ai-gateway:dns\.weights: no weight for gcp"):
        routing_weights(dns, [Cloud.AWS, Cloud.GCP])
    with pytest.raises(GlobalDnsError, match="every enabled cloud has weight 0"):
        routing_weights(dns, [Cloud.AZURE])


# ------------------------------------------------------------------ dns config


@pytest.mark.parametrize(
    ("dns", "message"),
    [
        ({"weights": {"aws": 0}, "routingPolicy": "weighted"}, "ai-gateway:dns.weights: every"),
        ({"routingPolicy": "weighted"}, "ai-gateway:dns.weights: no weight for aws"),
        ({"hostname": "Gate_way"}, "ai-gateway:dns.hostname: 'Gate_way' is not a usable DNS label"),
        ({"hostedZoneId": "example.com"}, "ai-gateway:dns.hostedZoneId: 'example.com' is not"),
        (
            {"alerts": {"emails": ["oncall"]}},
            "ai-gateway:dns.alerts.emails: 'oncall' is not an email",
        ),
        (
            {"alerts": {"snsTopicArn": "arn:aws:sns:eu-west-1:123456789012:oncall"}},
            "ai-gateway:dns.alerts.snsTopicArn: .* is not an SNS topic ARN in us-east-1",
        ),
        (
            {"alarmEmails": ["oncall@example.com"]},
            "ai-gateway:dns.alarmEmails: alarmEmails moved to ai-gateway:dns.alerts.emails",
        ),
    ],
)
def test_dns_config_errors_name_the_key(dns: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _parsed_dns(**dns)


def test_dns_config_alerts_and_zone_id() -> None:
    assert _parsed_dns(alerts={"emails": ["oncall@example.com"]}).alerts.configured
    assert _parsed_dns(alerts={"snsTopicArn": EXISTING_TOPIC}).alerts.configured
    assert not _parsed_dns().alerts.configured
    assert _parsed_dns(hostedZoneId="/hostedzone/Z0ABC").hosted_zone_id == "Z0ABC"


# -------------------------------------------------------------------- helpers


def _parsed_dns(**dns: Any):
    return parse(
        {
            "environment": "dev",
            "tags": {"owner": "platform", "costCenter": "cc-1"},
            "aws": {"enabled": True},
            "dns": {"domain": "ai.example.com", **dns},
        }
    ).dns


def _stack_values(stack: str) -> dict[str, Any]:
    from infra.offline.stackfile import read_stack_file

    values = read_stack_file(ROOT / f"Pulumi.{stack}.yaml").values
    return {
        k.split(":", 1)[1]: json.loads(v) if v[:1] in "{[" else v
        for k, v in values.items()
        if k.startswith("ai-gateway:")
    }
