"""The kubeconfig, Redis URL and PostgreSQL DSN builders."""

from __future__ import annotations

import base64

import pytest
import yaml

from infra.azure.cluster import AKS_ENTRA_SERVER_APP_ID, cluster_endpoint, exec_kubeconfig
from infra.azure.postgres import postgres_dsn, private_dns_zone_name
from infra.azure.redis import redis_url


def test_exec_kubeconfig_uses_kubelogin_with_the_aks_audience() -> None:
    document = yaml.safe_load(
        exec_kubeconfig("aks-x", "https://aks-x.hcp.eastus2.azmk8s.io:443", "Q0E=")
    )
    assert document["current-context"] == "aks-x"
    assert document["clusters"][0]["cluster"] == {
        "server": "https://aks-x.hcp.eastus2.azmk8s.io:443",
        "certificate-authority-data": "Q0E=",
    }
    exec_ = document["users"][0]["user"]["exec"]
    assert exec_["command"] == "kubelogin"
    assert exec_["args"] == [
        "get-token",
        "--login",
        "azurecli",
        "--server-id",
        AKS_ENTRA_SERVER_APP_ID,
    ]
    assert "token" not in document["users"][0]["user"]  # no static credential in the file


def test_exec_kubeconfig_rejects_a_non_https_server() -> None:
    with pytest.raises(ValueError, match="is not an https URL"):
        exec_kubeconfig("aks-x", "http://aks-x:80", "Q0E=")


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
