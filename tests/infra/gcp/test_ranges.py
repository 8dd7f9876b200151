"""GKE address-range rules: pod range sizing, node capacity, overlaps, clear errors."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse
from infra.decisions import gcp as ranges
from infra.decisions.gcp import GkeRanges, RangeError, check_ranges

GOOD = GkeRanges(
    subnet_cidr="10.30.0.0/20",
    pods_cidr="10.32.0.0/14",
    services_cidr="10.36.0.0/20",
    master_cidr="172.16.0.0/28",
    private_service_cidr="10.40.0.0/16",
)


@pytest.mark.parametrize(
    ("max_pods", "prefix"), [(8, 28), (16, 27), (32, 26), (64, 25), (110, 24), (128, 24), (256, 23)]
)
def test_pod_range_per_node_is_twice_max_pods_rounded_up(max_pods: int, prefix: int) -> None:
    assert ranges.pod_range_prefix_per_node(max_pods) == prefix


@pytest.mark.parametrize("max_pods", [0, 7, 257])
def test_pods_per_node_outside_gke_limits_is_rejected(max_pods: int) -> None:
    with pytest.raises(
        RangeError, match=rf"maxPodsPerNode {max_pods} .*use an integer from 8 to 256"
    ):
        ranges.pod_range_prefix_per_node(max_pods)


def test_nodes_in_pods_range() -> None:
    assert ranges.nodes_in_pods_range("10.32.0.0/14", 110) == 1024
    assert ranges.nodes_in_pods_range("10.32.0.0/20", 110) == 16
    assert ranges.nodes_in_pods_range("10.32.0.0/20", 32) == 64
    assert ranges.nodes_in_pods_range("10.32.0.0/25", 110) == 0


def test_nodes_in_subnet_excludes_the_four_reserved_addresses() -> None:
    assert ranges.nodes_in_subnet("10.30.0.0/20") == 4092
    assert ranges.nodes_in_subnet("10.30.0.0/29") == 4


def test_peak_nodes_counts_every_zone_and_surge() -> None:
    assert ranges.peak_nodes(3) == 12
    assert ranges.peak_nodes(4, zones=4, surge_per_zone=0) == 16
    with pytest.raises(RangeError, match="nodeMaxCount 0 must be at least 1"):
        ranges.peak_nodes(0)


def test_defaults_are_valid() -> None:
    check_ranges(GOOD, node_max_count=4, max_pods_per_node=110)


def test_pods_range_too_small_names_the_size_to_use() -> None:
    small = GkeRanges(**{**GOOD.__dict__, "pods_cidr": "10.32.0.0/22"})
    with pytest.raises(RangeError) as caught:
        check_ranges(small, node_max_count=3, max_pods_per_node=110)
    assert caught.value.key == "podsCidr"
    assert "holds pod ranges for 4 node(s)" in str(caught.value)
    assert "needs 12; use a /20 or larger, or lower maxPodsPerNode" in str(caught.value)
    # Fewer pods per node make the same range big enough.
    check_ranges(small, node_max_count=3, max_pods_per_node=32)


def test_subnet_too_small() -> None:
    small = GkeRanges(**{**GOOD.__dict__, "subnet_cidr": "10.30.0.0/28"})
    with pytest.raises(
        RangeError, match=r"subnetCidr 10.30.0.0/28 addresses 12 node\(s\).*needs 15; use a /27"
    ):
        check_ranges(small, node_max_count=4, max_pods_per_node=110)


def test_master_range_must_be_a_28() -> None:
    bad = GkeRanges(**{**GOOD.__dict__, "master_cidr": "172.16.0.0/27"})
    with pytest.raises(RangeError, match=r"GKE needs exactly a /28.*172\.16\.0\.0/28") as caught:
        check_ranges(bad, node_max_count=3, max_pods_per_node=110)
    assert caught.value.key == "masterCidr"


def test_overlapping_ranges_name_both_keys() -> None:
    bad = GkeRanges(**{**GOOD.__dict__, "private_service_cidr": "10.32.0.0/16"})
    with pytest.raises(RangeError) as caught:
        check_ranges(bad, node_max_count=3, max_pods_per_node=110)
    assert caught.value.key == "privateServiceCidr"
    assert "overlaps podsCidr 10.32.0.0/14" in str(caught.value)


def test_malformed_and_ipv6_ranges() -> None:
    with pytest.raises(RangeError, match="podsCidr 'x' is not a valid CIDR"):
        check_ranges(GkeRanges(**{**GOOD.__dict__, "pods_cidr": "x"}), 3, 110)
    with pytest.raises(RangeError, match="IPv6"):
        check_ranges(GkeRanges(**{**GOOD.__dict__, "pods_cidr": "fd00::/48"}), 3, 110)


BASE = {
    "environment": "prod",
    "tags": {"owner": "a", "costCenter": "b"},
    "dns": {"domain": "ai.example.com"},
}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"podsCidr": "10.32.0.0/24"},
            "ai-gateway:gcp.podsCidr: podsCidr 10.32.0.0/24 holds pod ranges for 1 node(s)",
        ),
        ({"masterCidr": "172.16.0.0/24"}, "ai-gateway:gcp.masterCidr: masterCidr 172.16.0.0/24"),
        (
            {"privateServiceCidr": "10.30.0.0/16"},
            "ai-gateway:gcp.privateServiceCidr: privateServiceCidr 10.30.0.0/16 overlaps subnetCidr",
        ),
        ({"nodeMaxCount": 100, "podsCidr": "10.32.0.0/18"}, "ai-gateway:gcp.podsCidr:"),
    ],
)
def test_config_reports_range_errors_with_the_key(override: dict, message: str) -> None:
    gcp = {"enabled": True, "project": "acme-proj-1", "deployerCidrs": ["203.0.113.0/24"]}
    with pytest.raises(ConfigError) as caught:
        parse({**BASE, "gcp": {**gcp, **override}})
    assert str(caught.value).startswith(message)
