"""One global hostname in front of every enabled cloud's gateway, health-checked.

Clients use ``https://<hostname>.<domain>``. Behind it, each enabled cloud has:

* a per-cloud name ``<hostname>-<cloud>.<domain>`` pointing at that cloud's
  gateway load balancer (CNAME for a load-balancer hostname, A/AAAA for an IP),
  for direct access and for the health check;
* an HTTPS health check on the gateway's readiness path, matching a string in
  the body, so a cloud whose gateway is up but not ready counts as down;
* one record of the global name, with its own set identifier, carrying that
  health check: an unhealthy cloud leaves the answer set by itself;
* a CloudWatch alarm on the health check, optionally notifying an SNS topic
  encrypted with a KMS key.

How the global name spreads traffic comes from ``ai-gateway:dns.routingPolicy``:
``latency`` (each cloud's record labelled with the AWS region nearest to it, see
:func:`assign_latency_regions`) or ``weighted`` (``ai-gateway:dns.weights``; a
weight of 0 drains a cloud).

The component is one implementation of :class:`GlobalDnsBackend`, the small
interface the rest of the program uses; another backend (for example
Cloudflare Load Balancing) would implement the same attributes and be chosen in
:func:`build_global_endpoint`.

Route 53 is global, but its health-check metrics exist only in us-east-1 and an
alarm can only notify a topic in its own region: the whole layer therefore runs
on one explicit ``aws.Provider`` in us-east-1, whatever the AWS footprint's
region is.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pulumi
import pulumi_aws as aws

from infra.aws.decisions import aws_name
from infra.aws.identity import STS_AUDIENCE, web_identity_trust_policy
from infra.config import Cloud, DnsConfig, RoutingPolicy
from infra.k8s.edge import ROUTE53_SOLVER_SUBJECT

GLOBAL_REGION = "us-east-1"
"""Where Route 53 publishes health-check metrics, so where alarms and their topic live."""

READINESS_PATH = "/health/ready"
"""The gateway's readiness endpoint: ready only when it can serve (config loaded, stores reachable)."""

READINESS_SEARCH_STRING = "ready"
"""Text the readiness body must contain; a 200 from something else (a default backend) fails."""

HTTPS_PORT = 443

FAILURE_THRESHOLD = 3
"""Consecutive failed checks before a cloud is unhealthy (and consecutive passes to recover).

With the 30-second interval a dead cloud leaves the answer set after about 90
seconds plus the record TTL; 3 rides out a single slow response or a rolling restart.
"""

REQUEST_INTERVAL_SECONDS = 30
"""Seconds between checks from each checker. Route 53 allows 10 or 30; 10 costs extra."""

RECORD_TTL_SECONDS = 60
"""TTL of every record: Route 53 advises 60 seconds or less for health-checked records."""

HEALTH_CHECKER_REGIONS: tuple[str, ...] = ("us-east-1", "eu-west-1", "ap-southeast-1")
"""Regions Route 53 checks from: three continents (the minimum Route 53 accepts is three),
so one region's network trouble cannot fail a healthy cloud, with less probe traffic than all eight."""

VALID_HEALTH_CHECKER_REGIONS = frozenset(
    {
        "us-east-1",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "sa-east-1",
    }
)
"""The regions Route 53 runs health checkers in."""

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


def record_type_for(endpoint: str, cloud: Cloud | None = None) -> aws.route53.RecordType:
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
                f"{who}: {value} is not a public address, so Route 53 health checkers cannot "
                "reach it; expose the gateway through a public load balancer"
            )
        return aws.route53.RecordType.A if address.version == 4 else aws.route53.RecordType.AAAA
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
    return aws.route53.RecordType.CNAME


def health_checker_regions(regions: Sequence[str] = HEALTH_CHECKER_REGIONS) -> list[str]:
    """Validate the Route 53 health-checker regions: at least three, each a checker region."""
    unknown = sorted(set(regions) - VALID_HEALTH_CHECKER_REGIONS)
    if unknown:
        raise GlobalDnsError(
            f"health checker regions: {', '.join(unknown)} not supported; Route 53 checks "
            f"only from {', '.join(sorted(VALID_HEALTH_CHECKER_REGIONS))}"
        )
    distinct = list(dict.fromkeys(regions))
    if len(distinct) < 3:
        raise GlobalDnsError(
            f"health checker regions: {distinct} has {len(distinct)}; Route 53 needs at least "
            "three distinct regions"
        )
    return distinct


def health_check_timing(failure_threshold: int, request_interval: int) -> tuple[int, int]:
    """Validate how often Route 53 checks (10 or 30 s) and how many results flip health (1-10)."""
    if request_interval not in (10, 30):
        raise GlobalDnsError(
            f"health check request_interval: {request_interval} is not allowed; Route 53 checks "
            "every 10 or 30 seconds (30 unless fast failover is worth the extra cost)"
        )
    if not 1 <= failure_threshold <= 10:
        raise GlobalDnsError(
            f"health check failure_threshold: {failure_threshold} is not allowed; use an "
            "integer from 1 to 10"
        )
    return failure_threshold, request_interval


def routing_weights(dns: DnsConfig, clouds: Sequence[Cloud]) -> dict[Cloud, int]:
    """The weighted policy's weight per enabled cloud, from ``ai-gateway:dns.weights``.

    A weight of 0 drains a cloud: Route 53 answers with it only when every
    cloud with a positive weight is unhealthy. Every enabled cloud needs a
    weight and at least one must be positive (the config validation checks the
    same; this guards direct callers).
    """
    missing = [c.value for c in clouds if c not in dns.weights]
    if missing:
        raise GlobalDnsError(
            f"ai-gateway:dns.weights: no weight for {', '.join(missing)}; the weighted policy "
            "needs a weight (0-255) for every enabled cloud"
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
AWS_REGION_POSITIONS: dict[str, tuple[float, float]] = {
    "us-east-1": (39.0, -77.5),  # N. Virginia
    "us-east-2": (40.0, -83.0),  # Ohio
    "us-west-1": (37.3, -121.9),  # N. California
    "us-west-2": (45.8, -119.7),  # Oregon
    "ca-central-1": (45.5, -73.6),  # Montreal
    "ca-west-1": (51.0, -114.1),  # Calgary
    "mx-central-1": (20.6, -100.4),  # Queretaro
    "sa-east-1": (-23.5, -46.6),  # Sao Paulo
    "eu-west-1": (53.3, -6.3),  # Dublin
    "eu-west-2": (51.5, -0.1),  # London
    "eu-west-3": (48.9, 2.35),  # Paris
    "eu-central-1": (50.1, 8.7),  # Frankfurt
    "eu-central-2": (47.4, 8.5),  # Zurich
    "eu-south-1": (45.5, 9.2),  # Milan
    "eu-south-2": (41.6, -0.9),  # Aragon
    "eu-north-1": (59.3, 18.1),  # Stockholm
    "il-central-1": (32.1, 34.8),  # Tel Aviv
    "me-south-1": (26.1, 50.6),  # Bahrain
    "me-central-1": (24.5, 54.4),  # UAE
    "af-south-1": (-33.9, 18.4),  # Cape Town
    "ap-south-1": (19.1, 72.9),  # Mumbai
    "ap-south-2": (17.4, 78.5),  # Hyderabad
    "ap-east-1": (22.3, 114.2),  # Hong Kong
    "ap-east-2": (25.0, 121.5),  # Taipei
    "ap-northeast-1": (35.7, 139.7),  # Tokyo
    "ap-northeast-2": (37.6, 127.0),  # Seoul
    "ap-northeast-3": (34.7, 135.5),  # Osaka
    "ap-southeast-1": (1.35, 103.8),  # Singapore
    "ap-southeast-2": (-33.9, 151.2),  # Sydney
    "ap-southeast-3": (-6.2, 106.8),  # Jakarta
    "ap-southeast-4": (-37.8, 145.0),  # Melbourne
    "ap-southeast-5": (3.1, 101.7),  # Malaysia
    "ap-southeast-6": (-36.8, 174.8),  # New Zealand
    "ap-southeast-7": (13.8, 100.5),  # Thailand
}

AZURE_REGION_POSITIONS: dict[str, tuple[float, float]] = {
    "eastus": (36.7, -78.4),
    "eastus2": (36.7, -78.4),
    "centralus": (41.6, -93.6),
    "northcentralus": (41.9, -87.6),
    "southcentralus": (29.4, -98.5),
    "westcentralus": (41.1, -104.8),
    "westus": (37.8, -122.4),
    "westus2": (47.2, -119.9),
    "westus3": (33.4, -112.1),
    "canadacentral": (43.7, -79.4),
    "canadaeast": (46.8, -71.2),
    "mexicocentral": (20.6, -100.4),
    "brazilsouth": (-23.5, -46.6),
    "brazilsoutheast": (-22.9, -43.2),
    "chilecentral": (-33.4, -70.6),
    "northeurope": (53.3, -6.3),
    "westeurope": (52.4, 4.9),
    "uksouth": (51.5, -0.1),
    "ukwest": (51.5, -3.2),
    "francecentral": (48.9, 2.35),
    "francesouth": (43.3, 5.4),
    "germanywestcentral": (50.1, 8.7),
    "germanynorth": (52.5, 13.4),
    "switzerlandnorth": (47.4, 8.5),
    "switzerlandwest": (46.2, 6.1),
    "norwayeast": (59.9, 10.7),
    "norwaywest": (59.0, 5.7),
    "swedencentral": (60.7, 17.1),
    "polandcentral": (52.2, 21.0),
    "italynorth": (45.5, 9.2),
    "spaincentral": (40.4, -3.7),
    "austriaeast": (48.2, 16.4),
    "belgiumcentral": (50.85, 4.35),
    "israelcentral": (32.1, 34.8),
    "qatarcentral": (25.3, 51.5),
    "uaenorth": (25.3, 55.3),
    "uaecentral": (24.5, 54.4),
    "southafricanorth": (-26.2, 28.0),
    "southafricawest": (-33.9, 18.4),
    "centralindia": (18.5, 73.9),
    "southindia": (13.1, 80.3),
    "westindia": (19.1, 72.9),
    "jioindiawest": (22.5, 70.1),
    "jioindiacentral": (21.1, 79.1),
    "eastasia": (22.3, 114.2),
    "southeastasia": (1.35, 103.8),
    "japaneast": (35.7, 139.7),
    "japanwest": (34.7, 135.5),
    "koreacentral": (37.6, 127.0),
    "koreasouth": (35.2, 129.1),
    "australiaeast": (-33.9, 151.2),
    "australiasoutheast": (-37.8, 145.0),
    "australiacentral": (-35.3, 149.1),
    "australiacentral2": (-35.3, 149.1),
    "indonesiacentral": (-6.2, 106.8),
    "malaysiawest": (3.1, 101.7),
    "newzealandnorth": (-36.8, 174.8),
}

GCP_REGION_POSITIONS: dict[str, tuple[float, float]] = {
    "us-central1": (41.3, -95.9),  # Iowa
    "us-east1": (33.2, -80.0),  # South Carolina
    "us-east4": (39.0, -77.5),  # N. Virginia
    "us-east5": (40.0, -83.0),  # Columbus
    "us-south1": (32.8, -96.8),  # Dallas
    "us-west1": (45.6, -121.2),  # Oregon
    "us-west2": (34.1, -118.2),  # Los Angeles
    "us-west3": (40.8, -111.9),  # Salt Lake City
    "us-west4": (36.2, -115.1),  # Las Vegas
    "northamerica-northeast1": (45.5, -73.6),  # Montreal
    "northamerica-northeast2": (43.7, -79.4),  # Toronto
    "northamerica-south1": (20.6, -100.4),  # Queretaro
    "southamerica-east1": (-23.5, -46.6),  # Sao Paulo
    "southamerica-west1": (-33.4, -70.6),  # Santiago
    "europe-west1": (50.5, 3.8),  # Belgium
    "europe-west2": (51.5, -0.1),  # London
    "europe-west3": (50.1, 8.7),  # Frankfurt
    "europe-west4": (53.4, 6.8),  # Netherlands
    "europe-west6": (47.4, 8.5),  # Zurich
    "europe-west8": (45.5, 9.2),  # Milan
    "europe-west9": (48.9, 2.35),  # Paris
    "europe-west10": (52.5, 13.4),  # Berlin
    "europe-west12": (45.1, 7.7),  # Turin
    "europe-central2": (52.2, 21.0),  # Warsaw
    "europe-north1": (60.6, 27.2),  # Finland
    "europe-north2": (59.3, 18.1),  # Stockholm
    "europe-southwest1": (40.4, -3.7),  # Madrid
    "me-central1": (25.3, 51.5),  # Doha
    "me-central2": (26.4, 50.1),  # Dammam
    "me-west1": (32.1, 34.8),  # Tel Aviv
    "africa-south1": (-26.2, 28.0),  # Johannesburg
    "asia-east1": (24.1, 120.5),  # Taiwan
    "asia-east2": (22.3, 114.2),  # Hong Kong
    "asia-northeast1": (35.7, 139.7),  # Tokyo
    "asia-northeast2": (34.7, 135.5),  # Osaka
    "asia-northeast3": (37.6, 127.0),  # Seoul
    "asia-south1": (19.1, 72.9),  # Mumbai
    "asia-south2": (28.6, 77.2),  # Delhi
    "asia-southeast1": (1.35, 103.8),  # Singapore
    "asia-southeast2": (-6.2, 106.8),  # Jakarta
    "australia-southeast1": (-33.9, 151.2),  # Sydney
    "australia-southeast2": (-37.8, 145.0),  # Melbourne
}

_POSITIONS = {
    Cloud.AWS: AWS_REGION_POSITIONS,
    Cloud.AZURE: AZURE_REGION_POSITIONS,
    Cloud.GCP: GCP_REGION_POSITIONS,
}


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine), good enough to rank regions by proximity."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _position(cloud: Cloud, region: str) -> tuple[float, float]:
    table = _POSITIONS[cloud]
    if region not in table:
        raise GlobalDnsError(
            f"{_CLOUD_REGION_KEYS[cloud]}: {region!r} is not a {cloud.value} region the latency "
            "policy knows, so it cannot be labelled with its nearest AWS region; use one of "
            f"{', '.join(sorted(table))}, or set ai-gateway:dns.routingPolicy: weighted (or "
            "add the region's position to infra/global_lb.py)"
        )
    return table[region]


def nearest_aws_regions(cloud: Cloud, region: str) -> list[str]:
    """Every AWS region, nearest first, to one cloud's region (``westeurope``, ``europe-west4``...).

    For AWS the region itself comes first. Raises :class:`GlobalDnsError`
    naming the config key when the region is unknown.
    """
    here = _position(cloud, region)
    return sorted(
        AWS_REGION_POSITIONS,
        key=lambda aws_region: (
            aws_region != region if cloud == Cloud.AWS else False,
            _distance_km(here, AWS_REGION_POSITIONS[aws_region]),
            aws_region,
        ),
    )


def nearest_aws_region(cloud: Cloud, region: str) -> str:
    """The AWS region nearest to one cloud's region: its latency label when alone there."""
    return nearest_aws_regions(cloud, region)[0]


def assign_latency_regions(regions: Mapping[Cloud, str]) -> dict[Cloud, str]:
    """The AWS region label of each cloud's latency record, all distinct.

    Route 53 allows one latency record per AWS region for a name, so two clouds
    near the same AWS region cannot both carry it (``aws`` in us-east-1 and
    ``azure`` in eastus2, both in Virginia). The AWS cloud always keeps its own
    region (the label is where it really is); the other clouds get the
    distinct labels that keep the total distance smallest, ties broken by
    cloud order. With at most three clouds, trying each cloud's nearest few
    candidates is exact and instant.
    """
    clouds = list(regions)
    if not clouds:
        raise GlobalDnsError(
            "no cloud is enabled; set enabled: true under at least one of "
            "ai-gateway:aws, ai-gateway:azure or ai-gateway:gcp"
        )
    # An optimal assignment never gives a cloud a candidate ranked below len(clouds):
    # at most len(clouds)-1 of its better ones can be taken by the others.
    ranked = {cloud: nearest_aws_regions(cloud, regions[cloud]) for cloud in clouds}
    candidates = {
        cloud: ranked[cloud][:1] if cloud == Cloud.AWS else ranked[cloud][: len(clouds)]
        for cloud in clouds
    }
    positions = {cloud: _position(cloud, regions[cloud]) for cloud in clouds}
    best: tuple[float, tuple[str, ...]] | None = None
    for choice in itertools.product(*(candidates[c] for c in clouds)):
        if len(set(choice)) != len(choice):
            continue
        cost = sum(
            _distance_km(positions[c], AWS_REGION_POSITIONS[r])
            for c, r in zip(clouds, choice, strict=True)
        )
        if best is None or cost < best[0] - 1e-9:
            best = (cost, choice)
    assert best is not None  # top-len(clouds) candidates always admit a distinct choice
    return dict(zip(clouds, best[1], strict=True))


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


@runtime_checkable
class GlobalDnsBackend(Protocol):
    """What any global DNS / load-balancing backend gives the program.

    Route 53 (:class:`Route53GlobalEndpoint`) is the implementation today;
    Cloudflare Load Balancing (pools per cloud, monitors on the readiness path,
    steering by proximity or weight) would expose the same attributes, and
    :func:`export_global_endpoint` and ``__main__`` would not change.
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


# -------------------------------------------------------- zone and DNS-01 access


def certificate_solver_policy(partition: str, zone_id: str) -> dict:
    """What cert-manager's DNS-01 solver may do in the zone: TXT challenge records only.

    ``ChangeResourceRecordSets`` is limited to TXT records named
    ``_acme-challenge.*``, so a compromised cluster cannot repoint the
    gateway's names; ``GetChange`` waits for propagation.
    """
    zone = f"arn:{partition}:route53:::hostedzone/{zone_id}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WaitForChanges",
                "Effect": "Allow",
                "Action": "route53:GetChange",
                "Resource": f"arn:{partition}:route53:::change/*",
            },
            {
                "Sid": "AcmeChallengeRecordsOnly",
                "Effect": "Allow",
                "Action": "route53:ChangeResourceRecordSets",
                "Resource": zone,
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
                    },
                    "ForAllValues:StringLike": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                            "_acme-challenge.*"
                        ]
                    },
                },
            },
            {
                "Sid": "ReadZoneRecords",
                "Effect": "Allow",
                "Action": "route53:ListResourceRecordSets",
                "Resource": zone,
            },
        ],
    }


class Route53Zone(pulumi.ComponentResource):
    """The hosted zone of the global names, and DNS-01 access to it for every cluster.

    Built first, before the clusters' gateways: cert-manager on each cluster
    needs the zone id and a role to solve its challenges, and the records
    (:class:`Route53GlobalEndpoint`) need the clusters' load balancers. Owns
    the us-east-1 provider the whole global layer uses.

    Outputs: ``zone_id``, ``name_servers`` (empty when ``hostedZoneId`` names
    an existing zone) and ``provider``.
    """

    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        dns: DnsConfig,
        name_prefix: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:global:DnsZone", name, None, opts)
        self._name = name
        self._name_prefix = name_prefix
        self.provider = aws.Provider(
            f"{name}-{GLOBAL_REGION}",
            region=GLOBAL_REGION,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._on_aws = pulumi.ResourceOptions(parent=self, provider=self.provider)
        if dns.hosted_zone_id:
            self.zone_id = pulumi.Output.from_input(dns.hosted_zone_id)
            self.name_servers = pulumi.Output.from_input([])
        else:
            zone = aws.route53.Zone(
                f"{name}-zone",
                name=dns.domain,
                comment=f"Global names of the AI gateway ({name_prefix})",
                opts=self._on_aws,
            )
            self.zone_id = zone.zone_id
            self.name_servers = zone.name_servers
        self.register_outputs({"zoneId": self.zone_id, "nameServers": self.name_servers})

    def certificate_solver_role(
        self,
        cloud: Cloud,
        oidc_issuer_url: pulumi.Input[str],
        oidc_provider_arn: pulumi.Input[str] | None = None,
    ) -> pulumi.Output[str]:
        """The IAM role cert-manager on ``cloud``'s cluster assumes to answer DNS-01 in the zone.

        Trusts exactly ``system:serviceaccount:cert-manager:cert-manager-route53``
        with audience ``sts.amazonaws.com`` from the cluster's OIDC issuer. EKS
        passes its existing IAM OIDC provider; for AKS and GKE the issuer is
        registered here as one. Returns the role's ARN.
        """
        label = f"{self._name}-{cloud.value}-dns01"
        if oidc_provider_arn is None:
            oidc_provider_arn = aws.iam.OpenIdConnectProvider(
                f"{label}-oidc",
                url=oidc_issuer_url,
                client_id_lists=[STS_AUDIENCE],
                opts=self._on_aws,
            ).arn
        role = aws.iam.Role(
            f"{label}-role",
            name=aws_name(self._name_prefix, f"{cloud.value}-cert-manager", "iam-role"),
            description=f"cert-manager on the {cloud.value} cluster: DNS-01 challenges only.",
            assume_role_policy=pulumi.Output.all(oidc_provider_arn, oidc_issuer_url).apply(
                lambda v: json.dumps(web_identity_trust_policy(v[0], v[1], ROUTE53_SOLVER_SUBJECT))
            ),
            opts=self._on_aws,
        )
        partition = aws.get_partition_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=self.provider)
        ).partition
        aws.iam.RolePolicy(
            f"{label}-policy",
            name="acme-dns01-challenges",
            role=role.id,
            policy=pulumi.Output.all(partition, self.zone_id).apply(
                lambda v: json.dumps(certificate_solver_policy(v[0], v[1]))
            ),
            opts=self._on_aws,
        )
        return role.arn


# ------------------------------------------------------------------- Route 53


@dataclass
class Route53GlobalEndpointArgs:
    """Inputs of :class:`Route53GlobalEndpoint`.

    ``endpoints`` lists one :class:`CloudEndpoint` per enabled cloud (one is
    enough: the global name then points at it alone, still health-checked).
    ``name_prefix`` (``<project>-<environment>``) prefixes the alarm, topic and
    key names. The health-check settings default to the module constants, whose
    docstrings say why.
    """

    dns: DnsConfig
    endpoints: Sequence[CloudEndpoint]
    name_prefix: str
    readiness_path: str = READINESS_PATH
    search_string: str = READINESS_SEARCH_STRING
    failure_threshold: int = FAILURE_THRESHOLD
    request_interval: int = REQUEST_INTERVAL_SECONDS
    checker_regions: Sequence[str] = field(default_factory=lambda: list(HEALTH_CHECKER_REGIONS))
    provider: aws.Provider | None = None
    """An AWS provider in us-east-1 to use instead of the component's own."""
    zone: Route53Zone | None = None
    """The zone (and its us-east-1 provider) built earlier; when unset the component owns both."""


class Route53GlobalEndpoint(pulumi.ComponentResource):
    """The global hostname on Route 53: per-cloud names, health checks, routed records, alarms.

    Reads top to bottom as what it owns: the us-east-1 provider, the hosted zone
    (created, or the existing ``hostedZoneId``), the optional encrypted alarm
    topic, then per cloud its name, health check, alarm and global record.
    """

    global_hostname: pulumi.Output[str]
    global_url: pulumi.Output[str]
    cloud_endpoints: dict[Cloud, pulumi.Output[str]]
    cloud_urls: dict[Cloud, pulumi.Output[str]]
    health_check_ids: dict[Cloud, pulumi.Output[str]]
    alarm_arns: dict[Cloud, pulumi.Output[str]]
    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[list[str]]
    alarm_topic_arn: pulumi.Output[str] | None
    routing_policy: RoutingPolicy
    latency_regions: dict[Cloud, str]
    weights: dict[Cloud, int]

    def __init__(
        self,
        name: str,
        args: Route53GlobalEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:global:Route53GlobalEndpoint", name, None, opts)
        dns = args.dns
        by_cloud = _endpoints_by_cloud(args.endpoints)
        clouds = list(by_cloud)

        # Every decision is made here, before any resource, from plain values.
        self.routing_policy = dns.routing_policy
        self.latency_regions = (
            assign_latency_regions({c: by_cloud[c].region for c in clouds})
            if dns.routing_policy == RoutingPolicy.LATENCY
            else {}
        )
        self.weights = (
            routing_weights(dns, clouds) if dns.routing_policy == RoutingPolicy.WEIGHTED else {}
        )
        checker_regions = health_checker_regions(args.checker_regions)
        failure_threshold, request_interval = health_check_timing(
            args.failure_threshold, args.request_interval
        )
        hostnames = {c: cloud_hostname(dns.hostname, c, dns.domain) for c in clouds}
        global_name = f"{dns.hostname}.{dns.domain}"
        for cloud, label in self.latency_regions.items():
            if label != nearest_aws_region(cloud, by_cloud[cloud].region):
                pulumi.log.info(
                    f"{cloud.value} ({by_cloud[cloud].region}) is labelled {label} for latency "
                    "routing: its nearest AWS region is taken by another cloud, and Route 53 "
                    "allows one latency record per region",
                    resource=self,
                )

        provider = (
            args.provider
            or (args.zone.provider if args.zone is not None else None)
            or aws.Provider(
                f"{name}-{GLOBAL_REGION}",
                region=GLOBAL_REGION,
                opts=pulumi.ResourceOptions(parent=self),
            )
        )
        on_aws = pulumi.ResourceOptions(parent=self, provider=provider)

        if args.zone is not None:
            self.zone_id = args.zone.zone_id
            self.name_servers = args.zone.name_servers
        elif dns.hosted_zone_id:
            self.zone_id = pulumi.Output.from_input(dns.hosted_zone_id)
            self.name_servers = pulumi.Output.from_input([])
        else:
            zone = aws.route53.Zone(
                f"{name}-zone",
                name=dns.domain,
                comment=f"Global names of the AI gateway ({args.name_prefix})",
                opts=on_aws,
            )
            self.zone_id = zone.zone_id
            self.name_servers = zone.name_servers

        self.alarm_topic_arn = self._alarm_topic(name, args, on_aws)
        alarm_actions = [self.alarm_topic_arn] if self.alarm_topic_arn is not None else []

        self.cloud_endpoints = {}
        self.cloud_urls = {}
        self.health_check_ids = {}
        self.alarm_arns = {}
        for cloud in clouds:
            endpoint = pulumi.Output.from_input(by_cloud[cloud].endpoint)
            # The record type follows the endpoint's value (hostname or IP); computing
            # an input with apply is fine, only creating resources inside it is not.
            direct = aws.route53.Record(
                f"{name}-{cloud.value}-direct",
                zone_id=self.zone_id,
                name=hostnames[cloud],
                type=endpoint.apply(lambda value, c=cloud: record_type_for(value, c)),
                ttl=RECORD_TTL_SECONDS,
                records=[endpoint.apply(lambda value: value.strip().rstrip("."))],
                # A hostname endpoint becoming an IP changes the type, which replaces the
                # record, and a CNAME cannot coexist with an A record under one name.
                opts=pulumi.ResourceOptions.merge(
                    on_aws, pulumi.ResourceOptions(delete_before_replace=True)
                ),
            )
            health_check = aws.route53.HealthCheck(
                f"{name}-{cloud.value}",
                type="HTTPS_STR_MATCH",
                fqdn=hostnames[cloud],
                port=HTTPS_PORT,
                resource_path=args.readiness_path,
                search_string=args.search_string,
                # SNI carries the per-cloud name, so the gateway's TLS listener
                # answers with the certificate for it.
                enable_sni=True,
                failure_threshold=failure_threshold,
                request_interval=request_interval,
                regions=checker_regions,
                tags={"Name": f"{args.name_prefix}-gateway-{cloud.value}"},
                # The checked name must resolve before the first check.
                opts=pulumi.ResourceOptions.merge(
                    on_aws, pulumi.ResourceOptions(depends_on=[direct])
                ),
            )
            alarm = aws.cloudwatch.MetricAlarm(
                f"{name}-{cloud.value}-unhealthy",
                name=f"{args.name_prefix}-gateway-{cloud.value}-unhealthy",
                alarm_description=(
                    f"The {cloud.value} gateway fails its readiness check "
                    f"(https://{hostnames[cloud]}{args.readiness_path}); the global name "
                    "no longer sends traffic there."
                ),
                namespace="AWS/Route53",
                metric_name="HealthCheckStatus",
                dimensions={"HealthCheckId": health_check.id},
                # HealthCheckStatus is 1 while healthy, 0 while unhealthy.
                statistic="Minimum",
                period=60,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="LessThanThreshold",
                # No data means the check is gone or not reporting: page, don't hope.
                treat_missing_data="breaching",
                alarm_actions=alarm_actions,
                ok_actions=alarm_actions,
                opts=on_aws,
            )
            aws.route53.Record(
                f"{name}-{cloud.value}-routed",
                zone_id=self.zone_id,
                name=global_name,
                # A CNAME to the per-cloud name keeps one record type for every cloud
                # (Route 53 rejects mixed types under one routed name) whether the
                # endpoint is a hostname or an IP.
                type=aws.route53.RecordType.CNAME,
                ttl=RECORD_TTL_SECONDS,
                records=[hostnames[cloud]],
                set_identifier=cloud.value,
                health_check_id=health_check.id,
                latency_routing_policies=(
                    [aws.route53.RecordLatencyRoutingPolicyArgs(region=self.latency_regions[cloud])]
                    if dns.routing_policy == RoutingPolicy.LATENCY
                    else None
                ),
                weighted_routing_policies=(
                    [aws.route53.RecordWeightedRoutingPolicyArgs(weight=self.weights[cloud])]
                    if dns.routing_policy == RoutingPolicy.WEIGHTED
                    else None
                ),
                # Switching routing policy replaces the records, and Route 53 rejects
                # latency and weighted records side by side under one name.
                opts=pulumi.ResourceOptions.merge(
                    on_aws, pulumi.ResourceOptions(delete_before_replace=True)
                ),
            )
            self.cloud_endpoints[cloud] = endpoint
            self.cloud_urls[cloud] = pulumi.Output.concat("https://", direct.fqdn)
            self.health_check_ids[cloud] = health_check.id
            self.alarm_arns[cloud] = alarm.arn

        self.global_hostname = pulumi.Output.from_input(global_name)
        self.global_url = pulumi.Output.from_input(f"https://{global_name}")
        self.register_outputs(
            {
                "globalHostname": self.global_hostname,
                "globalUrl": self.global_url,
                "zoneId": self.zone_id,
                "nameServers": self.name_servers,
                "routingPolicy": self.routing_policy.value,
                "cloudEndpoints": {c.value: v for c, v in self.cloud_endpoints.items()},
                "cloudUrls": {c.value: v for c, v in self.cloud_urls.items()},
                "healthCheckIds": {c.value: v for c, v in self.health_check_ids.items()},
                "alarmArns": {c.value: v for c, v in self.alarm_arns.items()},
                "alarmTopicArn": self.alarm_topic_arn,
            }
        )

    def _alarm_topic(
        self, name: str, args: Route53GlobalEndpointArgs, on_aws: pulumi.ResourceOptions
    ) -> pulumi.Output[str] | None:
        """The topic the alarms notify: the configured one, a new encrypted one, or none.

        The topic is encrypted with its own customer managed key, not the AWS
        managed ``alias/aws/sns``: CloudWatch must encrypt what it publishes,
        and the AWS managed key's policy cannot grant it that.
        """
        dns = args.dns
        if dns.alarm_topic_arn:
            return pulumi.Output.from_input(dns.alarm_topic_arn)
        if not dns.creates_alarm_topic:
            return None
        invoke = pulumi.InvokeOutputOptions(parent=self, provider=on_aws.provider)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        key = aws.kms.Key(
            f"{name}-alarms",
            description=f"Encrypts the gateway health alarm topic ({args.name_prefix})",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(partition, account).apply(
                lambda values: alarm_key_policy(*values)
            ),
            opts=on_aws,
        )
        aws.kms.Alias(
            f"{name}-alarms",
            name=f"alias/{args.name_prefix}-gateway-alarms",
            target_key_id=key.arn,
            opts=on_aws,
        )
        topic = aws.sns.Topic(
            f"{name}-alarms",
            name=f"{args.name_prefix}-gateway-alarms",
            kms_master_key_id=key.arn,
            opts=on_aws,
        )
        for index, email in enumerate(dns.alarm_emails):
            aws.sns.TopicSubscription(
                f"{name}-alarms-email-{index}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=on_aws,
            )
        return topic.arn


def alarm_key_policy(partition: str, account_id: str) -> str:
    """The KMS key policy of the alarm topic: the account administers it, CloudWatch may use it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        }
    )


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


# ------------------------------------------------------------------ program API


def build_global_zone(
    dns: DnsConfig, name_prefix: str, opts: pulumi.ResourceOptions | None = None
) -> Route53Zone:
    """The global zone, first: the clusters' certificate solvers need it before the records.

    ``__main__`` calls this before the clouds, takes
    :meth:`Route53Zone.certificate_solver_role` for each cluster, then passes
    the zone to :func:`build_global_endpoint`.
    """
    return Route53Zone("global-dns", dns, name_prefix, opts=opts)


def build_global_endpoint(
    dns: DnsConfig,
    endpoints: Sequence[CloudEndpoint],
    name_prefix: str,
    opts: pulumi.ResourceOptions | None = None,
    zone: Route53Zone | None = None,
) -> GlobalDnsBackend:
    """The global layer for the enabled clouds, on the configured backend (Route 53 today).

    ``__main__`` calls this once, after every cloud's gateway, with one
    :class:`CloudEndpoint` per cloud and the zone from :func:`build_global_zone`,
    then :func:`export_global_endpoint`.
    """
    return Route53GlobalEndpoint(
        "global",
        Route53GlobalEndpointArgs(dns=dns, endpoints=endpoints, name_prefix=name_prefix, zone=zone),
        opts=opts,
    )


def export_global_endpoint(
    endpoint: GlobalDnsBackend, export: Callable[[str, Any], None] = pulumi.export
) -> None:
    """Export the global layer as stack outputs (none of them secret).

    * ``globalUrl``: ``https://<hostname>.<domain>``, what clients use;
    * ``globalHostname``;
    * ``cloudEndpoints``: ``{cloud: load-balancer hostname or IP}``;
    * ``cloudUrls``: ``{cloud: https://<hostname>-<cloud>.<domain>}`` (direct access);
    * ``healthCheckIds``: ``{cloud: health check id}``;
    * ``dnsZoneId`` and ``dnsNameServers`` (delegate the domain to these when
      the zone was created).
    """
    export("globalUrl", endpoint.global_url)
    export("globalHostname", endpoint.global_hostname)
    export("cloudEndpoints", {c.value: v for c, v in endpoint.cloud_endpoints.items()})
    export("cloudUrls", {c.value: v for c, v in endpoint.cloud_urls.items()})
    export("healthCheckIds", {c.value: v for c, v in endpoint.health_check_ids.items()})
    export("dnsZoneId", endpoint.zone_id)
    export("dnsNameServers", endpoint.name_servers)
