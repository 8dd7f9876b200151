"""Image and registries: published by default, or built and pushed to each cloud's registry.

The stack files run the published image (checked on the session ``plans``);
``build_plan`` records the dev stack once more with ``gateway.buildImage`` on.
"""

from __future__ import annotations

import json

import pytest
import yaml

from infra.aws.registry import lifecycle_policy
from infra.azure.registry import ACR_PULL_ROLE, ip_rules, registry_network
from infra.config import Environment, GatewayConfig
from infra.gcp.registry import READER_ROLE, cleanup_policies
from infra.image import DOCKERFILE, image_tag
from infra.offline import Plan, RecordedResource, Secret, record
from infra.offline.engine import reveal
from tests.infra.conftest import ROOT
from tests.infra.integration.leaks import assert_no_secret_leaks

IMAGE = "docker-build:index:Image"
ECR = "aws:ecr/repository:Repository"
ACR = "azure-native:containerregistry:Registry"
GAR = "gcp:artifactregistry/repository:Repository"
REGISTRY_TYPES = (IMAGE, ECR, ACR, GAR, "aws:ecr/lifecyclePolicy:LifecyclePolicy")
KEEP = GatewayConfig.model_fields["registry_keep_images"].default


@pytest.fixture(scope="module")
def build_plan() -> Plan:
    """The dev stack with ``gateway.buildImage: true``."""
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    gateway = {**stack["ai-gateway:gateway"], "buildImage": True}
    return record("dev", project_dir=ROOT, config={"ai-gateway:gateway": gateway})


def ancestors(plan: Plan, resource: RecordedResource) -> list[str]:
    return [a.type for a in plan.ancestors(resource)]


def deployment_image(plan: Plan, cloud: str) -> str:
    deployment = plan.one("kubernetes:apps/v1:Deployment", f"gateway-{cloud}-deployment")
    (container,) = deployment.get("spec.template.spec.containers")
    return container["image"]


# ------------------------------------------------------------------ published


def test_published_image_needs_no_registry_and_no_build(plans: dict[str, Plan]) -> None:
    for stack, plan in plans.items():
        assert not any(plan.of_type(t) for t in REGISTRY_TYPES), stack
        published = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"][
            "ai-gateway:gateway"
        ]["image"]
        for cloud in plan.outputs["enabledClouds"]:
            assert deployment_image(plan, cloud) == published


# ---------------------------------------------------------------------- build


def test_one_build_per_cloud_from_the_gateway_dockerfile(build_plan: Plan) -> None:
    images = {r.name: r for r in build_plan.of_type(IMAGE)}
    clouds = build_plan.outputs["enabledClouds"]
    assert set(images) == {f"ai-gateway-dev-{c}-image-build" for c in clouds}
    for cloud in clouds:
        image = images[f"ai-gateway-dev-{cloud}-image-build"]
        assert f"ai-gateway:{cloud}:GatewayImage" in ancestors(build_plan, image)
        assert f"ai-gateway:{cloud}:Footprint" in ancestors(build_plan, image)
        assert image.get("dockerfile.location") == DOCKERFILE
        assert image.get("context.location") == "."
        assert image.get("push") is True
        assert image.get("buildOnPreview") is False
        (tag,) = image.get("tags")
        assert tag.endswith(":0.1.0")
        # The pods run exactly what was pushed: the tag pinned by digest.
        ref = image.outputs["ref"]
        assert ref.startswith(f"{tag}@sha256:")
        assert deployment_image(build_plan, cloud) == ref


def test_push_credentials_are_secret(build_plan: Plan) -> None:
    with_credentials = set()
    for image in build_plan.of_type(IMAGE):
        registries = image.inputs.get("registries")
        if not reveal(registries):
            continue
        with_credentials.add(image.name)
        # The engine keeps the password secret (here the whole list holding it).
        passwords = (
            [reveal(registries)[0]["password"]]
            if isinstance(registries, Secret)
            else [r["password"] for r in registries]
        )
        assert isinstance(registries, Secret) or all(isinstance(p, Secret) for p in passwords)
        assert all(reveal(p) for p in passwords)
    # AWS and GCP push with short-lived tokens; Azure with the deployer's Entra login.
    assert with_credentials == {"ai-gateway-dev-aws-image-build", "ai-gateway-dev-gcp-image-build"}


def test_ecr_scans_on_push_keeps_tags_immutable_and_encrypts_with_the_footprint_key(
    build_plan: Plan,
) -> None:
    repository = build_plan.one(ECR)
    key = build_plan.one("aws:kms/key:Key", "ai-gateway-dev-aws-key")
    assert repository.get("imageTagMutability") == "IMMUTABLE"
    assert repository.get("imageScanningConfiguration.scanOnPush") is True
    assert repository.get("encryptionConfigurations") == [
        {"encryptionType": "KMS", "kmsKey": key.outputs["arn"]}
    ]
    assert "ai-gateway:aws:Footprint" in ancestors(build_plan, repository)
    provider = build_plan.by_urn(repository.provider.rsplit("::", 1)[0])
    assert provider.name == "ai-gateway-dev-aws-provider"
    lifecycle = build_plan.one("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert lifecycle.get("repository") == repository.outputs["name"]
    assert json.loads(lifecycle.get("policy")) == lifecycle_policy(KEEP)


def test_eks_nodes_may_only_read_from_ecr(build_plan: Plan) -> None:
    node_role = build_plan.one("aws:iam/role:Role", "ai-gateway-dev-aws-cluster-node-role")
    attached = {
        a.get("policyArn")
        for a in build_plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.get("role") == node_role.outputs["name"]
    }
    ecr = {arn for arn in attached if "ContainerRegistry" in arn}
    assert ecr == {"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"}
    for policy in build_plan.of_type("aws:iam/rolePolicy:RolePolicy"):
        if policy.get("role") in (node_role.outputs["name"], node_role.id):
            assert "ecr:" not in policy.get("policy")


def test_acr_has_no_admin_user_and_only_the_kubelet_may_pull(build_plan: Plan) -> None:
    registry = build_plan.one(ACR)
    assert registry.get("adminUserEnabled") is False
    assert registry.get("anonymousPullEnabled") is False
    assert registry.get("sku.name") == "Standard"  # dev: no firewall below Premium
    assert registry.get("networkRuleSet") is None
    grants = [
        r
        for r in build_plan.of_type("azure-native:authorization:RoleAssignment")
        if r.get("scope") == registry.id
    ]
    assert len(grants) == 1
    (grant,) = grants
    aks = build_plan.one("azure-native:containerservice:ManagedCluster")
    kubelet = aks.outputs["identityProfile"]["kubeletidentity"]["objectId"]
    assert grant.get("principalId") == kubelet
    assert grant.get("roleDefinitionId").endswith(f"/roleDefinitions/{ACR_PULL_ROLE}")


def test_prod_acr_is_premium_behind_a_deny_by_default_firewall() -> None:
    prod, dev = registry_network(Environment.PROD), registry_network(Environment.DEV)
    assert (prod.sku, prod.default_action) == ("Premium", "Deny")
    assert (dev.sku, dev.default_action) == ("Standard", None)
    rules = ip_rules(["203.0.113.0/24", "20.1.2.3/32"])
    assert [(r.i_p_address_or_range, r.action) for r in rules] == [
        ("203.0.113.0/24", "Allow"),
        ("20.1.2.3", "Allow"),
    ]


def test_artifact_registry_is_immutable_cleaned_up_and_read_by_the_nodes_only(
    build_plan: Plan,
) -> None:
    repository = build_plan.one(GAR)
    assert repository.get("format") == "DOCKER"
    assert repository.get("dockerConfig.immutableTags") is True
    assert repository.get("cleanupPolicyDryRun") is False
    policies = {p["id"]: p for p in repository.get("cleanupPolicies")}
    assert policies["keep-newest"]["action"] == "KEEP"
    assert policies["keep-newest"]["mostRecentVersions"]["keepCount"] == KEEP
    assert policies["delete-untagged"]["condition"]["tagState"] == "UNTAGGED"
    members = build_plan.of_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    assert len(members) == 1
    (member,) = members
    nodes = build_plan.one("gcp:serviceaccount/account:Account", "nodes")
    assert member.get("role") == READER_ROLE
    assert member.get("member") == f"serviceAccount:{nodes.outputs['email']}"
    assert member.get("repository") == repository.outputs["name"]


# ------------------------------------------------------------- pure decisions


@pytest.mark.parametrize(
    ("reference", "tag"),
    [
        ("ghcr.io/acme/ai-gateway:0.1.0", "0.1.0"),
        ("registry:5000/team/gateway:v2.3", "v2.3"),
        ("ghcr.io/acme/ai-gateway:1.0@sha256:" + "a" * 64, "1.0"),
    ],
)
def test_image_tag_comes_from_the_published_reference(reference: str, tag: str) -> None:
    assert image_tag(reference) == tag


@pytest.mark.parametrize(
    "reference",
    [
        "ghcr.io/acme/ai-gateway",
        "registry:5000/gateway",
        "ghcr.io/acme/ai-gateway@sha256:" + "a" * 64,
        "ghcr.io/acme/ai-gateway:latest",
    ],
)
def test_image_tag_refuses_references_an_immutable_registry_cannot_take(reference: str) -> None:
    with pytest.raises(ValueError, match=r"ai-gateway:gateway\.image"):
        image_tag(reference)


def test_retention_must_keep_the_running_image() -> None:
    with pytest.raises(ValueError, match="registryKeepImages"):
        lifecycle_policy(0)
    with pytest.raises(ValueError, match="registryKeepImages"):
        cleanup_policies(0)
    rules = lifecycle_policy(5)["rules"]
    assert rules[-1]["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 5,
    }


def test_build_plan_keeps_secrets_out_of_config_maps_and_exports(build_plan: Plan) -> None:
    assert_no_secret_leaks(build_plan)
