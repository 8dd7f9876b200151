"""Run a planned pod with podman the way a kubelet would, and probe it as the kubelet does.

:func:`planned_pod` collects, from a recorded plan, what a kubelet is handed for
one workload (a Deployment or a Job): the pod template, the ServiceAccount, and
the ConfigMaps and Secrets it refers to. :func:`podman_run_args` turns it into
one ``podman run``, honouring exactly what the plan says and refusing what it
cannot honour (an unknown volume type, an env source it does not know, a
secret key the Secret lacks):

* ``command`` replaces the image's entrypoint and ``args`` its command, as in
  Kubernetes (only ``args``: the image's entrypoint with these arguments);
* ``runAsUser``/``runAsGroup`` (container, else pod), ``fsGroup`` as a
  supplemental group, ``readOnlyRootFilesystem`` (without podman's own tmpfs
  mounts), dropped capabilities, ``allowPrivilegeEscalation: false``;
* every volume mount: configMap and secret items as files (mode 0644, group
  ``fsGroup``), emptyDir as a tmpfs of its ``sizeLimit``;
* ``env`` values and ``secretKeyRef``s resolved from the planned Secret;
* memory and CPU limits; every container port published on 127.0.0.1.

:func:`route_backend` follows the cluster's HTTPS ``HTTPRoute`` to the pod as
Envoy would (backendRef, Service port, targetPort, container port), so requests
reach the container on the port the edge delivers to, not merely a port it
declares.

The pod gets its own network namespace (slirp4netns), where the host's
loopback is ``10.0.2.2`` (:data:`HOST_LOOPBACK`): the local services and fakes
the test starts on 127.0.0.1 stand in for the cloud's.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra.offline import Plan, RecordedResource
from infra.offline.engine import reveal

HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
HOST_LOOPBACK = "10.0.2.2"
"""The host's 127.0.0.1 as the pod sees it (slirp4netns ``allow_host_loopback``)."""

_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


@dataclass
class PlannedPod:
    """What a kubelet is handed for one workload of the plan."""

    kind: str
    name: str
    labels: dict[str, str]
    spec: dict[str, Any]
    service_account: dict[str, Any]
    config_maps: dict[str, dict[str, str]]
    secrets: dict[str, dict[str, str]]

    @property
    def container(self) -> dict[str, Any]:
        """The pod's only container (the gateway's pods have one)."""
        (container,) = self.spec["containers"]
        return container

    @property
    def service_account_annotations(self) -> dict[str, str]:
        """The ServiceAccount's annotations (the clouds' workload identity)."""
        return dict(self.service_account.get("metadata", {}).get("annotations") or {})


def _namespace_objects(plan: Plan, workload: RecordedResource, type_token: str) -> dict[str, Any]:
    """Name -> inputs of the objects of ``type_token`` deployed with ``workload`` in its namespace."""
    component = next(a for a in plan.ancestors(workload) if not a.custom)
    namespace = workload.get("metadata.namespace")
    return {
        r.get("metadata.name"): reveal(r.inputs)
        for r in plan.resources
        if r.custom
        and r.type == type_token
        and r.get("metadata.namespace") == namespace
        and component in plan.ancestors(r)
    }


def planned_pod(plan: Plan, workload: RecordedResource) -> PlannedPod:
    """The pod template of ``workload`` and the objects of its namespace it refers to."""

    def named(type_token: str) -> dict[str, dict[str, Any]]:
        return _namespace_objects(plan, workload, type_token)

    template = workload.get("spec.template")
    spec = template["spec"]
    accounts = named("kubernetes:core/v1:ServiceAccount")
    return PlannedPod(
        kind=workload.type.rsplit(":", 1)[-1],
        name=workload.get("metadata.name"),
        labels=dict(template.get("metadata", {}).get("labels") or {}),
        spec=spec,
        service_account=accounts[spec["serviceAccountName"]],
        config_maps={
            name: dict(obj.get("data") or {})
            for name, obj in named("kubernetes:core/v1:ConfigMap").items()
        },
        secrets={
            name: dict(obj.get("stringData") or {})
            for name, obj in named("kubernetes:core/v1:Secret").items()
        },
    )


@dataclass
class RouteBackend:
    """Where the cluster's HTTPS route delivers one track's requests, as Envoy resolves it."""

    service: str
    """The Service the route's ``backendRefs`` name and whose selector picks these pods."""
    container_port: int
    """The backendRef's Service port, through its ``targetPort``, on the pod's container."""
    health_path: str
    """The path of the route's exact-match rule: what the global health checks request."""


def route_backend(plan: Plan, workload: RecordedResource, pod: PlannedPod) -> RouteBackend:
    """Follow the planned HTTPS ``HTTPRoute`` to ``pod``: backendRef -> Service port -> container.

    Gateway API ("HTTPBackendRef"): a ``backendRef`` names a Service and one of
    its ports; the Service sends that port to its ``targetPort`` (a number, or
    the name of a container port) on the pods its selector matches. The route's
    exact-match health rule must send the health checks to the stable track
    only, and a NetworkPolicy selecting the pod must admit the resolved port
    (otherwise Envoy's connections are dropped). Anything that does not resolve
    fails here, as the request through the edge would.
    """
    (route,) = [
        r
        for r in _namespace_objects(plan, workload, HTTP_ROUTE).values()
        if any(p.get("sectionName") == "https" for p in r["spec"]["parentRefs"])
    ]
    rules = route["spec"]["rules"]
    services = _namespace_objects(plan, workload, "kubernetes:core/v1:Service")
    # Of the Services selecting these pods, the one this route names (the governance
    # channel's Service selects them too, for its own route on its own Gateway).
    routed = {ref["name"] for rule in rules for ref in rule.get("backendRefs") or []}
    selecting = [
        n
        for n, s in services.items()
        if n in routed and _selects(s["spec"].get("selector"), pod.labels)
    ]
    assert len(selecting) == 1, f"{pod.name}: Services of the route selecting its pods: {selecting}"
    (service,) = selecting

    def resolve(ref: Mapping[str, Any]) -> int:
        port = int(ref["port"])
        matching = [p for p in services[ref["name"]]["spec"]["ports"] if int(p["port"]) == port]
        assert matching, f"the route's backendRef names port {port}, which {ref['name']} lacks"
        return _container_port(pod.container, matching[0].get("targetPort", port))

    (health,) = [
        rule
        for rule in rules
        if any((m.get("path") or {}).get("type") == "Exact" for m in rule.get("matches") or [])
    ]
    (health_ref,) = health["backendRefs"]
    stable = pod.labels.get("ai-gateway/track") == "stable"
    assert (health_ref["name"] == service) == stable, (
        f"the route's health rule sends checks to {health_ref['name']}; they must reach the "
        "stable track only"
    )
    # The API's requests take the other rules (prefix "/", the canary header).
    traffic = [
        ref
        for rule in rules
        if rule is not health
        for ref in rule.get("backendRefs") or []
        if ref["name"] == service and int(ref.get("weight", 1)) > 0
    ]
    assert traffic, f"the HTTPS route sends no request to {service}, which selects {pod.name}"
    ports = {resolve(ref) for ref in [*traffic, *([health_ref] if stable else [])]}
    assert len(ports) == 1, f"the route reaches {pod.name} on several ports: {sorted(ports)}"
    (container_port,) = ports
    admitted = [
        rule
        for policy in _namespace_objects(plan, workload, NETWORK_POLICY).values()
        if _selects((policy["spec"].get("podSelector") or {}).get("matchLabels") or {}, pod.labels)
        for rule in policy["spec"].get("ingress") or []
        if any(
            _container_port(pod.container, p["port"]) == container_port
            for p in rule.get("ports") or []
        )
    ]
    assert admitted, f"no NetworkPolicy admits port {container_port} of {pod.name}"
    (match,) = health["matches"]
    return RouteBackend(service, container_port, match["path"]["value"])


def _selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    return selector is not None and all(labels.get(k) == v for k, v in selector.items())


def _container_port(container: dict[str, Any], port: Any) -> int:
    """A port given as a number or as the name of one of the container's ports."""
    if isinstance(port, str) and not port.isdigit():
        named = {p.get("name"): int(p["containerPort"]) for p in container.get("ports") or []}
        if port not in named:
            raise AssertionError(f"port {port!r} names no port of the container")
        return named[port]
    return int(port)


@dataclass
class Substitutions:
    """What the test puts where the cloud would be (the rest is the plan's)."""

    image: str
    secrets: dict[str, dict[str, str]]
    """Secret name -> the data the pod gets (the planned keys, local values)."""
    extra_env: dict[str, str] = field(default_factory=dict)
    """What the cloud injects (workload-identity webhooks) and the endpoint overrides."""
    extra_files: dict[str, str] = field(default_factory=dict)
    """Path in the container -> content (projected tokens a webhook would mount)."""
    hosts: dict[str, str] = field(default_factory=dict)
    """Host name -> address (the local services' names)."""
    endpoints: dict[str, str] = field(default_factory=dict)
    """Planned variable -> the same URL on a local stand-in: only its scheme and host may
    differ (a cloud API's URL, such as the Key Vault secret the migration Job reads)."""


def podman_run_args(
    pod: PlannedPod, subs: Substitutions, workdir: Path, ports: Mapping[int, int]
) -> list[str]:
    """``podman run`` arguments (without ``run``) that start ``pod`` as a kubelet would.

    ``ports`` maps each container port to the host port it is published on.
    """
    container = pod.container
    pod_security = pod.spec.get("securityContext") or {}
    security = container.get("securityContext") or {}
    user = security.get("runAsUser", pod_security.get("runAsUser"))
    group = security.get("runAsGroup", pod_security.get("runAsGroup"))
    if user is None or group is None:
        raise AssertionError(f"{pod.name}: no runAsUser/runAsGroup: the image's user would run")
    if (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")) and int(user) == 0:
        raise AssertionError(f"{pod.name}: runAsNonRoot with runAsUser 0 would not start")
    args = [
        "--network=slirp4netns:allow_host_loopback=true",
        # Names resolve only through the hosts below: nothing can leave for the internet.
        "--dns=127.0.0.1",
        f"--user={int(user)}:{int(group)}",
    ]
    if pod_security.get("fsGroup") is not None:
        args.append(f"--group-add={int(pod_security['fsGroup'])}")
    if security.get("readOnlyRootFilesystem"):
        args += ["--read-only", "--read-only-tmpfs=false"]
    for capability in (security.get("capabilities") or {}).get("drop") or []:
        args.append(f"--cap-drop={capability}")
    for capability in (security.get("capabilities") or {}).get("add") or []:
        args.append(f"--cap-add={capability}")
    if security.get("allowPrivilegeEscalation") is False:
        args.append("--security-opt=no-new-privileges")
    if security.get("privileged"):
        raise AssertionError(f"{pod.name}: a privileged container")
    seccomp = (security.get("seccompProfile") or pod_security.get("seccompProfile") or {}).get(
        "type"
    )
    if seccomp not in (None, "RuntimeDefault"):
        raise AssertionError(f"{pod.name}: seccomp profile {seccomp} is not the runtime's default")
    limits = (container.get("resources") or {}).get("limits") or {}
    if "memory" in limits:
        args.append(f"--memory={memory_bytes(limits['memory'])}")
    if "cpu" in limits:
        args.append(f"--cpus={cpu_cores(limits['cpu'])}")
    for name, address in subs.hosts.items():
        args.append(f"--add-host={name}:{address}")
    for port in container.get("ports") or []:
        number = int(port["containerPort"])
        args.append(f"--publish=127.0.0.1:{ports[number]}:{number}")
    args += _mounts(pod, subs, workdir, int(pod_security.get("fsGroup") or group))
    for name, value in _environment(pod, subs).items():
        args.append(f"--env={name}={value}")
    command = container.get("command")
    if command:
        args.append("--entrypoint=" + json.dumps(command))
    args.append(subs.image)
    if command and not container.get("args"):
        # Kubernetes: `command` without `args` drops the image's CMD too.
        return args
    args += [str(a) for a in container.get("args") or []]
    return args


def _environment(pod: PlannedPod, subs: Substitutions) -> dict[str, str]:
    container = pod.container
    if container.get("envFrom"):
        raise AssertionError(f"{pod.name}: envFrom is not emulated; list the variables in env")
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item:
            env[name] = str(item["value"])
            continue
        source = item.get("valueFrom") or {}
        ref = source.get("secretKeyRef")
        if ref is None:
            raise AssertionError(f"{pod.name}: env {name} has a source the test cannot resolve")
        data = subs.secrets.get(ref["name"])
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                continue
            raise AssertionError(
                f"{pod.name}: env {name} refers to key {ref['key']!r} of Secret {ref['name']!r}, "
                "which the plan does not have (the kubelet would not start the container)"
            )
        env[name] = data[ref["key"]]
    for name, url in subs.endpoints.items():
        planned, local = urlsplit(env.get(name, "")), urlsplit(url)
        if not planned.netloc or (planned.path, planned.query) != (local.path, local.query):
            raise AssertionError(
                f"{pod.name}: {name}={env.get(name)!r} is not the URL {url!r} on another host"
            )
        env[name] = url
    overlap = set(env) & set(subs.extra_env)
    if overlap:
        raise AssertionError(f"{pod.name}: the test would override planned variables {overlap}")
    return {**env, **subs.extra_env}


def _mounts(pod: PlannedPod, subs: Substitutions, workdir: Path, fs_group: int) -> list[str]:
    volumes = {v["name"]: v for v in pod.spec.get("volumes") or []}
    args: list[str] = []
    mounts = sorted(pod.container.get("volumeMounts") or [], key=lambda m: m["mountPath"])
    sources: dict[str, Path] = {}
    for mount in mounts:
        volume = volumes[mount["name"]]
        path = mount["mountPath"]
        if "emptyDir" in volume:
            size = (volume["emptyDir"] or {}).get("sizeLimit")
            options = f"type=tmpfs,destination={path},tmpfs-mode=0777"
            if size:
                options += f",tmpfs-size={memory_bytes(size)}"
            args.append(f"--mount={options}")
            continue
        if "configMap" in volume:
            data = pod.config_maps[volume["configMap"]["name"]]
            items = volume["configMap"].get("items")
        elif "projected" in volume:
            data, items = _projected_tokens(pod, volume["projected"]), None
        elif "secret" in volume:
            data = subs.secrets[volume["secret"]["secretName"]]
            items = volume["secret"].get("items")
        else:
            raise AssertionError(f"{pod.name}: volume {mount['name']} has a type not emulated")
        source = workdir / f"volume-{mount['name']}"
        source.mkdir(parents=True, exist_ok=True)
        chosen = items or [{"key": k, "path": k} for k in data]
        for item in chosen:
            if item["key"] not in data:
                raise AssertionError(
                    f"{pod.name}: volume {mount['name']} projects key {item['key']!r}, "
                    "which the planned object does not have"
                )
            file = source / item["path"]
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(data[item["key"]])
            os.chown(file, 0, fs_group)
            file.chmod(0o644)
        sources[path] = source
        args.append(
            f"--mount=type=bind,source={source},destination={path}"
            + (",ro=true" if mount.get("readOnly") or "configMap" in volume else "")
        )
    # A mount inside another bind mount needs its mount point in the outer volume.
    for path in sources:
        for outer, source in sources.items():
            if path != outer and path.startswith(outer.rstrip("/") + "/"):
                (source / path[len(outer) :].strip("/")).mkdir(parents=True, exist_ok=True)
    for target, content in subs.extra_files.items():
        file = workdir / "projected" / target.strip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(content)
        file.chmod(0o644)
        args.append(f"--mount=type=bind,source={file},destination={target},ro=true")
    return args


def _projected_tokens(pod: PlannedPod, projected: Mapping[str, Any]) -> dict[str, str]:
    """What the kubelet writes for serviceAccountToken sources: a JWT for the planned audience
    and lifetime, naming the pod's ServiceAccount (signed here with a throwaway key, as the
    cluster's issuer would sign it there). Any other source is not emulated."""
    import secrets as random_secrets

    import jwt

    files = {}
    for source in projected.get("sources") or []:
        token = source.get("serviceAccountToken")
        if token is None or set(source) != {"serviceAccountToken"}:
            raise AssertionError(f"{pod.name}: projected source {sorted(source)} is not emulated")
        account = pod.spec.get("serviceAccountName") or "default"
        namespace = pod.service_account.get("metadata", {}).get("namespace") or "default"
        now = int(time.time())
        claims = {
            "iss": "https://kubernetes.default.svc.cluster.local",
            "aud": [token["audience"]],
            "sub": f"system:serviceaccount:{namespace}:{account}",
            "iat": now,
            "exp": now + int(token.get("expirationSeconds", 3600)),
        }
        files[token["path"]] = jwt.encode(claims, random_secrets.token_hex(32), algorithm="HS256")
    return files


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity in bytes."""
    text = str(quantity)
    for unit, factor in _MEMORY_UNITS.items():
        if text.endswith(unit):
            return int(text[: -len(unit)]) * factor
    return int(text)


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity in cores."""
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


# ------------------------------------------------------------------ probes


def probe_url(container: dict[str, Any], probe: dict[str, Any], ports: Mapping[int, int]) -> str:
    """The URL an HTTP probe calls, through the published port of its (named) port."""
    action = probe["httpGet"]
    port = _container_port(container, action["port"])
    if port not in ports:
        raise AssertionError(f"probe port {port} is not a port of the container")
    scheme = str(action.get("scheme", "HTTP")).lower()
    return f"{scheme}://127.0.0.1:{ports[port]}{action.get('path', '/')}"


def probe_once(url: str, timeout: float) -> int | None:
    """The probe's HTTP status (None: no answer); 200-399 is success, as for the kubelet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def wait_for_probe(url: str, probe: dict[str, Any]) -> int:
    """Poll like the kubelet (period, timeout, failure threshold); the seconds it took."""
    period = float(probe.get("periodSeconds", 10))
    timeout = float(probe.get("timeoutSeconds", 1))
    attempts = int(probe.get("failureThreshold", 3))
    started = time.monotonic()
    last = None
    for _ in range(attempts):
        last = probe_once(url, timeout)
        if last is not None and 200 <= last < 400:
            return int(time.monotonic() - started)
        time.sleep(period)
    raise AssertionError(f"probe {url} failed {attempts} times (last status {last})")


def clean(path: Path) -> None:
    """Remove a work directory (files the pod wrote there are the test's own)."""
    shutil.rmtree(path, ignore_errors=True)
