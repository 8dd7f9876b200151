"""The database owner's credential, fetched from the cloud's secret store when ``migrate`` runs.

The schema owner (the managed server's administrator) never lives in the
cluster: the migration Job gets only a reference, ``AIGW_MIGRATION_SECRET``,
and reads the secret it names with its own workload identity:

* ``arn:aws:secretsmanager:<region>:<account>:secret:<name>``: AWS Secrets
  Manager ``GetSecretValue`` through botocore's credential chain (IRSA). RDS's
  managed master-user secret has exactly the JSON this module reads.
* ``https://<vault>.vault.azure.net/secrets/<name>[/<version>]``: Azure Key
  Vault "Get Secret" with a Microsoft Entra token of the pod's workload
  identity for ``https://vault.azure.net/.default``.
* ``https://secretmanager.googleapis.com/v1/projects/<p>/secrets/<s>/versions/<v>:access``:
  Google Secret Manager ``AccessSecretVersion`` with an application-default
  token (the GKE metadata server under Workload Identity).

Every store holds ``{"username": ..., "password": ...}``; the owner's URL is
``AIGW_DATABASE_URL`` (host, port, database, TLS options) with those
credentials. ``AIGW_MIGRATION_DATABASE_URL`` (a plain URL) still works where
no secret store exists (a laptop, compose).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import orjson

OWNER_SECRET_ENV = "AIGW_MIGRATION_SECRET"
KEY_VAULT_SCOPE = "https://vault.azure.net/.default"
KEY_VAULT_API_VERSION = "7.4"
"""Key Vault data-plane version of "Get Secret" (``GET {vault}/secrets/{name}/{version}``)."""

_AWS_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:.+$")
_KEY_VAULT_PATH = re.compile(r"^/secrets/[0-9A-Za-z-]{1,127}(/[0-9A-Za-z]+)?$")
_SECRET_MANAGER_PATH = re.compile(r"^/v1/projects/[^/]+/secrets/[^/]+/versions/[^/]+:access$")
_EXAMPLES = (
    "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, "
    "https://VAULT.vault.azure.net/secrets/NAME or "
    "https://secretmanager.googleapis.com/v1/projects/P/secrets/S/versions/latest:access"
)


class OwnerCredentialError(Exception):
    """The owner's credential could not be found, fetched or read; the message says why."""


def owner_database_url(
    migration_url: str | None, app_url: str | None, reference: str | None
) -> str | None:
    """The schema owner's PostgreSQL URL, or None when neither variable is set.

    ``migration_url`` (``AIGW_MIGRATION_DATABASE_URL``) is used as it is;
    ``reference`` (``AIGW_MIGRATION_SECRET``) is fetched (see the module docstring)
    and combined with ``app_url`` (``AIGW_DATABASE_URL``). The variables are read by
    :class:`gateway_app.environment.Environment`.
    """
    if migration_url and reference:
        raise OwnerCredentialError(
            f"both AIGW_MIGRATION_DATABASE_URL and {OWNER_SECRET_ENV} are set; keep one (the "
            "secret reference in a cluster, the URL on a workstation)"
        )
    if migration_url or not reference:
        return migration_url or None
    if not app_url:
        raise OwnerCredentialError(
            f"{OWNER_SECRET_ENV} is set but AIGW_DATABASE_URL is not; set AIGW_DATABASE_URL "
            "to the gateway role's URL (the owner's URL is built from its host and database)"
        )
    username, password = read_owner_secret(fetch_secret(reference), reference)
    return with_credentials(app_url, username, password)


def fetch_secret(reference: str) -> str:
    """The text of the secret ``reference`` names, read with the process's cloud identity."""
    reference = reference.strip()
    arn = _AWS_ARN.match(reference)
    if arn:
        return _aws_secret(reference, arn.group(1))
    parts = urlsplit(reference)
    if parts.scheme in ("https", "http") and parts.netloc:
        if _KEY_VAULT_PATH.match(parts.path):
            return _key_vault_secret(reference)
        if _SECRET_MANAGER_PATH.match(parts.path):
            return _secret_manager_secret(reference)
    raise OwnerCredentialError(
        f"{OWNER_SECRET_ENV}={reference!r} names no secret store this gateway reads; "
        f"use {_EXAMPLES}"
    )


def read_owner_secret(text: str, reference: str) -> tuple[str, str]:
    """``(username, password)`` of a secret holding ``{"username": ..., "password": ...}``."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("username"), str)
        or not isinstance(value.get("password"), str)
        or not value["username"]
        or not value["password"]
    ):
        raise OwnerCredentialError(
            f"the secret {reference} is not JSON with a non-empty 'username' and 'password' "
            '(store {"username": "...", "password": "..."}, as RDS does for its master user)'
        )
    return value["username"], value["password"]


def with_credentials(url: str, username: str, password: str) -> str:
    """``url`` with its user and password replaced (both percent-encoded)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# ------------------------------------------------------------------ the stores


def _aws_secret(arn: str, region: str) -> str:
    import botocore.exceptions
    import botocore.session

    # AWS_ENDPOINT_URL_SECRETS_MANAGER (botocore's service endpoint variable) points it
    # elsewhere, e.g. at a VPC endpoint's name or a test double.
    client = botocore.session.get_session().create_client("secretsmanager", region_name=region)
    try:
        answer = client.get_secret_value(SecretId=arn)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise OwnerCredentialError(
            f"Secrets Manager refused GetSecretValue on {arn}: {error.get('Code')}: "
            f"{error.get('Message')} (the migration Job's IAM role needs "
            "secretsmanager:GetSecretValue on it and kms:Decrypt on its key)"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise OwnerCredentialError(f"cannot read {arn} from Secrets Manager: {exc}") from None
    text = answer.get("SecretString")
    if not isinstance(text, str):
        raise OwnerCredentialError(f"the secret {arn} has no SecretString (binary secrets unread)")
    return text


class BlockingHttpClient:
    """The ``post`` the Entra exchange expects, over urllib in a worker thread.

    For token exchanges outside the request path (``migrate`` has no event loop;
    Redis renews its token once an hour), which need no pooled upstream client.
    """

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout: float
    ) -> tuple[int, dict[str, str], bytes]:
        return await asyncio.to_thread(_send, "POST", url, headers, body, timeout)


def _send(
    method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _get_json(url: str, token: str, store: str) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}", "accept": "application/json"}
    try:
        status, _, raw = _send("GET", url, headers, None, 10.0)
    except OSError as exc:
        raise OwnerCredentialError(f"{store} at {url} is unreachable: {exc}") from None
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        answer = {}
    if status != 200 or not isinstance(answer, dict):
        error = answer.get("error") if isinstance(answer, dict) else None
        detail = error.get("message") if isinstance(error, dict) else None
        raise OwnerCredentialError(
            f"{store} answered HTTP {status} for {url}: {detail or raw[:200]!r} (the migration "
            "Job's identity needs read access to exactly this secret)"
        )
    return answer


def _key_vault_secret(uri: str) -> str:
    from gateway_app.credentials import azure
    from gateway_app.errors import GatewayError

    missing = azure.missing_env()
    if missing:
        raise OwnerCredentialError(
            f"{uri} is a Key Vault secret, read with the pod's workload identity, but "
            f"{', '.join(missing)} are unset (label the pod azure.workload.identity/use=true "
            "and annotate its ServiceAccount with the identity's client id)"
        )
    env = os.environ
    client_id, tenant, token_file = (env[name] for name in azure.WORKLOAD_IDENTITY_ENV)
    # A private loop: asyncio.run would leave the thread without a current loop, which
    # breaks callers (and tests) that still use the thread's loop afterwards.
    loop = asyncio.new_event_loop()
    try:
        token, _ = loop.run_until_complete(
            azure.exchange(
                azure.authority_token_url(tenant),
                client_id,
                token_file,
                KEY_VAULT_SCOPE,
                BlockingHttpClient(),
            )
        )
    except GatewayError as exc:
        raise OwnerCredentialError(f"no Entra token for Key Vault: {exc.message}") from None
    finally:
        loop.close()
    separator = "&" if "?" in uri else "?"
    answer = _get_json(f"{uri}{separator}api-version={KEY_VAULT_API_VERSION}", token, "Key Vault")
    value = answer.get("value")
    if not isinstance(value, str):
        raise OwnerCredentialError(f"Key Vault returned no value for {uri}")
    return value


def _secret_manager_secret(url: str) -> str:
    from gateway_app.credentials import google
    from gateway_app.errors import GatewayError

    try:
        token, _ = google.refresh_token({})
    except GatewayError as exc:
        raise OwnerCredentialError(f"no Google token for Secret Manager: {exc.message}") from None
    answer = _get_json(url, token, "Secret Manager")
    data = (answer.get("payload") or {}).get("data")
    if not isinstance(data, str):
        raise OwnerCredentialError(f"Secret Manager returned no payload.data for {url}")
    try:
        return base64.b64decode(data, validate=True).decode()
    except (TypeError, ValueError):
        raise OwnerCredentialError(f"Secret Manager returned no payload.data for {url}") from None
