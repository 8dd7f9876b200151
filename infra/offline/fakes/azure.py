"""Fakes for pulumi-azure-native: ARM ids and the client config."""

from __future__ import annotations

from typing import Any

from infra.offline.fakes import FakeContext, fake_hex, function, generic


def arm_id(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> str:
    """An ARM resource id shaped like the real one for ``token``."""
    _, module, kind = token.split(":")
    group = inputs.get("resourceGroupName") or "rg"
    if kind == "ResourceGroup":
        return f"/subscriptions/{ctx.azure_subscription_id}/resourceGroups/{name}"
    return (
        f"/subscriptions/{ctx.azure_subscription_id}/resourceGroups/{group}/providers/"
        f"Microsoft.{module.capitalize()}/{kind[0].lower()}{kind[1:]}s/{name}"
    )


@generic("azure-native")
def _azure_generic(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    # azure-native names are usually an explicit input (resourceName, vmName...);
    # otherwise Pulumi auto-names with a random suffix.
    physical = next(
        (
            v
            for k, v in inputs.items()
            if k.endswith("Name") and k != "resourceGroupName" and isinstance(v, str)
        ),
        f"{name}{fake_hex(name, length=6)}",
    )
    return {
        "id": arm_id(ctx, token, physical, inputs),
        "name": physical,
        "azureApiVersion": "2024-01-01",
        "provisioningState": "Succeeded",
    }


@function("azure-native:authorization:getClientConfig")
def _client_config(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "clientId": "00000000-0000-4000-8000-0000000000c1",
        "objectId": "00000000-0000-4000-8000-0000000000d1",
        "subscriptionId": ctx.azure_subscription_id,
        "tenantId": ctx.azure_tenant_id,
    }
