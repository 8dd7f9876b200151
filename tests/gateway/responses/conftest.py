"""Fixtures for the Responses API: the fake Azure OpenAI resource next to the session's fakes,
and a gateway serving one model per upstream."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway_app.config import parse
from gateway_app.governance.admin import AdminApi
from gateway_app.governance.hooks import governance_hooks
from gateway_app.governance.service import Governance
from gateway_app.responses.store import build as build_store
from tests.fakes import FakeUpstream
from tests.fakes.azure import FakeAzureOpenAI
from tests.gateway.conftest import Running, providers, serve
from tests.gateway.governance.test_gateway_governance import Admin, embedded_governance

AZURE_KEY = "azure-key"
# An Azure deployment's name is not a model genai-prices knows: its price is configured.
GPT5_PRICE = {"input_per_mtok": 1.25, "output_per_mtok": 10.0}


@pytest.fixture(scope="session")
def _azure_responses() -> Iterator[FakeAzureOpenAI]:
    with FakeAzureOpenAI(api_key=AZURE_KEY) as fake:
        yield fake


@pytest.fixture
def fake_azure(_azure_responses: FakeAzureOpenAI) -> FakeAzureOpenAI:
    _azure_responses.reset()
    return _azure_responses


def models() -> dict[str, Any]:
    """One public model per upstream, and one that fails over from OpenAI to Azure."""
    return {
        "gpt-5-mini": {"deployments": [{"provider": "openai", "model": "gpt-5-mini-2025-08-07"}]},
        "azure-gpt-5": {
            "deployments": [{"provider": "azure", "model": "gpt5-deployment", "price": GPT5_PRICE}]
        },
        "gpt-5": {
            "strategy": "failover",
            "deployments": [
                {"provider": "openai", "model": "gpt-5", "priority": 0},
                {
                    "provider": "azure",
                    "model": "gpt5-deployment",
                    "priority": 1,
                    "name": "azure-fallback",
                    "price": GPT5_PRICE,
                },
            ],
        },
        "claude-sonnet-4-6": {
            "deployments": [
                {
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-6",
                    "params": {"default_max_tokens": 1000},
                }
            ]
        },
    }


def raw_config(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, fake_azure: FakeAzureOpenAI
) -> dict[str, Any]:
    """The gateway's config in front of the three fakes."""
    return {
        "providers": {
            **providers(fake_openai, fake_anthropic),
            "azure": {"type": "azure_openai", "api_key": AZURE_KEY, "base_url": fake_azure.url},
        },
        "models": models(),
    }


@pytest.fixture
def responses_gateway(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, fake_azure: FakeAzureOpenAI
) -> Callable[..., Any]:
    """``with responses_gateway(**overrides) as gw:`` serves :func:`models` against the fakes."""

    def start(**overrides: Any) -> Any:
        return serve({**raw_config(fake_openai, fake_anthropic, fake_azure), **overrides})

    return start


@pytest.fixture
def teams(
    fake_openai: FakeUpstream,
    fake_anthropic: FakeUpstream,
    fake_azure: FakeAzureOpenAI,
    tmp_path: Path,
) -> Iterator[tuple[Running, dict[str, str], Governance]]:
    """A governed gateway and keys: two of team red (two projects), one of team blue."""
    raw = {**raw_config(fake_openai, fake_anthropic, fake_azure), "governance": {"enabled": True}}
    gov = embedded_governance(raw, tmp_path / "gov.sqlite3")
    authenticate, limits = governance_hooks(gov)
    hooks = [authenticate, build_store(parse(raw), None, None), limits]
    with serve(raw, hooks=hooks, admin=AdminApi(gov)) as running:
        admin = Admin(running.url)
        keys = {}
        for name, team, project in (
            ("red", "red", "a"),
            ("red2", "red", "b"),
            ("blue", "blue", "c"),
        ):
            created = admin("POST", "/admin/keys", json={"team_id": team, "project_id": project})
            assert created.status_code == 201, created.text
            keys[name] = created.json()["key"]
        yield running, keys, gov


@pytest.fixture
def gw(responses_gateway: Callable[..., Any]) -> Iterator[Running]:
    with responses_gateway() as running:
        yield running


def client(running: Running, key: str = "client-key") -> openai.OpenAI:
    """The official SDK pointed at the gateway."""
    return openai.OpenAI(base_url=running.url + "/v1", api_key=key, max_retries=0)
