"""The global name on Azure: an Azure DNS zone and a Traffic Manager profile.

* :class:`AzureDnsZone`, built first: a resource group for the global layer,
  the public zone (signed with DNSSEC when ``dns.dnssec``; the DS record is an
  output) and the identity every cluster's cert-manager uses to answer DNS-01
  challenges: a user-assigned identity with a custom role that may only
  change TXT records in this zone, and a federated credential per cluster
  (AKS, EKS or GKE issuer) for ``cert-manager/cert-manager`` (audience
  ``api://AzureADTokenExchange``).
* :class:`TrafficManagerGlobalEndpoint`: per cloud a direct record
  ``<hostname>-<cloud>`` (CNAME or A) and an external Traffic Manager
  endpoint on it; one profile that probes each over HTTPS on the readiness
  path and answers with the lowest-latency (``Performance``) or weighted healthy
  one; the global name ``<hostname>`` a CNAME to the profile; an Azure Monitor
  alert per cloud on the endpoint's probe state, notifying the Action Group.

Traffic Manager facts this encodes ("Traffic Manager endpoint monitoring",
"routing methods"): probes every 10 or 30 s from Azure's probing agents; HTTPS
probes do not validate certificates and match status codes, not the body (the
gateway answers 503 while not ready); an endpoint is degraded after
``toleratedNumberOfFailures`` + 1 failed probes; weights are 1-1000, so a
weight of 0 disables the endpoint (draining it); performance routing needs the
Azure region closest to each external endpoint. Azure DNS keeps no query log
for public zones (the config refuses ``queryLogging: true``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure_native
from pulumi_azure_native import (
    authorization,
    dns,
    managedidentity,
    monitor,
    resources,
    trafficmanager,
)

from infra.config import Cloud, DnsConfig, DnsProvider, RoutingPolicy
from infra.contracts.footprint import CloudFootprint
from infra.decisions import k8s as decisions
from infra.decisions.azure import azure_name
from infra.global_lb.common import (
    HTTPS_PORT,
    READINESS_PATH,
    CloudEndpoint,
    GlobalDnsBackend,
    _endpoints_by_cloud,
    cloud_hostname,
    record_type_for,
    routing_weights,
)
from infra.global_lb.regions import nearest_region
from infra.k8s.edge import AZURE_TOKEN_AUDIENCE, CERT_MANAGER_SUBJECT, AzureDnsSolver

PROBE_STATE_METRIC = "ProbeAgentCurrentEndpointStateByProfileResourceId"
"""Traffic Manager's per-endpoint probe state (1 up, 0 down), dimension ``EndpointName``."""
TXT_CHALLENGE_ACTIONS = (
    "Microsoft.Network/dnszones/read",
    "Microsoft.Network/dnszones/TXT/read",
    "Microsoft.Network/dnszones/TXT/write",
    "Microsoft.Network/dnszones/TXT/delete",
)
"""What cert-manager may do in the zone: read it, manage TXT records (no A, CNAME or NS)."""


def probe_timeout(interval_seconds: int) -> int:
    """The probe timeout Traffic Manager allows for an interval: 5-10 s at 30, 5-9 s at 10."""
    return 10 if interval_seconds >= 30 else 9


def endpoint_weight(weight: int) -> tuple[int, trafficmanager.EndpointStatus]:
    """Traffic Manager weight and status for a configured weight (0 drains: disabled, weight 1)."""
    if weight <= 0:
        return 1, trafficmanager.EndpointStatus.DISABLED
    return weight, trafficmanager.EndpointStatus.ENABLED


def profile_relative_name(name_prefix: str, hostname: str, domain: str) -> str:
    """The profile's label in ``trafficmanager.net`` (global namespace): prefix, host, domain hash."""
    return decisions.dns_label(name_prefix, hostname, decisions.content_hash(domain, length=6))


def ds_record(signing_keys: Sequence[dns.outputs.SigningKeyResponse] | None) -> str:
    """The DS record of the zone's key-signing key (flags 257), SHA-256 digest preferred."""
    for key in signing_keys or []:
        if key.flags != 257:
            continue
        infos = sorted(key.delegation_signer_info or [], key=lambda i: i.digest_algorithm_type != 2)
        if infos:
            return infos[0].record or ""
    return ""


class AzureDnsZone(pulumi.ComponentResource):
    """The public zone in Azure DNS, its DNSSEC signing and DNS-01 access for the AKS cluster.

    Owns its azure-native provider and resource group. Outputs: ``zone_id``,
    ``zone_name``, ``resource_group_name``, ``name_servers``,
    ``dnssec_ds_record`` (None when unsigned).
    """

    dns_provider = DnsProvider.AZURE

    def __init__(
        self,
        name: str,
        config: DnsConfig,
        name_prefix: str,
        location: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:global:AzureDnsZone", name, None, opts)
        self._name = name
        self._name_prefix = name_prefix
        self._location = location
        self._domain = config.domain
        self._identity: managedidentity.UserAssignedIdentity | None = None
        self.provider = azure_native.Provider(
            f"{name}-provider", location=location, opts=pulumi.ResourceOptions(parent=self)
        )
        self._child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self._client = authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=self.provider)
        )
        self.resource_group = resources.ResourceGroup(
            f"{name}-group",
            resource_group_name=azure_name("resource_group", "rg", name_prefix, "dns"),
            location=location,
            opts=self._child,
        )
        self.resource_group_name = self.resource_group.name
        zone = dns.Zone(
            f"{name}-zone",
            zone_name=config.domain,
            resource_group_name=self.resource_group.name,
            location="global",
            zone_type=dns.ZoneType.PUBLIC,
            opts=self._child,
        )
        self.zone = zone
        self.zone_id = zone.id
        self.zone_name = zone.name
        self.name_servers = zone.name_servers.apply(lambda servers: list(servers or []))
        self.dnssec_ds_record: pulumi.Output[str] | None = None
        if config.dnssec:
            signing = dns.DnssecConfig(
                f"{name}-dnssec",
                resource_group_name=self.resource_group.name,
                zone_name=zone.name,
                opts=self._child,
            )
            self.dnssec_ds_record = signing.signing_keys.apply(ds_record)
        self.register_outputs(
            {
                "zoneId": self.zone_id,
                "nameServers": self.name_servers,
                "dnssecDsRecord": self.dnssec_ds_record,
            }
        )

    def direct_record(
        self, name: str, hostname: str, endpoint: pulumi.Input[str], ttl: int
    ) -> pulumi.Resource:
        """``hostname`` -> one load balancer (a CNAME to a hostname, an A record to an IP)."""
        value = pulumi.Output.from_input(endpoint).apply(lambda v: v.strip().rstrip("."))
        record_type = value.apply(record_type_for)
        return dns.RecordSet(
            name,
            zone_name=self.zone_name,
            resource_group_name=self.resource_group_name,
            relative_record_set_name=hostname.removesuffix(f".{self._domain}"),
            record_type=record_type,
            ttl=ttl,
            cname_record=pulumi.Output.all(record_type, value).apply(
                lambda v: dns.CnameRecordArgs(cname=v[1]) if v[0] == "CNAME" else None
            ),
            a_records=pulumi.Output.all(record_type, value).apply(
                lambda v: [dns.ARecordArgs(ipv4_address=v[1])] if v[0] == "A" else None
            ),
            opts=pulumi.ResourceOptions.merge(
                self._child, pulumi.ResourceOptions(delete_before_replace=True)
            ),
        )

    def certificate_solver(self, footprint: CloudFootprint) -> AzureDnsSolver:
        """cert-manager on any cluster: one identity for the zone, a federated credential per cluster.

        The identity may only read the zone and manage its TXT records (a
        custom role on the zone). Each cluster's OIDC issuer gets a federated
        credential for ``cert-manager/cert-manager``; a cluster outside Azure
        gets the token and variables AKS's webhook would inject (see
        :class:`~infra.k8s.edge.AzureDnsSolver`).
        """
        identity = self._challenge_identity()
        managedidentity.FederatedIdentityCredential(
            f"{self._name}-{footprint.cloud.value}-dns01-federation",
            federated_identity_credential_resource_name=f"cert-manager-{footprint.cloud.value}",
            resource_name_=identity.name,
            resource_group_name=self.resource_group.name,
            issuer=footprint.oidc_issuer_url,
            subject=CERT_MANAGER_SUBJECT,
            audiences=[AZURE_TOKEN_AUDIENCE],
            opts=self._child,
        )
        return AzureDnsSolver(
            subscription_id=self._client.subscription_id,
            resource_group_name=self.resource_group.name,
            hosted_zone_name=self.zone_name,
            client_id=identity.client_id,
            tenant_id=None if footprint.cloud == Cloud.AZURE else self._client.tenant_id,
        )

    def _challenge_identity(self) -> managedidentity.UserAssignedIdentity:
        """The managed identity every cluster's cert-manager federates to (created once)."""
        if self._identity is not None:
            return self._identity
        label = f"{self._name}-dns01"
        identity = managedidentity.UserAssignedIdentity(
            f"{label}-identity",
            resource_name_=azure_name(
                "user_assigned_identity", "id", self._name_prefix, "cert-manager"
            ),
            resource_group_name=self.resource_group.name,
            location=self._location,
            opts=self._child,
        )
        role = authorization.RoleDefinition(
            f"{label}-role",
            # Role definitions are named by GUID: a stable one per stack and zone.
            role_definition_id=str(
                uuid.uuid5(uuid.NAMESPACE_DNS, f"{self._name_prefix}.acme-dns01.{self._domain}")
            ),
            role_name=f"{self._name_prefix} ACME DNS-01 TXT records",
            description="cert-manager: create and delete TXT challenge records in the zone.",
            role_type="CustomRole",
            scope=self.zone_id,
            assignable_scopes=[self.zone_id],
            permissions=[authorization.PermissionArgs(actions=list(TXT_CHALLENGE_ACTIONS))],
            opts=self._child,
        )
        authorization.RoleAssignment(
            f"{label}-txt-records",
            principal_id=identity.principal_id,
            principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=role.id,
            scope=self.zone_id,
            opts=self._child,
        )
        self._identity = identity
        return identity


@dataclass
class TrafficManagerGlobalEndpointArgs:
    """Inputs of :class:`TrafficManagerGlobalEndpoint`: the config, one endpoint per cloud, the zone."""

    dns: DnsConfig
    endpoints: Sequence[CloudEndpoint]
    name_prefix: str
    zone: AzureDnsZone
    readiness_path: str = READINESS_PATH


class TrafficManagerGlobalEndpoint(GlobalDnsBackend):
    """The global hostname on Traffic Manager (see the module docstring).

    Exposes the :class:`~infra.global_lb.common.GlobalDnsBackend` attributes;
    ``health_check_ids`` are the Traffic Manager endpoint ids (each is probed).
    """

    dns_provider = DnsProvider.AZURE

    def __init__(
        self,
        name: str,
        args: TrafficManagerGlobalEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:global:TrafficManagerGlobalEndpoint", name, None, opts)
        config = args.dns
        by_cloud = _endpoints_by_cloud(args.endpoints)
        clouds = list(by_cloud)
        self.routing_policy = config.routing_policy
        latency = config.routing_policy == RoutingPolicy.LATENCY
        self.weights = routing_weights(config, clouds) if not latency else {}
        self.locations = {c: nearest_region(Cloud.AZURE, c, by_cloud[c].region) for c in clouds}
        hostnames = {c: cloud_hostname(config.hostname, c, config.domain) for c in clouds}
        global_name = f"{config.hostname}.{config.domain}"
        child = pulumi.ResourceOptions(parent=self, provider=args.zone.provider)

        profile = self._profile(name, args, latency, child)
        self.profile = profile
        self.cloud_endpoints: dict[Cloud, pulumi.Output[str]] = {}
        self.cloud_urls: dict[Cloud, pulumi.Output[str]] = {}
        self.health_check_ids: dict[Cloud, pulumi.Output[str]] = {}
        endpoint_names: dict[Cloud, str] = {}
        for cloud in clouds:
            endpoint = pulumi.Output.from_input(by_cloud[cloud].endpoint)
            direct = self._direct_record(name, args, cloud, hostnames[cloud], endpoint, child)
            endpoint_names[cloud] = cloud.value
            tm_endpoint = self._probed_endpoint(
                name,
                args,
                cloud,
                hostnames[cloud],
                profile,
                latency,
                pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[direct])),
            )
            self.cloud_endpoints[cloud] = endpoint
            self.cloud_urls[cloud] = pulumi.Output.from_input(f"https://{hostnames[cloud]}")
            self.health_check_ids[cloud] = tm_endpoint.id

        fqdn = profile.dns_config.apply(lambda c: (c.fqdn if c else None) or "")
        self._routed_record(name, args, fqdn, child)
        self.action_group_id = self._alerts(name, args, profile, endpoint_names, child)

        self._publish(args.zone, global_name)
        self.register_outputs(
            {
                "globalHostname": self.global_hostname,
                "globalUrl": self.global_url,
                "profileFqdn": fqdn,
                "routingPolicy": self.routing_policy.value,
                "cloudEndpoints": {c.value: v for c, v in self.cloud_endpoints.items()},
                "healthCheckIds": {c.value: v for c, v in self.health_check_ids.items()},
                "actionGroupId": self.action_group_id,
            }
        )

    # ------------------------------------------------------------------ parts

    def _profile(
        self,
        name: str,
        args: TrafficManagerGlobalEndpointArgs,
        latency: bool,
        child: pulumi.ResourceOptions,
    ) -> trafficmanager.Profile:
        """The Traffic Manager profile: performance or weighted routing, the HTTPS probe."""
        config = args.dns
        return trafficmanager.Profile(
            f"{name}-profile",
            profile_name=f"{args.name_prefix}-gateway",
            resource_group_name=args.zone.resource_group_name,
            location="global",
            profile_status=trafficmanager.ProfileStatus.ENABLED,
            traffic_routing_method=(
                trafficmanager.TrafficRoutingMethod.PERFORMANCE
                if latency
                else trafficmanager.TrafficRoutingMethod.WEIGHTED
            ),
            dns_config=trafficmanager.DnsConfigArgs(
                relative_name=profile_relative_name(
                    args.name_prefix, config.hostname, config.domain
                ),
                ttl=config.ttl_seconds,
            ),
            monitor_config=trafficmanager.MonitorConfigArgs(
                protocol=trafficmanager.MonitorProtocol.HTTPS,
                port=HTTPS_PORT,
                path=args.readiness_path,
                interval_in_seconds=config.health_check.interval_seconds,
                timeout_in_seconds=probe_timeout(config.health_check.interval_seconds),
                tolerated_number_of_failures=config.health_check.failure_threshold - 1,
                # Ready answers 200; 503 (not ready) and anything else count as down.
                expected_status_code_ranges=[
                    trafficmanager.MonitorConfigExpectedStatusCodeRangesItemArgs(min=200, max=200)
                ],
            ),
            opts=child,
        )

    def _direct_record(
        self,
        name: str,
        args: TrafficManagerGlobalEndpointArgs,
        cloud: Cloud,
        hostname: str,
        endpoint: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> dns.RecordSet:
        """The cloud's own name (CNAME, A or AAAA after the endpoint) in the zone."""
        zone = args.zone
        label = hostname.split(".", 1)[0]
        record_type = endpoint.apply(functools.partial(record_type_for, cloud=cloud))
        value = endpoint.apply(lambda v: v.strip().rstrip("."))
        return dns.RecordSet(
            f"{name}-{cloud.value}-direct",
            zone_name=zone.zone_name,
            resource_group_name=zone.resource_group_name,
            relative_record_set_name=label,
            record_type=record_type,
            ttl=args.dns.ttl_seconds,
            cname_record=pulumi.Output.all(record_type, value).apply(
                lambda v: dns.CnameRecordArgs(cname=v[1]) if v[0] == "CNAME" else None
            ),
            a_records=pulumi.Output.all(record_type, value).apply(
                lambda v: [dns.ARecordArgs(ipv4_address=v[1])] if v[0] == "A" else None
            ),
            aaaa_records=pulumi.Output.all(record_type, value).apply(
                lambda v: [dns.AaaaRecordArgs(ipv6_address=v[1])] if v[0] == "AAAA" else None
            ),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(delete_before_replace=True)
            ),
        )

    def _probed_endpoint(
        self,
        name: str,
        args: TrafficManagerGlobalEndpointArgs,
        cloud: Cloud,
        hostname: str,
        profile: trafficmanager.Profile,
        latency: bool,
        opts: pulumi.ResourceOptions,
    ) -> trafficmanager.Endpoint:
        """The cloud's profile endpoint, probed on its own name, with its location or weight."""
        weight, status = endpoint_weight(self.weights.get(cloud, 1))
        return trafficmanager.Endpoint(
            f"{name}-{cloud.value}",
            endpoint_name=cloud.value,
            endpoint_type="ExternalEndpoints",
            profile_name=profile.name,
            resource_group_name=args.zone.resource_group_name,
            target=hostname,
            endpoint_status=status,
            endpoint_location=self.locations[cloud] if latency else None,
            weight=weight if not latency else None,
            # The probe's Host header: the route answers the per-cloud name.
            custom_headers=[
                trafficmanager.EndpointPropertiesCustomHeadersItemArgs(name="host", value=hostname)
            ],
            opts=opts,
        )

    def _routed_record(
        self,
        name: str,
        args: TrafficManagerGlobalEndpointArgs,
        fqdn: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> None:
        """The global name: a CNAME to the profile's ``trafficmanager.net`` name."""
        config = args.dns
        zone = args.zone
        dns.RecordSet(
            f"{name}-routed",
            zone_name=zone.zone_name,
            resource_group_name=zone.resource_group_name,
            relative_record_set_name=config.hostname,
            record_type="CNAME",
            ttl=config.ttl_seconds,
            cname_record=dns.CnameRecordArgs(cname=fqdn),
            opts=child,
        )

    def _alerts(
        self,
        name: str,
        args: TrafficManagerGlobalEndpointArgs,
        profile: trafficmanager.Profile,
        endpoint_names: dict[Cloud, str],
        child: pulumi.ResourceOptions,
    ) -> pulumi.Output[str] | None:
        """One metric alert per cloud on its probe state, to ``alerts.actionGroupId`` or a new group."""
        alerts = args.dns.alerts
        if alerts.action_group_id:
            group_id: pulumi.Output[str] | None = pulumi.Output.from_input(alerts.action_group_id)
        elif alerts.emails:
            group_id = monitor.ActionGroup(
                f"{name}-alerts",
                action_group_name=f"{args.name_prefix}-gateway-alerts",
                group_short_name="aigw-alerts",
                resource_group_name=args.zone.resource_group_name,
                location="Global",
                enabled=True,
                email_receivers=[
                    monitor.MicrosoftCommonEmailReceiverArgs(
                        name=f"email-{index}", email_address=email, use_common_alert_schema=True
                    )
                    for index, email in enumerate(alerts.emails)
                ],
                opts=child,
            ).id
        else:
            group_id = None
        for cloud, endpoint_name in endpoint_names.items():
            monitor.MetricAlert(
                f"{name}-{cloud.value}-unhealthy",
                rule_name=f"{args.name_prefix}-gateway-{cloud.value}-unhealthy",
                resource_group_name=args.zone.resource_group_name,
                location="global",
                description=(
                    f"The {cloud.value} gateway fails Traffic Manager's readiness probe; the "
                    "global name no longer sends traffic there."
                ),
                severity=1,
                enabled=True,
                scopes=[profile.id],
                evaluation_frequency="PT1M",
                window_size="PT5M",
                auto_mitigate=True,
                criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                    odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                    all_of=[
                        monitor.MetricCriteriaArgs(
                            criterion_type="StaticThresholdCriterion",
                            name="probe-state",
                            metric_name=PROBE_STATE_METRIC,
                            metric_namespace="Microsoft.Network/trafficManagerProfiles",
                            dimensions=[
                                monitor.MetricDimensionArgs(
                                    name="EndpointName", operator="Include", values=[endpoint_name]
                                )
                            ],
                            # 1 while up: a whole window below 1 is down.
                            operator=monitor.Operator.LESS_THAN,
                            threshold=1,
                            time_aggregation=monitor.AggregationTypeEnum.MAXIMUM,
                        )
                    ],
                ),
                actions=(
                    [monitor.MetricAlertActionArgs(action_group_id=group_id)]
                    if group_id is not None
                    else []
                ),
                opts=child,
            )
        return group_id
