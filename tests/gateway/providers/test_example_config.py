"""The example config's commented cloud providers work once uncommented, without credentials."""

from __future__ import annotations

import re

import pytest
import yaml

from gateway_app.config import EXAMPLE_CONFIG, parse
from gateway_app.health import Health
from tests.gateway.conftest import run_async

_COMMENTED_YAML = re.compile(r"^(\s*)# ( *(?:[\w.-]+:|- |#).*)$")


def uncommented_example() -> str:
    return "\n".join(
        _COMMENTED_YAML.sub(r"\1\2", line) for line in EXAMPLE_CONFIG.read_text().splitlines()
    )


def test_uncommented_cloud_examples_parse_and_readiness_names_missing_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = parse(yaml.safe_load(uncommented_example()), "example.yaml (uncommented)")
    assert {p.type for p in config.providers.values()} >= {"bedrock", "azure_openai", "vertex"}
    deployments = config.models["claude-haiku-4-5"].deployments
    assert [d.provider for d in deployments] == ["aws-bedrock", "azure-openai"]
    ready, report = run_async(Health(config).ready())
    assert ready
    assert set(report["providers_missing_credentials"]) == {
        "openai",
        "anthropic",
        "aws-bedrock",
        "azure-openai",
        "vertex",
    }
    assert "AZURE_FEDERATED_TOKEN_FILE" in report["providers"]["azure-openai"]["set"]
