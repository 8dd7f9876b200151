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
from policies.framework import PROD_ONLY, get, is_true, items, resource_policy

_TEMPLATE = "spec.template.spec"
_POD_SPEC_KINDS = {
    "apps/v1:Deployment": _TEMPLATE,
    "apps/v1:StatefulSet": _TEMPLATE,
    "apps/v1:DaemonSet": _TEMPLATE,
    "apps/v1:ReplicaSet": _TEMPLATE,
    "apps/v1beta1:Deployment": _TEMPLATE,
    "apps/v1beta1:StatefulSet": _TEMPLATE,
    "apps/v1beta2:Deployment": _TEMPLATE,
    "apps/v1beta2:StatefulSet": _TEMPLATE,
    "apps/v1beta2:DaemonSet": _TEMPLATE,
    "apps/v1beta2:ReplicaSet": _TEMPLATE,
    "extensions/v1beta1:Deployment": _TEMPLATE,
    "extensions/v1beta1:DaemonSet": _TEMPLATE,
    "extensions/v1beta1:ReplicaSet": _TEMPLATE,
    "batch/v1:Job": _TEMPLATE,
    "batch/v1:CronJob": "spec.jobTemplate.spec.template.spec",
    "batch/v1beta1:CronJob": "spec.jobTemplate.spec.template.spec",
    "core/v1:ReplicationController": _TEMPLATE,
    "core/v1:PodTemplate": "template.spec",
    "core/v1:Pod": "spec",
}
POD_SPEC_PATHS = {f"kubernetes:{kind}": path for kind, path in _POD_SPEC_KINDS.items()}
"""Every kind that carries a pod spec, and where; the ``...Patch`` kinds below too."""
PATCH_PATHS = {f"kubernetes:{kind}Patch": path for kind, path in _POD_SPEC_KINDS.items()}
"""Server-side apply patches of the same kinds: a field they leave out keeps the object's
value, so only what a patch sets is judged (a patch cannot break a rule by omission)."""
WORKLOADS = (*POD_SPEC_PATHS, *PATCH_PATHS)
SERVICE = "kubernetes:core/v1:Service"
SERVICE_PATCH = "kubernetes:core/v1:ServicePatch"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
NAMESPACE = "kubernetes:core/v1:Namespace"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
ROLES = (ROLE, CLUSTER_ROLE, f"{ROLE}Patch", f"{CLUSTER_ROLE}Patch")
BINDINGS = (
    ROLE_BINDING,
    CLUSTER_ROLE_BINDING,
    f"{ROLE_BINDING}Patch",
    f"{CLUSTER_ROLE_BINDING}Patch",
)
CLUSTER_SCOPED = {
    NAMESPACE,
    CLUSTER_ROLE,
    CLUSTER_ROLE_BINDING,
    "kubernetes:core/v1:Node",
    "kubernetes:core/v1:PersistentVolume",
    "kubernetes:storage.k8s.io/v1:StorageClass",
    "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration",
    "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration",
    "kubernetes:networking.k8s.io/v1:IngressClass",
    "kubernetes:scheduling.k8s.io/v1:PriorityClass",
    "kubernetes:cert-manager.io/v1:ClusterIssuer",
}
NAMESPACED = (
    *POD_SPEC_PATHS,
    SERVICE,
    SERVICE_ACCOUNT,
    ROLE,
    ROLE_BINDING,
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:core/v1:Secret",
    "kubernetes:networking.k8s.io/v1:Ingress",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "kubernetes:policy/v1:PodDisruptionBudget",
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
)


def _is_patch(kind: str) -> bool:
    return kind.endswith("Patch")


def _containers(props: Mapping[str, Any], kind: str) -> tuple[Any, list[tuple[str, Any]]]:
    path = POD_SPEC_PATHS.get(kind) or PATCH_PATHS[kind]
    pod = get(props, path, {})
    named = [
        (f"{path}.{field}[{get(c, 'name', i)}]", c)
        for field in ("initContainers", "containers", "ephemeralContainers")
        for i, c in enumerate(items(pod, field))
    ]
    return pod, named


def _for_each_kind(check):  # type: ignore[no-untyped-def]
    """One check per workload kind, each knowing where its pod template lives and whether
    it is a patch (``check(props, config, kind, patch)``)."""
    return {
        kind: (lambda props, config, kind=kind: check(props, config, kind, _is_patch(kind)))
        for kind in WORKLOADS
    }


def _non_root(
    props: Mapping[str, Any], config: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    pod, containers = _containers(props, kind)
    pod_non_root = get(pod, "securityContext.runAsNonRoot")
    pod_user = get(pod, "securityContext.runAsUser")
    min_uid = int(config["minUid"])
    if pod_user is not None and int(pod_user) == 0:
        yield "securityContext.runAsUser is 0 on the pod: set it to a non-zero UID"
    elif pod_user is not None and int(pod_user) < min_uid:
        yield (
            f"securityContext.runAsUser is {int(pod_user)} on the pod: use a UID of at least "
            f"{min_uid} (low UIDs collide with the node's system users)"
        )
    if pod_non_root is False:
        yield "securityContext.runAsNonRoot is false on the pod: set runAsNonRoot=True"
    for where, container in containers:
        context = get(container, "securityContext", {})
        non_root = get(context, "runAsNonRoot")
        user = get(context, "runAsUser")
        if user is not None and int(user) == 0:
            yield f"{where} runs as user 0: set securityContext.runAsUser to a non-zero UID"
        elif user is not None and int(user) < min_uid:
            yield f"{where} runs as UID {int(user)}: use a UID of at least {min_uid}"
        elif non_root is False or (not patch and non_root is None and not is_true(pod_non_root)):
            yield (
                f"{where} may run as root: set securityContext.runAsNonRoot=True on the pod "
                "or the container"
            )


def _not_privileged(
    props: Mapping[str, Any], _: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    _, containers = _containers(props, kind)
    for where, container in containers:
        if is_true(get(container, "securityContext.privileged")):
            yield f"{where} is privileged: set securityContext.privileged=False"
        escalation = get(container, "securityContext.allowPrivilegeEscalation")
        if escalation is True or (not patch and escalation is not False):
            yield (
                f"{where} may escalate privileges: set "
                "securityContext.allowPrivilegeEscalation=False"
            )


def _read_only_root(
    props: Mapping[str, Any], _: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    _, containers = _containers(props, kind)
    for where, container in containers:
        read_only = get(container, "securityContext.readOnlyRootFilesystem")
        if read_only is False or (not patch and not is_true(read_only)):
            yield (
                f"{where} has a writable root filesystem: set "
                "securityContext.readOnlyRootFilesystem=True (mount an emptyDir for scratch space)"
            )


def _limits(
    props: Mapping[str, Any], config: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    if patch:
        return  # a patch that leaves resources out keeps the object's limits
    _, containers = _containers(props, kind)
    for where, container in containers:
        if where.split(".")[-1].startswith("ephemeralContainers"):
            continue  # ephemeral containers take no resources
        limits = get(container, "resources.limits", {})
        missing = [r for r in config["requiredLimits"] if not get(limits, r)]
        if missing:
            yield f"{where} has no {'/'.join(missing)} limit: set resources.limits.{missing[0]}"
        requests = get(container, "resources.requests", {})
        unrequested = [r for r in config["requiredRequests"] if not get(requests, r)]
        if unrequested:
            yield (
                f"{where} has no {'/'.join(unrequested)} request: set "
                f"resources.requests.{unrequested[0]}"
            )


LONG_RUNNING = tuple(
    k
    for k in WORKLOADS
    if k.split(":")[-1].removesuffix("Patch") in {"Deployment", "StatefulSet", "DaemonSet"}
)


def _probes(
    props: Mapping[str, Any], _: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    if patch:
        return
    _, containers = _containers(props, kind)
    for where, container in containers:
        if ".containers[" not in where:
            continue  # init and ephemeral containers take no probes
        for probe in ("livenessProbe", "readinessProbe"):
            if not get(container, probe):
                yield (
                    f"{where} has no {probe}: declare it so a hung or unready pod is restarted "
                    "or taken out of the Service"
                )


def _host_namespaces(
    props: Mapping[str, Any], _: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    pod, _found = _containers(props, kind)
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if is_true(get(pod, field)):
            yield f"{field} is true: set {field}=False (the pod would share the node's namespace)"


def _host_path(
    props: Mapping[str, Any], _: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    pod, _found = _containers(props, kind)
    for volume in items(pod, "volumes"):
        if get(volume, "hostPath") is not None:
            yield (
                f"volume {get(volume, 'name')} is a hostPath: use an emptyDir, a ConfigMap or a "
                "persistent volume claim instead of the node's filesystem"
            )


def _host_port(
    props: Mapping[str, Any], _: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    _, containers = _containers(props, kind)
    for where, container in containers:
        for port in items(container, "ports"):
            if get(port, "hostPort"):
                yield (
                    f"{where} binds hostPort {int(get(port, 'hostPort'))}: remove hostPort and "
                    "expose the port through a Service"
                )


def _capabilities(
    props: Mapping[str, Any], config: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    allowed = set(config["allowedCapabilities"])
    _, containers = _containers(props, kind)
    for where, container in containers:
        added = [str(c) for c in items(container, "securityContext.capabilities.add")]
        extra = [c for c in added if c.upper().removeprefix("CAP_") not in allowed]
        if extra:
            yield (f"{where} adds capabilities {extra}: remove them (allowed: {sorted(allowed)})")
        dropped = [str(c).upper() for c in items(container, "securityContext.capabilities.drop")]
        if not patch and "ALL" not in dropped:
            yield f"{where} keeps the default capabilities: set securityContext.capabilities.drop=['ALL']"


_SECCOMP_OK = {"RuntimeDefault", "Localhost"}


def _seccomp(
    props: Mapping[str, Any], _: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    pod, containers = _containers(props, kind)
    pod_profile = get(pod, "securityContext.seccompProfile.type")
    if pod_profile == "Unconfined":
        yield "securityContext.seccompProfile.type is Unconfined on the pod: set 'RuntimeDefault'"
    for where, container in containers:
        profile = get(container, "securityContext.seccompProfile.type")
        if profile == "Unconfined":
            yield f"{where} seccompProfile.type is Unconfined: set 'RuntimeDefault'"
        elif not patch and profile is None and pod_profile not in _SECCOMP_OK:
            yield (
                f"{where} has no seccomp profile: set securityContext.seccompProfile.type="
                "'RuntimeDefault' on the pod or the container"
            )


def _image_reference(image: str) -> tuple[str | None, str | None]:
    """(tag, digest) of an image reference; a registry port is not a tag."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else None
    return tag, digest or None


def _image_pinned(
    props: Mapping[str, Any], config: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    _, containers = _containers(props, kind)
    for where, container in containers:
        image = get(container, "image")
        if image is None:
            continue
        tag, digest = _image_reference(str(image))
        if digest:
            continue
        if is_true(config["requireDigest"]):
            yield f"{where} image {image} has no digest: pin it as <image>@sha256:<digest>"
        elif tag is None or tag == "latest":
            yield (
                f"{where} image {image} uses a mutable tag ({tag or 'none, so latest'}): pin a "
                "version tag or a digest"
            )


def _token_automount(
    props: Mapping[str, Any], _: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    pod, _found = _containers(props, kind)
    automount = get(pod, "automountServiceAccountToken")
    if automount is True:
        yield (
            "automountServiceAccountToken is true: set it to False (mount a projected token "
            "only where the pod calls the Kubernetes API)"
        )
    elif not patch and automount is None and get(pod, "serviceAccountName") in (None, "default"):
        yield (
            "the pod runs as the namespace's default service account, which mounts its token: "
            "set serviceAccountName to a dedicated account or automountServiceAccountToken=False"
        )


def _service_account_automount(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "automountServiceAccountToken") is not False:
        yield (
            "automountServiceAccountToken is not false: set it to False so pods get an API "
            "token only when they ask for one"
        )


def _not_default_namespace(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    namespace = get(props, "metadata.namespace")
    if namespace in (None, "", "default"):
        yield (
            f"metadata.namespace is {namespace or 'unset (the default namespace)'}: set it to the "
            "application's own namespace"
        )


def _service_type(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "spec.type") == "NodePort":
        yield (
            "spec.type is NodePort, which opens the port on every node: use ClusterIP behind "
            "the ingress"
        )
    if items(props, "spec.externalIPs"):
        yield "spec.externalIPs is set (CVE-2020-8554): remove it"


def _load_balancer(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "spec.type") != "LoadBalancer":
        return
    name = get(props, "metadata.name")
    yield (
        f"Service {name or '(generated name)'} is type LoadBalancer: set spec.type='ClusterIP' "
        "and route it through the cluster's Gateway with an HTTPRoute (or exempt its URN in "
        "the pack config)"
    )


_ESCALATION_VERBS = {"bind", "escalate", "impersonate"}
_WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
# Resources whose write access escalates (checkov CKV2_K8S_2/4, CKV_K8S_155/156).
_SENSITIVE_WRITES = {
    "pods/exec": "runs commands in any pod",
    "pods/attach": "attaches to any pod",
    "nodes/proxy": "reaches the kubelet API",
    "services/status": "can redirect load balancer traffic",
    "validatingwebhookconfigurations": "can disable admission checks",
    "mutatingwebhookconfigurations": "can rewrite every object",
    "certificatesigningrequests/approval": "can issue cluster credentials",
}


def _role_rules(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    for index, rule in enumerate(items(props, "rules")):
        for field in ("verbs", "resources", "apiGroups"):
            if "*" in [str(v) for v in items(rule, field)]:
                yield f"rules[{index}].{field} contains '*': list the {field} the role needs"
        verbs = {str(v) for v in items(rule, "verbs")}
        resources = {str(r) for r in items(rule, "resources")}
        escalation = sorted(verbs & _ESCALATION_VERBS)
        if escalation:
            yield f"rules[{index}] grants {escalation}: privilege escalation; remove them"
        if "secrets" in resources and verbs & {"list", "watch"}:
            yield f"rules[{index}] can list or watch secrets: grant get on named secrets only"
        if verbs & (_WRITE_VERBS | {"approve"}):
            for resource in sorted(resources & set(_SENSITIVE_WRITES)):
                yield (
                    f"rules[{index}] can write {resource}, which {_SENSITIVE_WRITES[resource]}: "
                    "remove it"
                )


_PUBLIC_GROUPS = {"system:anonymous", "system:unauthenticated", "system:authenticated"}


def _binding(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    role = get(props, "roleRef.name")
    if role in set(config["forbiddenRoles"]):
        yield f"roleRef is {role}: bind a role limited to what the subject needs"
    for subject in items(props, "subjects"):
        kind, name = get(subject, "kind"), get(subject, "name")
        if kind == "ServiceAccount" and name == "default":
            yield (
                "subjects include a default service account: bind a dedicated service account "
                "(every pod without one runs as default)"
            )
        if kind in ("Group", "User") and name in _PUBLIC_GROUPS | {"system:anonymous"}:
            yield f"subjects include {name}: never bind roles to anonymous or every user"


INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


def _ingress_snippets(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    for key in dict(get(props, "metadata.annotations", {})):
        if "snippet" in str(key).lower():
            yield (
                f"metadata.annotations sets {key}: configuration snippets run arbitrary NGINX "
                "configuration (CVE-2021-25742); remove it"
            )


def _disruption_budget(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    unavailable = get(props, "spec.maxUnavailable")
    available = str(get(props, "spec.minAvailable", ""))
    if (unavailable is not None and str(unavailable) in {"0", "0.0", "0%"}) or available == "100%":
        yield (
            "the budget allows no voluntary disruption, so node drains and upgrades block: set "
            "spec.maxUnavailable to at least 1"
        )


HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"


def _min_replicas(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    least = int(config["minReplicas"])
    replicas = get(props, "spec.minReplicas", 1)
    if int(replicas) < least:
        yield (
            f"spec.minReplicas is {int(replicas)} in production: set it to at least {least} so "
            "one pod's loss or eviction is not an outage"
        )


def _labels(
    props: Mapping[str, Any], config: Mapping[str, Any], kind: str, patch: bool
) -> Iterable[str]:
    if patch:
        return
    labels = dict(get(props, "metadata.labels", {}))
    missing = [k for k in config["requiredLabels"] if not labels.get(k)]
    if missing:
        yield f"metadata.labels lacks {missing}: set them so tools and people can tell what runs"


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
            params={"minUid": 10000},
            param_docs={"minUid": "Lowest accepted runAsUser."},
        ),
        resource_policy(
            "kubernetes-apps-workload-no-privileged",
            "Containers must not be privileged nor gain privileges. Fix: set "
            "securityContext.privileged=False and allowPrivilegeEscalation=False.",
            types=WORKLOADS,
            check=_for_each_kind(_not_privileged),
            category=work,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "kubernetes-apps-workload-read-only-root-filesystem",
            "Containers must have a read-only root filesystem, so an attacker cannot drop tools "
            "or change binaries. Fix: set securityContext.readOnlyRootFilesystem=True.",
            types=WORKLOADS,
            check=_for_each_kind(_read_only_root),
            category=work,
        ),
        resource_policy(
            "kubernetes-apps-workload-resource-limits",
            "Containers must declare CPU and memory requests and limits, so one pod cannot "
            "starve the node. Fix: set resources.requests and resources.limits for cpu and memory.",
            types=WORKLOADS,
            check=_for_each_kind(_limits),
            category=work,
            params={"requiredLimits": ["cpu", "memory"], "requiredRequests": ["cpu", "memory"]},
            param_docs={
                "requiredLimits": "Resource names every container must limit.",
                "requiredRequests": "Resource names every container must request.",
            },
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "kubernetes-apps-workload-probes",
            "Long-running containers must declare liveness and readiness probes, so a hung pod "
            "restarts and an unready one gets no traffic. Fix: set livenessProbe and "
            "readinessProbe.",
            types=LONG_RUNNING,
            check={k: v for k, v in _for_each_kind(_probes).items() if k in LONG_RUNNING},
            category=Category.RESILIENCE,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "kubernetes-autoscaling-hpa-min-replicas",
            "In production every autoscaled workload keeps at least two replicas. Fix: set "
            "spec.minReplicas to 2 or more.",
            types=[HPA],
            check=_min_replicas,
            category=Category.RESILIENCE,
            params={"minReplicas": 2},
            param_docs={"minReplicas": "Smallest accepted spec.minReplicas in production."},
            non_production=PROD_ONLY,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "kubernetes-apps-workload-recommended-labels",
            "Workloads carry the recommended app.kubernetes.io labels. Fix: set "
            "metadata.labels['app.kubernetes.io/name'].",
            types=WORKLOADS,
            check=_for_each_kind(_labels),
            category=Category.HYGIENE,
            params={"requiredLabels": ["app.kubernetes.io/name"]},
            param_docs={"requiredLabels": "Labels every workload must carry."},
            severity=Severity.LOW,
        ),
        resource_policy(
            "kubernetes-core-pod-no-host-namespaces",
            "Pods must not share the node's network, PID or IPC namespace. Fix: remove "
            "hostNetwork, hostPID and hostIPC (or set them False).",
            types=WORKLOADS,
            check=_for_each_kind(_host_namespaces),
            category=work,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "kubernetes-core-pod-no-host-path",
            "Pods must not mount the node's filesystem. Fix: replace hostPath volumes with "
            "emptyDir, ConfigMap, Secret or PVC volumes.",
            types=WORKLOADS,
            check=_for_each_kind(_host_path),
            category=work,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "kubernetes-core-pod-no-host-port",
            "Containers must not bind ports on the node. Fix: remove ports[].hostPort and use "
            "a Service.",
            types=WORKLOADS,
            check=_for_each_kind(_host_port),
            category=work,
        ),
        resource_policy(
            "kubernetes-core-pod-capabilities",
            "Containers must drop every Linux capability and add none beyond the allowed ones. "
            "Fix: set securityContext.capabilities.drop=['ALL'] and remove capabilities.add.",
            types=WORKLOADS,
            check=_for_each_kind(_capabilities),
            category=work,
            params={"allowedCapabilities": []},
            param_docs={
                "allowedCapabilities": "Capabilities a container may add (for example "
                "NET_BIND_SERVICE)."
            },
        ),
        resource_policy(
            "kubernetes-core-pod-seccomp",
            "Containers must run under a seccomp profile (the runtime's default at least). Fix: "
            "set securityContext.seccompProfile.type='RuntimeDefault' on the pod.",
            types=WORKLOADS,
            check=_for_each_kind(_seccomp),
            category=work,
        ),
        resource_policy(
            "kubernetes-core-pod-image-pinned",
            "Images must be pinned: a mutable tag (latest, or none) can change what runs without "
            "a deployment. Fix: use a version tag, or a digest (parameter requireDigest).",
            types=WORKLOADS,
            check=_for_each_kind(_image_pinned),
            category=work,
            params={"requireDigest": False},
            param_docs={"requireDigest": "Require every image to be pinned by digest."},
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "kubernetes-core-pod-no-token-automount",
            "Pods must not get a Kubernetes API token they do not use. Fix: run under a "
            "dedicated service account with automountServiceAccountToken=False (on the account "
            "and the pod).",
            types=(*WORKLOADS, SERVICE_ACCOUNT),
            check={**_for_each_kind(_token_automount), SERVICE_ACCOUNT: _service_account_automount},
            category=work,
        ),
        resource_policy(
            "kubernetes-core-object-no-default-namespace",
            "Namespaced objects must live in their application's namespace, not in default, "
            "where RBAC and network policies are usually absent. Fix: set metadata.namespace.",
            types=NAMESPACED,
            check=_not_default_namespace,
            category=work,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "kubernetes-core-service-no-node-port",
            "Services must not open node ports or claim external IPs. Fix: set spec.type="
            "'ClusterIP' and remove spec.externalIPs.",
            types=[SERVICE, SERVICE_PATCH],
            check=_service_type,
            category=Category.EXPOSURE,
        ),
        resource_policy(
            "kubernetes-core-service-loadbalancer-ingress-only",
            "Only the cluster's entry point may get a cloud load balancer: the Gateway API "
            "Gateway, whose LoadBalancer Service Envoy Gateway creates (the program declares "
            "none). Everything else stays ClusterIP behind it (one audited, TLS-terminating "
            "entry point). Fix: set spec.type='ClusterIP' and add an HTTPRoute (a reviewed "
            "exception is exempted by URN in the pack config).",
            types=[SERVICE, SERVICE_PATCH],
            check=_load_balancer,
            category=Category.EXPOSURE,
        ),
        resource_policy(
            "kubernetes-networking-ingress-no-snippets",
            "Ingresses must not carry NGINX configuration snippets (CVE-2021-25742: they run "
            "arbitrary configuration and can read the controller's secrets). Fix: remove every "
            "*-snippet annotation.",
            types=[INGRESS, f"{INGRESS}Patch"],
            check=_ingress_snippets,
            category=Category.EXPOSURE,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "kubernetes-policy-poddisruptionbudget-allows-disruption",
            "A PodDisruptionBudget must allow at least one voluntary disruption, or node drains "
            "and cluster upgrades (security patches) block. Fix: set spec.maxUnavailable to 1 "
            "or more.",
            types=[PDB, f"{PDB}Patch"],
            check=_disruption_budget,
            category=Category.RESILIENCE,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "kubernetes-rbac-role-no-wildcards",
            "Roles must list their verbs, resources and API groups (no '*'), grant no "
            "escalation verbs (bind, escalate, impersonate), not list or watch secrets, and not "
            "write pods/exec, nodes/proxy, services/status, admission webhooks or CSR "
            "approvals. Fix: name exactly what the role needs.",
            types=ROLES,
            check=_role_rules,
            category=Category.IDENTITY,
        ),
        resource_policy(
            "kubernetes-rbac-binding-least-privilege",
            "Bindings must not grant cluster-admin (or admin), must not bind a namespace's "
            "default service account, and must not bind anonymous or all-users groups. Fix: "
            "bind a narrow role to a dedicated service account.",
            types=BINDINGS,
            check=_binding,
            category=Category.IDENTITY,
            params={"forbiddenRoles": ["cluster-admin", "admin"]},
            param_docs={"forbiddenRoles": "Roles no binding may reference."},
            severity=Severity.CRITICAL,
        ),
    ]
