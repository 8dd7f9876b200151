"""The contract every cloud footprint hands to the program, and the loop over clouds.

Each cloud package (``infra/aws``, ``infra/azure``, ``infra/gcp``) exposes
``build(config) -> CloudFootprint`` in its ``footprint`` module. The
program never looks inside a footprint beyond this contract, so it reads as one
loop over clouds, and the gateway workload (``infra/k8s``) is deployed the same
way on each.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pulumi

from infra.config import Cloud, StackConfig

if TYPE_CHECKING:
    from infra.k8s.gateway import MigrationAccess, WorkloadIdentity


POSTGRES_APP_ROLE = "gateway_app"
"""The gateway's own PostgreSQL role in every cloud: row access to its tables only. The
migration Job creates it as the server's admin (``gateway_app migrate``), whose
credential it reads from the cloud's secret store (:attr:`CloudFootprint.owner_secret`)."""


@dataclass
class CloudFootprint:
    """What a cloud's component gives the rest of the program.

    ``redis_url`` and ``postgres_dsn`` are secret Outputs (they embed
    credentials); ``postgres_dsn`` logs in as :data:`POSTGRES_APP_ROLE`; the
    server admin's credential stays in the cloud's secret store
    (``owner_secret``), read only by the migration Job's own identity;
    ``kubeconfig`` is secret too. ``kube_provider`` deploys into
    the cluster in the same ``pulumi up``. ``provider`` is the footprint's
    explicit cloud provider: the gateway's identity and registry use it too.
    """

    cloud: Cloud
    component: pulumi.ComponentResource
    region: str
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    kube_provider: pulumi.ProviderResource
    redis_url: pulumi.Output[str]
    postgres_dsn: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str] | None = None
    """The cluster's service-account token issuer (https URL), trusted by cloud identities."""
    provider: pulumi.ProviderResource | None = None
    """The cloud's explicit provider, for the per-cloud resources built beside the footprint."""
    data_store_cidrs: list[pulumi.Input[str]] = field(default_factory=list)
    """Private CIDRs holding Redis and PostgreSQL: the gateway's NetworkPolicy egress targets."""
    redis_port: int = 6379
    """Redis's TLS port: 6379 ElastiCache, 10000 Azure Managed Redis, 6378 Memorystore."""
    load_balancer_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Annotations of the gateway's public LoadBalancer Service (Envoy Gateway creates it)."""
    edge_prerequisites: list[pulumi.Resource] = field(default_factory=list)
    """What must run before that load balancer is provisioned (EKS: the AWS Load Balancer Controller)."""
    redis_ca_cert: pulumi.Output[str] | None = None
    owner_secret: pulumi.Output[str] | None = None
    """Where the server admin's ``{"username", "password"}`` lives (a Secrets Manager ARN,
    a Key Vault secret URI, a Secret Manager version URL): the migration Job reads it at run
    time (``AIGW_MIGRATION_SECRET``) to migrate and create the app role."""
    api_services: list[pulumi.Resource] = field(default_factory=list)
    """The resources enabling the cloud APIs (GCP ``projects.Service``): what the resources
    built beside the footprint (identity, registry) wait for before calling those APIs."""
    extras: dict[str, pulumi.Output] = field(default_factory=dict)


def build(cloud: Cloud, config: StackConfig) -> CloudFootprint:
    """Build one enabled cloud's footprint through its package's ``footprint.build``."""
    module = importlib.import_module(f"infra.{cloud.value}.footprint")
    return module.build(config)


class CloudIdentity(Protocol):
    """What every cloud's ``ai-gateway:<cloud>:GatewayIdentity`` gives the gateway."""

    workload_identity: WorkloadIdentity
    """The ServiceAccount annotations (and pod labels, egress) binding pods to the identity."""
    migration: MigrationAccess | None
    """The migration Job's own identity and the owner secret only it may read (None: the Job
    migrates as the gateway's role)."""


def gateway_identity(cloud: Cloud, config: StackConfig, footprint: CloudFootprint) -> CloudIdentity:
    """The gateway's cloud identity on ``cloud`` (``infra.<cloud>.identity.build``).

    The returned component's ``workload_identity`` is what the gateway's
    ServiceAccount carries (:class:`infra.k8s.gateway.WorkloadIdentity`).
    """
    module = importlib.import_module(f"infra.{cloud.value}.identity")
    return module.build(config, footprint)


def gateway_image(
    cloud: Cloud, config: StackConfig, footprint: CloudFootprint
) -> pulumi.Input[str] | None:
    """The image the gateway runs on ``cloud`` (``infra.<cloud>.registry.build``).

    ``None`` means the published ``ai-gateway:gateway.image``; with
    ``gateway.buildImage`` on, the reference (by digest) of the image built and
    pushed to the cloud's registry.
    """
    module = importlib.import_module(f"infra.{cloud.value}.registry")
    return module.build(config, footprint)
