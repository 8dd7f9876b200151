"""One global hostname in front of every enabled cloud's gateway, health-checked.

Clients use ``https://<hostname>.<domain>``. Behind it, each enabled cloud has:

* a per-cloud name ``<hostname>-<cloud>.<domain>`` pointing at that cloud's
  gateway load balancer (CNAME for a load-balancer hostname, A/AAAA for an IP),
  for direct access and for the health check;
* an HTTPS health check on the gateway's readiness path, matching a string in
  the body, so a cloud whose gateway is up but not ready counts as down;
* one record of the global name, with its own set identifier, carrying that
  health check: an unhealthy cloud leaves the answer set by itself;
* a CloudWatch alarm on the health check, notifying the stack's alert
  destination (``ai-gateway:dns.alerts``: an SNS topic it creates, encrypted
  with its own KMS key, with e-mail subscriptions; or an existing topic).

The zone (:class:`Route53Zone`) is signed with DNSSEC (a key-signing key
backed by an asymmetric KMS key; the DS record is an output for the
registrar) and logs every query to CloudWatch Logs, where enabled.

How the global name spreads traffic comes from ``ai-gateway:dns.routingPolicy``:
``latency`` (each cloud's record labelled with the AWS region nearest to it, see
:func:`assign_latency_regions`) or ``weighted`` (``ai-gateway:dns.weights``; a
weight of 0 drains a cloud).

The component is one implementation of
:class:`~infra.global_lb.common.GlobalDnsBackend`; :mod:`.azure` and
:mod:`.gcp` are the others.

Route 53 is global, but its health-check metrics exist only in us-east-1 and an
alarm can only notify a topic in its own region: the whole layer therefore runs
on one explicit ``aws.Provider`` in us-east-1, whatever the AWS footprint's
region is.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.aws.identity import STS_AUDIENCE, web_identity_trust_policy
from infra.config import Cloud, DnsConfig, DnsProvider, RoutingPolicy
from infra.contracts.footprint import AwsOutputs, CloudFootprint
from infra.decisions.aws import aws_name
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
from infra.global_lb.regions import assign_latency_regions, nearest_aws_region
from infra.k8s.edge import ROUTE53_SOLVER_SUBJECT, Route53Solver

GLOBAL_REGION = "us-east-1"
"""Where Route 53 publishes health-check metrics, so where alarms and their topic live."""

FAILURE_THRESHOLD = 3
"""Consecutive failed checks before a cloud is unhealthy (and consecutive passes to recover).

With the 30-second interval a dead cloud leaves the answer set after about 90
seconds plus the record TTL; 3 rides out a single slow response or a rolling restart.
"""

REQUEST_INTERVAL_SECONDS = 30
"""Seconds between checks from each checker. Route 53 allows 10 or 30; 10 costs extra."""

RECORD_TTL_SECONDS = 60
"""Default TTL of the records (``ai-gateway:dns.ttlSeconds``): Route 53 advises 60 s or less."""

QUERY_LOG_RETENTION_DAYS = 365
"""Default days the zone's query log is kept; the stack passes ``aws.logRetentionDays``
(30 in dev, 90 in staging, 365 in prod, like the other CloudWatch logs): a production
log is kept a year for an investigation (the pack's ``aws-cloudwatch-loggroup-retention``)."""

HEALTH_CHECKER_REGIONS: tuple[str, ...] = ("us-east-1", "eu-west-1", "ap-southeast-1")
"""Regions Route 53 checks from: three continents (the minimum Route 53 accepts is three),
so one region's network trouble cannot fail a healthy cloud, with less probe traffic than all eight."""

VALID_HEALTH_CHECKER_REGIONS = frozenset(
    {
        "us-east-1",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "sa-east-1",
    }
)
"""The regions Route 53 runs health checkers in."""


def health_checker_regions(regions: Sequence[str] = HEALTH_CHECKER_REGIONS) -> list[str]:
    """Validate the Route 53 health-checker regions: at least three, each a checker region."""
    unknown = sorted(set(regions) - VALID_HEALTH_CHECKER_REGIONS)
    if unknown:
        raise GlobalDnsError(
            f"health checker regions: {', '.join(unknown)} not supported; Route 53 checks "
            f"only from {', '.join(sorted(VALID_HEALTH_CHECKER_REGIONS))}"
        )
    distinct = list(dict.fromkeys(regions))
    if len(distinct) < 3:
        raise GlobalDnsError(
            f"health checker regions: {distinct} has {len(distinct)}; Route 53 needs at least "
            "three distinct regions"
        )
    return distinct


def health_check_timing(failure_threshold: int, request_interval: int) -> tuple[int, int]:
    """Validate how often Route 53 checks (10 or 30 s) and how many results flip health (1-10)."""
    if request_interval not in (10, 30):
        raise GlobalDnsError(
            f"health check request_interval: {request_interval} is not allowed; Route 53 checks "
            "every 10 or 30 seconds (30 unless fast failover is worth the extra cost)"
        )
    if not 1 <= failure_threshold <= 10:
        raise GlobalDnsError(
            f"health check failure_threshold: {failure_threshold} is not allowed; use an "
            "integer from 1 to 10"
        )
    return failure_threshold, request_interval


# -------------------------------------------------------- zone and DNS-01 access


def certificate_solver_policy(partition: str, zone_id: str) -> dict:
    """What cert-manager's DNS-01 solver may do in the zone: TXT challenge records only.

    ``ChangeResourceRecordSets`` is limited to TXT records named
    ``_acme-challenge.*``, so a compromised cluster cannot repoint the
    gateway's names; ``GetChange`` waits for propagation.
    """
    zone = f"arn:{partition}:route53:::hostedzone/{zone_id}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WaitForChanges",
                "Effect": "Allow",
                "Action": "route53:GetChange",
                "Resource": f"arn:{partition}:route53:::change/*",
            },
            {
                "Sid": "AcmeChallengeRecordsOnly",
                "Effect": "Allow",
                "Action": "route53:ChangeResourceRecordSets",
                "Resource": zone,
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
                    },
                    "ForAllValues:StringLike": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                            "_acme-challenge.*"
                        ]
                    },
                },
            },
            {
                "Sid": "ReadZoneRecords",
                "Effect": "Allow",
                "Action": "route53:ListResourceRecordSets",
                "Resource": zone,
            },
        ],
    }


class Route53Zone(pulumi.ComponentResource):
    """The hosted zone of the global names, and DNS-01 access to it for every cluster.

    Built first, before the clusters' gateways: cert-manager on each cluster
    needs the zone id and a role to solve its challenges, and the records
    (:class:`Route53GlobalEndpoint`) need the clusters' load balancers. Owns
    the us-east-1 provider the whole global layer uses.

    When the stack creates the zone it also signs it (DNSSEC, ``dns.dnssec``)
    and logs its queries (``dns.queryLogging``, kept ``query_log_retention_days``:
    the stack's ``aws.logRetentionDays``); an existing zone (``hostedZoneId``) is
    left as its owner configured it.

    Outputs: ``zone_id``, ``name_servers`` (empty when ``hostedZoneId`` names
    an existing zone), ``dnssec_ds_record`` (None when unsigned) and
    ``provider``.
    """

    dns_provider = DnsProvider.ROUTE53
    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[list[str]]
    dnssec_ds_record: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        dns: DnsConfig,
        name_prefix: str,
        query_log_retention_days: int = QUERY_LOG_RETENTION_DAYS,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:global:DnsZone", name, None, opts)
        self._query_log_retention_days = query_log_retention_days
        self._name = name
        self._name_prefix = name_prefix
        self.provider = aws.Provider(
            f"{name}-{GLOBAL_REGION}",
            region=GLOBAL_REGION,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._on_aws = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.dnssec_ds_record = None
        if dns.hosted_zone_id:
            self.zone_id = pulumi.Output.from_input(dns.hosted_zone_id)
            self.name_servers = pulumi.Output.from_input([])
        else:
            zone = aws.route53.Zone(
                f"{name}-zone",
                name=dns.domain,
                comment=f"Global names of the AI gateway ({name_prefix})",
                opts=self._on_aws,
            )
            self.zone_id = zone.zone_id
            self.name_servers = zone.name_servers  # type: ignore[assignment]  # a list at runtime
            if dns.dnssec:
                self.dnssec_ds_record = self._sign(name, dns.domain)
            if dns.logs_queries:
                self._log_queries(name, dns.domain)
        self.register_outputs(
            {
                "zoneId": self.zone_id,
                "nameServers": self.name_servers,
                "dnssecDsRecord": self.dnssec_ds_record,
            }
        )

    def _account(self) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        invoke = pulumi.InvokeOutputOptions(parent=self, provider=self.provider)
        return (
            aws.get_partition_output(opts=invoke).partition,
            aws.get_caller_identity_output(opts=invoke).account_id,
        )

    def _sign(self, name: str, domain: str) -> pulumi.Output[str]:
        """DNSSEC: a key-signing key on an ECC P-256 KMS key in us-east-1, then signing on.

        Route 53 requires the KMS key in us-east-1, asymmetric ``ECC_NIST_P256``
        with ``SIGN_VERIFY``, and a key policy letting
        ``dnssec-route53.amazonaws.com`` use it ("Working with customer managed
        keys for DNSSEC"). Returns the DS record for the registrar.
        """
        partition, account = self._account()
        key = aws.kms.Key(
            f"{name}-dnssec",
            description=f"DNSSEC key-signing key of {domain} ({self._name_prefix})",
            customer_master_key_spec="ECC_NIST_P256",
            key_usage="SIGN_VERIFY",
            deletion_window_in_days=30,
            policy=pulumi.Output.all(partition, account).apply(
                lambda v: json.dumps(dnssec_key_policy(*v))
            ),
            opts=self._on_aws,
        )
        signing_key = aws.route53.KeySigningKey(
            f"{name}-dnssec",
            hosted_zone_id=self.zone_id,
            key_management_service_arn=key.arn,
            name=_ksk_name(self._name_prefix),
            status="ACTIVE",
            opts=self._on_aws,
        )
        aws.route53.HostedZoneDnsSec(
            f"{name}-dnssec",
            hosted_zone_id=signing_key.hosted_zone_id,
            signing_status="SIGNING",
            opts=pulumi.ResourceOptions.merge(
                self._on_aws, pulumi.ResourceOptions(depends_on=[signing_key])
            ),
        )
        return signing_key.ds_record

    def _log_queries(self, name: str, domain: str) -> None:
        """Public DNS query logging to an encrypted CloudWatch log group in us-east-1.

        Route 53 writes query logs only to a group in us-east-1 whose name
        starts with ``/aws/route53/``, through a resource policy for
        ``route53.amazonaws.com`` ("Public DNS query logging").
        """
        partition, account = self._account()
        group_name = f"/aws/route53/{domain}"
        key = aws.kms.Key(
            f"{name}-query-log",
            description=f"Encrypts the DNS query log of {domain} ({self._name_prefix})",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(partition, account).apply(
                lambda v: json.dumps(query_log_key_policy(v[0], v[1], group_name))
            ),
            opts=self._on_aws,
        )
        group = aws.cloudwatch.LogGroup(
            f"{name}-query-log",
            name=group_name,
            retention_in_days=self._query_log_retention_days,
            kms_key_id=key.arn,
            opts=self._on_aws,
        )
        policy = aws.cloudwatch.LogResourcePolicy(
            f"{name}-query-log",
            policy_name=f"{self._name_prefix}-route53-query-logs",
            policy_document=pulumi.Output.all(partition, account).apply(
                lambda v: json.dumps(query_log_resource_policy(v[0], v[1]))
            ),
            opts=self._on_aws,
        )
        aws.route53.QueryLog(
            f"{name}-query-log",
            zone_id=self.zone_id,
            cloudwatch_log_group_arn=group.arn,
            opts=pulumi.ResourceOptions.merge(
                self._on_aws, pulumi.ResourceOptions(depends_on=[policy])
            ),
        )

    def direct_record(
        self, name: str, hostname: str, endpoint: pulumi.Input[str], ttl: int
    ) -> pulumi.Resource:
        """``hostname`` -> one load balancer (a CNAME to a hostname, an A record to an IP)."""
        value = pulumi.Output.from_input(endpoint)
        return aws.route53.Record(
            name,
            zone_id=self.zone_id,
            name=hostname,
            type=value.apply(record_type_for),
            ttl=ttl,
            records=[value.apply(lambda v: v.strip().rstrip("."))],
            opts=pulumi.ResourceOptions.merge(
                self._on_aws, pulumi.ResourceOptions(delete_before_replace=True)
            ),
        )

    def certificate_solver(self, footprint: CloudFootprint) -> Route53Solver:
        """cert-manager's DNS-01 solver for a cluster of any cloud: a role of its own in this zone.

        EKS passes its IAM OIDC provider; an AKS or GKE issuer is registered
        as one (:meth:`certificate_solver_role`).
        """
        return Route53Solver(
            region=GLOBAL_REGION,
            hosted_zone_id=self.zone_id,
            role_arn=self.certificate_solver_role(
                footprint.cloud,
                footprint.oidc_issuer_url,
                footprint.outputs.oidc_provider_arn
                if isinstance(footprint.outputs, AwsOutputs)
                else None,
            ),
        )

    def certificate_solver_role(
        self,
        cloud: Cloud,
        oidc_issuer_url: pulumi.Input[str],
        oidc_provider_arn: pulumi.Input[str] | None = None,
    ) -> pulumi.Output[str]:
        """The IAM role cert-manager on ``cloud``'s cluster assumes to answer DNS-01 in the zone.

        Trusts exactly ``system:serviceaccount:cert-manager:cert-manager-route53``
        with audience ``sts.amazonaws.com`` from the cluster's OIDC issuer. EKS
        passes its existing IAM OIDC provider; for AKS and GKE the issuer is
        registered here as one. Returns the role's ARN.
        """
        label = f"{self._name}-{cloud.value}-dns01"
        if oidc_provider_arn is None:
            oidc_provider_arn = aws.iam.OpenIdConnectProvider(
                f"{label}-oidc",
                url=oidc_issuer_url,
                client_id_lists=[STS_AUDIENCE],
                opts=self._on_aws,
            ).arn
        role = aws.iam.Role(
            f"{label}-role",
            name=aws_name(self._name_prefix, f"{cloud.value}-cert-manager", "iam-role"),
            description=f"cert-manager on the {cloud.value} cluster: DNS-01 challenges only.",
            assume_role_policy=pulumi.Output.all(oidc_provider_arn, oidc_issuer_url).apply(
                lambda v: json.dumps(web_identity_trust_policy(v[0], v[1], ROUTE53_SOLVER_SUBJECT))
            ),
            opts=self._on_aws,
        )
        partition = aws.get_partition_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=self.provider)
        ).partition
        aws.iam.RolePolicy(
            f"{label}-policy",
            name="acme-dns01-challenges",
            role=role.id,
            policy=pulumi.Output.all(partition, self.zone_id).apply(
                lambda v: json.dumps(certificate_solver_policy(v[0], v[1]))
            ),
            opts=self._on_aws,
        )
        return role.arn


# ------------------------------------------------------------------- Route 53


@dataclass
class Route53GlobalEndpointArgs:
    """Inputs of :class:`Route53GlobalEndpoint`.

    ``endpoints`` lists one :class:`CloudEndpoint` per enabled cloud (one is
    enough: the global name then points at it alone, still health-checked).
    ``name_prefix`` (``<project>-<environment>``) prefixes the alarm, topic and
    key names. The health-check timing and TTL come from ``dns`` unless given
    here.
    """

    dns: DnsConfig
    endpoints: Sequence[CloudEndpoint]
    name_prefix: str
    readiness_path: str = READINESS_PATH
    search_string: str = READINESS_SEARCH_STRING
    failure_threshold: int | None = None
    request_interval: int | None = None
    checker_regions: Sequence[str] = field(default_factory=lambda: list(HEALTH_CHECKER_REGIONS))
    provider: aws.Provider | None = None
    """An AWS provider in us-east-1 to use instead of the component's own."""
    zone: Route53Zone | None = None
    """The zone (and its us-east-1 provider) built earlier; when unset the component owns both."""


class Route53GlobalEndpoint(GlobalDnsBackend):
    """The global hostname on Route 53: per-cloud names, health checks, routed records, alarms.

    Reads top to bottom as what it owns: the us-east-1 provider, the hosted zone
    (created, or the existing ``hostedZoneId``), the optional encrypted alarm
    topic, then per cloud its name, health check, alarm and global record.
    """

    alarm_arns: dict[Cloud, pulumi.Output[str]]
    alarm_topic_arn: pulumi.Output[str] | None
    dns_provider = DnsProvider.ROUTE53
    routing_policy: RoutingPolicy
    latency_regions: dict[Cloud, str]
    weights: dict[Cloud, int]

    def __init__(
        self,
        name: str,
        args: Route53GlobalEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:global:Route53GlobalEndpoint", name, None, opts)
        dns = args.dns
        by_cloud = _endpoints_by_cloud(args.endpoints)
        # Every decision is made here, before any resource, from plain values.
        self._decide_routing(dns, by_cloud)
        checker_regions = health_checker_regions(args.checker_regions)
        failure_threshold, request_interval = health_check_timing(
            args.failure_threshold or dns.health_check.failure_threshold,
            args.request_interval or dns.health_check.interval_seconds,
        )
        hostnames = {c: cloud_hostname(dns.hostname, c, dns.domain) for c in by_cloud}
        global_name = f"{dns.hostname}.{dns.domain}"

        zone = args.zone or Route53Zone(
            f"{name}-dns", dns, args.name_prefix, opts=pulumi.ResourceOptions(parent=self)
        )
        provider = args.provider or zone.provider
        on_aws = pulumi.ResourceOptions(parent=self, provider=provider)
        self._publish(zone, global_name)

        self.alarm_topic_arn = self._alarm_topic(name, args, on_aws)
        alarm_actions = [self.alarm_topic_arn] if self.alarm_topic_arn is not None else []

        self.cloud_endpoints = {}
        self.cloud_urls = {}
        self.health_check_ids = {}
        self.alarm_arns = {}
        for cloud in by_cloud:
            endpoint = pulumi.Output.from_input(by_cloud[cloud].endpoint)
            hostname = hostnames[cloud]
            direct = self._direct_record(name, cloud, hostname, endpoint, dns.ttl_seconds, on_aws)
            health_check = self._health_check(
                name,
                cloud,
                hostname,
                args,
                (failure_threshold, request_interval, checker_regions),
                pulumi.ResourceOptions.merge(on_aws, pulumi.ResourceOptions(depends_on=[direct])),
            )
            alarm = self._unhealthy_alarm(
                name, cloud, hostname, args, health_check, alarm_actions, on_aws
            )
            self._routed_record(name, cloud, global_name, hostname, dns, health_check, on_aws)
            self.cloud_endpoints[cloud] = endpoint
            self.cloud_urls[cloud] = pulumi.Output.concat("https://", direct.fqdn)
            self.health_check_ids[cloud] = health_check.id
            self.alarm_arns[cloud] = alarm.arn

        self.register_outputs(
            {
                "globalHostname": self.global_hostname,
                "globalUrl": self.global_url,
                "zoneId": self.zone_id,
                "nameServers": self.name_servers,
                "routingPolicy": self.routing_policy.value,
                "cloudEndpoints": {c.value: v for c, v in self.cloud_endpoints.items()},
                "cloudUrls": {c.value: v for c, v in self.cloud_urls.items()},
                "healthCheckIds": {c.value: v for c, v in self.health_check_ids.items()},
                "alarmArns": {c.value: v for c, v in self.alarm_arns.items()},
                "alarmTopicArn": self.alarm_topic_arn,
                "dnssecDsRecord": self.dnssec_ds_record,
            }
        )

    # ------------------------------------------------------------------ parts

    def _decide_routing(self, dns: DnsConfig, by_cloud: Mapping[Cloud, CloudEndpoint]) -> None:
        """The routing policy and, per cloud, its latency region or weight (plain values)."""
        clouds = list(by_cloud)
        self.routing_policy = dns.routing_policy
        self.latency_regions = (
            assign_latency_regions({c: by_cloud[c].region for c in clouds})
            if dns.routing_policy == RoutingPolicy.LATENCY
            else {}
        )
        self.weights = (
            routing_weights(dns, clouds) if dns.routing_policy == RoutingPolicy.WEIGHTED else {}
        )
        for cloud, label in self.latency_regions.items():
            if label != nearest_aws_region(cloud, by_cloud[cloud].region):
                pulumi.log.info(
                    f"{cloud.value} ({by_cloud[cloud].region}) is labelled {label} for latency "
                    "routing: its nearest AWS region is taken by another cloud, and Route 53 "
                    "allows one latency record per region",
                    resource=self,
                )

    def _direct_record(
        self,
        name: str,
        cloud: Cloud,
        hostname: str,
        endpoint: pulumi.Output[str],
        ttl: int,
        on_aws: pulumi.ResourceOptions,
    ) -> aws.route53.Record:
        """The cloud's own name (``<hostname>-<cloud>``) pointing at its load balancer."""
        return aws.route53.Record(
            f"{name}-{cloud.value}-direct",
            zone_id=self.zone_id,
            name=hostname,
            type=endpoint.apply(functools.partial(record_type_for, cloud=cloud)),
            ttl=ttl,
            records=[endpoint.apply(lambda value: value.strip().rstrip("."))],
            # A hostname endpoint becoming an IP changes the type, which replaces the
            # record, and a CNAME cannot coexist with an A record under one name.
            opts=pulumi.ResourceOptions.merge(
                on_aws, pulumi.ResourceOptions(delete_before_replace=True)
            ),
        )

    def _health_check(
        self,
        name: str,
        cloud: Cloud,
        hostname: str,
        args: Route53GlobalEndpointArgs,
        timing: tuple[int, int, list[str]],
        opts: pulumi.ResourceOptions,
    ) -> aws.route53.HealthCheck:
        """The HTTPS readiness check of the cloud's own name, from ``timing``'s checker regions."""
        failure_threshold, request_interval, checker_regions = timing
        return aws.route53.HealthCheck(
            f"{name}-{cloud.value}",
            type="HTTPS_STR_MATCH",
            fqdn=hostname,
            port=HTTPS_PORT,
            resource_path=args.readiness_path,
            search_string=args.search_string,
            # SNI carries the per-cloud name, so the gateway's TLS listener
            # answers with the certificate for it.
            enable_sni=True,
            failure_threshold=failure_threshold,
            request_interval=request_interval,
            regions=checker_regions,
            tags={"Name": f"{args.name_prefix}-gateway-{cloud.value}"},
            # The checked name must resolve before the first check (``opts`` depends on it).
            opts=opts,
        )

    def _unhealthy_alarm(
        self,
        name: str,
        cloud: Cloud,
        hostname: str,
        args: Route53GlobalEndpointArgs,
        health_check: aws.route53.HealthCheck,
        alarm_actions: list[pulumi.Output[str]],
        on_aws: pulumi.ResourceOptions,
    ) -> aws.cloudwatch.MetricAlarm:
        """The alarm raised when the cloud's health check fails."""
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{cloud.value}-unhealthy",
            name=f"{args.name_prefix}-gateway-{cloud.value}-unhealthy",
            alarm_description=(
                f"The {cloud.value} gateway fails its readiness check "
                f"(https://{hostname}{args.readiness_path}); the global name "
                "no longer sends traffic there."
            ),
            namespace="AWS/Route53",
            metric_name="HealthCheckStatus",
            dimensions={"HealthCheckId": health_check.id},
            # HealthCheckStatus is 1 while healthy, 0 while unhealthy.
            statistic="Minimum",
            period=60,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="LessThanThreshold",
            # No data means the check is gone or not reporting: page, don't hope.
            treat_missing_data="breaching",
            alarm_actions=alarm_actions,
            ok_actions=alarm_actions,
            opts=on_aws,
        )

    def _routed_record(
        self,
        name: str,
        cloud: Cloud,
        global_name: str,
        hostname: str,
        dns: DnsConfig,
        health_check: aws.route53.HealthCheck,
        on_aws: pulumi.ResourceOptions,
    ) -> aws.route53.Record:
        """The global name's routed record for the cloud, answered only while it is healthy."""
        return aws.route53.Record(
            f"{name}-{cloud.value}-routed",
            zone_id=self.zone_id,
            name=global_name,
            # A CNAME to the per-cloud name keeps one record type for every cloud
            # (Route 53 rejects mixed types under one routed name) whether the
            # endpoint is a hostname or an IP.
            type=aws.route53.RecordType.CNAME,
            ttl=dns.ttl_seconds,
            records=[hostname],
            set_identifier=cloud.value,
            health_check_id=health_check.id,
            latency_routing_policies=(
                [aws.route53.RecordLatencyRoutingPolicyArgs(region=self.latency_regions[cloud])]
                if dns.routing_policy == RoutingPolicy.LATENCY
                else None
            ),
            weighted_routing_policies=(
                [aws.route53.RecordWeightedRoutingPolicyArgs(weight=self.weights[cloud])]
                if dns.routing_policy == RoutingPolicy.WEIGHTED
                else None
            ),
            # Switching routing policy replaces the records, and Route 53 rejects
            # latency and weighted records side by side under one name.
            opts=pulumi.ResourceOptions.merge(
                on_aws, pulumi.ResourceOptions(delete_before_replace=True)
            ),
        )

    def _alarm_topic(
        self, name: str, args: Route53GlobalEndpointArgs, on_aws: pulumi.ResourceOptions
    ) -> pulumi.Output[str] | None:
        """The topic the alarms notify: ``alerts.snsTopicArn``, a new encrypted one, or none.

        A topic is created when ``alerts.emails`` lists addresses (each gets a
        subscription to confirm); with no destination (dev, staging) the
        alarms still exist and show in the console, notifying nobody.

        The topic is encrypted with its own customer managed key, not the AWS
        managed ``alias/aws/sns``: CloudWatch must encrypt what it publishes,
        and the AWS managed key's policy cannot grant it that.
        """
        alerts = args.dns.alerts
        if alerts.sns_topic_arn:
            return pulumi.Output.from_input(alerts.sns_topic_arn)
        if not alerts.emails:
            return None
        invoke = pulumi.InvokeOutputOptions(parent=self, provider=on_aws.provider)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        key = aws.kms.Key(
            f"{name}-alarms",
            description=f"Encrypts the gateway health alarm topic ({args.name_prefix})",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(partition, account).apply(
                lambda values: alarm_key_policy(*values)
            ),
            opts=on_aws,
        )
        aws.kms.Alias(
            f"{name}-alarms",
            name=f"alias/{args.name_prefix}-gateway-alarms",
            target_key_id=key.arn,
            opts=on_aws,
        )
        topic = aws.sns.Topic(
            f"{name}-alarms",
            name=f"{args.name_prefix}-gateway-alarms",
            kms_master_key_id=key.arn,
            opts=on_aws,
        )
        for index, email in enumerate(alerts.emails):
            aws.sns.TopicSubscription(
                f"{name}-alarms-email-{index}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=on_aws,
            )
        return topic.arn


def alarm_key_policy(partition: str, account_id: str) -> str:
    """The KMS key policy of the alarm topic: the account administers it, CloudWatch may use it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_administers(partition, account_id),
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        }
    )


def account_administers(partition: str, account_id: str) -> dict:
    """AWS's default key-policy statement: the account (its IAM policies) administers the key."""
    return {
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def _ksk_name(name_prefix: str) -> str:
    """The key-signing key's name: alphanumeric, at most 128 characters (Route 53's rule)."""
    return "".join(ch for ch in name_prefix.title() if ch.isalnum())[:120] + "Ksk"


def dnssec_key_policy(partition: str, account_id: str) -> dict:
    """The KSK's KMS key policy: the account administers it, Route 53's DNSSEC service signs with it.

    The statements AWS documents for a customer managed key used for DNSSEC
    signing, scoped to this account's hosted zones.
    """
    service = {"Service": "dnssec-route53.amazonaws.com"}
    return {
        "Version": "2012-10-17",
        "Statement": [
            account_administers(partition, account_id),
            {
                "Sid": "Route53DnssecSigns",
                "Effect": "Allow",
                "Principal": service,
                "Action": ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:Verify"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:route53:::hostedzone/*"},
                },
            },
            {
                "Sid": "Route53DnssecGrants",
                "Effect": "Allow",
                "Principal": service,
                "Action": "kms:CreateGrant",
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}},
            },
        ],
    }


def query_log_key_policy(partition: str, account_id: str, group_name: str) -> dict:
    """The query log's KMS key: the account administers it, CloudWatch Logs encrypts that group."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            account_administers(partition, account_id),
            {
                "Sid": "CloudWatchLogsEncryption",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{GLOBAL_REGION}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnEquals": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{partition}:logs:{GLOBAL_REGION}:{account_id}:"
                            f"log-group:{group_name}"
                        )
                    }
                },
            },
        ],
    }


def query_log_resource_policy(partition: str, account_id: str) -> dict:
    """Lets Route 53 write query logs to ``/aws/route53/*`` groups, for this account's zones only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Route53QueryLogs",
                "Effect": "Allow",
                "Principal": {"Service": "route53.amazonaws.com"},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": (
                    f"arn:{partition}:logs:{GLOBAL_REGION}:{account_id}:log-group:/aws/route53/*"
                ),
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:route53:::hostedzone/*"},
                },
            }
        ],
    }
