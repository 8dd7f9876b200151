"""AWS credentials from botocore's standard chain, and SigV4 signing.

The chain is botocore's own: environment keys, the shared config/credentials
files and profiles, IRSA (``AWS_ROLE_ARN`` + ``AWS_WEB_IDENTITY_TOKEN_FILE``:
AssumeRoleWithWebIdentity), ECS/EKS Pod Identity container credentials, and the
EC2 instance role. Resolving and refreshing it does blocking HTTP, so it runs
in a worker thread; requests sign with the cached keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from gateway_app.credentials.cache import RefreshingCredential, credential_for
from gateway_app.errors import GatewayError

# Headers covered by the signature. The router sets ``accept`` after signing
# (streams), and the HTTP client adds its own, so only these are signed.
SIGNED_HEADERS = (
    "content-type",
    "host",
    "x-amz-content-sha256",
    "x-amz-date",
    "x-amz-security-token",
)

CHAIN_HINT = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "or AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (IRSA)",
    "or AWS_PROFILE",
    "or AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity)",
    "or an EC2 instance role",
]


def on_ec2() -> bool:
    """Whether this machine is an EC2 instance (the instance role may answer)."""
    for path, prefix in (
        ("/sys/devices/virtual/dmi/id/board_asset_tag", "i-"),
        ("/sys/devices/virtual/dmi/id/sys_vendor", "Amazon EC2"),
        ("/sys/hypervisor/uuid", "ec2"),
    ):
        try:
            if Path(path).read_text().strip().startswith(prefix):
                return True
        except OSError:
            continue
    return False


def credential_sources() -> list[str]:
    """The chain's sources visible without network calls (environment and files)."""
    env = os.environ
    found = []
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        found.append("environment")
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        found.append("web_identity")
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") or env.get(
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
    ):
        found.append("container")
    if env.get("AWS_PROFILE"):
        found.append("profile")
    if on_ec2():
        found.append("instance_metadata")
    for path in (
        env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials",
        env.get("AWS_CONFIG_FILE") or "~/.aws/config",
    ):
        if os.path.isfile(os.path.expanduser(path)):
            found.append("shared_files")
            break
    return found


def _resolve(state: dict[str, Any]) -> tuple[ReadOnlyCredentials, float | None]:
    import botocore.session

    credentials = state.get("credentials")
    if credentials is None:
        # Kept across refreshes: botocore's refreshable credentials renew themselves.
        credentials = state["credentials"] = botocore.session.get_session().get_credentials()
    if credentials is None:
        state.pop("credentials", None)
        raise GatewayError(
            401,
            "no AWS credentials found in the standard chain; set " + ", ".join(CHAIN_HINT),
            type="authentication_error",
            code="missing_credentials",
        )
    frozen = credentials.get_frozen_credentials()
    # RefreshableCredentials (IRSA, instance role) expire; botocore keeps the time privately.
    expiry = getattr(credentials, "_expiry_time", None)
    return frozen, expiry.timestamp() if isinstance(expiry, datetime) else None


def chain_credentials() -> RefreshingCredential[ReadOnlyCredentials]:
    """The process-wide AWS credentials (the chain reads the process environment).

    botocore refreshes temporary credentials (IRSA, instance role) itself once
    they are within 15 minutes of expiry; this asks it again in the background
    from that point on, so requests never wait on STS or the metadata service.
    """
    return credential_for(("aws-chain",), _create)


def _create() -> RefreshingCredential[ReadOnlyCredentials]:
    state: dict[str, Any] = {}

    async def fetch() -> tuple[ReadOnlyCredentials, float | None]:
        return await asyncio.to_thread(_resolve, state)

    return RefreshingCredential(fetch, refresh_before=900.0, must_refresh_before=300.0)


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: ReadOnlyCredentials,
    service: str,
    region: str,
    *,
    now: datetime | None = None,
) -> dict[str, str]:
    """``headers`` plus the SigV4 ``authorization``, ``x-amz-date`` (and session token)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    to_sign = {k: v for k, v in headers.items() if k.lower() in SIGNED_HEADERS}
    to_sign["x-amz-date"] = stamp
    to_sign["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    if credentials.token:
        to_sign["x-amz-security-token"] = credentials.token
    request = AWSRequest(method=method, url=url, headers=to_sign, data=body)
    request.context["timestamp"] = stamp
    auth = SigV4Auth(credentials, service, region)
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    scope = auth.scope(request)
    signed = auth.signed_headers(auth.headers_to_sign(request))
    out = dict(headers)
    out.update({k: v for k, v in to_sign.items() if k != "host"})
    out["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={signature}"
    )
    return out
