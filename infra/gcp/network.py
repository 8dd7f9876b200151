"""The GCP network: a custom-mode VPC, the GKE subnet, Cloud NAT, firewall, private service access.

Reads top to bottom in dependency order: the VPC, the node subnet with its pods
and services secondary ranges and flow logs, a Cloud Router with Cloud NAT (the
nodes are private and have no external IP), the firewall rules, and the peered
range plus the service networking connection through which Cloud SQL and
Memorystore get private IPs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.decisions.gcp import resource_name

GOOGLE_HEALTH_CHECK_RANGES = ("35.191.0.0/16", "130.211.0.0/22")
"""Source ranges of Google Cloud load balancer health checks (documented by Google)."""

SERVICE_NETWORKING = "servicenetworking.googleapis.com"

PODS_RANGE_NAME = "pods"
SERVICES_RANGE_NAME = "services"


@dataclass
class NetworkArgs:
    """Inputs of :class:`Network`.

    ``health_check_ports`` are the ports Google's load balancer health checks
    may reach on the nodes (the gateway Service's health check node port, see
    :data:`infra.gcp.footprint.LOAD_BALANCER_HEALTH_CHECK_PORTS`);
    ``control_plane_webhook_ports`` the ports the private control plane
    (``control_plane_cidr``) must reach for admission webhooks beyond the 443
    and 10250 GKE opens itself (:data:`infra.gcp.footprint.CONTROL_PLANE_WEBHOOK_PORTS`).
    Nothing else is opened from outside the VPC.
    """

    name_prefix: str
    region: str
    subnet_cidr: str
    pods_cidr: str
    services_cidr: str
    private_service_cidr: str
    node_tag: str
    health_check_ports: Sequence[str] = ("10256", "30000-32767")
    control_plane_cidr: str | None = None
    control_plane_webhook_ports: Sequence[str] = ()
    apis: Sequence[pulumi.Resource] = field(default_factory=list)

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        node_tag: str,
        health_check_ports: Sequence[str],
        control_plane_webhook_ports: Sequence[str],
        apis: Sequence[pulumi.Resource],
    ) -> NetworkArgs:
        """The args from the stack's ``gcp`` section; the keywords wire in other components."""
        s = config.gcp
        return cls(
            name_prefix=config.name_prefix,
            region=s.region,
            subnet_cidr=s.subnet_cidr,
            pods_cidr=s.pods_cidr,
            services_cidr=s.services_cidr,
            private_service_cidr=s.private_service_cidr,
            control_plane_cidr=s.master_cidr,
            node_tag=node_tag,
            health_check_ports=health_check_ports,
            control_plane_webhook_ports=control_plane_webhook_ports,
            apis=apis,
        )


def private_service_range(cidr: str) -> tuple[str, int]:
    """``(address, prefix_length)`` of a CIDR, as ``compute.GlobalAddress`` takes them."""
    address, _, prefix = cidr.partition("/")
    if not prefix.isdigit():
        raise ValueError(
            f"private service range {cidr!r} has no prefix length; use a CIDR such as 10.40.0.0/16"
        )
    return address, int(prefix)


class Network(pulumi.ComponentResource):
    """A private VPC for GKE, with NAT egress and private service access for the data stores.

    Outputs: ``network`` and ``subnetwork`` (the resources), ``network_id``,
    ``subnetwork_id``, ``pods_range_name``, ``services_range_name`` and
    ``service_connection`` (Cloud SQL and Memorystore must depend on it).
    """

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:gcp:Network", name, None, opts)
        # Every child waits for the APIs it calls to be enabled.
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.apis))
        prefix = args.name_prefix

        self.network = gcp.compute.Network(
            "vpc",
            name=resource_name(prefix, "vpc", "network"),
            description="AI gateway VPC (custom mode: only the subnets declared here exist).",
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=child,
        )

        self.subnetwork = gcp.compute.Subnetwork(
            "nodes",
            name=resource_name(prefix, "nodes", "subnetwork"),
            description="GKE nodes; secondary ranges for pods and services (VPC-native).",
            network=self.network.id,
            region=args.region,
            ip_cidr_range=args.subnet_cidr,
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(
                    range_name=PODS_RANGE_NAME, ip_cidr_range=args.pods_cidr
                ),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(
                    range_name=SERVICES_RANGE_NAME, ip_cidr_range=args.services_cidr
                ),
            ],
            # Private nodes reach Google APIs (image pulls, logging) without NAT.
            private_ip_google_access=True,
            log_config=gcp.compute.SubnetworkLogConfigArgs(
                aggregation_interval="INTERVAL_5_SEC",
                flow_sampling=0.5,
                metadata="INCLUDE_ALL_METADATA",
            ),
            opts=child,
        )

        self.router = gcp.compute.Router(
            "router",
            name=resource_name(prefix, "router", "router"),
            region=args.region,
            network=self.network.id,
            opts=child,
        )
        # A reserved address rather than AUTO_ONLY: the pods' egress address is then known
        # and stable (an automatic one may change), so the other clouds' governance
        # channel can admit this cloud by it. One address serves about 1,000 nodes at
        # Cloud NAT's default 64 ports per VM.
        self.egress_address = gcp.compute.Address(
            "nat-egress",
            name=resource_name(prefix, "nat-egress", "address"),
            region=args.region,
            address_type="EXTERNAL",
            network_tier="PREMIUM",
            description="Cloud NAT egress of the GKE nodes and pods.",
            opts=child,
        )
        self.egress_ip: pulumi.Output[str] = self.egress_address.address
        self.nat = gcp.compute.RouterNat(
            "nat",
            name=resource_name(prefix, "nat", "router_nat"),
            router=self.router.name,
            region=args.region,
            nat_ip_allocate_option="MANUAL_ONLY",
            nat_ips=[self.egress_address.self_link],
            # Only the node subnet (nodes and pods) gets egress, nothing added later.
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetworks=[
                gcp.compute.RouterNatSubnetworkArgs(
                    name=self.subnetwork.id, source_ip_ranges_to_nats=["ALL_IP_RANGES"]
                )
            ],
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=child,
        )

        # GCP denies ingress by default; this rule makes it explicit and logged,
        # so a denied probe shows up in the firewall logs.
        self.deny_ingress = gcp.compute.Firewall(
            "deny-all-ingress",
            name=resource_name(prefix, "deny-all-ingress", "firewall"),
            description="Deny and log every ingress not allowed by a higher-priority rule.",
            network=self.network.id,
            direction="INGRESS",
            priority=65534,
            source_ranges=["0.0.0.0/0"],
            denies=[gcp.compute.FirewallDenyArgs(protocol="all")],
            log_config=gcp.compute.FirewallLogConfigArgs(metadata="INCLUDE_ALL_METADATA"),
            opts=child,
        )
        self.allow_health_checks = gcp.compute.Firewall(
            "allow-health-checks",
            name=resource_name(prefix, "allow-health-checks", "firewall"),
            description="Google load balancer health checks to the ingress health node ports on GKE nodes.",
            network=self.network.id,
            direction="INGRESS",
            priority=1000,
            source_ranges=list(GOOGLE_HEALTH_CHECK_RANGES),
            target_tags=[args.node_tag],
            allows=[
                gcp.compute.FirewallAllowArgs(protocol="tcp", ports=list(args.health_check_ports))
            ],
            log_config=gcp.compute.FirewallLogConfigArgs(metadata="INCLUDE_ALL_METADATA"),
            opts=child,
        )

        if args.control_plane_cidr and args.control_plane_webhook_ports:
            # GKE's own rule lets the control plane reach nodes on 443 and 10250 only;
            # a webhook on any other port would time out (GKE docs: "Add firewall
            # rules for specific use cases", private clusters and admission webhooks).
            self.allow_control_plane_webhooks = gcp.compute.Firewall(
                "allow-control-plane-webhooks",
                name=resource_name(prefix, "allow-control-plane-webhooks", "firewall"),
                description="GKE control plane to admission webhooks on the nodes' pods.",
                network=self.network.id,
                direction="INGRESS",
                priority=1000,
                source_ranges=[args.control_plane_cidr],
                target_tags=[args.node_tag],
                allows=[
                    gcp.compute.FirewallAllowArgs(
                        protocol="tcp", ports=list(args.control_plane_webhook_ports)
                    )
                ],
                log_config=gcp.compute.FirewallLogConfigArgs(metadata="INCLUDE_ALL_METADATA"),
                opts=child,
            )

        address, prefix_length = private_service_range(args.private_service_cidr)
        self.private_service_range = gcp.compute.GlobalAddress(
            "private-services",
            name=resource_name(prefix, "private-services", "global_address"),
            description="Peered range for Cloud SQL and Memorystore private IPs.",
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            address=address,
            prefix_length=prefix_length,
            network=self.network.id,
            opts=child,
        )
        self.service_connection = gcp.servicenetworking.Connection(
            "private-services",
            network=self.network.id,
            service=SERVICE_NETWORKING,
            reserved_peering_ranges=[self.private_service_range.name],
            # Abandon on destroy: the peering cannot be removed while Google still
            # holds addresses in it (deleted instances free them only later).
            deletion_policy="ABANDON",
            opts=child,
        )

        self.network_id = self.network.id
        self.subnetwork_id = self.subnetwork.id
        self.pods_range_name = PODS_RANGE_NAME
        self.services_range_name = SERVICES_RANGE_NAME
        self.register_outputs(
            {
                "networkId": self.network.id,
                "subnetworkId": self.subnetwork.id,
                "privateServiceRange": self.private_service_range.name,
                "serviceConnection": self.service_connection.id,
                "egressIp": self.egress_ip,
            }
        )
