"""Stack policies: deletion protection in production, cluster nodes in private subnets."""

from __future__ import annotations

from dataclasses import replace

from infra.offline import Plan, RecordedResource
from policies import aws, azure, gcp
from policies.stack import ROUTE
from tests.policies.conftest import DELETE, mutated, verdict

ACCOUNT_BLOCK = aws.ACCOUNT_PUBLIC_ACCESS_BLOCK

PROTECTION = "multicloud-database-instance-deletion-protection"
PRIVATE_NODES = "multicloud-kubernetes-nodes-private-subnets"


def swapped(plan: Plan, *resources: RecordedResource) -> Plan:
    """The plan with some resources replaced (matched by URN) or added."""
    by_urn = {r.urn: r for r in resources}
    kept = [by_urn.pop(r.urn, r) for r in plan.resources]
    return replace(plan, resources=[*kept, *by_urn.values()])


def messages(plan: Plan, policy: str, config: dict | None = None) -> list[tuple[str, str]]:
    return [
        (v.resource_name, v.message) for v in verdict(plan, config).violations if v.policy == policy
    ]


def _in_stack(plan: Plan, stack: str) -> Plan:
    """The plan as the engine would send it for another stack name."""
    return replace(
        plan,
        resources=[
            replace(r, urn=r.urn.replace("urn:pulumi:prod::", f"urn:pulumi:{stack}::"))
            for r in plan.resources
        ],
    )


def test_rds_without_deletion_protection_in_prod(compliant_plan: Plan) -> None:
    rds = mutated(compliant_plan.one(aws.RDS_INSTANCE, "postgres"), {"deletionProtection": False})
    assert messages(swapped(compliant_plan, rds), PROTECTION) == [
        (
            "postgres",
            "postgres: deletionProtection is not true in stack prod: set deletionProtection=True",
        )
    ]
    aurora = mutated(compliant_plan.one(aws.RDS_CLUSTER, "aurora"), {"deletionProtection": DELETE})
    assert [n for n, _ in messages(swapped(compliant_plan, aurora), PROTECTION)] == ["aurora"]


def test_cloud_sql_needs_both_protection_flags_in_prod(compliant_plan: Plan) -> None:
    sql = compliant_plan.one(gcp.SQL_INSTANCE, "postgres")
    api_off = mutated(sql, {"settings.deletionProtectionEnabled": False})
    assert (
        "set settings.deletionProtectionEnabled=True"
        in messages(swapped(compliant_plan, api_off), PROTECTION)[0][1]
    )
    pulumi_off = mutated(sql, {"deletionProtection": False})
    assert (
        "deletionProtection is false in stack prod"
        in messages(swapped(compliant_plan, pulumi_off), PROTECTION)[0][1]
    )


def test_azure_postgres_needs_protect_or_a_lock_in_prod(compliant_plan: Plan) -> None:
    server = replace(compliant_plan.one(azure.POSTGRES_SERVER, "postgres"), protect=False)
    unprotected = swapped(compliant_plan, server)
    assert "set the resource option protect=True" in messages(unprotected, PROTECTION)[0][1]
    lock = RecordedResource(
        urn=server.urn.rsplit("::", 2)[0]
        + "::azure-native:authorization:ManagementLockAtResourceLevel::pg-lock",
        type="azure-native:authorization:ManagementLockAtResourceLevel",
        name="pg-lock",
        custom=True,
        parent=None,
        provider=None,
        inputs={"level": "CanNotDelete"},
        outputs={"level": "CanNotDelete"},
        dependencies=[server.urn],
    )
    assert messages(swapped(unprotected, lock), PROTECTION) == []


def test_deletion_protection_applies_to_every_stack_not_listed_as_non_production(
    compliant_plan: Plan,
) -> None:
    rds = mutated(compliant_plan.one(aws.RDS_INSTANCE, "postgres"), {"deletionProtection": False})
    plan = swapped(compliant_plan, rds)
    assert messages(plan, PROTECTION, {PROTECTION: {"nonProductionStacks": ["prod"]}}) == []
    assert messages(plan, PROTECTION, {PROTECTION: {"nonProductionStacks": ["p*"]}}) == []
    assert len(messages(plan, PROTECTION, {PROTECTION: {"nonProductionStacks": ["dev"]}})) == 1
    # An unknown stack name is production: the rule is never off by accident.
    assert len(messages(_in_stack(plan, "eu-live"), PROTECTION)) == 1


def test_aks_defender_is_required_everywhere_but_dev(compliant_plan: Plan) -> None:
    """Main's azure.defenderForContainers is off in dev only (billed per vCore): so is the rule."""
    defender = "azure-containerservice-managedcluster-defender"
    aks = mutated(
        compliant_plan.one(azure.MANAGED_CLUSTER, "aks"), {"securityProfile.defender": DELETE}
    )
    plan = swapped(compliant_plan, aks)
    for stack in ("prod", "staging", "eu-live"):
        assert [n for n, _ in messages(_in_stack(plan, stack), defender)] == ["aks"], stack
    for stack in ("dev", "team-dev"):
        assert messages(_in_stack(plan, stack), defender) == [], stack
    # The dev exemption is a default of the pack config, not a fixed rule.
    strict = {defender: {"nonProductionStacks": []}}
    assert len(messages(_in_stack(plan, "dev"), defender, strict)) == 1


def test_tags_never_relax_the_production_rules(compliant_plan: Plan) -> None:
    rds = mutated(compliant_plan.one(aws.RDS_INSTANCE, "postgres"), {"deletionProtection": False})
    as_dev = [
        mutated(r, {"tags.environment": "dev"}) if "environment" in r.inputs.get("tags", {}) else r
        for r in compliant_plan.resources
        if r.urn != rds.urn
    ] + [mutated(rds, {"tags.environment": "dev"})]
    dev_tagged = replace(compliant_plan, resources=as_dev)
    # Every resource says dev, but the stack is prod: the rule holds.
    assert [n for n, _ in messages(dev_tagged, PROTECTION)] == ["postgres"]


def test_every_vpc_needs_a_flow_log(compliant_plan: Plan) -> None:
    flow_log = compliant_plan.one("aws:ec2/flowLog:FlowLog", "vpc")
    without = replace(
        compliant_plan, resources=[r for r in compliant_plan.resources if r is not flow_log]
    )
    found = messages(without, "aws-ec2-vpc-flow-logs")
    assert [n for n, _ in found] == ["vpc"]
    assert "add aws.ec2.FlowLog(vpc_id=<this vpc>.id" in found[0][1]
    assert messages(compliant_plan, "aws-ec2-vpc-flow-logs") == []


def test_inline_bucket_encryption_is_judged_like_the_separate_resource(
    compliant_plan: Plan,
) -> None:
    bucket = compliant_plan.one(aws.S3_BUCKET, "artifacts")
    sse = compliant_plan.one(aws.S3_SSE, "artifacts")
    rest = [r for r in compliant_plan.resources if r is not sse and r is not bucket]

    def inline(algorithm: str) -> Plan:
        rule = {"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm}}
        changed = mutated(bucket, {"serverSideEncryptionConfiguration": {"rules": [rule]}})
        return replace(compliant_plan, resources=[*rest, changed])

    assert messages(inline("aws:kms"), "aws-s3-bucket-default-encryption") == []
    found = messages(inline("AES256"), "aws-s3-bucket-default-encryption")
    assert "sseAlgorithm is ['AES256']" in found[0][1]


def test_an_account_block_covers_buckets_only_with_every_flag_on(compliant_plan: Plan) -> None:
    account = compliant_plan.one(ACCOUNT_BLOCK, "account")
    block = compliant_plan.one(aws.S3_PUBLIC_ACCESS_BLOCK, "artifacts")
    without_block = replace(
        compliant_plan, resources=[r for r in compliant_plan.resources if r is not block]
    )
    assert messages(without_block, "aws-s3-bucket-public-access-block") == []
    weak = swapped(without_block, mutated(account, {"restrictPublicBuckets": False}))
    assert [n for n, _ in messages(weak, "aws-s3-bucket-public-access-block")] == ["artifacts"]


def test_node_group_in_a_public_subnet(compliant_plan: Plan) -> None:
    public = compliant_plan.one("aws:ec2/subnet:Subnet", "public")
    nodes = compliant_plan.one(aws.EKS_NODE_GROUP, "nodes")
    moved = replace(
        nodes, property_dependencies={**nodes.property_dependencies, "subnetIds": [public.urn]}
    )
    assert messages(swapped(compliant_plan, moved), PRIVATE_NODES) == [
        (
            "nodes",
            "nodes: subnetIds include public subnets ['public'] (internet gateway route or "
            "mapPublicIpOnLaunch): set subnetIds to the private subnets",
        )
    ]


def test_subnet_made_public_by_a_route_or_public_ips(compliant_plan: Plan) -> None:
    private = compliant_plan.one("aws:ec2/subnet:Subnet", "private")
    assert messages(compliant_plan, PRIVATE_NODES) == []
    with_public_ips = mutated(private, {"mapPublicIpOnLaunch": True})
    assert [n for n, _ in messages(swapped(compliant_plan, with_public_ips), PRIVATE_NODES)] == [
        "nodes"
    ]
    table = compliant_plan.one("aws:ec2/routeTable:RouteTable", "private-routes")
    igw = compliant_plan.one("aws:ec2/internetGateway:InternetGateway", "igw")
    route = RecordedResource(
        urn=table.urn.replace(
            "aws:ec2/routeTable:RouteTable::private-routes", f"{ROUTE}::to-internet"
        ),
        type=ROUTE,
        name="to-internet",
        custom=True,
        parent=None,
        provider=table.provider,
        inputs={"routeTableId": "rtb-1", "destinationCidrBlock": "0.0.0.0/0", "gatewayId": "igw-1"},
        outputs={
            "routeTableId": "rtb-1",
            "destinationCidrBlock": "0.0.0.0/0",
            "gatewayId": "igw-1",
        },
        property_dependencies={"routeTableId": [table.urn], "gatewayId": [igw.urn]},
    )
    assert [n for n, _ in messages(swapped(compliant_plan, route), PRIVATE_NODES)] == ["nodes"]


def test_gke_node_pool_with_public_nodes(compliant_plan: Plan) -> None:
    pool = compliant_plan.one(gcp.GKE_NODE_POOL, "pool")
    public = mutated(pool, {"networkConfig.enablePrivateNodes": False})
    assert messages(swapped(compliant_plan, public), PRIVATE_NODES) == [
        (
            "pool",
            "pool: nodes get public IPs: set networkConfig.enablePrivateNodes=True "
            "(or privateClusterConfig.enablePrivateNodes=True on gke)",
        )
    ]
    # Inheriting from a private cluster is fine; from a public one it is not.
    inherits = mutated(pool, {"networkConfig": DELETE})
    assert messages(swapped(compliant_plan, inherits), PRIVATE_NODES) == []
    cluster = mutated(
        compliant_plan.one(gcp.GKE_CLUSTER, "gke"),
        {"privateClusterConfig.enablePrivateNodes": False},
    )
    assert [n for n, _ in messages(swapped(compliant_plan, inherits, cluster), PRIVATE_NODES)] == [
        "pool"
    ]


def test_every_bucket_needs_a_public_access_block_and_encryption(compliant_plan: Plan) -> None:
    bucket = compliant_plan.one(aws.S3_BUCKET, "artifacts")
    block = compliant_plan.one(aws.S3_PUBLIC_ACCESS_BLOCK, "artifacts")
    sse = compliant_plan.one(aws.S3_SSE, "artifacts")
    account = compliant_plan.one(ACCOUNT_BLOCK, "account")
    without_block = replace(
        compliant_plan,
        resources=[r for r in compliant_plan.resources if r is not block and r is not account],
    )
    assert messages(without_block, "aws-s3-bucket-public-access-block") == [
        (
            "artifacts",
            "artifacts: no BucketPublicAccessBlock: add aws.s3.BucketPublicAccessBlock with "
            "bucket=<this bucket>.id and all four block/ignore/restrict flags True",
        )
    ]
    account_block = replace(
        block,
        urn=block.urn.replace(
            "bucketPublicAccessBlock:BucketPublicAccessBlock",
            "accountPublicAccessBlock:AccountPublicAccessBlock",
        ),
        type="aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
        property_dependencies={},
    )
    assert (
        messages(swapped(without_block, account_block), "aws-s3-bucket-public-access-block") == []
    )
    without_sse = replace(
        compliant_plan, resources=[r for r in compliant_plan.resources if r is not sse]
    )
    found = messages(without_sse, "aws-s3-bucket-default-encryption")
    assert [n for n, _ in found] == ["artifacts"]
    assert "add aws.s3.BucketServerSideEncryptionConfiguration" in found[0][1]
    assert bucket.urn in {v.urn for v in verdict(without_sse).violations}


def test_public_zones_log_queries_and_vnets_log_flows(compliant_plan: Plan) -> None:
    policy = "multicloud-network-traffic-logs"
    assert messages(compliant_plan, policy) == []
    query_log = compliant_plan.one("aws:route53/queryLog:QueryLog", "public-zone")
    flow_log = compliant_plan.one("azure-native:network:FlowLog", "vnet")
    without = replace(
        compliant_plan,
        resources=[r for r in compliant_plan.resources if r not in (query_log, flow_log)],
    )
    found = messages(without, policy)
    assert [n for n, _ in found] == ["public-zone", "vnet"]
    assert "add aws.route53.QueryLog" in found[0][1]
    assert "NSG flow logs are retired" in found[1][1]
    # A private zone logs through Resolver query logging, per VPC: not this rule's business.
    zone = compliant_plan.one("aws:route53/zone:Zone", "public-zone")
    private = mutated(zone, {"vpcs": [{"vpcId": "vpc-1"}]})
    assert [n for n, _ in messages(swapped(without, private), policy)] == ["vnet"]


def test_public_zones_are_signed_on_every_dns(compliant_plan: Plan) -> None:
    """CKV2_AWS_38 (Route 53), CKV_GCP_16/17 (Cloud DNS) and Azure DNS's DnssecConfig."""
    policy = "multicloud-dns-zone-dnssec"
    assert messages(compliant_plan, policy) == []
    signing = [
        compliant_plan.one("aws:route53/hostedZoneDnsSec:HostedZoneDnsSec", "public-zone"),
        compliant_plan.one("azure-native:dns:DnssecConfig", "azure-zone"),
    ]
    unsigned = replace(
        compliant_plan, resources=[r for r in compliant_plan.resources if r not in signing]
    )
    found = messages(unsigned, policy)
    assert [n for n, _ in found] == ["public-zone", "azure-zone"]
    assert "add aws.route53.KeySigningKey" in found[0][1]
    assert "add azure-native dns.DnssecConfig" in found[1][1]
    # Route 53 signing switched off is no signing.
    dnssec = mutated(signing[0], {"signingStatus": "NOT_SIGNING"})
    assert [n for n, _ in messages(swapped(compliant_plan, dnssec), policy)] == ["public-zone"]
    # Cloud DNS: signing off, or on with RSASHA1.
    zone = compliant_plan.one("gcp:dns/managedZone:ManagedZone", "cloud-dns-zone")
    off = mutated(zone, {"dnssecConfig.state": "off"})
    assert [m for _, m in messages(swapped(compliant_plan, off), policy)] == [
        "cloud-dns-zone: dnssecConfig.state is not on: set dnssecConfig.state='on'"
    ]
    sha1 = mutated(zone, {"dnssecConfig.defaultKeySpecs": [{"algorithm": "rsasha1"}]})
    assert "signs with RSASHA1" in messages(swapped(compliant_plan, sha1), policy)[0][1]
    # Private zones are answered inside the network only: not this rule's business.
    private = [
        mutated(
            compliant_plan.one("aws:route53/zone:Zone", "public-zone"), {"vpcs": [{"vpcId": "v"}]}
        ),
        mutated(off, {"visibility": "private"}),
        mutated(compliant_plan.one("azure-native:dns:Zone", "azure-zone"), {"zoneType": "Private"}),
    ]
    assert messages(swapped(unsigned, *private), policy) == []


def test_rules_that_add_up_to_the_internet_are_caught_together(compliant_plan: Plan) -> None:
    """Twenty /13s on port 22: each rule alone is under "the world", the group's union is not."""
    policy = "aws-ec2-securitygroup-combined-public-ingress"
    template = compliant_plan.one(aws.SECURITY_GROUP_INGRESS_RULE, "postgres-in")

    def rule(index: int, port: int = 22) -> RecordedResource:
        changes = {
            "fromPort": port,
            "toPort": port,
            "cidrIpv6": DELETE,
            "cidrIpv4": f"{8 + 8 * index}.0.0.0/13",
        }
        split = mutated(template, changes)
        return replace(split, urn=f"{template.urn}-{index}-{port}", name=f"ssh-{index}")

    many = swapped(compliant_plan, *[rule(i) for i in range(20)])
    found = messages(many, policy)
    assert [n for n, _ in found] == ["data-sg"]
    assert "its rules together open port 22 to the whole internet (20 rules" in found[0][1]
    # No single rule is the world, so the per-rule policy alone would pass them.
    per_rule = "aws-ec2-securitygroup-no-public-ingress"
    assert messages(many, per_rule) == []
    # Spread over different ports, no port is open to the world.
    spread = swapped(compliant_plan, *[rule(i, port=2000 + i) for i in range(20)])
    assert messages(spread, policy) == []
    # HTTPS is allowed from anywhere, together or not.
    https = swapped(compliant_plan, *[rule(i, port=443) for i in range(20)])
    assert messages(https, policy) == []


# ------------------------------------------------------------- Gateway API

PUBLIC_LISTENER_TLS = "kubernetes-gateway-public-listener-tls"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"


def test_https_route_and_redirect_only_plain_listener_pass(compliant_plan: Plan) -> None:
    assert messages(compliant_plan, PUBLIC_LISTENER_TLS) == []


def test_a_route_serving_through_the_plain_listener_is_flagged(compliant_plan: Plan) -> None:
    """Each way a route reaches the HTTP listener: every listener, sectionName, port."""
    api = compliant_plan.one(HTTP_ROUTE, "api")
    ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}
    for parent in (ref, {**ref, "sectionName": "http"}, {**ref, "port": 80}):
        found = messages(
            swapped(compliant_plan, mutated(api, {"spec.parentRefs": [parent]})),
            PUBLIC_LISTENER_TLS,
        )
        assert found == [
            (
                "api",
                "HTTPRoute api rule 0 sends traffic through Gateway edge listener http (HTTP, "
                "port 80) without TLS: attach it to the HTTPS listener (parentRefs sectionName) "
                "and give the plain listener only a RequestRedirect with scheme https",
            )
        ], parent
    # A route in another namespace names the Gateway's namespace to attach.
    elsewhere = mutated(api, {"metadata.namespace": "team", "spec.parentRefs": [ref]})
    assert messages(swapped(compliant_plan, elsewhere), PUBLIC_LISTENER_TLS) == []


def test_a_redirect_to_plain_http_is_not_a_redirect_to_tls(compliant_plan: Plan) -> None:
    redirect = compliant_plan.one(HTTP_ROUTE, "https-redirect")
    http = mutated(redirect, {"spec.rules.0.filters.0.requestRedirect.scheme": "http"})
    assert [n for n, _ in messages(swapped(compliant_plan, http), PUBLIC_LISTENER_TLS)] == [
        "https-redirect"
    ]


def test_raw_tcp_listeners_are_flagged_and_internal_gateways_exempt(compliant_plan: Plan) -> None:
    gateway = compliant_plan.one(GATEWAY, "edge")
    listeners = [*gateway.get("spec.listeners"), {"name": "db", "protocol": "TCP", "port": 5432}]
    tcp = mutated(gateway, {"spec.listeners": listeners})
    assert messages(swapped(compliant_plan, tcp), PUBLIC_LISTENER_TLS) == [
        (
            "edge",
            "Gateway edge listener db (TCP, port 5432) carries raw traffic without TLS on a "
            "public load balancer: use an HTTPS (or TLS) listener",
        )
    ]
    # The same Gateway behind each cloud's internal load balancer faces no internet.
    api = compliant_plan.one(HTTP_ROUTE, "api")
    plain = mutated(api, {"spec.parentRefs.0.sectionName": "http"})
    for key, value in (
        ("service.beta.kubernetes.io/aws-load-balancer-scheme", "internal"),
        ("service.beta.kubernetes.io/azure-load-balancer-internal", "true"),
        ("networking.gke.io/load-balancer-type", "Internal"),
    ):
        internal = mutated(tcp, {"spec.infrastructure": {"annotations": {key: value}}})
        assert messages(swapped(compliant_plan, internal, plain), PUBLIC_LISTENER_TLS) == [], key


# ------------------------------------------------------------- the console's networks

CONSOLE_CIDRS = "kubernetes-gateway-console-allowed-cidrs"
SECURITY_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def test_a_console_behind_an_allow_list_passes(compliant_plan: Plan) -> None:
    assert messages(compliant_plan, CONSOLE_CIDRS) == []


def test_a_console_without_an_edge_allow_list_is_flagged(compliant_plan: Plan) -> None:
    """Each way the console's paths escape the list: no policy, a policy on another route,
    an Allow default, an Allow rule by something other than networks, the internet."""
    policy = compliant_plan.one(SECURITY_POLICY, "console-networks")
    config_map = compliant_plan.one(CONFIG_MAP, "gateway-config")
    without = replace(
        compliant_plan, resources=[r for r in compliant_plan.resources if r is not policy]
    )
    other_route = mutated(policy, {"spec.targetRefs.0.name": "api"})
    for plan in (without, swapped(compliant_plan, other_route)):
        assert messages(plan, CONSOLE_CIDRS) == [
            (
                "gateway-config",
                "ConfigMap gateway-config configures a gateway that serves the console "
                "(/console, /auth) in namespace ai-gateway, and no SecurityPolicy restricts "
                "those paths to an allow-list at the edge: set "
                "ai-gateway:gateway.consoleAllowedCidrs to the organisation's networks (an Envoy "
                "Gateway SecurityPolicy on the console's HTTPRoute: authorization.defaultAction "
                "Deny, Allow rules on principal.clientCIDRs)",
            )
        ]
    rule = "spec.authorization.rules.0"
    for change, problem in (
        ({"spec.authorization.defaultAction": "Allow"}, "has defaultAction Allow"),
        ({f"{rule}.principal": {"headers": [{"name": "x-corp", "values": ["1"]}]}}, "other than client networks"),
        ({f"{rule}.principal.clientCIDRs": ["0.0.0.0/1", "128.0.0.0/1"]}, "the whole internet"),
        ({"spec.authorization": DELETE}, "has no authorization"),
    ):  # fmt: skip
        found = messages(swapped(compliant_plan, mutated(policy, change)), CONSOLE_CIDRS)
        assert [n for n, _ in found] == ["console-networks"], change
        assert problem in found[0][1], found
    # A policy on the Gateway covers the console too; no console (no identity): nothing to judge.
    on_gateway = mutated(policy, {"spec.targetRefs.0": {"kind": "Gateway", "name": "edge"}})
    assert messages(swapped(compliant_plan, on_gateway), CONSOLE_CIDRS) == []
    no_console = mutated(config_map, {"data": {"config.yaml": "models: {}\n"}})
    assert messages(swapped(without, no_console), CONSOLE_CIDRS) == []


def test_the_console_rule_is_for_production_stacks(compliant_plan: Plan) -> None:
    policy = compliant_plan.one(SECURITY_POLICY, "console-networks")
    plan = replace(
        compliant_plan, resources=[r for r in compliant_plan.resources if r is not policy]
    )
    for stack in ("dev", "staging", "team-dev"):
        assert messages(_in_stack(plan, stack), CONSOLE_CIDRS) == [], stack
    assert len(messages(_in_stack(plan, "eu-live"), CONSOLE_CIDRS)) == 1
