"""GCP names: valid characters, each service's length limit, clear errors."""

from __future__ import annotations

import re

import pytest

from infra.decisions.gcp import LIMITS, resource_name

RFC1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def test_short_names_are_prefix_dash_role() -> None:
    assert resource_name("ai-gateway-dev", "vpc", "network") == "ai-gateway-dev-vpc"


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_long_prefixes_are_shortened_within_the_limit(kind: str) -> None:
    prefix = "a-very-long-project-name-for-the-platform-team-" + "x" * 40 + "-prod"
    name = resource_name(prefix, "nodes", kind)
    assert len(name) <= LIMITS[kind][1]
    assert RFC1035.fullmatch(name)
    assert re.search(r"-nodes-[0-9a-f]{4}$", name), name


def test_shortened_names_stay_unique_and_stable() -> None:
    first = resource_name("ai-gateway-platform-team-one-prod", "gke", "cluster")
    second = resource_name("ai-gateway-platform-team-two-prod", "gke", "cluster")
    assert len(first) <= 40 and len(second) <= 40
    assert first != second
    assert first == resource_name("ai-gateway-platform-team-one-prod", "gke", "cluster")


def test_reserve_keeps_room_for_a_suffix() -> None:
    name = resource_name("p" * 60, "pg", "sql_instance", reserve=5)
    assert len(name) + 5 <= 63


def test_service_account_ids_fit_6_to_30() -> None:
    name = resource_name("ai-gateway-production-eu", "gke-nodes", "service_account")
    assert 6 <= len(name) <= 30
    with pytest.raises(ValueError, match="shorter than 6 characters"):
        resource_name("a", "b", "service_account")


@pytest.mark.parametrize(
    ("prefix", "role", "kind", "message"),
    [
        ("AI_Gateway", "vpc", "network", "prefix 'AI_Gateway' cannot be part of a GCP name"),
        ("ai-gateway", "-vpc", "network", "role '-vpc' cannot be part of a GCP name"),
        ("9lives", "vpc", "network", "prefix '9lives'"),
        ("ai", "vpc", "bucket", "kind 'bucket' is unknown; use one of"),
        ("ai-gateway-dev", "x" * 40, "cluster", "role 'x{40}' is too long for a cluster name"),
        ("ai", "vpc", "network", None),
    ],
)
def test_bad_input_gives_a_clear_error(
    prefix: str, role: str, kind: str, message: str | None
) -> None:
    if message is None:
        assert resource_name(prefix, role, kind) == "ai-vpc"
        return
    with pytest.raises(ValueError, match=message):
        resource_name(prefix, role, kind)


def test_negative_reserve_is_rejected() -> None:
    with pytest.raises(ValueError, match="reserve -1 is negative"):
        resource_name("ai", "vpc", "network", reserve=-1)
