"""What a cloud's identity hands the gateway's workload on that cloud's cluster.

Each cloud's ``GatewayIdentity`` builds a :class:`WorkloadIdentity`; the
Kubernetes track (:mod:`infra.k8s.gateway`) puts it on the ServiceAccount, the
pods and their NetworkPolicy. Neither side imports the other: both import this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi


@dataclass(frozen=True)
class EgressRule:
    """Extra egress the cloud's identity needs (for example GKE's metadata server)."""

    cidrs: tuple[str, ...]
    ports: tuple[int, ...]
    protocol: str = "TCP"


GKE_METADATA_EGRESS = (
    # GKE Dataplane V2 (these clusters) serves the metadata server on 169.254.169.254:80.
    EgressRule(cidrs=("169.254.169.254/32",), ports=(80,)),
    # GKE 1.21.0-gke.1000 and later: the node's metadata server on 169.254.169.252:988
    # (987 for its health endpoint), which pods reach under NetworkPolicy too.
    EgressRule(cidrs=("169.254.169.252/32",), ports=(987, 988)),
)
"""Egress a NetworkPolicy must allow for GKE Workload Identity tokens. Source: "Workload
Identity Federation for GKE", section on network policies (GKE documentation)."""


@dataclass
class WorkloadIdentity:
    """How the cloud binds the gateway's ServiceAccount to a cloud identity.

    Use the constructors: :meth:`aws` (IRSA), :meth:`azure` (Microsoft Entra
    Workload ID) or :meth:`gcp` (GKE Workload Identity). None of them needs the
    Kubernetes API token in the pod: IRSA and Azure inject their own projected
    token, GKE answers through the node's metadata server.
    """

    service_account_annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    extra_egress: Sequence[EgressRule] = ()
    pod_env: Mapping[str, str] = field(default_factory=dict)
    """Variables telling the gateway what to authenticate with the identity (Azure:
    ``AIGW_REDIS_AUTH=entra``, Redis with Entra tokens instead of a key)."""

    @classmethod
    def aws(cls, role_arn: pulumi.Input[str]) -> WorkloadIdentity:
        """IRSA: the EKS pod identity webhook injects a token for ``role_arn``."""
        return cls(service_account_annotations={"eks.amazonaws.com/role-arn": role_arn})

    @classmethod
    def azure(
        cls, client_id: pulumi.Input[str], pod_env: Mapping[str, str] | None = None
    ) -> WorkloadIdentity:
        """Azure workload identity: the SA names the managed identity, pods opt in by label."""
        return cls(
            service_account_annotations={"azure.workload.identity/client-id": client_id},
            pod_labels={"azure.workload.identity/use": "true"},
            pod_env=dict(pod_env or {}),
        )

    @classmethod
    def gcp(cls, service_account_email: pulumi.Input[str]) -> WorkloadIdentity:
        """GKE Workload Identity: the SA names the GCP service account.

        Tokens come from the GKE metadata server, which the NetworkPolicy must
        then allow (:data:`GKE_METADATA_EGRESS`).
        """
        return cls(
            service_account_annotations={"iam.gke.io/gcp-service-account": service_account_email},
            extra_egress=GKE_METADATA_EGRESS,
        )


@dataclass
class MigrationAccess:
    """How the migration Job reaches the database owner without the cluster holding it.

    ``owner_secret`` is the reference ``gateway_app migrate`` reads at run time
    (``AIGW_MIGRATION_SECRET``: a Secrets Manager ARN, a Key Vault secret URI or
    a Secret Manager version URL; see :mod:`gateway_app.credentials.database`);
    ``workload_identity`` binds the Job's own ServiceAccount
    (:data:`infra.k8s.gateway.MIGRATION_SERVICE_ACCOUNT`) to the cloud identity allowed
    to read it.
    """

    owner_secret: pulumi.Input[str]
    workload_identity: WorkloadIdentity
