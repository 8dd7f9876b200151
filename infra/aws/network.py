"""The AWS network: a VPC across the AZs with public, private and database subnets.

Public subnets hold the internet gateway's routes, the NAT gateways and the
internet-facing load balancers; private subnets hold the EKS nodes (egress
through NAT); database subnets hold RDS and ElastiCache and have no route to
the internet at all. Flow logs of all traffic go to a KMS-encrypted CloudWatch
log group, and the VPC's default security group is emptied so nothing can use
it by accident (CIS AWS Foundations 5.4).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import StackConfig
from infra.decisions import aws as decisions


def flow_logs_trust_policy(account_id: str, region: str, partition: str = "aws") -> dict:
    """Trust for the flow-log role: the VPC Flow Logs service, for this account's flow logs only.

    ``aws:SourceAccount`` and ``aws:SourceArn`` keep another account's flow logs
    from using the role (the confused-deputy guard of the VPC user guide's
    "IAM role for publishing flow logs to CloudWatch Logs").
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{partition}:ec2:{region}:{account_id}:vpc-flow-log/*"
                    },
                },
            }
        ],
    }


@dataclass
class NetworkArgs:
    """Inputs of :class:`Network`."""

    name_prefix: str
    """Prefix of every physical name, ``<project>-<environment>``."""
    vpc_cidr: str
    """The VPC's IPv4 block; split by :func:`decisions.split_vpc_cidr`."""
    zone_count: int
    """AZs the VPC spans."""
    nat_gateways: str
    """``single`` or ``one-per-az``."""
    cluster_name: str
    """The EKS cluster the subnets are tagged for (load balancer discovery)."""
    kms_key_arn: pulumi.Input[str]
    """Customer-managed key encrypting the flow-log group."""
    log_retention_days: int
    """Days the flow logs are kept."""

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        cluster_name: str,
        kms_key_arn: pulumi.Input[str],
    ) -> NetworkArgs:
        """The args from the stack's ``aws`` section; the keywords wire in other components."""
        s = config.aws
        return cls(
            name_prefix=config.name_prefix,
            vpc_cidr=s.vpc_cidr,
            zone_count=s.availability_zone_count,
            nat_gateways=s.nat_gateways,
            log_retention_days=s.log_retention_days,
            cluster_name=cluster_name,
            kms_key_arn=kms_key_arn,
        )


def _subnet_name(prefix: str, tier: str, zone: str) -> str:
    return f"{prefix}-{tier}-{zone}"


class Network(pulumi.ComponentResource):
    """VPC, subnets per tier and AZ, internet and NAT gateways, routes and flow logs.

    Outputs: ``vpc_id``, ``public_subnet_ids``, ``private_subnet_ids``,
    ``database_subnet_ids`` (lists in AZ order) and ``zones``.
    """

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:aws:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        layout = decisions.split_vpc_cidr(args.vpc_cidr, args.zone_count)
        nat_count = decisions.nat_gateway_count(args.nat_gateways, args.zone_count)

        available = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        )
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))
        zones = pulumi.Output.all(available.names, region.region).apply(
            lambda a: decisions.pick_zones(list(a[0]), args.zone_count, a[1])
        )

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            # EKS and private RDS/ElastiCache endpoints resolve through VPC DNS.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": f"{args.name_prefix}-vpc"},
            opts=child,
        )
        # Adopting the default security group with no rules removes its
        # allow-all-within-the-group ingress and allow-all egress.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            tags={"Name": f"{args.name_prefix}-default-deny"},
            opts=child,
        )

        cluster_tag = f"kubernetes.io/cluster/{args.cluster_name}"
        public = self._subnets(
            name,
            "public",
            layout.public,
            zones,
            args,
            # The AWS Load Balancer Controller places internet-facing LBs here.
            {"kubernetes.io/role/elb": "1", cluster_tag: "shared"},
        )
        private = self._subnets(
            name,
            "private",
            layout.private,
            zones,
            args,
            {"kubernetes.io/role/internal-elb": "1", cluster_tag: "shared"},
        )
        database = self._subnets(name, "database", layout.database, zones, args, {})

        igw = aws.ec2.InternetGateway(
            f"{name}-igw",
            vpc_id=self.vpc.id,
            tags={"Name": f"{args.name_prefix}-igw"},
            opts=child,
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={"Name": f"{args.name_prefix}-public"},
            opts=child,
        )
        for index, subnet in enumerate(public):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-rta-{index}",
                subnet_id=subnet.id,
                route_table_id=public_routes.id,
                opts=child,
            )

        nat_gateways = []
        # The NAT gateways' public addresses: every pod's egress to the internet, so
        # what the other clouds' governance channel admits from this one.
        self.egress_ips: list[pulumi.Output[str]] = []
        for index in range(nat_count):
            eip = aws.ec2.Eip(
                f"{name}-nat-eip-{index}",
                domain="vpc",
                tags={"Name": f"{args.name_prefix}-nat-{index}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            self.egress_ips.append(eip.public_ip)
            nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{index}",
                    allocation_id=eip.allocation_id,
                    subnet_id=public[index].id,
                    connectivity_type="public",
                    tags={"Name": f"{args.name_prefix}-nat-{index}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )

        for index, subnet in enumerate(private):
            nat = nat_gateways[decisions.nat_gateway_for_zone(index, nat_count)]
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{index}",
                vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags={"Name": f"{args.name_prefix}-private-{index}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-rta-{index}",
                subnet_id=subnet.id,
                route_table_id=table.id,
                opts=child,
            )

        # Databases answer the nodes inside the VPC and never need the internet:
        # their route table has only the implicit local route.
        database_routes = aws.ec2.RouteTable(
            f"{name}-database-rt",
            vpc_id=self.vpc.id,
            tags={"Name": f"{args.name_prefix}-database"},
            opts=child,
        )
        for index, subnet in enumerate(database):
            aws.ec2.RouteTableAssociation(
                f"{name}-database-rta-{index}",
                subnet_id=subnet.id,
                route_table_id=database_routes.id,
                opts=child,
            )

        self._flow_logs(name, args, region.region)

        self.vpc_id = self.vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.database_subnet_ids = pulumi.Output.all(*[s.id for s in database])
        self.zones = zones
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "databaseSubnetIds": self.database_subnet_ids,
                "zones": self.zones,
            }
        )

    def _subnets(
        self,
        name: str,
        tier: str,
        cidrs: tuple[str, ...],
        zones: pulumi.Output[list[str]],
        args: NetworkArgs,
        extra_tags: dict[str, str],
    ) -> list[aws.ec2.Subnet]:
        # The subnet count comes from config (known now); only each subnet's
        # AZ name comes from the data source, so no resource is made in apply().
        return [
            aws.ec2.Subnet(
                f"{name}-{tier}-{index}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=zones[index],
                # Nothing gets a public IP by accident, not even in public subnets:
                # NAT gateways and load balancers bring their own addresses.
                map_public_ip_on_launch=False,
                tags={
                    "Name": zones[index].apply(
                        functools.partial(_subnet_name, args.name_prefix, tier)
                    ),
                    "tier": tier,
                    **extra_tags,
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
            for index, cidr in enumerate(cidrs)
        ]

    def _flow_logs(self, name: str, args: NetworkArgs, region: pulumi.Output[str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/aws/vpc-flow-log/{args.name_prefix}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            name=decisions.aws_name(args.name_prefix, "vpc-flow-logs", "iam-role"),
            assume_role_policy=pulumi.Output.all(account_id, region, partition).apply(
                lambda a: json.dumps(flow_logs_trust_policy(a[0], a[1], a[2]))
            ),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            # Only the one log group: the role cannot write anywhere else.
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogGroups",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
                        }
                    ],
                }
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            # One-minute aggregation: incidents are investigated at that resolution.
            max_aggregation_interval=60,
            tags={"Name": f"{args.name_prefix}-flow-log"},
            opts=child,
        )
