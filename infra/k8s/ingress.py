"""The cluster's public HTTPS entry: ingress-nginx, cert-manager and an ACME issuer.

Why these: both run unchanged on EKS, AKS and GKE, so each cluster's entry
point is the same object graph and only the load balancer annotations and the
DNS-01 solver's identity differ per cloud. The cloud-native alternatives (AWS
Load Balancer Controller, Application Gateway for Containers, GKE Ingress) each
have their own canary and certificate model; that would be three designs.

* **ingress-nginx** (Helm chart, pinned) is the only ``LoadBalancer`` Service
  in the cluster: the chart's own Service is disabled and the component
  creates it as a typed ``Service`` (so its per-cloud annotations are reviewed
  here and its address is an output). Its ``canary-weight`` annotations give
  the gateway's canary and blue-green switching. Note: the Kubernetes project
  retired ingress-nginx in March 2026 (no further security fixes); the
  replacement is a Gateway API implementation with weighted ``HTTPRoute``
  backends, which maps one-to-one onto :class:`~infra.k8s.decisions.CanaryPlan`.
* **cert-manager** (Helm chart, pinned, CRDs installed and kept by the chart)
  obtains the certificate from an ACME directory with **DNS-01**: the global
  hostname resolves to whichever cluster is nearest, so an HTTP-01 challenge
  could be answered by another cluster; DNS-01 only needs write access to the
  zone. Each cluster proves control of the same names independently.

DNS-01 solvers (one per zone host, chosen by the cloud wiring):

* :class:`Route53Solver` (the portable default): the global zone is in Route
  53, and cert-manager assumes an IAM role with a projected ServiceAccount
  token (``AssumeRoleWithWebIdentity``). That works from EKS, AKS and GKE alike
  once each cluster's OIDC issuer is registered as an IAM OIDC provider, and
  needs no static AWS key in any cluster.
* :class:`AzureDnsSolver` / :class:`CloudDnsSolver`: when a cloud's names are
  delegated to a zone in that cloud, cert-manager uses the cluster's own
  workload identity (Azure managed identity / GCP service account).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import Environment

INGRESS_NGINX_CHART_VERSION = "4.14.3"
"""ingress-nginx chart (controller v1.14.3), the last line with security fixes."""
INGRESS_NGINX_REPOSITORY = "https://kubernetes.github.io/ingress-nginx"
CERT_MANAGER_CHART_VERSION = "v1.19.1"
CERT_MANAGER_REPOSITORY = "https://charts.jetstack.io"

INGRESS_WEBHOOK_PORT = 8443
"""The ingress controller's admission webhook port (chart value ``controller.admissionWebhooks.port``).

The API server calls it on the pod directly, so a private GKE control plane
needs a firewall rule to it (GKE opens only 443 and 10250 to the nodes); the
GCP footprint opens exactly :data:`CONTROL_PLANE_WEBHOOK_PORTS`. The edge's
next implementation changes this value and the firewall follows."""
CONTROL_PLANE_WEBHOOK_PORTS = (INGRESS_WEBHOOK_PORT,)
"""Every admission webhook port the control plane must reach on the nodes, besides 443 and
10250 (cert-manager's webhook listens on 10250, which GKE already allows)."""

INGRESS_NAMESPACE = "ingress-nginx"
"""The ingress controller's namespace: the gateway's NetworkPolicy admits traffic only from it."""
INGRESS_CLASS = "nginx"
CERT_MANAGER_NAMESPACE = "cert-manager"
LOAD_BALANCER_SERVICE = "ingress-nginx-lb"
ISSUER_NAME = "ai-gateway-acme"
"""The ClusterIssuer every gateway Certificate on the cluster names."""

_CONTROLLER_LABELS = {
    "app.kubernetes.io/name": "ingress-nginx",
    "app.kubernetes.io/instance": "ingress-nginx",
    "app.kubernetes.io/component": "controller",
}
_ROUTE53_SERVICE_ACCOUNT = "cert-manager-route53"
ROUTE53_SOLVER_SUBJECT = (
    f"system:serviceaccount:{CERT_MANAGER_NAMESPACE}:{_ROUTE53_SERVICE_ACCOUNT}"
)
"""The OIDC subject the Route 53 role must trust (audience ``sts.amazonaws.com``)."""


# ------------------------------------------------------------------ solvers


@dataclass
class Route53Solver:
    """DNS-01 through Route 53, with a role assumed by a projected ServiceAccount token.

    ``role_arn`` must trust the cluster's OIDC issuer for
    ``system:serviceaccount:cert-manager:cert-manager-route53`` (audience
    ``sts.amazonaws.com``) and allow ``route53:GetChange`` and TXT-only
    ``route53:ChangeResourceRecordSets``/``ListResourceRecordSets`` on the zone.
    """

    region: str
    hosted_zone_id: pulumi.Input[str]
    role_arn: pulumi.Input[str]

    def solver(self) -> dict[str, Any]:
        """The ``dns01`` block of the ClusterIssuer."""
        return {
            "route53": {
                "region": self.region,
                "hostedZoneID": self.hosted_zone_id,
                "role": self.role_arn,
                "auth": {"kubernetes": {"serviceAccountRef": {"name": _ROUTE53_SERVICE_ACCOUNT}}},
            }
        }

    def cert_manager_values(self) -> dict[str, Any]:
        """Extra cert-manager chart values (none: the token comes from its own SA)."""
        return {}


@dataclass
class AzureDnsSolver:
    """DNS-01 through an Azure DNS zone, with the managed identity ``client_id`` (workload identity)."""

    subscription_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    hosted_zone_name: pulumi.Input[str]
    client_id: pulumi.Input[str]

    def solver(self) -> dict[str, Any]:
        """The ``dns01`` block of the ClusterIssuer."""
        return {
            "azureDNS": {
                "subscriptionID": self.subscription_id,
                "resourceGroupName": self.resource_group_name,
                "hostedZoneName": self.hosted_zone_name,
                "environment": "AzurePublicCloud",
                "managedIdentity": {"clientID": self.client_id},
            }
        }

    def cert_manager_values(self) -> dict[str, Any]:
        """cert-manager's SA and pods opt in to Azure workload identity."""
        return {
            "podLabels": {"azure.workload.identity/use": "true"},
            "serviceAccount": {"labels": {"azure.workload.identity/use": "true"}},
        }


@dataclass
class CloudDnsSolver:
    """DNS-01 through a Cloud DNS zone, as the GCP service account bound to cert-manager's SA."""

    project: str
    service_account_email: pulumi.Input[str]

    def solver(self) -> dict[str, Any]:
        """The ``dns01`` block of the ClusterIssuer."""
        return {"cloudDNS": {"project": self.project}}

    def cert_manager_values(self) -> dict[str, Any]:
        """cert-manager's SA is bound to the GCP service account (GKE Workload Identity)."""
        return {
            "serviceAccount": {
                "annotations": {"iam.gke.io/gcp-service-account": self.service_account_email}
            }
        }


Dns01Solver = Route53Solver | AzureDnsSolver | CloudDnsSolver


@dataclass
class AcmeArgs:
    """Where certificates come from: the ACME directory, its contact and the DNS-01 solver."""

    solver: Dns01Solver
    server: str = "https://acme-v02.api.letsencrypt.org/directory"
    email: str | None = None


# ------------------------------------------------------------------ values


def ingress_nginx_values(
    environment: Environment, load_balancer_service: str = LOAD_BALANCER_SERVICE
) -> dict[str, Any]:
    """Hardened ingress-nginx chart values (Helm values are free-form: no typed Args exist).

    Snippet annotations off (the IngressNightmare class of bugs), no server
    tokens, TLS 1.2+ with HSTS, the admission webhook and the chart's
    NetworkPolicy on, the chart's Service off (ours is the LoadBalancer), two
    replicas spread across zones outside dev.
    """
    replicas = 1 if environment == Environment.DEV else 2
    return {
        "fullnameOverride": "ingress-nginx",
        "controller": {
            "replicaCount": replicas,
            "minAvailable": 1,
            "ingressClass": INGRESS_CLASS,
            "ingressClassResource": {"name": INGRESS_CLASS, "enabled": True, "default": False},
            "watchIngressWithoutClass": False,
            "allowSnippetAnnotations": False,
            "config": {
                "allow-snippet-annotations": "false",
                "server-tokens": "false",
                "ssl-protocols": "TLSv1.2 TLSv1.3",
                "hsts": "true",
                "hsts-max-age": "31536000",
                "use-forwarded-headers": "false",
                "ssl-redirect": "true",
            },
            "service": {"enabled": False},
            "publishService": {
                "enabled": True,
                "pathOverride": f"{INGRESS_NAMESPACE}/{load_balancer_service}",
            },
            "admissionWebhooks": {"enabled": True, "port": INGRESS_WEBHOOK_PORT},
            "networkPolicy": {"enabled": True},
            "metrics": {"enabled": True},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            "image": {
                "runAsNonRoot": True,
                "runAsUser": 101,
                "allowPrivilegeEscalation": False,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": dict(_CONTROLLER_LABELS)},
                }
            ],
        },
        "defaultBackend": {"enabled": False},
    }


def cert_manager_values(environment: Environment, solver: Dns01Solver) -> dict[str, Any]:
    """cert-manager chart values: CRDs installed and kept, HA outside dev, public DNS for checks.

    The DNS-01 self-check asks public resolvers only, so a private or
    split-horizon zone inside the cloud cannot make it wait forever.
    """
    ha = environment != Environment.DEV
    values: dict[str, Any] = {
        "crds": {"enabled": True, "keep": True},
        "replicaCount": 2 if ha else 1,
        "podDisruptionBudget": {"enabled": ha, "minAvailable": 1},
        "webhook": {"replicaCount": 2 if ha else 1},
        "global": {"leaderElection": {"namespace": CERT_MANAGER_NAMESPACE}},
        "prometheus": {"enabled": True},
        "dns01RecursiveNameserversOnly": True,
        "dns01RecursiveNameservers": "1.1.1.1:53,8.8.8.8:53",
        "enableCertificateOwnerRef": True,
    }
    for key, extra in solver.cert_manager_values().items():
        values[key] = {**values.get(key, {}), **extra}
    return values


def namespace_labels(enforce: str, warn: str | None = None) -> dict[str, str]:
    """Pod Security Standard labels: enforce one level, audit and warn at ``warn`` (or the same)."""
    levels = {"privileged", "baseline", "restricted"}
    for level in (enforce, warn or enforce):
        if level not in levels:
            raise ValueError(
                f"Pod Security level {level!r} does not exist; use one of {sorted(levels)}"
            )
    return {
        "pod-security.kubernetes.io/enforce": enforce,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": warn or enforce,
        "pod-security.kubernetes.io/warn": warn or enforce,
    }


# --------------------------------------------------------------- component


@dataclass
class ClusterIngressArgs:
    """Inputs of :class:`ClusterIngress`.

    ``load_balancer_annotations`` are the cloud's Service annotations for the
    public load balancer (for example an NLB on AWS); ``acme`` says how
    certificates are issued.
    """

    environment: Environment
    acme: AcmeArgs
    load_balancer_annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class ClusterIngress(pulumi.ComponentResource):
    """ingress-nginx, cert-manager, the public LoadBalancer Service and the ACME ClusterIssuer.

    Cluster-wide: one per cluster. ``endpoint`` is the load balancer's
    hostname (AWS) or IP address (Azure, GCP), what the global DNS points at.
    """

    endpoint: pulumi.Output[str]
    issuer_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClusterIngressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:k8s:ClusterIngress", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # The controller binds 80/443 inside the pod (NET_BIND_SERVICE), which
        # `baseline` allows; violations of `restricted` are still audited and warned.
        ingress_ns = k8s.core.v1.Namespace(
            f"{name}-ingress-nginx",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=INGRESS_NAMESPACE, labels=namespace_labels("baseline", "restricted")
            ),
            opts=child,
        )
        self.ingress_nginx = k8s.helm.v3.Release(
            f"{name}-ingress-nginx",
            k8s.helm.v3.ReleaseArgs(
                name="ingress-nginx",
                chart="ingress-nginx",
                version=INGRESS_NGINX_CHART_VERSION,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=INGRESS_NGINX_REPOSITORY),
                namespace=ingress_ns.metadata.name,
                values=ingress_nginx_values(args.environment),
                atomic=True,
                cleanup_on_fail=True,
                max_history=5,
                timeout=600,
            ),
            opts=child,
        )
        self.load_balancer = k8s.core.v1.Service(
            f"{name}-ingress-lb",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=LOAD_BALANCER_SERVICE,
                namespace=ingress_ns.metadata.name,
                annotations=dict(args.load_balancer_annotations),
                labels=dict(_CONTROLLER_LABELS),
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="LoadBalancer",
                # Local keeps the client's address for the gateway's per-client limits.
                external_traffic_policy="Local",
                selector=dict(_CONTROLLER_LABELS),
                # HTTPS only: with no port 80 a client configured with http:// fails
                # to connect instead of sending its API key in clear text first
                # (a redirect would come after the key crossed the internet).
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="https", port=443, target_port="https", protocol="TCP"
                    ),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ingress_nginx]),
        )

        cert_manager_ns = k8s.core.v1.Namespace(
            f"{name}-cert-manager",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CERT_MANAGER_NAMESPACE, labels=namespace_labels("restricted")
            ),
            opts=child,
        )
        self.cert_manager = k8s.helm.v3.Release(
            f"{name}-cert-manager",
            k8s.helm.v3.ReleaseArgs(
                name="cert-manager",
                chart="cert-manager",
                version=CERT_MANAGER_CHART_VERSION,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CERT_MANAGER_REPOSITORY),
                namespace=cert_manager_ns.metadata.name,
                values=cert_manager_values(args.environment, args.acme.solver),
                atomic=True,
                cleanup_on_fail=True,
                max_history=5,
                timeout=600,
            ),
            opts=child,
        )
        issuer_deps: list[pulumi.Resource] = [self.cert_manager]
        if isinstance(args.acme.solver, Route53Solver):
            issuer_deps.append(self._route53_identity(name, cert_manager_ns))

        acme: dict[str, Any] = {
            "server": args.acme.server,
            "privateKeySecretRef": {"name": "ai-gateway-acme-account"},
            "solvers": [{"dns01": args.acme.solver.solver()}],
        }
        if args.acme.email:
            acme["email"] = args.acme.email
        # A CRD: pulumi_kubernetes has no typed Args for it, so the spec is a mapping.
        issuer = k8s.apiextensions.CustomResource(
            f"{name}-acme-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ISSUER_NAME),
            spec={"acme": acme},
            opts=pulumi.ResourceOptions(parent=self, depends_on=issuer_deps),
        )
        self.issuer = issuer
        self.issuer_name = pulumi.Output.from_input(ISSUER_NAME)
        self.endpoint = self.load_balancer.status.apply(_load_balancer_address)
        self.register_outputs({"endpoint": self.endpoint, "issuerName": self.issuer_name})

    def _route53_identity(self, name: str, namespace: k8s.core.v1.Namespace) -> pulumi.Resource:
        """The ServiceAccount whose token cert-manager exchanges for the Route 53 role."""
        child = pulumi.ResourceOptions(parent=self)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-route53-solver",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=_ROUTE53_SERVICE_ACCOUNT, namespace=namespace.metadata.name
            ),
            automount_service_account_token=False,
            opts=child,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-route53-token",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="cert-manager-route53-token", namespace=namespace.metadata.name
            ),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""],
                    resources=["serviceaccounts/token"],
                    resource_names=[_ROUTE53_SERVICE_ACCOUNT],
                    verbs=["create"],
                )
            ],
            opts=child,
        )
        return k8s.rbac.v1.RoleBinding(
            f"{name}-route53-token",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="cert-manager-route53-token", namespace=namespace.metadata.name
            ),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount",
                    name="cert-manager",
                    namespace=namespace.metadata.name,
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[account]),
        )


def _load_balancer_address(status: Any) -> str:
    """The first address the cloud gave the LoadBalancer Service (hostname or IP)."""
    ingress = getattr(getattr(status, "load_balancer", None), "ingress", None) or []
    if not ingress:
        return ""
    first = ingress[0]
    return getattr(first, "hostname", None) or getattr(first, "ip", None) or ""
