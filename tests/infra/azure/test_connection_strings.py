"""The AKS credential reader, Redis URL and PostgreSQL DSN builders (kubeconfig: tests/infra/test_kubeconfigs.py)."""

from __future__ import annotations

import base64

import pytest
import yaml

from infra.azure.postgres import postgres_dsn, private_dns_zone_name
from infra.azure.redis import redis_url
from infra.decisions.azure import cluster_endpoint


def test_cluster_endpoint_reads_the_credential_api_kubeconfig() -> None:
    raw = yaml.safe_dump(
        {
            "clusters": [
                {
                    "name": "c",
                    "cluster": {"server": "https://s:443", "certificate-authority-data": "Q0E="},
                }
            ]
        }
    )
    assert cluster_endpoint(base64.b64encode(raw.encode()).decode()) == ("https://s:443", "Q0E=")
    with pytest.raises(ValueError, match="not a kubeconfig with a cluster entry"):
        cluster_endpoint(base64.b64encode(b"kind: Config\n").decode())


def test_redis_url_is_tls_on_port_10000_without_a_key() -> None:
    # Access keys are disabled: the gateway AUTHs with Entra tokens (AIGW_REDIS_AUTH=entra).
    assert redis_url("r.eastus2.redis.azure.net") == "rediss://r.eastus2.redis.azure.net:10000"
    with pytest.raises(ValueError, match="no host name"):
        redis_url("")


def test_postgres_dsn_requires_tls() -> None:
    assert (
        postgres_dsn("p.postgres.database.azure.com", "gateway", "aigwadmin", "p@ss:w/rd")
        == "postgresql://aigwadmin:p%40ss%3Aw%2Frd@p.postgres.database.azure.com:5432/gateway?sslmode=require"
    )
    with pytest.raises(ValueError, match="no host name"):
        postgres_dsn("", "gateway", "u", "p")


def test_private_dns_zone_is_a_postgres_subdomain() -> None:
    assert (
        private_dns_zone_name("ai-gateway-dev")
        == "ai-gateway-dev.private.postgres.database.azure.com"
    )
