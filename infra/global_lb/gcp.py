"""The global name on Google Cloud: a Cloud DNS zone with health-checked routing policies.

* :class:`CloudDnsZone`, built first: the DNS, Compute and Monitoring APIs, the
  public managed zone (DNSSEC on when ``dns.dnssec``, the DS record read back
  with ``dns.getKeys``; every query logged to Cloud Logging when
  ``dns.queryLogging``) and the identity cert-manager uses for DNS-01: a
  service account with ``roles/dns.admin`` on this zone only, bound to
  ``cert-manager/cert-manager`` through GKE Workload Identity on GKE, and
  through Workload Identity Federation (a pool, a provider per cluster issuer)
  on an AKS cluster.
* :class:`CloudDnsGlobalEndpoint`: per cloud a direct ``A`` record; one global
  HTTPS health check from three Google regions on the readiness path; the
  global name as a routing-policy record set (geolocation or weighted round
  robin) whose items are health-checked external endpoints; per cloud an
  uptime check and an alert policy notifying the stack's channels.

Cloud DNS facts this encodes ("DNS routing policies and health checks",
Compute ``HealthCheck.sourceRegions``): there is no latency policy (geolocation
routes by the client's location, which for clouds in different regions is the
nearest cloud); external endpoints are checked by IP address, one per policy
item when the zone is signed; a health check with source regions names exactly
three and checks at most every 30 s. One health check serves every item of a
policy, so it asks for the global name (the gateway's route accepts both the
global and the per-cloud names under the same certificate).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra.config import Cloud, DnsConfig, DnsProvider, RoutingPolicy
from infra.contracts.footprint import CloudFootprint, GcpOutputs
from infra.decisions.gcp import resource_name
from infra.global_lb.common import (
    HTTPS_PORT,
    READINESS_PATH,
    READINESS_SEARCH_STRING,
    CloudEndpoint,
    GlobalDnsBackend,
    GlobalDnsError,
    _endpoints_by_cloud,
    cloud_hostname,
    record_type_for,
    routing_weights,
)
from infra.global_lb.regions import nearest_region
from infra.k8s.edge import (
    CERT_MANAGER_NAMESPACE,
    CERT_MANAGER_SUBJECT,
    GCP_TOKEN_DIR,
    CloudDnsSolver,
)

REQUIRED_APIS = ("dns.googleapis.com", "compute.googleapis.com", "monitoring.googleapis.com")
"""APIs the global layer calls; enabled here, never disabled on destroy."""

FEDERATION_APIS = ("iam.googleapis.com", "iamcredentials.googleapis.com", "sts.googleapis.com")
"""APIs Workload Identity Federation needs (clusters outside GCP), enabled only then."""

HEALTH_CHECK_REGIONS = ("us-east4", "europe-west1", "asia-southeast1")
"""Where Cloud DNS health checks run from: three continents (exactly three are allowed)."""

UPTIME_CHECK_PERIOD = "60s"
"""How often the alerting uptime check runs from each of its regions."""


def ipv4_endpoint(cloud: Cloud, endpoint: str) -> str:
    """A cloud's endpoint as the IPv4 address Cloud DNS health-checks (an error otherwise)."""
    value = endpoint.strip()
    if record_type_for(value, cloud) != "A":
        raise GlobalDnsError(
            f"{cloud.value} gateway endpoint: {value!r} is not an IPv4 address; Cloud DNS "
            "health-checks external endpoints by IPv4 address only, so use dns.provider "
            "route53 or azure for this cloud"
        )
    return value


def uptime_alert_filter(check_id: str) -> str:
    """The metric filter of an uptime check's failures (Cloud Monitoring's documented recipe)."""
    return (
        'metric.type="monitoring.googleapis.com/uptime_check/check_passed" '
        'AND resource.type="uptime_url" '
        f'AND metric.label.check_id="{check_id}"'
    )


class CloudDnsZone(pulumi.ComponentResource):
    """The public managed zone, its signing and query logging, and DNS-01 access for GKE.

    Outputs: ``zone_id``, ``zone_name``, ``name_servers``, ``dnssec_ds_record``.
    """

    dns_provider = DnsProvider.GCP

    def __init__(
        self,
        name: str,
        config: DnsConfig,
        name_prefix: str,
        project: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:global:CloudDnsZone", name, None, opts)
        self._name = name
        self._name_prefix = name_prefix
        self.project = project
        self._account: gcp.serviceaccount.Account | None = None
        self._pool: gcp.iam.WorkloadIdentityPool | None = None
        self._pool_id = ""
        self._project_number: pulumi.Output[str] = pulumi.Output.from_input("")
        self.provider = gcp.Provider(
            f"{name}-provider", project=project, opts=pulumi.ResourceOptions(parent=self)
        )
        self.apis = self._enable(REQUIRED_APIS)
        self._child = pulumi.ResourceOptions(
            parent=self, provider=self.provider, depends_on=self.apis
        )
        zone = gcp.dns.ManagedZone(
            f"{name}-zone",
            name=resource_name(name_prefix, "global", "dns_zone"),
            dns_name=f"{config.domain}.",
            description=f"Global names of the AI gateway ({name_prefix})",
            visibility="public",
            dnssec_config=(
                gcp.dns.ManagedZoneDnssecConfigArgs(state="on") if config.dnssec else None
            ),
            cloud_logging_config=gcp.dns.ManagedZoneCloudLoggingConfigArgs(
                enable_logging=config.logs_queries
            ),
            opts=self._child,
        )
        self.zone = zone
        # The API returns a number; the engine hands it over as a float.
        self.zone_id = zone.managed_zone_id.apply(lambda v: str(int(v)))
        self.zone_name = zone.name
        self.name_servers = zone.name_servers.apply(lambda servers: list(servers or []))
        self.dnssec_ds_record: pulumi.Output[str] | None = None
        if config.dnssec:
            keys = gcp.dns.get_keys_output(
                managed_zone=zone.id,
                project=project,
                opts=pulumi.InvokeOutputOptions(parent=self, provider=self.provider),
            )
            self.dnssec_ds_record = keys.key_signing_keys.apply(
                lambda ksks: (ksks[0].ds_record or "") if ksks else ""
            )
        self.register_outputs(
            {
                "zoneId": self.zone_id,
                "nameServers": self.name_servers,
                "dnssecDsRecord": self.dnssec_ds_record,
            }
        )

    def _enable(self, apis: Sequence[str]) -> list[gcp.projects.Service]:
        """Turn APIs on (never off on destroy: other workloads of the project may use them)."""
        return [
            gcp.projects.Service(
                f"{self._name}-api-{api.split('.', 1)[0]}",
                project=self.project,
                service=api,
                disable_on_destroy=False,
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )
            for api in apis
        ]

    def direct_record(
        self, name: str, hostname: str, endpoint: pulumi.Input[str], ttl: int
    ) -> pulumi.Resource:
        """``hostname`` -> one load balancer (a CNAME to a hostname, an A record to an IP)."""
        value = pulumi.Output.from_input(endpoint).apply(lambda v: v.strip().rstrip("."))
        record_type = value.apply(record_type_for)
        return gcp.dns.RecordSet(
            name,
            managed_zone=self.zone_name,
            name=f"{hostname}.",
            type=record_type,
            ttl=ttl,
            rrdatas=[
                pulumi.Output.all(record_type, value).apply(
                    lambda v: f"{v[1]}." if v[0] == "CNAME" else v[1]
                )
            ],
            opts=self._child,
        )

    def certificate_solver(self, footprint: CloudFootprint) -> CloudDnsSolver:
        """cert-manager on any cluster: a service account that may edit this zone only.

        GKE binds cert-manager's ServiceAccount to it through GKE Workload
        Identity; another cluster federates its OIDC issuer through a
        workload identity pool (see :meth:`_federate`).
        """
        account = self._challenge_account()
        if isinstance(footprint.outputs, GcpOutputs):
            pool = footprint.outputs.workload_pool
            gcp.serviceaccount.IAMMember(
                f"{self._name}-gcp-dns01-workload-identity",
                service_account_id=account.name,
                role="roles/iam.workloadIdentityUser",
                member=pulumi.Output.concat(
                    "serviceAccount:", pool, f"[{CERT_MANAGER_NAMESPACE}/cert-manager]"
                ),
                opts=self._child,
            )
            return CloudDnsSolver(
                project=self.project,
                service_account_email=account.email,
                hosted_zone_name=self.zone_name,
            )
        audience, credential_config = self._federate(footprint, account)
        return CloudDnsSolver(
            project=self.project,
            service_account_email=account.email,
            hosted_zone_name=self.zone_name,
            credential_config=credential_config,
            token_audience=audience,
        )

    def _challenge_account(self) -> gcp.serviceaccount.Account:
        """The service account every cluster's cert-manager acts as (created once)."""
        if self._account is not None:
            return self._account
        label = f"{self._name}-dns01"
        account = gcp.serviceaccount.Account(
            f"{label}-account",
            account_id=resource_name(self._name_prefix, "cert-manager", "service_account"),
            display_name="cert-manager DNS-01 challenges in the global zone",
            opts=self._child,
        )
        # Zone-level binding: the solver names the zone (hostedZoneName), so it
        # never needs to list the project's zones.
        gcp.dns.DnsManagedZoneIamMember(
            f"{label}-zone-admin",
            managed_zone=self.zone_name,
            role="roles/dns.admin",
            member=account.member,
            opts=self._child,
        )
        self._account = account
        return account

    def _federate(
        self, footprint: CloudFootprint, account: gcp.serviceaccount.Account
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """Workload Identity Federation for a cluster outside GCP: its issuer, cert-manager only.

        One pool for the zone; per cluster an OIDC provider trusting its issuer
        whose condition admits only ``cert-manager/cert-manager``; the pool's
        principal for that subject may impersonate the service account.
        Returns the token audience and the ``external_account`` credential file.
        """
        pool = self._federation_pool(account)
        provider_id = f"{footprint.cloud.value}-cluster"
        provider = gcp.iam.WorkloadIdentityPoolProvider(
            f"{self._name}-{footprint.cloud.value}-dns01-provider",
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=provider_id,
            display_name=f"{footprint.cloud.value} cluster issuer",
            attribute_mapping={"google.subject": "assertion.sub"},
            attribute_condition=f"assertion.sub == '{CERT_MANAGER_SUBJECT}'",
            oidc=gcp.iam.WorkloadIdentityPoolProviderOidcArgs(
                issuer_uri=footprint.oidc_issuer_url,
                allowed_audiences=[
                    self._project_number.apply(
                        lambda n: federation_audience(n, self._pool_id, provider_id, https=True)
                    )
                ],
            ),
            opts=self._child,
        )
        audience = pulumi.Output.all(self._project_number, provider.id).apply(
            lambda v: federation_audience(v[0], self._pool_id, provider_id, https=True)
        )
        config = pulumi.Output.all(self._project_number, account.email, provider.id).apply(
            lambda v: json.dumps(
                external_account_config(v[0], self._pool_id, provider_id, v[1]), sort_keys=True
            )
        )
        return audience, config

    def _federation_pool(self, account: gcp.serviceaccount.Account) -> gcp.iam.WorkloadIdentityPool:
        if self._pool is not None:
            return self._pool
        apis = self._enable(FEDERATION_APIS)
        self._project_number = gcp.organizations.get_project_output(
            project_id=self.project,
            opts=pulumi.InvokeOutputOptions(parent=self, provider=self.provider),
        ).number
        self._pool_id = resource_name(self._name_prefix, "dns01", "workload_identity_pool")
        pool = gcp.iam.WorkloadIdentityPool(
            f"{self._name}-dns01-pool",
            workload_identity_pool_id=self._pool_id,
            display_name="cert-manager of other clusters",
            description="OIDC issuers of the clusters outside GCP that answer DNS-01 here.",
            opts=pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=apis)),
        )
        gcp.serviceaccount.IAMMember(
            f"{self._name}-dns01-federated-user",
            service_account_id=account.name,
            role="roles/iam.workloadIdentityUser",
            member=pulumi.Output.all(self._project_number, pool.workload_identity_pool_id).apply(
                lambda v: federation_principal(v[0], v[1], CERT_MANAGER_SUBJECT)
            ),
            opts=self._child,
        )
        self._pool = pool
        return pool


def federation_audience(project_number: str, pool_id: str, provider_id: str, https: bool) -> str:
    """A workload identity pool provider's audience (``https:`` form: a token's ``aud``)."""
    path = (
        f"//iam.googleapis.com/projects/{project_number}/locations/global/"
        f"workloadIdentityPools/{pool_id}/providers/{provider_id}"
    )
    return f"https:{path}" if https else path


def federation_principal(project_number: str, pool_id: str, subject: str) -> str:
    """The IAM principal of one federated subject of a pool."""
    return (
        f"principal://iam.googleapis.com/projects/{project_number}/locations/global/"
        f"workloadIdentityPools/{pool_id}/subject/{subject}"
    )


def external_account_config(
    project_number: str, pool_id: str, provider_id: str, service_account_email: str
) -> dict[str, Any]:
    """The credential file Google's client libraries read to federate (no key inside).

    The projected token at ``GCP_TOKEN_DIR/token`` is exchanged at STS, then
    for the service account's access token ("Configure Workload Identity
    Federation with Kubernetes").
    """
    return {
        "type": "external_account",
        "audience": federation_audience(project_number, pool_id, provider_id, https=False),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": (
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
            f"{service_account_email}:generateAccessToken"
        ),
        "credential_source": {"file": f"{GCP_TOKEN_DIR}/token"},
    }


@dataclass
class CloudDnsGlobalEndpointArgs:
    """Inputs of :class:`CloudDnsGlobalEndpoint`: the config, one endpoint per cloud, the zone."""

    dns: DnsConfig
    endpoints: Sequence[CloudEndpoint]
    name_prefix: str
    zone: CloudDnsZone
    readiness_path: str = READINESS_PATH
    search_string: str = READINESS_SEARCH_STRING


class CloudDnsGlobalEndpoint(GlobalDnsBackend):
    """The global hostname on Cloud DNS routing policies (see the module docstring).

    Exposes the :class:`~infra.global_lb.common.GlobalDnsBackend` attributes;
    every cloud's ``health_check_ids`` entry is the one health check the policy
    runs against each endpoint.
    """

    dns_provider = DnsProvider.GCP

    def __init__(
        self,
        name: str,
        args: CloudDnsGlobalEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:global:CloudDnsGlobalEndpoint", name, None, opts)
        config = args.dns
        zone = args.zone
        by_cloud = _endpoints_by_cloud(args.endpoints)
        clouds = list(by_cloud)
        self.routing_policy = config.routing_policy
        weighted = config.routing_policy == RoutingPolicy.WEIGHTED
        self.weights = routing_weights(config, clouds) if weighted else {}
        self.locations = (
            {}
            if weighted
            else {c: nearest_region(Cloud.GCP, c, by_cloud[c].region) for c in clouds}
        )
        hostnames = {c: cloud_hostname(config.hostname, c, config.domain) for c in clouds}
        global_name = f"{config.hostname}.{config.domain}"
        child = pulumi.ResourceOptions(parent=self, provider=zone.provider, depends_on=zone.apis)

        health_check = self._health_check(name, args, global_name, child)
        self.cloud_endpoints: dict[Cloud, pulumi.Output[str]] = {}
        self.cloud_urls: dict[Cloud, pulumi.Output[str]] = {}
        self.health_check_ids: dict[Cloud, pulumi.Output[str]] = {}
        addresses: dict[Cloud, pulumi.Output[str]] = {}
        for cloud in clouds:
            endpoint = pulumi.Output.from_input(by_cloud[cloud].endpoint)
            addresses[cloud] = endpoint.apply(functools.partial(ipv4_endpoint, cloud))
            self._direct_record(name, args, cloud, hostnames[cloud], addresses[cloud], child)
            self.cloud_endpoints[cloud] = endpoint
            self.cloud_urls[cloud] = pulumi.Output.from_input(f"https://{hostnames[cloud]}")
            self.health_check_ids[cloud] = health_check.id
        self._routed_record(name, args, global_name, health_check, addresses, child)
        self.notification_channels = self._alerts(name, args, hostnames, child)

        self._publish(zone, global_name)
        self.register_outputs(
            {
                "globalHostname": self.global_hostname,
                "globalUrl": self.global_url,
                "routingPolicy": self.routing_policy.value,
                "cloudEndpoints": {c.value: v for c, v in self.cloud_endpoints.items()},
                "healthCheckIds": {c.value: v for c, v in self.health_check_ids.items()},
                "notificationChannels": self.notification_channels,
            }
        )

    # ------------------------------------------------------------------ parts

    def _health_check(
        self,
        name: str,
        args: CloudDnsGlobalEndpointArgs,
        global_name: str,
        child: pulumi.ResourceOptions,
    ) -> gcp.compute.HealthCheck:
        """The one HTTPS readiness check the routing policy runs against every endpoint."""
        check = args.dns.health_check
        return gcp.compute.HealthCheck(
            f"{name}-health-check",
            name=resource_name(args.name_prefix, "gateway-ready", "health_check"),
            description=f"Readiness of every cloud's gateway behind {global_name}.",
            source_regions=list(HEALTH_CHECK_REGIONS),
            check_interval_sec=check.interval_seconds,
            timeout_sec=10,
            healthy_threshold=check.failure_threshold,
            unhealthy_threshold=check.failure_threshold,
            https_health_check=gcp.compute.HealthCheckHttpsHealthCheckArgs(
                port=HTTPS_PORT,
                request_path=args.readiness_path,
                host=global_name,
                response=args.search_string,
            ),
            log_config=gcp.compute.HealthCheckLogConfigArgs(enable=True),
            opts=child,
        )

    def _direct_record(
        self,
        name: str,
        args: CloudDnsGlobalEndpointArgs,
        cloud: Cloud,
        hostname: str,
        address: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> gcp.dns.RecordSet:
        """The cloud's own name: an A record of its load balancer's IPv4 address."""
        return gcp.dns.RecordSet(
            f"{name}-{cloud.value}-direct",
            managed_zone=args.zone.zone_name,
            name=f"{hostname}.",
            type="A",
            ttl=args.dns.ttl_seconds,
            rrdatas=[address],
            opts=child,
        )

    def _routed_record(
        self,
        name: str,
        args: CloudDnsGlobalEndpointArgs,
        global_name: str,
        health_check: gcp.compute.HealthCheck,
        addresses: Mapping[Cloud, pulumi.Output[str]],
        child: pulumi.ResourceOptions,
    ) -> None:
        """The global name: a health-checked geo (latency) or weighted routing policy."""
        config = args.dns
        clouds = list(addresses)
        weighted = config.routing_policy == RoutingPolicy.WEIGHTED

        def targets(cloud: Cloud) -> dict:
            return {"external_endpoints": [addresses[cloud]]}

        if weighted:
            policy = gcp.dns.RecordSetRoutingPolicyArgs(
                health_check=health_check.id,
                wrrs=[
                    gcp.dns.RecordSetRoutingPolicyWrrArgs(
                        weight=float(self.weights[cloud]),
                        health_checked_targets=gcp.dns.RecordSetRoutingPolicyWrrHealthCheckedTargetsArgs(
                            **targets(cloud)
                        ),
                    )
                    for cloud in clouds
                ],
            )
        else:
            policy = gcp.dns.RecordSetRoutingPolicyArgs(
                health_check=health_check.id,
                geos=[
                    gcp.dns.RecordSetRoutingPolicyGeoArgs(
                        location=self.locations[cloud],
                        health_checked_targets=gcp.dns.RecordSetRoutingPolicyGeoHealthCheckedTargetsArgs(
                            **targets(cloud)
                        ),
                    )
                    for cloud in clouds
                ],
            )
        gcp.dns.RecordSet(
            f"{name}-routed",
            managed_zone=args.zone.zone_name,
            name=f"{global_name}.",
            type="A",
            ttl=config.ttl_seconds,
            routing_policy=policy,
            opts=child,
        )

    def _alerts(
        self,
        name: str,
        args: CloudDnsGlobalEndpointArgs,
        hostnames: dict[Cloud, str],
        child: pulumi.ResourceOptions,
    ) -> list[pulumi.Output[str]]:
        """An uptime check and an alert policy per cloud, notifying the configured channels."""
        alerts = args.dns.alerts
        channels: list[pulumi.Output[str]] = [
            pulumi.Output.from_input(c) for c in alerts.notification_channels
        ]
        channels += [
            gcp.monitoring.NotificationChannel(
                f"{name}-email-{index}",
                display_name=f"{args.name_prefix} gateway on-call ({email})",
                type="email",
                labels={"email_address": email},
                opts=child,
            ).name
            for index, email in enumerate(alerts.emails)
        ]
        for cloud, hostname in hostnames.items():
            uptime = gcp.monitoring.UptimeCheckConfig(
                f"{name}-{cloud.value}-uptime",
                display_name=f"{args.name_prefix} gateway {cloud.value} ready",
                timeout="10s",
                period=UPTIME_CHECK_PERIOD,
                http_check=gcp.monitoring.UptimeCheckConfigHttpCheckArgs(
                    path=args.readiness_path,
                    port=HTTPS_PORT,
                    use_ssl=True,
                    validate_ssl=True,
                    request_method="GET",
                ),
                monitored_resource=gcp.monitoring.UptimeCheckConfigMonitoredResourceArgs(
                    type="uptime_url",
                    labels={"project_id": args.zone.project, "host": hostname},
                ),
                content_matchers=[
                    gcp.monitoring.UptimeCheckConfigContentMatcherArgs(
                        content=args.search_string, matcher="CONTAINS_STRING"
                    )
                ],
                opts=child,
            )
            gcp.monitoring.AlertPolicy(
                f"{name}-{cloud.value}-unhealthy",
                display_name=f"{args.name_prefix} gateway {cloud.value} unhealthy",
                combiner="OR",
                severity="CRITICAL",
                documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                    content=(
                        f"The {cloud.value} gateway fails its readiness check "
                        f"(https://{hostname}{args.readiness_path}); Cloud DNS no longer "
                        "answers with it."
                    ),
                    mime_type="text/markdown",
                ),
                conditions=[
                    gcp.monitoring.AlertPolicyConditionArgs(
                        display_name=f"{cloud.value} readiness check failing",
                        condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                            filter=uptime.uptime_check_id.apply(uptime_alert_filter),
                            comparison="COMPARISON_GT",
                            threshold_value=1,
                            duration="60s",
                            aggregations=[
                                gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                                    alignment_period="1200s",
                                    per_series_aligner="ALIGN_NEXT_OLDER",
                                    cross_series_reducer="REDUCE_COUNT_FALSE",
                                    group_by_fields=["resource.label.*"],
                                )
                            ],
                            trigger=gcp.monitoring.AlertPolicyConditionConditionThresholdTriggerArgs(
                                count=1
                            ),
                        ),
                    )
                ],
                notification_channels=channels,
                opts=child,
            )
        return channels
