"""Kubernetes workload policies: non-root, unprivileged, read-only, bounded, not exposed.

They judge every workload kind through its pod template, so the gateway's
Deployment and anything a user adds (StatefulSet, DaemonSet, Job, CronJob, Pod)
meet the same bar (Pod Security Standards "restricted", checkov CKV_K8S_*).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy, Severity

from policies.config import Category
from policies.framework import get, is_true, items, resource_policy

POD_SPEC_PATHS = {
    "kubernetes:apps/v1:Deployment": "spec.template.spec",
    "kubernetes:apps/v1:StatefulSet": "spec.template.spec",
    "kubernetes:apps/v1:DaemonSet": "spec.template.spec",
    "kubernetes:apps/v1:ReplicaSet": "spec.template.spec",
    "kubernetes:batch/v1:Job": "spec.template.spec",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.spec",
    "kubernetes:core/v1:Pod": "spec",
}
WORKLOADS = tuple(POD_SPEC_PATHS)
SERVICE = "kubernetes:core/v1:Service"


def _containers(props: Mapping[str, Any], kind: str) -> tuple[Any, list[tuple[str, Any]]]:
    path = POD_SPEC_PATHS[kind]
    pod = get(props, path, {})
    named = [
        (f"{path}.{field}[{get(c, 'name', i)}]", c)
        for field in ("initContainers", "containers")
        for i, c in enumerate(items(pod, field))
    ]
    return pod, named


def _for_each_kind(check):  # type: ignore[no-untyped-def]
    """One check per workload kind, each knowing where its pod template lives.

    Workloads in a namespace listed in the ``exemptNamespaces`` parameter are
    skipped (for third-party charts that cannot be hardened yet: list them
    deliberately, in the pack config, where a reviewer sees it).
    """

    def run(props: Mapping[str, Any], config: Mapping[str, Any], kind: str) -> Iterable[str]:
        if get(props, "metadata.namespace", "default") in set(config["exemptNamespaces"]):
            return
        yield from check(props, config, kind)

    return {kind: (lambda props, config, kind=kind: run(props, config, kind)) for kind in WORKLOADS}


EXEMPT: dict[str, list[str]] = {"exemptNamespaces": []}
EXEMPT_DOC = {"exemptNamespaces": "Namespaces whose workloads this policy skips."}


def _non_root(props: Mapping[str, Any], _: Mapping[str, Any], kind: str) -> Iterable[str]:
    pod, containers = _containers(props, kind)
    pod_non_root = is_true(get(pod, "securityContext.runAsNonRoot"))
    pod_user = get(pod, "securityContext.runAsUser")
    for where, container in containers:
        context = get(container, "securityContext", {})
        non_root = get(context, "runAsNonRoot")
        user = get(context, "runAsUser", pod_user)
        if user is not None and int(user) == 0:
            yield f"{where} runs as user 0: set securityContext.runAsUser to a non-zero UID"
        elif not (is_true(non_root) or (non_root is None and pod_non_root)):
            yield (
                f"{where} may run as root: set securityContext.runAsNonRoot=True on the pod "
                "or the container"
            )


def _not_privileged(props: Mapping[str, Any], _: Mapping[str, Any], kind: str) -> Iterable[str]:
    _, containers = _containers(props, kind)
    for where, container in containers:
        if is_true(get(container, "securityContext.privileged")):
            yield f"{where} is privileged: set securityContext.privileged=False"
        if get(container, "securityContext.allowPrivilegeEscalation") is not False:
            yield (
                f"{where} may escalate privileges: set "
                "securityContext.allowPrivilegeEscalation=False"
            )


def _read_only_root(props: Mapping[str, Any], _: Mapping[str, Any], kind: str) -> Iterable[str]:
    _, containers = _containers(props, kind)
    for where, container in containers:
        if not is_true(get(container, "securityContext.readOnlyRootFilesystem")):
            yield (
                f"{where} has a writable root filesystem: set "
                "securityContext.readOnlyRootFilesystem=True (mount an emptyDir for scratch space)"
            )


def _limits(props: Mapping[str, Any], config: Mapping[str, Any], kind: str) -> Iterable[str]:
    _, containers = _containers(props, kind)
    for where, container in containers:
        limits = get(container, "resources.limits", {})
        missing = [r for r in config["requiredLimits"] if not get(limits, r)]
        if missing:
            yield f"{where} has no {'/'.join(missing)} limit: set resources.limits.{missing[0]}"


def _load_balancer(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "spec.type") != "LoadBalancer":
        return
    allowed = set(config["ingressControllers"])
    name = get(props, "metadata.name")
    app = get(props, "metadata.labels", {}).get("app.kubernetes.io/name")
    if name not in allowed and app not in allowed:
        yield (
            f"Service {name or '(generated name)'} is type LoadBalancer: set spec.type='ClusterIP' "
            "and route it through the cluster's Gateway with an HTTPRoute (or list it in "
            "ingressControllers)"
        )


def policies() -> list[ResourceValidationPolicy]:
    """Every Kubernetes policy of the pack."""
    work = Category.WORKLOAD
    return [
        resource_policy(
            "kubernetes-apps-workload-run-as-non-root",
            "Containers must not run as root: a container escape as root owns the node. Fix: "
            "set securityContext.runAsNonRoot=True (and a non-zero runAsUser) on the pod.",
            types=WORKLOADS,
            check=_for_each_kind(_non_root),
            category=work,
            params=EXEMPT,
            param_docs=EXEMPT_DOC,
        ),
        resource_policy(
            "kubernetes-apps-workload-no-privileged",
            "Containers must not be privileged nor gain privileges. Fix: set "
            "securityContext.privileged=False and allowPrivilegeEscalation=False.",
            types=WORKLOADS,
            check=_for_each_kind(_not_privileged),
            category=work,
            params=EXEMPT,
            param_docs=EXEMPT_DOC,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "kubernetes-apps-workload-read-only-root-filesystem",
            "Containers must have a read-only root filesystem, so an attacker cannot drop tools "
            "or change binaries. Fix: set securityContext.readOnlyRootFilesystem=True.",
            types=WORKLOADS,
            check=_for_each_kind(_read_only_root),
            category=work,
            params=EXEMPT,
            param_docs=EXEMPT_DOC,
        ),
        resource_policy(
            "kubernetes-apps-workload-resource-limits",
            "Containers must declare CPU and memory limits, so one pod cannot starve the node. "
            "Fix: set resources.limits.cpu and resources.limits.memory.",
            types=WORKLOADS,
            check=_for_each_kind(_limits),
            category=work,
            params={"requiredLimits": ["cpu", "memory"], **EXEMPT},
            param_docs={
                "requiredLimits": "Resource names every container must limit.",
                **EXEMPT_DOC,
            },
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "kubernetes-core-service-loadbalancer-ingress-only",
            "Only the cluster's entry point may get a cloud load balancer: the Gateway API "
            "Gateway, whose LoadBalancer Service Envoy Gateway creates (the program declares "
            "none). Everything else stays ClusterIP behind it (one audited, TLS-terminating "
            "entry point). Fix: set spec.type='ClusterIP' and add an HTTPRoute.",
            types=[SERVICE],
            check=_load_balancer,
            category=Category.EXPOSURE,
            params={"ingressControllers": []},
            param_docs={
                "ingressControllers": "Service names or app.kubernetes.io/name labels allowed "
                "to be type LoadBalancer besides the Gateway's (none by default)."
            },
        ),
    ]
