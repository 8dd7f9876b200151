"""OpenAI chat-completions / embeddings body -> Azure OpenAI deployment request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gateway_app.errors import GatewayError

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig, ProviderConfig

DEFAULT_API_VERSION = "2024-10-21"
"""The latest GA data-plane version (deployments with stream usage, JSON schema, tools)."""


def deployment_url(deployment: DeploymentConfig, provider: ProviderConfig, operation: str) -> str:
    """``{endpoint}/openai/deployments/{name}/{operation}?api-version=...``."""
    if not provider.base_url:
        raise GatewayError(
            500,
            f"deployment {deployment.id}: the azure_openai provider needs `base_url`, the "
            "resource endpoint (https://<resource>.openai.azure.com)",
            code="missing_endpoint",
        )
    version = deployment.params.get("api_version") or provider.api_version or DEFAULT_API_VERSION
    name = quote(deployment.model, safe="")
    return (
        f"{provider.base_url.rstrip('/')}/openai/deployments/{name}/{operation}"
        f"?api-version={quote(str(version), safe='')}"
    )


def responses_url(provider: ProviderConfig) -> str:
    """``{endpoint}/openai/v1/responses``: Azure serves the Responses API only on its v1
    surface, which takes no ``api-version`` and names the deployment in the body's
    ``model`` (learn.microsoft.com/azure/ai-foundry/openai/how-to/responses)."""
    if not provider.base_url:
        raise GatewayError(
            500,
            "the azure_openai provider needs `base_url`, the resource endpoint "
            "(https://<resource>.openai.azure.com)",
            code="missing_endpoint",
        )
    return f"{provider.base_url.rstrip('/')}/openai/v1/responses"


def translate_request(
    body: dict[str, Any], deployment: DeploymentConfig, stream: bool
) -> dict[str, Any]:
    """The body Azure expects: OpenAI's, with usage always requested on streams."""
    upstream = dict(body)
    # The deployment in the URL selects the model; Azure ignores ``model`` in the body.
    upstream["model"] = deployment.model
    if stream:
        options = dict(upstream.get("stream_options") or {})
        options["include_usage"] = True
        upstream["stream_options"] = options
    upstream.update(deployment.params.get("extra_body", {}))
    return upstream
