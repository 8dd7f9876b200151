"""One global hostname in front of every enabled cloud's gateway, on the DNS cloud of choice.

``ai-gateway:dns.provider`` picks where the global name lives:

* ``route53`` (:mod:`.route53`): a hosted zone, Route 53 health checks,
  latency or weighted records, CloudWatch alarms to SNS;
* ``azure`` (:mod:`.azure`): an Azure DNS zone and a Traffic Manager profile
  (performance or weighted), Azure Monitor alerts to an Action Group;
* ``gcp`` (:mod:`.gcp`): a Cloud DNS zone with health-checked routing policies
  (geolocation or weighted round robin), Cloud Monitoring alerts.

A single-cloud stack defaults to its own cloud's DNS, so it plans nothing of
the other two clouds. What each can do, and the settings each refuses, are in
:mod:`.capabilities`.

The program builds the zone first (:func:`build_global_zone`): every cluster's
cert-manager needs a DNS-01 solver for it (:meth:`GlobalZone.certificate_solver`)
before its certificate; then the records and health checks
(:func:`build_global_endpoint`) from the clusters' endpoints; then the outputs
(:func:`export_global_endpoint`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pulumi

from infra.config import DnsProvider, StackConfig
from infra.contracts.footprint import CloudFootprint
from infra.global_lb.common import (
    HTTPS_PORT,
    READINESS_PATH,
    READINESS_SEARCH_STRING,
    CloudEndpoint,
    GlobalDnsBackend,
    GlobalDnsError,
    cloud_hostname,
    record_type_for,
    routing_weights,
)
from infra.global_lb.regions import (
    AWS_REGION_POSITIONS,
    AZURE_REGION_POSITIONS,
    GCP_REGION_POSITIONS,
    assign_latency_regions,
    nearest_aws_region,
    nearest_aws_regions,
    nearest_region,
)
from infra.global_lb.route53 import (
    FAILURE_THRESHOLD,
    GLOBAL_REGION,
    HEALTH_CHECKER_REGIONS,
    RECORD_TTL_SECONDS,
    REQUEST_INTERVAL_SECONDS,
    VALID_HEALTH_CHECKER_REGIONS,
    Route53GlobalEndpoint,
    Route53GlobalEndpointArgs,
    Route53Zone,
    alarm_key_policy,
    certificate_solver_policy,
    health_check_timing,
    health_checker_regions,
)
from infra.k8s.edge import Dns01Solver

__all__ = [
    "AWS_REGION_POSITIONS",
    "AZURE_REGION_POSITIONS",
    "FAILURE_THRESHOLD",
    "GCP_REGION_POSITIONS",
    "GLOBAL_REGION",
    "HEALTH_CHECKER_REGIONS",
    "HTTPS_PORT",
    "READINESS_PATH",
    "READINESS_SEARCH_STRING",
    "RECORD_TTL_SECONDS",
    "REQUEST_INTERVAL_SECONDS",
    "VALID_HEALTH_CHECKER_REGIONS",
    "CloudEndpoint",
    "GlobalDnsBackend",
    "GlobalDnsError",
    "GlobalZone",
    "Route53GlobalEndpoint",
    "Route53GlobalEndpointArgs",
    "Route53Zone",
    "alarm_key_policy",
    "assign_latency_regions",
    "build_global_endpoint",
    "build_global_zone",
    "certificate_solver_policy",
    "cloud_hostname",
    "export_global_endpoint",
    "health_check_timing",
    "health_checker_regions",
    "nearest_aws_region",
    "nearest_aws_regions",
    "nearest_region",
    "record_type_for",
    "routing_weights",
]


class GlobalZone(Protocol):
    """The zone of the global names, built before the clusters' gateways."""

    dns_provider: DnsProvider
    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[list[str]]
    dnssec_ds_record: pulumi.Output[str] | None

    def certificate_solver(self, footprint: CloudFootprint) -> Dns01Solver:
        """cert-manager's DNS-01 solver for one cluster, with write access to TXT records here."""
        ...

    def direct_record(
        self, name: str, hostname: str, endpoint: pulumi.Input[str], ttl: int
    ) -> pulumi.Resource:
        """A plain record ``hostname`` -> one load balancer (CNAME or A), no routing policy:
        each cloud's governance channel name."""
        ...


def build_global_zone(
    config: StackConfig, opts: pulumi.ResourceOptions | None = None
) -> GlobalZone:
    """The zone on ``ai-gateway:dns.provider``, first: the clusters' certificates need it."""
    dns = config.dns
    if dns.provider == DnsProvider.AZURE:
        from infra.global_lb.azure import AzureDnsZone

        return AzureDnsZone("global-dns", dns, config.name_prefix, config.azure.location, opts)
    if dns.provider == DnsProvider.GCP:
        from infra.global_lb.gcp import CloudDnsZone

        return CloudDnsZone("global-dns", dns, config.name_prefix, config.gcp.project, opts)
    return Route53Zone(
        "global-dns",
        dns,
        config.name_prefix,
        query_log_retention_days=config.aws.log_retention_days,
        opts=opts,
    )


def build_global_endpoint(
    config: StackConfig,
    endpoints: Sequence[CloudEndpoint],
    zone: GlobalZone,
    opts: pulumi.ResourceOptions | None = None,
) -> GlobalDnsBackend:
    """The records, health checks and alerts of the global name in ``zone``, one per endpoint."""
    dns, prefix = config.dns, config.name_prefix
    if zone.dns_provider == DnsProvider.AZURE:
        from infra.global_lb.azure import (
            AzureDnsZone,
            TrafficManagerGlobalEndpoint,
            TrafficManagerGlobalEndpointArgs,
        )

        assert isinstance(zone, AzureDnsZone)
        return TrafficManagerGlobalEndpoint(
            "global",
            TrafficManagerGlobalEndpointArgs(
                dns=dns, endpoints=endpoints, name_prefix=prefix, zone=zone
            ),
            opts=opts,
        )
    if zone.dns_provider == DnsProvider.GCP:
        from infra.global_lb.gcp import (
            CloudDnsGlobalEndpoint,
            CloudDnsGlobalEndpointArgs,
            CloudDnsZone,
        )

        assert isinstance(zone, CloudDnsZone)
        return CloudDnsGlobalEndpoint(
            "global",
            CloudDnsGlobalEndpointArgs(dns=dns, endpoints=endpoints, name_prefix=prefix, zone=zone),
            opts=opts,
        )
    assert isinstance(zone, Route53Zone)
    return Route53GlobalEndpoint(
        "global",
        Route53GlobalEndpointArgs(dns=dns, endpoints=endpoints, name_prefix=prefix, zone=zone),
        opts=opts,
    )


def export_global_endpoint(
    endpoint: GlobalDnsBackend, export: Callable[[str, Any], None] = pulumi.export
) -> None:
    """Export the global layer as stack outputs (none of them secret), the same on every provider.

    * ``globalUrl``: ``https://<hostname>.<domain>``, what clients use;
    * ``globalHostname``; ``dnsProvider`` (route53, azure or gcp);
    * ``cloudEndpoints``: ``{cloud: load-balancer hostname or IP}``;
    * ``cloudUrls``: ``{cloud: https://<hostname>-<cloud>.<domain>}`` (direct access);
    * ``healthCheckIds``: ``{cloud: the DNS service's health check id}``;
    * ``dnsZoneId`` and ``dnsNameServers`` (delegate the domain to these when
      the zone was created);
    * ``dnssecDsRecord``: the DS record to add at the registrar (empty when
      the zone is not signed by this stack).
    """
    export("globalUrl", endpoint.global_url)
    export("globalHostname", endpoint.global_hostname)
    export("dnsProvider", endpoint.dns_provider.value)
    export("cloudEndpoints", {c.value: v for c, v in endpoint.cloud_endpoints.items()})
    export("cloudUrls", {c.value: v for c, v in endpoint.cloud_urls.items()})
    export("healthCheckIds", {c.value: v for c, v in endpoint.health_check_ids.items()})
    export("dnsZoneId", endpoint.zone_id)
    export("dnsNameServers", endpoint.name_servers)
    export("dnssecDsRecord", endpoint.dnssec_ds_record or "")
