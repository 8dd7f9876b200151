"""Whether any secret value of a plan reached a ConfigMap or a plain stack output."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from infra.offline import Plan, Secret


def secret_values(value: Any, inside: bool = False) -> Iterator[str]:
    """String leaves under a Secret wrapper, long enough to be credentials.

    Short secret leaves (a namespace name inside a secret kubeconfig) would
    match innocent text; passwords, keys and tokens here are 16+ characters.
    """
    if isinstance(value, Secret):
        yield from secret_values(value.value, True)
    elif isinstance(value, dict):
        for item in value.values():
            yield from secret_values(item, inside)
    elif isinstance(value, list):
        for item in value:
            yield from secret_values(item, inside)
    elif inside and isinstance(value, str) and len(value) >= 16:
        yield value


def plain_strings(value: Any) -> Iterator[str]:
    if isinstance(value, Secret):
        return
    if isinstance(value, dict):
        for item in value.values():
            yield from plain_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from plain_strings(item)
    elif isinstance(value, str):
        yield value


def assert_no_secret_leaks(plan: Plan) -> None:
    """Every secret leaf of every resource and output stays out of ConfigMaps and plain exports."""
    secrets = {
        value
        for r in plan.resources
        for value in [*secret_values(r.inputs), *secret_values(r.outputs)]
    }
    secrets |= set(secret_values(plan.outputs))
    assert secrets, "the plan must hold secrets (passwords, keys) for this check to mean anything"
    config_maps = plan.of_type("kubernetes:core/v1:ConfigMap")
    assert len(config_maps) >= len(plan.outputs["enabledClouds"])
    for config_map in config_maps:
        assert not any(isinstance(v, Secret) for v in config_map.inputs.values())
        for text in plain_strings(config_map.inputs):
            assert not [s for s in secrets if s in text], f"{config_map.name} holds a secret value"
    for key, value in plan.outputs.items():
        for text in plain_strings(value):
            assert not [s for s in secrets if s in text], f"output {key} holds a secret value"
