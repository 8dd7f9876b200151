"""Google OAuth access tokens from application default credentials (google-auth).

ADC finds, in order: ``GOOGLE_APPLICATION_CREDENTIALS`` (a service-account,
authorized-user or workload-identity-federation file), gcloud's ADC file, and
the metadata server (GCE, and GKE Workload Identity, where the pod's
Kubernetes service account maps to a Google service account). Discovery and
refresh do blocking HTTP, so both run in a worker thread; requests use the
cached token, refreshed ahead of expiry.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC
from pathlib import Path
from typing import Any

from gateway_app.credentials.cache import RefreshingCredential, credential_for
from gateway_app.errors import GatewayError

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
ADC_HINT = [
    "GOOGLE_APPLICATION_CREDENTIALS",
    "or gcloud auth application-default login",
    "or run on GKE with Workload Identity / GCE with a service account",
]


def on_google_cloud() -> bool:
    """Whether this machine is a GCE VM or GKE node (the metadata server may answer)."""
    try:
        return Path("/sys/class/dmi/id/product_name").read_text().strip().startswith("Google")
    except OSError:
        return False


def adc_sources() -> list[str]:
    """The ADC sources visible without network calls."""
    found = []
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path and os.path.isfile(path):
        found.append("credentials_file")
    config = os.environ.get("CLOUDSDK_CONFIG") or os.path.expanduser("~/.config/gcloud")
    if os.path.isfile(os.path.join(config, "application_default_credentials.json")):
        found.append("gcloud")
    if os.environ.get("GCE_METADATA_HOST") or on_google_cloud():
        found.append("metadata_server")
    return found


def refresh_token(state: dict[str, Any]) -> tuple[str, float | None]:
    """Discover ADC (once per ``state``) and refresh it: ``(token, expires_at)``; blocking."""
    import google.auth
    import google.auth.exceptions
    import urllib3
    from google.auth.transport.urllib3 import Request

    try:
        if "adc" not in state:
            state["adc"], _ = google.auth.default(scopes=list(SCOPES))
            state["http"] = Request(urllib3.PoolManager())
        credentials = state["adc"]
        credentials.refresh(state["http"])
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise GatewayError(
            401,
            f"no Google application default credentials ({exc}); set " + ", ".join(ADC_HINT),
            type="authentication_error",
            code="missing_credentials",
        ) from None
    except google.auth.exceptions.GoogleAuthError as exc:
        retryable = getattr(exc, "retryable", False)
        raise GatewayError(
            503 if retryable else 401,
            f"Google token refresh failed: {exc}",
            type="server_error" if retryable else "authentication_error",
            code="google_token_error",
        ) from None
    expiry = credentials.expiry  # naive UTC, as google-auth keeps it
    return credentials.token, expiry.replace(tzinfo=UTC).timestamp() if expiry else None


def adc_token() -> RefreshingCredential[str]:
    """The process-wide ADC access token (cloud-platform scope)."""
    return credential_for(("google-adc",), _create)


def _create() -> RefreshingCredential[str]:
    state: dict[str, Any] = {}  # the ADC credentials object, kept across refreshes

    async def fetch() -> tuple[str, float | None]:
        return await asyncio.to_thread(refresh_token, state)

    return RefreshingCredential(fetch)
