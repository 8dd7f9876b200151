"""The gateway's configuration: one YAML file, validated by pydantic at start-up.

The file is the single description of providers (credentials), models (public
names mapped to deployments), routing and resilience. Strings may reference
environment variables as ``${NAME}`` or ``${NAME:-default}``, so secrets stay in
the environment. A bad file raises :class:`ConfigError` naming the key and the
reason, before the server binds its port; nothing is validated lazily at the
first request.

A provider's key is always referenced the same way, ``api_key: "${NAME}"``
(:data:`KEY_REFERENCE_FORM`); other spellings (``apiKeyEnv``, ``api_key_env``,
``apiKey``) are refused with that form in the message.

This package is also the contract with the deployment: ``aigw plan`` validates a
stack's ``gateway.appConfig`` with :func:`parse`, so it imports only pydantic,
PyYAML and the standard library (a test checks its import closure, and the
import contracts in pyproject.toml keep infra away from the rest of the
gateway). The ``governance:`` and ``identity:`` sections' models are in
:mod:`.governance` and :mod:`.identity`.

Example (the bundled ``example.yaml``)::

    providers:
      openai: {type: openai, api_key: "${OPENAI_API_KEY}", base_url: "${OPENAI_BASE_URL:-}"}
    models:
      gpt-4o-mini:
        deployments:
          - {provider: openai, model: gpt-4o-mini}
"""

from __future__ import annotations

import importlib.util
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway_app.config.governance import GovernanceConfig
from gateway_app.config.identity import IdentityConfig

EXAMPLE_CONFIG = Path(__file__).parent.parent / "example.yaml"
"""The bundled example config: used when neither ``--config`` nor ``AIGW_CONFIG`` is set."""

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

KEY_REFERENCE_FORM = 'api_key: "${%s}"'
"""The one accepted way to give a provider its key: a reference to an environment variable."""

# Spellings of a key setting that are not accepted (each gets KEY_REFERENCE_FORM in its error).
_KEY_SPELLINGS = re.compile(r"^(api[-_]?key[-_]?(env|ref|name|var(iable)?)?|key|token)$", re.I)


@dataclass(frozen=True)
class Problem:
    """One bad key: its dotted path in the file (``models.m.deployments[0].provider``) and why."""

    path: str
    message: str


class ConfigError(Exception):
    """The config file is unusable; the message names the file, the key and the reason.

    ``problems`` holds one :class:`Problem` per bad key (empty when the file as a
    whole is unusable), so a caller can name the keys in its own terms.
    """

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class _PathError(ValueError):
    """A cross-field error that belongs to a key below the model raising it."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


@cache
def provider_types() -> tuple[str, ...]:
    """The adapter folders of ``gateway_app/providers`` (the accepted provider ``type`` values).

    Found from the package's directory without importing it: the adapters pull
    in the gateway's runtime dependencies, and this module must stay importable
    with pydantic and PyYAML alone.
    """
    spec = importlib.util.find_spec("gateway_app.providers")
    folders = spec.submodule_search_locations if spec else None
    return tuple(
        sorted(
            entry.name
            for folder in folders or ()
            for entry in Path(folder).iterdir()
            if (entry / "__init__.py").is_file()
        )
    )


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
    api_key: str | None = Field(
        None, description='the key, as a reference to an environment variable: "${NAME}"'
    )
    base_url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="extra upstream headers")
    # Filled by `parse` from api_key's references (never read from the file), so
    # /health/ready and the router can say which variable to set.
    api_key_env: tuple[str, ...] = Field((), exclude=True)
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
        if self.type not in provider_types():
            raise _PathError(
                "type",
                f"unknown provider type {self.type!r}; use one of {list(provider_types())}",
            )
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
        None,
        gt=0,
        le=1,
        description="cosine similarity below which no cached prompt is weighed by the judge "
        "for this model (default: the `cache.semantic` one)",
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


SHUTDOWN_ALLOWANCE_S = 20
"""The longest the gateway's shutdown takes once its in-flight requests are done (after
``server.graceful_shutdown_s`` at most): the audit events and settlements still queued
written to Redis (5 s of retries), those Redis did not take written to the database
(5 s), the audit drainer's last pass and the pools closed. The pod's termination grace
period covers the preStop pause, ``graceful_shutdown_s`` and this
(``infra.decisions.k8s.termination_grace_s``)."""


class ServerConfig(_Model):
    """HTTP server limits, and the process's cyclic GC."""

    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="larger bodies get 413")
    graceful_shutdown_s: float = Field(30.0, ge=0, description="time in-flight requests get")
    # The gateway's own server (the default) enforces these before the app runs.
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="a request's headers must arrive within this (from the connection or the "
        "request's first byte); else 408 and close",
    )
    body_timeout_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="a request's whole body must arrive within this after its headers, "
        "whatever the pace; else 408 and close",
    )
    max_url_bytes: int = Field(8192, ge=256, description="longer request lines get 414")
    max_header_bytes: int = Field(
        32768, ge=1024, description="larger heads (request line + headers) get 431"
    )
    # A request in flight holds ~80 objects the cyclic GC tracks; Python's default
    # threshold (700 more allocations than frees) is reached by the requests in flight
    # alone, so a governed replica collected every ~100 requests at 16 connections and more
    # often at 64, walking live requests, not garbage (bench/partial-gc-threshold.md).
    gc_threshold: int = Field(
        10_000,
        ge=700,
        le=1_000_000,
        description="the cyclic GC's generation-0 threshold, set at start-up (Python's "
        "default: 700); larger: fewer, longer collections",
    )


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
    # Precision first: `strict` asks the judge for a probability chosen so that
    # pairs by authors it was not fitted on keep precision 0.99; `loose` for one
    # that keeps 0.98 (more hits, more wrong ones). Measured: README, bench/.
    guard: Literal["strict", "loose"] = Field(
        "strict", description="the guard's profile: `strict` (default) or `loose` (opt-in)"
    )
    threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="cosine similarity below which no cached prompt is weighed by the judge "
        "(default: the profile's floor, 0.70); the judge's own threshold is the profile's",
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
    encodings_mb: int = Field(
        64,
        ge=1,
        description="memory per replica for recent prompts' token states (what the judge "
        "compares); a prompt not held is encoded again when a later one comes near it",
    )


class CacheConfig(_Model):
    """Response caching: exact (every model with a TTL) and semantic (opt-in)."""

    enabled: bool = Field(False, description="master switch for both caches")
    ttl_s: float = Field(3600.0, ge=0, description="default lifetime of a cached response")
    max_entries: int = Field(10_000, ge=1, description="in-process store size (LRU)")
    max_entry_bytes: int = Field(1024 * 1024, ge=1, description="larger responses are not cached")
    semantic: SemanticCacheConfig = Field(default_factory=SemanticCacheConfig)


class RedisConfig(_Model):
    """How the gateway uses Redis (``AIGW_REDIS_URL``) besides governance's counters.

    The cached responses and the stored Responses-API responses share the Redis that
    holds the budget and rate-limit counters and the audit buffer. Redis keys with a
    lifetime are what its eviction policy (``volatile-lru`` on every managed Redis this
    project deploys) removes when memory is full, and the counters have one: were the
    cached responses to fill Redis, it would evict counters, and a budget would start
    again from zero. So they are written only while Redis has room (its ``INFO memory``:
    ``used_memory`` below ``store_below_memory`` of ``maxmemory``); past it, a response is
    answered and not cached or stored (``aigw_redis_store_writes_skipped_total``). The
    audit buffer, which grows while PostgreSQL is down, stops at ``buffer_below_memory``:
    each replica then holds the events it would append (see ``SettleBatcher``)."""

    store_below_memory: float = Field(
        0.7,
        gt=0,
        le=1,
        description="cache and store responses in Redis only while its used memory is below "
        "this share of maxmemory (1: always; the counters then risk eviction)",
    )
    memory_check_s: float = Field(
        5.0, gt=0, le=300, description="how often each store reads Redis' memory use"
    )
    buffer_below_memory: float = Field(
        0.9,
        gt=0,
        le=1,
        description="append audit events to the Redis buffer only while its used memory is "
        "below this share of maxmemory; above it each replica holds them (up to 100,000, then "
        "drops new ones, logged) rather than have Redis evict budget counters (1: always)",
    )

    @model_validator(mode="after")
    def _thresholds(self) -> RedisConfig:
        if self.buffer_below_memory < self.store_below_memory:
            raise ValueError(
                f"redis.buffer_below_memory ({self.buffer_below_memory}) is below "
                f"redis.store_below_memory ({self.store_below_memory}): cached responses "
                "would crowd out the audit buffer; set it at or above store_below_memory"
            )
        return self


class ResponsesConfig(_Model):
    """Stored responses of the Responses API (``previous_response_id``, ``GET /v1/responses``).

    The gateway keeps them itself (Redis when ``AIGW_REDIS_URL`` is set, else in-process)
    and sends every upstream call with ``store: false``."""

    store: bool = Field(
        True, description="keep responses unless a request says `store: false`; off: never"
    )
    # A week, not OpenAI's 30 days: each stored response holds its whole conversation, and
    # clients that send `store` by default (the Agents SDK) store every turn; a chain older
    # than this is answered with a 400 naming previous_response_id (resend the input).
    ttl_s: float = Field(
        7 * 86400.0, gt=0, description="how long a stored response can be read or chained"
    )
    max_entries: int = Field(1_000, ge=1, description="in-process store size (LRU)")
    max_entry_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="larger conversations are answered, not stored"
    )


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
    responses: ResponsesConfig = Field(default_factory=ResponsesConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)

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
                    raise _PathError(
                        f"{where}.provider",
                        f"{deployment.provider!r} is not a key of `providers` "
                        f"(known: {sorted(self.providers)}); name one of them or add it there",
                    )
                owner = seen.setdefault(deployment.id, model_name)
                if owner != model_name:
                    raise _PathError(
                        where,
                        f"deployment id {deployment.id!r} is also used by model "
                        f"{owner!r}; give one of them a distinct `name`",
                    )
        embedder = self.cache.semantic.embedder
        if embedder != "local" and embedder not in self.models:
            raise _PathError(
                "cache.semantic.embedder",
                f"{embedder!r} is neither `local` nor a model of `models` "
                f"(known: {sorted(self.models)}); name an embeddings model or use `local`",
            )
        return self

    def retry_for(self, model: str) -> RetryConfig:
        """The retry settings of a model (its own or the router default)."""
        return self.models[model].retry or self.router.retry


def interpolate(
    value: Any, missing: set[str] | None = None, environ: Mapping[str, str] | None = None
) -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string of a YAML tree.

    A string that is exactly one unset reference without a default becomes
    ``None`` (so an unset ``OPENAI_API_KEY`` means "no credentials", not "");
    the names of unset variables are added to ``missing``. ``environ`` defaults
    to the process environment (``aigw plan`` passes the pod's planned one).
    """
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: interpolate(v, missing, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, missing, env) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = env.get(name)
        if found:
            return found
        if missing is not None:
            missing.add(name)
        return default or ""

    result = _ENV_REF.sub(substitute, value)
    return result or None


def references(value: Any) -> list[str]:
    """The environment variables a string refers to (``${NAME}`` or ``${NAME:-default}``)."""
    return [m.group(1) for m in _ENV_REF.finditer(value)] if isinstance(value, str) else []


def key_spelling_problems(raw: Any) -> list[Problem]:
    """The provider keys given in a form other than ``api_key: "${NAME}"``.

    ``apiKeyEnv: OPENAI_API_KEY``, ``api_key_env: [...]``, ``apiKey: ...`` and
    the like are refused here, each with the accepted form in its message.
    """
    providers = raw.get("providers") if isinstance(raw, Mapping) else None
    if not isinstance(providers, Mapping):
        return []
    problems = []
    for name, provider in providers.items():
        if not isinstance(provider, Mapping):
            continue
        for key, value in provider.items():
            if key == "api_key" or not isinstance(key, str) or not _KEY_SPELLINGS.match(key):
                continue
            named = value[0] if isinstance(value, list | tuple) and value else value
            named = (references(named) or [named])[0]
            variable = (
                named
                if isinstance(named, str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", named)
                else f"{str(name).upper().replace('-', '_')}_API_KEY"
            )
            problems.append(
                Problem(
                    f"providers.{name}.{key}",
                    f"{key!r} is not accepted; give the provider its key as "
                    f"{KEY_REFERENCE_FORM % variable} (a reference to the environment variable "
                    "that holds it)",
                )
            )
    return problems


def parse(
    raw: Any, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Validate an already-loaded YAML tree; raise :class:`ConfigError` on any problem.

    ``${...}`` references are resolved from ``environ`` (default: the process
    environment) before validation, as the gateway does at start-up.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the file must hold a mapping with `models` (and `providers`)")
    problems = key_spelling_problems(raw)
    if problems:
        raise ConfigError(_render(source, problems), problems)
    raw = dict(raw)
    providers = raw.get("providers")
    if isinstance(providers, dict):
        resolved = {}
        for name, provider in providers.items():
            if isinstance(provider, dict):
                provider = dict(provider)
                provider["api_key_env"] = tuple(references(provider.get("api_key")))
            resolved[name] = provider
        raw["providers"] = resolved
    raw = interpolate(raw, environ=environ)
    try:
        # The environment reaches validators too (the OIDC client secret's presence).
        context = {"environ": environ} if environ is not None else None
        return GatewayConfig.model_validate(raw, context=context)
    except ValidationError as exc:
        problems = _problems(exc)
        raise ConfigError(_render(source, problems), problems) from None


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


def _render(source: str, problems: list[Problem]) -> str:
    lines = [f"  {p.path or '(top level)'}: {p.message}" for p in problems]
    return f"{source}: invalid config\n" + "\n".join(lines)


def _path(loc: tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts (for an unknown key's message)."""
    node: Any = GatewayConfig
    for part in loc:
        node = _step(node, part)
    node = _step(node, None) if typing.get_origin(node) in (Union, types.UnionType) else node
    if isinstance(node, type) and issubclass(node, BaseModel):
        return sorted(f.alias or n for n, f in node.model_fields.items() if not f.exclude)
    return []


def _step(node: Any, part: Any) -> Any:
    """The annotation one key (``part``) below ``node`` (a model, a mapping, a list, Optional)."""
    origin = typing.get_origin(node)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(node) if a is not type(None)]
        return _step(options[0], part) if len(options) == 1 and part is not None else options[0]
    if origin in (dict, list):
        return typing.get_args(node)[-1]
    if isinstance(node, type) and issubclass(node, BaseModel):
        field = next((f for n, f in node.model_fields.items() if part in (n, f.alias)), None)
        return field.annotation if field else None
    return None


def _problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, _PathError):
            path = ".".join(p for p in (_path(loc), original.path) if p)
            problems.append(Problem(path, str(original)))
            continue
        message = error["msg"].removeprefix("Value error, ")
        kind = error["type"]
        shown = error.get("input")
        if kind == "extra_forbidden":
            known = _known_keys(loc[:-1])
            message = "unknown key; remove it or check its spelling" + (
                f" (known keys here: {', '.join(known)})" if known else ""
            )
        elif kind == "missing":
            message = "is required; add it"
        elif not isinstance(shown, dict):
            message = f"{message} (got {shown!r})"
        problems.append(Problem(_path(loc), message))
    return problems
