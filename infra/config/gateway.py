"""``ai-gateway:gateway``: the gateway workload on every cluster."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra.config.base import _Model, _SectionError
from infra.contracts import Environment
from infra.decisions import k8s as decisions
from infra.decisions.k8s import Resources


class GatewayConfig(_Model):
    """The gateway workload on every cluster (``ai-gateway:gateway``).

    Provider API keys and the admin key are not here: they are secret config
    (``ai-gateway:providerKeys.<name>``, ``ai-gateway:adminKey``), read by
    :func:`~infra.config.secret_settings`.
    """

    _defaults: ClassVar[dict[Environment, dict[str, Any]]] = {
        Environment.DEV: {
            "replicas": 1,
            "maxReplicas": 3,
            "cpuRequest": "100m",
            "cpuLimit": "1",
            "memoryRequest": "256Mi",
            "memoryLimit": "512Mi",
        },
        Environment.STAGING: {
            "replicas": 2,
            "maxReplicas": 6,
            "cpuRequest": "250m",
            "cpuLimit": "1",
            "memoryRequest": "512Mi",
            "memoryLimit": "1Gi",
        },
        Environment.PROD: {
            "replicas": 3,
            "maxReplicas": 20,
            "cpuRequest": "500m",
            "cpuLimit": "2",
            "memoryRequest": "1Gi",
            "memoryLimit": "1Gi",
        },
    }

    image: str = Field(
        default="ghcr.io/example/ai-gateway:0.1.0",
        description="Published gateway image reference (tag or digest).",
    )
    build_image: bool = Field(
        default=False,
        description=(
            "Build gateway_app/Dockerfile (context: the repository root) and push it to a registry "
            "in each enabled cloud (ECR, ACR, Artifact Registry), tagged with `image`'s tag, "
            "instead of pulling `image`. Off by default: a published, tested image needs no Docker "
            "engine in the deploy job. The deploy job must be logged in to ACR (`az acr login`)."
        ),
    )
    registry_keep_images: int = Field(
        default=30,
        ge=1,
        le=1000,
        description=(
            "Gateway images each cloud registry keeps (newest first) when `buildImage` is on; "
            "older ones are deleted by the registry's lifecycle / cleanup policy."
        ),
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Minimum gateway replicas per cluster (at least 2 in staging and prod, so a node drain is never an outage).",
    )
    max_replicas: int = Field(default=3, ge=1, le=500, description="HPA upper bound per cluster.")
    cpu_request: str = Field(
        default="100m",
        description="CPU request per gateway pod: what the scheduler reserves and the HPA's 100%.",
    )
    cpu_limit: str = Field(
        default="1",
        description="CPU limit per gateway pod: bounds a noisy pod without throttling normal bursts.",
    )
    memory_request: str = Field(default="256Mi", description="Memory request per gateway pod.")
    memory_limit: str = Field(
        default="512Mi",
        description="Memory limit per gateway pod (equal to the request in prod: memory is never overcommitted there).",
    )
    canary_image: str | None = Field(
        default=None,
        description=(
            "Second image that runs beside `image` (canary / blue-green). Unset: no canary objects. "
            "Promote by setting `image` to it and unsetting it."
        ),
    )
    canary_weight: int = Field(
        default=0,
        ge=0,
        le=100,
        description=(
            "Percentage of requests sent to `canaryImage`. 0 keeps it warm but idle (reachable with "
            "the `X-Gateway-Canary: always` header), 100 switches all traffic to it (blue-green)."
        ),
    )
    acme_email: str | None = Field(
        default=None,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Contact address of the ACME account (certificate expiry and account notices). Optional.",
    )
    acme_server: str = Field(
        default="https://acme-v02.api.letsencrypt.org/directory",
        pattern=r"^https://",
        description=(
            "ACME directory that issues the gateway's certificates. Let's Encrypt production by "
            "default so certificates are valid; its staging directory avoids rate limits while testing."
        ),
    )
    console_allowed_cidrs: list[str] = Field(
        default_factory=list,
        description=(
            "Networks (CIDRs) the console (`/console`) and sign-in (`/auth`) may be reached "
            "from, such as the corporate egress or VPN ranges: enforced at each cluster's edge "
            "(an Envoy Gateway SecurityPolicy on the console's route, judged on the client's "
            "own address) and again by the gateway (`identity.console_allowed_cidrs`). Empty: "
            "any network. The API (`/v1`, and `/admin` with a key) is not affected."
        ),
    )
    app_config: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The gateway's own config file (`providers`, `models`, routing, cache, governance), "
            "validated at plan time by the gateway's config model and rendered per cluster into "
            'a ConfigMap. Keys are references, never values: `api_key: "${GROQ_API_KEY}"` '
            'with `providerKeys.groq` set. Unset: the default catalogue (docs: "Model '
            'catalogue rules").'
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_environment_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        env = (info.context or {}).get("environment", Environment.DEV)
        return {**cls._defaults.get(env, {}), **data}

    @field_validator("console_allowed_cidrs")
    @classmethod
    def _console_networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                network = ipaddress.ip_network(str(cidr), strict=True)
            except ValueError as exc:
                raise ValueError(
                    f"{cidr!r} is not a network in CIDR notation ({exc}); use for example "
                    "10.0.0.0/8 or 203.0.113.0/24"
                ) from None
            if network.prefixlen == 0:
                raise ValueError(
                    f"{cidr} admits every address; list the organisation's networks, or leave "
                    "consoleAllowedCidrs empty to allow any"
                )
        return value

    @model_validator(mode="after")
    def _replica_bounds(self) -> GatewayConfig:
        if self.max_replicas < self.replicas:
            raise _SectionError(
                "maxReplicas",
                f"maxReplicas {self.max_replicas} is below replicas {self.replicas}; "
                "raise maxReplicas",
            )
        return self

    @model_validator(mode="after")
    def _workload_checks(self) -> GatewayConfig:
        checks = [
            ("cpuRequest", lambda: decisions.cpu_millicores(self.cpu_request, "cpuRequest")),
            ("cpuLimit", lambda: decisions.cpu_millicores(self.cpu_limit, "cpuLimit")),
            ("memoryRequest", lambda: decisions.memory_bytes(self.memory_request, "memoryRequest")),
            ("memoryLimit", lambda: decisions.memory_bytes(self.memory_limit, "memoryLimit")),
            ("cpuRequest", lambda: self.resources),
            (
                "canaryWeight",
                lambda: decisions.canary_plan(
                    self.canary_image,
                    self.canary_weight,
                    decisions.Scaling(self.replicas, self.max_replicas),
                ),
            ),
        ]
        for key, check in checks:
            try:
                check()
            except ValueError as exc:
                raise _SectionError(key, str(exc)) from None
        if self.canary_image is not None and self.canary_image == self.image:
            raise _SectionError(
                "canaryImage",
                f"canaryImage {self.canary_image} is the stable image; set it to the new version "
                "or unset it",
            )
        return self

    @property
    def resources(self) -> Resources:
        """The container requests and limits, validated (each request at most its limit)."""
        return Resources(self.cpu_request, self.cpu_limit, self.memory_request, self.memory_limit)
