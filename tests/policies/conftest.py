"""Fixtures of the policy tests: the guarded fixture program, compliant and broken.

``compliant_plan`` is the documentation of what "good" is: one resource of
every guarded type, each passing every policy. The per-policy tests change one
property of one of its resources and evaluate the pack on that resource alone.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from infra.offline import Plan, RecordedResource, record
from infra.offline.policy_gate import Verdict, _evaluate, _InProcess
from tests.conftest import ROOT

PACK = ROOT / "policies"
PROGRAM = Path(__file__).parent / "fixtures" / "guarded_program" / "__main__.py"
DELETE = object()
"""Mutation value that removes the property."""


def _record(noncompliant: bool) -> Plan:
    # The prod stack file: production is where every rule (deletion protection too) applies.
    return record(
        "prod",
        project_dir=ROOT,
        program=PROGRAM,
        config={"fixture:noncompliant": "true" if noncompliant else "false"},
    )


@pytest.fixture(scope="session")
def compliant_plan() -> Plan:
    """The guarded fixture program, every resource compliant."""
    return _record(False)


@pytest.fixture(scope="session")
def broken_plan() -> Plan:
    """The guarded fixture program with every guarded resource broken."""
    return _record(True)


def set_path(node: Any, path: str, value: Any) -> None:
    """Set (or with :data:`DELETE` remove) a dotted path in nested dicts and lists."""
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value


def mutated(resource: RecordedResource, changes: Mapping[str, Any]) -> RecordedResource:
    """A copy of a resource with properties changed in both its inputs and its outputs."""
    inputs, outputs = copy.deepcopy(resource.inputs), copy.deepcopy(resource.outputs)
    for path, value in changes.items():
        set_path(inputs, path, value if value is DELETE else copy.deepcopy(value))
        set_path(outputs, path, value if value is DELETE else copy.deepcopy(value))
    return replace(resource, inputs=inputs, outputs=outputs)


CONTEXT_TYPES = (
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "aws:ec2/flowLog:FlowLog",
    "aws:route53/queryLog:QueryLog",
    "aws:route53/keySigningKey:KeySigningKey",
    "aws:route53/hostedZoneDnsSec:HostedZoneDnsSec",
    "azure-native:network:FlowLog",
    "azure-native:dns:DnssecConfig",
)
"""Resources kept in every one-resource plan: the context a resource is judged in (its
namespace's NetworkPolicy, its network's flow and query logs, its zone's signing), never
themselves in violation in the compliant fixture."""


def only(plan: Plan, resources: list[RecordedResource]) -> Plan:
    """The plan restricted to some resources (for one-resource policy evaluations).

    Their context comes along: the NetworkPolicies, and the plan's resources that
    use them (a security group's users), so stack rules about context hold.
    """
    urns = {r.urn for r in resources}
    context = [
        r
        for r in plan.resources
        if r.urn not in urns
        and (
            r.type in CONTEXT_TYPES
            or urns & {*r.dependencies, *(u for us in r.property_dependencies.values() for u in us)}
        )
    ]
    return replace(plan, resources=[*resources, *context])


class _Remembered:
    """The in-process analyzer, each answer remembered for the session.

    The pack's answer to an ``Analyze`` (one resource) or ``AnalyzeStack``
    request is a function of the request and of what the analyzer was configured
    with (the policy config, the stack): the per-policy tests ask it again and
    again about the same resources (a fixture plan with one resource changed, the
    prod plan once per policy), about a second each time. Every other answer is
    the servicer's, from the same calls in the same order as without memo.
    """

    answers: ClassVar[dict[tuple[str, bytes, bytes, bytes], Any]] = {}

    def __init__(self, analyzer: Any) -> None:
        self._analyzer = analyzer
        self._configured = self._stack = b""

    @staticmethod
    def _digest(message: Any) -> bytes:
        return hashlib.sha256(message.SerializeToString(deterministic=True)).digest()

    def GetAnalyzerInfo(self, request: Any, timeout: float | None = None) -> Any:
        return self._analyzer.GetAnalyzerInfo(request, timeout=timeout)

    def Configure(self, request: Any, timeout: float | None = None) -> Any:
        self._configured = self._digest(request)
        return self._analyzer.Configure(request, timeout=timeout)

    def ConfigureStack(self, request: Any, timeout: float | None = None) -> Any:
        self._stack = self._digest(request)
        return self._analyzer.ConfigureStack(request, timeout=timeout)

    def _remembered(self, method: str, request: Any, timeout: float | None) -> Any:
        key = (method, self._configured, self._stack, self._digest(request))
        if key not in self.answers:
            self.answers[key] = getattr(self._analyzer, method)(request, timeout=timeout)
        return self.answers[key]

    def Analyze(self, request: Any, timeout: float | None = None) -> Any:
        return self._remembered("Analyze", request, timeout)

    def AnalyzeStack(self, request: Any, timeout: float | None = None) -> Any:
        return self._remembered("AnalyzeStack", request, timeout)


def verdict(plan: Plan, config: Mapping[str, Any] | None = None) -> Verdict:
    """The pack's verdict on a plan, in-process (the gRPC path is tested separately).

    What ``evaluate(plan, pack_dir=PACK, config=config, transport="in-process")``
    returns, with the pack's answers to requests it has seen remembered
    (:class:`_Remembered`; tests/policies/test_speedup.py checks they agree).
    """
    return _evaluate(_Remembered(_InProcess(PACK)), plan, config or {})


def as_type(resource: RecordedResource, type_token: str) -> RecordedResource:
    """A fixture resource re-registered as another type that spells the same setting.

    Kubernetes workloads keep their metadata and move their pod spec to where the
    new kind holds it (a CronJob's job template, a PodTemplate's ``template``).
    """
    from policies.kubernetes import PATCH_PATHS, POD_SPEC_PATHS

    inputs = copy.deepcopy(resource.inputs)
    source_path = POD_SPEC_PATHS.get(resource.type)
    target_path = POD_SPEC_PATHS.get(type_token) or PATCH_PATHS.get(type_token)
    if source_path and target_path and source_path != target_path:
        node: Any = inputs
        for part in source_path.split("."):
            node = node[part]
        inputs = {"metadata": inputs.get("metadata", {})}
        set_path(inputs, target_path, node)
    urn = resource.urn.replace(f"::{resource.type}::", f"::{type_token}::")
    return replace(resource, type=type_token, urn=urn, inputs=inputs, outputs=copy.deepcopy(inputs))
