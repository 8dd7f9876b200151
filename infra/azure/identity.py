"""``ai-gateway:azure:GatewayIdentity``: the managed identity the gateway's pods use.

Microsoft Entra Workload ID: a user-assigned managed identity with a federated
credential trusting the AKS OIDC issuer for exactly the gateway's
ServiceAccount (audience ``api://AzureADTokenExchange``), and at most one role:
``Cognitive Services OpenAI User`` (call deployments, nothing to manage) on the
configured Azure OpenAI account (``ai-gateway:azure.openaiAccountId``, required
when the gateway's catalogue routes to Azure OpenAI). Without an account there
is no role at all: never a grant on a resource group where any OpenAI account
added later would become callable. No client secret exists anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, managedidentity

from infra.azure.naming import azure_name
from infra.clouds import CloudFootprint
from infra.config import StackConfig
from infra.k8s.gateway import WorkloadIdentity, service_account_subject

TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
"""The audience Entra ID expects on a federated workload token."""

COGNITIVE_SERVICES_OPENAI_USER_ROLE = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
"""Built-in role ``Cognitive Services OpenAI User``: inference calls only."""


def role_definition_id(subscription_id: str, role_guid: str) -> str:
    """The ARM id of a built-in role definition in a subscription."""
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{role_guid}"
    )


@dataclass
class GatewayIdentityArgs:
    """Inputs of :class:`GatewayIdentity`.

    ``oidc_issuer_url`` is the AKS cluster's issuer; ``subject`` the gateway
    ServiceAccount's (:func:`infra.k8s.gateway.service_account_subject`);
    ``openai_account_id`` (``ai-gateway:azure.openaiAccountId``) narrows the
    role to one Azure OpenAI account.
    """

    name_prefix: str
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    subject: str
    openai_account_id: str | None = None


class GatewayIdentity(pulumi.ComponentResource):
    """User-assigned identity + federated credential + ``Cognitive Services OpenAI User``.

    Output: ``client_id`` (the ServiceAccount's ``azure.workload.identity/client-id``).
    """

    client_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: GatewayIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:azure:GatewayIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        client = authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        )

        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=azure_name("user_assigned_identity", "id", args.name_prefix, "gateway"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            opts=child,
        )
        managedidentity.FederatedIdentityCredential(
            f"{name}-federation",
            federated_identity_credential_resource_name="ai-gateway-service-account",
            resource_name_=self.identity.name,
            resource_group_name=args.resource_group_name,
            issuer=args.oidc_issuer_url,
            subject=args.subject,
            audiences=[TOKEN_EXCHANGE_AUDIENCE],
            opts=child,
        )
        if args.openai_account_id:
            authorization.RoleAssignment(
                f"{name}-openai-user",
                principal_id=self.identity.principal_id,
                principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
                role_definition_id=client.subscription_id.apply(
                    lambda sub: role_definition_id(sub, COGNITIVE_SERVICES_OPENAI_USER_ROLE)
                ),
                scope=args.openai_account_id,
                opts=child,
            )
        self.client_id = self.identity.client_id
        self.principal_id = self.identity.principal_id
        self.workload_identity = WorkloadIdentity.azure(self.client_id)
        self.register_outputs({"clientId": self.client_id, "principalId": self.principal_id})


def build(config: StackConfig, footprint: CloudFootprint) -> GatewayIdentity:
    """The gateway's identity on the Azure footprint (Entra Workload ID through the AKS issuer)."""
    return GatewayIdentity(
        f"{config.name_prefix}-azure-gateway-identity",
        GatewayIdentityArgs(
            name_prefix=config.name_prefix,
            resource_group_name=footprint.extras["resourceGroupName"],
            location=config.azure.location,
            oidc_issuer_url=footprint.oidc_issuer_url,
            subject=service_account_subject(),
            openai_account_id=config.azure.openai_account_id,
        ),
        opts=pulumi.ResourceOptions(parent=footprint.component, provider=footprint.provider),
    )
