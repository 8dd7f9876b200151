"""Helpers for the AWS footprint tests: the footprint's resources in each recorded plan."""

from __future__ import annotations

import pytest

from infra.offline import Plan, RecordedResource

STACKS = ("dev", "staging", "prod")


def aws_resources(plan: Plan) -> list[RecordedResource]:
    """Every AWS resource (custom, package ``aws``) the program registered."""
    return [r for r in plan.resources if r.custom and r.package == "aws"]


def child_of(plan: Plan, resource: RecordedResource, component_type: str) -> bool:
    """Whether ``resource`` sits (at any depth) under a component of ``component_type``."""
    return any(a.type == component_type for a in plan.ancestors(resource))


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    """Each stack file in turn."""
    return request.param
