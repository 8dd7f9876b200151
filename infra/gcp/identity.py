"""``ai-gateway:gcp:GatewayIdentity``: the GCP service account the gateway's pods act as.

GKE Workload Identity: the Kubernetes ServiceAccount ``ai-gateway/ai-gateway``
(member ``serviceAccount:<project>.svc.id.goog[ai-gateway/ai-gateway]``) may
impersonate this service account (``roles/iam.workloadIdentityUser`` on the
account alone), which holds ``roles/aiplatform.user`` on the project to call
Vertex AI. No key file is created.

``ai-gateway:gcp:MigrationIdentity`` is the migration Job's own service account,
impersonable only by its ServiceAccount (``ai-gateway/ai-gateway-migrate``) and
holding ``roles/secretmanager.secretAccessor`` on exactly one secret: the Cloud
SQL owner's. The gateway's service account cannot read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.contracts.footprint import CloudFootprint, GcpOutputs
from infra.contracts.workload import MigrationAccess, WorkloadIdentity
from infra.decisions.gcp import resource_name
from infra.k8s.gateway import MIGRATION_SERVICE_ACCOUNT

VERTEX_ROLE = "roles/aiplatform.user"
WORKLOAD_IDENTITY_ROLE = "roles/iam.workloadIdentityUser"
SECRET_ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"
"""Read a secret's versions ("Access control with IAM", Secret Manager docs); granted on one secret."""


def workload_identity_member(workload_pool: str, namespace: str, service_account: str) -> str:
    """The IAM member of a Kubernetes ServiceAccount: ``serviceAccount:<pool>[<ns>/<name>]``."""
    if not workload_pool.endswith(".svc.id.goog"):
        raise ValueError(
            f"workload pool {workload_pool!r} is not a GKE workload pool; pass the cluster's "
            "<project>.svc.id.goog"
        )
    return f"serviceAccount:{workload_pool}[{namespace}/{service_account}]"


def workload_account(
    name: str,
    *,
    account_id: str,
    display_name: str,
    project: str,
    workload_pool: pulumi.Input[str],
    namespace: str,
    service_account: str,
    opts: pulumi.ResourceOptions,
) -> gcp.serviceaccount.Account:
    """A service account only the Kubernetes ServiceAccount ``namespace/service_account`` may
    act as (``roles/iam.workloadIdentityUser`` on the account alone)."""
    account = gcp.serviceaccount.Account(
        f"{name}-account",
        account_id=account_id,
        display_name=display_name,
        project=project,
        opts=opts,
    )
    gcp.serviceaccount.IAMMember(
        f"{name}-workload-identity",
        service_account_id=account.name,
        role=WORKLOAD_IDENTITY_ROLE,
        member=pulumi.Output.from_input(workload_pool).apply(
            lambda pool: workload_identity_member(pool, namespace, service_account)
        ),
        opts=opts,
    )
    return account


@dataclass
class GatewayIdentityArgs:
    """Inputs of :class:`GatewayIdentity`.

    ``workload_pool`` is the cluster's ``<project>.svc.id.goog``, taken from the
    cluster's output so the binding waits for the cluster that creates the pool;
    ``namespace`` and ``service_account`` name the gateway's Kubernetes
    ServiceAccount; ``apis`` are the ``projects.Service`` resources enabling IAM,
    Resource Manager and Vertex AI, which every resource here waits for.
    """

    name_prefix: str
    project: str
    workload_pool: pulumi.Input[str]
    namespace: str = "ai-gateway"
    service_account: str = "ai-gateway"
    apis: Sequence[pulumi.Resource] = field(default_factory=list)


class GatewayIdentity(pulumi.ComponentResource):
    """Service account + Vertex AI user on the project + Workload Identity binding.

    Output: ``email`` (the ServiceAccount's ``iam.gke.io/gcp-service-account``).
    """

    email: pulumi.Output[str]
    migration: MigrationAccess | None = None
    """The migration Job's identity and secret (set by :func:`build`)."""

    def __init__(
        self, name: str, args: GatewayIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:gcp:GatewayIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.apis))
        self.account = workload_account(
            name,
            account_id=resource_name(args.name_prefix, "gateway", "service_account"),
            display_name="AI gateway workload (Vertex AI caller)",
            project=args.project,
            workload_pool=args.workload_pool,
            namespace=args.namespace,
            service_account=args.service_account,
            opts=child,
        )
        gcp.projects.IAMMember(
            f"{name}-vertex-user",
            project=args.project,
            role=VERTEX_ROLE,
            member=self.account.member,
            opts=child,
        )
        self.email = self.account.email
        self.workload_identity = WorkloadIdentity.gcp(self.email)
        self.register_outputs({"email": self.email})


@dataclass
class MigrationIdentityArgs:
    """Inputs of :class:`MigrationIdentity`: the cluster's workload pool and the one secret."""

    name_prefix: str
    project: str
    workload_pool: pulumi.Input[str]
    owner_secret_id: pulumi.Input[str]
    namespace: str = "ai-gateway"
    apis: Sequence[pulumi.Resource] = field(default_factory=list)


class MigrationIdentity(pulumi.ComponentResource):
    """Service account + accessor on the owner's secret + Workload Identity binding.

    Output: ``email`` (the Job ServiceAccount's ``iam.gke.io/gcp-service-account``).
    """

    def __init__(
        self, name: str, args: MigrationIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:gcp:MigrationIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.apis))
        account = workload_account(
            name,
            account_id=resource_name(args.name_prefix, "migrate", "service_account"),
            display_name="AI gateway schema migration (reads the database owner's secret)",
            project=args.project,
            workload_pool=args.workload_pool,
            namespace=args.namespace,
            service_account=MIGRATION_SERVICE_ACCOUNT,
            opts=child,
        )
        gcp.secretmanager.SecretIamMember(
            f"{name}-owner-secret",
            secret_id=args.owner_secret_id,
            role=SECRET_ACCESSOR_ROLE,
            member=account.member,
            opts=child,
        )
        self.email = account.email
        self.register_outputs({"email": self.email})


def build(config: StackConfig, footprint: CloudFootprint[GcpOutputs]) -> GatewayIdentity:
    """The gateway's identity on the GCP footprint (GKE Workload Identity), and the
    migration Job's beside it (:attr:`GatewayIdentity.migration`)."""
    identity = GatewayIdentity(
        f"{config.name_prefix}-gcp-gateway-identity",
        GatewayIdentityArgs(
            name_prefix=config.name_prefix,
            project=config.gcp.project,
            workload_pool=footprint.outputs.workload_pool,
            apis=footprint.api_services,
        ),
        opts=pulumi.ResourceOptions(parent=footprint.component, provider=footprint.provider),
    )
    if footprint.owner_secret is not None:
        migration = MigrationIdentity(
            f"{config.name_prefix}-gcp-migration-identity",
            MigrationIdentityArgs(
                name_prefix=config.name_prefix,
                project=config.gcp.project,
                workload_pool=footprint.outputs.workload_pool,
                owner_secret_id=footprint.outputs.owner_secret_id,
                apis=footprint.api_services,
            ),
            opts=pulumi.ResourceOptions(parent=footprint.component, provider=footprint.provider),
        )
        identity.migration = MigrationAccess(
            owner_secret=footprint.owner_secret,
            workload_identity=WorkloadIdentity.gcp(migration.email),
        )
    return identity
