"""The single-cloud quick path, as a user runs it: ``aigw plan`` of each example stack file.

``examples/single-cloud/Pulumi.<cloud>-only.yaml`` is what the getting-started
pages and the README's quick path copy. Each must plan resources of its own cloud only (no AWS account
for an Azure team), the global name on that cloud's DNS with a health check,
and the stack's alert destination; and a prod file without one must exit 2
naming the key.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from infra.cli import EXIT_ERROR, EXIT_OK, main
from tests.infra.conftest import ROOT

EXAMPLES = ROOT / "examples" / "single-cloud"
PACKAGES = {"aws": "aws", "azure": "azure-native", "gcp": "gcp"}
EMAIL = "gateway-oncall@example.com"


def _plan(stack_file: Path, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            [
                "plan",
                "--stack",
                stack,
                "--stack-file",
                str(stack_file),
                "--project-dir",
                str(ROOT),
                *extra,
            ]
        )
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def single_cloud_plans() -> dict[str, tuple[int, list[dict[str, Any]], str]]:
    """``aigw plan --json`` of each example: exit code, resources, the verdict."""
    plans = {}
    for cloud in PACKAGES:
        code, out, err = _plan(EXAMPLES / f"Pulumi.{cloud}-only.yaml", "--json")
        plans[cloud] = (code, json.loads(out) if out else [], err)
    return plans


def _of(resources: list[dict[str, Any]], type_token: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"] == type_token]


@pytest.mark.parametrize("cloud", list(PACKAGES))
def test_a_single_cloud_stack_plans_that_cloud_only(
    single_cloud_plans: dict[str, tuple[int, list[dict[str, Any]], str]], cloud: str
) -> None:
    code, resources, verdict = single_cloud_plans[cloud]
    assert code == EXIT_OK, verdict
    assert "compliant" in verdict
    packages = {r["type"].split(":", 1)[0] for r in resources if r["custom"]}
    packages |= {
        r["type"].split(":")[2] for r in resources if r["type"].startswith("pulumi:providers:")
    }
    others = {PACKAGES[c] for c in PACKAGES if c != cloud}
    assert packages & others == set(), sorted(packages & others)
    assert PACKAGES[cloud] in packages
    # The global layer lives on this cloud's DNS.
    components = {r["type"] for r in resources if not r["custom"]}
    zone = {
        "aws": "ai-gateway:global:DnsZone",
        "azure": "ai-gateway:global:AzureDnsZone",
        "gcp": "ai-gateway:global:CloudDnsZone",
    }[cloud]
    assert zone in components


def test_aws_only_global_name_is_health_checked(single_cloud_plans) -> None:  # type: ignore[no-untyped-def]
    _, resources, _ = single_cloud_plans["aws"]
    (check,) = _of(resources, "aws:route53/healthCheck:HealthCheck")
    assert check["inputs"]["fqdn"] == "gateway-aws.ai.example.com"
    assert check["inputs"]["resourcePath"] == "/health/ready"
    routed = [
        r
        for r in _of(resources, "aws:route53/record:Record")
        if r["inputs"]["name"] == "gateway.ai.example.com"
    ]
    assert [r["inputs"]["setIdentifier"] for r in routed] == ["aws"]
    assert "healthCheckId" in routed[0]["inputs"]
    (subscription,) = _of(resources, "aws:sns/topicSubscription:TopicSubscription")
    assert subscription["inputs"]["endpoint"] == EMAIL


def test_azure_only_global_name_is_a_traffic_manager_profile(single_cloud_plans) -> None:  # type: ignore[no-untyped-def]
    _, resources, _ = single_cloud_plans["azure"]
    (profile,) = _of(resources, "azure-native:trafficmanager:Profile")
    assert profile["inputs"]["trafficRoutingMethod"] == "Performance"
    monitor = profile["inputs"]["monitorConfig"]
    assert (monitor["protocol"], monitor["port"], monitor["path"]) == (
        "HTTPS",
        443,
        "/health/ready",
    )
    (endpoint,) = _of(resources, "azure-native:trafficmanager:Endpoint")
    assert endpoint["inputs"]["target"] == "gateway-azure.ai.example.com"
    assert endpoint["inputs"]["endpointLocation"] == "westeurope"
    names = {
        r["inputs"]["relativeRecordSetName"]: r
        for r in _of(resources, "azure-native:dns:RecordSet")
    }
    assert set(names) == {"gateway", "gateway-azure"}
    assert names["gateway"]["inputs"]["recordType"] == "CNAME"
    assert names["gateway"]["inputs"]["cnameRecord"]["cname"].endswith(".trafficmanager.net")
    (group,) = _of(resources, "azure-native:monitor:ActionGroup")
    assert [r["emailAddress"] for r in group["inputs"]["emailReceivers"]] == [EMAIL]
    (issuer,) = _of(resources, "kubernetes:cert-manager.io/v1:ClusterIssuer")
    (solver,) = issuer["inputs"]["spec"]["acme"]["solvers"]
    assert solver["dns01"]["azureDNS"]["hostedZoneName"] == "ai.example.com"


def test_gcp_only_global_name_is_a_health_checked_routing_policy(single_cloud_plans) -> None:  # type: ignore[no-untyped-def]
    _, resources, _ = single_cloud_plans["gcp"]
    (check,) = _of(resources, "gcp:compute/healthCheck:HealthCheck")
    assert len(check["inputs"]["sourceRegions"]) == 3
    assert check["inputs"]["httpsHealthCheck"]["requestPath"] == "/health/ready"
    routed = [
        r
        for r in _of(resources, "gcp:dns/recordSet:RecordSet")
        if r["inputs"]["name"] == "gateway.ai.example.com."
    ]
    (policy,) = [r["inputs"]["routingPolicy"] for r in routed]
    assert policy["healthCheck"]  # the health check's id, an output of the check
    (geo,) = policy["geos"]
    assert geo["location"] == "europe-west4"
    assert geo["healthCheckedTargets"]["externalEndpoints"]
    (channel,) = _of(resources, "gcp:monitoring/notificationChannel:NotificationChannel")
    # `labels` is the channel's address; the organisational tags go to userLabels.
    assert channel["inputs"]["labels"] == {"email_address": EMAIL}
    assert channel["inputs"]["userLabels"]["owner"] == "platform-team"
    (issuer,) = _of(resources, "kubernetes:cert-manager.io/v1:ClusterIssuer")
    (solver,) = issuer["inputs"]["spec"]["acme"]["solvers"]
    assert solver["dns01"]["cloudDNS"]["project"] == "acme-ai-gateway-prod"
    assert solver["dns01"]["cloudDNS"]["hostedZoneName"]


@pytest.mark.parametrize("cloud", list(PACKAGES))
def test_prod_without_an_alert_destination_exits_two_naming_the_key(
    tmp_path: Path, cloud: str
) -> None:
    source = (EXAMPLES / f"Pulumi.{cloud}-only.yaml").read_text()
    without = source.replace(f"    alerts:\n      emails:\n        - {EMAIL}\n", "")
    assert without != source
    stack_file = tmp_path / f"Pulumi.{cloud}-only.yaml"
    stack_file.write_text(without)
    code, out, err = _plan(stack_file)
    assert code == EXIT_ERROR
    assert "ai-gateway:dns.alerts: prod needs somewhere to send health alerts" in err
    assert out == ""
