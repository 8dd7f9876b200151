"""What every global DNS backend shares: the endpoints it points at, its contract, the names.

The global layer has one implementation per DNS cloud (:mod:`.route53`,
:mod:`.azure`, :mod:`.gcp`); each takes the same :class:`CloudEndpoint` list
and exposes the same :class:`GlobalDnsBackend` attributes, so ``__main__`` and
the stack outputs do not change with the provider. The decisions here are
pure functions of plain values, unit-tested directly.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pulumi

from infra.config import Cloud, DnsConfig, DnsProvider

READINESS_PATH = "/health/ready"
"""The gateway's readiness endpoint: ready only when it can serve (config loaded, stores reachable)."""

READINESS_SEARCH_STRING = "ready"
"""Text the readiness body must contain; a 200 from something else (a default backend) fails."""

HTTPS_PORT = 443

_CLOUD_REGION_KEYS = {
    Cloud.AWS: "ai-gateway:aws.region",
    Cloud.AZURE: "ai-gateway:azure.location",
    Cloud.GCP: "ai-gateway:gcp.region",
}


class GlobalDnsError(ValueError):
    """A bad input to the global layer; the message names the input, the value and the fix."""


# ----------------------------------------------------------------- pure decisions


def cloud_hostname(hostname: str, cloud: Cloud, domain: str) -> str:
    """The per-cloud name ``<hostname>-<cloud>.<domain>`` used for direct access and health checks.

    Raises :class:`GlobalDnsError` when the first label would not be a valid DNS label.
    """
    label = f"{hostname}-{cloud.value}"
    if len(label) > 63 or not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", label):
        raise GlobalDnsError(
            f"ai-gateway:dns.hostname: {hostname!r} makes the per-cloud name {label!r}, which "
            "is not a DNS label of at most 63 characters; use a shorter hostname of lowercase "
            "letters, digits and hyphens"
        )
    return f"{label}.{domain}"


def record_type_for(endpoint: str, cloud: Cloud | None = None) -> str:
    """The record type that points a name at a load-balancer endpoint.

    A hostname (``abc.elb.amazonaws.com``) gets a CNAME; an IPv4 address an A
    record; an IPv6 address an AAAA record. Anything else (a URL, a host with a
    port, an empty string) raises :class:`GlobalDnsError`.
    """
    who = f"{cloud.value} gateway endpoint" if cloud else "gateway endpoint"
    value = endpoint.strip() if isinstance(endpoint, str) else endpoint
    if not isinstance(value, str) or not value:
        raise GlobalDnsError(
            f"{who}: {endpoint!r} is empty; pass the public hostname or IP address of the "
            "gateway's load balancer"
        )
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if address is not None:
        if not address.is_global:
            raise GlobalDnsError(
                f"{who}: {value} is not a public address, so the DNS service's health "
                "checkers cannot reach it; expose the gateway through a public load balancer"
            )
        return "A" if address.version == 4 else "AAAA"
    hostname = value.rstrip(".").lower()
    labels = hostname.split(".")
    if (
        len(hostname) > 253
        or len(labels) < 2
        or not all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", part) for part in labels)
    ):
        raise GlobalDnsError(
            f"{who}: {value!r} is neither an IP address nor a DNS hostname; pass the load "
            "balancer's hostname or IP without scheme, port or path (for example "
            "k8s-gateway-0123.elb.us-east-1.amazonaws.com or 20.50.1.10)"
        )
    return "CNAME"


def routing_weights(dns: DnsConfig, clouds: Sequence[Cloud]) -> dict[Cloud, int]:
    """The weighted policy's weight per enabled cloud, from ``ai-gateway:dns.weights``.

    A weight of 0 drains a cloud (Route 53 answers with it only when every
    cloud with a positive weight is unhealthy; Traffic Manager disables it). Every enabled cloud needs a
    weight and at least one must be positive (the config validation checks the
    same; this guards direct callers).
    """
    missing = [c.value for c in clouds if c not in dns.weights]
    if missing:
        raise GlobalDnsError(
            f"ai-gateway:dns.weights: no weight for {', '.join(missing)}; the weighted policy "
            "needs a weight for every enabled cloud"
        )
    weights = {c: dns.weights[c] for c in clouds}
    if not any(weights.values()):
        raise GlobalDnsError(
            "ai-gateway:dns.weights: every enabled cloud has weight 0, which would drain all "
            "traffic; give at least one cloud a positive weight"
        )
    return weights


# Approximate positions (latitude, longitude) of cloud regions, used only to find the
# nearest AWS region. Route 53 latency data exists for AWS regions alone, so each
# Azure/GCP record is labelled with the AWS region closest to it.
# ----------------------------------------------------------------------- interface


@dataclass
class CloudEndpoint:
    """One cloud's gateway, as its footprint exposes it.

    ``endpoint`` is the public hostname or IP address of the gateway's load
    balancer (an Output of the cloud's Service or Ingress); ``region`` the
    cloud's region as configured (``us-east-1``, ``westeurope``,
    ``europe-west4``), known before deployment so the latency label is too.
    """

    cloud: Cloud
    endpoint: pulumi.Input[str]
    region: str


def _endpoints_by_cloud(endpoints: Sequence[CloudEndpoint]) -> dict[Cloud, CloudEndpoint]:
    """The endpoints keyed by cloud, in the fixed cloud order; no cloud twice, at least one."""
    by_cloud: dict[Cloud, CloudEndpoint] = {}
    for endpoint in endpoints:
        if endpoint.cloud in by_cloud:
            raise GlobalDnsError(
                f"{endpoint.cloud.value} gateway endpoint: given twice; pass one CloudEndpoint "
                "per enabled cloud"
            )
        by_cloud[endpoint.cloud] = endpoint
    if not by_cloud:
        raise GlobalDnsError(
            "no cloud is enabled; set enabled: true under at least one of "
            "ai-gateway:aws, ai-gateway:azure or ai-gateway:gcp"
        )
    return {c: by_cloud[c] for c in Cloud if c in by_cloud}


class GlobalDnsBackend(pulumi.ComponentResource):
    """What every global DNS backend gives the program (the base of the three).

    Route 53, Traffic Manager and Cloud DNS each subclass it; another backend
    (Cloudflare Load Balancing) would expose the same attributes, and
    ``export_global_endpoint`` and ``__main__`` would not change. A backend
    sets ``cloud_endpoints``, ``cloud_urls`` and ``health_check_ids`` per
    cloud and calls :meth:`_publish` with its zone.
    """

    global_hostname: pulumi.Output[str]
    """``<hostname>.<domain>``."""
    global_url: pulumi.Output[str]
    """``https://<hostname>.<domain>``."""
    cloud_endpoints: dict[Cloud, pulumi.Output[str]]
    """Each cloud's load-balancer endpoint (hostname or IP)."""
    cloud_urls: dict[Cloud, pulumi.Output[str]]
    """Each cloud's direct URL, ``https://<hostname>-<cloud>.<domain>``."""
    health_check_ids: dict[Cloud, pulumi.Output[str]]
    """Each cloud's health check, by the backend's id."""
    zone_id: pulumi.Output[str]
    """The DNS zone holding the names."""
    name_servers: pulumi.Output[list[str]]
    """Name servers to delegate ``domain`` to (empty when the zone already existed)."""
    dnssec_ds_record: pulumi.Output[str] | None
    """The DS record for the registrar (None when this stack does not sign the zone)."""
    dns_provider: DnsProvider
    """Which DNS cloud hosts the name (a class attribute of each backend)."""

    def _publish(self, zone: GlobalDnsZoneOutputs, global_name: str) -> None:
        """The zone's outputs and the global name, the same on every backend."""
        self.zone_id = zone.zone_id
        self.name_servers = zone.name_servers
        self.dnssec_ds_record = zone.dnssec_ds_record
        self.global_hostname = pulumi.Output.from_input(global_name)
        self.global_url = pulumi.Output.from_input(f"https://{global_name}")


class GlobalDnsZoneOutputs(Protocol):
    """What a backend reads from its zone."""

    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[list[str]]
    dnssec_ds_record: pulumi.Output[str] | None
