"""The cluster's public HTTPS entry: Envoy Gateway (Gateway API), cert-manager, an ACME issuer.

The Kubernetes project retired ingress-nginx in March 2026 (no releases, no
security fixes), so every cluster's entry point is a **Gateway API**
implementation: the gateway's ``Gateway`` and ``HTTPRoute`` objects
(:mod:`infra.k8s.gateway`) are the same portable API on EKS, AKS and GKE, and
the canary split is weighted ``backendRefs``.

Why **Envoy Gateway** on all three clusters, not each cloud's managed controller:

* **Support status.** A CNCF Envoy project with a release every quarter and
  security releases for the two newest minors; it passes the Gateway API
  conformance suite for ``Gateway`` and ``HTTPRoute`` (standard channel). The
  pinned version is :data:`ENVOY_GATEWAY_VERSION`.
* **One design.** The AWS Load Balancer Controller's Gateway support, the GKE
  Gateway controller and Application Gateway for Containers each have their own
  certificate model, limits, health checks and canary semantics (and AGC needs
  its own subnet and identity); three designs would mean three sets of
  failure modes behind one global name. With Envoy Gateway, the limits the edge
  enforces (request body, timeouts, TLS 1.2+) are the same objects everywhere.
* **How it gets its load balancer.** Envoy Gateway creates the proxy
  Deployment and a ``LoadBalancer`` Service for each ``Gateway``; the cloud's
  load-balancer controller provisions it: on EKS the **AWS Load Balancer
  Controller** (an NLB with IP targets; :mod:`infra.aws.load_balancer_controller`,
  with its own IRSA role; never the legacy in-tree controller), on AKS the
  cloud provider's Standard Load Balancer, on GKE a backend-service based
  passthrough Network Load Balancer. The Service's annotations come from the
  cloud's footprint as the ``Gateway``'s ``spec.infrastructure.annotations``.
  TLS ends at Envoy with the cert-manager certificate; the clients' addresses
  are preserved (``externalTrafficPolicy: Local``, or NLB client-IP
  preservation) for the gateway's per-client limits.
* **Admission and controller traffic through private clusters' firewalls.**
  The data plane (Envoy) talks to the controller over xDS inside the cluster
  (pod to pod, port 18000). The API server calls two webhooks: Envoy Gateway's
  topology injector on **9443** and cert-manager's webhook on **10250**
  (:data:`CONTROL_PLANE_WEBHOOK_PORTS`). GKE's private control plane reaches
  nodes only on 443 and 10250 unless a firewall rule opens more, so the GKE
  network opens its master CIDR to 9443 (:mod:`infra.gcp.network`); cert-manager
  listens on 10250 for that reason. EKS control-plane ENIs share the cluster
  security group with the nodes (all ports), AKS reaches webhooks through its
  konnectivity tunnel, so neither needs a rule. The Gateway API CRDs have CEL
  validation, so no validating webhook is needed for them.
* **Cost.** The software is free; per cluster it runs two small controller
  replicas and two or more Envoy replicas (a few hundred millicores at rest)
  and one cloud layer-4 load balancer (an NLB, an Azure Standard LB rule set,
  a GCP forwarding rule), billed per hour and per GB processed: the same
  load balancer the old ingress used. The managed layer-7 alternatives (ALB,
  Application Gateway for Containers, GKE's external Application Load
  Balancer) add a per-capacity-unit charge on top.

**cert-manager** obtains the certificate from an ACME directory with
**DNS-01**: the global hostname resolves to whichever cluster is nearest, so an
HTTP-01 challenge could be answered by another cluster; DNS-01 only needs
write access to the zone. Each cluster proves control of the same names
independently. The certificate is a ``Secret`` the ``Gateway``'s HTTPS listener
references.

DNS-01 solvers (one per zone host, chosen by the global DNS layer):

* :class:`Route53Solver`: the zone is in Route 53 and cert-manager assumes an
  IAM role with a projected ServiceAccount token (``AssumeRoleWithWebIdentity``):
  from EKS, AKS and GKE alike once each cluster's OIDC issuer is registered as
  an IAM OIDC provider, with no static AWS key in any cluster.
* :class:`AzureDnsSolver`: the zone is in Azure DNS; cert-manager uses a managed
  identity through Microsoft Entra workload identity (a federated credential
  trusting the cluster's issuer).
* :class:`CloudDnsSolver`: the zone is in Cloud DNS; cert-manager runs as a GCP
  service account through GKE Workload Identity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import Environment

ENVOY_GATEWAY_VERSION = "v1.9.0"
"""Envoy Gateway release: the controller chart and the CRD chart share its version."""
ENVOY_GATEWAY_CHART = "oci://docker.io/envoyproxy/gateway-helm"
GATEWAY_CRDS_CHART = "oci://docker.io/envoyproxy/gateway-crds-helm"
CERT_MANAGER_CHART_VERSION = "v1.19.1"
CERT_MANAGER_REPOSITORY = "https://charts.jetstack.io"

EDGE_NAMESPACE = "envoy-gateway-system"
"""Envoy Gateway's namespace: its controller and every Envoy proxy pod run here."""
CERT_MANAGER_NAMESPACE = "cert-manager"
GATEWAY_CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
GATEWAY_CLASS = "ai-gateway"
"""The cluster's GatewayClass: Envoy Gateway, with the proxy settings of :data:`PROXY_CONFIG`."""
PROXY_CONFIG = "ai-gateway-proxy"
"""The ``EnvoyProxy`` holding the proxy fleet's replicas, disruption budget and Service type."""
PROXY_POD_LABELS = {
    "app.kubernetes.io/name": "envoy",
    "app.kubernetes.io/component": "proxy",
    "app.kubernetes.io/managed-by": "envoy-gateway",
}
"""Labels Envoy Gateway puts on every proxy pod: the gateway's NetworkPolicy admits these only."""
TOPOLOGY_INJECTOR_PORT = 9443
CERT_MANAGER_WEBHOOK_PORT = 10250
CONTROL_PLANE_WEBHOOK_PORTS = (TOPOLOGY_INJECTOR_PORT, CERT_MANAGER_WEBHOOK_PORT)
"""Ports the API server must reach on the nodes: Envoy Gateway's topology injector, cert-manager's webhook."""
ISSUER_NAME = "ai-gateway-acme"
"""The ClusterIssuer every gateway Certificate on the cluster names."""

_ROUTE53_SERVICE_ACCOUNT = "cert-manager-route53"
ROUTE53_SOLVER_SUBJECT = (
    f"system:serviceaccount:{CERT_MANAGER_NAMESPACE}:{_ROUTE53_SERVICE_ACCOUNT}"
)
"""The OIDC subject the Route 53 role must trust (audience ``sts.amazonaws.com``)."""
CERT_MANAGER_SUBJECT = f"system:serviceaccount:{CERT_MANAGER_NAMESPACE}:cert-manager"
AZURE_TOKEN_AUDIENCE = "api://AzureADTokenExchange"
GCP_FEDERATION_SECRET = "cert-manager-gcp-federation"
"""Secret (namespace cert-manager) holding the ``external_account`` credential file."""
GCP_FEDERATION_KEY = "credentials.json"
GCP_TOKEN_DIR = "/var/run/secrets/gcp"
"""Where cert-manager outside GKE finds its projected token for Google's STS (``token``)."""
"""The audience Microsoft Entra ID expects on a federated workload token."""
"""cert-manager's own ServiceAccount: the subject Azure and GCP identities trust for DNS-01."""


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
    """DNS-01 through an Azure DNS zone, as a managed identity (Microsoft Entra workload identity).

    On AKS the cluster's workload-identity webhook gives cert-manager the
    federated token (pods opt in by label). Any other cluster (EKS, GKE) has
    no such webhook: ``tenant_id`` set means cert-manager gets what the webhook
    would inject, a projected ServiceAccount token for the audience
    ``api://AzureADTokenExchange`` and the ``AZURE_*`` variables the Azure SDK
    reads, and the managed identity trusts that cluster's issuer.
    """

    subscription_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    hosted_zone_name: pulumi.Input[str]
    client_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str] | None = None
    """Set for a cluster outside Azure: the token and variables are mounted explicitly."""

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
        """Workload identity for cert-manager: the AKS webhook's opt-in, or its injection by hand."""
        if self.tenant_id is None:
            return {
                "podLabels": {"azure.workload.identity/use": "true"},
                "serviceAccount": {"labels": {"azure.workload.identity/use": "true"}},
            }
        token_dir = "/var/run/secrets/azure/tokens"
        return {
            "extraEnv": [
                {"name": "AZURE_CLIENT_ID", "value": self.client_id},
                {"name": "AZURE_TENANT_ID", "value": self.tenant_id},
                {
                    "name": "AZURE_FEDERATED_TOKEN_FILE",
                    "value": f"{token_dir}/azure-identity-token",
                },
                {"name": "AZURE_AUTHORITY_HOST", "value": "https://login.microsoftonline.com/"},
            ],
            "volumes": [
                {
                    "name": "azure-identity-token",
                    "projected": {
                        "sources": [
                            {
                                "serviceAccountToken": {
                                    "audience": AZURE_TOKEN_AUDIENCE,
                                    "expirationSeconds": 3600,
                                    "path": "azure-identity-token",
                                }
                            }
                        ]
                    },
                }
            ],
            "volumeMounts": [
                {"name": "azure-identity-token", "mountPath": token_dir, "readOnly": True}
            ],
        }


@dataclass
class CloudDnsSolver:
    """DNS-01 through a Cloud DNS zone, as a GCP service account.

    On GKE cert-manager's ServiceAccount is bound to the service account
    through GKE Workload Identity (an annotation). Any other cluster uses
    Workload Identity Federation: ``credential_config`` is the
    ``external_account`` file cert-manager reads from a Secret, exchanging a
    projected ServiceAccount token (audience ``token_audience``) at Google's
    STS for the service account. ``hosted_zone_name`` names the managed zone,
    so cert-manager needs no permission to list the project's zones.
    """

    project: str
    service_account_email: pulumi.Input[str]
    hosted_zone_name: pulumi.Input[str] | None = None
    credential_config: pulumi.Input[str] | None = None
    token_audience: pulumi.Input[str] | None = None

    def solver(self) -> dict[str, Any]:
        """The ``dns01`` block of the ClusterIssuer."""
        cloud_dns: dict[str, Any] = {"project": self.project}
        if self.hosted_zone_name is not None:
            cloud_dns["hostedZoneName"] = self.hosted_zone_name
        if self.credential_config is not None:
            cloud_dns["serviceAccountSecretRef"] = {
                "name": GCP_FEDERATION_SECRET,
                "key": GCP_FEDERATION_KEY,
            }
        return {"cloudDNS": cloud_dns}

    def cert_manager_values(self) -> dict[str, Any]:
        """GKE Workload Identity's annotation, or the federated token file outside GKE."""
        if self.credential_config is None:
            return {
                "serviceAccount": {
                    "annotations": {"iam.gke.io/gcp-service-account": self.service_account_email}
                }
            }
        return {
            "volumes": [
                {
                    "name": "gcp-federated-token",
                    "projected": {
                        "sources": [
                            {
                                "serviceAccountToken": {
                                    "audience": self.token_audience,
                                    "expirationSeconds": 3600,
                                    "path": "token",
                                }
                            }
                        ]
                    },
                }
            ],
            "volumeMounts": [
                {"name": "gcp-federated-token", "mountPath": GCP_TOKEN_DIR, "readOnly": True}
            ],
        }


Dns01Solver = Route53Solver | AzureDnsSolver | CloudDnsSolver


@dataclass
class AcmeArgs:
    """Where certificates come from: the ACME directory, its contact and the DNS-01 solver."""

    solver: Dns01Solver
    server: str = "https://acme-v02.api.letsencrypt.org/directory"
    email: str | None = None


# ------------------------------------------------------------------ values


def pinned_release(
    chart: str,
    version: str,
    namespace: pulumi.Input[str],
    values: pulumi.Input[Mapping[str, Any]],
    *,
    name: str,
    repository: str | None = None,
    skip_crds: bool = False,
) -> k8s.helm.v3.ReleaseArgs:
    """A Helm release at a pinned version that rolls itself back when an upgrade fails.

    ``atomic`` with ``cleanup_on_fail``: a failed install or upgrade leaves the
    previous release running, never half of a new one; five revisions kept;
    ten minutes for pods to become ready.
    """
    return k8s.helm.v3.ReleaseArgs(
        name=name,
        chart=chart,
        version=version,
        repository_opts=(
            k8s.helm.v3.RepositoryOptsArgs(repo=repository) if repository is not None else None
        ),
        namespace=namespace,
        values=values,
        skip_crds=skip_crds,
        atomic=True,
        cleanup_on_fail=True,
        max_history=5,
        timeout=600,
    )


def _zone_spread(environment: Environment, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Spread replicas across zones (best effort in dev, where one replica runs)."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway"
            if environment == Environment.DEV
            else "DoNotSchedule",
            "labelSelector": {"matchLabels": dict(labels)},
        }
    ]


def envoy_gateway_values(environment: Environment) -> dict[str, Any]:
    """Envoy Gateway controller chart values (Helm values are free-form: no typed Args exist).

    The CRDs come from the CRD chart, applied by Pulumi (Helm never upgrades
    CRDs it installed from a chart's ``crds/`` folder); two replicas with a
    disruption budget outside dev (leader election picks one); the topology
    injector stays on (zone-aware routing to the gateway's pods) and listens on
    :data:`TOPOLOGY_INJECTOR_PORT`, which private control planes must reach.
    """
    ha = environment != Environment.DEV
    return {
        "crds": {"enabled": False},
        "deployment": {
            "replicas": 2 if ha else 1,
            "pod": {
                "topologySpreadConstraints": _zone_spread(
                    environment, {"app.kubernetes.io/name": "gateway-helm"}
                )
            },
        },
        "podDisruptionBudget": {"minAvailable": 1 if ha else 0},
        "topologyInjector": {"enabled": True},
        "config": {
            "envoyGateway": {
                "gateway": {"controllerName": GATEWAY_CONTROLLER_NAME},
                "provider": {"type": "Kubernetes"},
                "logging": {"level": {"default": "info"}},
            }
        },
    }


def gateway_crds_values() -> dict[str, Any]:
    """The CRD chart: Gateway API (standard channel) and Envoy Gateway's own CRDs.

    Standard channel only: the edge uses ``GatewayClass``, ``Gateway``,
    ``HTTPRoute`` and ``ReferenceGrant``, all GA; experimental kinds would put
    alpha APIs on production clusters.
    """
    return {
        "crds": {
            "gatewayAPI": {"enabled": True, "channel": "standard"},
            "envoyGateway": {"enabled": True},
        }
    }


def envoy_proxy_spec(environment: Environment) -> dict[str, Any]:
    """The ``EnvoyProxy`` spec: the proxy fleet every Gateway of the class gets.

    A ``LoadBalancer`` Service with ``externalTrafficPolicy: Local`` (client
    addresses reach the gateway's per-client limits; the cloud's health check
    skips nodes without a proxy); two to ten replicas under an autoscaler and a
    disruption budget outside dev; zone spread; requests and a memory limit on
    Envoy. Per-cloud load-balancer annotations are the Gateway's, not here.
    """
    ha = environment != Environment.DEV
    kubernetes: dict[str, Any] = {
        "envoyDeployment": {
            "pod": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "topologySpreadConstraints": _zone_spread(environment, PROXY_POD_LABELS),
            },
            "container": {
                "resources": {
                    "requests": {"cpu": "200m", "memory": "256Mi"},
                    "limits": {"cpu": "2", "memory": "1Gi"},
                }
            },
        },
        "envoyService": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
        },
    }
    if ha:
        kubernetes["envoyHpa"] = {
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        }
        kubernetes["envoyPDB"] = {"minAvailable": 1}
    else:
        kubernetes["envoyDeployment"]["replicas"] = 1
    return {
        "provider": {"type": "Kubernetes", "kubernetes": kubernetes},
        # Streams of an LLM response run for minutes: a draining proxy waits for them.
        "shutdown": {"drainTimeout": "600s", "minDrainDuration": "10s"},
    }


def certificate_spec(
    secret_name: str, dns_names: list[str], issuer_name: pulumi.Input[str]
) -> dict[str, Any]:
    """A cert-manager ``Certificate`` spec from the cluster's ACME issuer: ECDSA P-256, the key
    rotated on every renewal, for serving TLS at Envoy."""
    return {
        "secretName": secret_name,
        "dnsNames": dns_names,
        "issuerRef": {"name": issuer_name, "kind": "ClusterIssuer", "group": "cert-manager.io"},
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "usages": ["server auth"],
    }


def cert_manager_values(environment: Environment, solver: Dns01Solver) -> dict[str, Any]:
    """cert-manager chart values: CRDs installed and kept, HA outside dev, public DNS for checks.

    The DNS-01 self-check asks public resolvers only, so a private or
    split-horizon zone inside the cloud cannot make it wait forever. The
    webhook listens on :data:`CERT_MANAGER_WEBHOOK_PORT` (10250), which GKE's
    private control plane may reach without an extra firewall rule.
    """
    ha = environment != Environment.DEV
    values: dict[str, Any] = {
        "crds": {"enabled": True, "keep": True},
        "replicaCount": 2 if ha else 1,
        "podDisruptionBudget": {"enabled": ha, "minAvailable": 1},
        "webhook": {"replicaCount": 2 if ha else 1, "securePort": CERT_MANAGER_WEBHOOK_PORT},
        "global": {"leaderElection": {"namespace": CERT_MANAGER_NAMESPACE}},
        "prometheus": {"enabled": True},
        "dns01RecursiveNameserversOnly": True,
        "dns01RecursiveNameservers": "1.1.1.1:53,8.8.8.8:53",
        "enableCertificateOwnerRef": True,
    }
    for key, extra in solver.cert_manager_values().items():
        values[key] = {**values.get(key, {}), **extra} if isinstance(extra, dict) else extra
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
class ClusterEdgeArgs:
    """Inputs of :class:`ClusterEdge`.

    ``acme`` says how certificates are issued; ``prerequisites`` are what must
    run before a Gateway's load balancer can be provisioned (on EKS the AWS Load
    Balancer Controller, whose webhook admits every new LoadBalancer Service).
    """

    environment: Environment
    acme: AcmeArgs
    prerequisites: Sequence[pulumi.Resource] = field(default_factory=list)


class ClusterEdge(pulumi.ComponentResource):
    """Envoy Gateway, its CRDs, GatewayClass and proxy settings, cert-manager and the ACME issuer.

    Cluster-wide: one per cluster. The per-application objects (the
    ``Gateway``, its routes and certificate) belong to
    :class:`~infra.k8s.gateway.GatewayDeployment`, which depends on ``ready``.
    """

    gateway_class_name: pulumi.Output[str]
    issuer_name: pulumi.Output[str]
    ready: list[pulumi.Resource]
    """What a Gateway of :data:`GATEWAY_CLASS` must wait for."""

    def __init__(
        self, name: str, args: ClusterEdgeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:k8s:ClusterEdge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Envoy Gateway, its certgen Job and every proxy pod meet `restricted`.
        edge_ns = k8s.core.v1.Namespace(
            f"{name}-envoy-gateway",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=EDGE_NAMESPACE, labels=namespace_labels("restricted")
            ),
            opts=child,
        )
        # `helm template | kubectl apply --server-side`, as Envoy Gateway documents for
        # its CRDs: the objects become Pulumi resources, upgraded with the version.
        self.crds = k8s.helm.v4.Chart(
            f"{name}-gateway-crds",
            k8s.helm.v4.ChartArgs(
                chart=GATEWAY_CRDS_CHART,
                version=ENVOY_GATEWAY_VERSION,
                namespace=edge_ns.metadata.name,
                values=gateway_crds_values(),
            ),
            opts=child,
        )
        self.envoy_gateway = k8s.helm.v3.Release(
            f"{name}-envoy-gateway",
            pinned_release(
                ENVOY_GATEWAY_CHART,
                ENVOY_GATEWAY_VERSION,
                edge_ns.metadata.name,
                envoy_gateway_values(args.environment),
                name="envoy-gateway",
                skip_crds=True,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.crds]),
        )
        on_controller = pulumi.ResourceOptions(
            parent=self, depends_on=[self.crds, self.envoy_gateway]
        )
        # CRDs: pulumi_kubernetes has no typed Args for them, so the specs are mappings.
        proxy = k8s.apiextensions.CustomResource(
            f"{name}-envoy-proxy",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="EnvoyProxy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PROXY_CONFIG, namespace=edge_ns.metadata.name),
            spec=envoy_proxy_spec(args.environment),
            opts=on_controller,
        )
        gateway_class = k8s.apiextensions.CustomResource(
            f"{name}-gateway-class",
            api_version="gateway.networking.k8s.io/v1",
            kind="GatewayClass",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GATEWAY_CLASS),
            spec={
                "controllerName": GATEWAY_CONTROLLER_NAME,
                "description": "The AI gateway's public entry: Envoy Gateway.",
                "parametersRef": {
                    "group": "gateway.envoyproxy.io",
                    "kind": "EnvoyProxy",
                    "name": PROXY_CONFIG,
                    "namespace": EDGE_NAMESPACE,
                },
            },
            # The EnvoyProxy first, so the first proxy fleet gets its settings.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.crds, self.envoy_gateway, proxy]
            ),
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
            pinned_release(
                "cert-manager",
                CERT_MANAGER_CHART_VERSION,
                cert_manager_ns.metadata.name,
                cert_manager_values(args.environment, args.acme.solver),
                name="cert-manager",
                repository=CERT_MANAGER_REPOSITORY,
            ),
            opts=child,
        )
        issuer_deps: list[pulumi.Resource] = [self.cert_manager]
        solver = args.acme.solver
        if isinstance(solver, Route53Solver):
            issuer_deps.append(self._route53_identity(name, cert_manager_ns))
        if isinstance(solver, CloudDnsSolver) and solver.credential_config is not None:
            # Not secret material (no key: it names the token file and the
            # service account), but cert-manager reads it from a Secret.
            issuer_deps.append(
                k8s.core.v1.Secret(
                    f"{name}-gcp-federation",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=GCP_FEDERATION_SECRET, namespace=cert_manager_ns.metadata.name
                    ),
                    type="Opaque",
                    string_data={GCP_FEDERATION_KEY: solver.credential_config},
                    opts=child,
                )
            )

        acme: dict[str, Any] = {
            "server": args.acme.server,
            "privateKeySecretRef": {"name": "ai-gateway-acme-account"},
            "solvers": [{"dns01": args.acme.solver.solver()}],
        }
        if args.acme.email:
            acme["email"] = args.acme.email
        self.issuer = k8s.apiextensions.CustomResource(
            f"{name}-acme-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ISSUER_NAME),
            spec={"acme": acme},
            opts=pulumi.ResourceOptions(parent=self, depends_on=issuer_deps),
        )
        self.proxy = proxy
        self.gateway_class = gateway_class
        self.ready = [self.envoy_gateway, proxy, gateway_class, *args.prerequisites]
        self.issuer_name = pulumi.Output.from_input(ISSUER_NAME)
        self.gateway_class_name = pulumi.Output.from_input(GATEWAY_CLASS)
        self.register_outputs(
            {"gatewayClassName": self.gateway_class_name, "issuerName": self.issuer_name}
        )

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


class ObservedCustomResource(pulumi.CustomResource):
    """A custom resource whose live ``status`` is an output.

    ``k8s.apiextensions.CustomResource`` registers only ``apiVersion``,
    ``kind``, ``metadata`` and ``spec``, so the provider's ``status`` (read
    after the ``pulumi.com/waitFor`` condition holds) never reaches the
    program. Registering ``status`` as an output property exposes it.
    """

    status: pulumi.Output[Any]

    def __init__(
        self,
        resource_name: str,
        *,
        api_version: str,
        kind: str,
        metadata: k8s.meta.v1.ObjectMetaArgs,
        spec: Mapping[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            f"kubernetes:{api_version}:{kind}",
            resource_name,
            {
                "apiVersion": api_version,
                "kind": kind,
                "metadata": metadata,
                "spec": spec,
                "status": None,
            },
            opts,
        )


def gateway_address(status: Any) -> str:
    """The first address Envoy Gateway published for a Gateway (a hostname on AWS, an IP elsewhere)."""
    addresses = (status or {}).get("addresses") if isinstance(status, Mapping) else None
    if not addresses:
        return ""
    return str(addresses[0].get("value") or "")
