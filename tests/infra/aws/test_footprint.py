"""The AWS footprint as a whole: component tree, explicit provider, tags and the contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra.cli import EXIT_ERROR, main
from infra.offline import Plan, Secret, record
from infra.offline.engine import reveal
from infra.tags import REQUIRED_KEYS
from tests.infra.aws.conftest import aws_resources, child_of
from tests.infra.conftest import ROOT

COMPONENTS = {
    "ai-gateway:aws:Network",
    "ai-gateway:aws:Cluster",
    "ai-gateway:aws:Redis",
    "ai-gateway:aws:Postgres",
    # What provisions the gateway's NLB (AWS Load Balancer Controller, own IRSA role).
    "ai-gateway:aws:LoadBalancerController",
    # What moves the node group between its bounds (item 8 of issue 19).
    "ai-gateway:aws:ClusterAutoscaler",
    # Added by the program beside the four: the gateway's identity and workload.
    "ai-gateway:aws:GatewayIdentity",
    # The migration Job's own role: reads the RDS-managed master secret, nothing else.
    "ai-gateway:aws:MigrationIdentity",
    "ai-gateway:k8s:GatewayDeployment",
}
EXTRAS = {
    "oidcProviderArn",
    "oidcIssuerUrl",
    "nodeRoleArn",
    "nodeRoleName",
    "kmsKeyArn",
    "vpcId",
    "privateSubnetIds",
    "clusterSecurityGroupId",
}


def _provider(plan: Plan):
    footprint = plan.one("ai-gateway:aws:Footprint")
    [provider] = [r for r in plan.children(footprint) if r.type == "pulumi:providers:aws"]
    return provider


def test_footprint_composes_the_four_components(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    footprint = plan.one("ai-gateway:aws:Footprint")
    assert footprint.parent == plan.stack_urn
    assert {r.type for r in plan.children(footprint) if not r.custom} == COMPONENTS


def test_every_aws_resource_descends_from_the_footprint(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    resources = aws_resources(plan)
    assert len(resources) > 40
    for resource in resources:
        assert child_of(plan, resource, "ai-gateway:aws:Footprint"), resource.name


def test_every_aws_resource_uses_the_explicit_provider(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    provider = _provider(plan)
    providers = [r.urn for r in aws_resources(plan) if r.type == "pulumi:providers:aws"]
    assert providers == [provider.urn]
    for resource in aws_resources(plan):
        if resource.urn == provider.urn:
            continue
        assert resource.provider is not None, resource.name
        assert resource.provider.startswith(provider.urn + "::"), resource.name
        assert "pulumi:providers:aws::default" not in resource.provider


def test_provider_region_and_default_tags_come_from_config(
    plans: dict[str, Plan], stack: str
) -> None:
    provider = _provider(plans[stack])
    assert provider.inputs["region"] == "us-east-1"
    default_tags = provider.inputs["defaultTags"]
    tags = (json.loads(default_tags) if isinstance(default_tags, str) else default_tags)["tags"]
    assert tags["environment"] == stack
    assert set(REQUIRED_KEYS) <= set(tags)


def test_every_taggable_aws_resource_carries_the_required_tags(
    plans: dict[str, Plan], stack: str
) -> None:
    from infra.tags import tag_path

    for resource in aws_resources(plans[stack]):
        if tag_path(resource.type) is None:
            continue
        tags = resource.get("tags") or {}
        assert set(REQUIRED_KEYS) <= set(tags), resource.name
        assert tags["environment"] == stack


def test_data_sources_are_answered_for_the_configured_region() -> None:
    # Only the explicit provider knows eu-west-1; the default provider would
    # answer for us-east-1, so these zone names prove the invokes use it.
    plan = record(
        "dev",
        project_dir=ROOT,
        config={
            "ai-gateway:aws": {
                "enabled": True,
                "region": "eu-west-1",
                "deployerCidrs": ["203.0.113.0/24"],
            }
        },
    )
    zones = {s.inputs["availabilityZone"] for s in plan.of_type("aws:ec2/subnet:Subnet")}
    assert zones == {"eu-west-1a", "eu-west-1b", "eu-west-1c"}
    cluster = plan.one("aws:eks/cluster:Cluster")
    assert ".gr7.eu-west-1.eks.amazonaws.com" in cluster.outputs["endpoint"]


def test_contract_outputs_are_secret_where_they_hold_credentials(
    plans: dict[str, Plan], stack: str
) -> None:
    outputs = plans[stack].one("ai-gateway:aws:Footprint").outputs
    for key in ("kubeconfig", "redisUrl", "postgresDsn"):
        assert isinstance(outputs[key], Secret), key
    assert set(outputs) >= EXTRAS


def test_extras_hold_real_looking_values(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    outputs = reveal(plan.one("ai-gateway:aws:Footprint").outputs)
    cluster = plan.one("aws:eks/cluster:Cluster")
    issuer = cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
    assert outputs["oidcIssuerUrl"] == issuer.removeprefix("https://")
    assert not outputs["oidcIssuerUrl"].startswith("https://")
    assert outputs["oidcProviderArn"] == (
        f"arn:aws:iam::123456789012:oidc-provider/{outputs['oidcIssuerUrl']}"
    )
    node_role = plan.one("aws:iam/role:Role", "ai-gateway-" + stack + "-aws-cluster-node-role")
    assert outputs["nodeRoleName"] == node_role.inputs["name"]
    assert outputs["nodeRoleArn"] == f"arn:aws:iam::123456789012:role/{outputs['nodeRoleName']}"
    assert outputs["kmsKeyArn"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert outputs["vpcId"] == plan.one("aws:ec2/vpc:Vpc").id
    private = [
        s.id
        for s in sorted(plan.of_type("aws:ec2/subnet:Subnet"), key=lambda s: s.name)
        if "-private-" in s.name
    ]
    assert outputs["privateSubnetIds"] == private and len(private) == 3
    assert (
        outputs["clusterSecurityGroupId"]
        == (cluster.outputs["vpcConfig"]["clusterSecurityGroupId"])
    )
    assert outputs["clusterSecurityGroupId"].startswith("sg-")


def test_kubeconfig_points_at_the_cluster_and_uses_get_token(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    cluster = plan.one("aws:eks/cluster:Cluster")
    kubeconfig = yaml.safe_load(reveal(plan.one("ai-gateway:aws:Footprint").outputs["kubeconfig"]))
    server = kubeconfig["clusters"][0]["cluster"]
    assert server["server"] == cluster.outputs["endpoint"]
    assert server["server"].endswith(".gr7.us-east-1.eks.amazonaws.com")
    assert server["certificate-authority-data"] == cluster.outputs["certificateAuthority"]["data"]
    exec_ = kubeconfig["users"][0]["user"]["exec"]
    assert exec_["command"] == "aws"
    assert exec_["args"][:4] == ["eks", "get-token", "--cluster-name", cluster.inputs["name"]]


def test_kube_provider_is_built_from_the_secret_kubeconfig(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    footprint = plan.one("ai-gateway:aws:Footprint")
    provider = plan.one("pulumi:providers:kubernetes", f"ai-gateway-{stack}-aws-k8s")
    assert provider.parent == footprint.urn
    assert isinstance(provider.inputs["kubeconfig"], Secret)
    assert reveal(provider.inputs["kubeconfig"]) == reveal(footprint.outputs["kubeconfig"])
    # It waits for the deployer's access entry, or the first deploy gets a 401.
    association = plan.one(
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        f"ai-gateway-{stack}-aws-cluster-deployer-admin",
    )
    assert association.urn in provider.dependencies


def test_connection_strings_are_secret_and_well_formed(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    outputs = plan.one("ai-gateway:aws:Footprint").outputs
    group = plan.one("aws:elasticache/replicationGroup:ReplicationGroup")
    token = reveal(
        plan.one(
            "random:index/randomPassword:RandomPassword", f"ai-gateway-{stack}-aws-redis-auth-token"
        ).outputs["result"]
    )
    assert reveal(outputs["redisUrl"]) == (
        f"rediss://:{token}@{group.outputs['primaryEndpointAddress']}:6379"
    )
    db = plan.one("aws:rds/instance:Instance")
    # The gateway connects as its own role; the master's password stays in Secrets Manager.
    dsn = reveal(outputs["postgresDsn"])
    assert dsn.startswith("postgresql://gateway_app:")
    assert dsn.endswith(f"@{db.outputs['address']}:5432/gateway?sslmode=require")
    assert outputs["postgresOwnerSecretArn"] == db.outputs["masterUserSecrets"][0]["secretArn"]
    assert db.outputs["address"].endswith(".us-east-1.rds.amazonaws.com")


def test_no_secret_reaches_the_stack_outputs_in_plain_text(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    secrets = [
        reveal(plan.one("ai-gateway:aws:Footprint").outputs[key])
        for key in ("kubeconfig", "redisUrl", "postgresDsn")
    ]
    exported = json.dumps(reveal(plan.outputs))
    assert not any(secret in exported for secret in secrets)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("vpcCidr", "10.0.0.0/8", "ai-gateway:aws.vpcCidr: 10.0.0.0/8 cannot hold 3 AZs"),
        ("logRetentionDays", 10, "ai-gateway:aws.logRetentionDays: 10 is not a CloudWatch"),
        ("redisEngine", "memcached", "ai-gateway:aws.redisEngine: memcached is not allowed"),
    ],
)
def test_bad_aws_config_exits_two_naming_the_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: object,
    message: str,
) -> None:
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(
        (ROOT / "Pulumi.dev.yaml")
        .read_text()
        .replace("    vpcCidr: 10.10.0.0/16\n", f"    vpcCidr: 10.10.0.0/16\n    {key}: {value}\n")
        if key != "vpcCidr"
        else (ROOT / "Pulumi.dev.yaml").read_text().replace("10.10.0.0/16", str(value))
    )
    code = main(
        ["plan", "--stack", "dev", "--stack-file", str(stack_file), "--project-dir", str(ROOT)]
    )
    assert code == EXIT_ERROR
    assert message in capsys.readouterr().err
