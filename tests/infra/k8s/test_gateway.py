"""The gateway component on the recorded plans of the k8s fixture program."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest

from infra.decisions import k8s as decisions
from infra.k8s.gateway import service_account_subject
from infra.offline import Plan, RecordedResource, Secret
from infra.offline.engine import ProgramError, reveal
from tests.infra.k8s.conftest import (
    CANARY_IMAGE,
    STABLE_IMAGE,
    catalogue_with,
    gateway_config,
    record_fixture,
)

NS = "kubernetes:core/v1:Namespace"
SA = "kubernetes:core/v1:ServiceAccount"
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SERVICE = "kubernetes:core/v1:Service"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
CRON_JOB = "kubernetes:batch/v1:CronJob"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
RELEASE = "kubernetes:helm.sh/v3:Release"
CHART = "kubernetes:helm.sh/v4:Chart"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
GATEWAY_CLASS = "kubernetes:gateway.networking.k8s.io/v1:GatewayClass"
ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
ENVOY_PROXY = "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
BACKEND_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:BackendTrafficPolicy"
CLIENT_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:ClientTrafficPolicy"
ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
COMPONENT = "ai-gateway:k8s:GatewayDeployment"
CLOUDS = ("aws", "azure", "gcp")


def owned(plan: Plan, cloud: str, type_token: str) -> list[RecordedResource]:
    """Resources of a type inside one cloud's GatewayDeployment (at any depth)."""
    component = plan.one(COMPONENT, f"gateway-{cloud}")
    return [
        r
        for r in plan.of_type(type_token)
        if any(a.urn == component.urn for a in plan.ancestors(r))
    ]


def one(plan: Plan, cloud: str, type_token: str, name: str) -> RecordedResource:
    found = [r for r in owned(plan, cloud, type_token) if r.get("metadata.name") == name]
    assert len(found) == 1, [r.get("metadata.name") for r in owned(plan, cloud, type_token)]
    return found[0]


def pod_specs(plan: Plan) -> Iterator[tuple[RecordedResource, dict[str, Any]]]:
    for resource in [*plan.of_type(DEPLOYMENT), *plan.of_type(JOB)]:
        yield resource, resource.get("spec.template.spec")
    for resource in plan.of_type(CRON_JOB):
        yield resource, resource.get("spec.jobTemplate.spec.template.spec")


def secret_values(value: Any, inside: bool = False) -> Iterator[str]:
    """Every string leaf under a Secret wrapper."""
    if isinstance(value, Secret):
        yield from secret_values(value.value, True)
    elif isinstance(value, dict):
        for item in value.values():
            yield from secret_values(item, inside)
    elif isinstance(value, list):
        for item in value:
            yield from secret_values(item, inside)
    elif inside and isinstance(value, str) and len(value) >= 8:
        yield value


def plain_strings(value: Any) -> Iterator[str]:
    """Every string leaf that is NOT under a Secret wrapper."""
    if isinstance(value, Secret):
        return
    if isinstance(value, dict):
        for item in value.values():
            yield from plain_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from plain_strings(item)
    elif isinstance(value, str):
        yield value


# ------------------------------------------------------------------ namespace


def test_namespace_enforces_the_restricted_pod_security_standard(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        labels = one(k8s_plan, cloud, NS, "ai-gateway").get("metadata.labels")
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_every_object_goes_to_its_own_cluster(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        provider = k8s_plan.one("pulumi:providers:kubernetes", f"{cloud}-kube")
        assert isinstance(provider.inputs["kubeconfig"], Secret)
        kube_objects = [
            r
            for r in k8s_plan.resources
            if r.package == "kubernetes" and r.name.startswith(f"gateway-{cloud}-")
        ]
        assert len(kube_objects) > 20
        for resource in kube_objects:
            assert resource.provider and resource.provider.startswith(provider.urn + "::"), (
                resource.name
            )


def test_kubernetes_names_fit_a_dns_label(k8s_plan: Plan) -> None:
    for resource in k8s_plan.resources:
        name = resource.get("metadata.name")
        if resource.package == "kubernetes" and isinstance(name, str):
            assert len(name) <= 63 and name == name.lower(), name


# ----------------------------------------------------------- pod security


def test_every_pod_runs_non_root_read_only_without_capabilities(k8s_plan: Plan) -> None:
    specs = list(pod_specs(k8s_plan))
    # Per cloud: stable and canary Deployment and Job, and the audit maintenance CronJob.
    assert len(specs) == 3 * 5
    for resource, spec in specs:
        assert spec["automountServiceAccountToken"] is False, resource.name
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = spec["containers"]
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        # /tmp is the only writable path: an emptyDir.
        tmp = next(v for v in spec["volumes"] if v["name"] == "tmp")
        assert "emptyDir" in tmp
        assert {"mountPath": "/tmp", "name": "tmp"} in container["volumeMounts"]
        assert all(m.get("readOnly") for m in container["volumeMounts"] if m["name"] != "tmp")


def test_gateway_container_probes_and_port(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        deployment = one(k8s_plan, cloud, DEPLOYMENT, "ai-gateway")
        (container,) = deployment.get("spec.template.spec.containers")
        assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == "http"
        # The startup probe allows a slow start before liveness may restart the pod.
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def test_container_environment_comes_from_the_secret_and_the_config_file(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        deployment = one(k8s_plan, cloud, DEPLOYMENT, "ai-gateway")
        (container,) = deployment.get("spec.template.spec.containers")
        env = {e["name"]: e for e in container["env"]}
        assert env["AIGW_CONFIG"]["value"] == "/etc/aigw/config.yaml"
        for name, key in {
            "AIGW_REDIS_URL": "redis-url",
            "AIGW_DATABASE_URL": "database-url",
            "AIGW_ADMIN_KEY": "admin-key",
            "AIGW_KEY_HASH_SECRET": "key-hash-secret",
            "OPENAI_API_KEY": "openai-api-key",
            "ANTHROPIC_API_KEY": "anthropic-api-key",
        }.items():
            assert env[name]["valueFrom"]["secretKeyRef"] == {
                "name": "ai-gateway-secrets",
                "key": key,
            }
            assert "value" not in env[name]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["config"] == "/etc/aigw"
        # Only GCP (Memorystore) hands over a CA certificate.
        assert ("AIGW_REDIS_CA_FILE" in env) == (cloud == "gcp")
        if cloud == "gcp":
            assert env["AIGW_REDIS_CA_FILE"]["value"] == "/etc/aigw/redis-ca/redis-ca.crt"
            assert mounts["redis-ca"] == "/etc/aigw/redis-ca"


def test_resources_follow_the_stack_config(k8s_plan: Plan) -> None:
    deployment = one(k8s_plan, "aws", DEPLOYMENT, "ai-gateway")
    (container,) = deployment.get("spec.template.spec.containers")
    # The fixture is a prod stack: prod defaults of ai-gateway:gateway.
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }
    job = owned(k8s_plan, "aws", JOB)[0]
    (migrate,) = job.get("spec.template.spec.containers")
    assert set(migrate["resources"]) == {"requests", "limits"}


def test_resources_override_from_config() -> None:
    plan = record_fixture(
        {"ai-gateway:gateway": gateway_config(None, cpuRequest="750m", memoryLimit="2Gi")}
    )
    (container,) = one(plan, "azure", DEPLOYMENT, "ai-gateway").get("spec.template.spec.containers")
    assert container["resources"]["requests"]["cpu"] == "750m"
    assert container["resources"]["limits"]["memory"] == "2Gi"


# ------------------------------------------------------------ rollout shape


def test_deployment_rolls_without_unavailable_replicas_and_spreads(k8s_plan: Plan) -> None:
    deployment = one(k8s_plan, "gcp", DEPLOYMENT, "ai-gateway")
    assert deployment.get("spec.replicas") == 3
    assert deployment.get("spec.strategy.type") == "RollingUpdate"
    assert deployment.get("spec.strategy.rollingUpdate.maxUnavailable") == 0
    selector = deployment.get("spec.selector.matchLabels")
    template_labels = deployment.get("spec.template.metadata.labels")
    assert selector.items() <= template_labels.items()
    spread = {
        c["topologyKey"]: c for c in deployment.get("spec.template.spec.topologySpreadConstraints")
    }
    assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert spread["kubernetes.io/hostname"]["labelSelector"]["matchLabels"] == selector


def test_checksum_and_scrape_annotations(k8s_plan: Plan) -> None:
    annotations = one(k8s_plan, "aws", DEPLOYMENT, "ai-gateway").get(
        "spec.template.metadata.annotations"
    )
    checksum = annotations["checksum/config-and-secret"]
    assert len(checksum) == 64 and int(checksum, 16) >= 0
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"
    # In plain text (readable diffs), because it is keyed and reveals nothing.
    deployment = one(k8s_plan, "aws", DEPLOYMENT, "ai-gateway")
    assert not isinstance(deployment.inputs["spec"], Secret)


def test_a_config_change_changes_the_checksum_and_the_migration_job(
    k8s_plans: dict[int | None, Plan],
) -> None:
    before = k8s_plans[None]
    after = record_fixture(
        {
            "ai-gateway:gateway": gateway_config(
                None, appConfig=catalogue_with(retry={"max_retries": 1})
            )
        }
    )
    key = "spec.template.metadata.annotations.checksum/config-and-secret"
    for cloud in CLOUDS:
        old = one(before, cloud, DEPLOYMENT, "ai-gateway")
        new = one(after, cloud, DEPLOYMENT, "ai-gateway")
        assert old.get(key) != new.get(key)
        (old_job,) = owned(before, cloud, JOB)
        (new_job,) = owned(after, cloud, JOB)
        assert old_job.get("metadata.name") != new_job.get("metadata.name")


def test_migration_job_runs_before_the_deployment(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        for deployment_name, image in (
            ("ai-gateway", STABLE_IMAGE),
            ("ai-gateway-canary", CANARY_IMAGE),
        ):
            deployment = one(k8s_plan, cloud, DEPLOYMENT, deployment_name)
            jobs = [
                j
                for j in owned(k8s_plan, cloud, JOB)
                if j.get("spec.template.spec.containers.0.image") == image
            ]
            assert len(jobs) == 1
            job = jobs[0]
            assert job.urn in deployment.dependencies
            (container,) = job.get("spec.template.spec.containers")
            assert container["args"] == ["python", "-m", "gateway_app", "migrate"]
            assert job.get("spec.template.spec.restartPolicy") == "Never"
            assert job.get("metadata.name").startswith(f"{deployment_name}-migrate-")
        # A new image is a new Job: the stable and canary Jobs differ by name.
        names = {j.get("metadata.name") for j in owned(k8s_plan, cloud, JOB)}
        assert len(names) == 2


def test_audit_maintenance_runs_daily_as_the_stable_migration_job_does(k8s_plan: Plan) -> None:
    """Issue 24: the audit partitions are made ahead every day and expired days dropped,
    which takes the table's owner: the CronJob runs ``audit-maintain`` with the stable
    migration Job's image, identity, environment (the owner's credentials), volumes and
    pod hardening, one run at a time, with a bounded history, after the migration."""
    for cloud in CLOUDS:
        cron = one(k8s_plan, cloud, CRON_JOB, "ai-gateway-audit-maintain")
        spec = cron.get("spec")
        assert spec["schedule"] == "17 2 * * *" and spec["timeZone"] == "Etc/UTC"
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 3
        assert spec["startingDeadlineSeconds"] == 3600
        job_spec = spec["jobTemplate"]["spec"]
        # Room for a day's roll-up at 50,000 requests/s after the 2 h of starting them.
        assert job_spec["backoffLimit"] == 2 and job_spec["activeDeadlineSeconds"] == 4 * 3600
        pod = job_spec["template"]["spec"]
        (migration,) = [
            j
            for j in owned(k8s_plan, cloud, JOB)
            if j.get("spec.template.spec.containers.0.image") == STABLE_IMAGE
        ]
        assert migration.urn in cron.dependencies
        migration_pod = migration.get("spec.template.spec")
        for field in (
            "serviceAccountName",
            "automountServiceAccountToken",
            "securityContext",
            "volumes",
            "restartPolicy",
        ):
            assert pod[field] == migration_pod[field], field
        (container,) = pod["containers"]
        (migration_container,) = migration_pod["containers"]
        assert container["args"] == ["python", "-m", "gateway_app", "audit-maintain"]
        for field in ("image", "env", "volumeMounts", "securityContext", "resources"):
            assert container[field] == migration_container[field], field
        assert {e["name"] for e in container["env"]} >= {"AIGW_DATABASE_URL", "AIGW_CONFIG"}
        labels = job_spec["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "ai-gateway"  # its NetworkPolicy's pods
        assert labels["app.kubernetes.io/component"] == "audit-maintenance"


def test_hpa_and_pdb_target_the_deployment(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        deployment = one(k8s_plan, cloud, DEPLOYMENT, "ai-gateway")
        hpa = one(k8s_plan, cloud, HPA, "ai-gateway")
        assert hpa.get("spec.scaleTargetRef") == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "ai-gateway",
        }
        assert (hpa.get("spec.minReplicas"), hpa.get("spec.maxReplicas")) == (3, 20)
        (metric,) = hpa.get("spec.metrics")
        assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"]["type"] == "Utilization"
        pdb = one(k8s_plan, cloud, PDB, "ai-gateway")
        assert pdb.get("spec.maxUnavailable") == 1
        assert pdb.get("spec.selector.matchLabels") == deployment.get("spec.selector.matchLabels")
        assert pdb.get("spec.unhealthyPodEvictionPolicy") == "AlwaysAllow"


def test_gateway_service_is_cluster_internal(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        service = one(k8s_plan, cloud, SERVICE, "ai-gateway")
        assert service.get("spec.type") == "ClusterIP"
        assert service.get("spec.ports") == [
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
        ]
        deployment = one(k8s_plan, cloud, DEPLOYMENT, "ai-gateway")
        assert service.get("spec.selector") == deployment.get("spec.selector.matchLabels")


# ----------------------------------------------------------- network policy


def test_network_policy_denies_by_default(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        deny = one(k8s_plan, cloud, NETPOL, "default-deny")
        assert deny.get("spec.podSelector") == {}
        assert sorted(deny.get("spec.policyTypes")) == ["Egress", "Ingress"]
        assert deny.get("spec.ingress") is None and deny.get("spec.egress") is None


def test_network_policy_admits_only_the_envoy_proxies(k8s_plan: Plan) -> None:
    policy = one(k8s_plan, "aws", NETPOL, "ai-gateway-traffic")
    (rule,) = policy.get("spec.ingress")
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    (source,) = rule["from"]
    assert source["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}
    }
    # The labels Envoy Gateway puts on every proxy pod (internal/infrastructure/
    # kubernetes/proxy/resource.go, EnvoyAppLabel), and nothing else in that namespace.
    assert source["podSelector"] == {
        "matchLabels": {
            "app.kubernetes.io/name": "envoy",
            "app.kubernetes.io/component": "proxy",
            "app.kubernetes.io/managed-by": "envoy-gateway",
        }
    }
    assert "ipBlock" not in source


@pytest.mark.parametrize(
    ("cloud", "redis_port", "cidrs", "extra"),
    [
        ("aws", 6379, ["10.210.0.0/16"], []),
        ("azure", 10000, ["10.220.0.0/16"], []),
        # GKE metadata server under NetworkPolicy ("Workload Identity Federation for GKE",
        # network policy section): 169.254.169.254:80 with Dataplane V2, and the node's
        # server on 169.254.169.252:987/988.
        (
            "gcp",
            6378,
            ["10.230.0.0/20", "10.240.0.0/24"],
            [("169.254.169.254/32", {80}), ("169.254.169.252/32", {987, 988})],
        ),
    ],
)
def test_network_policy_egress_is_dns_data_stores_and_https_only(
    k8s_plan: Plan, cloud: str, redis_port: int, cidrs: list[str], extra: list
) -> None:
    policy = one(k8s_plan, cloud, NETPOL, "ai-gateway-traffic")
    # Migration pods share the policy: they need DNS and PostgreSQL too.
    assert policy.get("spec.podSelector") == {
        "matchLabels": {"app.kubernetes.io/name": "ai-gateway"}
    }
    rules = policy.get("spec.egress")
    dns, redis, postgres, https, *rest = rules
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert sorted((p["port"], p["protocol"]) for p in dns["ports"]) == [(53, "TCP"), (53, "UDP")]
    assert [p["ipBlock"]["cidr"] for p in redis["to"]] == cidrs
    assert redis["ports"] == [{"port": redis_port, "protocol": "TCP"}]
    assert [p["ipBlock"]["cidr"] for p in postgres["to"]] == cidrs
    assert postgres["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert https["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    assert https["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert [(r["to"][0]["ipBlock"]["cidr"], {p["port"] for p in r["ports"]}) for r in rest] == extra


# --------------------------------------------------------- workload identity


@pytest.mark.parametrize(
    ("cloud", "annotation", "pod_labels"),
    [
        (
            "aws",
            {
                "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/ai-gateway-prod-gateway"
            },
            {},
        ),
        (
            "azure",
            {"azure.workload.identity/client-id": "00000000-0000-4000-8000-00000000c11d"},
            {"azure.workload.identity/use": "true"},
        ),
        (
            "gcp",
            {
                "iam.gke.io/gcp-service-account": "ai-gateway@acme-ai-gateway-prod.iam.gserviceaccount.com"
            },
            {},
        ),
    ],
)
def test_workload_identity_binding(
    k8s_plan: Plan, cloud: str, annotation: dict[str, str], pod_labels: dict[str, str]
) -> None:
    account = one(k8s_plan, cloud, SA, "ai-gateway")
    assert account.get("metadata.annotations") == annotation
    # The subject the cloud's identity binding must trust names this account.
    assert service_account_subject() == (
        f"system:serviceaccount:{account.get('metadata.namespace')}:{account.get('metadata.name')}"
    )
    assert account.get("automountServiceAccountToken") is False
    for workload in [*owned(k8s_plan, cloud, DEPLOYMENT), *owned(k8s_plan, cloud, JOB)]:
        assert workload.get("spec.template.spec.serviceAccountName") == "ai-gateway"
        labels = workload.get("spec.template.metadata.labels")
        assert pod_labels.items() <= labels.items()
        if not pod_labels:
            assert "azure.workload.identity/use" not in labels


# ------------------------------------------------------------------- secrets


def test_secret_holds_every_secret_and_is_secret_in_state(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        secret = one(k8s_plan, cloud, SECRET, "ai-gateway-secrets")
        assert isinstance(secret.inputs["stringData"], Secret)
        assert isinstance(secret.outputs["stringData"], Secret)
        data = reveal(secret.inputs["stringData"])
        expected = {
            "redis-url",
            "database-url",
            "admin-key",
            "key-hash-secret",
            "openai-api-key",
            "anthropic-api-key",
        }
        if cloud == "gcp":
            expected.add("redis-ca.crt")
        assert set(data) == expected
        assert data["redis-url"].startswith("rediss://:")
        assert data["database-url"].startswith("postgresql://gateway:")
        # The values of `pulumi config set --secret` (offline placeholders).
        assert data["openai-api-key"] == "offline-placeholder-for-ai-gateway:providerKeys.openai"
        assert (
            data["anthropic-api-key"] == "offline-placeholder-for-ai-gateway:providerKeys.anthropic"
        )
        assert "data" not in secret.inputs


def test_no_secret_value_reaches_a_config_map_or_a_plain_export(
    k8s_plans: dict[int | None, Plan],
) -> None:
    for plan in k8s_plans.values():
        secrets = {
            value
            for r in plan.resources
            for value in [*secret_values(r.inputs), *secret_values(r.outputs)]
        } | {
            "offline-placeholder-for-ai-gateway:providerKeys.openai",
            "offline-placeholder-for-ai-gateway:providerKeys.anthropic",
        }
        # Sanity: the generated passwords are among the secrets looked for.
        passwords = {
            reveal(r.outputs["result"])
            for r in plan.of_type("random:index/randomPassword:RandomPassword")
        }
        assert passwords <= secrets and len(passwords) == 8
        config_maps = plan.of_type(CONFIG_MAP)
        assert len(config_maps) == 3
        for config_map in config_maps:
            assert not any(
                isinstance(v, Secret) for v in config_map.inputs.get("data", {}).values()
            )
            text = "\n".join(plain_strings(config_map.inputs))
            assert not [s for s in secrets if s in text]
        exported = "\n".join(plain_strings(plan.outputs))
        assert exported and not [s for s in secrets if s in exported]
        # Nor in any other plain input (annotations, env values, Helm values).
        for resource in plan.resources:
            text = "\n".join(plain_strings(resource.inputs))
            assert not [s for s in secrets if s in text], resource.name


def test_plain_text_secret_settings_are_refused() -> None:
    with pytest.raises(
        ProgramError, match=r"ai-gateway:adminKey: is stored in plain text.*--secret"
    ):
        record_fixture({"ai-gateway:adminKey": "not-encrypted-admin-key"})


# ---------------------------------------------------------------- edge, TLS


def test_no_service_of_the_plan_is_a_load_balancer(k8s_plan: Plan) -> None:
    """The only public Service is the one Envoy Gateway creates for the Gateway."""
    for cloud in CLOUDS:
        assert [
            s for s in owned(k8s_plan, cloud, SERVICE) if s.get("spec.type") != "ClusterIP"
        ] == []
        (proxy,) = owned(k8s_plan, cloud, ENVOY_PROXY)
        service = proxy.get("spec.provider.kubernetes.envoyService")
        assert service == {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}
        (gateway,) = owned(k8s_plan, cloud, GATEWAY)
        # Envoy Gateway copies the infrastructure annotations onto its Service.
        annotations = gateway.get("spec.infrastructure.annotations")
        if cloud == "aws":
            assert annotations == {"service.beta.kubernetes.io/aws-load-balancer-type": "external"}
        else:
            assert annotations is None


def test_gateway_class_is_envoy_gateway_with_the_proxy_settings(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        (gateway_class,) = owned(k8s_plan, cloud, GATEWAY_CLASS)
        assert gateway_class.get("spec.controllerName") == (
            "gateway.envoyproxy.io/gatewayclass-controller"
        )
        (proxy,) = owned(k8s_plan, cloud, ENVOY_PROXY)
        assert gateway_class.get("spec.parametersRef") == {
            "group": "gateway.envoyproxy.io",
            "kind": "EnvoyProxy",
            "name": proxy.get("metadata.name"),
            "namespace": proxy.get("metadata.namespace"),
        }
        assert proxy.urn in gateway_class.dependencies
        # prod: an autoscaled, disruption-budgeted proxy fleet spread over zones
        kubernetes = proxy.get("spec.provider.kubernetes")
        assert kubernetes["envoyHpa"]["minReplicas"] == 2
        assert kubernetes["envoyPDB"] == {"minAvailable": 1}
        (spread,) = kubernetes["envoyDeployment"]["pod"]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        assert kubernetes["envoyDeployment"]["container"]["resources"]["limits"]["memory"]
        (gateway,) = owned(k8s_plan, cloud, GATEWAY)
        assert gateway.get("spec.gatewayClassName") == gateway_class.get("metadata.name")
        assert gateway_class.urn in gateway.dependencies


def test_endpoints_are_the_gateways_published_addresses(k8s_plan: Plan) -> None:
    endpoints = k8s_plan.outputs["endpoints"]
    assert endpoints["aws"].endswith(".elb.us-east-1.amazonaws.com")
    for cloud in ("azure", "gcp"):
        assert ipaddress.ip_address(endpoints[cloud]).is_global, endpoints[cloud]
    for cloud in CLOUDS:
        (gateway,) = owned(k8s_plan, cloud, GATEWAY)
        assert gateway.outputs["status"]["addresses"][0]["value"] == endpoints[cloud]
        # `pulumi up` waits for the address before the global DNS is pointed at it.
        assert gateway.get("metadata.annotations") == {
            "pulumi.com/waitFor": "jsonpath={.status.addresses[0].value}"
        }
    assert k8s_plan.outputs["hostnames"]["gcp"] == [
        "gateway.ai.example.com",
        "gateway-gcp.ai.example.com",
    ]


def test_helm_releases_are_pinned_and_hardened(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        releases = {r.get("name"): r for r in owned(k8s_plan, cloud, RELEASE)}
        assert set(releases) == {"envoy-gateway", "cert-manager"}
        for release in releases.values():
            assert release.get("version").startswith("v")
            assert release.get("atomic") is True
        envoy = releases["envoy-gateway"]
        assert envoy.get("chart") == "oci://docker.io/envoyproxy/gateway-helm"
        # The CRDs come from the CRD chart (applied and upgraded by Pulumi), not the release.
        assert envoy.get("values.crds.enabled") is False
        assert envoy.get("skipCrds") is True
        (crds,) = [
            r for r in k8s_plan.of_type(CHART) if r.name == f"gateway-{cloud}-edge-gateway-crds"
        ]
        assert crds.inputs["chart"] == "oci://docker.io/envoyproxy/gateway-crds-helm"
        assert crds.inputs["version"] == envoy.get("version")
        assert crds.inputs["values"]["crds"]["gatewayAPI"] == {
            "enabled": True,
            "channel": "standard",
        }
        assert crds.urn in envoy.dependencies
        cert_manager = releases["cert-manager"]
        assert cert_manager.get("repositoryOpts.repo", "").startswith("https://")
        assert cert_manager.get("values.crds.enabled") is True
        assert cert_manager.get("values.crds.keep") is True
        # GKE's private control plane reaches nodes on 443 and 10250 only.
        assert cert_manager.get("values.webhook.securePort") == 10250
        namespaces = {
            n.get("metadata.name"): n.get("metadata.labels") for n in owned(k8s_plan, cloud, NS)
        }
        assert namespaces["cert-manager"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert namespaces["envoy-gateway-system"]["pod-security.kubernetes.io/enforce"] == (
            "restricted"
        )


@pytest.mark.parametrize(
    ("cloud", "solver"),
    [
        ("aws", "route53"),
        ("azure", "azureDNS"),
        ("gcp", "cloudDNS"),
    ],
)
def test_cluster_issuer_uses_acme_dns01(k8s_plan: Plan, cloud: str, solver: str) -> None:
    (issuer,) = owned(k8s_plan, cloud, ISSUER)
    acme = issuer.get("spec.acme")
    assert acme["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert acme["email"] == "platform-team@example.com"
    (entry,) = acme["solvers"]
    assert list(entry["dns01"]) == [solver]
    cert_manager = next(
        r for r in owned(k8s_plan, cloud, RELEASE) if r.get("chart") == "cert-manager"
    )
    assert cert_manager.urn in issuer.dependencies
    roles = owned(k8s_plan, cloud, "kubernetes:rbac.authorization.k8s.io/v1:Role")
    if solver == "route53":
        route53 = entry["dns01"]["route53"]
        assert route53["role"].startswith("arn:aws:iam::")
        assert route53["auth"]["kubernetes"]["serviceAccountRef"]["name"] == "cert-manager-route53"
        (role,) = roles
        assert role.get("rules") == [
            {
                "apiGroups": [""],
                "resources": ["serviceaccounts/token"],
                "resourceNames": ["cert-manager-route53"],
                "verbs": ["create"],
            }
        ]
    else:
        assert roles == []
    if solver == "azureDNS":
        assert cert_manager.get("values.podLabels") == {"azure.workload.identity/use": "true"}
    if solver == "cloudDNS":
        assert "iam.gke.io/gcp-service-account" in cert_manager.get(
            "values.serviceAccount.annotations"
        )


def test_certificate_covers_the_global_and_cloud_hostnames(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        (certificate,) = owned(k8s_plan, cloud, CERTIFICATE)
        assert certificate.get("spec.dnsNames") == [
            "gateway.ai.example.com",
            f"gateway-{cloud}.ai.example.com",
        ]
        assert certificate.get("spec.issuerRef") == {
            "name": "ai-gateway-acme",
            "kind": "ClusterIssuer",
            "group": "cert-manager.io",
        }
        (issuer,) = owned(k8s_plan, cloud, ISSUER)
        assert issuer.urn in certificate.dependencies


def test_gateway_serves_https_and_only_redirects_plain_http(k8s_plan: Plan) -> None:
    for cloud in CLOUDS:
        gateway = one(k8s_plan, cloud, GATEWAY, "ai-gateway")
        listeners = {listener["name"]: listener for listener in gateway.get("spec.listeners")}
        assert set(listeners) == {"http", "https"}
        https = listeners["https"]
        assert (https["protocol"], https["port"]) == ("HTTPS", 443)
        assert https["tls"] == {
            "mode": "Terminate",
            "certificateRefs": [{"group": "", "kind": "Secret", "name": "ai-gateway-tls"}],
        }
        assert (listeners["http"]["protocol"], listeners["http"]["port"]) == ("HTTP", 80)
        for listener in listeners.values():
            assert listener["allowedRoutes"] == {"namespaces": {"from": "Same"}}
        (certificate,) = owned(k8s_plan, cloud, CERTIFICATE)
        assert certificate.get("spec.secretName") == "ai-gateway-tls"
        assert certificate.urn in gateway.dependencies

        routes = {
            r.get("spec.parentRefs")[0]["sectionName"]: r for r in owned(k8s_plan, cloud, ROUTE)
        }
        assert set(routes) == {"http", "https"}
        hosts = ["gateway.ai.example.com", f"gateway-{cloud}.ai.example.com"]
        for route in routes.values():
            assert route.get("spec.hostnames") == hosts
            assert route.get("spec.parentRefs")[0]["name"] == "ai-gateway"
        (redirect,) = routes["http"].get("spec.rules")
        assert redirect == {
            "filters": [
                {
                    "type": "RequestRedirect",
                    "requestRedirect": {"scheme": "https", "statusCode": 301},
                }
            ]
        }


def test_health_path_reaches_the_stable_track_only(k8s_plan: Plan) -> None:
    """The global health checks ask for /health/ready on the per-cloud name over HTTPS."""
    from infra.global_lb import READINESS_PATH

    for cloud in CLOUDS:
        route = one(k8s_plan, cloud, ROUTE, "ai-gateway")
        health = route.get("spec.rules")[0]
        assert health["matches"] == [{"path": {"type": "Exact", "value": READINESS_PATH}}]
        assert health["backendRefs"] == [{"name": "ai-gateway", "port": 80}]
        assert f"gateway-{cloud}.ai.example.com" in route.get("spec.hostnames")


def test_edge_limits_match_the_gateways_own(k8s_plan: Plan) -> None:
    """Defaults of the gateway's config model: 8 MiB bodies, a 120 s deadline (+600 s streams)."""
    from gateway_app.config import RetryConfig, ServerConfig

    for cloud in CLOUDS:
        (policy,) = owned(k8s_plan, cloud, BACKEND_POLICY)
        assert policy.get("spec.requestBuffer") == {"limit": "8Mi"}
        assert ServerConfig().max_body_bytes == 8 * 1024 * 1024
        assert policy.get("spec.targetRefs") == [
            {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "ai-gateway"}
        ]
        route = one(k8s_plan, cloud, ROUTE, "ai-gateway")
        main = route.get("spec.rules")[-1]
        assert main["timeouts"] == {"request": f"{int(RetryConfig().deadline_s) + 600}s"}
        (client,) = owned(k8s_plan, cloud, CLIENT_POLICY)
        assert client.get("spec.tls") == {"minVersion": "1.2"}
        assert client.get("spec.targetRefs")[0]["kind"] == "Gateway"


def test_edge_limits_follow_the_app_config() -> None:
    """The body limit is the server's; the route's timeout covers the slowest model's deadline."""
    app_config = catalogue_with()
    app_config["server"] = {"max_body_bytes": 1_000_000}
    app_config["router"] = {"retry": {"deadline_s": 30}}
    app_config["models"]["slow"] = {
        "retry": {"deadline_s": 300.5},
        "deployments": [{"provider": "openai", "model": "o3"}],
    }
    plan = record_fixture({"ai-gateway:gateway": gateway_config(None, appConfig=app_config)})
    (policy,) = owned(plan, "gcp", BACKEND_POLICY)
    assert policy.get("spec.requestBuffer.limit") == "1000000"
    main = one(plan, "gcp", ROUTE, "ai-gateway").get("spec.rules")[-1]
    assert main["timeouts"] == {"request": "901s"}


def test_the_pods_grace_covers_prestop_in_flight_requests_and_the_audit_flush(
    k8s_plan: Plan,
) -> None:
    """Kubernetes kills a pod when its termination grace period ends, the preStop hook's
    time included (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination).
    The gateway's period is the preStop pause, the time in-flight requests get
    (``server.graceful_shutdown_s``) and the shutdown after them (the audit flush), so
    a long stream's end and the queued audit events are not cut off; it follows the app
    config."""
    from gateway_app.config import SHUTDOWN_ALLOWANCE_S, ServerConfig

    default = 5 + int(ServerConfig().graceful_shutdown_s) + SHUTDOWN_ALLOWANCE_S
    for cloud in CLOUDS:
        spec = one(k8s_plan, cloud, DEPLOYMENT, "ai-gateway").get("spec.template.spec")
        assert spec["terminationGracePeriodSeconds"] == default == 55
        (container,) = spec["containers"]
        assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    app_config = catalogue_with()
    app_config["server"] = {"graceful_shutdown_s": 600.5}
    plan = record_fixture({"ai-gateway:gateway": gateway_config(None, appConfig=app_config)})
    spec = one(plan, "gcp", DEPLOYMENT, "ai-gateway").get("spec.template.spec")
    assert spec["terminationGracePeriodSeconds"] == 5 + 601 + SHUTDOWN_ALLOWANCE_S
    app_config["server"] = {"graceful_shutdown_s": -1}
    with pytest.raises(ValueError, match=r"(?s)appConfig\.server: .*graceful_shutdown_s.*greater"):
        decisions.termination_grace_s(app_config)


# -------------------------------------------------------------------- canary


def _names(plan: Plan, cloud: str, type_token: str) -> set[str]:
    return {r.get("metadata.name") for r in owned(plan, cloud, type_token)}


@pytest.mark.parametrize(("weight", "canary_replicas"), [(None, None), (0, 1), (10, 1), (100, 3)])
def test_canary_objects_for_each_weight(
    k8s_plans: dict[int | None, Plan], weight: int | None, canary_replicas: int | None
) -> None:
    plan = k8s_plans[weight]
    for cloud in CLOUDS:
        stable = one(plan, cloud, DEPLOYMENT, "ai-gateway")
        assert stable.get("spec.template.spec.containers.0.image") == STABLE_IMAGE
        assert stable.get("spec.replicas") == 3  # the stable track keeps running at 100 too
        rules = one(plan, cloud, ROUTE, "ai-gateway").get("spec.rules")
        if weight is None:
            assert _names(plan, cloud, DEPLOYMENT) == {"ai-gateway"}
            assert _names(plan, cloud, SERVICE) == {"ai-gateway"}
            assert rules[-1]["backendRefs"] == [{"name": "ai-gateway", "port": 80}]
            assert len(rules) == 2
            assert _names(plan, cloud, HPA) == _names(plan, cloud, PDB) == {"ai-gateway"}
            assert len(owned(plan, cloud, JOB)) == 1
            continue
        assert _names(plan, cloud, DEPLOYMENT) == {"ai-gateway", "ai-gateway-canary"}
        assert _names(plan, cloud, SERVICE) == {"ai-gateway", "ai-gateway-canary"}
        assert (
            _names(plan, cloud, HPA)
            == _names(plan, cloud, PDB)
            == {"ai-gateway", "ai-gateway-canary"}
        )
        assert len(owned(plan, cloud, JOB)) == 2
        canary = one(plan, cloud, DEPLOYMENT, "ai-gateway-canary")
        assert canary.get("spec.template.spec.containers.0.image") == CANARY_IMAGE
        assert canary.get("spec.replicas") == canary_replicas
        assert one(plan, cloud, HPA, "ai-gateway-canary").get("spec.minReplicas") == canary_replicas
        # Stable and canary pods never share a selector (each Service reaches one version).
        assert canary.get("spec.selector.matchLabels") != stable.get("spec.selector.matchLabels")
        canary_service = one(plan, cloud, SERVICE, "ai-gateway-canary")
        assert canary_service.get("spec.selector") == canary.get("spec.selector.matchLabels")
        # The split is weighted backendRefs (Gateway API weights are proportional).
        health, header, main = rules
        assert main["backendRefs"] == [
            {"name": "ai-gateway", "port": 80, "weight": 100 - weight},
            {"name": "ai-gateway-canary", "port": 80, "weight": weight},
        ]
        assert header["matches"] == [
            {
                "path": {"type": "PathPrefix", "value": "/"},
                "headers": [{"type": "Exact", "name": "X-Gateway-Canary", "value": "always"}],
            }
        ]
        assert header["backendRefs"] == [{"name": "ai-gateway-canary", "port": 80}]
        assert health["backendRefs"] == [{"name": "ai-gateway", "port": 80}]
        route = one(plan, cloud, ROUTE, "ai-gateway")
        assert canary_service.urn in route.dependencies


def test_canary_settings_are_validated() -> None:
    with pytest.raises(
        ProgramError, match=r"ai-gateway:gateway\.canaryWeight: .*canaryImage is not set"
    ):
        record_fixture({"ai-gateway:gateway": gateway_config(None, canaryWeight=10)})
    with pytest.raises(
        ProgramError, match=r"ai-gateway:gateway\.canaryImage: .*is the stable image"
    ):
        record_fixture(
            {"ai-gateway:gateway": gateway_config(None, canaryImage=STABLE_IMAGE, canaryWeight=5)}
        )


def test_every_cluster_gets_the_same_generated_admin_key(k8s_plan: Plan) -> None:
    keys = {
        reveal(one(k8s_plan, cloud, SECRET, "ai-gateway-secrets").inputs["stringData"])["admin-key"]
        for cloud in CLOUDS
    }
    generated = k8s_plan.one("random:index/randomPassword:RandomPassword", "gateway-admin-key")
    assert keys == {reveal(generated.outputs["result"])}
    assert k8s_plan.by_urn(generated.parent or "").type == "ai-gateway:global:GatewaySecrets"


def test_every_cluster_hashes_virtual_keys_with_the_same_secret(k8s_plan: Plan) -> None:
    secrets = {
        reveal(one(k8s_plan, cloud, SECRET, "ai-gateway-secrets").inputs["stringData"])[
            "key-hash-secret"
        ]
        for cloud in CLOUDS
    }
    generated = k8s_plan.one(
        "random:index/randomPassword:RandomPassword", "gateway-key-hash-secret"
    )
    assert secrets == {reveal(generated.outputs["result"])}
    assert len(next(iter(secrets))) == 64
