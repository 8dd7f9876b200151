"""``ai-gateway:k8s:GatewayDeployment``: the gateway on one Kubernetes cluster.

Given a kube provider (through ``opts``), the data stores' connection strings
(secret Outputs) and the image, the component owns, in dependency order:

1. the cluster's edge (:class:`~infra.k8s.edge.ClusterEdge`: Envoy Gateway,
   cert-manager and the ACME issuer);
2. a Namespace enforcing the ``restricted`` Pod Security Standard;
3. the ServiceAccounts: the gateway's and, when the cloud hands over a
   :class:`MigrationAccess`, the migration Job's own (each with its cloud's
   workload-identity annotations; only the Job's identity may read the
   database owner's secret, and the owner's password never enters the cluster);
4. a Secret with every secret the gateway reads (the serving pods connect as
   a role with row access only) and a ConfigMap with its config file (never a
   secret: it is a plain ``str`` by type and checked);
5. NetworkPolicies: deny everything, then admit the Envoy proxies on 8080
   and let the pods reach DNS, Redis, PostgreSQL and HTTPS only;
6. per track (``stable``, and ``canary`` when a canary image is set): the
   schema-migration Job, then the Deployment (which depends on the Job), its
   Service, HorizontalPodAutoscaler and PodDisruptionBudget;
7. the Certificate for the global and per-cloud hostnames, the ``Gateway``
   (an HTTPS listener with that certificate, an HTTP listener that only
   redirects), the HTTPS ``HTTPRoute`` (readiness path, canary header, weighted
   ``backendRefs``) and the Envoy Gateway policies holding the edge's limits
   (request body and TLS version; the timeouts are the route's own).

No resource is created inside an ``apply``: every object exists in preview
too, and only values (names, the checksum) are computed from Outputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from infra.config import (
    OIDC_CLIENT_SECRET,
    PROVIDER_KEYS,
    Cloud,
    Environment,
    StackConfig,
    catalogue,
    provider_key_variable,
)
from infra.contracts.workload import EgressRule, MigrationAccess, WorkloadIdentity
from infra.decisions import k8s as decisions
from infra.decisions.k8s import CanaryPlan, EdgeLimits, Resources, Scaling
from infra.k8s import governance as plane
from infra.k8s.edge import (
    EDGE_NAMESPACE,
    PROXY_POD_LABELS,
    AcmeArgs,
    ClusterEdge,
    ClusterEdgeArgs,
    Dns01Solver,
    ObservedCustomResource,
    certificate_spec,
    gateway_address,
    namespace_labels,
)

PORT = 8080
"""The gateway container's port (its contract)."""
USER_ID = 10001
"""The gateway image's non-root numeric user (its contract)."""
CONFIG_DIR = "/etc/aigw"
CONFIG_PATH = f"{CONFIG_DIR}/config.yaml"
REDIS_CA_DIR = f"{CONFIG_DIR}/redis-ca"
REDIS_CA_KEY = "redis-ca.crt"
MIGRATE_ARGS = ["python", "-m", "gateway_app", "migrate"]
AUDIT_MAINTAIN_ARGS = ["python", "-m", "gateway_app", "audit-maintain"]
AUDIT_MAINTENANCE_SCHEDULE = "17 2 * * *"
"""Daily at 02:17 UTC: the audit partitions of the next 14 days are made ahead (a run that
fails leaves 13 days of margin), yesterday is rolled up for the analytics and the days
past ``governance.audit_retention_days`` are dropped. Off the hour, away from other
clusters' hourly jobs."""

AUDIT_MAINTENANCE_DEADLINE_S = 4 * 3600
"""The run's deadline: it starts no day's roll-up after 2 hours
(``gateway_app.governance.retention.ROLLUP_BUDGET_S``), and one day at 50,000 requests/s
(4.3 billion events) took 1 h 41 min to roll up at the rate measured in
``bench/audit-rollup.md`` (one core)."""

# Secret keys and the environment variable each becomes.
_SECRET_ENV = {
    "redis-url": "AIGW_REDIS_URL",
    "database-url": "AIGW_DATABASE_URL",
    "admin-key": "AIGW_ADMIN_KEY",
    "key-hash-secret": "AIGW_KEY_HASH_SECRET",
}
OIDC_SECRET_KEY = "oidc-client-secret"
"""The Secret key of ``ai-gateway:oidcClientSecret`` (the pod's ``AIGW_OIDC_CLIENT_SECRET``)."""
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


# ------------------------------------------------------------------------ args


MIGRATION_SERVICE_ACCOUNT = "ai-gateway-migrate"
"""The migration Job's ServiceAccount: the only one whose cloud identity reads the owner's secret."""


@dataclass
class GatewayDeploymentArgs:
    """Everything the gateway needs on one cluster; the cloud wiring fills it.

    Secret inputs (``redis_url``, ``postgres_dsn``, ``admin_key`` and the
    values of ``provider_api_keys``) go only into the Kubernetes Secret.
    ``config_file`` is a plain ``str`` on purpose: an Output (possibly secret)
    cannot reach the ConfigMap. Build it with :meth:`from_config` to take every
    workload setting from the stack config (the config file is then the
    cluster's catalogue, checked by :mod:`infra.config.catalogue`).
    """

    environment: Environment
    image: pulumi.Input[str]
    config_file: str
    redis_url: pulumi.Input[str]
    postgres_dsn: pulumi.Input[str]
    admin_key: pulumi.Input[str]
    key_hash_secret: pulumi.Input[str]
    """The HMAC secret virtual keys are stored under; the same on every cluster."""
    global_hostname: str
    cloud_hostname: str
    acme: AcmeArgs
    data_store_cidrs: Sequence[pulumi.Input[str]]
    """Private CIDRs holding Redis and PostgreSQL (the VPC/VNet or its database subnets)."""
    redis_port: int
    """6379 on ElastiCache, 6378 on Memorystore, 10000 on Azure Managed Redis."""
    scaling: Scaling
    resources: Resources
    edge_limits: EdgeLimits
    """The request body limit and timeout the edge enforces (from the gateway's config file)."""
    termination_grace_s: int = decisions.termination_grace_s({})
    """The gateway pods' termination grace period (:func:`decisions.termination_grace_s`
    of the gateway's config file)."""
    provider_api_keys: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Environment variable name (``GROQ_API_KEY`` ...) -> secret value."""
    redis_ca_cert: pulumi.Input[str] | None = None
    """PEM of the CA that signed Redis's certificate (Memorystore); mounted as a file."""
    migration: MigrationAccess | None = None
    """Where the migration Job reads the schema owner (the managed server's admin) and the
    identity it reads it with, to migrate and to create the role of ``postgres_dsn``.
    Without it the Job migrates as ``postgres_dsn``."""
    postgres_port: int = 5432
    canary_image: pulumi.Input[str] | None = None
    canary_weight: int = 0
    workload_identity: WorkloadIdentity = field(default_factory=WorkloadIdentity)
    load_balancer_annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """The cloud's annotations for the public LoadBalancer Service Envoy Gateway creates."""
    edge_prerequisites: Sequence[pulumi.Resource] = ()
    """What must run before the Gateway's load balancer (the AWS Load Balancer Controller on EKS)."""
    oidc_client_secret: pulumi.Input[str] | None = None
    """The console's OpenID Connect client secret (``ai-gateway:oidcClientSecret``): a key of
    the Secret, the pods' ``AIGW_OIDC_CLIENT_SECRET``."""
    console_allowed_cidrs: Sequence[str] = ()
    """Networks ``/console`` and ``/auth`` are reachable from at the edge (empty: any)."""
    metrics_namespace: str | None = None
    """Namespace of the Prometheus that scrapes ``/metrics``; admitted on 8080 when set."""
    governance: plane.GovernanceChannelArgs | None = None
    """The cloud's side of the global governance plane (:mod:`infra.k8s.governance`): its
    channel, and the ``governance.global`` section merged into the config file."""
    namespace: str = "ai-gateway"
    app_name: str = "ai-gateway"
    audit_maintenance_schedule: str = AUDIT_MAINTENANCE_SCHEDULE
    """Cron schedule (UTC) of the CronJob running ``audit-maintain`` (audit partitions ahead
    and retention) with the migration Job's credentials: daily by default."""

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        cloud: Cloud,
        *,
        redis_url: pulumi.Input[str],
        postgres_dsn: pulumi.Input[str],
        admin_key: pulumi.Input[str],
        key_hash_secret: pulumi.Input[str],
        secrets: Mapping[str, Any],
        dns01_solver: Dns01Solver,
        data_store_cidrs: Sequence[pulumi.Input[str]],
        redis_port: int,
        redis_ca_cert: pulumi.Input[str] | None = None,
        migration: MigrationAccess | None = None,
        workload_identity: WorkloadIdentity | None = None,
        load_balancer_annotations: Mapping[str, pulumi.Input[str]] | None = None,
        image: pulumi.Input[str] | None = None,
        edge_prerequisites: Sequence[pulumi.Resource] = (),
        governance: plane.GovernanceChannelArgs | None = None,
    ) -> GatewayDeploymentArgs:
        """Args for ``cloud`` from the stack config plus what the cloud's footprint hands over.

        ``secrets`` is :func:`infra.config.secret_settings` (secret Outputs);
        ``image`` overrides ``gateway.image`` (a freshly built and pushed image
        reference).
        """
        gateway = config.gateway
        global_name, cloud_name = decisions.gateway_hostnames(
            config.dns.domain, config.dns.hostname, cloud.value
        )
        # The file this cluster's pods read (appConfig, or the default catalogue when it is
        # left out): the edge's limits are taken from it, so the two cannot disagree.
        config_file = config.gateway_config_file(cloud)
        app_config = yaml.safe_load(config_file)
        return cls(
            environment=config.environment,
            image=image if image is not None else gateway.image,
            config_file=config_file,
            redis_url=redis_url,
            postgres_dsn=postgres_dsn,
            admin_key=admin_key,
            key_hash_secret=key_hash_secret,
            global_hostname=global_name,
            cloud_hostname=cloud_name,
            acme=AcmeArgs(
                solver=dns01_solver, server=gateway.acme_server, email=gateway.acme_email
            ),
            data_store_cidrs=list(data_store_cidrs),
            redis_port=redis_port,
            scaling=decisions.scaling(config.environment, gateway.replicas, gateway.max_replicas),
            resources=gateway.resources,
            edge_limits=decisions.edge_limits(app_config),
            termination_grace_s=decisions.termination_grace_s(app_config),
            provider_api_keys={
                provider_key_variable(name): value
                for name, value in secrets.get(PROVIDER_KEYS, {}).items()
            },
            redis_ca_cert=redis_ca_cert,
            migration=migration,
            canary_image=gateway.canary_image,
            canary_weight=gateway.canary_weight,
            workload_identity=workload_identity or WorkloadIdentity(),
            load_balancer_annotations=dict(load_balancer_annotations or {}),
            edge_prerequisites=list(edge_prerequisites),
            oidc_client_secret=secrets.get(OIDC_CLIENT_SECRET),
            console_allowed_cidrs=tuple(gateway.console_allowed_cidrs),
            governance=governance,
        )


class GatewaySecrets(pulumi.ComponentResource):
    """The secrets every cluster's gateway shares, created once per stack.

    The global hostname may route a client to any cluster, so all of them must
    accept the same admin key and hash virtual keys with the same secret
    (``AIGW_KEY_HASH_SECRET``; the gateway would otherwise derive it from the
    admin key, and rotating that would invalidate every virtual key). The admin
    key is ``ai-gateway:adminKey`` when set, else generated; the hash secret is
    always generated and never leaves the stack's secret state.
    """

    def __init__(
        self,
        name: str,
        secrets: Mapping[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:global:GatewaySecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if "adminKey" in secrets:
            self.admin_key = pulumi.Output.secret(secrets["adminKey"])
        else:
            generated = random.RandomPassword(
                "gateway-admin-key", length=48, special=False, opts=child
            )
            self.admin_key = pulumi.Output.secret(generated.result)
        hash_secret = random.RandomPassword(
            "gateway-key-hash-secret", length=64, special=False, opts=child
        )
        self.key_hash_secret: pulumi.Output[str] = pulumi.Output.secret(hash_secret.result)
        self.register_outputs({"adminKey": self.admin_key, "keyHashSecret": self.key_hash_secret})


# ------------------------------------------------------------- pure helpers


def service_account_subject(namespace: str = "ai-gateway", app_name: str = "ai-gateway") -> str:
    """The gateway ServiceAccount's OIDC subject, for the clouds' identity bindings.

    IRSA role trust (``<issuer>:sub``), Azure federated identity credential
    ``subject``; GKE's member is ``serviceAccount:<project>.svc.id.goog[<ns>/<name>]``.
    """
    return f"system:serviceaccount:{decisions.dns_label(namespace)}:{decisions.dns_label(app_name)}"


def secret_key_for(env_name: str) -> str:
    """The Secret key holding an environment variable (``OPENAI_API_KEY`` -> ``openai-api-key``)."""
    if not _ENV_NAME.fullmatch(env_name) or env_name.startswith("AIGW_"):
        raise ValueError(
            f"provider key variable {env_name!r} is not allowed; use an upper-case name such "
            "as OPENAI_API_KEY (AIGW_* names are the gateway's own)"
        )
    return env_name.lower().replace("_", "-")


def topology_spread(
    environment: Environment, match_labels: Mapping[str, str]
) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """Spread replicas across zones and nodes.

    Zones are a hard rule outside dev (a zone outage must not take every
    replica); nodes are best effort so a small node pool can still schedule.
    """
    zone_rule = "ScheduleAnyway" if environment == Environment.DEV else "DoNotSchedule"
    selector = k8s.meta.v1.LabelSelectorArgs(match_labels=dict(match_labels))
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="topology.kubernetes.io/zone",
            when_unsatisfiable=zone_rule,
            label_selector=selector,
            match_label_keys=["pod-template-hash"],
        ),
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="kubernetes.io/hostname",
            when_unsatisfiable="ScheduleAnyway",
            label_selector=selector,
            match_label_keys=["pod-template-hash"],
        ),
    ]


def container_security_context() -> k8s.core.v1.SecurityContextArgs:
    """The ``restricted`` profile and more: non-root 10001, read-only root, no capabilities."""
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=USER_ID,
        run_as_group=USER_ID,
        read_only_root_filesystem=True,
        allow_privilege_escalation=False,
        privileged=False,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def pod_security_context() -> k8s.core.v1.PodSecurityContextArgs:
    """Pod-level identity: the image's user and group, RuntimeDefault seccomp."""
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=USER_ID,
        run_as_group=USER_ID,
        fs_group=USER_ID,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def probes() -> dict[str, k8s.core.v1.ProbeArgs]:
    """Startup and liveness on ``/health/live``, readiness on ``/health/ready``.

    The startup probe gives the process up to 60 s to listen before liveness
    applies; readiness fails (503) while Redis is unreachable, and with governance
    on until the pod has loaded the virtual keys (PostgreSQL refused it since it
    started), so such a pod gets no traffic but is not restarted. A pod is not
    ready until its first probe passes, so a new one takes traffic only then.
    """

    def http(path: str) -> k8s.core.v1.HTTPGetActionArgs:
        return k8s.core.v1.HTTPGetActionArgs(path=path, port="http", scheme="HTTP")

    return {
        "startup": k8s.core.v1.ProbeArgs(
            http_get=http("/health/live"), period_seconds=2, failure_threshold=30, timeout_seconds=2
        ),
        "readiness": k8s.core.v1.ProbeArgs(
            http_get=http("/health/ready"), period_seconds=5, failure_threshold=3, timeout_seconds=2
        ),
        "liveness": k8s.core.v1.ProbeArgs(
            http_get=http("/health/live"), period_seconds=10, failure_threshold=3, timeout_seconds=2
        ),
    }


def network_policy_egress(
    data_store_cidrs: Sequence[pulumi.Input[str]],
    redis_port: int,
    postgres_port: int,
    extra: Sequence[EgressRule] = (),
) -> list[k8s.networking.v1.NetworkPolicyEgressRuleArgs]:
    """Egress: cluster DNS, Redis and PostgreSQL in their CIDRs, HTTPS anywhere, ``extra``."""
    if not data_store_cidrs:
        raise ValueError(
            "data_store_cidrs is empty; pass the private CIDRs of Redis and PostgreSQL "
            "(the footprint's network or database subnets) so the pods may reach them"
        )
    for port in (redis_port, postgres_port, *(p for r in extra for p in r.ports)):
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"port {port!r} is not a TCP port; use an integer from 1 to 65535")

    def ports(
        *numbers: int, protocol: str = "TCP"
    ) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
        return [k8s.networking.v1.NetworkPolicyPortArgs(port=n, protocol=protocol) for n in numbers]

    def blocks(cidrs: Sequence[pulumi.Input[str]]) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
        return [
            k8s.networking.v1.NetworkPolicyPeerArgs(
                ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr)
            )
            for cidr in cidrs
        ]

    dns_peer = k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": "kube-system"}
        ),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
    )
    rules = [
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=[dns_peer], ports=[*ports(53, protocol="UDP"), *ports(53)]
        ),
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=blocks(data_store_cidrs), ports=ports(redis_port)
        ),
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=blocks(data_store_cidrs), ports=ports(postgres_port)
        ),
        # Model providers, token exchange (STS, Entra ID) and the cloud model APIs.
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=blocks(["0.0.0.0/0"]), ports=ports(443)),
    ]
    rules += [
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=blocks(rule.cidrs), ports=ports(*rule.ports, protocol=rule.protocol)
        )
        for rule in extra
    ]
    return rules


# --------------------------------------------------------------- component


class GatewayDeployment(pulumi.ComponentResource):
    """The gateway workload, its edge and TLS on one cluster (see the module docstring).

    Outputs: ``endpoint`` (the public load balancer's hostname or IP, for the
    global DNS), ``namespace``, ``hostnames``, ``canary_weight``.
    """

    endpoint: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(
        self, name: str, args: GatewayDeploymentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:k8s:GatewayDeployment", name, None, opts)
        self._name = name
        self._args = args
        app = decisions.dns_label(args.app_name)
        canary = decisions.canary_plan(args.canary_image, args.canary_weight, args.scaling)
        config_file = catalogue.check_config_file(args.config_file)
        # With the governance plane, the peers' issuers are outputs: the file the pods read
        # is the checked one plus governance.global, built when they are known.
        config_text: pulumi.Input[str] = (
            pulumi.Output.from_input(args.governance.plane).apply(
                lambda section: plane.with_plane(config_file, section)
            )
            if args.governance is not None
            else config_file
        )
        secret_keys = {secret_key_for(env): env for env in sorted(args.provider_api_keys)}
        secret_data = self._secret_data(secret_keys)
        hosts = [args.global_hostname, args.cloud_hostname]

        self.edge = self._edge()
        self._ns = self._namespace()
        self.service_account, self.migration_service_account = self._service_accounts(app)
        self.secret, self.config_map = self._configuration(app, secret_data, config_text)
        self._network_policies(app)
        self._env = self._environment(secret_keys, args.redis_ca_cert is not None)
        self._volumes = self._pod_volumes(args.redis_ca_cert is not None)
        self.tracks = self._tracks(canary, self._checksum(secret_data, config_text), config_file)
        self.audit_maintenance = self._audit_maintenance(app, self.tracks["stable"]["job"])
        tls_secret, certificate = self._certificate(app, hosts)
        self.gateway = self._gateway(app, hosts, tls_secret, certificate)
        self.routes = self._routes(app, hosts, self.tracks, canary)
        self.governance = self._governance_channel(app)

        self.namespace = self._ns
        # Envoy Gateway publishes the load balancer's address in the Gateway's status.
        self.endpoint = self.gateway.status.apply(gateway_address)
        self.hostnames = hosts
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "namespace": self.namespace,
                "hostnames": hosts,
                "canaryWeight": canary.weight if canary.enabled else None,
            }
        )

    # ------------------------------------------------------------------ parts

    def _edge(self) -> ClusterEdge:
        """The cluster's shared edge: Gateway API CRDs, Envoy Gateway, cert-manager, the issuer."""
        args = self._args
        return ClusterEdge(
            f"{self._name}-edge",
            ClusterEdgeArgs(
                environment=args.environment,
                acme=args.acme,
                prerequisites=list(args.edge_prerequisites),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _namespace(self) -> pulumi.Output[str]:
        """The gateway's namespace, Pod Security ``restricted``; its name."""
        namespace = k8s.core.v1.Namespace(
            f"{self._name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=decisions.dns_label(self._args.namespace),
                labels=namespace_labels("restricted"),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return namespace.metadata.name

    def _service_accounts(
        self, app: str
    ) -> tuple[k8s.core.v1.ServiceAccount, k8s.core.v1.ServiceAccount | None]:
        """The gateway's identity and, with a migration owner, the migration Job's own."""
        args = self._args
        child = pulumi.ResourceOptions(parent=self)
        gateway = k8s.core.v1.ServiceAccount(
            f"{self._name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=app,
                namespace=self._ns,
                annotations=dict(args.workload_identity.service_account_annotations),
                labels=self._labels("gateway"),
            ),
            # The gateway never calls the Kubernetes API.
            automount_service_account_token=False,
            opts=child,
        )
        if args.migration is None:
            return gateway, None
        # The Job's own identity, the only one allowed to read the owner's secret.
        migration = k8s.core.v1.ServiceAccount(
            f"{self._name}-migration-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=MIGRATION_SERVICE_ACCOUNT,
                namespace=self._ns,
                annotations=dict(args.migration.workload_identity.service_account_annotations),
                labels=self._labels("migration"),
            ),
            automount_service_account_token=False,
            opts=child,
        )
        return gateway, migration

    def _secret_data(self, secret_keys: Mapping[str, str]) -> dict[str, pulumi.Input[str]]:
        """What the gateway's Secret holds: data store URLs, its own keys, provider keys."""
        args = self._args
        secret_data: dict[str, pulumi.Input[str]] = {
            "redis-url": args.redis_url,
            "database-url": args.postgres_dsn,
            "admin-key": args.admin_key,
            "key-hash-secret": args.key_hash_secret,
            **{key: args.provider_api_keys[env] for key, env in secret_keys.items()},
        }
        if args.redis_ca_cert is not None:
            secret_data[REDIS_CA_KEY] = args.redis_ca_cert
        if args.oidc_client_secret is not None:
            secret_data[OIDC_SECRET_KEY] = args.oidc_client_secret
        return secret_data

    def _configuration(
        self, app: str, secret_data: Mapping[str, pulumi.Input[str]], config_text: pulumi.Input[str]
    ) -> tuple[k8s.core.v1.Secret, k8s.core.v1.ConfigMap]:
        """The Secret (credentials) and the ConfigMap (``config.yaml``) the pods mount."""
        child = pulumi.ResourceOptions(parent=self)
        secret = k8s.core.v1.Secret(
            f"{self._name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=decisions.dns_label(app, "secrets"),
                namespace=self._ns,
                labels=self._labels("gateway"),
            ),
            type="Opaque",
            string_data=pulumi.Output.secret(dict(secret_data)),
            opts=child,
        )
        config_map = k8s.core.v1.ConfigMap(
            f"{self._name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=decisions.dns_label(app, "config"),
                namespace=self._ns,
                labels=self._labels("gateway"),
            ),
            data={"config.yaml": config_text},
            opts=child,
        )
        return secret, config_map

    def _checksum(
        self, secret_data: Mapping[str, pulumi.Input[str]], config_text: pulumi.Input[str]
    ) -> pulumi.Output[str]:
        """The pod template's rollout checksum of the config and the secrets."""
        # Keyed so the checksum annotation reveals nothing about the secrets.
        checksum_key = random.RandomPassword(
            f"{self._name}-checksum-key",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return pulumi.Output.unsecret(
            pulumi.Output.all(
                checksum_key.result, pulumi.Output.secret(dict(secret_data)), config_text
            ).apply(lambda values: decisions.rollout_checksum(values[0], values[2], values[1]))
        )

    def _tracks(
        self, canary: CanaryPlan, checksum: pulumi.Output[str], config_file: str
    ) -> dict[str, dict[str, pulumi.Resource]]:
        """The stable track and, when the canary is on, the canary track beside it."""
        args = self._args
        tracks = {"stable": self._track("stable", args.image, args.scaling, checksum, config_file)}
        if canary.enabled and args.canary_image is not None:
            tracks["canary"] = self._track(
                "canary",
                args.canary_image,
                Scaling(canary.min_replicas, args.scaling.max_replicas),
                checksum,
                config_file,
            )
        return tracks

    def _audit_maintenance(self, app: str, migration: pulumi.Resource) -> k8s.batch.v1.CronJob:
        """The daily ``audit-maintain`` (:mod:`gateway_app.governance.retention`): the audit
        table's day partitions are made ahead every day, not only at deploy time, and the
        expired days dropped. It needs the table's owner, as the migration does (the serving
        role owns no table): the same image, identity, environment and pod hardening as the
        stable track's migration Job, which it follows."""
        args = self._args
        identity = args.migration.workload_identity if args.migration else args.workload_identity
        return k8s.batch.v1.CronJob(
            f"{self._name}-audit-maintenance",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=decisions.dns_label(app, "audit-maintain"),
                namespace=self._ns,
                labels=self._labels("audit-maintenance"),
            ),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=args.audit_maintenance_schedule,
                time_zone="Etc/UTC",
                # One run at a time (each change also takes an advisory lock); a run missed
                # by more than an hour (controller down) waits for the next day.
                concurrency_policy="Forbid",
                starting_deadline_seconds=3600,
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=3,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=self._labels("audit-maintenance")),
                    spec=k8s.batch.v1.JobSpecArgs(
                        backoff_limit=2,
                        active_deadline_seconds=AUDIT_MAINTENANCE_DEADLINE_S,
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(
                                labels={
                                    **self._labels("audit-maintenance"),
                                    **identity.pod_labels,
                                }
                            ),
                            spec=self._owner_pod_spec(
                                "audit-maintain", args.image, AUDIT_MAINTAIN_ARGS
                            ),
                        ),
                    ),
                ),
            ),
            # The schema must be at migration 9 (partitioned) before the first run.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[migration]),
        )

    def _certificate(
        self, app: str, hosts: list[str]
    ) -> tuple[str, k8s.apiextensions.CustomResource]:
        """The TLS Secret's name and the cert-manager Certificate for both hostnames."""
        tls_secret = decisions.dns_label(app, "tls")
        certificate = k8s.apiextensions.CustomResource(
            f"{self._name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=tls_secret, namespace=self._ns),
            spec=certificate_spec(tls_secret, hosts, self.edge.issuer_name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.edge.issuer]),
        )
        return tls_secret, certificate

    def _governance_channel(self, app: str) -> plane.GovernanceChannel | None:
        """The governance plane's channel to the other clouds (ai-gateway:governance), if on."""
        args = self._args
        if args.governance is None:
            return None
        return plane.GovernanceChannel(
            f"{self._name}-governance",
            args.governance,
            plane.ChannelParent(
                namespace=self._ns,
                app=app,
                environment=args.environment,
                pod_selector={
                    "app.kubernetes.io/name": app,
                    "app.kubernetes.io/instance": decisions.dns_label(self._name),
                    "app.kubernetes.io/component": "gateway",
                },
                labels=self._labels("governance"),
                issuer_name=self.edge.issuer_name,
                depends_on=[*self.edge.ready, self.edge.issuer],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _labels(self, component: str, track: str | None = None) -> dict[str, str]:
        labels = {
            "app.kubernetes.io/name": decisions.dns_label(self._args.app_name),
            "app.kubernetes.io/instance": decisions.dns_label(self._name),
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": "ai-gateway",
            "app.kubernetes.io/managed-by": "pulumi",
        }
        if track:
            labels["ai-gateway/track"] = track
        return labels

    def _network_policies(self, app: str) -> None:
        args = self._args
        child = pulumi.ResourceOptions(parent=self)
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-default-deny",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="default-deny", namespace=self._ns),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress", "Egress"],
            ),
            opts=child,
        )
        sources = [
            k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"kubernetes.io/metadata.name": EDGE_NAMESPACE}
                ),
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(PROXY_POD_LABELS)),
            )
        ]
        if args.metrics_namespace:
            sources.append(
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={"kubernetes.io/metadata.name": args.metrics_namespace}
                    )
                )
            )
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-gateway-traffic",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=decisions.dns_label(app, "traffic"), namespace=self._ns
            ),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                # Gateway and migration pods alike: both reach DNS and the data stores.
                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"app.kubernetes.io/name": app}
                ),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=sources,
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=PORT, protocol="TCP")],
                    )
                ],
                egress=network_policy_egress(
                    args.data_store_cidrs,
                    args.redis_port,
                    args.postgres_port,
                    args.workload_identity.extra_egress,
                ),
            ),
            opts=child,
        )

    def _environment(
        self, provider_keys: Mapping[str, str], with_ca: bool
    ) -> list[k8s.core.v1.EnvVarArgs]:
        def from_secret(env: str, key: str) -> k8s.core.v1.EnvVarArgs:
            return k8s.core.v1.EnvVarArgs(
                name=env,
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(
                        name=self.secret.metadata.name, key=key
                    )
                ),
            )

        env = [k8s.core.v1.EnvVarArgs(name="AIGW_CONFIG", value=CONFIG_PATH)]
        if with_ca:
            env.append(
                k8s.core.v1.EnvVarArgs(
                    name="AIGW_REDIS_CA_FILE", value=f"{REDIS_CA_DIR}/{REDIS_CA_KEY}"
                )
            )
        env += [from_secret(name, key) for key, name in _SECRET_ENV.items()]
        if self._args.oidc_client_secret is not None:
            env.append(from_secret(catalogue.OIDC_SECRET_VARIABLE, OIDC_SECRET_KEY))
        env += [from_secret(name, key) for key, name in provider_keys.items()]
        env += [
            k8s.core.v1.EnvVarArgs(name=name, value=value)
            for name, value in self._args.workload_identity.pod_env.items()
        ]
        return env

    def _migration_env(self) -> list[k8s.core.v1.EnvVarArgs]:
        """The gateway's environment plus where the owner's secret is, for the migration Job."""
        if self._args.migration is None:
            return self._env
        owner = k8s.core.v1.EnvVarArgs(
            name="AIGW_MIGRATION_SECRET", value=self._args.migration.owner_secret
        )
        return [*self._env, owner]

    def _pod_volumes(
        self, with_ca: bool
    ) -> tuple[list[k8s.core.v1.VolumeArgs], list[k8s.core.v1.VolumeMountArgs]]:
        volumes = [
            k8s.core.v1.VolumeArgs(
                name="config",
                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                    name=self.config_map.metadata.name,
                    items=[k8s.core.v1.KeyToPathArgs(key="config.yaml", path="config.yaml")],
                ),
            ),
            # The only writable path: the root filesystem is read-only.
            k8s.core.v1.VolumeArgs(
                name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="256Mi")
            ),
        ]
        mounts = [
            k8s.core.v1.VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ]
        if with_ca:
            volumes.append(
                k8s.core.v1.VolumeArgs(
                    name="redis-ca",
                    secret=k8s.core.v1.SecretVolumeSourceArgs(
                        secret_name=self.secret.metadata.name,
                        items=[k8s.core.v1.KeyToPathArgs(key=REDIS_CA_KEY, path=REDIS_CA_KEY)],
                    ),
                )
            )
            mounts.append(
                k8s.core.v1.VolumeMountArgs(
                    name="redis-ca", mount_path=REDIS_CA_DIR, read_only=True
                )
            )
        return volumes, mounts

    def _pod_spec(
        self,
        container: k8s.core.v1.ContainerArgs,
        restart_policy: str,
        labels_for_spread: Mapping[str, str] | None,
        service_account: k8s.core.v1.ServiceAccount | None = None,
        extra_volumes: Sequence[k8s.core.v1.VolumeArgs] = (),
        termination_grace_s: int = 30,
    ) -> k8s.core.v1.PodSpecArgs:
        volumes, _ = self._volumes
        account = service_account or self.service_account
        return k8s.core.v1.PodSpecArgs(
            service_account_name=account.metadata.name,
            automount_service_account_token=False,
            security_context=pod_security_context(),
            containers=[container],
            volumes=[*volumes, *extra_volumes],
            restart_policy=restart_policy,
            termination_grace_period_seconds=termination_grace_s,
            enable_service_links=False,
            topology_spread_constraints=(
                topology_spread(self._args.environment, labels_for_spread)
                if labels_for_spread
                else None
            ),
        )

    def _owner_pod_spec(
        self, name: str, image: pulumi.Input[str], command: Sequence[str]
    ) -> k8s.core.v1.PodSpecArgs:
        """The pod of a run-once schema task (the migration Job, the audit maintenance): the
        owner's identity and environment, the config mounted, a small fixed footprint."""
        _, mounts = self._volumes
        return self._pod_spec(
            k8s.core.v1.ContainerArgs(
                name=name,
                image=image,
                args=list(command),
                env=self._migration_env(),
                volume_mounts=mounts,
                resources=_requirements(decisions.MIGRATION_RESOURCES),
                security_context=container_security_context(),
            ),
            restart_policy="Never",
            labels_for_spread=None,
            service_account=self.migration_service_account,
        )

    def _track(
        self,
        track: str,
        image: pulumi.Input[str],
        scaling: Scaling,
        checksum: pulumi.Output[str],
        config_file: str,
    ) -> dict[str, pulumi.Resource]:
        """Migration Job -> Deployment -> Service, HPA, PDB for one image."""
        args = self._args
        app = decisions.dns_label(args.app_name)
        base = app if track == "stable" else decisions.dns_label(app, track, max_length=50)
        suffix = "" if track == "stable" else f"-{track}"
        child = pulumi.ResourceOptions(parent=self)
        _, mounts = self._volumes

        migration_identity = (
            args.migration.workload_identity if args.migration else args.workload_identity
        )
        migration_labels = {**self._labels("migration", track), **migration_identity.pod_labels}
        job = k8s.batch.v1.Job(
            f"{self._name}-migrate{suffix}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=pulumi.Output.from_input(image).apply(
                    lambda ref: decisions.migration_job_name(base, ref, config_file)
                ),
                namespace=self._ns,
                labels=self._labels("migration", track),
            ),
            # No ttlSecondsAfterFinished: Pulumi tracks the Job, and a Job the cluster
            # deleted would be recreated (the migration rerun) after a refresh.
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=2,
                active_deadline_seconds=600,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=migration_labels),
                    spec=self._owner_pod_spec("migrate", image, MIGRATE_ARGS),
                ),
            ),
            opts=child,
        )

        selector = {
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/instance": decisions.dns_label(self._name),
            "ai-gateway/track": track,
        }
        pod_labels = {**self._labels("gateway", track), **args.workload_identity.pod_labels}
        probe = probes()
        ports = [k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT, protocol="TCP")]
        token_volumes: list[k8s.core.v1.VolumeArgs] = []
        gateway_mounts = list(mounts)
        if args.governance is not None:
            # The governance plane: the internal listener, and the pod's own token for the
            # channel (audience aigw-governance, rotated by the kubelet). The migration Job
            # gets neither.
            ports.append(
                k8s.core.v1.ContainerPortArgs(
                    name="internal", container_port=args.governance.port, protocol="TCP"
                )
            )
            token, token_mount = plane.token_volume()
            token_volumes.append(token)
            gateway_mounts.append(token_mount)
        deployment = k8s.apps.v1.Deployment(
            f"{self._name}-deployment{suffix}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=base, namespace=self._ns, labels=self._labels("gateway", track)
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=scaling.min_replicas,
                revision_history_limit=5,
                min_ready_seconds=decisions.MIN_READY_S,
                progress_deadline_seconds=600,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_unavailable=0,
                        max_surge=f"{decisions.ROLLING_MAX_SURGE_PERCENT}%",
                    ),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=pod_labels,
                        annotations={
                            "checksum/config-and-secret": checksum,
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": str(PORT),
                            "prometheus.io/path": "/metrics",
                        },
                    ),
                    spec=self._pod_spec(
                        k8s.core.v1.ContainerArgs(
                            name="gateway",
                            image=image,
                            ports=ports,
                            env=self._env,
                            volume_mounts=gateway_mounts,
                            resources=_requirements(args.resources),
                            security_context=container_security_context(),
                            startup_probe=probe["startup"],
                            readiness_probe=probe["readiness"],
                            liveness_probe=probe["liveness"],
                            # Let the Envoy proxies drop the endpoint before SIGTERM.
                            lifecycle=k8s.core.v1.LifecycleArgs(
                                pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                                    sleep=k8s.core.v1.SleepActionArgs(seconds=decisions.PRE_STOP_S)
                                )
                            ),
                        ),
                        restart_policy="Always",
                        labels_for_spread=selector,
                        extra_volumes=token_volumes,
                        termination_grace_s=args.termination_grace_s,
                    ),
                ),
            ),
            # The migration must finish before any pod of this version starts;
            # replicas belong to the HPA after creation.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[job], ignore_changes=["spec.replicas"]
            ),
        )
        service = k8s.core.v1.Service(
            f"{self._name}-service{suffix}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=base, namespace=self._ns, labels=self._labels("gateway", track)
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="http", port=80, target_port="http", protocol="TCP"
                    )
                ],
            ),
            opts=child,
        )
        hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{self._name}-hpa{suffix}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=base, namespace=self._ns),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=deployment.metadata.name
                ),
                min_replicas=scaling.min_replicas,
                max_replicas=scaling.max_replicas,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization", average_utilization=70
                            ),
                        ),
                    )
                ],
                behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
                    scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
                        stabilization_window_seconds=300
                    )
                ),
            ),
            opts=child,
        )
        pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-pdb{suffix}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=base, namespace=self._ns),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                # A crash-looping pod must not block node drains.
                unhealthy_pod_eviction_policy="AlwaysAllow",
            ),
            opts=child,
        )
        return {"job": job, "deployment": deployment, "service": service, "hpa": hpa, "pdb": pdb}

    def _gateway(
        self,
        app: str,
        hosts: list[str],
        tls_secret: str,
        certificate: pulumi.Resource,
    ) -> ObservedCustomResource:
        """The Gateway: HTTPS with the certificate, HTTP only to redirect, the cloud's LB annotations."""
        args = self._args
        infrastructure: dict[str, Any] = {}
        if args.load_balancer_annotations:
            # Envoy Gateway copies these onto the LoadBalancer Service it creates.
            infrastructure["annotations"] = dict(args.load_balancer_annotations)
        same_namespace = {"namespaces": {"from": "Same"}}
        spec: dict[str, Any] = {
            "gatewayClassName": self.edge.gateway_class_name,
            "listeners": [
                {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": same_namespace},
                {
                    "name": "https",
                    "protocol": "HTTPS",
                    "port": 443,
                    "tls": {
                        "mode": "Terminate",
                        "certificateRefs": [{"group": "", "kind": "Secret", "name": tls_secret}],
                    },
                    "allowedRoutes": same_namespace,
                },
            ],
        }
        if infrastructure:
            spec["infrastructure"] = infrastructure
        return ObservedCustomResource(
            f"{self._name}-gateway",
            api_version="gateway.networking.k8s.io/v1",
            kind="Gateway",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=app,
                namespace=self._ns,
                labels=self._labels("edge"),
                # `up` waits until the cloud gave the load balancer an address.
                annotations={"pulumi.com/waitFor": "jsonpath={.status.addresses[0].value}"},
            ),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self.edge.ready, certificate]),
        )

    def _routes(
        self,
        app: str,
        hosts: list[str],
        tracks: Mapping[str, Mapping[str, pulumi.Resource]],
        canary: CanaryPlan,
    ) -> dict[str, pulumi.Resource]:
        """The HTTPS route, the HTTP redirect and the Envoy Gateway policies of the edge's limits."""
        args = self._args
        services = {track: parts["service"] for track, parts in tracks.items()}
        after_gateway = [self.gateway, *services.values()]

        def parent(section: str) -> dict[str, Any]:
            return {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": app,
                "sectionName": section,
            }

        base = decisions.dns_label(args.app_name)
        rules = decisions.https_route_rules(
            base,
            decisions.dns_label(base, "canary", max_length=50) if canary.enabled else None,
            canary,
            args.edge_limits,
        )
        https = self._edge_object(
            "https-route",
            "HTTPRoute",
            app,
            {"parentRefs": [parent("https")], "hostnames": hosts, "rules": rules},
            after_gateway,
        )
        redirect = self._edge_object(
            "https-redirect",
            "HTTPRoute",
            decisions.dns_label(app, "https-redirect"),
            {
                "parentRefs": [parent("http")],
                "hostnames": hosts,
                "rules": decisions.https_redirect_rules(),
            },
            [self.gateway],
        )
        route_target = {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": app}
        # Bodies over the gateway's own limit get the same 413 at the edge,
        # before they cross the cluster.
        body_limit = self._edge_object(
            "backend-policy",
            "BackendTrafficPolicy",
            app,
            {
                "targetRefs": [route_target],
                "requestBuffer": {"limit": args.edge_limits.body_limit},
            },
            [https],
        )
        client = self._edge_object(
            "client-policy",
            "ClientTrafficPolicy",
            app,
            {
                "targetRefs": [
                    {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": app}
                ],
                "tls": {"minVersion": "1.2"},
                # What the console's allow-list and the gateway's per-client limits judge.
                "clientIPDetection": decisions.client_ip_detection(),
                # A client that trickles its request is cut off (slow-loris); the
                # whole body must arrive within the gateway's own deadline.
                "timeout": {
                    "http": {"requestReceivedTimeout": f"{decisions.REQUEST_RECEIVED_TIMEOUT_S}s"}
                },
            },
            [self.gateway],
        )
        found = {
            "https": https,
            "redirect": redirect,
            "backendPolicy": body_limit,
            "clientPolicy": client,
        }
        if args.console_allowed_cidrs:
            # /console and /auth on their own route of the same Gateway and listener (the one
            # entry point), and the SecurityPolicy admitting only the allowed networks. The
            # policy first (it names the route, which need not exist yet), then the route:
            # once the console's paths leave the main route, they are restricted.
            name = decisions.dns_label(app, "console")
            policy = self._edge_object(
                "console-policy",
                "SecurityPolicy",
                name,
                {
                    "targetRefs": [
                        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": name}
                    ],
                    "authorization": decisions.console_authorization(args.console_allowed_cidrs),
                },
                [self.gateway],
            )
            found["consolePolicy"] = policy
            found["consoleRoute"] = self._edge_object(
                "console-route",
                "HTTPRoute",
                name,
                {
                    "parentRefs": [parent("https")],
                    "hostnames": hosts,
                    "rules": decisions.console_route_rules(rules),
                },
                [*after_gateway, policy],
            )
        return found

    def _edge_object(
        self,
        suffix: str,
        kind: str,
        name: str,
        spec: Mapping[str, Any],
        depends_on: Sequence[pulumi.Resource],
    ) -> pulumi.Resource:
        """One Gateway API route or Envoy Gateway policy of the edge, in the gateway's namespace."""
        api_version = (
            "gateway.networking.k8s.io/v1"
            if kind == "HTTPRoute"
            else "gateway.envoyproxy.io/v1alpha1"
        )
        return k8s.apiextensions.CustomResource(
            f"{self._name}-{suffix}",
            api_version=api_version,
            kind=kind,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name, namespace=self._ns, labels=self._labels("edge")
            ),
            spec=dict(spec),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )


def _requirements(resources: Resources) -> k8s.core.v1.ResourceRequirementsArgs:
    return k8s.core.v1.ResourceRequirementsArgs(
        requests=resources.requests, limits=resources.limits
    )
