"""The decisions behind the gateway's Kubernetes objects, as small pure functions.

Nothing here registers a resource or imports a Pulumi SDK: each function takes
plain values and returns plain values (or raises :class:`ValueError` naming the
input, the value and the fix), so the unit tests exercise every branch and the
component in :mod:`infra.k8s.gateway` reads as the objects it owns.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from infra.contracts import Environment

DNS_LABEL_MAX = 63
"""Kubernetes object names, label values and DNS labels are at most 63 characters."""

DNS_NAME_MAX = 253
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_HASH_LENGTH = 10


# ---------------------------------------------------------------------- names


def dns_label(*parts: str, max_length: int = DNS_LABEL_MAX) -> str:
    """``parts`` joined by ``-`` as one RFC 1123 DNS label of at most ``max_length``.

    Every Kubernetes name the component builds goes through here. A name that
    would be too long keeps its start and ends in a short hash of the whole, so
    two long names that differ only at the end stay distinct.
    """
    if not parts or any(not p for p in parts):
        raise ValueError(f"name parts {parts!r} include an empty part; give every part a value")
    name = "-".join(parts).lower()
    if not _DNS_LABEL.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid Kubernetes name; use lowercase letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )
    if not _HASH_LENGTH + 2 <= max_length <= DNS_LABEL_MAX:
        raise ValueError(f"max_length {max_length} must lie between 12 and {DNS_LABEL_MAX}")
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
    head = name[: max_length - _HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}"


def content_hash(*parts: str, length: int = _HASH_LENGTH) -> str:
    """A short, stable hash of ``parts`` (order matters) for names that must change with content."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part.encode())
    return digest.hexdigest()[:length]


def migration_job_name(base: str, image: str, config_file: str) -> str:
    """The schema-migration Job's name: ``<base>-migrate-<hash(image, config)>``.

    A Job's pod template is immutable and a finished Job never runs again, so
    a new image or config must be a new Job: the hash puts both in the name,
    and Pulumi replaces the Job (running the migration) exactly when one of
    them changes.
    """
    if not image:
        raise ValueError("image is empty; give the migration Job the gateway image reference")
    return dns_label(base, "migrate", content_hash(image, config_file))


def gateway_hostnames(domain: str, hostname: str, cloud: str) -> tuple[str, str]:
    """The global hostname and this cloud's own hostname.

    ``<hostname>.<domain>`` is served by every cluster (the global load balancer
    picks one); ``<hostname>-<cloud>.<domain>`` reaches one cluster directly for
    health checks and debugging.
    """
    names = (f"{hostname}.{domain}", f"{hostname}-{cloud}.{domain}")
    for name in names:
        labels = name.split(".")
        if len(name) > DNS_NAME_MAX or any(
            len(label) > DNS_LABEL_MAX or not _DNS_LABEL.fullmatch(label) for label in labels
        ):
            raise ValueError(
                f"{name!r} is not a valid DNS name; use ai-gateway:dns.hostname and "
                "ai-gateway:dns.domain made of lowercase labels of at most 63 characters"
            )
    return names


# -------------------------------------------------------------------- scaling


@dataclass(frozen=True)
class Scaling:
    """Replica bounds of one Deployment: the HPA's minimum and maximum."""

    min_replicas: int
    max_replicas: int


_MIN_REPLICAS = {Environment.DEV: 1, Environment.STAGING: 2, Environment.PROD: 2}


def scaling(environment: Environment, replicas: int, max_replicas: int) -> Scaling:
    """Validate the replica bounds for an environment.

    Staging and prod need at least two replicas: with one, every node drain or
    rollout of the PodDisruptionBudget-protected Deployment is an outage.
    """
    floor = _MIN_REPLICAS[environment]
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < floor:
        raise ValueError(
            f"replicas {replicas!r} is too low for {environment.value}; set "
            f"ai-gateway:gateway.replicas to at least {floor}"
        )
    if (
        isinstance(max_replicas, bool)
        or not isinstance(max_replicas, int)
        or max_replicas < replicas
    ):
        raise ValueError(
            f"maxReplicas {max_replicas!r} is below replicas {replicas}; raise "
            "ai-gateway:gateway.maxReplicas"
        )
    return Scaling(replicas, max_replicas)


# ------------------------------------------------------------------ resources

_CPU = re.compile(r"^(\d+(\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_UNITS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def cpu_millicores(quantity: str, key: str = "cpu") -> int:
    """A CPU quantity (``"250m"``, ``"1"``, ``"1.5"``) in millicores."""
    match = _CPU.fullmatch(str(quantity).strip())
    if not match:
        raise ValueError(
            f"{key} {quantity!r} is not a CPU quantity; use millicores like 250m or cores like 1"
        )
    number = float(match.group(1))
    millis = number if match.group(3) else number * 1000
    if millis < 1 or millis != int(millis):
        raise ValueError(f"{key} {quantity!r} is below 1m or finer than 1m; use e.g. 100m")
    return int(millis)


def memory_bytes(quantity: str, key: str = "memory") -> int:
    """A memory quantity (``"512Mi"``, ``"1Gi"``) in bytes."""
    match = _MEMORY.fullmatch(str(quantity).strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{key} {quantity!r} is not a memory quantity; use e.g. 256Mi or 1Gi")
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]


@dataclass(frozen=True)
class Resources:
    """Container requests and limits, validated: each request at most its limit."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str

    def __post_init__(self) -> None:
        if cpu_millicores(self.cpu_request, "cpuRequest") > cpu_millicores(
            self.cpu_limit, "cpuLimit"
        ):
            raise ValueError(
                f"cpuRequest {self.cpu_request} exceeds cpuLimit {self.cpu_limit}; raise "
                "ai-gateway:gateway.cpuLimit or lower cpuRequest"
            )
        if memory_bytes(self.memory_request, "memoryRequest") > memory_bytes(
            self.memory_limit, "memoryLimit"
        ):
            raise ValueError(
                f"memoryRequest {self.memory_request} exceeds memoryLimit {self.memory_limit}; "
                "raise ai-gateway:gateway.memoryLimit or lower memoryRequest"
            )

    @property
    def requests(self) -> dict[str, str]:
        """The ``requests`` map of a container."""
        return {"cpu": self.cpu_request, "memory": self.memory_request}

    @property
    def limits(self) -> dict[str, str]:
        """The ``limits`` map of a container."""
        return {"cpu": self.cpu_limit, "memory": self.memory_limit}


MIGRATION_RESOURCES = Resources("100m", "500m", "128Mi", "256Mi")
"""The migration Job is short and light; it gets its own small, fixed footprint."""


# --------------------------------------------------------------------- canary


@dataclass(frozen=True)
class CanaryPlan:
    """Which canary objects exist and how much traffic the canary gets.

    * no canary image: none (stable Deployment, Service and Ingress only);
    * a canary image and weight 0: the canary Deployment, Service, HPA, PDB,
      migration Job and an Ingress with ``canary-weight: "0"`` exist; only
      requests carrying the ``X-Gateway-Canary: always`` header reach it
      (blue-green: green is warm and testable, blue serves everything);
    * weight 1-99: that percentage of requests goes to the canary;
    * weight 100: every request goes to the canary; the stable Deployment keeps
      running so setting the weight back to 0 is an instant rollback.
    """

    enabled: bool
    weight: int
    min_replicas: int


CANARY_HEADER = "X-Gateway-Canary"
"""Requests with this header set to ``always`` reach the canary whatever the weight."""


def canary_plan(canary_image: object | None, weight: int, stable: Scaling) -> CanaryPlan:
    """The canary objects for a canary image (or None) and a traffic weight 0-100.

    The canary's minimum replicas follow its share of the stable minimum
    (rounded up, at least one), so weight 100 gives it the stable capacity.
    """
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise ValueError(
            f"canaryWeight {weight!r} is not a percentage; set ai-gateway:gateway.canaryWeight "
            "to an integer from 0 to 100"
        )
    if canary_image is None or canary_image == "":
        if weight:
            raise ValueError(
                f"canaryWeight {weight} sends traffic to a canary but canaryImage is not set; "
                "set ai-gateway:gateway.canaryImage or set canaryWeight to 0"
            )
        return CanaryPlan(enabled=False, weight=0, min_replicas=0)
    replicas = max(1, math.ceil(stable.min_replicas * weight / 100))
    return CanaryPlan(enabled=True, weight=weight, min_replicas=replicas)


# ------------------------------------------------------------------- rollout


def rollout_checksum(key: str, config_file: str, secret_data: Mapping[str, str]) -> str:
    """The pod-template annotation that changes when the config or a secret changes.

    Kubernetes does not restart pods when a mounted ConfigMap or an env var's
    Secret changes; putting a digest of both in the pod template makes any
    change a rollout. It is an HMAC keyed with a random per-deployment value
    (kept secret in the state), so the annotation can stay in plain text
    without offering a hash of the secrets to guess against.
    """
    if not key:
        raise ValueError("the checksum key is empty; pass the per-deployment random key")
    mac = hmac.new(key.encode(), digestmod=hashlib.sha256)
    mac.update(config_file.encode())
    for name in sorted(secret_data):
        mac.update(b"\0" + name.encode() + b"\0" + secret_data[name].encode())
    return mac.hexdigest()


# ---------------------------------------------------------------------- edge

HEALTH_PATH = "/health/ready"
"""The gateway's readiness path: what the global DNS health checks request through the edge."""

STREAM_ALLOWANCE_S = 600
"""How long a streamed response may run after its first byte.

The gateway bounds the time to the first byte (all tries and failovers) by its
``deadline_s``; a streamed completion then runs until the model finishes, which
for long outputs takes minutes. The edge's request timeout is that deadline
plus this allowance, so the edge never cuts a request the gateway still serves,
and a hung stream still ends.
"""

HEALTH_TIMEOUT_S = 10
"""The readiness route's timeout: the DNS health checkers give up sooner anyway."""

REQUEST_RECEIVED_TIMEOUT_S = 120
"""Time a client has to send its whole request: 8 MiB (the default body limit) at
1 Mbit/s takes about 70 seconds; a slower, trickling client (slow loris) is cut off."""


PRE_STOP_S = 5
"""The gateway pod's preStop pause: the load balancers and Envoy drop the endpoint before
the gateway gets SIGTERM and stops accepting."""

MIN_READY_S = 5
"""The gateway Deployments' ``minReadySeconds``: a new pod counts as available (and an old
one may go) only once it has been ready this long. At least :data:`PRE_STOP_S`, so the old
pods one wave of a rollout replaces are past their preStop pause before the next wave's are
(:mod:`infra.decisions.postgres` counts one wave of them still holding connections)."""

ROLLING_MAX_SURGE_PERCENT = 25
"""The gateway Deployments' ``maxSurge`` (their ``maxUnavailable`` is 0): a rollout runs up
to this share of the replicas more, rounded up, and removes an old pod only once a new one
is available (:func:`rolling_surge`)."""


def rolling_surge(replicas: int) -> int:
    """Pods a rollout of a Deployment of ``replicas`` may run above them: ``maxSurge`` as a
    percentage of the replicas, rounded up
    (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#max-surge)."""
    return -(-replicas * ROLLING_MAX_SURGE_PERCENT // 100)


def termination_grace_s(app_config: Mapping[str, Any]) -> int:
    """The gateway pod's termination grace period: the preStop pause, the time in-flight
    requests get (the gateway's ``server.graceful_shutdown_s``) and its shutdown after
    them (:data:`gateway_app.config.SHUTDOWN_ALLOWANCE_S`: the audit flush). Kubernetes
    kills the pod when the period ends, preStop included
    (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination):
    a fixed 30 s cut off a long stream's last seconds and the audit events still queued."""
    from gateway_app.config import SHUTDOWN_ALLOWANCE_S, ServerConfig

    server = app_config.get("server") or {}
    if not isinstance(server, Mapping):
        raise ValueError(
            f"ai-gateway:gateway.appConfig.server is {type(server).__name__}, not a mapping; "
            "give it as keys and values"
        )
    try:
        graceful = ServerConfig.model_validate(dict(server)).graceful_shutdown_s
    except ValueError as exc:
        raise ValueError(f"ai-gateway:gateway.appConfig.server: {exc}") from None
    return PRE_STOP_S + math.ceil(graceful) + SHUTDOWN_ALLOWANCE_S


@dataclass(frozen=True)
class EdgeLimits:
    """What the edge enforces in front of the gateway, derived from the gateway's own config."""

    max_body_bytes: int
    """Request bodies above this get 413 at the edge, exactly as the gateway would answer."""
    request_timeout_s: int
    """Time from request to the last byte of the response, streams included."""

    @property
    def body_limit(self) -> str:
        """``max_body_bytes`` as a Kubernetes quantity (``8Mi`` when whole mebibytes)."""
        mib = 1024 * 1024
        if self.max_body_bytes % mib == 0:
            return f"{self.max_body_bytes // mib}Mi"
        return str(self.max_body_bytes)

    @property
    def request_timeout(self) -> str:
        """``request_timeout_s`` as a Gateway API duration (``720s``)."""
        return f"{self.request_timeout_s}s"


def edge_limits(app_config: Mapping[str, Any]) -> EdgeLimits:
    """The edge's body limit and request timeout, matching the gateway's config file.

    The body limit is the gateway's ``server.max_body_bytes``; the timeout is
    the longest request deadline of any model (``router.retry.deadline_s`` or a
    model's own ``retry.deadline_s``), rounded up, plus
    :data:`STREAM_ALLOWANCE_S`. Unset values take the gateway's own defaults
    (read from its config model, so the two cannot drift).
    """
    from gateway_app.config import RetryConfig, ServerConfig

    def section(value: Any, key: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(
                f"ai-gateway:gateway.appConfig.{key} is {type(value).__name__}, not a mapping; "
                "give it as keys and values"
            )
        return value

    def retry(value: Any, key: str) -> RetryConfig:
        try:
            return RetryConfig.model_validate(dict(section(value, key)))
        except ValueError as exc:
            raise ValueError(f"ai-gateway:gateway.appConfig.{key}: {exc}") from None

    server = section(app_config.get("server"), "server")
    try:
        max_body = ServerConfig.model_validate(dict(server)).max_body_bytes
    except ValueError as exc:
        raise ValueError(f"ai-gateway:gateway.appConfig.server: {exc}") from None
    router = section(app_config.get("router"), "router")
    deadlines = [retry(router.get("retry"), "router.retry").deadline_s]
    for name, model in section(app_config.get("models"), "models").items():
        model = section(model, f"models.{name}")
        if model.get("retry") is not None:
            deadlines.append(retry(model["retry"], f"models.{name}.retry").deadline_s)
    return EdgeLimits(
        max_body_bytes=max_body,
        request_timeout_s=math.ceil(max(deadlines)) + STREAM_ALLOWANCE_S,
    )


def backend_ref(service: str, weight: int | None = None, port: int = 80) -> dict[str, Any]:
    """An HTTPRoute ``backendRef`` to a gateway Service (its ``http`` port, 80)."""
    ref: dict[str, Any] = {"name": service, "port": port}
    if weight is not None:
        ref["weight"] = weight
    return ref


def https_route_rules(
    stable_service: str,
    canary_service: str | None,
    plan: CanaryPlan,
    limits: EdgeLimits,
) -> list[dict[str, Any]]:
    """The rules of the gateway's HTTPS route, most specific first.

    1. ``GET /health/ready`` goes to the stable track only: the global health
       checks judge the version that serves most traffic, never a canary.
    2. With a canary, requests carrying ``X-Gateway-Canary: always`` reach it
       whatever the weight (blue-green testing at weight 0).
    3. Everything else is split by weight: stable ``100 - w``, canary ``w``
       (Gateway API weights are proportional; 0 sends nothing).
    """
    timeouts = {"request": limits.request_timeout}
    rules: list[dict[str, Any]] = [
        {
            "matches": [{"path": {"type": "Exact", "value": HEALTH_PATH}}],
            "backendRefs": [backend_ref(stable_service)],
            "timeouts": {"request": f"{HEALTH_TIMEOUT_S}s"},
        }
    ]
    everything = {"path": {"type": "PathPrefix", "value": "/"}}
    if plan.enabled:
        if canary_service is None:
            raise ValueError("a canary plan needs the canary Service's name")
        rules.append(
            {
                "matches": [
                    {
                        **everything,
                        "headers": [{"type": "Exact", "name": CANARY_HEADER, "value": "always"}],
                    }
                ],
                "backendRefs": [backend_ref(canary_service)],
                "timeouts": timeouts,
            }
        )
        backends = [
            backend_ref(stable_service, 100 - plan.weight),
            backend_ref(canary_service, plan.weight),
        ]
    else:
        backends = [backend_ref(stable_service)]
    rules.append({"matches": [everything], "backendRefs": backends, "timeouts": timeouts})
    return rules


def https_redirect_rules() -> list[dict[str, Any]]:
    """The plain-HTTP listener's only rule: a permanent redirect to the same URL over HTTPS."""
    return [
        {
            "filters": [
                {
                    "type": "RequestRedirect",
                    "requestRedirect": {"scheme": "https", "statusCode": 301},
                }
            ]
        }
    ]


# ------------------------------------------------------------------- console

CONSOLE_PATHS = ("/console", "/auth")
"""The web console and people's sign-in: the paths ``gateway.consoleAllowedCidrs`` restricts."""


def console_route_rules(main_rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The console route's one rule: ``/console`` and ``/auth`` to the main route's backends.

    Gateway API (HTTPRoute, "Matching precedence") gives the longest matching path
    precedence across every route of a listener, so these paths leave the main
    route for this one and its SecurityPolicy. ``PathPrefix`` matches whole path
    segments (``/auth`` and ``/auth/login``, never ``/authx``). The backends, weights
    and timeout are those of the main route's catch-all rule: the console is the
    same gateway, on the same entry point.
    """
    everything = main_rules[-1]
    return [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": path}} for path in CONSOLE_PATHS],
            "backendRefs": everything["backendRefs"],
            "timeouts": everything["timeouts"],
        }
    ]


def console_authorization(allowed_cidrs: Sequence[str]) -> dict[str, Any]:
    """The SecurityPolicy ``authorization`` of the console's route: deny all but ``allowed_cidrs``.

    Judged on the client's address, which the ClientTrafficPolicy's
    ``clientIPDetection`` (:func:`client_ip_detection`) defines.
    """
    if not allowed_cidrs:
        raise ValueError("the console's allow-list is empty; give at least one CIDR")
    return {
        "defaultAction": "Deny",
        "rules": [
            {
                "name": "console-networks",
                "action": "Allow",
                "principal": {"clientCIDRs": list(allowed_cidrs)},
            }
        ],
    }


def client_ip_detection() -> dict[str, Any]:
    """The ClientTrafficPolicy's ``clientIPDetection``: the TCP peer is the client.

    Every cloud's load balancer in front of Envoy is a layer-4 passthrough that
    keeps the client's source address (the NLB with ``preserve_client_ip``, AKS's
    Standard Load Balancer and GKE's passthrough NLB with ``externalTrafficPolicy:
    Local``) and adds no ``X-Forwarded-For``; the global hostname is DNS only. So
    the downstream connection's address is the client's, and a client-sent
    ``X-Forwarded-For`` is never believed (``directSourceIP``, Envoy Gateway 1.9).
    """
    return {"directSourceIP": {}}


# ----------------------------------------------------------------- kubeconfig


EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"
"""The ``ExecCredential`` version all three clouds' plugins speak (``aws eks get-token``,
``gke-gcloud-auth-plugin``, ``kubelogin``)."""


@dataclass(frozen=True)
class ExecPlugin:
    """A client-go credential plugin: how kubectl and the kube provider get a token.

    Written as the kubeconfig user's ``exec`` entry ("client-go credential
    plugins", Kubernetes docs). The kubeconfig then holds no token or client
    certificate: every call runs ``command``, which answers a short-lived token
    from the caller's own cloud credentials. Each cloud's module in
    :mod:`infra.decisions` names its plugin; :func:`kubeconfig` writes it.
    """

    command: str
    """The executable, found on ``PATH``."""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment variables for the plugin (the caller's own are passed through)."""
    install_hint: str | None = None
    """Shown by kubectl when ``command`` is not installed."""
    provide_cluster_info: bool | None = None
    """Hand the cluster entry to the plugin in ``KUBERNETES_EXEC_INFO``; omitted when ``None``."""
    interactive_mode: Literal["Never", "IfAvailable", "Always"] = "Never"
    """Whether the plugin may prompt: ``Never`` for non-interactive CLIs, ``IfAvailable``
    for a device-code login."""
    api_version: str = EXEC_API_VERSION

    def entry(self) -> dict[str, Any]:
        """The ``users[].user.exec`` mapping; unset optional fields are left out."""
        if not self.command:
            raise ValueError("exec plugin command is empty; name the credential plugin to run")
        spec: dict[str, Any] = {"apiVersion": self.api_version, "command": self.command}
        if self.args:
            spec["args"] = list(self.args)
        if self.env:
            spec["env"] = [{"name": k, "value": v} for k, v in self.env.items()]
        if self.install_hint:
            spec["installHint"] = self.install_hint
        if self.provide_cluster_info is not None:
            spec["provideClusterInfo"] = self.provide_cluster_info
        spec["interactiveMode"] = self.interactive_mode
        return spec


def kubeconfig(name: str, server: str, ca_data: str, plugin: ExecPlugin, *, user: str) -> str:
    """A single-cluster kubeconfig (YAML) whose user authenticates through ``plugin``.

    ``name`` names the cluster and the context (the current one), ``user`` the
    user entry; ``server`` is the API server's https URL and ``ca_data`` the
    base64 PEM of the cluster's CA, so the client verifies the server it talks
    to. The one builder of the three clouds' kubeconfigs: each passes its own
    plugin (:func:`infra.decisions.aws.kubeconfig`,
    :func:`infra.decisions.azure.kubeconfig`, :func:`infra.decisions.gcp.kubeconfig`).
    """
    for what, value in (("name", name), ("user", user), ("server", server), ("ca_data", ca_data)):
        if not value:
            raise ValueError(
                f"kubeconfig {what} is empty; the cluster must be created before its kubeconfig"
            )
    if not server.startswith("https://"):
        raise ValueError(
            f"API server {server!r} is not an https URL; pass the cluster's https endpoint"
        )
    try:
        base64.b64decode(ca_data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            f"certificate authority data {ca_data[:20]!r}... is not base64; pass the cluster's "
            "CA certificate as the cloud API returns it (base64 PEM)"
        ) from None
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
        "users": [{"name": user, "user": {"exec": plugin.entry()}}],
    }
    return yaml.safe_dump(document, sort_keys=False)
