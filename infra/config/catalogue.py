"""The gateway's model catalogue on each cluster, checked with the gateway's own config model.

``ai-gateway:gateway.appConfig`` is the gateway's config file (models,
providers, routing). Before any resource exists, :func:`cluster_config_file`
turns it into the file of one cluster and refuses what the pod would refuse or
could not serve:

1. secret material: the file lands in a ConfigMap, so a provider's key must be
   the reference ``api_key: "${NAME_API_KEY}"`` to a named provider key
   (``ai-gateway:providerKeys.<name>`` reaches the pod as ``<NAME>_API_KEY``);
2. the gateway's own validation (:func:`gateway_app.config.parse`, the
   contract) against the environment the pod will have;
3. reachability: a provider that signs in with a cloud's workload identity
   (``bedrock`` on AWS, ``vertex`` on GCP, ``azure_openai`` without a key on
   Azure) is kept only in that cloud's cluster; key-based providers everywhere.
   The global hostname sends any request to any cluster, so every model needs a
   deployment every cluster can call;
4. the gateway's start-up check on prices (:func:`gateway_app.config.prices.startup_refusal`):
   the planned pod always has an admin key, so governance is on, and by default the
   gateway refuses to start with a deployment that has no price (``price`` in the
   catalogue, else genai-prices' dataset), since it would count $0 against budgets.

The ``identity`` section (people's sign-in and the console) is checked against the
stack too (:func:`identity_problems`): its client secret is the stack secret
``ai-gateway:oidcClientSecret`` (the pod's ``AIGW_OIDC_CLIENT_SECRET``), never a
value in the file; the console's networks (``identity.console_allowed_cidrs``) come
from ``ai-gateway:gateway.consoleAllowedCidrs``, which the edge enforces too, and
the proxies whose ``X-Forwarded-For`` the gateway believes are the cluster's pods
(the edge's Envoy proxies).

Each cluster therefore prefers its own cloud (the only workload identity it
has) and fails over to the key-based providers in the catalogue's order.

When ``appConfig`` is left out, :func:`default_catalogue` builds the documented
default from the stack: the cloud models of every enabled cloud, and OpenAI and
Anthropic when their keys are set. Everything here is pure: no Pulumi.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import yaml

from gateway_app import config as gateway_config
from gateway_app.config.prices import startup_refusal, unpriced_error
from infra.config.aws import AwsConfig
from infra.config.azure import AzureConfig
from infra.config.base import provider_key_variable
from infra.config.gcp import GcpConfig
from infra.contracts import Cloud

APP_CONFIG_KEY = "ai-gateway:gateway.appConfig"
OIDC_SECRET_VARIABLE = "AIGW_OIDC_CLIENT_SECRET"
"""The pod's variable holding ``ai-gateway:oidcClientSecret`` (the gateway's default name)."""
_SET_OIDC_SECRET = "`pulumi config set --secret ai-gateway:oidcClientSecret VALUE`"
_CONSOLE_NETWORKS = "ai-gateway:gateway.consoleAllowedCidrs"

WORKLOAD_IDENTITY_PROVIDERS = {
    "bedrock": Cloud.AWS,
    "azure_openai": Cloud.AZURE,
    "vertex": Cloud.GCP,
}
"""Provider types that authenticate with one cloud's workload identity (no key)."""

_KEY_VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]*_API_KEY$")
_ONE_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_SECRET_NAME = re.compile(
    r"(api[_-]?key|apikey|password|passwd|secret|token|credential|private[_-]?key|dsn)$",
    re.IGNORECASE,
)
_SECRET_HEADER = re.compile(r"^(authorization|proxy-authorization|api-key|x-api-key)$", re.I)
_CREDENTIALS_IN_URL = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)


@dataclass
class CatalogueError(ValueError):
    """The catalogue is unusable; ``problems`` holds ``(key, message)`` pairs.

    Each key is relative to ``ai-gateway:gateway.appConfig`` (``models.chat``),
    each message names the value and the fix.
    """

    problems: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(
            f"{APP_CONFIG_KEY}{'.' + key if key else ''}: {message}"
            for key, message in self.problems
        )


# ------------------------------------------------------------------ checks


def secret_problems(app_config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Secret material in the catalogue: literal keys, credentials in URLs, secret headers."""
    problems = []
    for path, key, value in _walk(app_config):
        if path == "identity.oidc.client_secret" and value is not None:
            problems.append(
                (
                    path,
                    "is secret material in the config file (a ConfigMap); remove it and run "
                    f"{_SET_OIDC_SECRET}: the pods read it as {OIDC_SECRET_VARIABLE} from the "
                    "gateway's Kubernetes Secret",
                )
            )
        elif isinstance(value, str) and _CREDENTIALS_IN_URL.match(value):
            problems.append(
                (path, "holds a URL with credentials; the config file is a ConfigMap, not a secret")
            )
        elif key == "api_key" and path.startswith("providers."):
            problem = _key_reference_problem(path.split(".")[1], value)
            if problem:
                problems.append((path, problem))
        elif (
            isinstance(key, str)
            and (
                _SECRET_NAME.search(key)
                or (".headers." in f".{path}" and _SECRET_HEADER.match(key))
            )
            and isinstance(value, str)
            and value
            and not gateway_config.references(value)
        ):
            problems.append(
                (
                    path,
                    "looks like secret material; the config file is a ConfigMap, not a secret: "
                    "store the value with `pulumi config set --secret --path "
                    "'ai-gateway:providerKeys.<name>' VALUE` and refer to it as ${<NAME>_API_KEY}",
                )
            )
    return problems


def _key_reference_problem(provider: str, value: Any) -> str | None:
    name, variable = _suggestion(provider)
    form = gateway_config.KEY_REFERENCE_FORM % variable
    command = f"`pulumi config set --secret --path 'ai-gateway:providerKeys.{name}' VALUE`"
    if value is None:
        return None
    reference = _ONE_REFERENCE.match(value) if isinstance(value, str) else None
    if reference is None:
        return (
            "is not a reference to a provider key (a literal key would land in a ConfigMap); "
            f"store the key with {command} and write {form}"
        )
    if not _KEY_VARIABLE.match(reference.group(1)):
        return (
            f"${{{reference.group(1)}}} is not a provider key variable: "
            "ai-gateway:providerKeys.<name> reaches the pod as <NAME>_API_KEY; set the key with "
            f"{command} and write {form}"
        )
    return None


def _suggestion(provider: str) -> tuple[str, str]:
    """The provider key name and variable to suggest for a provider (its own name if it can)."""
    name = str(provider).lower().replace("_", "-")
    try:
        return name, provider_key_variable(name)
    except ValueError:
        return "<name>", "<NAME>_API_KEY"


def identity_problems(
    app_config: Mapping[str, Any], oidc_client_secret: bool
) -> list[tuple[str, str]]:
    """What the stack must provide for the ``identity`` section, and what it must not hold.

    * a confidential OIDC client (any ``token_auth_method`` but ``none``) needs
      ``ai-gateway:oidcClientSecret``, which reaches the pod as
      :data:`OIDC_SECRET_VARIABLE` (so ``client_secret_env`` may not name another);
    * ``console_allowed_cidrs`` and ``trusted_proxies`` are the program's to write
      (the stack's ``gateway.consoleAllowedCidrs``, the cluster's pod ranges).
    """
    identity = _mapping(app_config.get("identity"))
    oidc = _mapping(identity.get("oidc"))
    problems = []
    for key in ("console_allowed_cidrs", "trusted_proxies"):
        if key in identity:
            source = (
                f"set {_CONSOLE_NETWORKS} instead (the edge enforces it too)"
                if key == "console_allowed_cidrs"
                else "the program sets it to the cluster's pod ranges (the edge's Envoy proxies)"
            )
            problems.append((f"identity.{key}", f"is not set here on Kubernetes: {source}"))
    if not oidc:
        return problems
    variable = oidc.get("client_secret_env", OIDC_SECRET_VARIABLE)
    if variable != OIDC_SECRET_VARIABLE:
        problems.append(
            (
                "identity.oidc.client_secret_env",
                f"{variable!r}: on Kubernetes the client secret reaches the pods as "
                f"{OIDC_SECRET_VARIABLE} (from ai-gateway:oidcClientSecret); remove "
                "client_secret_env",
            )
        )
    method = oidc.get("token_auth_method", "client_secret_basic")
    if method != "none" and not oidc_client_secret and oidc.get("client_secret") is None:
        problems.append(
            (
                "identity.oidc",
                f"is a confidential client (token_auth_method {method}) but the client secret "
                f"is not set: run {_SET_OIDC_SECRET} (it reaches the pods as "
                f"{OIDC_SECRET_VARIABLE} from the gateway's Kubernetes Secret), or set "
                "token_auth_method: none for a public client",
            )
        )
    return problems


def identity_warnings(
    app_config: Mapping[str, Any], oidc_client_secret: bool, console_allowed_cidrs: Collection[str]
) -> list[str]:
    """Stack settings the ``identity`` section leaves unused."""
    identity = _mapping(app_config.get("identity"))
    oidc = _mapping(identity.get("oidc"))
    warnings = []
    if oidc_client_secret and (not oidc or oidc.get("token_auth_method") == "none"):
        warnings.append(
            "ai-gateway:oidcClientSecret is set but no confidential OIDC client uses it "
            f"({APP_CONFIG_KEY}.identity.oidc); remove it with `pulumi config rm "
            "ai-gateway:oidcClientSecret` or configure sign-in"
        )
    if console_allowed_cidrs and not (oidc or identity.get("admin_key_login")):
        warnings.append(
            f"{_CONSOLE_NETWORKS} is set but the gateway serves no console ({APP_CONFIG_KEY} "
            "has no identity section with oidc or admin_key_login); the edge restricts "
            "/console and /auth anyway"
        )
    return warnings


def key_variables(provider_keys: Collection[str]) -> dict[str, str]:
    """``{variable: provider key name}`` for the provider keys a stack sets."""
    return {provider_key_variable(name): name for name in provider_keys}


def missing_key_references(
    app_config: Mapping[str, Any], provider_keys: Collection[str]
) -> dict[str, str]:
    """``{provider: variable}`` for providers whose key reference no provider key sets."""
    known = key_variables(provider_keys)
    missing = {}
    for name, provider in _mapping(app_config.get("providers")).items():
        reference = _ONE_REFERENCE.match(str(_mapping(provider).get("api_key") or ""))
        if reference and reference.group(1) not in known:
            missing[str(name)] = reference.group(1)
    return missing


def unset_key_warnings(app_config: Mapping[str, Any], provider_keys: Collection[str]) -> list[str]:
    """One line per provider whose key is not set: its deployments are skipped until it is."""
    return [
        f"{APP_CONFIG_KEY}.providers.{provider}: its key ${{{variable}}} is not set, so its "
        "deployments are skipped; set it with `pulumi config set --secret --path "
        f"'ai-gateway:providerKeys.{_key_name(variable)}' VALUE`"
        for provider, variable in missing_key_references(app_config, provider_keys).items()
    ]


def _key_name(variable: str) -> str:
    return variable.removesuffix("_API_KEY").lower().replace("_", "-")


# ------------------------------------------------------------- per cluster


def reachable(provider_type: str, has_key: bool, cloud: Cloud) -> bool:
    """Whether a cluster on ``cloud`` can authenticate to a provider of this type.

    Workload-identity providers work only on their own cloud (an Azure OpenAI
    account with a key works anywhere); key-based providers work everywhere.
    """
    native = WORKLOAD_IDENTITY_PROVIDERS.get(provider_type)
    return native is None or native == cloud or (provider_type == "azure_openai" and has_key)


def cluster_config_file(
    app_config: Mapping[str, Any],
    cloud: Cloud,
    provider_keys: Collection[str],
    *,
    oidc_client_secret: bool = False,
    console_allowed_cidrs: Sequence[str] = (),
    trusted_proxies: Sequence[str] = (),
) -> str:
    """The gateway config file (YAML) of the cluster on ``cloud``; :class:`CatalogueError` if unusable.

    ``provider_keys`` are the names set under ``ai-gateway:providerKeys``;
    ``oidc_client_secret`` whether ``ai-gateway:oidcClientSecret`` is set. With an
    ``identity`` section, the file gets ``console_allowed_cidrs`` (the stack's
    ``gateway.consoleAllowedCidrs``) and ``trusted_proxies`` (the cluster's pod ranges).
    """
    problems = secret_problems(app_config) + identity_problems(app_config, oidc_client_secret)
    if problems:
        raise CatalogueError(problems)
    app_config = with_console_networks(app_config, console_allowed_cidrs, trusted_proxies)
    environment = {variable: "planned-secret" for variable in key_variables(provider_keys)}
    if oidc_client_secret:
        environment[OIDC_SECRET_VARIABLE] = "planned-secret"
    try:
        parsed = gateway_config.parse(dict(app_config), APP_CONFIG_KEY, environment)
    except gateway_config.ConfigError as exc:
        raise CatalogueError(
            [(p.path, p.message) for p in exc.problems] or [("", str(exc))]
        ) from None

    missing = missing_key_references(app_config, provider_keys)
    kept = {
        name
        for name, provider in parsed.providers.items()
        if reachable(provider.type, bool(provider.api_key_env), cloud)
    }
    raw = {key: value for key, value in app_config.items()}
    raw["providers"] = {
        name: value for name, value in _mapping(app_config.get("providers")).items() if name in kept
    }
    models: dict[str, Any] = {}
    origins: dict[str, list[int]] = {}  # model -> appConfig index of each kept deployment
    for model_name, model in parsed.models.items():
        raw_model = dict(_mapping(app_config["models"])[model_name])
        origins[model_name] = [
            index
            for index, deployment in enumerate(model.deployments)
            if deployment.provider in kept
        ]
        deployments = [raw_model["deployments"][index] for index in origins[model_name]]
        usable = [d for d in deployments if d["provider"] not in missing]
        if not usable:
            problems.append((f"models.{model_name}", _unservable(model, parsed, cloud, missing)))
            continue
        raw_model["deployments"] = deployments
        shadow = _mapping(raw_model.get("shadow"))
        if shadow and _mapping(shadow.get("deployment")).get("provider") not in kept:
            raw_model.pop("shadow")
        models[model_name] = raw_model
    if problems:
        raise CatalogueError(problems)
    raw["models"] = models
    # The cluster's own file must still be a valid gateway config (an embedder model kept, ...).
    try:
        cluster = gateway_config.parse(raw, APP_CONFIG_KEY, environment)
    except gateway_config.ConfigError as exc:
        raise CatalogueError(
            [(p.path, f"{p.message} (on the {cloud.value} cluster)") for p in exc.problems]
        ) from None
    # ... and one the pod starts with: the gateway's own start-up check on prices. The pod
    # always has AIGW_ADMIN_KEY (the gateway Secret), so governance is on unless the file
    # turns it off. Reported at the appConfig's paths, with the gateway's message.
    refused = startup_refusal(cluster, governance_on=cluster.governance.active(admin_key_set=True))
    if refused:
        located = [replace(u, index=origins[u.model][u.index]) for u in refused]
        raise CatalogueError([("", unpriced_error(located))])
    return yaml.safe_dump(raw, sort_keys=False, default_flow_style=False)


def with_console_networks(
    app_config: Mapping[str, Any], allowed: Sequence[str], trusted_proxies: Sequence[str]
) -> Mapping[str, Any]:
    """``app_config`` with the console's networks in its ``identity`` section (when it has one)."""
    identity = app_config.get("identity")
    if not isinstance(identity, Mapping):
        return app_config
    networks: dict[str, Any] = {"trusted_proxies": list(trusted_proxies)}
    if allowed:
        networks["console_allowed_cidrs"] = list(allowed)
    return {**app_config, "identity": {**identity, **networks}}


def _unservable(
    model: gateway_config.ModelConfig,
    parsed: gateway_config.GatewayConfig,
    cloud: Cloud,
    missing: Mapping[str, str],
) -> str:
    reasons = []
    for deployment in model.deployments:
        provider = parsed.providers[deployment.provider]
        native = WORKLOAD_IDENTITY_PROVIDERS.get(provider.type)
        if deployment.provider in missing:
            reasons.append(
                f"{deployment.provider} has no key (${{{missing[deployment.provider]}}})"
            )
        elif native is not None and native != cloud:
            reasons.append(f"{deployment.provider} needs the {native.value} workload identity")
    native_type = next(t for t, c in WORKLOAD_IDENTITY_PROVIDERS.items() if c == cloud)
    return (
        f"no deployment the {cloud.value} cluster can call ({'; '.join(reasons)}), and the "
        "global hostname sends requests for this model to every cluster; add a deployment "
        f"of type {native_type}, or a key-based one whose key is set with `pulumi config "
        "set --secret --path 'ai-gateway:providerKeys.<name>' VALUE`"
    )


def check_config_file(text: str) -> str:
    """``text`` if it is a YAML mapping free of secret material (the ConfigMap's guard).

    :class:`~infra.k8s.gateway.GatewayDeployment` applies it to any config file
    it is handed, so a caller building its args by hand cannot put a key or an
    Output (possibly secret) into the ConfigMap either.
    """
    if not isinstance(text, str):
        raise TypeError(
            "config_file must be a plain str (an Output could carry a secret into the "
            "ConfigMap); build it with StackConfig.gateway_config_file"
        )
    loaded = yaml.safe_load(text) if text.strip() else None
    if not isinstance(loaded, Mapping):
        raise ValueError("config_file is not a YAML mapping; build it with gateway_config_file")
    problems = secret_problems(loaded)
    if problems:
        raise CatalogueError(problems)
    return text


# -------------------------------------------------------- default catalogue

_TIERS: dict[str, dict[str, str]] = {
    # tier -> provider type -> model (Azure: the deployment name, created with the model's name)
    "chat": {
        "bedrock": "amazon.nova-pro-v1:0",
        "azure_openai": "gpt-4o",
        "vertex": "gemini-2.5-pro",
        "openai": "gpt-4o",
        "anthropic": "claude-sonnet-4-6",
    },
    "chat-fast": {
        "bedrock": "amazon.nova-lite-v1:0",
        "azure_openai": "gpt-4o-mini",
        "vertex": "gemini-2.5-flash",
        "openai": "gpt-4o-mini",
        "anthropic": "claude-haiku-4-5",
    },
    "embeddings": {
        "bedrock": "amazon.titan-embed-text-v2:0",
        "azure_openai": "text-embedding-3-small",
        "vertex": "text-embedding-005",
        "openai": "text-embedding-3-small",
    },
}


_PRICES: dict[tuple[str, str], dict[str, float]] = {
    # Models genai-prices does not know (USD per million tokens; the gateway refuses to start
    # with an unpriced deployment). Vertex AI bills text-embedding-005 per character, $0.000025
    # per 1,000 characters online ("Vertex AI pricing", Embeddings for Text); at Google's ~4
    # characters per token that is $0.10 per million tokens.
    ("vertex", "text-embedding-005"): {"input_per_mtok": 0.1, "output_per_mtok": 0.0},
}
"""Prices of the default catalogue's models that genai-prices does not know (USD per million tokens)."""


def azure_openai_endpoint(account_id: str) -> str:
    """``https://<account>.openai.azure.com`` from an Azure OpenAI account's resource id.

    Entra sign-in needs the account's custom subdomain, which Azure sets to the
    account name when the account is created.
    """
    return f"https://{account_id.rstrip('/').rsplit('/', 1)[-1].lower()}.openai.azure.com"


class CatalogueSections(Protocol):
    """The stack sections the default catalogue reads (a :class:`~infra.config.StackConfig`)."""

    @property
    def aws(self) -> AwsConfig: ...

    @property
    def azure(self) -> AzureConfig: ...

    @property
    def gcp(self) -> GcpConfig: ...

    @property
    def enabled_clouds(self) -> list[Cloud]: ...


def default_catalogue(config: CatalogueSections, provider_keys: Collection[str]) -> dict[str, Any]:
    """The catalogue used when ``gateway.appConfig`` is left out.

    Three public models, ``chat``, ``chat-fast`` and ``embeddings``, each
    served by the cloud model of every enabled cloud (Bedrock in
    ``aws.region``, Azure OpenAI on ``azure.openaiAccountId`` when set, Vertex
    AI in ``gcp.project``/``gcp.region``), then by OpenAI and Anthropic when
    their keys (``providerKeys.openai``, ``providerKeys.anthropic``) are set.
    Every endpoint is ``${SDK_VARIABLE:-public endpoint}``, so an operator can
    point a cluster at a private endpoint or a proxy without editing it. Every
    deployment has a price: genai-prices' or, where it has none, a ``price``.
    """
    providers: dict[str, dict[str, Any]] = {}
    if config.aws.enabled:
        providers["aws-bedrock"] = {
            "type": "bedrock",
            "region": config.aws.region,
            "base_url": "${AWS_ENDPOINT_URL_BEDROCK_RUNTIME:-https://bedrock-runtime."
            f"{config.aws.region}.amazonaws.com}}",
        }
    if config.azure.enabled and config.azure.openai_account_id:
        endpoint = azure_openai_endpoint(config.azure.openai_account_id)
        providers["azure-openai"] = {
            "type": "azure_openai",
            "base_url": f"${{AZURE_OPENAI_ENDPOINT:-{endpoint}}}",
            "api_version": "2024-10-21",
        }
    if config.gcp.enabled:
        providers["vertex"] = {
            "type": "vertex",
            "project": config.gcp.project,
            "location": config.gcp.region,
            "base_url": "${GOOGLE_VERTEX_BASE_URL:-https://"
            f"{config.gcp.region}-aiplatform.googleapis.com}}",
        }
    if "openai" in provider_keys:
        providers["openai"] = {
            "type": "openai",
            "api_key": "${OPENAI_API_KEY}",
            "base_url": "${OPENAI_BASE_URL:-https://api.openai.com/v1}",
        }
    if "anthropic" in provider_keys:
        providers["anthropic"] = {
            "type": "anthropic",
            "api_key": "${ANTHROPIC_API_KEY}",
            "base_url": "${ANTHROPIC_BASE_URL:-https://api.anthropic.com}",
        }
    enabled = config.enabled_clouds
    models = {}
    for tier, by_type in _TIERS.items():
        types = [p["type"] for p in providers.values() if p["type"] in by_type]
        if not all(any(reachable(t, False, cloud) for t in types) for cloud in enabled):
            continue  # a tier some cluster could not serve is left out (requests go anywhere)
        deployments: list[dict[str, Any]] = []
        for name, provider in providers.items():
            model = by_type.get(provider["type"])
            if model is None:
                continue
            # Cloud models first (each cluster keeps only its own), then the vendors' APIs.
            priority = 0 if provider["type"] in WORKLOAD_IDENTITY_PROVIDERS else len(deployments)
            deployment: dict[str, Any] = {"provider": name, "model": model, "priority": priority}
            if (provider["type"], model) in _PRICES:
                deployment["price"] = dict(_PRICES[provider["type"], model])
            if provider["type"] == "anthropic":
                deployment["params"] = {"default_max_tokens": 4096}
            if (provider["type"], model) in _PRICES:
                deployment["price"] = dict(_PRICES[(provider["type"], model)])
            deployments.append(deployment)
        if deployments:
            models[tier] = {"strategy": "failover", "deployments": deployments}
    return {"providers": providers, "models": models}


# ------------------------------------------------------------------ helpers


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _walk(node: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    found: list[tuple[str, Any, Any]] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            found.append((path, key, value))
            found.extend(_walk(value, path))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            path = f"{prefix}[{index}]"
            found.append((path, None, value))
            found.extend(_walk(value, path))
    return found
