"""The VPC on each stack's recorded plan: subnets, routes, NAT per environment, flow logs."""

from __future__ import annotations

import ipaddress

from infra.offline import Plan, RecordedResource
from tests.infra.aws.conftest import child_of, footprint_key

NAT_GATEWAYS = {"dev": 1, "staging": 3, "prod": 3}
VPC_CIDRS = {"dev": "10.10.0.0/16", "staging": "10.110.0.0/16", "prod": "10.210.0.0/16"}
LOG_RETENTION = {"dev": 30, "staging": 90, "prod": 365}


def _subnets(plan: Plan, tier: str) -> list[RecordedResource]:
    return sorted(
        (s for s in plan.of_type("aws:ec2/subnet:Subnet") if s.get("tags.tier") == tier),
        key=lambda s: s.name,
    )


def _route_table_of(plan: Plan, subnet: RecordedResource) -> RecordedResource:
    [association] = [
        a
        for a in plan.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
        if a.inputs["subnetId"] == subnet.id
    ]
    [table] = [
        t
        for t in plan.of_type("aws:ec2/routeTable:RouteTable")
        if t.id == association.inputs["routeTableId"]
    ]
    return table


def test_vpc_uses_the_configured_cidr_with_dns(plans: dict[str, Plan], stack: str) -> None:
    vpc = plans[stack].one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == VPC_CIDRS[stack]
    assert vpc.inputs["enableDnsSupport"] is True
    assert vpc.inputs["enableDnsHostnames"] is True
    assert child_of(plans[stack], vpc, "ai-gateway:aws:Network")


def test_three_tiers_across_three_zones_inside_the_vpc(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    vpc = plan.one("aws:ec2/vpc:Vpc")
    network = ipaddress.ip_network(VPC_CIDRS[stack])
    for tier in ("public", "private", "database"):
        subnets = _subnets(plan, tier)
        assert [s.inputs["availabilityZone"] for s in subnets] == [
            "us-east-1a",
            "us-east-1b",
            "us-east-1c",
        ]
        for subnet in subnets:
            assert subnet.inputs["vpcId"] == vpc.id
            assert ipaddress.ip_network(subnet.inputs["cidrBlock"]).subnet_of(network)
            assert subnet.inputs["mapPublicIpOnLaunch"] is False


def test_subnets_carry_the_load_balancer_discovery_tags(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    cluster_tag = f"kubernetes.io/cluster/{plan.one('aws:eks/cluster:Cluster').inputs['name']}"
    for subnet in _subnets(plan, "public"):
        assert subnet.get("tags")["kubernetes.io/role/elb"] == "1"
        assert subnet.get("tags")[cluster_tag] == "shared"
    for subnet in _subnets(plan, "private"):
        assert subnet.get("tags")["kubernetes.io/role/internal-elb"] == "1"
        assert "kubernetes.io/role/elb" not in subnet.get("tags")
    for subnet in _subnets(plan, "database"):
        assert not any(k.startswith("kubernetes.io/") for k in subnet.get("tags"))


def test_nat_gateways_per_environment(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    nats = plan.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == NAT_GATEWAYS[stack]
    assert len(plan.of_type("aws:ec2/eip:Eip")) == NAT_GATEWAYS[stack]
    public_ids = {s.id for s in _subnets(plan, "public")}
    assert {n.inputs["subnetId"] for n in nats} <= public_ids
    assert len({n.inputs["subnetId"] for n in nats}) == len(nats)


def test_routes_public_to_igw_private_to_nat_database_nowhere(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    igw = plan.one("aws:ec2/internetGateway:InternetGateway")
    nat_ids = {n.id for n in plan.of_type("aws:ec2/natGateway:NatGateway")}
    for subnet in _subnets(plan, "public"):
        routes = _route_table_of(plan, subnet).get("routes")
        assert routes == [{"cidrBlock": "0.0.0.0/0", "gatewayId": igw.id}]
    used_nats = set()
    for subnet in _subnets(plan, "private"):
        [route] = _route_table_of(plan, subnet).get("routes")
        assert route["cidrBlock"] == "0.0.0.0/0" and route["natGatewayId"] in nat_ids
        assert "gatewayId" not in route
        used_nats.add(route["natGatewayId"])
    # With a NAT per AZ each zone egresses through its own.
    assert len(used_nats) == NAT_GATEWAYS[stack]
    for subnet in _subnets(plan, "database"):
        assert not _route_table_of(plan, subnet).get("routes")


def test_default_security_group_is_emptied(plans: dict[str, Plan], stack: str) -> None:
    default = plans[stack].one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default.inputs["vpcId"] == plans[stack].one("aws:ec2/vpc:Vpc").id
    assert not default.get("ingress") and not default.get("egress")


def test_flow_logs_go_to_an_encrypted_retained_log_group(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    flow_log = plan.one("aws:ec2/flowLog:FlowLog")
    [group] = [
        g
        for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"].startswith("/aws/vpc-flow-log/")
    ]
    key = footprint_key(plan)
    assert flow_log.inputs["vpcId"] == plan.one("aws:ec2/vpc:Vpc").id
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow_log.inputs["logDestination"] == group.outputs["arn"]
    assert group.inputs["kmsKeyId"] == key.outputs["arn"]
    assert group.inputs["retentionInDays"] == LOG_RETENTION[stack]
    role = next(
        r
        for r in plan.of_type("aws:iam/role:Role")
        if r.outputs["arn"] == flow_log.inputs["iamRoleArn"]
    )
    assert "vpc-flow-logs.amazonaws.com" in role.inputs["assumeRolePolicy"]


def test_flow_log_role_trust_is_limited_to_this_accounts_flow_logs(
    plans: dict[str, Plan], stack: str
) -> None:
    """The confused-deputy guard of the VPC user guide's "IAM role for publishing flow logs
    to CloudWatch Logs": aws:SourceAccount and aws:SourceArn on the trust policy."""
    import json

    plan = plans[stack]
    flow_log = plan.one("aws:ec2/flowLog:FlowLog")
    role = next(
        r
        for r in plan.of_type("aws:iam/role:Role")
        if r.outputs["arn"] == flow_log.inputs["iamRoleArn"]
    )
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    account = footprint_key(plan).outputs["arn"].split(":")[4]
    assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:us-east-1:{account}:vpc-flow-log/*"},
    }
