"""The tag set and its transform: pure rules, the fixture program, every stack file."""

from __future__ import annotations

import pytest

from infra import tags
from infra.config import parse
from infra.offline import Plan

CONFIG = parse(
    {
        "environment": "dev",
        "tags": {
            "owner": "Platform Team",
            "costCenter": "CC-4711",
            "extra": {"Data Class": "internal"},
        },
        "dns": {"domain": "ai.example.com"},
        "aws": {"enabled": True},
    }
)


def test_required_tags_come_from_config() -> None:
    assert tags.required_tags(CONFIG) == {
        "Data Class": "internal",
        "environment": "dev",
        "owner": "Platform Team",
        "cost-center": "CC-4711",
        "managed-by": "pulumi",
        "project": "ai-gateway",
    }


def test_extra_tags_cannot_override_required_ones() -> None:
    config = CONFIG.model_copy(
        update={"tags": CONFIG.tags.model_copy(update={"extra": {"environment": "prod"}})}
    )
    assert tags.required_tags(config)["environment"] == "dev"


@pytest.mark.parametrize(
    ("key", "value", "label_key", "label_value"),
    [
        ("Cost-Center", "CC 4711", "cost-center", "cc-4711"),
        ("owner", "Ana.Lopez@Example.com", "owner", "ana-lopez-example-com"),
        ("9lives", "x", "k9lives", "x"),
        ("k" * 80, "v" * 80, "k" * 63, "v" * 63),
        ("", "", "k", ""),
    ],
)
def test_gcp_labels_are_sanitised_not_rejected(
    key: str, value: str, label_key: str, label_value: str
) -> None:
    assert tags.gcp_labels({key: value}) == {label_key: label_value}


@pytest.mark.parametrize(
    ("type_token", "path"),
    [
        ("aws:ec2/vpc:Vpc", ("tags",)),
        ("aws:rds/instance:Instance", ("tags",)),
        ("aws:ec2/route:Route", None),
        ("aws:autoscaling/group:Group", None),  # list-shaped tags
        ("azure-native:network:VirtualNetwork", ("tags",)),
        ("azure-native:network:Subnet", None),
        ("gcp:redis/instance:Instance", ("labels",)),
        ("gcp:compute/network:Network", None),
        ("gcp:container/cluster:Cluster", ("resourceLabels",)),
        ("gcp:sql/databaseInstance:DatabaseInstance", ("settings", "userLabels")),
        ("kubernetes:core/v1:Namespace", None),
        ("random:index/randomPassword:RandomPassword", None),
    ],
)
def test_tag_path_is_read_from_the_sdk(type_token: str, path: tuple[str, ...] | None) -> None:
    assert tags.tag_path(type_token) == path


def test_apply_tags_merges_and_required_keys_win() -> None:
    props = {"cidrBlock": "10.0.0.0/16", "tags": {"Name": "vpc", "owner": "someone"}}
    result = tags.apply_tags("aws:ec2/vpc:Vpc", props, {"owner": "platform", "project": "p"})
    assert result == {
        "cidrBlock": "10.0.0.0/16",
        "tags": {"Name": "vpc", "owner": "platform", "project": "p"},
    }
    assert props["tags"]["owner"] == "someone"  # input untouched


def test_apply_tags_leaves_untaggable_types_alone() -> None:
    assert tags.apply_tags("aws:ec2/route:Route", {"routeTableId": "r"}, {"owner": "x"}) is None


def test_apply_tags_skips_a_missing_nested_parent() -> None:
    assert (
        tags.apply_tags("gcp:container/nodePool:NodePool", {"cluster": "c"}, {"owner": "x"}) is None
    )


def _assert_tagged(plan: Plan, required: dict[str, str]) -> int:
    checked = 0
    for resource in plan.resources:
        if not resource.custom or tags.tag_path(resource.type) is None:
            continue
        carried = tags.carried_tags(resource.type, resource.inputs)
        if carried is None and len(tags.tag_path(resource.type) or ()) > 1:
            continue  # nested parent absent: nothing to label (checked by the policy pack)
        expected = tags.gcp_labels(required) if resource.type.startswith("gcp:") else required
        assert carried is not None, f"{resource.type} {resource.name} carries no tags"
        missing = {k: v for k, v in expected.items() if carried.get(k) != v}
        assert not missing, f"{resource.type} {resource.name} lacks {missing}"
        checked += 1
    return checked


def test_fixture_program_is_tagged_on_all_three_clouds(fixture_plan: Plan) -> None:
    from infra.offline.stackfile import read_stack_file
    from tests.infra.conftest import ROOT

    config = parse(
        {
            k.split(":", 1)[1]: v
            for k, v in read_stack_file(ROOT / "Pulumi.dev.yaml").values.items()
            if k.startswith("ai-gateway:")
        }
    )
    required = tags.required_tags(config)
    assert _assert_tagged(fixture_plan, required) >= 7
    tagged_clouds = {
        r.package for r in fixture_plan.resources if tags.carried_tags(r.type, r.inputs)
    }
    assert tagged_clouds == {"aws", "azure-native", "gcp"}
    # The resource's own tags survive; its clashing `owner` does not.
    vpc = fixture_plan.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["tags"]["Name"] == "fixture"
    assert vpc.inputs["tags"]["owner"] == "platform-team"
    # GCP: the resource's own invalid labels are sanitised, required labels added.
    bucket = fixture_plan.one("gcp:storage/bucket:Bucket")
    assert bucket.inputs["labels"]["team"] == "data-platform"
    sql = fixture_plan.one("gcp:sql/databaseInstance:DatabaseInstance")
    assert sql.get("settings.userLabels.cost-center") == "cc-4711"
    # Untaggable resources are not given a tags property the provider would reject.
    for token in (
        "aws:ec2/route:Route",
        "azure-native:network:Subnet",
        "gcp:compute/network:Network",
    ):
        resource = fixture_plan.one(token)
        assert "tags" not in resource.inputs and "labels" not in resource.inputs


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_taggable_resource_of_every_stack_is_tagged(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    environment = plan.outputs["environment"]
    assert environment == stack
    required = {
        "environment": stack,
        "owner": "platform-team",
        "cost-center": "cc-4711",
        "managed-by": "pulumi",
        "project": "ai-gateway",
    }
    assert _assert_tagged(plan, required) > 50
