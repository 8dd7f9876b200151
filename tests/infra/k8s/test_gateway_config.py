"""The ``ai-gateway:gateway`` keys and secret settings the Kubernetes component reads."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.config import ConfigError, Environment, parse
from infra.decisions.k8s import Resources

BASE: dict[str, Any] = {
    "environment": "prod",
    "tags": {"owner": "platform", "costCenter": "cc-1"},
    "dns": {"domain": "ai.example.com", "alerts": {"emails": ["oncall@example.com"]}},
    "aws": {"enabled": True, "deployerCidrs": ["203.0.113.0/24"]},
}


def _gateway(**gateway: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["gateway"] = gateway
    return data


def test_resources_default_by_environment() -> None:
    dev = parse({**_gateway(), "environment": "dev"}).gateway
    prod = parse(_gateway()).gateway
    assert dev.resources == Resources("100m", "1", "256Mi", "512Mi")
    assert prod.resources == Resources("500m", "2", "1Gi", "1Gi")
    assert (dev.replicas, prod.replicas) == (1, 3)


def test_canary_and_acme_settings_parse() -> None:
    gateway = parse(
        _gateway(
            canaryImage="ghcr.io/acme/ai-gateway:2",
            canaryWeight=25,
            acmeEmail="ops@example.com",
        )
    ).gateway
    assert (gateway.canary_image, gateway.canary_weight) == ("ghcr.io/acme/ai-gateway:2", 25)
    assert gateway.acme_email == "ops@example.com"
    assert gateway.acme_server.startswith("https://")


@pytest.mark.parametrize(
    ("gateway", "expected"),
    [
        ({"canaryWeight": 10}, "ai-gateway:gateway.canaryWeight: canaryWeight 10 sends traffic"),
        (
            {"canaryImage": "x:1", "canaryWeight": 101},
            "ai-gateway:gateway.canaryWeight: 101 is not allowed; use an integer from 0 to 100",
        ),
        (
            {"image": "x:1", "canaryImage": "x:1"},
            "ai-gateway:gateway.canaryImage: canaryImage x:1 is the stable image",
        ),
        (
            {"cpuRequest": "lots"},
            "ai-gateway:gateway.cpuRequest: cpuRequest 'lots' is not a CPU quantity",
        ),
        (
            {"memoryLimit": "1GB"},
            "ai-gateway:gateway.memoryLimit: memoryLimit '1GB' is not a memory quantity",
        ),
        (
            {"cpuRequest": "4", "cpuLimit": "2"},
            "ai-gateway:gateway.cpuRequest: cpuRequest 4 exceeds cpuLimit 2",
        ),
        ({"acmeServer": "http://acme.example.com/directory"}, "ai-gateway:gateway.acmeServer: "),
        (
            {"acmeEmail": "platform team"},
            "ai-gateway:gateway.acmeEmail: 'platform team' is not allowed",
        ),
        (
            {"replicas": 1},
            "ai-gateway:gateway.replicas: replicas 1 is too low for prod; set ai-gateway:gateway.replicas to at least 2",
        ),
    ],
)
def test_bad_gateway_settings_name_the_key_and_fix(gateway: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(_gateway(**gateway))
    assert expected in str(error.value)


def test_secret_settings_are_known_keys_but_not_part_of_the_model() -> None:
    keys = {"openai": "sk-x", "groq": "gsk-y"}
    values = {**BASE, "providerKeys": keys, "adminKey": "a"}
    secret_keys = {f"ai-gateway:{k}" for k in ("providerKeys", "adminKey")}
    config = parse(values, secret_keys)
    assert config.environment == Environment.PROD
    assert config.provider_keys == ("groq", "openai")
    assert "sk-x" not in config.model_dump_json() and "gsk-y" not in config.model_dump_json()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"providerKeys": {"openai": "sk-x"}},
            "ai-gateway:providerKeys: is stored in plain text in the stack file; remove it and "
            "run `pulumi config set --secret --path 'ai-gateway:providerKeys.<name>' VALUE` so "
            "it is encrypted",
        ),
        (
            {"adminKey": "a"},
            "ai-gateway:adminKey: is stored in plain text in the stack file; remove it and run "
            "`pulumi config set --secret adminKey VALUE` so it is encrypted",
        ),
    ],
)
def test_secret_settings_in_plain_text_are_refused(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse({**BASE, **values}, secret_keys=set())
    assert str(error.value) == expected


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"Groq": "k"}, "ai-gateway:providerKeys.Groq: 'Groq' cannot name a provider key"),
        ({"aigw-x": "k"}, "ai-gateway:providerKeys.aigw-x: 'aigw-x' is reserved"),
        ({"groq": ""}, "ai-gateway:providerKeys.groq: is empty"),
        ("sk-x", "ai-gateway:providerKeys: is not a mapping of names to keys"),
    ],
)
def test_bad_provider_keys_name_the_key_and_never_the_value(keys: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse({**BASE, "providerKeys": keys}, secret_keys={"ai-gateway:providerKeys"})
    assert expected in str(error.value)
    assert "sk-x" not in str(error.value)


def test_the_old_provider_key_settings_say_how_to_move_them() -> None:
    with pytest.raises(ConfigError) as error:
        parse({**BASE, "openaiApiKey": "sk-x"}, secret_keys={"ai-gateway:openaiApiKey"})
    assert str(error.value) == (
        "ai-gateway:openaiApiKey: replaced by ai-gateway:providerKeys.openai; run "
        "`pulumi config rm ai-gateway:openaiApiKey` and `pulumi config set --secret --path "
        "'ai-gateway:providerKeys.openai' VALUE`"
    )


def test_unknown_top_level_keys_list_the_secret_settings() -> None:
    with pytest.raises(ConfigError, match="providerKeys, adminKey"):
        parse({**BASE, "openaiKey": "x"})
