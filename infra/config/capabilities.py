"""What each DNS cloud can do for the global name, and the config it cannot honour.

The global name can live on Route 53, Azure DNS + Traffic Manager, or Cloud
DNS routing policies. They differ, and a setting one of them cannot honour
must fail at config time, naming the key and the alternative, never at
``pulumi up``. The table below is the single source: the config validation
reads it and the docs' table is rendered from it (a test keeps them equal).

Sources (each rule's documentation):

* Route 53: "Values that you specify when you create or update health checks"
  (request interval 10 or 30 s, failure threshold 1-10, at least three checker
  regions, string matching in the first 5,120 bytes); "Weighted routing"
  (weights 0-255, 0 is only used when every other record is unhealthy);
  "Latency-based routing" (AWS regions as labels); "Configuring DNSSEC signing"
  and "Public DNS query logging".
* Traffic Manager: "Traffic Manager endpoint monitoring" (HTTP/HTTPS/TCP
  probes, interval 10 or 30 s, tolerated failures 0-9, status-code ranges, no
  body matching, no certificate validation); "Traffic Manager routing methods"
  (Performance, Weighted 1-1000, Geographic needs every region mapped);
  Azure DNS "DNSSEC overview"; Azure DNS has no query log for public zones.
* Cloud DNS: "DNS routing policies and health checks" (weighted round robin,
  geolocation, failover; no latency policy; health checks for external
  endpoints by IP address only, one IP per policy item with DNSSEC); Compute
  ``HealthCheck.sourceRegions`` (exactly three regions, ``checkIntervalSec`` at
  least 30); "Manage DNSSEC configuration"; "Use logging and monitoring"
  (``cloudLoggingConfig.enableLogging``).

Cross-cloud certificate issuance: every cluster answers the ACME DNS-01
challenge for the global name in the zone, so each cluster needs write access
to TXT records there through its own OIDC issuer. Route 53 trusts any
cluster's issuer through IAM OIDC providers; a Microsoft Entra managed
identity through federated credentials; a GCP service account through
Workload Identity Federation (GKE itself through GKE Workload Identity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.config.dns import DnsConfig
from infra.contracts import Cloud, DnsProvider, RoutingPolicy


@dataclass(frozen=True)
class DnsCapabilities:
    """One DNS cloud's abilities, as the config validation and the docs state them."""

    provider: DnsProvider
    service: str
    routing_policies: tuple[RoutingPolicy, ...]
    max_weight: int
    drain: str
    intervals: tuple[int, ...] | None
    """Allowed check intervals (None: any from ``min_interval``)."""
    min_interval: int
    health_check: str
    query_logging: bool
    alert_destination: str
    alert_key: str
    """The ``dns.alerts`` key naming an existing destination on this cloud."""
    challenge_identity: str
    """How each cluster's cert-manager gets write access to TXT records in the zone (DNS-01)."""
    ip_endpoints_only: bool


CAPABILITIES: dict[DnsProvider, DnsCapabilities] = {
    DnsProvider.ROUTE53: DnsCapabilities(
        provider=DnsProvider.ROUTE53,
        service="Route 53",
        routing_policies=(RoutingPolicy.LATENCY, RoutingPolicy.WEIGHTED),
        max_weight=255,
        drain="weight 0 (answered only when every weighted cloud is unhealthy)",
        intervals=(10, 30),
        min_interval=10,
        health_check="HTTPS with SNI from 3+ AWS regions; the body must contain `ready`",
        query_logging=True,
        alert_destination="CloudWatch alarm -> SNS topic (email subscriptions)",
        alert_key="snsTopicArn",
        challenge_identity="an IAM role per cluster, trusted through its OIDC issuer",
        ip_endpoints_only=False,
    ),
    DnsProvider.AZURE: DnsCapabilities(
        provider=DnsProvider.AZURE,
        service="Azure DNS + Traffic Manager",
        routing_policies=(RoutingPolicy.LATENCY, RoutingPolicy.WEIGHTED),
        max_weight=1000,
        drain="weight 0 disables the endpoint (Traffic Manager weights are 1-1000)",
        intervals=(10, 30),
        min_interval=10,
        health_check="HTTPS status 200 from Traffic Manager's probes (no body matching)",
        query_logging=False,
        alert_destination="Azure Monitor metric alert -> Action Group (email receivers)",
        alert_key="actionGroupId",
        challenge_identity="a managed identity, a federated credential per cluster issuer",
        ip_endpoints_only=False,
    ),
    DnsProvider.GCP: DnsCapabilities(
        provider=DnsProvider.GCP,
        service="Cloud DNS routing policies",
        routing_policies=(RoutingPolicy.GEO, RoutingPolicy.WEIGHTED),
        max_weight=1000,
        drain="weight 0 (weighted round robin)",
        intervals=None,
        min_interval=30,
        health_check="HTTPS from 3 Google regions, response must start with `ready`; IP endpoints",
        query_logging=True,
        alert_destination="Cloud Monitoring uptime check -> alert policy -> notification channels",
        alert_key="notificationChannels",
        challenge_identity=(
            "a service account: GKE Workload Identity, Workload Identity Federation elsewhere"
        ),
        ip_endpoints_only=True,
    ),
}

_ALERT_KEYS = {"snsTopicArn": "sns_topic_arn", "actionGroupId": "action_group_id"}
_ALERT_LISTS = {"notificationChannels": "notification_channels"}


def default_provider(enabled: Sequence[Cloud]) -> DnsProvider:
    """A single-cloud stack uses its own cloud's DNS; several clouds use Route 53.

    Route 53 serves any mix of clouds (it checks load balancers by name or
    address and matches the readiness body); Cloud DNS cannot front the AWS
    NLB. A multi-cloud stack may still choose ``azure`` or ``gcp``.
    """
    if len(enabled) == 1:
        return DnsProvider.of(enabled[0])
    return DnsProvider.ROUTE53


def default_routing_policy(provider: DnsProvider) -> RoutingPolicy:
    """Latency where the service measures it; geolocation on Cloud DNS, which has no latency policy."""
    return CAPABILITIES[provider].routing_policies[0]


def problems(dns: DnsConfig, enabled: Sequence[Cloud]) -> list[tuple[str, str]]:
    """``(key relative to ai-gateway:dns, message)`` for every setting ``dns.provider`` cannot honour."""
    caps = CAPABILITIES[dns.provider]
    name = f"dns.provider {dns.provider.value} ({caps.service})"
    found: list[tuple[str, str]] = []
    if dns.routing_policy not in caps.routing_policies:
        others = [p for p in CAPABILITIES.values() if dns.routing_policy in p.routing_policies]
        found.append(
            (
                "routingPolicy",
                f"{dns.routing_policy.value} is not available with {name}; use "
                f"{' or '.join(p.value for p in caps.routing_policies)}, or a provider that "
                f"offers it ({', '.join(p.provider.value for p in others)})",
            )
        )
    for cloud, weight in dns.weights.items():
        if weight > caps.max_weight:
            found.append(
                (
                    "weights",
                    f"weight {weight} for {cloud.value} exceeds {caps.max_weight}, the largest "
                    f"{caps.service} takes; scale the weights to 0-{caps.max_weight}",
                )
            )
    check = dns.health_check
    if caps.intervals is not None and check.interval_seconds not in caps.intervals:
        found.append(
            (
                "healthCheck.intervalSeconds",
                f"{check.interval_seconds} is not allowed with {name}; use "
                f"{' or '.join(map(str, caps.intervals))}",
            )
        )
    if check.interval_seconds < caps.min_interval:
        found.append(
            (
                "healthCheck.intervalSeconds",
                f"{check.interval_seconds} is below {caps.min_interval}, the shortest interval "
                f"of {caps.service} health checks from several regions; use {caps.min_interval} "
                "or more",
            )
        )
    if dns.query_logging and not caps.query_logging:
        found.append(
            (
                "queryLogging",
                f"{caps.service} keeps no query log for public zones; remove queryLogging (or "
                "set it false), or use dns.provider route53 or gcp, which log every query",
            )
        )
    if dns.hosted_zone_id and dns.provider != DnsProvider.ROUTE53:
        found.append(
            (
                "hostedZoneId",
                f"names a Route 53 zone, but {name} creates its zone in {caps.service}; remove "
                "hostedZoneId or set dns.provider: route53",
            )
        )
    alerts = dns.alerts
    for key, attribute in {**_ALERT_KEYS, **_ALERT_LISTS}.items():
        if getattr(alerts, attribute) and caps.alert_key != key:
            found.append(
                (
                    f"alerts.{key}",
                    f"{key} is a destination on another cloud than {name}; use alerts.emails or "
                    f"alerts.{caps.alert_key}",
                )
            )
    if caps.ip_endpoints_only and Cloud.AWS in enabled:
        found.append(
            (
                "provider",
                f"{caps.service} health-checks external endpoints by IP address only, and the "
                "AWS gateway's Network Load Balancer is reached by a DNS name; use dns.provider "
                "route53 or azure for a stack with aws",
            )
        )
    return found


def capability_table() -> str:
    """The docs' table of the three DNS clouds (rendered from :data:`CAPABILITIES`)."""
    rows = [
        "| | "
        + " | ".join(f"`{c.provider.value}`: {c.service}" for c in CAPABILITIES.values())
        + " |",
        "|---|" + "---|" * len(CAPABILITIES),
    ]

    def row(label: str, values: Sequence[str]) -> None:
        rows.append(f"| {label} | " + " | ".join(values) + " |")

    caps = list(CAPABILITIES.values())
    row("routing policies", [", ".join(p.value for p in c.routing_policies) for c in caps])
    row("weights", [f"0-{c.max_weight}" for c in caps])
    row("draining a cloud", [c.drain for c in caps])
    row(
        "check interval (s)",
        [
            " or ".join(map(str, c.intervals)) if c.intervals else f"{c.min_interval} or more"
            for c in caps
        ],
    )
    row("health check", [c.health_check for c in caps])
    row("query logging", ["yes" if c.query_logging else "no (public zones)" for c in caps])
    row("DNSSEC", ["yes (`dnssecDsRecord` output)"] * len(caps))
    row(
        "alerts",
        [f"{c.alert_destination}; `alerts.emails` or `alerts.{c.alert_key}`" for c in caps],
    )
    row("cert-manager's DNS-01 identity", [c.challenge_identity for c in caps])
    return "\n".join(rows)
