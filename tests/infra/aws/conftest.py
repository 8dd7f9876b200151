"""Helpers for the AWS footprint tests: the footprint's resources in each recorded plan."""

from __future__ import annotations

import pytest

from infra.offline import Plan, RecordedResource

STACKS = ("dev", "staging", "prod")


def aws_resources(plan: Plan) -> list[RecordedResource]:
    """Every AWS resource (custom, package ``aws``) of the AWS cloud.

    The global layer (Route 53 zone, records, health checks, certificate
    solver roles) is AWS too but serves every cloud on its own us-east-1
    provider; its tests live with it.
    """
    return [
        r
        for r in plan.resources
        if (r.custom and r.package == "aws") or r.type == "pulumi:providers:aws"
        if not any(a.type.startswith("ai-gateway:global:") for a in plan.ancestors(r))
    ]


def child_of(plan: Plan, resource: RecordedResource, component_type: str) -> bool:
    """Whether ``resource`` sits (at any depth) under a component of ``component_type``."""
    return any(a.type == component_type for a in plan.ancestors(resource))


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    """Each stack file in turn."""
    return request.param


def footprint_key(plan: Plan) -> RecordedResource:
    """The AWS footprint's KMS key (the global DNS layer has keys of its own)."""
    (key,) = [
        r for r in plan.of_type("aws:kms/key:Key") if child_of(plan, r, "ai-gateway:aws:Footprint")
    ]
    return key
