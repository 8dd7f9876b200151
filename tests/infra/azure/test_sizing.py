"""Sizing and availability decisions per environment, and the combinations Azure rejects."""

from __future__ import annotations

import re

import pytest

from infra.config import AzureConfig, Environment
from infra.decisions.azure import (
    api_server_access,
    postgres_availability,
    postgres_backup_retention,
    postgres_tier,
    redis_sku,
    system_pool_bounds,
)


@pytest.mark.parametrize("env", list(Environment))
def test_environment_defaults_are_accepted(env: Environment) -> None:
    s = AzureConfig.model_validate({"enabled": True}, context={"environment": env})
    assert redis_sku(s.redis_sku) == s.redis_sku
    assert postgres_tier(s.postgres_sku, s.postgres_tier) == s.postgres_tier
    availability = postgres_availability(s.high_availability, s.postgres_tier, s.availability_zones)
    assert availability.mode == ("Disabled" if env == Environment.DEV else "ZoneRedundant")
    assert postgres_backup_retention(s.backup_retention_days) == (
        30 if env == Environment.PROD else 7
    )


@pytest.mark.parametrize("sku", ["Balanced_B0", "MemoryOptimized_M10", "ComputeOptimized_X3"])
def test_managed_redis_skus_are_accepted(sku: str) -> None:
    assert redis_sku(sku) == sku


@pytest.mark.parametrize(
    "sku", ["Enterprise_E10", "EnterpriseFlash_F300", "Premium_P1", "balanced_b1"]
)
def test_retiring_or_unknown_redis_skus_are_rejected(sku: str) -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(f"ai-gateway:azure.redisSku: '{sku}' is not an Azure Managed Redis SKU"),
    ):
        redis_sku(sku)


@pytest.mark.parametrize(
    ("sku", "tier"),
    [
        ("Standard_B2ms", "Burstable"),
        ("Standard_D2ds_v5", "GeneralPurpose"),
        ("Standard_E4ds_v5", "MemoryOptimized"),
    ],
)
def test_postgres_tier_matches_sku_family(sku: str, tier: str) -> None:
    assert postgres_tier(sku, tier) == tier


def test_postgres_tier_mismatch_says_which_tier() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            "ai-gateway:azure.postgresTier: 'Burstable' does not match postgresSku "
            "'Standard_D2ds_v5'; set postgresTier to GeneralPurpose"
        ),
    ):
        postgres_tier("Standard_D2ds_v5", "Burstable")
    with pytest.raises(
        ValueError,
        match=re.escape("ai-gateway:azure.postgresSku: 'db.t4g.medium' is not a Flexible Server"),
    ):
        postgres_tier("db.t4g.medium", "Burstable")


def test_postgres_availability() -> None:
    assert postgres_availability(False, "Burstable", ["1", "2", "3"]).mode == "Disabled"
    zr = postgres_availability(True, "GeneralPurpose", ["2", "3"])
    assert (zr.mode, zr.primary_zone, zr.standby_zone) == ("ZoneRedundant", "2", "3")
    same = postgres_availability(True, "GeneralPurpose", ["1"])
    assert (same.mode, same.standby_zone) == ("SameZone", None)
    assert postgres_availability(True, "GeneralPurpose", []).primary_zone is None


def test_burstable_with_high_availability_is_rejected() -> None:
    with pytest.raises(
        ValueError,
        match=r"ai-gateway:azure.highAvailability: Burstable PostgreSQL servers cannot have a standby",
    ):
        postgres_availability(True, "Burstable", ["1", "2", "3"])


@pytest.mark.parametrize("days", [1, 6, 36])
def test_backup_retention_outside_flexible_server_range(days: int) -> None:
    with pytest.raises(
        ValueError,
        match=rf"backupRetentionDays: {days} is not allowed .* use an integer from 7 to 35",
    ):
        postgres_backup_retention(days)


def test_system_pool_bounds() -> None:
    assert system_pool_bounds(1) == (1, 2)
    assert system_pool_bounds(3) == (3, 6)
    with pytest.raises(
        ValueError, match=re.escape("ai-gateway:azure.systemNodeCount: 0 is not allowed")
    ):
        system_pool_bounds(0)


def test_api_server_is_never_open_to_all() -> None:
    assert api_server_access(["203.0.113.0/24"], False).authorized_ip_ranges == ["203.0.113.0/24"]
    private = api_server_access(["203.0.113.0/24"], True)
    assert private.private_cluster and private.authorized_ip_ranges == []
    with pytest.raises(
        ValueError, match=r"ai-gateway:azure.deployerCidrs: is empty, which would open"
    ):
        api_server_access([], False)
