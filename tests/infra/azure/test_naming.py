"""Azure name rules: length, characters and case per resource type."""

from __future__ import annotations

import re

import pytest

from infra.decisions.azure import RULES, azure_name, check_name, with_suffix


@pytest.mark.parametrize("kind", sorted(RULES))
def test_every_kind_builds_a_valid_name_from_the_stack_prefix(kind: str) -> None:
    name = azure_name(kind, "ai-gateway-prod", "x")
    rule = RULES[kind]
    assert rule.min_length <= len(name) <= rule.max_length
    assert re.fullmatch(rule.pattern, name)


@pytest.mark.parametrize(
    ("kind", "parts", "expected"),
    [
        ("storage_account", ("st", "AI-Gateway", "dev"), "staigatewaydev"),
        ("postgres_server", ("psql", "AI-Gateway", "dev"), "psql-ai-gateway-dev"),
        ("aks_dns_prefix", ("ai_gateway", "dev"), "aigateway-dev"),
        ("resource_group", ("rg", "ai-gateway", "dev"), "rg-ai-gateway-dev"),
        ("aks_node_pool", ("gate", "way"), "gateway"),
        ("key_vault", ("kv", "ai--gateway"), "kv-ai-gateway"),
    ],
)
def test_names_follow_case_and_character_rules(kind: str, parts: tuple[str, ...], expected: str):
    assert azure_name(kind, *parts) == expected


@pytest.mark.parametrize(
    ("kind", "limit"),
    [("storage_account", 24), ("key_vault", 24), ("aks_dns_prefix", 54), ("postgres_server", 63)],
)
def test_long_names_are_cut_with_a_hash_that_keeps_them_distinct(kind: str, limit: int) -> None:
    first = azure_name(kind, "platform", "a" * 80)
    second = azure_name(kind, "platform", "a" * 79 + "b")
    assert len(first) == len(second) == limit
    assert first != second
    check_name(kind, first)


def test_reserve_leaves_room_for_a_later_suffix() -> None:
    base = azure_name("postgres_server", "psql", "x" * 80, reserve=7)
    assert len(base) == 63 - 7
    assert with_suffix("postgres_server", base, "A1B2C3").endswith("-a1b2c3")


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        (
            "storage_account",
            "ab",
            "storage account name 'ab' is 2 characters long; Azure allows 3 to 24",
        ),
        ("storage_account", "ai-gateway", "use lowercase letters and digits only"),
        ("postgres_server", "Psql-Prod", "use lowercase letters, digits and '-'"),
        ("postgres_server", "psql-", "starting and ending with a letter or digit"),
        ("key_vault", "kv--gateway", "no '--'"),
        ("key_vault", "1kv", "starting with a letter"),
        ("redis_enterprise", "redis--x", "no '--'"),
        ("aks_dns_prefix", "a" * 55, "is 55 characters long; Azure allows 1 to 54"),
        ("aks_node_pool", "gateway-pool", "lowercase letters and digits, starting with a letter"),
        ("resource_group", "rg.", "not ending with '.'"),
    ],
)
def test_bad_names_are_rejected_with_the_rule(kind: str, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_name(kind, name)


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"no Azure naming rule for resource kind 'vm'; use one of .*storage_account",
    ):
        azure_name("vm", "x")


def test_nothing_valid_left_is_an_error() -> None:
    with pytest.raises(ValueError, match="storage account name '' is 0 characters long"):
        azure_name("storage_account", "---")
    with pytest.raises(ValueError, match="no name parts given"):
        azure_name("subnet")
