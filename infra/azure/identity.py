"""``ai-gateway:azure:GatewayIdentity``: the managed identity the gateway's pods use.

Microsoft Entra Workload ID: a user-assigned managed identity with a federated
credential trusting the AKS OIDC issuer for exactly the gateway's
ServiceAccount (audience ``api://AzureADTokenExchange``), and at most one role:
``Cognitive Services OpenAI User`` (call deployments, nothing to manage) on the
configured Azure OpenAI account (``ai-gateway:azure.openaiAccountId``, required
when the gateway's catalogue routes to Azure OpenAI). Without an account there
is no role at all: never a grant on a resource group where any OpenAI account
added later would become callable. No client secret exists anywhere. On Azure
Managed Redis (access keys disabled) it holds the database's ``default`` access
policy ("Data Owner": every command Azure Managed Redis allows), the only way a
client gets in; the pods then authenticate with Entra tokens
(``AIGW_REDIS_AUTH=entra``).

``ai-gateway:azure:MigrationIdentity`` is the migration Job's own identity,
federated with its ServiceAccount (``ai-gateway-migrate``) only, holding ``Key
Vault Secrets User`` on exactly one secret: the PostgreSQL administrator's. The
gateway's identity has no role on the vault.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, managedidentity, redisenterprise

from infra.config import StackConfig
from infra.contracts.footprint import AzureOutputs, CloudFootprint
from infra.contracts.workload import MigrationAccess, WorkloadIdentity
from infra.decisions.azure import azure_name
from infra.k8s.gateway import MIGRATION_SERVICE_ACCOUNT, service_account_subject

TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
"""The audience Entra ID expects on a federated workload token."""

COGNITIVE_SERVICES_OPENAI_USER_ROLE = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
"""Built-in role ``Cognitive Services OpenAI User``: inference calls only."""

REDIS_ACCESS_POLICY = "default"
"""The one access policy an Azure Managed Redis database offers ("Only "default" policy is
supported", the AccessPolicyAssignment API): full data access, no management."""
REDIS_ENTRA_ENV = {"AIGW_REDIS_AUTH": "entra"}
"""What tells the gateway to AUTH to Redis with its Entra token instead of a key."""

KEY_VAULT_SECRETS_USER_ROLE = "4633458b-17de-408a-b874-0445c86b69e6"
"""Built-in role ``Key Vault Secrets User``: read secret contents; assignable on one secret
("Provide access to Key Vault keys, certificates, and secrets with Azure role-based access
control", Microsoft Learn)."""


def role_definition_id(subscription_id: str, role_guid: str) -> str:
    """The ARM id of a built-in role definition in a subscription."""
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{role_guid}"
    )


def federated_identity(
    name: str,
    *,
    role: str,
    credential_name: str,
    resource_group_name: pulumi.Input[str],
    location: pulumi.Input[str],
    name_prefix: str,
    issuer: pulumi.Input[str],
    subject: str,
    opts: pulumi.ResourceOptions,
) -> managedidentity.UserAssignedIdentity:
    """A user-assigned identity (``id-<prefix>-<role>``) that only ``subject``'s token may use.

    The federated credential trusts the cluster's issuer for exactly that
    ServiceAccount and Entra's token-exchange audience.
    """
    identity = managedidentity.UserAssignedIdentity(
        f"{name}-identity",
        resource_name_=azure_name("user_assigned_identity", "id", name_prefix, role),
        resource_group_name=resource_group_name,
        location=location,
        opts=opts,
    )
    managedidentity.FederatedIdentityCredential(
        f"{name}-federation",
        federated_identity_credential_resource_name=credential_name,
        resource_name_=identity.name,
        resource_group_name=resource_group_name,
        issuer=issuer,
        subject=subject,
        audiences=[TOKEN_EXCHANGE_AUDIENCE],
        opts=opts,
    )
    return identity


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
    redis_cluster_name: pulumi.Input[str] | None = None
    """The Azure Managed Redis cluster whose database the gateway uses with Entra tokens."""
    redis_database_name: pulumi.Input[str] | None = None


class GatewayIdentity(pulumi.ComponentResource):
    """User-assigned identity + federated credential + ``Cognitive Services OpenAI User``.

    Output: ``client_id`` (the ServiceAccount's ``azure.workload.identity/client-id``).
    """

    client_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    migration: MigrationAccess | None = None
    """The migration Job's identity and secret (set by :func:`build`)."""

    def __init__(
        self, name: str, args: GatewayIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:azure:GatewayIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        client = authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        )

        self.identity = federated_identity(
            name,
            role="gateway",
            credential_name="ai-gateway-service-account",
            resource_group_name=args.resource_group_name,
            location=args.location,
            name_prefix=args.name_prefix,
            issuer=args.oidc_issuer_url,
            subject=args.subject,
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
        redis_env: dict[str, str] = {}
        if args.redis_cluster_name is not None and args.redis_database_name is not None:
            # Access keys are off: this assignment is how the gateway reaches Redis, as the
            # user named by its object id ("Use Microsoft Entra for cache authentication").
            redisenterprise.AccessPolicyAssignment(
                f"{name}-redis-access",
                access_policy_name=REDIS_ACCESS_POLICY,
                cluster_name=args.redis_cluster_name,
                database_name=args.redis_database_name,
                resource_group_name=args.resource_group_name,
                user=redisenterprise.AccessPolicyAssignmentPropertiesUserArgs(
                    object_id=self.identity.principal_id
                ),
                opts=child,
            )
            redis_env = REDIS_ENTRA_ENV
        self.client_id = self.identity.client_id
        self.principal_id = self.identity.principal_id
        self.workload_identity = WorkloadIdentity.azure(self.client_id, redis_env)
        self.register_outputs({"clientId": self.client_id, "principalId": self.principal_id})


@dataclass
class MigrationIdentityArgs:
    """Inputs of :class:`MigrationIdentity`: the AKS issuer and the one secret it may read."""

    name_prefix: str
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    owner_secret_id: pulumi.Input[str]
    """ARM id of the Key Vault secret (``.../vaults/<vault>/secrets/<name>``): the grant's scope."""


class MigrationIdentity(pulumi.ComponentResource):
    """User-assigned identity + federated credential + ``Key Vault Secrets User`` on one secret.

    Output: ``client_id`` (the Job ServiceAccount's ``azure.workload.identity/client-id``).
    """

    def __init__(
        self, name: str, args: MigrationIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:azure:MigrationIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        client = authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        )
        identity = federated_identity(
            name,
            role="migrate",
            credential_name="ai-gateway-migrate-service-account",
            resource_group_name=args.resource_group_name,
            location=args.location,
            name_prefix=args.name_prefix,
            issuer=args.oidc_issuer_url,
            subject=service_account_subject(app_name=MIGRATION_SERVICE_ACCOUNT),
            opts=child,
        )
        authorization.RoleAssignment(
            f"{name}-owner-secret-reader",
            principal_id=identity.principal_id,
            principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=client.subscription_id.apply(
                lambda sub: role_definition_id(sub, KEY_VAULT_SECRETS_USER_ROLE)
            ),
            scope=args.owner_secret_id,
            opts=child,
        )
        self.client_id = identity.client_id
        self.register_outputs({"clientId": self.client_id})


def build(config: StackConfig, footprint: CloudFootprint[AzureOutputs]) -> GatewayIdentity:
    """The gateway's identity on the Azure footprint (Entra Workload ID through the AKS issuer),
    and the migration Job's beside it (:attr:`GatewayIdentity.migration`)."""
    identity = GatewayIdentity(
        f"{config.name_prefix}-azure-gateway-identity",
        GatewayIdentityArgs(
            name_prefix=config.name_prefix,
            resource_group_name=footprint.outputs.resource_group_name,
            location=config.azure.location,
            oidc_issuer_url=footprint.oidc_issuer_url,
            subject=service_account_subject(),
            openai_account_id=config.azure.openai_account_id,
            redis_cluster_name=footprint.outputs.redis_cluster_name,
            redis_database_name=footprint.outputs.redis_database_name,
        ),
        opts=pulumi.ResourceOptions(parent=footprint.component, provider=footprint.provider),
    )
    if footprint.owner_secret is not None:
        migration = MigrationIdentity(
            f"{config.name_prefix}-azure-migration-identity",
            MigrationIdentityArgs(
                name_prefix=config.name_prefix,
                resource_group_name=footprint.outputs.resource_group_name,
                location=config.azure.location,
                oidc_issuer_url=footprint.oidc_issuer_url,
                owner_secret_id=footprint.outputs.owner_secret_id,
            ),
            opts=pulumi.ResourceOptions(parent=footprint.component, provider=footprint.provider),
        )
        identity.migration = MigrationAccess(
            owner_secret=footprint.owner_secret,
            workload_identity=WorkloadIdentity.azure(migration.client_id),
        )
    return identity
