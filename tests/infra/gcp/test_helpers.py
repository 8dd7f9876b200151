"""The pure helpers of the GCP components: URLs, tiers, schedules (kubeconfig: tests/infra/test_kubeconfigs.py)."""

from __future__ import annotations

import pytest

from infra.decisions.gcp import daily_window_start, workload_pool
from infra.gcp.footprint import api_resource_name
from infra.gcp.network import private_service_range
from infra.gcp.postgres import availability_type, postgres_dsn, sql_maintenance_day
from infra.gcp.redis import redis_tier, redis_url


def test_workload_pool() -> None:
    assert workload_pool("acme-ai-gateway-dev") == "acme-ai-gateway-dev.svc.id.goog"
    with pytest.raises(ValueError, match=r"set ai-gateway:gcp.project"):
        workload_pool("")


def test_redis_url_is_tls_with_an_encoded_auth_string() -> None:
    assert redis_url("a/b+c", "10.40.0.4", 6378) == "rediss://:a%2Fb%2Bc@10.40.0.4:6378"
    with pytest.raises(ValueError, match="enable AUTH"):
        redis_url("", "10.40.0.4", 6378)
    with pytest.raises(ValueError, match="port 0 is not a TCP port"):
        redis_url("auth", "10.40.0.4", 0)


def test_postgres_dsn_requires_tls_and_encodes_credentials() -> None:
    dsn = postgres_dsn("gateway", "p@ss:w/rd", "10.40.1.3", "gateway")
    assert dsn == "postgresql://gateway:p%40ss%3Aw%2Frd@10.40.1.3:5432/gateway?sslmode=require"
    with pytest.raises(ValueError, match="private IP"):
        postgres_dsn("gateway", "pw", "", "gateway")


def test_tiers_follow_high_availability() -> None:
    assert redis_tier(True) == "STANDARD_HA" and redis_tier(False) == "BASIC"
    assert availability_type(True) == "REGIONAL" and availability_type(False) == "ZONAL"


def test_maintenance_schedules() -> None:
    assert sql_maintenance_day("MONDAY") == 1 and sql_maintenance_day("sunday") == 7
    with pytest.raises(ValueError, match="'Funday' is not a weekday"):
        sql_maintenance_day("Funday")
    assert daily_window_start(3) == "03:00"
    with pytest.raises(ValueError, match="use 0 to 23"):
        daily_window_start(24)


def test_private_service_range_and_api_names() -> None:
    assert private_service_range("10.40.0.0/16") == ("10.40.0.0", 16)
    with pytest.raises(ValueError, match="no prefix length"):
        private_service_range("10.40.0.0")
    assert api_resource_name("sqladmin.googleapis.com") == "api-sqladmin"
    with pytest.raises(ValueError, match="not a Google API name"):
        api_resource_name("sqladmin")
