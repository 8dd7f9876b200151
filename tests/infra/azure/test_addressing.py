"""Subnet math of the VNet and the overlay ranges."""

from __future__ import annotations

import ipaddress
import re

import pytest

from infra.decisions.azure import (
    allocate,
    check_overlay_ranges,
    dns_service_ip,
    minimum_vnet_prefix,
    subnet_plan,
)


@pytest.mark.parametrize(
    "vnet", ["10.20.0.0/16", "10.120.0.0/16", "172.16.0.0/19", "192.168.0.0/18"]
)
def test_subnets_lie_inside_the_vnet_and_do_not_overlap(vnet: str) -> None:
    plan = subnet_plan(vnet)
    blocks = [ipaddress.ip_network(c) for c in (plan.nodes, plan.postgres, plan.endpoints)]
    assert [b.prefixlen for b in blocks] == [20, 24, 24]
    network = ipaddress.ip_network(vnet)
    assert all(b.subnet_of(network) for b in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])


def test_default_vnet_plan() -> None:
    plan = subnet_plan("10.20.0.0/16")
    assert (plan.nodes, plan.postgres, plan.endpoints) == (
        "10.20.0.0/20",
        "10.20.16.0/24",
        "10.20.17.0/24",
    )


def test_blocks_are_aligned_to_their_own_size() -> None:
    assert allocate("10.0.0.0/16", [24, 20, 24]) == ["10.0.0.0/24", "10.0.16.0/20", "10.0.32.0/24"]


def test_too_small_vnet_names_the_key_and_the_size_needed() -> None:
    assert minimum_vnet_prefix([20, 24, 24]) == 19
    with pytest.raises(
        ValueError,
        match=re.escape(
            "ai-gateway:azure.vnetCidr: 10.20.0.0/20 is too small for subnets of /20, /24, /24; "
            "use a /19 or larger address space"
        ),
    ):
        subnet_plan("10.20.0.0/20")


@pytest.mark.parametrize("bad", ["10.20.0.1/16", "not-a-cidr", "10.20.0.0/33"])
def test_malformed_vnet_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match=r"ai-gateway:azure.vnetCidr: .* is not a CIDR block"):
        subnet_plan(bad)


def test_prefix_shorter_than_the_vnet_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"a /16 subnet cannot be carved from 10.0.0.0/20"):
        allocate("10.0.0.0/20", [16])


def test_overlapping_overlay_ranges_name_the_key_to_change() -> None:
    check_overlay_ranges("10.20.0.0/16", "10.244.0.0/16", "10.0.0.0/16")
    with pytest.raises(
        ValueError, match=r"ai-gateway:azure.podCidr: 10.20.0.0/20 overlaps vnetCidr"
    ):
        check_overlay_ranges("10.20.0.0/16", "10.20.0.0/20", "10.0.0.0/16")
    with pytest.raises(
        ValueError, match=r"ai-gateway:azure.serviceCidr: 10.244.0.0/24 overlaps podCidr"
    ):
        check_overlay_ranges("10.20.0.0/16", "10.244.0.0/16", "10.244.0.0/24")


def test_dns_service_ip_is_the_tenth_address() -> None:
    assert dns_service_ip("10.0.0.0/16") == "10.0.0.10"
    assert dns_service_ip("172.20.8.0/24") == "172.20.8.10"
    with pytest.raises(ValueError, match="use a /28 or larger range"):
        dns_service_ip("10.0.0.0/29")
