"""Fixtures for the cloud providers: fake upstreams, a clean credential environment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway_app import credentials
from tests.fakes.azure import FakeAzureOpenAI
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.vertex import FakeVertex

AWS_KEY, AWS_SECRET = "AKIDFAKE", "fake-secret"


@pytest.fixture(autouse=True)
def clean_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """No ambient cloud credentials leak into a test; cached credentials are dropped."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    # Readiness must not depend on the machine the tests run on.
    monkeypatch.setattr("gateway_app.credentials.aws.on_ec2", lambda: False)
    monkeypatch.setattr("gateway_app.credentials.google.on_google_cloud", lambda: False)
    credentials.reset()
    yield
    credentials.reset()


@pytest.fixture(scope="session")
def _bedrock() -> Iterator[FakeBedrock]:
    with FakeBedrock({AWS_KEY: AWS_SECRET}) as fake:
        yield fake


@pytest.fixture
def fake_bedrock(_bedrock: FakeBedrock) -> FakeBedrock:
    _bedrock.reset()
    _bedrock.rejected.clear()
    return _bedrock


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Static keys in the environment: the first source of the standard chain."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)


@pytest.fixture(scope="session")
def _azure() -> Iterator[FakeAzureOpenAI]:
    with FakeAzureOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_azure(_azure: FakeAzureOpenAI) -> FakeAzureOpenAI:
    _azure.reset()
    _azure.issued.clear()
    _azure.token_requests.clear()
    _azure.token_lifetime_s = 3600
    return _azure


@pytest.fixture
def workload_identity(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, fake_azure: FakeAzureOpenAI
) -> None:
    """The variables Azure Workload Identity's webhook injects, pointing at the fake Entra."""
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(fake_azure.assertion + "\n")
    monkeypatch.setenv("AZURE_CLIENT_ID", fake_azure.client_id)
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant-1")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", fake_azure.url + "/")


@pytest.fixture(scope="session")
def _vertex() -> Iterator[FakeVertex]:
    with FakeVertex() as fake:
        yield fake


@pytest.fixture
def fake_vertex(_vertex: FakeVertex) -> FakeVertex:
    _vertex.reset()
    _vertex.issued.clear()
    _vertex.token_requests.clear()
    _vertex.token_lifetime_s = 3600
    return _vertex


@pytest.fixture
def google_adc(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, fake_vertex: FakeVertex) -> None:
    """An ADC service-account key file whose token endpoint is the fake's."""
    path = tmp_path / "adc.json"
    path.write_text(fake_vertex.service_account_file())
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
