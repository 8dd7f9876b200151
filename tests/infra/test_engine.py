"""The offline engine: runs a program under mocks and records every resource faithfully."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.offline import Plan, Secret, record
from infra.offline.engine import SECRET_MARKER, ProgramError, mask, reveal, unknown_paths
from infra.offline.stackfile import StackFileError, read_stack_file
from tests.infra.conftest import FIXTURES, ROOT

EXPECTED_FIXTURE_TYPES = {
    "ai-gateway:test:Fixture",
    "pulumi:providers:aws",
    "pulumi:providers:azure-native",
    "pulumi:providers:gcp",
    "random:index/randomPassword:RandomPassword",
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/route:Route",
    "aws:secretsmanager/secret:Secret",
    "aws:secretsmanager/secretVersion:SecretVersion",
    "azure-native:resources:ResourceGroup",
    "azure-native:network:VirtualNetwork",
    "azure-native:network:Subnet",
    "gcp:compute/network:Network",
    "gcp:compute/subnetwork:Subnetwork",
    "gcp:storage/bucket:Bucket",
    "gcp:sql/databaseInstance:DatabaseInstance",
}


def test_records_every_registered_resource(fixture_plan: Plan) -> None:
    assert {r.type for r in fixture_plan.resources} == EXPECTED_FIXTURE_TYPES
    assert len(fixture_plan.resources) == len(EXPECTED_FIXTURE_TYPES)


def test_records_parent_and_provider(fixture_plan: Plan) -> None:
    component = fixture_plan.one("ai-gateway:test:Fixture")
    assert component.parent == fixture_plan.stack_urn
    assert not component.custom
    vpc = fixture_plan.one("aws:ec2/vpc:Vpc")
    assert vpc.parent == component.urn
    aws_provider = fixture_plan.one("pulumi:providers:aws")
    assert vpc.provider is not None and vpc.provider.startswith(aws_provider.urn + "::")
    rg = fixture_plan.one("azure-native:resources:ResourceGroup")
    assert rg.provider is not None and rg.provider.startswith(
        fixture_plan.one("pulumi:providers:azure-native").urn
    )


def test_inputs_are_resolved_through_apply_and_data_sources(fixture_plan: Plan) -> None:
    vpc = fixture_plan.one("aws:ec2/vpc:Vpc")
    subnet = fixture_plan.one("aws:ec2/subnet:Subnet")
    assert subnet.inputs["vpcId"] == vpc.id and vpc.id.startswith("vpc-")
    # The AZ came from getAvailabilityZones, answered for the provider's region.
    assert subnet.inputs["availabilityZone"] == "eu-west-1a"
    assert vpc.urn in subnet.dependencies
    for resource in fixture_plan.resources:
        assert unknown_paths(resource.inputs) == [], resource.name


def test_secret_inputs_stay_marked_secret(fixture_plan: Plan) -> None:
    version = fixture_plan.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert isinstance(version.inputs["secretString"], Secret)
    assert len(reveal(version.inputs["secretString"])) == 24
    assert version.to_json()["inputs"]["secretString"] == SECRET_MARKER
    assert repr(version.inputs["secretString"]) == "Secret([secret])"
    component = fixture_plan.one("ai-gateway:test:Fixture")
    assert isinstance(component.outputs["password"], Secret)


def test_stack_exports_are_recorded(fixture_plan: Plan) -> None:
    vpc = fixture_plan.one("aws:ec2/vpc:Vpc")
    assert fixture_plan.outputs["vpcArn"] == f"arn:aws:ec2:eu-west-1:123456789012:vpc/{vpc.id}"
    assert fixture_plan.outputs["subnetZone"] == "eu-west-1a"


def test_json_form_has_the_documented_fields(fixture_plan: Plan) -> None:
    data = json.loads(json.dumps(fixture_plan.to_json()))
    assert {"type", "name", "parent", "provider", "inputs"} <= set(data[0])
    assert "cidrBlock" in next(d for d in data if d["type"] == "aws:ec2/vpc:Vpc")["inputs"]


def test_unknown_detection_finds_nested_unknowns() -> None:
    from pulumi.runtime import rpc

    value = {"a": [1, {"b": rpc.UNKNOWN}], "c": Secret(rpc.UNKNOWN)}
    assert unknown_paths(value) == ["a[1].b", "c"]


def test_mask_and_reveal() -> None:
    value = {"k": [Secret("s3cr3t")], "n": 1}
    assert mask(value) == {"k": [SECRET_MARKER], "n": 1}
    assert reveal(value) == {"k": ["s3cr3t"], "n": 1}


def test_a_data_source_without_a_fake_is_an_error(tmp_path: Path) -> None:
    program = tmp_path / "__main__.py"
    program.write_text("import pulumi_aws as aws\naws.ec2.get_vpc(default=True)\n")
    with pytest.raises(ProgramError, match="aws:ec2/getVpc:getVpc"):
        record("dev", project_dir=ROOT, program=program)


def test_config_errors_surface_with_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(
        (ROOT / "Pulumi.dev.yaml")
        .read_text()
        .replace("vpcCidr: 10.10.0.0/16", "vpcCidr: 10.10.0.0/99")
    )
    with pytest.raises(
        ProgramError, match=r"ai-gateway:aws.vpcCidr: '10.10.0.0/99' is not a valid CIDR"
    ):
        record("bad", project_dir=ROOT, stack_file=bad)


def test_secure_values_become_secret_placeholders(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text(
        "config:\n  ai-gateway:gateway:\n    image: x\n  ai-gateway:openaiKey:\n    secure: v1:AAAA\n"
    )
    file = read_stack_file(stack)
    assert file.secret_keys == ["ai-gateway:openaiKey"]
    assert file.values["ai-gateway:openaiKey"] == "offline-placeholder-for-ai-gateway:openaiKey"
    assert json.loads(file.values["ai-gateway:gateway"]) == {"image": "x"}


def test_stack_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match="does not exist"):
        read_stack_file(tmp_path / "Pulumi.none.yaml")
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text("config:\n  environment: dev\n")
    with pytest.raises(StackFileError, match="has no namespace"):
        read_stack_file(broken)


def test_runs_are_independent() -> None:
    first = record("dev", project_dir=ROOT, program=FIXTURES / "tagged_program" / "__main__.py")
    second = record("prod", project_dir=ROOT, program=FIXTURES / "tagged_program" / "__main__.py")
    assert len(first.resources) == len(second.resources)
    assert second.one("aws:ec2/vpc:Vpc").inputs["tags"]["environment"] == "prod"
    assert first.one("aws:ec2/vpc:Vpc").inputs["tags"]["environment"] == "dev"


def test_the_collector_runs_less_often_only_while_the_program_runs(tmp_path: Path) -> None:
    import gc

    from infra.offline.engine import PLAN_GC_THRESHOLD

    program = tmp_path / "__main__.py"
    program.write_text("import gc\nimport pulumi\npulumi.export('gen0', gc.get_threshold()[0])\n")
    ambient = gc.get_threshold()  # (a gateway app started in this process may have set it)
    gc.set_threshold(700, 10, 10)  # Python's default
    try:
        before = gc.get_threshold()
        plan = record("dev", project_dir=ROOT, program=program)
        assert plan.outputs["gen0"] == PLAN_GC_THRESHOLD > before[0]
        assert gc.get_threshold() == before
        with pytest.raises(ProgramError):
            record("dev", project_dir=ROOT, program=tmp_path / "missing.py")
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*ambient)


def test_a_caller_that_ran_asyncio_run_before_can_plan() -> None:
    """``asyncio.run`` leaves its thread with no current loop, and the SDK asks for one while
    resources register: the engine gives the thread a loop (the docs' how-to tests plan
    in-process after gateway tests that ran ``asyncio.run``)."""
    import asyncio

    asyncio.run(asyncio.sleep(0))
    plan = record("dev", project_dir=ROOT, program=FIXTURES / "tagged_program" / "__main__.py")
    assert {r.type for r in plan.resources} == EXPECTED_FIXTURE_TYPES
