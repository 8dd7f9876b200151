"""Cloud provider rules as data, checked on every stack's plan; each row cites its source.

Mocks accept any version string and any IAM policy; the clouds do not. Each
rule here is a fact from the provider's documentation that a first
``pulumi up`` (or the first request after it) depends on.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase

import pytest

from infra.aws.identity import BEDROCK_INVOKE_ACTIONS, bedrock_invoke_policy
from infra.offline import Plan
from tests.infra.conftest import STACKS

# ------------------------------------------------------------------ version pins

VERSION_PINS = [
    # (type, input, pattern, why; source)
    (
        "aws:rds/instance:Instance",
        "engineVersion",
        r"\d+",
        # Pulumi AWS registry, rds.Instance engineVersion: "If autoMinorVersionUpgrade is
        # enabled, you can provide a prefix of the version such as 8.0 (for 8.0.36). The
        # actual engine version used is returned in the attribute engineVersionActual";
        # RDS deprecates minors ("Amazon RDS for PostgreSQL versions and extensions").
        "RDS creates only current minors and upgrades them itself: major only",
    ),
    (
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "engineVersion",
        r"\d+\.\d+",
        # Pulumi AWS registry, elasticache.ReplicationGroup engineVersion: "When the version
        # is 7 or higher, the major and minor version should be set, e.g., 7.2".
        "ElastiCache 7+ takes major.minor and manages the patch level",
    ),
    (
        "azure-native:dbforpostgresql:Server",
        "version",
        r"\d+",
        # Azure Database for PostgreSQL flexible server: "Minor versions are automatically
        # upgraded during the scheduled maintenance window" ("Supported versions").
        "Flexible Server takes a major and patches minors in maintenance",
    ),
    (
        "gcp:sql/databaseInstance:DatabaseInstance",
        "databaseVersion",
        r"POSTGRES_\d+",
        # Cloud SQL "Database versions and version policies": minor versions are applied
        # by maintenance; databaseVersion names the major.
        "Cloud SQL takes a major",
    ),
    (
        "gcp:redis/instance:Instance",
        "redisVersion",
        r"REDIS_\d+_\d+",
        # Memorystore for Redis "Supported versions": REDIS_7_2 etc.; patches by maintenance.
        "Memorystore takes major_minor",
    ),
    (
        "aws:eks/cluster:Cluster",
        "version",
        r"1\.\d+",
        # EKS "Kubernetes versions": EKS applies patch releases to the control plane itself.
        "EKS takes a Kubernetes minor",
    ),
    (
        "azure-native:containerservice:ManagedCluster",
        "kubernetesVersion",
        r"1\.\d+",
        # AKS "Supported Kubernetes versions": "When you deploy with <major.minor>, the
        # latest GA patch is chosen"; the patch upgrade channel keeps it current.
        "AKS takes a minor; the patch channel moves patches",
    ),
    (
        "azure-native:containerservice:AgentPool",
        "orchestratorVersion",
        r"1\.\d+",
        "AKS node pools follow the same rule",
    ),
    (
        "gcp:container/cluster:Cluster",
        "minMasterVersion",
        r"1\.\d+",
        # GKE release channels move patch versions; a pinned patch would fall off the channel.
        "GKE takes a minor under a release channel",
    ),
]


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest, plans: dict[str, Plan]) -> Plan:
    return plans[request.param]


@pytest.mark.parametrize(("token", "key", "pattern", "why"), VERSION_PINS)
def test_versions_are_pinned_only_as_far_as_the_service_keeps_them(
    plan: Plan, token: str, key: str, pattern: str, why: str
) -> None:
    resources = plan.of_type(token)
    assert resources, f"no {token} in the {plan.stack} plan"
    for resource in resources:
        assert re.fullmatch(pattern, str(resource.get(key))), (resource.name, why)


def test_eks_addons_take_the_version_eks_picks_for_the_cluster(plan: Plan) -> None:
    """EKS "Amazon EKS add-ons": without addonVersion EKS installs the default version for
    the cluster's Kubernetes version (a pinned add-on version breaks the next upgrade)."""
    addons = {a.get("addonName"): a for a in plan.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {
        "vpc-cni",
        "kube-proxy",
        "eks-pod-identity-agent",
        "coredns",
        "metrics-server",
    }
    for addon in addons.values():
        assert addon.get("addonVersion") is None
    # NetworkPolicy is enforced only with the VPC CNI's policy agent on ("Limit Pod traffic
    # with Kubernetes network policies", EKS user guide).
    assert json.loads(addons["vpc-cni"].get("configurationValues")) == {
        "enableNetworkPolicy": "true"
    }


def test_minor_pins_are_refused_by_the_config() -> None:
    from infra.config import ConfigError, parse

    base = {
        "environment": "dev",
        "tags": {"owner": "platform", "costCenter": "cc-1"},
        "dns": {"domain": "ai.example.com"},
    }
    aws = {"enabled": True, "deployerCidrs": ["203.0.113.0/24"]}
    with pytest.raises(ConfigError, match=re.escape("ai-gateway:aws.postgresVersion: 16.4")):
        parse({**base, "aws": {**aws, "postgresVersion": "16.4"}})
    assert parse({**base, "aws": aws}).aws.postgres_version == "16"


# ------------------------------------------------------------------------ Bedrock

BEDROCK_DESTINATIONS = {
    # "Supported Regions and models for inference profiles" (Amazon Bedrock user guide):
    # the destination regions of the geographic system profiles; "The destination
    # Regions for Global cross-Region inference profiles include all commercial Regions"
    # and global profiles also need the region-less foundation-model ARN ("Global
    # cross-Region inference", IAM policy requirements).
    "us": ("us-east-1", "us-east-2", "us-west-1", "us-west-2"),
    "eu": (
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
    ),
    "apac": (
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-4",
    ),
    "global": (
        "",
        "us-east-1",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-northeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "sa-east-1",
    ),
}
SOURCE_GEOGRAPHY = {"us-east-1": "us", "eu-west-1": "eu", "ap-southeast-1": "apac"}
MODELS = ("anthropic.claude-sonnet-4-5-20250929-v1:0", "amazon.nova-pro-v1:0")


def _allows(policy: dict, action: str, arn: str, profile: str | None) -> bool:
    """IAM evaluation of one Allow (wildcards as IAM matches them), with the profile context."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or action not in statement["Action"]:
            continue
        if not any(fnmatchcase(arn, pattern) for pattern in statement["Resource"]):
            continue
        condition = statement.get("Condition", {}).get("StringLike", {})
        wanted = condition.get("bedrock:InferenceProfileArn")
        if wanted is not None and not (profile and any(fnmatchcase(profile, p) for p in wanted)):
            continue
        return True
    return False


def _check_bedrock(policy: dict, region: str, account: str, model: str) -> None:
    geographies = [SOURCE_GEOGRAPHY[region], "global"] if region in SOURCE_GEOGRAPHY else ["global"]
    for action in BEDROCK_INVOKE_ACTIONS:
        # On-demand in the home region.
        assert _allows(policy, action, f"arn:aws:bedrock:{region}::foundation-model/{model}", None)
        for geography in geographies:
            profile = f"arn:aws:bedrock:{region}:{account}:inference-profile/{geography}.{model}"
            assert _allows(policy, action, profile, None), profile
            for destination in BEDROCK_DESTINATIONS[geography]:
                arn = f"arn:aws:bedrock:{destination}::foundation-model/{model}"
                assert _allows(policy, action, arn, profile), (profile, arn)
                # ... but only through the profile, never called directly elsewhere.
                if destination != region:
                    assert not _allows(policy, action, arn, None), arn
        for other in {"us", "eu", "apac"} - set(geographies):
            profile = f"arn:aws:bedrock:{region}:{account}:inference-profile/{other}.{model}"
            assert not _allows(policy, action, profile, None), profile


def test_the_gateway_role_covers_every_inference_profile_form_on_every_stack(plan: Plan) -> None:
    (policy_resource,) = [
        r
        for r in plan.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.get("name") == "invoke-bedrock-models"
    ]
    policy = json.loads(policy_resource.get("policy"))
    (profiles,) = [s for s in policy["Statement"] if s["Sid"] == "InvokeInferenceProfiles"]
    region, account = profiles["Resource"][0].split(":")[3:5]
    for model in MODELS:
        _check_bedrock(policy, region, account, model)


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-1", "sa-east-1"])
def test_bedrock_policy_per_source_region(region: str) -> None:
    policy = bedrock_invoke_policy(
        "aws", region, "123456789012", ["anthropic.claude-*", "amazon.nova-*"]
    )
    for model in MODELS:
        _check_bedrock(policy, region, "123456789012", model)
    # A model outside the configured patterns is never allowed, in any form.
    other = "meta.llama3-70b-instruct-v1:0"
    assert not _allows(
        policy, "bedrock:InvokeModel", f"arn:aws:bedrock:{region}::foundation-model/{other}", None
    )


# ------------------------------------------------------------------------ GCP


def test_gke_nodes_can_pull_from_artifact_registry(plan: Plan) -> None:
    """Artifact Registry "Configure access control" / "Pulling images to GKE": nodes with
    custom scopes need devstorage.read_only (or cloud-platform) besides the reader role."""
    for token in ("gcp:container/cluster:Cluster", "gcp:container/nodePool:NodePool"):
        for resource in plan.of_type(token):
            scopes = resource.get("nodeConfig.oauthScopes")
            assert "https://www.googleapis.com/auth/devstorage.read_only" in scopes


CIS_CLOUD_SQL_POSTGRES_FLAGS = {
    # CIS Google Cloud Platform Foundation Benchmark v3.0.0, 6.2.1-6.2.8.
    "log_error_verbosity": {"default", "terse"},
    "log_connections": {"on"},
    "log_disconnections": {"on"},
    "log_statement": {"ddl"},
    "log_min_messages": {"warning", "error", "log", "fatal", "panic"},
    "log_min_error_statement": {"error", "log", "fatal", "panic"},
    "log_min_duration_statement": {"-1"},
    "cloudsql.enable_pgaudit": {"on"},
}


def test_cloud_sql_sets_the_cis_logging_flags_and_pgaudit(plan: Plan) -> None:
    sql = plan.one("gcp:sql/databaseInstance:DatabaseInstance")
    flags = {f["name"]: f["value"] for f in sql.get("settings.databaseFlags")}
    for flag, allowed in CIS_CLOUD_SQL_POSTGRES_FLAGS.items():
        assert flags.get(flag) in allowed, flag
    assert "ddl" in flags["pgaudit.log"] and "role" in flags["pgaudit.log"]
