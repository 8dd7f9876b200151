"""The gateway's configuration: one YAML file, validated by pydantic at start-up.

The file is the single description of providers (credentials), models (public
names mapped to deployments), routing and resilience. Strings may reference
environment variables as ``${NAME}`` or ``${NAME:-default}``, so secrets stay in
the environment. A bad file raises :class:`ConfigError` naming the key and the
reason, before the server binds its port; nothing is validated lazily at the
first request.

Example (the bundled ``example.yaml``)::

    providers:
      openai: {type: openai, api_key: "${OPENAI_API_KEY}", base_url: "${OPENAI_BASE_URL:-}"}
    models:
      gpt-4o-mini:
        deployments:
          - {provider: openai, model: gpt-4o-mini}
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway_app.governance.settings import GovernanceConfig

EXAMPLE_CONFIG = Path(__file__).with_name("example.yaml")
"""The bundled example config: used when neither ``--config`` nor ``AIGW_CONFIG`` is set."""

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The config file is unusable; the message names the file, the key and the reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryConfig(_Model):
    """Retries of one deployment and the deadline of the whole request."""

    max_retries: int = Field(
        2, ge=0, le=10, description="retries per deployment after the first try"
    )
    backoff_base_s: float = Field(
        0.25, gt=0, description="first backoff ceiling; doubles per retry"
    )
    backoff_max_s: float = Field(8.0, gt=0, description="largest backoff ceiling")
    deadline_s: float = Field(
        120.0, gt=0, description="total time for all tries and failovers of one request"
    )


class CircuitBreakerConfig(_Model):
    """Per-deployment circuit breaker: opens on a failure rate over a time window."""

    failure_rate: float = Field(0.5, gt=0, le=1, description="failure share that opens the circuit")
    min_calls: int = Field(10, ge=1, description="calls in the window before the rate counts")
    window_s: float = Field(30.0, gt=0, description="length of the sliding window")
    cooldown_s: float = Field(30.0, gt=0, description="time the circuit stays open")
    half_open_probes: int = Field(
        1, ge=1, description="probe calls allowed when half-open; all must succeed to close"
    )


class Price(_Model):
    """USD per million tokens."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)


class ProviderConfig(_Model):
    """Credentials and endpoint of one provider account (referenced by deployments)."""

    type: str = Field(
        description="adapter: openai, anthropic, bedrock, azure_openai, vertex (a folder each)"
    )
    api_key: str | None = None
    base_url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="extra upstream headers")
    # The environment variables api_key refers to, so /health/ready can say what to set.
    api_key_env: tuple[str, ...] = ()
    # Cloud providers (bedrock, azure_openai, vertex); deployments may override them in params.
    region: str | None = Field(None, description="bedrock: AWS region (default AWS_REGION)")
    project: str | None = Field(None, description="vertex: Google Cloud project id")
    location: str | None = Field(None, description="vertex: region or `global`")
    api_version: str | None = Field(None, description="azure_openai: the `api-version` query")
    token_url: str | None = Field(
        None, description="azure_openai: Entra token endpoint (default from AZURE_AUTHORITY_HOST)"
    )

    @model_validator(mode="after")
    def _known_type(self) -> ProviderConfig:
        from gateway_app.providers import ADAPTERS

        if self.type not in ADAPTERS:
            raise ValueError(f"unknown provider type {self.type!r}; use one of {sorted(ADAPTERS)}")
        return self


class DeploymentConfig(_Model):
    """One upstream model behind a public model name."""

    provider: str = Field(description="a key of `providers`")
    model: str = Field(min_length=1, description="the upstream model name")
    name: str | None = Field(None, description="unique id; default `<provider>/<model>`")
    weight: float = Field(1.0, ge=0, description="share under the weighted strategy")
    priority: int = Field(0, description="lower is tried first under failover")
    price: Price | None = None
    timeout_s: float = Field(60.0, gt=0, description="per-try timeout (first byte for streams)")
    params: dict[str, Any] = Field(
        default_factory=dict, description="provider-specific, e.g. anthropic default_max_tokens"
    )

    @property
    def id(self) -> str:
        """The deployment's unique id (circuit breaker and latency key)."""
        return self.name or f"{self.provider}/{self.model}"


class ShadowConfig(_Model):
    """Mirror a share of requests to another deployment; results are recorded only."""

    deployment: DeploymentConfig
    share: float = Field(0.1, ge=0, le=1)


class ModelCacheConfig(_Model):
    """Per-model cache settings; unset fields take the `cache` section's defaults."""

    ttl_s: float | None = Field(
        None, ge=0, description="lifetime of a cached response; 0 disables caching this model"
    )
    semantic: bool | None = Field(
        None, description="serve near-identical requests (opt-in; a request may opt in too)"
    )
    threshold: float | None = Field(
        None, gt=0, le=1, description="cosine similarity a reworded prompt needs"
    )
    guard: Literal["strict", "loose"] | None = Field(
        None, description="the guard's profile for this model (default: the `cache.semantic` one)"
    )


class ModelConfig(_Model):
    """A public model name and how requests for it are routed."""

    strategy: Literal["failover", "weighted", "lowest_cost", "lowest_latency"] = "failover"
    deployments: list[DeploymentConfig] = Field(min_length=1)
    retry: RetryConfig | None = None
    shadow: ShadowConfig | None = None
    owned_by: str = "aigw"
    cache: ModelCacheConfig | None = None


class ServerConfig(_Model):
    """HTTP server limits."""

    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="larger bodies get 413")
    graceful_shutdown_s: float = Field(30.0, ge=0, description="time in-flight requests get")


class RouterConfig(_Model):
    """Defaults for every model's routing and resilience."""

    seed: int | None = Field(None, description="seed of the routing random source (tests)")
    latency_ewma_alpha: float = Field(0.3, gt=0, le=1)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)


class SemanticScopesConfig(_Model):
    """Callers whose requests never get (or fill) a semantic hit; exact hits still apply."""

    keys: list[str] = Field(default_factory=list, description="virtual key ids")
    teams: list[str] = Field(default_factory=list, description="team ids")
    projects: list[str] = Field(default_factory=list, description="project ids")


class SemanticCacheConfig(_Model):
    """The semantic cache: an embedder, a vector index per replica, the guard's profile."""

    embedder: str = Field(
        "local",
        description="`local` (all-MiniLM-L6-v2, bundled, in-process) or a configured "
        "embeddings model name served by the gateway's own providers",
    )
    # Precision first: `strict` refuses a word swapped at one place in an otherwise
    # equal request unless the words are known equivalents; `loose` does not (more
    # hits, more wrong ones). Measured precision/recall of both: README, bench/.
    guard: Literal["strict", "loose"] = Field(
        "strict", description="the guard's profile: `strict` (default) or `loose` (opt-in)"
    )
    threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="cosine similarity a reworded prompt needs (default: the profile's); "
        "prompts with the same content words need at most this",
    )
    disabled_for: SemanticScopesConfig = Field(
        default_factory=SemanticScopesConfig,
        description="keys, teams and projects that never get semantic hits",
    )
    max_entries: int = Field(100_000, ge=1, description="vectors kept per replica (oldest evicted)")
    embed_timeout_s: float = Field(
        0.5, gt=0, description="an embedding slower than this is a miss, not a delay"
    )
    max_pending: int = Field(
        16, ge=1, description="embeddings queued at once; beyond that requests skip the lookup"
    )


class CacheConfig(_Model):
    """Response caching: exact (every model with a TTL) and semantic (opt-in)."""

    enabled: bool = Field(False, description="master switch for both caches")
    ttl_s: float = Field(3600.0, ge=0, description="default lifetime of a cached response")
    max_entries: int = Field(10_000, ge=1, description="in-process store size (LRU)")
    max_entry_bytes: int = Field(1024 * 1024, ge=1, description="larger responses are not cached")
    semantic: SemanticCacheConfig = Field(default_factory=SemanticCacheConfig)


class MetricsConfig(_Model):
    """Prometheus metrics at ``/metrics``."""

    enabled: bool = True
    per_key_labels: bool = Field(
        False, description="add key/team/customer labels (cardinality grows with them)"
    )


class LogsConfig(_Model):
    """One structured JSON line per request."""

    enabled: bool = True
    include_prompts: bool = Field(False, description="log messages and completions (PII!)")


class ObservabilityConfig(_Model):
    """Metrics, traces (OTLP, configured by the standard OTEL_* variables) and logs."""

    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)


class GatewayConfig(_Model):
    """The whole config file."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    router: RouterConfig = Field(default_factory=RouterConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(min_length=1)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        seen: dict[str, str] = {}
        for model_name, model in self.models.items():
            deployments = list(model.deployments)
            if model.shadow:
                deployments.append(model.shadow.deployment)
            for index, deployment in enumerate(deployments):
                where = (
                    f"models.{model_name}.deployments[{index}]"
                    if index < len(model.deployments)
                    else f"models.{model_name}.shadow.deployment"
                )
                if deployment.provider not in self.providers:
                    raise ValueError(
                        f"{where}.provider: {deployment.provider!r} is not a key of `providers` "
                        f"(known: {sorted(self.providers)})"
                    )
                owner = seen.setdefault(deployment.id, model_name)
                if owner != model_name:
                    raise ValueError(
                        f"{where}: deployment id {deployment.id!r} is also used by model "
                        f"{owner!r}; give one of them a distinct `name`"
                    )
        embedder = self.cache.semantic.embedder
        if embedder != "local" and embedder not in self.models:
            raise ValueError(
                f"cache.semantic.embedder: {embedder!r} is neither `local` nor a model of "
                f"`models` (known: {sorted(self.models)}); name an embeddings model or use `local`"
            )
        return self

    def retry_for(self, model: str) -> RetryConfig:
        """The retry settings of a model (its own or the router default)."""
        return self.models[model].retry or self.router.retry


def interpolate(value: Any, missing: set[str] | None = None) -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string of a YAML tree.

    A string that is exactly one unset reference without a default becomes
    ``None`` (so an unset ``OPENAI_API_KEY`` means "no credentials", not "");
    the names of unset variables are added to ``missing``.
    """
    if isinstance(value, dict):
        return {k: interpolate(v, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, missing) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found:
            return found
        if missing is not None:
            missing.add(name)
        return default or ""

    result = _ENV_REF.sub(substitute, value)
    return result or None


def parse(raw: Any, source: str = "<config>") -> GatewayConfig:
    """Validate an already-loaded YAML tree; raise :class:`ConfigError` on any problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the file must hold a mapping with `models` (and `providers`)")
    raw = dict(raw)
    providers = raw.get("providers")
    if isinstance(providers, dict):
        resolved = {}
        for name, provider in providers.items():
            if isinstance(provider, dict):
                provider = dict(provider)
                key = provider.get("api_key")
                if isinstance(key, str):
                    provider["api_key_env"] = tuple(m.group(1) for m in _ENV_REF.finditer(key))
            resolved[name] = provider
        raw["providers"] = resolved
    raw = interpolate(raw)
    try:
        return GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid config\n" + _describe(exc)) from None


def load(path: str | os.PathLike[str] | None = None) -> GatewayConfig:
    """Read and validate the config file (``path``, else ``AIGW_CONFIG``, else the example)."""
    chosen = Path(path or os.environ.get("AIGW_CONFIG") or EXAMPLE_CONFIG)
    try:
        text = chosen.read_text()
    except OSError as exc:
        raise ConfigError(
            f"{chosen}: cannot read the config file ({exc.strerror}); "
            "pass --config FILE or set AIGW_CONFIG"
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{chosen}: not valid YAML: {exc}") from None
    return parse(raw, str(chosen))


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ""
        for part in error["loc"]:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling"
        shown = error.get("input")
        suffix = (
            f" (got {shown!r})"
            if error["type"] != "extra_forbidden" and not isinstance(shown, dict)
            else ""
        )
        lines.append(f"  {key or '(top level)'}: {message}{suffix}")
    return "\n".join(lines)
