"""What every cloud's footprint hands the program: :class:`CloudFootprint`.

The shared fields (kube provider, the gateway's Redis URL and PostgreSQL DSNs,
where the data stores live) are what the gateway needs on any cloud; ``outputs``
carries the cloud's own typed outputs (:class:`AwsOutputs`, :class:`AzureOutputs`,
:class:`GcpOutputs`) for the resources built beside the footprint (the gateway's
identity and registry, the global layer's DNS-01 solvers). The footprint
component registers them under the same camelCase keys (:meth:`by_key`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Generic, TypeVar

import pulumi

from infra.contracts.enums import Cloud


class _Outputs:
    """A cloud's typed outputs; :meth:`by_key` gives them under their registered keys."""

    def by_key(self) -> dict[str, pulumi.Output | None]:
        """``{camelCaseName: value}``: what the footprint component registers."""
        return {_camel(f.name): getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class AwsOutputs(_Outputs):
    """What the EKS footprint gives the AWS resources built beside it."""

    oidc_provider_arn: pulumi.Output[str]
    """The cluster's IAM OIDC provider: IRSA roles trust it."""
    oidc_issuer_url: pulumi.Output[str]
    """The issuer without ``https://`` (the form IAM condition keys take)."""
    node_role_arn: pulumi.Output[str]
    node_role_name: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    """The footprint's key: the registry encrypts images with it too."""
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    cluster_security_group_id: pulumi.Output[str]


@dataclass(frozen=True)
class AzureOutputs(_Outputs):
    """What the AKS footprint gives the Azure resources built beside it."""

    oidc_issuer_url: pulumi.Output[str]
    resource_group_name: pulumi.Output[str]
    location: pulumi.Output[str]
    kubelet_identity_object_id: pulumi.Output[str]
    """The kubelet's identity: the registry grants it AcrPull."""
    cluster_identity_principal_id: pulumi.Output[str]
    vnet_id: pulumi.Output[str]
    node_subnet_id: pulumi.Output[str]
    egress_ip: pulumi.Output[str] | None
    """The NAT gateway's public IP (the registry's firewall admits it), when there is one."""
    ingress_ip: pulumi.Output[str]
    owner_secret_id: pulumi.Output[str]
    """The Key Vault secret holding the database owner: only the migration identity reads it."""
    redis_cluster_name: pulumi.Output[str]
    """The Azure Managed Redis cluster: the gateway's identity gets an access policy on it."""
    redis_database_name: pulumi.Output[str]
    """Its database (``default``), the access policy assignment's parent."""


@dataclass(frozen=True)
class GcpOutputs(_Outputs):
    """What the GKE footprint gives the GCP resources built beside it."""

    workload_pool: pulumi.Output[str]
    """``<project>.svc.id.goog``: GKE Workload Identity members name it."""
    project: pulumi.Output[str]
    region: pulumi.Output[str]
    node_service_account_email: pulumi.Output[str]
    """The nodes' service account: the registry grants it image pulls."""
    oidc_issuer_url: pulumi.Output[str]
    network_id: pulumi.Output[str]
    subnetwork_id: pulumi.Output[str]
    owner_secret_id: pulumi.Output[str]
    """The Secret Manager secret holding the database owner: only the migration identity reads it."""


OutputsT = TypeVar("OutputsT", AwsOutputs, AzureOutputs, GcpOutputs)


POSTGRES_APP_ROLE = "gateway_app"
"""The gateway's own PostgreSQL role in every cloud: row access to its tables only. The
migration Job creates it as the server's admin (``gateway_app migrate``), whose
credential it reads from the cloud's secret store (:attr:`CloudFootprint.owner_secret`)."""


@dataclass
class CloudFootprint(Generic[OutputsT]):
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
    outputs: OutputsT
    """The cloud's own typed outputs."""
    oidc_issuer_url: pulumi.Output[str]
    """The cluster's service-account token issuer (https URL), trusted by cloud identities."""
    provider: pulumi.ProviderResource | None = None
    """The cloud's explicit provider, for the per-cloud resources built beside the footprint."""
    data_store_cidrs: list[pulumi.Input[str]] = field(default_factory=list)
    """Private CIDRs holding Redis and PostgreSQL: the gateway's NetworkPolicy egress targets."""
    redis_port: int = 6379
    """Redis's TLS port: 6379 ElastiCache, 10000 Azure Managed Redis, 6378 Memorystore."""
    load_balancer_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Annotations of the gateway's public LoadBalancer Service (Envoy Gateway creates it)."""
    channel_load_balancer_annotations: dict[str, pulumi.Input[str]] | None = None
    """Annotations of the governance channel's LoadBalancer Service, when not those of the
    public one (AKS: its own static public IP; the public one's is taken)."""
    edge_prerequisites: list[pulumi.Resource] = field(default_factory=list)
    """What must run before that load balancer is provisioned (EKS: the AWS Load Balancer Controller)."""
    redis_ca_cert: pulumi.Output[str] | None = None
    egress_ips: list[pulumi.Output[str]] = field(default_factory=list)
    """The static public addresses the cluster's pods reach the internet from (its NAT):
    what the other clouds' governance channel admits from this cloud (``loadBalancerSourceRanges``)."""
    owner_secret: pulumi.Output[str] | None = None
    """Where the server admin's ``{"username", "password"}`` lives (a Secrets Manager ARN,
    a Key Vault secret URI, a Secret Manager version URL): the migration Job reads it at run
    time (``AIGW_MIGRATION_SECRET``) to migrate and create the app role."""
    api_services: list[pulumi.Resource] = field(default_factory=list)
    """The resources enabling the cloud APIs (GCP ``projects.Service``): what the resources
    built beside the footprint (identity, registry) wait for before calling those APIs."""
