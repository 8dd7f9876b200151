"""The decisions behind the gateway's Kubernetes objects, as small pure functions.

Nothing here registers a resource or imports a Pulumi SDK: each function takes
plain values and returns plain values (or raises :class:`ValueError` naming the
input, the value and the fix), so the unit tests exercise every branch and the
component in :mod:`infra.k8s.gateway` reads as the objects it owns.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from infra.config import Environment

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
