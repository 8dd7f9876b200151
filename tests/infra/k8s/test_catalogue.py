"""``gateway.appConfig``: one contract with the gateway, one key syntax, one catalogue per cluster."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway_app.config import parse as gateway_parse
from infra.config import Cloud, ConfigError, parse
from infra.config.catalogue import (
    CatalogueError,
    check_config_file,
    cluster_config_file,
    default_catalogue,
    secret_problems,
)
from tests.conftest import imported_modules
from tests.infra.conftest import ROOT

BASE: dict[str, Any] = {
    "environment": "dev",
    "tags": {"owner": "platform", "costCenter": "cc-1"},
    "dns": {"domain": "ai.example.com"},
    "aws": {"enabled": True},
}
SECRET = {"ai-gateway:providerKeys", "ai-gateway:adminKey"}

GROQ_PRICE = {"input_per_mtok": 0.59, "output_per_mtok": 0.79}
"""genai-prices looks a ``type: openai`` model up among OpenAI's: Groq's needs its price."""
CATALOGUE: dict[str, Any] = {
    "providers": {
        "aws-bedrock": {"type": "bedrock", "region": "us-east-1"},
        "azure-openai": {"type": "azure_openai", "base_url": "https://acme.openai.azure.com"},
        "vertex": {"type": "vertex", "project": "acme-ai", "location": "us-central1"},
        "groq": {
            "type": "openai",
            "api_key": "${GROQ_API_KEY}",
            "base_url": "https://api.groq.com/openai/v1",
        },
    },
    "models": {
        "chat": {
            "deployments": [
                {"provider": "aws-bedrock", "model": "amazon.nova-pro-v1:0"},
                {"provider": "azure-openai", "model": "gpt-4o"},
                {"provider": "vertex", "model": "gemini-2.5-pro"},
                {
                    "provider": "groq",
                    "model": "llama-3.3-70b-versatile",
                    "priority": 1,
                    "price": GROQ_PRICE,
                },
            ]
        }
    },
}


def stack(app_config: Any = None, keys: dict[str, str] | None = None, **clouds: Any) -> Any:
    values = copy.deepcopy(BASE)
    values.update(clouds)
    if app_config is not None:
        values["gateway"] = {"appConfig": app_config}
    if keys:
        values["providerKeys"] = keys
    return parse(values, SECRET)


def unpriced(config_file: str) -> list[str]:
    """The deployments of a cluster's config file the gateway would refuse to start with.

    With governance on (always, in a cluster: the admin key is set), ``serve``
    refuses a deployment neither genai-prices nor the config prices.
    """
    from gateway_app.config.prices import unpriced_deployments

    keys = {"OPENAI_API_KEY": "sk", "ANTHROPIC_API_KEY": "sk-ant"}
    return unpriced_deployments(gateway_parse(yaml.safe_load(config_file), environ=keys))


def problems(app_config: dict[str, Any], **clouds: Any) -> str:
    with pytest.raises(ConfigError) as error:
        stack(app_config, **clouds)
    return str(error.value)


# ------------------------------------------------------- the gateway's contract


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda c: c.update(routes=[{"name": "default"}]),
            "ai-gateway:gateway.appConfig.routes: unknown key; remove it or check its spelling "
            "(known keys here: cache, governance, identity, models, observability, providers, redis, responses, router, server)",
        ),
        (
            lambda c: c["models"]["chat"]["deployments"][0].update(provider="aws"),
            "ai-gateway:gateway.appConfig.models.chat.deployments[0].provider: 'aws' is not a key "
            "of `providers`",
        ),
        (
            lambda c: c["models"]["chat"].update(strategy="fastest"),
            "ai-gateway:gateway.appConfig.models.chat.strategy: Input should be 'failover', "
            "'weighted', 'lowest_cost' or 'lowest_latency' (got 'fastest')",
        ),
        (
            lambda c: c.pop("models"),
            "ai-gateway:gateway.appConfig.models: is required; add it",
        ),
    ],
)
def test_what_the_gateway_refuses_the_plan_refuses(mutate: Any, expected: str) -> None:
    catalogue = copy.deepcopy(CATALOGUE)
    mutate(catalogue)
    assert expected in problems(catalogue)


def test_a_catalogue_the_pod_would_not_start_with_for_want_of_prices_is_refused(
    tmp_path: Path,
) -> None:
    """Every planned pod has the admin key, so governance is on, and the gateway refuses to
    start with an unpriced deployment (issue 20): the plan refuses it too, with the gateway's
    own message, at the deployment's path in appConfig (not in the cluster's file)."""
    catalogue = copy.deepcopy(CATALOGUE)
    del catalogue["models"]["chat"]["deployments"][3]["price"]
    message = problems(catalogue)
    assert message.startswith(
        "ai-gateway:gateway.appConfig: governance is on, and these deployments have no price "
    )
    assert (
        "\n  models.chat.deployments[3] (groq/llama-3.3-70b-versatile, upstream model " in message
    )
    # The gateway itself, given the same catalogue, refuses to start with the same message.
    file = tmp_path / "gateway.yaml"
    file.write_text(yaml.safe_dump(catalogue))
    serve = subprocess.run(
        [sys.executable, "-m", "gateway_app", "serve", "--config", str(file), "--port", "0"],
        env={**os.environ, "AIGW_ADMIN_KEY": "admin", "GROQ_API_KEY": "gsk"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert serve.returncode == 2, serve.stderr
    assert f"error: {message.removeprefix('ai-gateway:gateway.appConfig: ')}\n" in serve.stderr
    # What the gateway would start with, the plan accepts: governance off, or refusing the
    # unpriced model per request, or a deployment no cluster keeps (Vertex, without GCP).
    for governance in ({"enabled": False}, {"unpriced_models": "refuse_with_budget"}):
        assert stack({**catalogue, "governance": governance}).gateway.app_config
    only_on_gcp = copy.deepcopy(CATALOGUE)
    only_on_gcp["models"]["chat"]["deployments"][2]["model"] = "gemini-unpriced"
    assert stack(only_on_gcp).gateway.app_config
    with pytest.raises(ConfigError, match=r"deployments\[2\] \(vertex/gemini-unpriced"):
        stack(only_on_gcp, gcp={"enabled": True, "project": "acme-ai-gateway-dev"})


@pytest.mark.parametrize(
    ("provider", "path", "expected"),
    [
        (
            {"type": "openai", "apiKeyEnv": "GROQ_API_KEY"},
            "providers.groq.apiKeyEnv",
            """'apiKeyEnv' is not accepted; give the provider its key as api_key: "${GROQ_API_KEY}\"""",
        ),
        (
            {"type": "openai", "api_key_env": ["GROQ_API_KEY"]},
            "providers.groq.api_key_env",
            """'api_key_env' is not accepted; give the provider its key as api_key: "${GROQ_API_KEY}\"""",
        ),
        (
            {"type": "openai", "api_key": "gsk-live-123"},
            "providers.groq.api_key",
            "is not a reference to a provider key (a literal key would land in a ConfigMap); "
            "store the key with `pulumi config set --secret --path 'ai-gateway:providerKeys.groq' "
            """VALUE` and write api_key: "${GROQ_API_KEY}\"""",
        ),
        (
            {"type": "openai", "api_key": "${GROQ_KEY}"},
            "providers.groq.api_key",
            "${GROQ_KEY} is not a provider key variable: ai-gateway:providerKeys.<name> reaches "
            "the pod as <NAME>_API_KEY",
        ),
        (
            {"type": "openai", "api_key": "${GROQ_API_KEY:-gsk-fallback}"},
            "providers.groq.api_key",
            "is not a reference to a provider key",
        ),
        (
            {"type": "openai", "headers": {"Authorization": "Bearer gsk-live-123"}},
            "providers.groq.headers.Authorization",
            "looks like secret material",
        ),
        (
            {"type": "openai", "base_url": "https://user:pw@proxy.internal/v1"},
            "providers.groq.base_url",
            "holds a URL with credentials",
        ),
    ],
)
def test_keys_have_one_syntax_and_other_forms_show_it(
    provider: dict[str, Any], path: str, expected: str
) -> None:
    catalogue = copy.deepcopy(CATALOGUE)
    catalogue["providers"]["groq"] = provider
    message = problems(catalogue)
    assert f"ai-gateway:gateway.appConfig.{path}: {expected}" in message, message
    assert "gsk-live-123" not in message and "pw@" not in message


def test_a_header_that_is_a_reference_is_accepted() -> None:
    catalogue = copy.deepcopy(CATALOGUE)
    catalogue["providers"]["groq"]["headers"] = {"Authorization": "Bearer ${GROQ_API_KEY}"}
    assert secret_problems(catalogue) == []


# -------------------------------------------------------------- per cluster


def cluster(catalogue: dict[str, Any], cloud: Cloud, keys: tuple[str, ...] = ()) -> Any:
    return yaml.safe_load(cluster_config_file(catalogue, cloud, keys))


def test_each_cluster_keeps_its_own_cloud_then_the_key_based_providers() -> None:
    for cloud, native in (
        (Cloud.AWS, "aws-bedrock"),
        (Cloud.AZURE, "azure-openai"),
        (Cloud.GCP, "vertex"),
    ):
        file = cluster(CATALOGUE, cloud, ("groq",))
        assert list(file["providers"]) == [native, "groq"]
        assert [d["provider"] for d in file["models"]["chat"]["deployments"]] == [native, "groq"]
        # The cluster's file is what the gateway loads at start-up.
        config = gateway_parse(file, environ={"GROQ_API_KEY": "gsk"})
        assert config.models["chat"].deployments[0].provider == native


def test_an_azure_openai_account_with_a_key_is_reachable_from_every_cluster() -> None:
    catalogue = copy.deepcopy(CATALOGUE)
    catalogue["providers"]["azure-openai"]["api_key"] = "${AZURE_OPENAI_API_KEY}"
    file = cluster(catalogue, Cloud.GCP, ("azure-openai",))
    assert list(file["providers"]) == ["azure-openai", "vertex", "groq"]


def test_a_model_a_cluster_cannot_serve_is_refused_naming_the_cluster() -> None:
    catalogue = copy.deepcopy(CATALOGUE)
    catalogue["models"]["chat"]["deployments"] = catalogue["models"]["chat"]["deployments"][:1]
    with pytest.raises(CatalogueError) as error:
        cluster_config_file(catalogue, Cloud.GCP, ())
    assert str(error.value).startswith(
        "ai-gateway:gateway.appConfig.models.chat: no deployment the gcp cluster can call "
        "(aws-bedrock needs the aws workload identity)"
    )
    assert "add a deployment of type vertex" in str(error.value)
    # A key-based deployment serves every cluster, once its key is set.
    llama = {"provider": "groq", "model": "llama", "price": GROQ_PRICE}
    catalogue["models"]["chat"]["deployments"].append(llama)
    with pytest.raises(CatalogueError, match=r"groq has no key \(\$\{GROQ_API_KEY\}\)"):
        cluster_config_file(catalogue, Cloud.GCP, ())
    assert cluster(catalogue, Cloud.GCP, ("groq",))["models"]["chat"]["deployments"] == [llama]


def test_a_stack_checks_every_enabled_cluster_and_warns_of_unset_keys() -> None:
    message = problems(
        {
            "providers": CATALOGUE["providers"],
            "models": {
                "chat": {"deployments": [{"provider": "vertex", "model": "gemini-2.5-pro"}]}
            },
        },
        gcp={"enabled": True, "project": "acme-ai-gateway-dev"},
    )
    assert message == (
        "ai-gateway:gateway.appConfig.models.chat: no deployment the aws cluster can call "
        "(vertex needs the gcp workload identity), and the global hostname sends requests for "
        "this model to every cluster; add a deployment of type bedrock, or a key-based one whose key is "
        "set with `pulumi config set --secret --path 'ai-gateway:providerKeys.<name>' VALUE`"
    )
    config = stack(CATALOGUE)
    assert config.gateway_warnings() == [
        "ai-gateway:gateway.appConfig.providers.groq: its key ${GROQ_API_KEY} is not set, so "
        "its deployments are skipped; set it with `pulumi config set --secret --path "
        "'ai-gateway:providerKeys.groq' VALUE`"
    ]
    assert stack(CATALOGUE, keys={"groq": "gsk"}).gateway_warnings() == []


def test_the_config_map_guard_refuses_secrets_and_outputs() -> None:
    assert check_config_file("models: {}\n") == "models: {}\n"
    with pytest.raises(CatalogueError, match=r"providers\.p\.api_key"):
        check_config_file("providers: {p: {api_key: sk-1}}\n")
    with pytest.raises(TypeError, match="plain str"):
        check_config_file(object())  # type: ignore[arg-type]


# ------------------------------------------------------------ the default


def test_left_out_app_config_is_the_default_catalogue_never_empty() -> None:
    config = stack(
        azure={
            "enabled": True,
            "openaiAccountId": "/subscriptions/00000000-0000-4000-8000-000000000001/"
            "resourceGroups/ai/providers/Microsoft.CognitiveServices/accounts/Acme-OpenAI",
        },
        gcp={"enabled": True, "project": "acme-ai-gateway-dev", "region": "europe-west4"},
        keys={"openai": "sk", "anthropic": "sk-ant"},
    )
    assert config.gateway.app_config is None
    catalogue = config.app_config
    assert catalogue == default_catalogue(config, ("anthropic", "openai"))
    assert set(catalogue["models"]) == {"chat", "chat-fast", "embeddings"}
    assert catalogue["providers"]["azure-openai"]["base_url"] == (
        "${AZURE_OPENAI_ENDPOINT:-https://acme-openai.openai.azure.com}"
    )
    assert catalogue["providers"]["vertex"]["location"] == "europe-west4"
    for cloud in Cloud:
        assert unpriced(config.gateway_config_file(cloud)) == [], cloud
    for cloud, native in ((Cloud.AWS, "bedrock"), (Cloud.AZURE, "azure_openai")):
        file = yaml.safe_load(config.gateway_config_file(cloud))
        chat = file["models"]["chat"]["deployments"]
        types = [file["providers"][d["provider"]]["type"] for d in chat]
        assert types == [native, "openai", "anthropic"]
    # Without keys, each cluster still serves every model through its own cloud.
    plain = stack(gcp={"enabled": True, "project": "acme-ai-gateway-dev"})
    assert set(plain.app_config["providers"]) == {"aws-bedrock", "vertex"}
    assert gateway_parse(yaml.safe_load(plain.gateway_config_file(Cloud.GCP))).models


def test_an_empty_app_config_is_refused_not_deployed() -> None:
    assert problems({}) == "ai-gateway:gateway.appConfig.models: is required; add it"


def test_a_default_catalogue_a_cluster_cannot_serve_says_what_to_set() -> None:
    message = problems(None, azure={"enabled": True})
    assert message == (
        "ai-gateway:gateway.appConfig: is unset, and the default catalogue has no model the "
        "azure cluster can call; set ai-gateway:azure.openaiAccountId (Azure OpenAI through the "
        "cluster's workload identity) or a provider key (`pulumi config set --secret --path "
        "'ai-gateway:providerKeys.openai' VALUE`), or write ai-gateway:gateway.appConfig"
    )
    assert stack(azure={"enabled": True}, keys={"anthropic": "sk-ant"}).app_config["models"]


# ------------------------------------------------------------ the stack files


@pytest.mark.parametrize("stack_name", ["dev", "staging", "prod"])
def test_every_stack_file_carries_a_catalogue_every_cluster_serves(stack_name: str) -> None:
    from infra.offline.stackfile import read_stack_file

    file = read_stack_file(Path(ROOT / f"Pulumi.{stack_name}.yaml"))
    values = {k.split(":", 1)[1]: v for k, v in file.values.items() if k.startswith("ai-gateway:")}
    config = parse(values, set(file.secret_keys))
    assert config.gateway.app_config, "the stack file has no appConfig"
    assert [c.value for c in config.enabled_clouds] == ["aws", "azure", "gcp"]
    for cloud in config.enabled_clouds:
        file_of_cluster = yaml.safe_load(config.gateway_config_file(cloud))
        types = {p["type"] for p in file_of_cluster["providers"].values()}
        native = {"aws": "bedrock", "azure": "azure_openai", "gcp": "vertex"}[cloud.value]
        assert types == {native, "openai", "anthropic"}
        assert set(file_of_cluster["models"]) == {"chat", "chat-fast", "embeddings"}
        assert unpriced(config.gateway_config_file(cloud)) == []


def test_the_pulumi_program_reaches_the_contract_without_the_gateway_runtime() -> None:
    """infra imports the gateway's config model and its price check (genai-prices' dataset),
    never its server, adapters or their libraries, even when it checks a stack's prices."""
    modules = imported_modules(
        "import infra.config, infra.config.catalogue, infra.k8s.gateway\n"
        "from infra.config.catalogue import cluster_config_file\n"
        "from infra.config import Cloud\n"
        "cluster_config_file({'providers': {'b': {'type': 'bedrock', 'region': 'us-east-1'}}, "
        "'models': {'m': {'deployments': [{'provider': 'b', 'model': 'amazon.nova-pro-v1:0'}]}}}, "
        "Cloud.AWS, ())"
    )
    gateway = sorted(m for m in modules if m.startswith("gateway_app"))
    assert gateway == [
        "gateway_app",
        "gateway_app.config",
        "gateway_app.config.governance",
        "gateway_app.config.identity",  # the config's `identity` section (pydantic only)
        "gateway_app.config.prices",  # the start-up price check (genai-prices' dataset)
    ]
    assert "genai_prices" in modules  # the price was looked up, as the pod does
    runtime = {"aiohttp", "orjson", "uvloop", "httptools", "redis", "psycopg", "prometheus_client"}
    assert not {m.split(".")[0] for m in modules} & runtime
