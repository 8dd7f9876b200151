"""The pure decisions behind the identities and DNS-01 roles, their config, and plan grouping."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from infra.aws.identity import (
    bedrock_invoke_policy,
    issuer_host,
    web_identity_trust_policy,
)
from infra.azure.identity import role_definition_id
from infra.cli import render_plan
from infra.config import ConfigError, parse
from infra.gcp.identity import workload_identity_member
from infra.global_lb import certificate_solver_policy
from infra.offline import Plan, record
from tests.infra.conftest import ROOT

SUB = "00000000-0000-4000-8000-000000000001"
OPENAI = (
    f"/subscriptions/{SUB}/resourceGroups/ai/providers/Microsoft.CognitiveServices/accounts/oai"
)
BASE: dict[str, Any] = {
    "environment": "dev",
    "tags": {"owner": "platform", "costCenter": "cc-1"},
    "dns": {"domain": "ai.example.com"},
}


# ---------------------------------------------------------------------- AWS


@pytest.mark.parametrize(
    ("url", "host"),
    [
        (
            "https://oidc.eks.us-east-1.amazonaws.com/id/ABC",
            "oidc.eks.us-east-1.amazonaws.com/id/ABC",
        ),
        # AKS issuers end in "/": IAM keys the provider by the issuer exactly as tokens carry it.
        ("https://eastus2.oic.prod-aks.azure.com/t/c/", "eastus2.oic.prod-aks.azure.com/t/c/"),
    ],
)
def test_issuer_host_keeps_the_issuer_verbatim_without_scheme(url: str, host: str) -> None:
    assert issuer_host(url) == host


@pytest.mark.parametrize("url", ["", "oidc.eks.example/id/1", "http://issuer.example", "https://"])
def test_issuer_host_refuses_what_is_not_an_https_issuer(url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        issuer_host(url)


def test_trust_policy_names_exactly_one_subject_and_audience() -> None:
    policy = web_identity_trust_policy(
        "arn:aws:iam::1:oidc-provider/issuer.example/x",
        "https://issuer.example/x",
        "system:serviceaccount:ns:sa",
    )
    (statement,) = policy["Statement"]
    assert statement["Condition"] == {
        "StringEquals": {
            "issuer.example/x:sub": "system:serviceaccount:ns:sa",
            "issuer.example/x:aud": "sts.amazonaws.com",
        }
    }
    # StringLike would let a wildcard subject in; only exact matching is used.
    assert "StringLike" not in statement["Condition"]


def test_bedrock_policy_narrows_to_configured_models() -> None:
    policy = bedrock_invoke_policy("aws", "eu-west-1", "123456789012", ["anthropic.claude-*"])
    direct, profiles, through = policy["Statement"]
    assert direct["Resource"] == ["arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-*"]
    assert profiles["Resource"] == [
        "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-*",
        "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/global.anthropic.claude-*",
    ]
    assert through["Resource"] == [
        "arn:aws:bedrock:eu-*::foundation-model/anthropic.claude-*",
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-*",
        "arn:aws:bedrock:::foundation-model/anthropic.claude-*",
    ]
    # Only through the profiles: never a direct call to another region's model.
    assert through["Condition"] == {
        "StringLike": {"bedrock:InferenceProfileArn": profiles["Resource"]}
    }
    with pytest.raises(ValueError, match="bedrockModelIds"):
        bedrock_invoke_policy("aws", "eu-west-1", "123456789012", [])


def test_dns01_policy_changes_only_acme_txt_records_in_the_zone() -> None:
    statements = {s["Sid"]: s for s in certificate_solver_policy("aws", "ZONE1")["Statement"]}
    change = statements["AcmeChallengeRecordsOnly"]
    assert change["Resource"] == "arn:aws:route53:::hostedzone/ZONE1"
    assert change["Condition"] == {
        "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]},
        "ForAllValues:StringLike": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]
        },
    }
    actions = {s["Action"] for s in statements.values()}
    assert actions == {
        "route53:GetChange",
        "route53:ChangeResourceRecordSets",
        "route53:ListResourceRecordSets",
    }


# -------------------------------------------------------------------- Azure


def test_role_definition_id() -> None:
    assert role_definition_id(SUB, "abc") == (
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/abc"
    )


def _catalogue(provider: dict[str, Any]) -> dict[str, Any]:
    """A gateway catalogue (one the gateway accepts) whose one model is served by ``provider``."""
    return {
        "appConfig": {
            "providers": {"p": provider},
            "models": {"chat": {"deployments": [{"provider": "p", "model": "gpt-4o"}]}},
        }
    }


AZURE_OPENAI_ROUTE = _catalogue(
    {
        "type": "azure_openai",
        "base_url": "https://oai.openai.azure.com",
        "api_version": "2024-10-21",
    }
)
KEYED_ROUTE = _catalogue({"type": "openai", "api_key": "${OPENAI_API_KEY}"})
OPENAI_KEY = {"openai": "sk-test"}


def test_an_azure_openai_route_requires_the_account() -> None:
    """Granting the gateway's identity on the resource group instead would make any OpenAI
    account added there later callable; the account must be named."""
    azure = {"enabled": True, "deployerCidrs": ["203.0.113.0/24"]}
    with pytest.raises(ConfigError, match=re.escape("ai-gateway:azure.openaiAccountId")):
        parse({**BASE, "azure": azure, "gateway": AZURE_OPENAI_ROUTE})
    config = parse(
        {**BASE, "azure": {**azure, "openaiAccountId": OPENAI}, "gateway": AZURE_OPENAI_ROUTE}
    )
    assert config.azure.openai_account_id == OPENAI
    # No Azure OpenAI route: no account needed (and no role is granted at all).
    keyed = {**BASE, "azure": azure, "gateway": KEYED_ROUTE, "providerKeys": OPENAI_KEY}
    assert parse(keyed).azure.openai_account_id is None


def test_staging_and_prod_need_an_aks_admin_group() -> None:
    azure = {"enabled": True, "deployerCidrs": ["203.0.113.0/24"]}
    # Everything else prod requires is set: the only problem left is the admin group.
    prod = {
        **BASE,
        "environment": "prod",
        "dns": {**BASE["dns"], "alerts": {"emails": ["oncall@example.com"]}},
        "gateway": KEYED_ROUTE,
        "providerKeys": OPENAI_KEY,
    }
    with pytest.raises(ConfigError, match=re.escape("ai-gateway:azure.adminGroupObjectIds")):
        parse({**prod, "azure": azure})
    group = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    config = parse({**prod, "azure": {**azure, "adminGroupObjectIds": [group]}})
    assert config.azure.admin_group_object_ids == [group]


def test_openai_account_id_config_is_validated() -> None:
    azure = {"enabled": True, "deployerCidrs": ["203.0.113.0/24"]}
    config = parse({**BASE, "azure": {**azure, "openaiAccountId": OPENAI}})
    assert config.azure.openai_account_id == OPENAI
    with pytest.raises(ConfigError, match=re.escape("ai-gateway:azure.openaiAccountId")):
        parse({**BASE, "azure": {**azure, "openaiAccountId": "/subscriptions/x/whatever"}})


def test_bedrock_model_ids_config_defaults_to_the_region_and_refuses_empty() -> None:
    aws = {"enabled": True, "deployerCidrs": ["203.0.113.0/24"]}
    assert parse({**BASE, "aws": aws}).aws.bedrock_model_ids == ["*"]
    with pytest.raises(ConfigError, match=re.escape("ai-gateway:aws.bedrockModelIds")):
        parse({**BASE, "aws": {**aws, "bedrockModelIds": []}})


def test_build_image_config_defaults_off() -> None:
    gateway = parse({**BASE, "aws": {"enabled": True, "deployerCidrs": ["203.0.113.0/24"]}})
    assert gateway.gateway.build_image is False
    assert gateway.gateway.registry_keep_images == 30
    with pytest.raises(ConfigError, match=re.escape("ai-gateway:gateway.registryKeepImages")):
        parse(
            {
                **BASE,
                "aws": {"enabled": True, "deployerCidrs": ["203.0.113.0/24"]},
                "gateway": {"registryKeepImages": 0},
            }
        )


# ---------------------------------------------------------------------- GCP


def test_workload_identity_member_names_one_kubernetes_service_account() -> None:
    assert (
        workload_identity_member("p.svc.id.goog", "ai-gateway", "ai-gateway")
        == "serviceAccount:p.svc.id.goog[ai-gateway/ai-gateway]"
    )
    with pytest.raises(ValueError, match=re.escape("svc.id.goog")):
        workload_identity_member("p", "ai-gateway", "ai-gateway")


# ----------------------------------------------------------------- aigw plan


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if re.fullmatch(r"\S+ \(\d+ resources\)", line):
            current = line.split(" ", 1)[0]
            sections[current] = []
        elif current and line.startswith("  ") and not line.startswith("    "):
            sections[current].append(line.strip())
    return sections


def test_plan_shows_each_gateway_under_its_cloud_and_the_global_layer_apart(
    plans: dict[str, Plan],
) -> None:
    for stack, plan in plans.items():
        sections = _sections(render_plan(plan))
        for cloud in plan.outputs["enabledClouds"]:
            components = sections[cloud]
            assert f"ai-gateway:k8s:GatewayDeployment gateway-{cloud}" in components, stack
            assert f"ai-gateway:k8s:ClusterEdge gateway-{cloud}-edge" in components
            assert any(
                c.startswith(f"ai-gateway:{cloud}:GatewayIdentity ") for c in sections[cloud]
            )
        assert "ai-gateway:global:DnsZone global-dns" in sections["global"]
        assert "ai-gateway:global:Route53GlobalEndpoint global" in sections["global"]


# ------------------------------------------------------- zone first, configured zone

ZONE_FIRST = Path(__file__).parents[1] / "fixtures" / "zone_first_program" / "__main__.py"


def test_a_configured_zone_is_used_by_solvers_and_records_without_creating_one() -> None:
    existing = "Z0EXISTING1234567"
    plan = record(
        "dev",
        project_dir=ROOT,
        program=ZONE_FIRST,
        config={"ai-gateway:dns": {"domain": "ai.example.com", "hostedZoneId": existing}},
    )
    assert plan.of_type("aws:route53/zone:Zone") == []
    assert plan.outputs["dnsZoneId"] == existing
    assert plan.outputs["dnsNameServers"] == []
    assert {r.get("zoneId") for r in plan.of_type("aws:route53/record:Record")} == {existing}
    policies = plan.of_type("aws:iam/rolePolicy:RolePolicy")
    assert len(policies) == 3
    for policy in policies:
        assert f"hostedzone/{existing}" in policy.get("policy")
    # One IAM provider and region for the whole layer: the zone's us-east-1 provider.
    providers = plan.of_type("pulumi:providers:aws")
    assert [p.get("region") for p in providers] == ["us-east-1"]
