"""Microsoft Entra tokens from a pod's workload identity (client-assertion exchange).

Azure Workload Identity projects a service-account token into the pod and sets
``AZURE_CLIENT_ID``, ``AZURE_TENANT_ID``, ``AZURE_FEDERATED_TOKEN_FILE`` and
``AZURE_AUTHORITY_HOST``. The token file's content is the client assertion of an
OAuth2 client-credentials request to ``{authority}/{tenant}/oauth2/v2.0/token``;
the answer is a bearer token for the scope (Azure OpenAI:
``https://cognitiveservices.azure.com/.default``), cached and refreshed ahead of
expiry. The file is re-read on every exchange: the kubelet rotates it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from gateway_app.credentials import cache
from gateway_app.credentials.cache import RefreshingCredential, credential_for
from gateway_app.errors import GatewayError

if TYPE_CHECKING:
    from gateway_app.config import ProviderConfig

WORKLOAD_IDENTITY_ENV = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE")
DEFAULT_AUTHORITY = "https://login.microsoftonline.com/"
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def missing_env() -> list[str]:
    """The workload-identity variables that are unset."""
    return [name for name in WORKLOAD_IDENTITY_ENV if not os.environ.get(name)]


def token_url(provider: ProviderConfig, tenant: str) -> str:
    """The provider's ``token_url``, else ``{AZURE_AUTHORITY_HOST}/{tenant}/oauth2/v2.0/token``."""
    return provider.token_url or authority_token_url(tenant)


def authority_token_url(tenant: str) -> str:
    """``{AZURE_AUTHORITY_HOST}/{tenant}/oauth2/v2.0/token`` (Entra ID's public cloud by default)."""
    authority = os.environ.get("AZURE_AUTHORITY_HOST") or DEFAULT_AUTHORITY
    return f"{authority.rstrip('/')}/{tenant}/oauth2/v2.0/token"


def _auth_error(message: str, status: int = 401) -> GatewayError:
    return GatewayError(
        status,
        message,
        type="authentication_error" if status == 401 else "server_error",
        code="entra_token_error",
    )


async def exchange(
    url: str, client_id: str, token_file: str, scope: str, client: Any
) -> tuple[str, float]:
    """One client-assertion exchange: ``(access_token, expires_at)``."""
    try:
        assertion = (await asyncio.to_thread(Path(token_file).read_text)).strip()
    except OSError as exc:
        raise _auth_error(
            f"cannot read AZURE_FEDERATED_TOKEN_FILE {token_file}: {exc.strerror}"
        ) from None
    form = urlencode(
        {
            "client_id": client_id,
            "scope": scope,
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
    ).encode()
    started = cache.now()
    try:
        status, _, raw = await client.post(
            url,
            {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
            form,
            timeout=10.0,
        )
    except Exception as exc:  # connect errors and timeouts: transient, worth a retry
        raise _auth_error(
            f"Entra token endpoint {url} unreachable: {type(exc).__name__}", 503
        ) from None
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        answer = {}
    if status != 200 or not answer.get("access_token"):
        detail = answer.get("error_description") or answer.get("error") or f"HTTP {status}"
        raise _auth_error(
            f"Entra token exchange for client {client_id} failed: {detail}",
            503 if status >= 500 else 401,
        )
    return str(answer["access_token"]), started + float(answer.get("expires_in") or 3600)


def entra_token(
    provider: ProviderConfig, scope: str | None, client: Any
) -> RefreshingCredential[str]:
    """The process-wide Entra token for this workload identity, endpoint and scope."""
    missing = missing_env()
    if missing:
        raise _auth_error(
            "no Azure credentials: set the provider's api_key, or run with workload identity "
            f"({', '.join(missing)} unset)"
        )
    env = os.environ
    client_id, tenant, token_file = (env[name] for name in WORKLOAD_IDENTITY_ENV)
    url = token_url(provider, tenant)
    chosen = scope or COGNITIVE_SERVICES_SCOPE

    async def fetch() -> tuple[str, float]:
        return await exchange(url, client_id, token_file, chosen, client)

    return credential_for(
        ("entra", url, client_id, token_file, chosen), lambda: RefreshingCredential(fetch)
    )
