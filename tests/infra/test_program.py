"""Invariants of the whole program, over every stack file's recorded plan."""

from __future__ import annotations

import pytest

from infra.offline import Plan
from tests.infra.conftest import ROOT

STACKS = ["dev", "staging", "prod"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_belongs_to_a_component(plans: dict[str, Plan], stack: str) -> None:
    # parent=self everywhere: only components sit directly under the stack.
    plan = plans[stack]
    loose = [
        f"{r.type} {r.name}" for r in plan.resources if r.parent == plan.stack_urn and r.custom
    ]
    assert loose == []
    assert all(
        r.type.startswith("ai-gateway:") for r in plan.resources if r.parent == plan.stack_urn
    )


@pytest.mark.parametrize("stack", STACKS)
def test_no_resource_uses_a_default_provider(plans: dict[str, Plan], stack: str) -> None:
    # Ambient credentials and regions must never decide where a resource goes.
    plan = plans[stack]
    defaults = [
        f"{r.type} {r.name}" for r in plan.resources if r.provider and "::default" in r.provider
    ]
    assert defaults == []


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_disable_default_providers(stack: str) -> None:
    import yaml

    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert config["pulumi:disable-default-providers"] == ["*"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_enabled_cloud_has_its_footprint(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    for cloud in plan.outputs["enabledClouds"]:
        assert plan.of_type(f"ai-gateway:{cloud}:Footprint"), cloud
