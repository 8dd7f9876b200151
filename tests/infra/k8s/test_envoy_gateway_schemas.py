"""The plan's Envoy Gateway policies against the CRDs of the pinned Envoy Gateway release.

A judge this project did not write: the OpenAPI v3 schemas of the
``SecurityPolicy``, ``ClientTrafficPolicy`` and ``BackendTrafficPolicy`` CRDs that
Envoy Gateway v1.9.0 (:data:`infra.k8s.edge.ENVOY_GATEWAY_VERSION`) generates from
its Go types and installs (``envoy_gateway_crds/v1.9.0.json``, the CRDs'
``openAPIV3Schema`` with the descriptions removed). ``jsonschema`` checks types,
enums, patterns and bounds; every object schema is closed (``additionalProperties:
false`` where the CRD lists properties), as the API server's strict field
validation rejects a field the CRD does not know. The CRDs' CEL rules
(``x-kubernetes-validations``) are not evaluated here.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from infra.k8s.edge import ENVOY_GATEWAY_VERSION
from infra.offline import Plan
from infra.offline.engine import reveal

CRDS = Path(__file__).parent / "envoy_gateway_crds" / f"{ENVOY_GATEWAY_VERSION}.json"
GROUP = "kubernetes:gateway.envoyproxy.io/v1alpha1:"


def _closed(schema: Any) -> Any:
    if isinstance(schema, dict):
        schema = {k: _closed(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@cache
def validator(kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads(CRDS.read_text())["kinds"][kind]
    return jsonschema.Draft7Validator(_closed(schema))


def errors(manifest: dict[str, Any]) -> list[str]:
    found = validator(manifest["kind"]).iter_errors(manifest)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def policies(plan: Plan) -> list[dict[str, Any]]:
    """The plan's Envoy Gateway policies as the API server would receive them."""
    found = []
    for resource in plan.resources:
        if not resource.type.startswith(GROUP) or resource.type.endswith(":EnvoyProxy"):
            continue
        inputs = reveal(resource.inputs)
        found.append(
            {
                "apiVersion": "gateway.envoyproxy.io/v1alpha1",
                "kind": resource.type.rsplit(":", 1)[-1],
                "metadata": inputs["metadata"],
                "spec": inputs["spec"],
            }
        )
    return found


def test_every_envoy_gateway_policy_is_valid(k8s_plan: Plan, console_plan: Plan) -> None:
    objects = policies(k8s_plan) + policies(console_plan)
    assert {m["kind"] for m in objects} == {
        "SecurityPolicy",
        "ClientTrafficPolicy",
        "BackendTrafficPolicy",
    }
    assert {m["kind"]: errors(m) for m in objects} == {m["kind"]: [] for m in objects}


@pytest.mark.parametrize(
    ("kind", "path", "value", "message"),
    [
        ("SecurityPolicy", ("authorization", "defaultAction"), "Block", "'Block' is not one of"),
        (
            "SecurityPolicy",
            ("authorization", "rules", 0, "principal", "clientCidrs"),
            ["10.0.0.0/8"],
            "'clientCidrs' was unexpected",
        ),
        ("SecurityPolicy", ("authorization", "rules", 0, "principal", "clientCIDRs", 0), "intranet", "does not match"),
        ("ClientTrafficPolicy", ("clientIPDetection", "directSourceIp"), {}, "'directSourceIp' was unexpected"),
    ],
)  # fmt: skip
def test_the_judge_rejects_a_broken_policy(
    console_plan: Plan, kind: str, path: tuple[Any, ...], value: Any, message: str
) -> None:
    (target,) = [m for m in policies(console_plan) if m["kind"] == kind][:1]
    broken = copy.deepcopy(target)
    node: Any = broken["spec"]
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    assert any(message in error for error in errors(broken)), errors(broken)
