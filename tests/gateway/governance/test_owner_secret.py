"""``migrate`` reads the database owner from the cloud's secret store (issue 19, item 12).

The migration Job holds only ``AIGW_MIGRATION_SECRET`` (a reference); the
owner's password is read at run time with the Job's own identity: IRSA keys
for Secrets Manager, an Entra token for Key Vault, a Google token for Secret
Manager. The fakes are checked against boto3 (the AWS wire format) and the
documented REST answers (Key Vault "Get Secret": {"value", "id", "attributes"},
https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret;
Secret Manager ``versions.access``: {"name", "payload": {"data"}},
https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions/access).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest

from gateway_app.credentials import database
from gateway_app.credentials.database import OwnerCredentialError, owner_database_url
from gateway_app.environment import Environment
from tests.fakes.azure import FakeAzureOpenAI
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.secret_stores import FakeSecretStores
from tests.fakes.vertex import FakeVertex

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0a1b2c3d-AbCdEf"
APP_URL = "postgresql://gateway_app:app-pass@db.internal:5432/gateway?sslmode=require"
OWNER = {"username": "gateway_admin", "password": "owner/pass@word:1"}


@pytest.fixture(scope="module")
def stores() -> Iterator[FakeSecretStores]:
    with (
        FakeBedrock({"AKIDFAKE": "fake-secret"}) as bedrock,
        FakeAzureOpenAI() as azure,
        FakeVertex() as vertex,
        FakeSecretStores(bedrock, azure, vertex) as fake,
    ):
        yield fake


def _aws_env(stores: FakeSecretStores) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "AKIDFAKE",
        "AWS_SECRET_ACCESS_KEY": "fake-secret",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": stores.url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }


def _azure_env(stores: FakeSecretStores, tmp_path: Path) -> dict[str, str]:
    token = tmp_path / "azure-token"
    token.write_text(stores.azure.assertion)
    return {
        "AZURE_CLIENT_ID": stores.azure.client_id,
        "AZURE_TENANT_ID": "tenant-1",
        "AZURE_FEDERATED_TOKEN_FILE": str(token),
        "AZURE_AUTHORITY_HOST": stores.azure.url + "/",
    }


def _gcp_env(stores: FakeSecretStores) -> dict[str, str]:
    host = stores.vertex.url.removeprefix("http://")
    return {"GCE_METADATA_HOST": host, "GCE_METADATA_IP": host, "NO_GCE_CHECK": "False"}


def _use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _owner_url(env: dict[str, str]) -> str | None:
    """The owner's URL from these variables, read as ``migrate`` reads them."""
    read = Environment.from_environ(env)
    return owner_database_url(read.migration_database_url, read.database_url, read.migration_secret)


# ------------------------------------------------------------- the fakes, judged


def test_the_secrets_manager_fake_answers_boto3_as_aws_does(stores: FakeSecretStores) -> None:
    stores.put(ARN, json.dumps(OWNER))
    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=stores.url,
        aws_access_key_id="AKIDFAKE",
        aws_secret_access_key="fake-secret",
    )
    answer = client.get_secret_value(SecretId=ARN)
    assert json.loads(answer["SecretString"]) == OWNER and answer["ARN"] == ARN
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        client.get_secret_value(SecretId=ARN + "-other")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    forged = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=stores.url,
        aws_access_key_id="AKIDFAKE",
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        forged.get_secret_value(SecretId=ARN)
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"


# ------------------------------------------------------------ each store, read


def test_the_owner_comes_from_secrets_manager_with_the_chains_keys(
    stores: FakeSecretStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores.put(ARN, json.dumps(OWNER))
    env = _use(monkeypatch, _aws_env(stores))
    url = _owner_url({**env, "AIGW_MIGRATION_SECRET": ARN, "AIGW_DATABASE_URL": APP_URL})
    # The app URL's host, database and TLS options, the secret's user and password.
    assert url == (
        "postgresql://gateway_admin:owner%2Fpass%40word%3A1@db.internal:5432/gateway"
        "?sslmode=require"
    )
    assert stores.reads[-1] == ("aws", ARN)


def test_the_owner_comes_from_key_vault_with_a_vault_token(
    stores: FakeSecretStores, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri = f"{stores.url}/secrets/postgres-owner"
    stores.put(uri, json.dumps(OWNER))
    env = _use(monkeypatch, _azure_env(stores, tmp_path))
    url = _owner_url({**env, "AIGW_MIGRATION_SECRET": uri, "AIGW_DATABASE_URL": APP_URL})
    assert url and url.startswith("postgresql://gateway_admin:owner%2Fpass%40word%3A1@db.internal")
    assert stores.reads[-1] == ("azure", "/secrets/postgres-owner")
    # The Entra exchange asked for Key Vault's audience, not Azure OpenAI's.
    assert stores.azure.token_requests[-1]["scope"] == "https://vault.azure.net/.default"


def test_the_owner_comes_from_secret_manager_with_a_metadata_token(
    stores: FakeSecretStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = "/v1/projects/proj-1/secrets/postgres-owner/versions/latest:access"
    stores.put(stores.url + path, json.dumps(OWNER))
    env = _use(monkeypatch, _gcp_env(stores))
    url = _owner_url(
        {**env, "AIGW_MIGRATION_SECRET": stores.url + path, "AIGW_DATABASE_URL": APP_URL}
    )
    assert url and url.startswith("postgresql://gateway_admin:owner%2Fpass%40word%3A1@")
    assert stores.reads[-1] == ("gcp", path)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AIGW_MIGRATION_SECRET": "vault://owner", "AIGW_DATABASE_URL": APP_URL},
            "AIGW_MIGRATION_SECRET='vault://owner' names no secret store",
        ),
        (
            {"AIGW_MIGRATION_SECRET": ARN},
            "AIGW_DATABASE_URL is not",
        ),
        (
            {"AIGW_MIGRATION_SECRET": ARN, "AIGW_MIGRATION_DATABASE_URL": APP_URL},
            "keep one",
        ),
        (
            {
                "AIGW_MIGRATION_SECRET": "https://kv-1.vault.azure.net/secrets/owner",
                "AIGW_DATABASE_URL": APP_URL,
            },
            "AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE are unset",
        ),
    ],
)
def test_a_bad_reference_names_the_variable_and_the_fix(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(OwnerCredentialError, match=message.replace("(", r"\(")):
        _owner_url(env)


def test_a_store_that_refuses_says_what_the_identity_needs(
    stores: FakeSecretStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, _aws_env(stores))
    with pytest.raises(OwnerCredentialError, match=r"ResourceNotFoundException.*GetSecretValue"):
        database.fetch_secret(ARN + "-missing")


@pytest.mark.parametrize("text", ["plain-password", '{"username": "a"}', "[1, 2]"])
def test_a_secret_without_username_and_password_is_refused(text: str) -> None:
    with pytest.raises(OwnerCredentialError, match="'username' and 'password'"):
        database.read_owner_secret(text, ARN)


# --------------------------------------------------------------- the command


def test_migrate_as_the_owner_read_from_the_store(
    stores: FakeSecretStores, postgres_server: Any
) -> None:
    """``python -m gateway_app migrate`` with only a secret reference: migrates as the owner
    it read, creates the app role, and prints no password."""
    name = postgres_server.new_database("o").rsplit("/", 1)[1]
    owner_password = "owner-" + uuid.uuid4().hex
    stores.put(ARN, json.dumps({"username": "postgres", "password": owner_password}))
    base = postgres_server.url.rsplit("/", 1)[0].replace("postgres@", "gateway_app_{0}:pw-{0}@")
    env = {
        **_aws_env(stores),
        "PATH": "/usr/bin:/bin",
        "AIGW_MIGRATION_SECRET": ARN,
        "AIGW_DATABASE_URL": base.format(name) + "/" + name,
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway_app", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"app role gateway_app_{name}: created" in done.stdout
    assert owner_password not in done.stdout + done.stderr
    assert stores.reads[-1] == ("aws", ARN)

    refused = subprocess.run(
        [sys.executable, "-m", "gateway_app", "migrate"],
        env={**env, "AIGW_MIGRATION_SECRET": ARN + "-gone"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "ResourceNotFoundException" in refused.stderr and "secretsmanager:GetSecretValue" in (
        refused.stderr
    )
