"""Ordering invariants over a recorded plan's dependency graph.

Mocks create everything at once, so an ordering bug never shows in a plan:
it shows on the first real ``pulumi up``, as a 403 from a cluster whose access
grant has not propagated, a Helm release waiting on nodes that do not exist
yet, or a GCP call to an API that is not enabled. Each function below returns
the violations of one rule over :meth:`infra.offline.Plan.dependency_closure`
(what the engine really waits for), so a test asserts ``== []`` on the stacks
and ``!= []`` on a plan with one ``depends_on`` removed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from infra.offline import Plan, RecordedResource, Secret
from infra.offline.engine import reveal
from tests.infra.integration.leaks import plain_strings

KUBE_PROVIDER = "pulumi:providers:kubernetes"


@dataclass(frozen=True)
class ClusterReadiness:
    """What every Kubernetes object of one cloud's cluster must wait for.

    ``grants``: the deployer's access to the API (a 403 otherwise);
    ``nodes``: the worker nodes (Helm ``atomic`` releases and the migration Job
    time out without them); ``addons``: cluster add-ons the workloads rely on
    (the CNI enforcing NetworkPolicy, DNS, metrics for the HPA).
    """

    footprint: str
    grants: tuple[tuple[str, str], ...]
    """(type token, name pattern) of the deployer's access grant and its wait."""
    nodes: tuple[str, ...]
    addons: tuple[str, ...] = ()


READINESS = {
    "aws": ClusterReadiness(
        footprint="ai-gateway:aws:Footprint",
        grants=(("aws:eks/accessPolicyAssociation:AccessPolicyAssociation", r"-deployer-admin$"),),
        nodes=("aws:eks/nodeGroup:NodeGroup",),
        addons=("aws:eks/addon:Addon",),
    ),
    "azure": ClusterReadiness(
        footprint="ai-gateway:azure:Footprint",
        grants=(
            ("azure-native:authorization:RoleAssignment", r"-deployer-admin$"),
            # Azure RBAC grants take minutes to reach the API server.
            ("command:local:Command", r"-deployer-access-wait$"),
        ),
        nodes=("azure-native:containerservice:AgentPool",),
    ),
    "gcp": ClusterReadiness(
        # GKE admits the deployer through project IAM it already holds: no grant.
        footprint="ai-gateway:gcp:Footprint",
        grants=(("gcp:container/cluster:Cluster", r".*"),),
        nodes=("gcp:container/nodePool:NodePool",),
    ),
}
"""Per cloud: the cluster readiness every Kubernetes object must (transitively) wait for."""


GCP_API_OF_MODULE = {
    # Documented service of each pulumi_gcp module the program uses; from the
    # Google Cloud API names in each product's "Enable the API" page.
    "compute": "compute.googleapis.com",
    "container": "container.googleapis.com",
    "servicenetworking": "servicenetworking.googleapis.com",
    "sql": "sqladmin.googleapis.com",
    "redis": "redis.googleapis.com",
    "kms": "cloudkms.googleapis.com",
    "serviceaccount": "iam.googleapis.com",
    "projects": "cloudresourcemanager.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
    "organizations": "cloudresourcemanager.googleapis.com",
    "secretmanager": "secretmanager.googleapis.com",
}
"""``gcp:<module>/...`` -> the API its calls go to (``projects.Service`` itself is exempt)."""

WORKLOAD_POOL = re.compile(r"[a-z][a-z0-9-]+\.svc\.id\.goog")


def footprint_of(plan: Plan, resource: RecordedResource) -> str | None:
    """The ``ai-gateway:<cloud>:Footprint`` type above ``resource``, if any."""
    for ancestor in plan.ancestors(resource):
        if ancestor.type.endswith(":Footprint"):
            return ancestor.type
    return None


def kube_providers(plan: Plan, cloud: str) -> list[RecordedResource]:
    """The kube provider(s) of ``cloud``'s cluster."""
    footprint = READINESS[cloud].footprint
    return [r for r in plan.of_type(KUBE_PROVIDER) if footprint_of(plan, r) == footprint]


def readiness_urns(plan: Plan, cloud: str) -> dict[str, set[str]]:
    """``{what: urns}`` of the cloud's grants, node pools and add-ons in ``plan``."""
    spec = READINESS[cloud]
    found: dict[str, set[str]] = {}
    mine = [r for r in plan.resources if footprint_of(plan, r) == spec.footprint]
    for token, pattern in spec.grants:
        found[f"grant {token} {pattern}"] = {
            r.urn for r in mine if r.type == token and re.search(pattern, r.name)
        }
    for token in (*spec.nodes, *spec.addons):
        found[token] = {r.urn for r in mine if r.type == token}
    return found


def kubernetes_objects(plan: Plan, provider: RecordedResource) -> Iterator[RecordedResource]:
    """Every resource deployed through ``provider``."""
    for r in plan.resources:
        if r.provider and r.provider.rsplit("::", 1)[0] == provider.urn:
            yield r


def cluster_readiness_violations(plan: Plan, cloud: str) -> list[str]:
    """Kubernetes objects of ``cloud`` that do not wait for its grant, nodes and add-ons."""
    required = readiness_urns(plan, cloud)
    problems = [f"{cloud}: no {what} in the plan" for what, urns in required.items() if not urns]
    providers = kube_providers(plan, cloud)
    if not providers:
        problems.append(f"{cloud}: no kube provider")
    for provider in providers:
        for obj in [provider, *kubernetes_objects(plan, provider)]:
            closure = plan.dependency_closure(obj)
            for what, urns in required.items():
                missing = urns - closure
                if missing:
                    problems.append(f"{obj.type} {obj.name} does not wait for {what}")
    return problems


def gcp_api_violations(plan: Plan) -> list[str]:
    """GCP resources that do not wait for the ``projects.Service`` enabling their API."""
    services = {r.get("service"): r.urn for r in plan.of_type("gcp:projects/service:Service")}
    problems = []
    for r in plan.resources:
        if not r.custom or r.package != "gcp" or r.type == "gcp:projects/service:Service":
            continue
        module = r.type.split(":")[1].split("/")[0]
        api = GCP_API_OF_MODULE.get(module)
        if api is None:
            problems.append(f"{r.type} {r.name}: no API known for module {module!r}")
        elif api not in services:
            problems.append(f"{r.type} {r.name}: {api} is never enabled")
        elif services[api] not in plan.dependency_closure(r):
            problems.append(f"{r.type} {r.name} does not wait for {api}")
    return problems


def workload_pool_violations(plan: Plan) -> list[str]:
    """Resources naming a workload identity pool that do not wait for the cluster creating it.

    GKE creates ``<project>.svc.id.goog`` with the first Workload Identity
    cluster of a project; an IAM binding naming it earlier fails with
    "Identity Pool does not exist".
    """
    clusters = {r.urn for r in plan.of_type("gcp:container/cluster:Cluster")}
    problems = []
    for r in plan.resources:
        if not r.custom or r.type == "gcp:container/cluster:Cluster":
            continue
        names_pool = any(WORKLOAD_POOL.search(s) for s in plain_strings(reveal(r.inputs)))
        if names_pool and not clusters & plan.dependency_closure(r):
            problems.append(f"{r.type} {r.name} names a workload pool before its cluster")
    return problems


def without_dependency(plan: Plan, resource: RecordedResource, removed: str) -> Plan:
    """A copy of ``plan`` where ``resource`` no longer waits on ``removed`` directly."""
    mutated = copy.copy(plan)
    mutated.resources = [copy.copy(r) for r in plan.resources]
    mutated.__dict__.pop("_urn_index", None)
    for r in mutated.resources:
        if r.urn == resource.urn:
            r.dependencies = [u for u in r.dependencies if u != removed]
            r.property_dependencies = {
                k: [u for u in v if u != removed] for k, v in r.property_dependencies.items()
            }
    return mutated


# ------------------------------------------- strings that stand in for an output

REFERENCE_KEY = re.compile(
    r"(?i)(^|[a-z])(id|arn|name|uri|url|link|endpoint|address|fqdn|hostname|email|member|pool|issuer)$"
)
"""Output keys whose values identify what a resource created (ids, ARNs, names, endpoints)."""

PROSE_KEYS = frozenset({"description", "displayName", "notes", "comment"})
"""Input keys holding text for people: a name mentioned there is not a reference."""

NOT_REFERENCES = {
    ("aws:route53/record:Record", "*"): "a record is named by the hostname the stack config "
    "chooses; routes and certificates claim that hostname, they do not need the record",
    ("azure-native:dns:RecordSet", "*"): "the same for an Azure DNS record set (its relative "
    "name is the hostname's label, which the cluster's objects also carry as a label value)",
    ("gcp:dns/recordSet:RecordSet", "*"): "the same for a Cloud DNS record set",
    ("aws:route53/healthCheck:HealthCheck", "fqdn"): "the host a health check probes: a claim "
    "made by config, created after the routes it checks",
    ("aws:route53/zone:Zone", "name"): "the zone is named by the domain the config chooses; "
    "its query-log group and key policy name that domain, not the zone (Route 53 refers to "
    "zones by id)",
    ("aws:sns/topic:Topic", "name"): "SNS refers to topics by ARN; a name shared with the key "
    "alias encrypting it is a naming convention",
    ("aws:iam/rolePolicy:RolePolicy", "name"): "an inline policy's name is local to its role, "
    "not an identifier others refer to",
    ("azure-native:security:Pricing", "scopeId"): "the subscription a Defender plan is priced "
    "on exists before the stack; the plan does not create it",
}
"""(producer type, output key or ``*``) whose values are not references to what it made."""

_MIN_LENGTH = 8


def output_references(plan: Plan) -> dict[str, set[tuple[str, str]]]:
    """Value -> ``{(producer urn, output key)}`` for every identifying output of a cloud resource.

    Only distinctive values count: at least 8 characters with a separator
    (``-._:/``), the shape of ids, ARNs, names and endpoints, not of flags or sizes.
    """
    found: dict[str, set[tuple[str, str]]] = {}
    for r in plan.resources:
        if not r.custom or r.package == "kubernetes" or r.type.startswith("pulumi:providers:"):
            continue
        pairs = [*_keyed_strings(r.outputs), *([("id", r.id)] if r.id else [])]
        for path, value in pairs:
            key = path.rsplit(".", 1)[-1]
            if (
                REFERENCE_KEY.search(key)
                # A nested ``name`` (sku.name, a rule's name) names a setting, not the resource.
                and not (key == "name" and "." in path)
                and (r.type, key) not in NOT_REFERENCES
                and (r.type, "*") not in NOT_REFERENCES
                and len(value) >= _MIN_LENGTH
                and re.search(r"[-._:/]", value)
            ):
                found.setdefault(value, set()).add((r.urn, key))
    return found


def _keyed_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(dotted key path, string)`` of every plain string leaf (secrets are skipped)."""
    if isinstance(value, Secret):
        return
    if isinstance(value, dict):
        for k, item in value.items():
            yield from _keyed_strings(item, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for item in value:
            yield from _keyed_strings(item, path)
    elif isinstance(value, str):
        yield path, value


def string_dependency_violations(plan: Plan) -> list[str]:
    """Inputs that name what another resource created without depending on it.

    A value equal to an identifying output of resource P (an id, ARN, name or
    endpoint, also inside a longer string such as a policy document or an IAM
    member) in the inputs of resource C, where C does not wait for P: C was
    given a string built from config where P's output exists, and a first
    ``pulumi up`` may create C before P. Matches are whole tokens (not a prefix
    of a longer name). When a resource carrying the value depends on C, C
    cannot wait for it (a cycle), so a string is the only way and is not reported.
    """
    references = output_references(plan)
    if not references:
        return ["no identifying outputs in the plan: the check would pass vacuously"]
    # A lookahead finds overlapping matches: a value inside a longer one (a pool inside the
    # IAM member that echoes it) is found at its own position.
    pattern = re.compile(
        r"(?=(?<![\w.-])("
        + "|".join(re.escape(v) for v in sorted(references, key=len, reverse=True))
        + r")(?![\w-]))"
    )
    closures: dict[str, set[str]] = {}

    def closure(r: RecordedResource) -> set[str]:
        if r.urn not in closures:
            closures[r.urn] = plan.dependency_closure(r)
        return closures[r.urn]

    problems = []
    for consumer in plan.resources:
        if not consumer.custom:
            continue
        waits_for = closure(consumer) | {consumer.urn}
        reported: set[str] = set()
        for key, text in _keyed_strings(reveal(consumer.inputs)):
            if key.rsplit(".", 1)[-1] in PROSE_KEYS:
                continue
            for match in pattern.finditer(text):
                value = match.group(1)
                producers = {urn for urn, _ in references[value]}
                if value in reported or producers & waits_for:
                    continue
                # Named by something that waits for the consumer (RDS and ElastiCache wait for
                # their log groups): a cycle, a string is the only way.
                if any(consumer.urn in closure(plan.by_urn(urn)) for urn in producers):
                    continue
                reported.add(value)
                names = ", ".join(
                    sorted(
                        f"{plan.by_urn(u).type} {plan.by_urn(u).name}.{k}"
                        for u, k in references[value]
                    )
                )
                problems.append(
                    f"{consumer.type} {consumer.name} input {key!r} names {value!r}, the output "
                    f"of {names}, without depending on it: take the output instead of the string"
                )
    return problems
