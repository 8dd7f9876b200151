"""The plan's Gateway API and cert-manager objects against published schemas.

A judge this project did not write: the ``@kubernetes-models`` packages
(npm), whose validators and TypeScript interfaces are generated from the
upstream Go types of the Gateway API (``sigs.k8s.io/gateway-api/apis/v1``) and
of cert-manager. Each object must pass its model's validation (required
fields, types, enums, patterns, list bounds) and type-check as a literal of
its interface, so a field the API does not know (which the API server would
silently drop) fails too. The judge's lock file pins every package version;
``npm ci`` installs them with the machine's Node.js.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.offline import Plan
from infra.offline.engine import reveal

KINDS = {
    "kubernetes:gateway.networking.k8s.io/v1:GatewayClass",
    "kubernetes:gateway.networking.k8s.io/v1:Gateway",
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
    "kubernetes:cert-manager.io/v1:Certificate",
    "kubernetes:cert-manager.io/v1:ClusterIssuer",
}


def manifests(plan: Plan) -> list[dict[str, Any]]:
    """The plan's Gateway API and cert-manager objects as the API server would receive them."""
    found = []
    for resource in plan.resources:
        if resource.type not in KINDS:
            continue
        _, api_version, kind = resource.type.split(":")
        inputs = reveal(resource.inputs)
        found.append(
            {
                "apiVersion": api_version,
                "kind": kind,
                "metadata": inputs["metadata"],
                "spec": inputs["spec"],
            }
        )
    return found


def run_judge(judge: Path, objects: list[dict[str, Any]], tmp_path: Path) -> tuple[int, dict]:
    source = tmp_path / "manifests.json"
    source.write_text(json.dumps(objects))
    result = subprocess.run(
        ["node", str(judge / "judge.mjs"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, json.loads(result.stdout or "{}") if result.stdout else {
        "errors": [result.stderr]
    }


def test_every_gateway_api_object_of_every_canary_setting_is_valid(
    judge: Path, k8s_plans: dict[int | None, Plan], tmp_path: Path
) -> None:
    objects = [m for plan in k8s_plans.values() for m in manifests(plan)]
    kinds = {m["kind"] for m in objects}
    assert kinds == {"GatewayClass", "Gateway", "HTTPRoute", "Certificate", "ClusterIssuer"}
    code, verdict = run_judge(judge, objects, tmp_path)
    assert verdict["errors"] == []
    assert code == 0
    assert len(verdict["validated"]) == len(objects)


@pytest.mark.parametrize(
    ("kind", "path", "value", "message"),
    [
        ("HTTPRoute", ("spec", "rules", -1, "backendRefs", 0, "weight"), "90", "weight must be integer"),
        ("HTTPRoute", ("spec", "rules", -1, "timeout"), "720s", "does not exist in type 'IHTTPRouteRule'"),
        ("Gateway", ("spec", "listeners", 1, "tls", "mode"), "Decrypt", "must be equal to one of the allowed values"),
        ("Gateway", ("spec", "listeners", 0, "port"), 70000, "must be <= 65535"),
    ],
)  # fmt: skip
def test_the_judge_rejects_a_broken_object(
    judge: Path,
    k8s_plan: Plan,
    tmp_path: Path,
    kind: str,
    path: tuple[Any, ...],
    value: Any,
    message: str,
) -> None:
    (target,) = [
        m
        for m in manifests(k8s_plan)
        if m["kind"] == kind and m["metadata"]["name"] == "ai-gateway"
    ][:1]
    broken = copy.deepcopy(target)
    node: Any = broken
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    code, verdict = run_judge(judge, [broken], tmp_path)
    assert code == 1
    assert any(message in error for error in verdict["errors"]), verdict["errors"]
