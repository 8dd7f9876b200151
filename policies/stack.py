"""Stack policies: rules that need more than one resource to decide.

* Databases keep deletion protection in production: every stack is production
  unless the pack config names it in ``nonProductionStacks`` (default: the dev
  and staging stacks). The stack comes from the engine (the resources' URNs),
  never from a tag a resource sets.
* Cluster nodes live in private subnets: an EKS node group's subnets are
  resolved through the stack's route tables; a GKE node pool through its
  cluster's private-nodes setting.
* Every S3 bucket has a public access block and default encryption, which AWS
  provider 7 models as separate resources pointing at the bucket.

Resources are linked through the engine's property dependencies (which
resource's output feeds which input), so the rules hold during a preview,
when IDs are still unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationPolicy

from policies import aws, azure, gcp, iam, kubernetes
from policies.config import Category
from policies.framework import (
    PROD_ONLY,
    PUBLIC_PORTS,
    PUBLIC_PORTS_DOC,
    STACK_KEY,
    get,
    is_true,
    is_world,
    items,
    stack_policy,
)

LOCK_TYPES = (
    "azure-native:authorization:ManagementLockAtResourceLevel",
    "azure-native:authorization:ManagementLockAtResourceGroupLevel",
)
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
VPC = "aws:ec2/vpc:Vpc"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"


def _depends_on(resource: PolicyResource, target: PolicyResource) -> bool:
    deps = [d.urn for d in resource.dependencies]
    deps += [d.urn for ds in resource.property_dependencies.values() for d in ds]
    return target.urn in deps


def _deletion_protection(
    resources: Sequence[PolicyResource], config: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    environment = f"stack {config[STACK_KEY]}"
    locks = [
        r
        for r in resources
        if r.resource_type in LOCK_TYPES and get(r.props, "level") == "CanNotDelete"
    ]
    for r in resources:
        props, kind = r.props, r.resource_type
        if kind in (aws.RDS_INSTANCE, aws.RDS_CLUSTER, aws.EKS_CLUSTER) and not is_true(
            get(props, "deletionProtection")
        ):
            yield (
                f"{r.name}: deletionProtection is not true in {environment}: set deletionProtection=True",
                r.urn,
            )
        elif kind == gcp.GKE_CLUSTER and get(props, "deletionProtection") is False:
            yield (
                f"{r.name}: deletionProtection is false in {environment}: set deletionProtection=True",
                r.urn,
            )
        elif kind == gcp.SQL_INSTANCE:
            if get(props, "deletionProtection") is False:
                yield (
                    f"{r.name}: deletionProtection is false in {environment}: set deletionProtection=True",
                    r.urn,
                )
            if not is_true(get(props, "settings.deletionProtectionEnabled")):
                yield (
                    f"{r.name}: settings.deletionProtectionEnabled is not true in {environment}: "
                    "set settings.deletionProtectionEnabled=True",
                    r.urn,
                )
        elif (
            kind == azure.POSTGRES_SERVER
            and not r.opts.protect
            and not any(_depends_on(lock, r) for lock in locks)
        ):
            yield (
                f"{r.name}: not protected in {environment}: set the resource option "
                "protect=True or add a CanNotDelete management lock on the server",
                r.urn,
            )


def _public_route_tables(resources: Sequence[PolicyResource]) -> set[str]:
    gateways = {r.urn for r in resources if r.resource_type == INTERNET_GATEWAY}
    public: set[str] = set()
    for r in resources:
        if r.resource_type == ROUTE_TABLE:
            via_dependency = {d.urn for d in r.property_dependencies.get("routes", [])} & gateways
            via_id = any(
                str(get(route, "gatewayId", "")).startswith("igw-")
                for route in items(r.props, "routes")
            )
            if via_dependency or via_id:
                public.add(r.urn)
        elif r.resource_type == ROUTE:
            to_gateway = {d.urn for d in r.property_dependencies.get("gatewayId", [])} & gateways
            if to_gateway or str(get(r.props, "gatewayId", "")).startswith("igw-"):
                public |= {d.urn for d in r.property_dependencies.get("routeTableId", [])}
    return public


def _public_subnets(resources: Sequence[PolicyResource]) -> set[str]:
    public_tables = _public_route_tables(resources)
    public = {
        r.urn
        for r in resources
        if r.resource_type == SUBNET and is_true(get(r.props, "mapPublicIpOnLaunch"))
    }
    for r in resources:
        if r.resource_type == ROUTE_TABLE_ASSOCIATION:
            tables = {d.urn for d in r.property_dependencies.get("routeTableId", [])}
            if tables & public_tables:
                public |= {d.urn for d in r.property_dependencies.get("subnetId", [])}
    return public


def _private_nodes(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    public_subnets = _public_subnets(resources)
    by_urn = {r.urn: r for r in resources}
    for r in resources:
        if r.resource_type == aws.EKS_NODE_GROUP:
            subnets = [d.urn for d in r.property_dependencies.get("subnetIds", [])]
            exposed = sorted(by_urn[u].name for u in subnets if u in public_subnets)
            if exposed:
                yield (
                    f"{r.name}: subnetIds include public subnets {exposed} (internet gateway "
                    "route or mapPublicIpOnLaunch): set subnetIds to the private subnets",
                    r.urn,
                )
    for cluster in (r for r in resources if r.resource_type == gcp.GKE_CLUSTER):
        cluster_private = is_true(get(cluster.props, "privateClusterConfig.enablePrivateNodes"))
        pools = [
            p
            for p in resources
            if p.resource_type == gcp.GKE_NODE_POOL
            and cluster.urn in {d.urn for d in p.property_dependencies.get("cluster", [])}
        ]
        for pool in pools:
            own = get(pool.props, "networkConfig.enablePrivateNodes")
            if own is False or (own is None and not cluster_private):
                yield (
                    f"{pool.name}: nodes get public IPs: set networkConfig.enablePrivateNodes=True "
                    f"(or privateClusterConfig.enablePrivateNodes=True on {cluster.name})",
                    pool.urn,
                )
        if (
            not pools
            and not cluster_private
            and not is_true(get(cluster.props, "removeDefaultNodePool"))
        ):
            yield (
                f"{cluster.name}: default node pool has public nodes: set "
                "privateClusterConfig.enablePrivateNodes=True",
                cluster.urn,
            )


def _attached(
    resources: Sequence[PolicyResource], bucket: PolicyResource, types: tuple[str, ...]
) -> bool:
    """Whether a resource of ``types`` names ``bucket`` in its ``bucket`` property."""
    return any(
        r.resource_type in types
        and bucket.urn in {d.urn for d in r.property_dependencies.get("bucket", [])}
        for r in resources
    )


def _buckets(resources: Sequence[PolicyResource]) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in (aws.S3_BUCKET, aws.S3_BUCKET_V2)]


def _bucket_public_access_block(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    if any(
        r.resource_type == aws.ACCOUNT_PUBLIC_ACCESS_BLOCK
        and all(
            is_true(get(r.props, flag))
            for flag in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        )
        for r in resources
    ):
        return  # an account-wide block with every flag on covers every bucket
    for bucket in _buckets(resources):
        if not _attached(resources, bucket, (aws.S3_PUBLIC_ACCESS_BLOCK,)):
            yield (
                f"{bucket.name}: no BucketPublicAccessBlock: add aws.s3.BucketPublicAccessBlock "
                "with bucket=<this bucket>.id and all four block/ignore/restrict flags True",
                bucket.urn,
            )


def _bucket_default_encryption(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    for bucket in _buckets(resources):
        inline = get(bucket.props, "serverSideEncryptionConfiguration")
        if inline:
            # Inline rules are judged like the separate resource's.
            for message in aws.s3_sse_violations(items(inline, "rules"), aws.KMS_ALGORITHMS):
                yield f"{bucket.name}: serverSideEncryptionConfiguration.{message}", bucket.urn
            continue
        if not _attached(resources, bucket, (aws.S3_SSE, aws.S3_SSE_V2)):
            yield (
                f"{bucket.name}: no default encryption: add "
                "aws.s3.BucketServerSideEncryptionConfiguration with bucket=<this bucket>.id and "
                "sseAlgorithm='aws:kms'",
                bucket.urn,
            )


def _vpc_flow_logs(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    for vpc in (r for r in resources if r.resource_type == VPC):
        if not _logged_by(resources, vpc, FLOW_LOG, ("vpcId", "resourceId")):
            yield (
                f"{vpc.name}: no flow log: add aws.ec2.FlowLog(vpc_id=<this vpc>.id, "
                "traffic_type='ALL') to a KMS-encrypted log group",
                vpc.urn,
            )


def _attached_to(
    resources: Sequence[PolicyResource], owner: PolicyResource, types: tuple[str, ...], key: str
) -> list[PolicyResource]:
    return [
        r
        for r in resources
        if r.resource_type in types
        and owner.urn in {d.urn for d in r.property_dependencies.get(key, [])}
    ]


SEPARATE_RULES = (
    aws.SECURITY_GROUP_RULE,
    aws.SECURITY_GROUP_INGRESS_RULE,
    aws.SECURITY_GROUP_EGRESS_RULE,
)
ROLE_ATTACHMENTS = (iam.ROLE_POLICY_ATTACHMENT, iam.ROLE_POLICY)


def _rule_conflicts(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    """Inline rules and separate rule resources on one owner overwrite each other on every up."""
    for group in (r for r in resources if r.resource_type == aws.SECURITY_GROUP):
        inline = items(group.props, "ingress") + items(group.props, "egress")
        separate = _attached_to(resources, group, SEPARATE_RULES, "securityGroupId")
        if inline and separate:
            yield (
                f"{group.name}: inline ingress/egress and separate rule resources "
                f"{sorted(r.name for r in separate)} manage the same group, so each `up` "
                "removes the other's rules: keep one of the two forms",
                group.urn,
            )
    for role in (r for r in resources if r.resource_type == iam.ROLE):
        separate = _attached_to(resources, role, ROLE_ATTACHMENTS, "role")
        inline = items(role.props, "managedPolicyArns") + items(role.props, "inlinePolicies")
        if inline and separate:
            yield (
                f"{role.name}: managedPolicyArns/inlinePolicies and separate attachments "
                f"{sorted(r.name for r in separate)} manage the same role's policies: keep one "
                "of the two forms",
                role.urn,
            )


def _network_policies(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    """Every namespace that runs workloads has a NetworkPolicy (its pods are not open to all)."""
    covered = {
        (_provider(r), get(r.props, "metadata.namespace", "default"))
        for r in resources
        if r.resource_type == NETWORK_POLICY
    }
    for r in resources:
        if r.resource_type not in kubernetes.POD_SPEC_PATHS:
            continue
        namespace = get(r.props, "metadata.namespace", "default")
        if (_provider(r), namespace) not in covered:
            yield (
                f"{r.name}: no NetworkPolicy in namespace {namespace} on its cluster, so every "
                "pod of the cluster can reach it: add a default-deny NetworkPolicy and allow "
                "only the traffic it needs",
                r.urn,
            )


def _provider(resource: PolicyResource) -> str:
    """The cluster a Kubernetes object goes to (its provider's URN)."""
    return resource.provider.urn if resource.provider is not None else ""


def _referenced(resources: Sequence[PolicyResource], target: PolicyResource) -> bool:
    return any(r.urn != target.urn and _depends_on(r, target) for r in resources)


def _orphans(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    for r in resources:
        if r.resource_type == aws.ELASTIC_IP and not _referenced(resources, r):
            yield (
                f"{r.name}: an Elastic IP nothing in the stack uses (it costs money and may be "
                "whitelisted somewhere): attach it or remove it",
                r.urn,
            )
        elif r.resource_type == aws.SECURITY_GROUP and not _referenced(resources, r):
            yield (
                f"{r.name}: a security group nothing in the stack uses: attach it or remove it",
                r.urn,
            )


def _network_firewalls(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    firewalls = [r for r in resources if r.resource_type == gcp.FIREWALL]
    for network in (r for r in resources if r.resource_type == gcp.NETWORK):
        if not any(_depends_on(f, network) for f in firewalls):
            yield (
                f"{network.name}: no firewall rule of its own, so only the implied rules apply: "
                "add a deny-all ingress rule and the allows the workloads need",
                network.urn,
            )


ROUTE53_ZONE = "aws:route53/zone:Zone"
ROUTE53_QUERY_LOG = "aws:route53/queryLog:QueryLog"
AZURE_VNET = "azure-native:network:VirtualNetwork"
AZURE_FLOW_LOG = "azure-native:network:FlowLog"
ROUTE53_DNSSEC = "aws:route53/hostedZoneDnsSec:HostedZoneDnsSec"
ROUTE53_KEY_SIGNING_KEY = "aws:route53/keySigningKey:KeySigningKey"
CLOUD_DNS_ZONE = "gcp:dns/managedZone:ManagedZone"
AZURE_DNS_ZONE = "azure-native:dns:Zone"
AZURE_DNSSEC = "azure-native:dns:DnssecConfig"


def _logged_by(
    resources: Sequence[PolicyResource],
    target: PolicyResource,
    log_type: str,
    keys: tuple[str, ...],
) -> bool:
    return any(
        r.resource_type == log_type
        and target.urn in {d.urn for key in keys for d in r.property_dependencies.get(key, [])}
        for r in resources
    )


def _dns_and_flow_logs(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    for zone in (r for r in resources if r.resource_type == ROUTE53_ZONE):
        if items(zone.props, "vpcs"):
            continue  # private zones log through Resolver query logging, per VPC
        if not _logged_by(resources, zone, ROUTE53_QUERY_LOG, ("zoneId",)):
            yield (
                f"{zone.name}: no query logging: add aws.route53.QueryLog(zone_id=<this zone>."
                "zone_id, cloudwatch_log_group_arn=<a us-east-1 log group Route 53 may write to>)",
                zone.urn,
            )
    for vnet in (r for r in resources if r.resource_type == AZURE_VNET):
        if not _logged_by(resources, vnet, AZURE_FLOW_LOG, ("targetResourceId",)):
            yield (
                f"{vnet.name}: no VNet flow log: add azure-native network.FlowLog with "
                "target_resource_id=<this vnet>.id in the region's Network Watcher (NSG flow "
                "logs are retired)",
                vnet.urn,
            )


def _route53_signed(resources: Sequence[PolicyResource], zone: PolicyResource) -> bool:
    """Whether a HostedZoneDnsSec signs the zone (directly, or through its key-signing key)."""
    keys = {zone.urn} | {
        k.urn for k in _attached_to(resources, zone, (ROUTE53_KEY_SIGNING_KEY,), "hostedZoneId")
    }
    return any(
        r.resource_type == ROUTE53_DNSSEC
        and str(get(r.props, "signingStatus", "SIGNING")) != "NOT_SIGNING"
        and keys & {d.urn for d in r.property_dependencies.get("hostedZoneId", [])}
        for r in resources
    )


def _unsigned_zones(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    for zone in (r for r in resources if r.resource_type == ROUTE53_ZONE):
        if not items(zone.props, "vpcs") and not _route53_signed(resources, zone):
            yield (
                f"{zone.name}: not signed: add aws.route53.KeySigningKey (a us-east-1 "
                "ECC_NIST_P256 KMS key) and aws.route53.HostedZoneDnsSec for the zone",
                zone.urn,
            )
    for zone in (r for r in resources if r.resource_type == CLOUD_DNS_ZONE):
        if str(get(zone.props, "visibility", "public")).lower() == "private":
            continue
        if str(get(zone.props, "dnssecConfig.state", "off")).lower() != "on":
            yield (
                f"{zone.name}: dnssecConfig.state is not on: set dnssecConfig.state='on'",
                zone.urn,
            )
        for spec in items(zone.props, "dnssecConfig.defaultKeySpecs"):
            if str(get(spec, "algorithm", "")).lower() == "rsasha1":
                yield (
                    f"{zone.name}: signs with RSASHA1: set dnssecConfig.defaultKeySpecs "
                    "algorithm='rsasha256' (or leave the default)",
                    zone.urn,
                )
    for zone in (r for r in resources if r.resource_type == AZURE_DNS_ZONE):
        if str(get(zone.props, "zoneType", "Public")) == "Private":
            continue
        if not _attached_to(resources, zone, (AZURE_DNSSEC,), "zoneName"):
            yield (
                f"{zone.name}: not signed: add azure-native dns.DnssecConfig with "
                "zone_name=<this zone>.name",
                zone.urn,
            )


def _port_range(protocol: Any, from_port: Any, to_port: Any) -> tuple[int, int]:
    if str(protocol).lower() in {"-1", "all"}:
        return 0, 65535
    try:
        low, high = int(from_port), int(to_port)
    except (TypeError, ValueError):
        return 0, 65535
    return (0, 65535) if low < 0 or high < 0 else (low, high)


def _ingress_of(resources: Sequence[PolicyResource], group: PolicyResource) -> list[tuple]:
    """(low, high, sources) of every ingress rule of a group, inline or separate."""
    found = []
    for rule in items(group.props, "ingress"):
        low, high = _port_range(get(rule, "protocol"), get(rule, "fromPort"), get(rule, "toPort"))
        found.append((low, high, items(rule, "cidrBlocks") + items(rule, "ipv6CidrBlocks")))
    for rule in _attached_to(resources, group, SEPARATE_RULES, "securityGroupId"):
        props = rule.props
        if rule.resource_type == aws.SECURITY_GROUP_RULE and get(props, "type") != "ingress":
            continue
        if rule.resource_type == aws.SECURITY_GROUP_EGRESS_RULE:
            continue
        protocol = get(props, "protocol", get(props, "ipProtocol"))
        low, high = _port_range(protocol, get(props, "fromPort"), get(props, "toPort"))
        sources = items(props, "cidrBlocks") + items(props, "ipv6CidrBlocks")
        sources += [s for s in (get(props, "cidrIpv4"), get(props, "cidrIpv6")) if s]
        found.append((low, high, sources))
    return found


def _combined_ingress(
    resources: Sequence[PolicyResource], config: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    """The union of every rule's sources, per port range, across a group's rules."""
    allowed = {int(p) for p in config["allowedPublicPorts"]}
    for group in (r for r in resources if r.resource_type == aws.SECURITY_GROUP):
        rules = _ingress_of(resources, group)
        edges = sorted({low for low, _, _ in rules} | {high + 1 for _, high, _ in rules})
        for start, end in pairwise(edges):
            covering = [s for low, high, s in rules if low <= start and end - 1 <= high]
            if len(covering) < 2 or all(port in allowed for port in range(start, end)):
                continue
            if any(is_world(s, config) for s in covering):
                continue  # one rule alone is the world: aws-ec2-securitygroup-no-public-ingress
            sources = [cidr for s in covering for cidr in s]
            if is_world(sources, config):
                span = f"{start}-{end - 1}" if end - 1 > start else str(start)
                yield (
                    f"{group.name}: its rules together open port {span} to the whole internet "
                    f"({len(covering)} rules whose source ranges add up to it): restrict them "
                    "to known networks",
                    group.urn,
                )
                break


def policies() -> list[StackValidationPolicy]:
    """The stack-level policies of the pack."""
    return [
        stack_policy(
            "multicloud-database-instance-deletion-protection",
            "In production every database and cluster keeps deletion protection, so a bad change "
            "cannot drop the data. Fix: RDS and EKS deletionProtection=True; GKE not "
            "deletionProtection=False; Cloud SQL deletionProtection=True "
            "and settings.deletionProtectionEnabled=True; Azure PostgreSQL protect=True or a "
            "CanNotDelete lock.",
            types=[
                aws.RDS_INSTANCE,
                aws.RDS_CLUSTER,
                aws.EKS_CLUSTER,
                gcp.SQL_INSTANCE,
                gcp.GKE_CLUSTER,
                azure.POSTGRES_SERVER,
            ],
            check=_deletion_protection,
            category=Category.RESILIENCE,
            non_production=PROD_ONLY,
        ),
        stack_policy(
            "aws-ec2-vpc-flow-logs",
            "Every VPC must record its traffic in flow logs, so an intrusion or an exfiltration "
            "can be traced. Fix: add aws.ec2.FlowLog(vpc_id=vpc.id, traffic_type='ALL', "
            "log_destination=<KMS-encrypted log group>).",
            types=[VPC],
            check=_vpc_flow_logs,
            category=Category.LOGGING,
        ),
        stack_policy(
            "aws-ec2-securitygroup-no-rule-conflicts",
            "A security group's rules (and a role's policies) are declared in one form only: "
            "inline rules and separate rule resources on the same owner remove each other's "
            "entries on every update, so what is deployed is not what was reviewed. Fix: move "
            "the inline ingress/egress (managedPolicyArns/inlinePolicies) to separate resources, "
            "or the other way round.",
            types=[aws.SECURITY_GROUP, iam.ROLE],
            check=_rule_conflicts,
            category=Category.EXPOSURE,
        ),
        stack_policy(
            "multicloud-network-traffic-logs",
            "Public DNS zones log their queries and Azure virtual networks their flows, so an "
            "exfiltration through DNS or a lateral move can be traced (VPC and subnet flow "
            "logs: aws-ec2-vpc-flow-logs, gcp-compute-subnetwork-flow-logs). Fix: add an "
            "aws.route53.QueryLog for the zone; a network.FlowLog targeting the VNet.",
            types=[ROUTE53_ZONE, AZURE_VNET],
            check=_dns_and_flow_logs,
            category=Category.LOGGING,
            severity=Severity.MEDIUM,
        ),
        stack_policy(
            "multicloud-dns-zone-dnssec",
            "Public DNS zones must be signed (DNSSEC), so resolvers can tell the gateway's "
            "real addresses from spoofed answers, and never with RSASHA1. Fix: Route 53: add a "
            "KeySigningKey and HostedZoneDnsSec; Cloud DNS: set dnssecConfig.state='on'; "
            "Azure DNS: add a dns.DnssecConfig for the zone. Then publish the DS record at the "
            "registrar.",
            types=[ROUTE53_ZONE, CLOUD_DNS_ZONE, AZURE_DNS_ZONE],
            check=_unsigned_zones,
            category=Category.EXPOSURE,
            severity=Severity.MEDIUM,
        ),
        stack_policy(
            "aws-ec2-securitygroup-combined-public-ingress",
            "A security group's rules must not open a port to the internet between them: "
            "ranges each smaller than the world can add up to it across inline and separate "
            "rules. Fix: restrict the rules' sources to known networks.",
            types=[aws.SECURITY_GROUP],
            check=_combined_ingress,
            category=Category.EXPOSURE,
            params=PUBLIC_PORTS,
            param_docs=PUBLIC_PORTS_DOC,
            severity=Severity.CRITICAL,
        ),
        stack_policy(
            "aws-ec2-resource-no-orphans",
            "Every Elastic IP and security group is used by something in the stack. Fix: "
            "attach it or remove it.",
            types=[aws.ELASTIC_IP, aws.SECURITY_GROUP],
            check=_orphans,
            category=Category.HYGIENE,
            severity=Severity.LOW,
        ),
        stack_policy(
            "gcp-compute-network-firewall",
            "Every VPC network declares its own firewall rules (at least a deny-all ingress), "
            "so what may reach it is in the stack. Fix: add gcp.compute.Firewall rules with "
            "network=<this network>.",
            types=[gcp.NETWORK],
            check=_network_firewalls,
            category=Category.EXPOSURE,
            severity=Severity.MEDIUM,
        ),
        stack_policy(
            "kubernetes-networking-networkpolicy-every-namespace",
            "Every namespace that runs workloads must have a NetworkPolicy on its cluster. Fix: "
            "add a default-deny NetworkPolicy to the namespace and allow the needed traffic.",
            types=list(kubernetes.POD_SPEC_PATHS),
            check=_network_policies,
            category=Category.WORKLOAD,
        ),
        stack_policy(
            "multicloud-kubernetes-nodes-private-subnets",
            "Cluster nodes must live in private subnets (no route from the internet, no public "
            "IPs). Fix: EKS node groups use subnetIds without an internet gateway route; GKE "
            "node pools set networkConfig.enablePrivateNodes=True (or the cluster's "
            "privateClusterConfig.enablePrivateNodes).",
            types=[aws.EKS_NODE_GROUP, gcp.GKE_CLUSTER, gcp.GKE_NODE_POOL],
            check=_private_nodes,
            category=Category.EXPOSURE,
        ),
        stack_policy(
            "aws-s3-bucket-public-access-block",
            "Every S3 bucket must have a public access block (or the stack an account-wide one), "
            "so no ACL or bucket policy can make it public. Fix: add "
            "aws.s3.BucketPublicAccessBlock(bucket=bucket.id, block_public_acls=True, "
            "block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True).",
            types=[aws.S3_BUCKET, aws.S3_BUCKET_V2],
            check=_bucket_public_access_block,
            category=Category.EXPOSURE,
            severity=Severity.CRITICAL,
        ),
        stack_policy(
            "aws-s3-bucket-default-encryption",
            "Every S3 bucket must have a default-encryption configuration with KMS, so objects "
            "need the key too. Fix: add aws.s3.BucketServerSideEncryptionConfiguration("
            "bucket=bucket.id, rules=[...sse_algorithm='aws:kms', kms_master_key_id=key.arn]).",
            types=[aws.S3_BUCKET, aws.S3_BUCKET_V2],
            check=_bucket_default_encryption,
            category=Category.ENCRYPTION,
        ),
    ]
