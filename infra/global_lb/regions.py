"""Where cloud regions are, to label each cloud with the nearest region of the DNS cloud.

Latency routing on Route 53 labels each record with an AWS region (latency
data exists for AWS regions alone); Traffic Manager's performance routing
labels each external endpoint with an Azure region. A cloud's record gets the
label of the DNS cloud's region nearest to its own region.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

from infra.config import Cloud
from infra.global_lb.common import _CLOUD_REGION_KEYS, GlobalDnsError

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
            "policy knows, so it cannot be labelled with the DNS cloud's nearest region; use "
            f"one of {', '.join(sorted(table))}, or set ai-gateway:dns.routingPolicy: weighted "
            "(or add the region's position to infra/global_lb/regions.py)"
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


def nearest_region(target: Cloud, cloud: Cloud, region: str) -> str:
    """The ``target`` cloud's region nearest to one cloud's region.

    Traffic Manager labels each endpoint with an Azure region (``target``
    Azure), Cloud DNS geolocation items with a Google Cloud region (``target``
    GCP). A cloud in the target cloud keeps its own region. Raises
    :class:`GlobalDnsError` naming the config key when the region is unknown.
    """
    table = _POSITIONS[target]
    if cloud == target and region in table:
        return region
    here = _position(cloud, region)
    return min(table, key=lambda name: (_distance_km(here, table[name]), name))
