"""What "open to the internet" means for a set of source ranges.

A rule that only recognises the string ``0.0.0.0/0`` is sidestepped by
``[0.0.0.0/1, 128.0.0.0/1]``, by ``::/0`` or ``::/1``, by many /8s, or by an
Azure service tag such as ``AzureCloud`` (every Azure customer's address).
So every exposure rule of the pack, and the stack config's ``deployerCidrs``
(``infra/config.py`` imports this module), judge the **union** of the ranges:

* the ranges are merged (overlaps counted once) and the addresses outside the
  IANA special-purpose blocks that are not globally routable (private,
  loopback, link-local, documentation, shared, benchmarking, multicast,
  reserved; for IPv6 everything outside 2000::/3 and the documentation block)
  are dropped: nobody on the internet can come from those;
* if what is left holds more addresses than a network of the configured
  "world" prefix length (IPv4 ``/12``, IPv6 ``/32`` by default), the set
  counts as "the world". Each family is judged on its own.

Service tags and keywords that stand for any internet address (``*``, ``Any``,
``Internet``, ``AzureCloud`` and its regional forms) are the world whatever
their size. This module is plain Python (stdlib only), so the program and the
pack share one definition.

Sources: IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890);
Azure virtual network service tags
(https://learn.microsoft.com/azure/virtual-network/service-tags-overview).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_WORLD_PREFIX_V4 = 12
"""A set of public IPv4 ranges larger than one /12 (1,048,576 addresses) counts as the world.

Large enough for the published source ranges services really need (Google's
health checkers are a /16 and a /22), small enough that no split of the
internet into a few big blocks passes."""
DEFAULT_WORLD_PREFIX_V6 = 32
"""A set of public IPv6 ranges larger than one /32 (an ISP's allocation) counts as the world."""

WORLD_KEYWORDS = frozenset({"*", "any", "internet", "azurecloud"})
"""Source keywords and Azure service tags that admit any internet address (lowercase)."""

_NOT_GLOBAL_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/3",  # multicast, reserved, broadcast (224.0.0.0-255.255.255.255)
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_NOT_GLOBAL_IN_UNICAST_V6 = (ipaddress.IPv6Network("2001:db8::/32"),)  # documentation


class CidrError(ValueError):
    """A source range that is neither a CIDR nor a known keyword."""


@dataclass(frozen=True)
class Exposure:
    """How much of the internet a set of source ranges admits."""

    public_v4: int
    """Globally routable IPv4 addresses in the union."""
    public_v6: int
    """Globally routable IPv6 addresses in the union."""
    keywords: tuple[str, ...]
    """World keywords or service tags among the sources, as written."""
    world_prefix_v4: int
    world_prefix_v6: int

    @property
    def is_world(self) -> bool:
        """Whether the sources admit "the world" (see the module docstring)."""
        return bool(self.keywords) or self.v4_world or self.v6_world

    @property
    def v4_world(self) -> bool:
        """Whether the IPv4 part alone is larger than the world size."""
        return self.public_v4 > 2 ** (32 - self.world_prefix_v4)

    @property
    def v6_world(self) -> bool:
        """Whether the IPv6 part alone is larger than the world size."""
        return self.public_v6 > 2 ** (128 - self.world_prefix_v6)

    def describe(self) -> str:
        """Why the set counts as the world, in words a reviewer can check."""
        reasons = [f"{k!r} admits any internet address" for k in self.keywords]
        if self.v4_world:
            reasons.append(
                f"together the IPv4 ranges admit {self.public_v4:,} public addresses, more "
                f"than a /{self.world_prefix_v4}"
            )
        if self.v6_world:
            reasons.append(
                f"together the IPv6 ranges admit more public addresses than a "
                f"/{self.world_prefix_v6}"
            )
        return "; ".join(reasons)


def parse(source: str) -> Network:
    """A source range as a network (host bits allowed, as the clouds accept them)."""
    try:
        return ipaddress.ip_network(source.strip(), strict=False)
    except ValueError as exc:
        raise CidrError(f"{source!r} is not a CIDR ({exc})") from None


def _public_size(networks: list[Network], version: int) -> int:
    merged: list[Network] = list(
        ipaddress.collapse_addresses(n for n in networks if n.version == version)  # type: ignore[type-var]
    )
    total = 0
    for network in merged:
        if version == 4:
            size = network.num_addresses
            for block in _NOT_GLOBAL_V4:
                if network.overlaps(block):
                    size -= min(network.num_addresses, block.num_addresses)
            total += max(size, 0)
        else:
            if not network.overlaps(_GLOBAL_UNICAST_V6):
                continue
            inside: Network = (
                network if network.subnet_of(_GLOBAL_UNICAST_V6) else _GLOBAL_UNICAST_V6  # type: ignore[arg-type]
            )
            size = inside.num_addresses
            for block_v6 in _NOT_GLOBAL_IN_UNICAST_V6:
                if inside.overlaps(block_v6):
                    size -= min(inside.num_addresses, block_v6.num_addresses)
            total += max(size, 0)
    return total


def exposure(
    sources: Iterable[object],
    *,
    world_prefix_v4: int = DEFAULT_WORLD_PREFIX_V4,
    world_prefix_v6: int = DEFAULT_WORLD_PREFIX_V6,
) -> Exposure:
    """The :class:`Exposure` of a set of source ranges.

    Sources that are neither CIDRs nor world keywords (an Azure service tag
    such as ``VirtualNetwork``, a security group reference) admit no internet
    address and are ignored here; callers that need CIDRs check with :func:`parse`.
    """
    networks: list[Network] = []
    keywords: list[str] = []
    for source in sources:
        if not isinstance(source, str) or not source.strip():
            continue
        text = source.strip()
        lowered = text.lower()
        if lowered in WORLD_KEYWORDS or lowered.startswith("azurecloud."):
            keywords.append(text)
            continue
        try:
            networks.append(parse(text))
        except CidrError:
            continue
    return Exposure(
        public_v4=_public_size(networks, 4),
        public_v6=_public_size(networks, 6),
        keywords=tuple(keywords),
        world_prefix_v4=world_prefix_v4,
        world_prefix_v6=world_prefix_v6,
    )


def is_world(
    sources: Iterable[object],
    *,
    world_prefix_v4: int = DEFAULT_WORLD_PREFIX_V4,
    world_prefix_v6: int = DEFAULT_WORLD_PREFIX_V6,
) -> bool:
    """Whether a set of source ranges, taken together, admits "the world"."""
    return exposure(
        sources, world_prefix_v4=world_prefix_v4, world_prefix_v6=world_prefix_v6
    ).is_world
