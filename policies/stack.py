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
from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationPolicy

from policies import aws, azure, gcp
from policies.config import Category
from policies.framework import PROD_ONLY, STACK_KEY, get, is_true, items, stack_policy

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
    logged = {
        d.urn
        for r in resources
        if r.resource_type == FLOW_LOG
        for key in ("vpcId", "resourceId")
        for d in r.property_dependencies.get(key, [])
    }
    for vpc in (r for r in resources if r.resource_type == VPC):
        if vpc.urn not in logged:
            yield (
                f"{vpc.name}: no flow log: add aws.ec2.FlowLog(vpc_id=<this vpc>.id, "
                "traffic_type='ALL') to a KMS-encrypted log group",
                vpc.urn,
            )


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
