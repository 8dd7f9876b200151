"""The global name on each DNS cloud: capabilities, Traffic Manager, Cloud DNS, DNSSEC, logging.

Recorded on the global-layer fixture program (fake gateway endpoints, no
footprints). Provider rules encoded here, with their documentation:

* Traffic Manager ("Traffic Manager endpoint monitoring"): interval 10 or 30 s,
  ``toleratedNumberOfFailures`` 0-9 (degraded after that many + 1), HTTPS
  probes check status codes only; weights 1-1000 ("Weighted traffic-routing
  method"), so weight 0 is expressed as a disabled endpoint; performance
  routing labels an external endpoint with an Azure region.
* Cloud DNS ("DNS routing policies and health checks"; Compute
  ``HealthCheck.sourceRegions``): no latency policy, external endpoints are IP
  addresses, exactly three source regions and an interval of at least 30 s;
  ``dnssecConfig.state: on`` signs the zone and ``dns.getKeys`` returns its
  DS record; ``cloudLoggingConfig.enableLogging`` logs queries.
* Route 53 ("Configuring DNSSEC signing in Amazon Route 53", "Public DNS query
  logging"): the KSK's KMS key is ECC_NIST_P256/SIGN_VERIFY in us-east-1 and
  lets ``dnssec-route53.amazonaws.com`` sign; query logs go to a us-east-1 log
  group named ``/aws/route53/...`` with a resource policy for
  ``route53.amazonaws.com``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import Cloud, ConfigError, DnsProvider, RoutingPolicy, parse
from infra.config.capabilities import CAPABILITIES, capability_table, default_provider
from infra.global_lb.azure import endpoint_weight, probe_timeout
from infra.global_lb.common import GlobalDnsError
from infra.global_lb.gcp import ipv4_endpoint
from infra.offline import Plan, record
from tests.infra.conftest import ROOT

PROGRAM = Path(__file__).parent / "fixtures" / "global_lb_program" / "__main__.py"
OFF = {"enabled": False}
AZURE_OPENAI = (
    "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/ai/providers/"
    "Microsoft.CognitiveServices/accounts/acme-ai"
)
"""An Azure cluster's default catalogue needs a model it can call: its Azure OpenAI account."""


def _dns(**overrides: Any) -> dict[str, Any]:
    return {"domain": "ai.example.com", "hostname": "gw", **overrides}


SCENARIOS: dict[str, dict[str, Any]] = {
    "azure-latency": {
        "ai-gateway:dns": _dns(alerts={"emails": ["oncall@example.com"]}),
        "ai-gateway:aws": OFF,
        "ai-gateway:gcp": OFF,
    },
    "azure-weighted-fast-checks": {
        "ai-gateway:dns": _dns(
            routingPolicy="weighted",
            weights={"azure": 600},
            healthCheck={"intervalSeconds": 10, "failureThreshold": 4},
            ttlSeconds=30,
        ),
        "ai-gateway:aws": OFF,
        "ai-gateway:gcp": OFF,
    },
    "gcp-geo": {
        "ai-gateway:dns": _dns(alerts={"emails": ["oncall@example.com"]}),
        "ai-gateway:aws": OFF,
        "ai-gateway:azure": OFF,
    },
    "gcp-weighted-unsigned-unlogged": {
        "ai-gateway:dns": _dns(
            routingPolicy="weighted",
            weights={"gcp": 1000},
            dnssec=False,
            queryLogging=False,
            healthCheck={"intervalSeconds": 60},
        ),
        "ai-gateway:aws": OFF,
        "ai-gateway:azure": OFF,
    },
    "route53-signed-logged": {"ai-gateway:dns": _dns()},
    "route53-existing-zone": {"ai-gateway:dns": _dns(hostedZoneId="Z0EXISTING1234567")},
}


@pytest.fixture(scope="module")
def dns_plans() -> dict[str, Plan]:
    return {
        name: record("dev", project_dir=ROOT, program=PROGRAM, config=overrides)
        for name, overrides in SCENARIOS.items()
    }


# ------------------------------------------------------------------ capabilities


def _parse(stack: dict[str, Any] | None = None, **dns: Any):
    values: dict[str, Any] = {
        "environment": "dev",
        "tags": {"owner": "platform", "costCenter": "cc-1"},
        "aws": {"enabled": True},
        "dns": {"domain": "ai.example.com", **dns},
    }
    values.update(stack or {})
    return parse(values)


@pytest.mark.parametrize(
    ("enabled", "expected"),
    [
        (["aws"], DnsProvider.ROUTE53),
        (["azure"], DnsProvider.AZURE),
        (["gcp"], DnsProvider.GCP),
        (["aws", "azure"], DnsProvider.ROUTE53),
        (["azure", "gcp"], DnsProvider.ROUTE53),
    ],
)
def test_single_cloud_defaults_to_its_own_dns(enabled: list[str], expected: DnsProvider) -> None:
    assert default_provider([Cloud(c) for c in enabled]) == expected
    stack = {c.value: {"enabled": c.value in enabled, "project": "acme-ai-dev"} for c in Cloud}
    stack["aws"].pop("project")
    stack["azure"] = {"enabled": "azure" in enabled, "openaiAccountId": AZURE_OPENAI}
    config = _parse(stack)
    assert config.dns.provider == expected
    assert config.dns.routing_policy == (
        RoutingPolicy.GEO if expected == DnsProvider.GCP else RoutingPolicy.LATENCY
    )


AZURE_ONLY = {"aws": OFF, "azure": {"enabled": True, "openaiAccountId": AZURE_OPENAI}}
GCP_ONLY = {"aws": OFF, "gcp": {"enabled": True, "project": "acme-ai-dev"}}


@pytest.mark.parametrize(
    ("stack", "dns", "message"),
    [
        (GCP_ONLY, {"routingPolicy": "latency"}, r"dns\.routingPolicy: latency is not available with dns\.provider gcp .*use geo or weighted"),
        ({}, {"routingPolicy": "geo"}, r"dns\.routingPolicy: geo is not available with dns\.provider route53 .*offers it \(gcp\)"),
        (AZURE_ONLY, {"routingPolicy": "geo"}, r"dns\.routingPolicy: geo is not available with dns\.provider azure"),
        ({}, {"weights": {"aws": 300}}, r"dns\.weights: weight 300 for aws exceeds 255"),
        ({}, {"healthCheck": {"intervalSeconds": 20}}, r"dns\.healthCheck\.intervalSeconds: 20 is not allowed .*use 10 or 30"),
        (GCP_ONLY, {"healthCheck": {"intervalSeconds": 10}}, r"dns\.healthCheck\.intervalSeconds: 10 is below 30"),
        (AZURE_ONLY, {"queryLogging": True}, r"dns\.queryLogging: Azure DNS \+ Traffic Manager keeps no query log .*route53 or gcp"),
        (AZURE_ONLY, {"hostedZoneId": "Z0ABC"}, r"dns\.hostedZoneId: names a Route 53 zone"),
        ({}, {"alerts": {"actionGroupId": "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/microsoft.insights/actionGroups/oncall"}}, r"dns\.alerts\.actionGroupId: .*use alerts\.emails or alerts\.snsTopicArn"),
        ({}, {"provider": "gcp"}, r"dns\.provider: Cloud DNS routing policies health-checks external endpoints by IP address only.*route53 or azure"),
        ({}, {"provider": "cloudflare"}, r"ai-gateway:dns\.provider: cloudflare is not allowed; use one of 'route53', 'azure' or 'gcp'"),
    ],
)  # fmt: skip
def test_settings_a_provider_cannot_honour_are_refused_naming_key_and_alternative(
    stack: dict[str, Any], dns: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _parse(stack, **dns)


def test_prod_needs_an_alert_destination_and_accepts_the_dns_clouds_own() -> None:
    prod = {"environment": "prod", "aws": {"enabled": True, "deployerCidrs": ["203.0.113.0/24"]}}
    with pytest.raises(ConfigError, match=r"ai-gateway:dns\.alerts: prod needs somewhere"):
        _parse(prod)
    topic = "arn:aws:sns:us-east-1:123456789012:oncall"
    assert _parse(prod, alerts={"snsTopicArn": topic}).dns.alerts.sns_topic_arn == topic
    assert _parse(prod, alerts={"emails": ["oncall@example.com"]}).dns.alerts.configured


def test_the_docs_state_the_capabilities_as_the_config_enforces_them() -> None:
    from docgen.pages import escape_markup

    page = (ROOT / "docs" / "reference" / "global-dns.md").read_text()
    assert escape_markup(capability_table()) in page
    assert set(CAPABILITIES) == set(DnsProvider)


def test_pure_decisions() -> None:
    assert probe_timeout(30) == 10 and probe_timeout(10) == 9
    assert endpoint_weight(0)[1].value == "Disabled"
    assert (
        endpoint_weight(7) == (7, endpoint_weight(7)[1])
        and endpoint_weight(7)[1].value == "Enabled"
    )
    assert ipv4_endpoint(Cloud.GCP, " 34.90.1.10 ") == "34.90.1.10"
    with pytest.raises(GlobalDnsError, match="IPv4 address only"):
        ipv4_endpoint(Cloud.AWS, "k8s-gw.elb.us-east-1.amazonaws.com")


# ---------------------------------------------------------------- Traffic Manager


def test_traffic_manager_probes_readiness_and_routes_by_performance(
    dns_plans: dict[str, Plan],
) -> None:
    plan = dns_plans["azure-latency"]
    profile = plan.one("azure-native:trafficmanager:Profile")
    assert profile.get("trafficRoutingMethod") == "Performance"
    assert profile.get("dnsConfig.ttl") == 60
    assert profile.get("monitorConfig") == {
        "protocol": "HTTPS",
        "port": 443,
        "path": "/health/ready",
        "intervalInSeconds": 30,
        "timeoutInSeconds": 10,
        "toleratedNumberOfFailures": 2,
        "expectedStatusCodeRanges": [{"min": 200, "max": 200}],
    }
    (endpoint,) = plan.of_type("azure-native:trafficmanager:Endpoint")
    assert endpoint.get("endpointType") == "ExternalEndpoints"
    assert endpoint.get("target") == "gw-azure.ai.example.com"
    assert endpoint.get("endpointLocation") == "eastus2"
    assert endpoint.get("endpointStatus") == "Enabled"
    assert endpoint.get("customHeaders") == [{"name": "host", "value": "gw-azure.ai.example.com"}]
    direct = plan.one("azure-native:dns:RecordSet", "global-azure-direct")
    assert direct.get("recordType") == "A"
    assert direct.get("aRecords") == [{"ipv4Address": "20.50.1.10"}]
    assert direct.urn in endpoint.dependencies
    routed = plan.one("azure-native:dns:RecordSet", "global-routed")
    assert routed.get("relativeRecordSetName") == "gw"
    assert routed.get("cnameRecord.cname") == profile.outputs["dnsConfig"]["fqdn"]
    assert plan.outputs["healthCheckIds"] == {"azure": endpoint.id}
    assert plan.outputs["dnsProvider"] == "azure"


def test_traffic_manager_alerts_on_each_endpoints_probe_state(dns_plans: dict[str, Plan]) -> None:
    plan = dns_plans["azure-latency"]
    group = plan.one("azure-native:monitor:ActionGroup")
    assert [r["emailAddress"] for r in group.get("emailReceivers")] == ["oncall@example.com"]
    assert len(group.get("groupShortName")) <= 12  # Azure's limit
    (alert,) = plan.of_type("azure-native:monitor:MetricAlert")
    (criterion,) = alert.get("criteria.allOf")
    assert criterion["metricName"] == "ProbeAgentCurrentEndpointStateByProfileResourceId"
    assert criterion["dimensions"] == [
        {"name": "EndpointName", "operator": "Include", "values": ["azure"]}
    ]
    assert (criterion["operator"], criterion["threshold"]) == ("LessThan", 1)
    assert alert.get("scopes") == [plan.one("azure-native:trafficmanager:Profile").id]
    assert alert.get("actions") == [{"actionGroupId": group.id}]
    # Without a destination (dev) the alerts exist and notify nobody.
    quiet = dns_plans["azure-weighted-fast-checks"]
    assert quiet.of_type("azure-native:monitor:ActionGroup") == []
    assert quiet.one("azure-native:monitor:MetricAlert").get("actions") == []


def test_traffic_manager_weights_and_fast_checks(dns_plans: dict[str, Plan]) -> None:
    plan = dns_plans["azure-weighted-fast-checks"]
    profile = plan.one("azure-native:trafficmanager:Profile")
    assert profile.get("trafficRoutingMethod") == "Weighted"
    assert profile.get("monitorConfig.intervalInSeconds") == 10
    assert profile.get("monitorConfig.timeoutInSeconds") == 9
    assert profile.get("monitorConfig.toleratedNumberOfFailures") == 3
    assert profile.get("dnsConfig.ttl") == 30
    (endpoint,) = plan.of_type("azure-native:trafficmanager:Endpoint")
    assert endpoint.get("weight") == 600
    assert endpoint.get("endpointLocation") is None


def test_azure_zone_is_signed_and_its_ds_record_is_an_output(dns_plans: dict[str, Plan]) -> None:
    plan = dns_plans["azure-latency"]
    zone = plan.one("azure-native:dns:Zone")
    assert zone.get("zoneType") == "Public"
    assert plan.one("azure-native:dns:DnssecConfig").get("zoneName") == "ai.example.com"
    key_tag, algorithm, digest_type, digest = plan.outputs["dnssecDsRecord"].split()
    assert (algorithm, digest_type) == ("13", "2")  # ECDSA P-256, SHA-256 preferred
    assert len(digest) == 64 and key_tag.isdigit()
    assert plan.outputs["dnsNameServers"] == zone.outputs["nameServers"]


# ----------------------------------------------------------------------- Cloud DNS


def test_cloud_dns_geo_policy_with_health_checked_ip_targets(dns_plans: dict[str, Plan]) -> None:
    plan = dns_plans["gcp-geo"]
    check = plan.one("gcp:compute/healthCheck:HealthCheck")
    assert check.get("sourceRegions") == ["us-east4", "europe-west1", "asia-southeast1"]
    assert check.get("checkIntervalSec") == 30
    assert check.get("httpsHealthCheck") == {
        "port": 443,
        "requestPath": "/health/ready",
        "host": "gw.ai.example.com",
        "response": "ready",
    }
    routed = plan.one("gcp:dns/recordSet:RecordSet", "global-routed")
    assert routed.get("name") == "gw.ai.example.com."
    assert routed.get("routingPolicy.healthCheck") == check.id
    (geo,) = routed.get("routingPolicy.geos")
    assert geo == {
        "location": "us-central1",
        "healthCheckedTargets": {"externalEndpoints": ["34.90.1.10"]},
    }
    direct = plan.one("gcp:dns/recordSet:RecordSet", "global-gcp-direct")
    assert (direct.get("type"), direct.get("rrdatas")) == ("A", ["34.90.1.10"])
    assert plan.outputs["healthCheckIds"] == {"gcp": check.id}


def test_cloud_dns_zone_is_signed_and_logged(dns_plans: dict[str, Plan]) -> None:
    plan = dns_plans["gcp-geo"]
    zone = plan.one("gcp:dns/managedZone:ManagedZone")
    assert zone.get("dnsName") == "ai.example.com."
    assert zone.get("visibility") == "public"
    assert zone.get("dnssecConfig") == {"state": "on"}
    assert zone.get("cloudLoggingConfig") == {"enableLogging": True}
    assert plan.outputs["dnssecDsRecord"].split()[1:3] == ["13", "2"]
    apis = {r.get("service") for r in plan.of_type("gcp:projects/service:Service")}
    assert apis == {"dns.googleapis.com", "compute.googleapis.com", "monitoring.googleapis.com"}
    for resource in plan.of_type("gcp:dns/recordSet:RecordSet"):
        assert set(a.urn for a in plan.of_type("gcp:projects/service:Service")) <= set(
            resource.dependencies
        )


def test_cloud_dns_uptime_alerts(dns_plans: dict[str, Plan]) -> None:
    plan = dns_plans["gcp-geo"]
    uptime = plan.one("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig")
    assert uptime.get("monitoredResource") == {
        "type": "uptime_url",
        "labels": {"project_id": "acme-ai-gateway-dev", "host": "gw-gcp.ai.example.com"},
    }
    assert uptime.get("httpCheck.useSsl") is True and uptime.get("httpCheck.validateSsl") is True
    assert uptime.get("contentMatchers") == [{"content": "ready", "matcher": "CONTAINS_STRING"}]
    policy = plan.one("gcp:monitoring/alertPolicy:AlertPolicy")
    (condition,) = policy.get("conditions")
    assert uptime.outputs["uptimeCheckId"] in condition["conditionThreshold"]["filter"]
    channel = plan.one("gcp:monitoring/notificationChannel:NotificationChannel")
    assert policy.get("notificationChannels") == [channel.outputs["name"]]


def test_cloud_dns_weighted_unsigned_unlogged(dns_plans: dict[str, Plan]) -> None:
    plan = dns_plans["gcp-weighted-unsigned-unlogged"]
    zone = plan.one("gcp:dns/managedZone:ManagedZone")
    assert zone.get("dnssecConfig") is None
    assert zone.get("cloudLoggingConfig") == {"enableLogging": False}
    assert plan.outputs["dnssecDsRecord"] == ""
    (item,) = plan.one("gcp:dns/recordSet:RecordSet", "global-routed").get("routingPolicy.wrrs")
    assert item["weight"] == 1000
    assert plan.one("gcp:compute/healthCheck:HealthCheck").get("checkIntervalSec") == 60


# ------------------------------------------------------------------------ Route 53


def test_route53_zone_is_signed_with_a_ksk_route53_may_use(dns_plans: dict[str, Plan]) -> None:
    plan = dns_plans["route53-signed-logged"]
    key = plan.one("aws:kms/key:Key", "global-dns-dnssec")
    assert key.get("customerMasterKeySpec") == "ECC_NIST_P256"
    assert key.get("keyUsage") == "SIGN_VERIFY"
    statements = {s["Sid"]: s for s in json.loads(key.get("policy"))["Statement"]}
    sign = statements["Route53DnssecSigns"]
    assert sign["Principal"] == {"Service": "dnssec-route53.amazonaws.com"}
    assert {"kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"} <= set(sign["Action"])
    assert sign["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    ksk = plan.one("aws:route53/keySigningKey:KeySigningKey")
    assert ksk.get("keyManagementServiceArn") == key.outputs["arn"]
    assert ksk.get("status") == "ACTIVE"
    signing = plan.one("aws:route53/hostedZoneDnsSec:HostedZoneDnsSec")
    assert ksk.urn in signing.dependencies
    assert plan.outputs["dnssecDsRecord"] == ksk.outputs["dsRecord"]
    provider = plan.by_urn(ksk.provider.rsplit("::", 1)[0])
    assert provider.get("region") == "us-east-1"


def test_route53_queries_are_logged_to_an_encrypted_group(dns_plans: dict[str, Plan]) -> None:
    plan = dns_plans["route53-signed-logged"]
    group = plan.one("aws:cloudwatch/logGroup:LogGroup")
    assert group.get("name") == "/aws/route53/ai.example.com"
    # Kept as long as the stack's other CloudWatch logs (aws.logRetentionDays: 30 in dev,
    # 365 in prod, where the pack's aws-cloudwatch-loggroup-retention wants a year).
    assert group.get("retentionInDays") == 30
    assert (
        group.get("kmsKeyId") == plan.one("aws:kms/key:Key", "global-dns-query-log").outputs["arn"]
    )
    policy = plan.one("aws:cloudwatch/logResourcePolicy:LogResourcePolicy")
    (statement,) = json.loads(policy.get("policyDocument"))["Statement"]
    assert statement["Principal"] == {"Service": "route53.amazonaws.com"}
    assert statement["Resource"].endswith(":log-group:/aws/route53/*")
    log = plan.one("aws:route53/queryLog:QueryLog")
    assert log.get("cloudwatchLogGroupArn") == group.outputs["arn"]
    assert policy.urn in log.dependencies


def test_an_existing_route53_zone_is_left_as_its_owner_configured_it(
    dns_plans: dict[str, Plan],
) -> None:
    plan = dns_plans["route53-existing-zone"]
    for token in (
        "aws:route53/keySigningKey:KeySigningKey",
        "aws:route53/queryLog:QueryLog",
        "aws:route53/zone:Zone",
    ):
        assert plan.of_type(token) == [], token
    assert plan.outputs["dnssecDsRecord"] == ""


# ------------------------------------------------ multi-cloud on Azure DNS, Cloud DNS


@pytest.fixture(scope="module")
def multi_cloud_plans() -> dict[str, Plan]:
    """The dev stack's three clouds on Azure DNS (gcp drained), and Azure + GCP on Cloud DNS."""
    dns = {"domain": "ai.example.com", "hostname": "gateway-dev", "routingPolicy": "weighted"}
    return {
        "azure": record(
            "dev",
            project_dir=ROOT,
            config={
                "ai-gateway:dns": {
                    **dns,
                    "provider": "azure",
                    "weights": {"aws": 50, "azure": 50, "gcp": 0},
                }
            },
        ),
        "gcp": record(
            "dev",
            project_dir=ROOT,
            config={
                "ai-gateway:dns": {**dns, "provider": "gcp", "weights": {"azure": 30, "gcp": 70}},
                "ai-gateway:aws": OFF,
            },
        ),
    }


def _cert_manager_values(plan: Plan, cloud: str) -> dict[str, Any]:
    from infra.offline.engine import reveal

    (release,) = [
        r
        for r in plan.of_type("kubernetes:helm.sh/v3:Release")
        if r.name == f"gateway-{cloud}-edge-cert-manager"
    ]
    return reveal(release.inputs)["values"]


def _solver(plan: Plan, cloud: str) -> dict[str, Any]:
    from infra.offline.engine import reveal

    issuer = plan.one(
        "kubernetes:cert-manager.io/v1:ClusterIssuer", f"gateway-{cloud}-edge-acme-issuer"
    )
    (solver,) = reveal(issuer.inputs)["spec"]["acme"]["solvers"]
    return solver["dns01"]


def test_every_cluster_answers_challenges_in_azure_dns_through_its_own_issuer(
    multi_cloud_plans: dict[str, Plan],
) -> None:
    plan = multi_cloud_plans["azure"]
    identity = plan.one(
        "azure-native:managedidentity:UserAssignedIdentity", "global-dns-dns01-identity"
    )
    credentials = {
        r.name: r for r in plan.of_type("azure-native:managedidentity:FederatedIdentityCredential")
    }
    eks_issuer = plan.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").get("url")
    for cloud in ("aws", "azure", "gcp"):
        credential = credentials[f"global-dns-{cloud}-dns01-federation"]
        assert credential.get("subject") == "system:serviceaccount:cert-manager:cert-manager"
        assert credential.get("audiences") == ["api://AzureADTokenExchange"]
        assert credential.get("resourceName") == identity.outputs["name"]
        assert _solver(plan, cloud)["azureDNS"]["managedIdentity"] == {
            "clientID": identity.outputs["clientId"]
        }
    assert credentials["global-dns-aws-dns01-federation"].get("issuer") == eks_issuer
    assert (
        credentials["global-dns-gcp-dns01-federation"]
        .get("issuer")
        .startswith("https://container.googleapis.com/v1/projects/acme-ai-gateway-dev/")
    )
    # AKS injects the token itself; EKS and GKE get what its webhook would inject.
    assert _cert_manager_values(plan, "azure")["podLabels"] == {
        "azure.workload.identity/use": "true"
    }
    for cloud in ("aws", "gcp"):
        values = _cert_manager_values(plan, cloud)
        env = {e["name"]: e["value"] for e in values["extraEnv"]}
        assert env["AZURE_CLIENT_ID"] == identity.outputs["clientId"]
        assert (
            env["AZURE_FEDERATED_TOKEN_FILE"]
            == "/var/run/secrets/azure/tokens/azure-identity-token"
        )
        (volume,) = values["volumes"]
        token = volume["projected"]["sources"][0]["serviceAccountToken"]
        assert token["audience"] == "api://AzureADTokenExchange"
    # One identity may only touch TXT records of the zone.
    role = plan.one("azure-native:authorization:RoleDefinition")
    (permissions,) = role.get("permissions")
    assert all("/TXT/" in a or a.endswith("dnszones/read") for a in permissions["actions"])
    assert role.get("assignableScopes") == [plan.one("azure-native:dns:Zone").id]


def test_a_drained_cloud_is_a_disabled_traffic_manager_endpoint(
    multi_cloud_plans: dict[str, Plan],
) -> None:
    plan = multi_cloud_plans["azure"]
    endpoints = {
        r.get("endpointName"): r for r in plan.of_type("azure-native:trafficmanager:Endpoint")
    }
    assert {c: (e.get("weight"), e.get("endpointStatus")) for c, e in endpoints.items()} == {
        "aws": (50, "Enabled"),
        "azure": (50, "Enabled"),
        "gcp": (1, "Disabled"),
    }
    # AWS's NLB is a name: its per-cloud record is a CNAME.
    direct = plan.one("azure-native:dns:RecordSet", "global-aws-direct")
    assert direct.get("recordType") == "CNAME"
    assert direct.get("cnameRecord.cname") == plan.outputs["awsEndpoint"]
    assert not [r for r in plan.resources if r.type.startswith("aws:route53")]


def test_an_aks_cluster_answers_challenges_in_cloud_dns_through_federation(
    multi_cloud_plans: dict[str, Plan],
) -> None:
    from infra.offline.engine import reveal

    plan = multi_cloud_plans["gcp"]
    pool = plan.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool")
    provider = plan.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    assert provider.get("attributeCondition") == (
        "assertion.sub == 'system:serviceaccount:cert-manager:cert-manager'"
    )
    assert provider.get("oidc.issuerUri").startswith("https://eastus2.oic.prod-aks.azure.com/")
    (audience,) = provider.get("oidc.allowedAudiences")
    pool_id = pool.get("workloadIdentityPoolId")
    assert audience.endswith(f"/workloadIdentityPools/{pool_id}/providers/azure-cluster")
    members = {r.get("member") for r in plan.of_type("gcp:serviceaccount/iAMMember:IAMMember")}
    assert any(
        m.startswith("principal://")
        and m.endswith("/subject/system:serviceaccount:cert-manager:cert-manager")
        for m in members
    )
    solver = _solver(plan, "azure")["cloudDNS"]
    assert solver["serviceAccountSecretRef"] == {
        "name": "cert-manager-gcp-federation",
        "key": "credentials.json",
    }
    secret = plan.one("kubernetes:core/v1:Secret", "gateway-azure-edge-gcp-federation")
    config = json.loads(reveal(secret.inputs)["stringData"]["credentials.json"])
    assert config["type"] == "external_account"
    assert "https:" + config["audience"] == audience
    values = _cert_manager_values(plan, "azure")
    token = values["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == audience
    assert config["credential_source"]["file"] == values["volumeMounts"][0]["mountPath"] + "/token"
    # GKE keeps GKE Workload Identity, no federation file.
    assert "serviceAccountSecretRef" not in _solver(plan, "gcp")["cloudDNS"]
    (wrr_azure, wrr_gcp) = plan.one("gcp:dns/recordSet:RecordSet", "global-routed").get(
        "routingPolicy.wrrs"
    )
    assert (wrr_azure["weight"], wrr_gcp["weight"]) == (30, 70)
