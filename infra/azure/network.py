"""The Azure network: a VNet with node, PostgreSQL and private-endpoint subnets.

Each subnet has its own network security group that admits only what its
tenants need (HTTPS to the gateway's load balancer address on the nodes,
PostgreSQL and Redis from the node subnet only). Outbound traffic leaves through one NAT
gateway with a static public IP (the AKS outbound type
``userAssignedNATGateway``), so egress addresses are known and stable, and
every subnet has Azure's implicit default outbound access turned off.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

from infra.config import StackConfig
from infra.decisions.azure import azure_name, subnet_plan

POSTGRES_DELEGATION = "Microsoft.DBforPostgreSQL/flexibleServers"
REDIS_TLS_PORT = "10000"
POSTGRES_PORT = "5432"


@dataclass
class NetworkArgs:
    """Inputs of :class:`Network`."""

    resource_group_name: pulumi.Input[str]
    """The stack's resource group."""
    location: str
    """Azure region of every resource."""
    name_prefix: str
    """``<project>-<environment>``, the stem of every name."""
    vnet_cidr: str
    """VNet address space (a /19 or larger), carved by :func:`infra.decisions.azure.subnet_plan`."""
    zones: tuple[str, ...] = ()
    """Availability zones of the gateway's public IP (zone-redundant when several)."""
    governance_channel: bool = False
    """A second public IP for the governance channel's load balancer (``ai-gateway:governance``)."""

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        resource_group_name: pulumi.Input[str],
        location: str,
    ) -> NetworkArgs:
        """The args from the stack's ``azure`` section; the keywords wire in other components."""
        s = config.azure
        return cls(
            name_prefix=config.name_prefix,
            vnet_cidr=s.vnet_cidr,
            zones=tuple(s.availability_zones),
            resource_group_name=resource_group_name,
            location=location,
            governance_channel=config.governance.active(config.enabled_clouds),
        )


class Network(pulumi.ComponentResource):
    """VNet, subnets, NSGs and the NAT gateway of one stack (``ai-gateway:azure:Network``).

    Outputs: ``vnet_id``, ``vnet_name``, ``node_subnet_id``,
    ``postgres_subnet_id``, ``endpoint_subnet_id``, ``egress_ip`` (the NAT
    gateway's public address) and ``ingress_ip`` (the public IP the gateway's
    load balancer is pinned to: ``ingress_ip.name``, ``ingress_ip.id``,
    ``ingress_ip.ip_address``).
    """

    vnet_id: pulumi.Output[str]
    vnet_name: pulumi.Output[str]
    node_subnet_id: pulumi.Output[str]
    postgres_subnet_id: pulumi.Output[str]
    endpoint_subnet_id: pulumi.Output[str]
    egress_ip: pulumi.Output[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:azure:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan = subnet_plan(args.vnet_cidr)
        rg = args.resource_group_name
        prefix = args.name_prefix

        # The gateway's public address, owned here (not by AKS) so the NSG can
        # name it: AKS load-balancing rules use floating IP, so packets reach the
        # nodes still addressed to this IP, never to the node subnet.
        self.ingress_ip = _static_ip(name, "ingress", args, zones=args.zones, opts=child)
        # The governance channel's own address: its load balancer admits only the other
        # clouds (AKS writes loadBalancerSourceRanges into the cluster's NSG), and the
        # subnet NSG below lets HTTPS reach exactly this address too.
        self.governance_ip = (
            _static_ip(name, "governance", args, zones=args.zones, opts=child)
            if args.governance_channel
            else None
        )
        channel_rules = (
            [
                _rule(
                    "allow-https-to-governance-ip",
                    110,
                    source="Internet",
                    destination=self.governance_ip.ip_address.apply(lambda ip: ip or ""),
                    port="443",
                )
            ]
            if self.governance_ip is not None
            else []
        )
        node_nsg = network.NetworkSecurityGroup(
            f"{name}-nodes",
            network_security_group_name=azure_name(
                "network_security_group", "nsg", prefix, "nodes"
            ),
            resource_group_name=rg,
            location=args.location,
            security_rules=[
                # HTTPS only, to the load balancer's own address (the NSG
                # otherwise denies everything from the internet; plain HTTP is
                # never served, so an API key is never sent in clear text).
                _rule(
                    "allow-https-to-gateway-ip",
                    100,
                    source="Internet",
                    destination=self.ingress_ip.ip_address.apply(lambda ip: ip or ""),
                    port="443",
                ),
                *channel_rules,
            ],
            opts=child,
        )
        postgres_nsg = network.NetworkSecurityGroup(
            f"{name}-postgres",
            network_security_group_name=azure_name(
                "network_security_group", "nsg", prefix, "postgres"
            ),
            resource_group_name=rg,
            location=args.location,
            security_rules=[
                _rule(
                    "allow-postgres-from-nodes",
                    100,
                    source=plan.nodes,
                    destination=plan.postgres,
                    port=POSTGRES_PORT,
                ),
                # The HA standby replicates from the primary inside this subnet.
                _rule(
                    "allow-within-subnet",
                    110,
                    source=plan.postgres,
                    destination=plan.postgres,
                    port="*",
                    protocol=network.SecurityRuleProtocol.ASTERISK,
                ),
                _deny_vnet_inbound(plan.postgres),
            ],
            opts=child,
        )
        endpoint_nsg = network.NetworkSecurityGroup(
            f"{name}-endpoints",
            network_security_group_name=azure_name(
                "network_security_group", "nsg", prefix, "endpoints"
            ),
            resource_group_name=rg,
            location=args.location,
            security_rules=[
                _rule(
                    "allow-redis-tls-from-nodes",
                    100,
                    source=plan.nodes,
                    destination=plan.endpoints,
                    port=REDIS_TLS_PORT,
                ),
                _deny_vnet_inbound(plan.endpoints),
            ],
            opts=child,
        )

        egress_ip = _static_ip(name, "egress", args, zones=(), opts=child)
        nat = network.NatGateway(
            f"{name}-nat",
            nat_gateway_name=azure_name("nat_gateway", "ng", prefix),
            resource_group_name=rg,
            location=args.location,
            sku=network.NatGatewaySkuArgs(name=network.NatGatewaySkuName.STANDARD),
            idle_timeout_in_minutes=4,
            public_ip_addresses=[network.SubResourceArgs(id=egress_ip.id)],
            opts=child,
        )

        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=azure_name("virtual_network", "vnet", prefix),
            resource_group_name=rg,
            location=args.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.vnet_cidr]),
            opts=child,
        )
        # Azure serialises operations on one VNet and fails concurrent subnet
        # writes ("AnotherOperationInProgress"), so the subnets are chained.
        node_subnet = network.Subnet(
            f"{name}-nodes",
            subnet_name=azure_name("subnet", "snet", "nodes"),
            resource_group_name=rg,
            virtual_network_name=vnet.name,
            address_prefix=plan.nodes,
            network_security_group=network.NetworkSecurityGroupArgs(id=node_nsg.id),
            nat_gateway=network.SubResourceArgs(id=nat.id),
            default_outbound_access=False,
            opts=child,
        )
        postgres_subnet = network.Subnet(
            f"{name}-postgres",
            subnet_name=azure_name("subnet", "snet", "postgres"),
            resource_group_name=rg,
            virtual_network_name=vnet.name,
            address_prefix=plan.postgres,
            network_security_group=network.NetworkSecurityGroupArgs(id=postgres_nsg.id),
            delegations=[
                network.DelegationArgs(name="postgres-flexible", service_name=POSTGRES_DELEGATION)
            ],
            default_outbound_access=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node_subnet]),
        )
        endpoint_subnet = network.Subnet(
            f"{name}-endpoints",
            subnet_name=azure_name("subnet", "snet", "endpoints"),
            resource_group_name=rg,
            virtual_network_name=vnet.name,
            address_prefix=plan.endpoints,
            network_security_group=network.NetworkSecurityGroupArgs(id=endpoint_nsg.id),
            # Enforce the NSG (and route tables) on the private endpoints too;
            # Azure skips them for endpoints unless this is on.
            private_endpoint_network_policies=network.VirtualNetworkPrivateEndpointNetworkPolicies.ENABLED,
            default_outbound_access=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[postgres_subnet]),
        )

        self.vnet_id = vnet.id
        self.vnet_name = vnet.name
        self.node_subnet_id = node_subnet.id
        self.postgres_subnet_id = postgres_subnet.id
        self.endpoint_subnet_id = endpoint_subnet.id
        self.egress_ip = egress_ip.ip_address.apply(lambda ip: ip or "")
        self.register_outputs(
            {
                "vnetId": self.vnet_id,
                "nodeSubnetId": self.node_subnet_id,
                "postgresSubnetId": self.postgres_subnet_id,
                "endpointSubnetId": self.endpoint_subnet_id,
                "egressIp": self.egress_ip,
            }
        )


def _static_ip(
    name: str,
    role: str,
    args: NetworkArgs,
    *,
    zones: tuple[str, ...],
    opts: pulumi.ResourceOptions,
) -> network.PublicIPAddress:
    """A Standard, static IPv4 address ``pip-<prefix>-<role>`` (zone-redundant over ``zones``)."""
    return network.PublicIPAddress(
        f"{name}-{role}",
        public_ip_address_name=azure_name("public_ip", "pip", args.name_prefix, role),
        resource_group_name=args.resource_group_name,
        location=args.location,
        sku=network.PublicIPAddressSkuArgs(
            name=network.PublicIPAddressSkuName.STANDARD,
            tier=network.PublicIPAddressSkuTier.REGIONAL,
        ),
        public_ip_allocation_method=network.IPAllocationMethod.STATIC,
        public_ip_address_version=network.IPVersion.I_PV4,
        zones=list(zones) or None,
        opts=opts,
    )


def _rule(
    name: str,
    priority: int,
    *,
    source: str,
    destination: pulumi.Input[str],
    port: str,
    protocol: network.SecurityRuleProtocol = network.SecurityRuleProtocol.TCP,
) -> network.SecurityRuleArgs:
    return network.SecurityRuleArgs(
        name=name,
        priority=priority,
        direction=network.SecurityRuleDirection.INBOUND,
        access=network.SecurityRuleAccess.ALLOW,
        protocol=protocol,
        source_address_prefix=source,
        source_port_range="*",
        destination_address_prefix=destination,
        destination_port_range=port,
    )


def _deny_vnet_inbound(destination: str) -> network.SecurityRuleArgs:
    # Azure's default rule 65000 allows all VNet-internal traffic; this one
    # ranks above it so only the allow rules above reach the subnet.
    return network.SecurityRuleArgs(
        name="deny-other-vnet-inbound",
        priority=4000,
        direction=network.SecurityRuleDirection.INBOUND,
        access=network.SecurityRuleAccess.DENY,
        protocol=network.SecurityRuleProtocol.ASTERISK,
        source_address_prefix="VirtualNetwork",
        source_port_range="*",
        destination_address_prefix=destination,
        destination_port_range="*",
    )
