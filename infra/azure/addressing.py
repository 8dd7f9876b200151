"""Address plan of the Azure VNet: subnets, and the overlay ranges AKS must not clash with.

With Azure CNI Overlay, pods take addresses from ``podCidr`` (outside the VNet)
and only nodes take VNet addresses, so the node subnet can be small. The VNet
is carved, in order, into aligned blocks: nodes, the PostgreSQL delegated
subnet, private endpoints; the rest stays free for later subnets.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

NODE_PREFIX = 20
"""/20: 4,091 node addresses, ample for the autoscaler's bounds with pods on the overlay."""
POSTGRES_PREFIX = 24
"""/24: Azure asks for at least /28 for a delegated Flexible Server subnet; /24 leaves room for HA and replicas."""
ENDPOINT_PREFIX = 24
"""/24: one address per private endpoint (Redis today, Key Vault or ACR later)."""


@dataclass(frozen=True)
class SubnetPlan:
    """The CIDR of each subnet of the VNet."""

    nodes: str
    postgres: str
    endpoints: str


def allocate(vnet_cidr: str, prefixes: list[int], *, key: str = "vnetCidr") -> list[str]:
    """Carve ``vnet_cidr`` into aligned blocks of the given prefix lengths, in order.

    Each block starts at the first address after the previous one that is
    aligned to its own size. Raises ValueError naming ``ai-gateway:azure.<key>``
    when a prefix is shorter than the VNet's or the blocks do not fit.
    """
    try:
        vnet = ipaddress.ip_network(vnet_cidr, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"ai-gateway:azure.{key}: {vnet_cidr!r} is not a CIDR block ({exc}); use a "
            "network address with a prefix length, for example 10.20.0.0/16"
        ) from None
    blocks: list[str] = []
    cursor = int(vnet.network_address)
    end = int(vnet.broadcast_address)
    for prefix in prefixes:
        if not vnet.prefixlen <= prefix <= 29:
            raise ValueError(
                f"ai-gateway:azure.{key}: a /{prefix} subnet cannot be carved from "
                f"{vnet_cidr}; use subnet prefixes from /{vnet.prefixlen} to /29"
            )
        size = 2 ** (32 - prefix)
        start = -(-cursor // size) * size  # round up to the block's alignment
        if start + size - 1 > end:
            raise ValueError(
                f"ai-gateway:azure.{key}: {vnet_cidr} is too small for subnets of "
                f"{', '.join(f'/{p}' for p in prefixes)}; use a /{minimum_vnet_prefix(prefixes)} "
                "or larger address space"
            )
        blocks.append(str(ipaddress.ip_network((start, prefix))))
        cursor = start + size
    return blocks


def minimum_vnet_prefix(prefixes: list[int]) -> int:
    """The longest VNet prefix whose aligned blocks of ``prefixes`` still fit."""
    total = 0
    for prefix in prefixes:
        size = 2 ** (32 - prefix)
        total = -(-total // size) * size + size
    prefix = 32
    while 2 ** (32 - prefix) < total:
        prefix -= 1
    return prefix


def subnet_plan(vnet_cidr: str) -> SubnetPlan:
    """The node, PostgreSQL and private-endpoint subnets of ``vnet_cidr`` (a /19 or larger)."""
    nodes, postgres, endpoints = allocate(
        vnet_cidr, [NODE_PREFIX, POSTGRES_PREFIX, ENDPOINT_PREFIX]
    )
    return SubnetPlan(nodes=nodes, postgres=postgres, endpoints=endpoints)


def check_overlay_ranges(vnet_cidr: str, pod_cidr: str, service_cidr: str) -> None:
    """Fail when the VNet, pod and service ranges overlap (AKS rejects it at create time)."""
    ranges = {
        "vnetCidr": ipaddress.ip_network(vnet_cidr),
        "podCidr": ipaddress.ip_network(pod_cidr),
        "serviceCidr": ipaddress.ip_network(service_cidr),
    }
    names = list(ranges)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if ranges[a].overlaps(ranges[b]):
                raise ValueError(
                    f"ai-gateway:azure.{b}: {ranges[b]} overlaps {a} {ranges[a]}; pick a range "
                    "outside it (AKS needs the VNet, pod and service ranges disjoint)"
                )


def dns_service_ip(service_cidr: str) -> str:
    """The cluster DNS service address: the tenth address of the service range, as AKS uses."""
    network = ipaddress.ip_network(service_cidr)
    if network.num_addresses < 16:
        raise ValueError(
            f"ai-gateway:azure.serviceCidr: {service_cidr} is too small for Kubernetes "
            "services; use a /28 or larger range (AKS's default is 10.0.0.0/16)"
        )
    return str(network.network_address + 10)
