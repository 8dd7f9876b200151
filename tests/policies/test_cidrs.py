"""The pack's (and the stack config's) rule for "the whole internet": the union of the ranges."""

from __future__ import annotations

import pytest

from policies.cidrs import CidrError, exposure, is_world, parse

GOOGLE_HEALTH_CHECKERS = ["35.191.0.0/16", "130.211.0.0/22"]


@pytest.mark.parametrize(
    "sources",
    [
        ["0.0.0.0/0"],
        ["0.0.0.0/1", "128.0.0.0/1"],  # the break: two halves of the internet
        [f"{n}.0.0.0/8" for n in range(1, 20)],  # many blocks, each smaller than the world
        ["::/0"],
        ["::/1", "8000::/1"],
        ["2000::/3"],  # every global unicast IPv6 address
        ["*"],
        ["Internet"],
        ["AzureCloud"],  # every Azure customer's address
        ["AzureCloud.westeurope"],
        ["10.0.0.0/8", "0.0.0.0/0"],  # a private range does not dilute the world
    ],
)
def test_sets_that_admit_the_world(sources: list[str]) -> None:
    assert is_world(sources), exposure(sources).describe()


@pytest.mark.parametrize(
    "sources",
    [
        ["203.0.113.10/32"],
        ["198.51.100.0/24", "192.0.2.0/24"],
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"],  # not routable
        GOOGLE_HEALTH_CHECKERS,
        ["fd00::/8", "fe80::/10", "2001:db8::/32"],  # ULA, link-local, documentation
        ["2a00:1450::/32"],  # one ISP allocation
        ["VirtualNetwork", "AzureLoadBalancer"],  # service tags for our own networks
        [],
    ],
)
def test_sets_that_do_not(sources: list[str]) -> None:
    assert not is_world(sources), exposure(sources).describe()


def test_overlapping_ranges_are_counted_once() -> None:
    # Sixteen copies of one /13 are one /13: 524,288 public addresses, under a /12.
    assert exposure(["8.0.0.0/13"] * 16).public_v4 == 2**19
    assert not is_world(["8.0.0.0/13"] * 16)
    assert is_world(["8.0.0.0/13", "16.0.0.0/12"])


def test_the_world_size_is_configurable() -> None:
    assert not is_world(GOOGLE_HEALTH_CHECKERS)
    assert is_world(GOOGLE_HEALTH_CHECKERS, world_prefix_v4=16)
    assert not is_world(["2a00:1450::/32"], world_prefix_v6=32)
    assert is_world(["2a00:1450::/31"], world_prefix_v6=32)


def test_the_reason_names_the_count_and_the_size() -> None:
    reason = exposure(["0.0.0.0/1", "128.0.0.0/1"]).describe()
    assert "together the IPv4 ranges admit" in reason and "more than a /12" in reason
    assert exposure(["AzureCloud"]).describe() == "'AzureCloud' admits any internet address"


def test_a_range_that_is_not_a_cidr_is_an_error() -> None:
    with pytest.raises(CidrError, match=r"'10\.0\.0\.300/8' is not a CIDR"):
        parse("10.0.0.300/8")
    assert str(parse("10.0.0.1/8")) == "10.0.0.0/8"  # host bits allowed, as the clouds do
