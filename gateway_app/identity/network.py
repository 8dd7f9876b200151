"""Who is asking, by network: the client's address behind trusted proxies, and the console's
allow-list (``identity.console_allowed_cidrs``).

On Kubernetes the gateway's TCP peer is always an Envoy proxy of the edge (its
NetworkPolicy admits nothing else), and Envoy appends the address it saw to
``X-Forwarded-For``. So the client is found the standard way (the algorithm of
nginx's ``real_ip_recursive`` and Envoy's own ``trustedCIDRs``): start at the TCP
peer; while the address in hand is a trusted proxy (``identity.trusted_proxies``),
step to the next ``X-Forwarded-For`` entry from the right. Entries left of the
first untrusted one were written by the client and are never believed, so a
forged header cannot move a request inside the allow-list. With no trusted
proxies the header is ignored and the peer is the client.

This is the defence in depth behind the edge's own rule (an Envoy Gateway
SecurityPolicy on the console's route, ``infra.k8s.gateway``): a request that
reaches a pod some other way (a port-forward, a misconfigured route) is judged
again here.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from typing import Any

from gateway_app.errors import GatewayError

log = logging.getLogger("gateway_app.identity")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> IPAddress | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _within(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted_proxies: Sequence[IPNetwork]
) -> IPAddress | None:
    """The client's address: ``peer`` (the TCP peer), or, while the address in hand is a
    trusted proxy, the next ``X-Forwarded-For`` entry from the right.

    ``forwarded_for`` holds every ``X-Forwarded-For`` header of the request in order.
    None when the address cannot be known (no peer, or a malformed entry where a
    trusted proxy's entry should be).
    """
    address = _address(peer) if peer else None
    if address is None:
        return None
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    while hops and _within(address, trusted_proxies):
        address = _address(hops.pop())
        if address is None:
            return None
    return address


def scope_client(scope: dict[str, Any], trusted_proxies: Sequence[IPNetwork]) -> IPAddress | None:
    """:func:`client_address` of an ASGI request."""
    peer = (scope.get("client") or (None,))[0]
    forwarded = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    ]
    return client_address(peer, forwarded, trusted_proxies)


class ConsoleNetworks:
    """The console's allow-list: the networks ``/console``, ``/auth`` and people's
    sessions may be used from (empty: any network)."""

    def __init__(self, allowed: Sequence[IPNetwork], trusted_proxies: Sequence[IPNetwork]) -> None:
        self.allowed = list(allowed)
        self.trusted_proxies = list(trusted_proxies)

    def client(self, scope: dict[str, Any]) -> IPAddress | None:
        """The request's client address (see :func:`client_address`)."""
        return scope_client(scope, self.trusted_proxies)

    def require(self, scope: dict[str, Any]) -> None:
        """Raise a 403 when an allow-list is set and the client is outside it (or unknown)."""
        if not self.allowed:
            return
        client = self.client(scope)
        if client is not None and _within(client, self.allowed):
            return
        shown = str(client) if client is not None else "unknown"
        log.warning("console request from %s refused: outside console_allowed_cidrs", shown)
        raise GatewayError(
            403,
            f"The console is reachable only from the organisation's networks; your address "
            f"({shown}) is not one of them. Connect through the corporate network or VPN.",
            code="network_not_allowed",
        )
