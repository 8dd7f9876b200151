"""What ``__main__.py`` receives from the Azure footprint, and the config it validates first."""

from __future__ import annotations

import re

import pytest

from infra.azure.footprint import validate
from infra.config import ConfigError, Environment, parse
from infra.offline import Plan, Secret, record
from infra.offline.engine import reveal
from tests.infra.conftest import ROOT

PROGRAM = ROOT / "tests" / "infra" / "azure" / "fixtures" / "contract_program" / "__main__.py"
EXTRAS = {
    "oidcIssuerUrl",
    "resourceGroupName",
    "location",
    "kubeletIdentityObjectId",
    "clusterIdentityPrincipalId",
    "vnetId",
    "nodeSubnetId",
    "egressIp",
    "ingressIp",
    "ownerSecretId",
    "redisClusterName",
    "redisDatabaseName",
}


@pytest.fixture(scope="module")
def contract() -> Plan:
    return record("prod", project_dir=ROOT, program=PROGRAM)


def test_every_contract_field_is_filled(contract: Plan) -> None:
    out = contract.outputs
    assert out["cloud"] == "azure"
    assert out["region"] == "westeurope"
    assert out["componentUrn"] == contract.one("ai-gateway:azure:Footprint").urn
    assert out["clusterName"] == "aks-ai-gateway-prod"
    assert out["kubeProvider"] == contract.one("pulumi:providers:kubernetes").urn
    assert out.get("redisCaCert") is None  # Azure Managed Redis presents a public CA chain
    assert set(out["extras"]) == EXTRAS
    assert all(value for value in out["extras"].values())


def test_credentials_are_exported_only_as_secrets(contract: Plan) -> None:
    out = contract.outputs
    for key in ("kubeconfig", "redisUrl", "postgresDsn"):
        assert isinstance(out[key], Secret), key
    # No access key: the gateway AUTHs with its Entra token (AIGW_REDIS_AUTH=entra).
    assert reveal(out["redisUrl"]).startswith("rediss://redis-")
    assert reveal(out["redisUrl"]).endswith(".westeurope.redis.azure.net:10000")
    assert reveal(out["postgresDsn"]).endswith("?sslmode=require")
    assert "kubelogin" in reveal(out["kubeconfig"])


def _config(env: str, **azure: object):
    return parse(
        {
            "environment": env,
            "tags": {"owner": "platform", "costCenter": "cc-1"},
            "dns": {"domain": "ai.example.com", "alerts": {"emails": ["oncall@example.com"]}},
            # An Azure-only stack's gateway serves Azure OpenAI (the default catalogue).
            "azure": {
                "enabled": True,
                "deployerCidrs": ["203.0.113.0/24"],
                "openaiAccountId": "/subscriptions/00000000-0000-4000-8000-000000000001/"
                "resourceGroups/ai/providers/Microsoft.CognitiveServices/accounts/acme-openai",
                # Required outside dev (break-glass admins with local accounts off).
                "adminGroupObjectIds": ["3f2504e0-4f89-41d3-9a0c-0305e82c3301"],
                **azure,
            },
        }
    )


@pytest.mark.parametrize(
    ("field", "dev", "staging", "prod"),
    [
        ("system_node_count", 1, 3, 3),
        ("disable_local_accounts", False, True, True),
        ("redis_persistence", False, False, True),
        ("postgres_geo_redundant_backup", False, False, True),
        ("availability_zones", ["1", "2", "3"], ["1", "2", "3"], ["1", "2", "3"]),
        ("log_retention_days", 30, 30, 30),
        ("defender_for_containers", False, True, True),
        ("policy_effect", "Audit", "Deny", "Deny"),
        ("node_vm_size", "Standard_D4ds_v5", "Standard_D4ds_v5", "Standard_D8ds_v5"),
    ],
)
def test_new_azure_defaults_per_environment(
    field: str, dev: object, staging: object, prod: object
) -> None:
    values = {env: getattr(_config(env.value).azure, field) for env in Environment}
    assert values == {Environment.DEV: dev, Environment.STAGING: staging, Environment.PROD: prod}


@pytest.mark.parametrize(
    ("azure", "message"),
    [
        (
            {"adminGroupObjectIds": ["platform-admins"]},
            "ai-gateway:azure.adminGroupObjectIds: 'platform-admins' is not a Microsoft Entra object id",
        ),
        ({"availabilityZones": ["4"]}, "ai-gateway:azure.availabilityZones.0: 4 is not allowed"),
        (
            {"podCidr": "8.8.0.0/16"},
            "ai-gateway:azure.podCidr: '8.8.0.0/16' is not a private range",
        ),
        (
            {"nodeVmSize": "Standard_D4s_v5"},
            "ai-gateway:azure.nodeVmSize: 'Standard_D4s_v5' has no local temp disk for an "
            "ephemeral OS disk; use a Ddsv5 or Edsv5 size",
        ),
        (
            {"logRetentionDays": 7},
            "ai-gateway:azure.logRetentionDays: 7 is not allowed; use an integer from 30 to 730",
        ),
    ],
)
def test_bad_new_keys_name_the_key_and_the_fix(azure: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _config("dev", **azure)


def test_validate_reports_every_cross_field_problem_at_once() -> None:
    config = _config("dev", deployerCidrs=[], redisSku="Premium_P1", serviceCidr="10.20.0.0/24")
    with pytest.raises(ConfigError) as info:
        validate(config)
    assert len(info.value.problems) == 3
    assert [p.split(":", 2)[1] for p in info.value.problems] == [
        "azure.serviceCidr",
        "azure.redisSku",
        "azure.deployerCidrs",
    ]


def test_validate_accepts_the_stack_defaults() -> None:
    for env in ("dev", "staging", "prod"):
        validate(_config(env))
