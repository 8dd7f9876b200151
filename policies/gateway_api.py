"""Gateway API exposure policies: the cluster's entry point serves over TLS only.

The edge of every cluster is a Gateway API ``Gateway`` (Envoy Gateway creates
its load balancer). A listener without TLS on a public Gateway may exist for
one reason only: to redirect plain HTTP to HTTPS. So:

* on a public Gateway, every ``HTTP`` listener carries only routes whose every
  rule is a ``RequestRedirect`` to ``https`` (no ``backendRefs``), and no
  ``TCP`` or ``UDP`` listener exists (raw traffic without TLS);
* a route attached to a plain listener (by ``sectionName``, by ``port`` or to
  every listener of the Gateway) that forwards to backends is the violation,
  named with the route and the rule.

A Gateway is internal (and exempt) when its ``spec.infrastructure.annotations``
ask the cloud for an internal load balancer (AWS scheme ``internal``, Azure
``azure-load-balancer-internal``, GKE ``load-balancer-type: Internal``); the
annotations Envoy Gateway copies onto the Service it creates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationPolicy

from policies.config import Category
from policies.framework import get, items, stack_policy

GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
PLAIN_PROTOCOLS = {"HTTP", "TCP", "UDP"}
"""Listener protocols that carry traffic without TLS (``HTTPS`` and ``TLS`` do not)."""

INTERNAL_LOAD_BALANCER = {
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
    "networking.gke.io/load-balancer-type": "Internal",
}
"""Annotation -> value that makes each cloud's load balancer private to the network."""


def is_public(gateway: Mapping[str, Any]) -> bool:
    """Whether the Gateway's load balancer faces the internet (no internal annotation)."""
    annotations = get(gateway, "spec.infrastructure.annotations", {}) or {}
    return not any(
        str(annotations.get(key, "")).lower() == value.lower()
        for key, value in INTERNAL_LOAD_BALANCER.items()
    )


def _port(listener: Mapping[str, Any]) -> Any:
    """A listener's port as written (the policy protocol turns numbers into floats)."""
    port = get(listener, "port")
    return int(port) if isinstance(port, float) and port.is_integer() else port


def _namespace(props: Mapping[str, Any]) -> str:
    return get(props, "metadata.namespace") or "default"


def _attached_listeners(
    route: Mapping[str, Any], gateway: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """The listeners of ``gateway`` that ``route`` attaches to (Gateway API parentRef rules)."""
    listeners = items(gateway, "spec.listeners")
    found: list[Mapping[str, Any]] = []
    for ref in items(route, "spec.parentRefs"):
        if get(ref, "kind", "Gateway") != "Gateway":
            continue
        if get(ref, "name") != get(gateway, "metadata.name"):
            continue
        if (get(ref, "namespace") or _namespace(route)) != _namespace(gateway):
            continue
        section, port = get(ref, "sectionName"), get(ref, "port")
        found += [
            listener
            for listener in listeners
            if (section is None or get(listener, "name") == section)
            and (port is None or get(listener, "port") == port)
        ]
    return found


def _forwards(rule: Mapping[str, Any]) -> bool:
    """Whether a route rule sends traffic to a backend (anything but an HTTPS redirect)."""
    if items(rule, "backendRefs"):
        return True
    redirects = [f for f in items(rule, "filters") if get(f, "type") == "RequestRedirect"]
    return not any(get(f, "requestRedirect.scheme") == "https" for f in redirects)


def _plain_listeners(
    resources: Sequence[PolicyResource], _config: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    gateways = [r for r in resources if r.resource_type == GATEWAY and is_public(r.props)]
    routes = [r for r in resources if r.resource_type == HTTP_ROUTE]
    for gateway in gateways:
        name = get(gateway.props, "metadata.name") or gateway.name
        for listener in items(gateway.props, "spec.listeners"):
            protocol = str(get(listener, "protocol", "")).upper()
            if protocol in {"TCP", "UDP"}:
                yield (
                    f"Gateway {name} listener {get(listener, 'name')} ({protocol}, port "
                    f"{_port(listener)}) carries raw traffic without TLS on a public load "
                    "balancer: use an HTTPS (or TLS) listener",
                    gateway.urn,
                )
        for route in routes:
            route_name = get(route.props, "metadata.name") or route.name
            for listener in _attached_listeners(route.props, gateway.props):
                if str(get(listener, "protocol", "")).upper() not in PLAIN_PROTOCOLS:
                    continue
                for index, rule in enumerate(items(route.props, "spec.rules")):
                    if _forwards(rule):
                        yield (
                            f"HTTPRoute {route_name} rule {index} sends traffic through Gateway "
                            f"{name} listener {get(listener, 'name')} ({listener.get('protocol')}, "
                            f"port {_port(listener)}) without TLS: attach it to the HTTPS "
                            "listener (parentRefs sectionName) and give the plain listener only a "
                            "RequestRedirect with scheme https",
                            route.urn,
                        )


def policies() -> list[StackValidationPolicy]:
    """The Gateway API policies of the pack."""
    return [
        stack_policy(
            "kubernetes-gateway-public-listener-tls",
            "A public Gateway serves traffic over TLS only: a plain HTTP listener may only "
            "redirect to HTTPS, and no TCP/UDP listener is exposed. Fix: attach routes with "
            "backendRefs to the HTTPS listener (parentRefs sectionName), and give the HTTP "
            "listener one route whose rule is a RequestRedirect with scheme https.",
            types=[GATEWAY, HTTP_ROUTE],
            check=_plain_listeners,
            category=Category.EXPOSURE,
            severity=Severity.HIGH,
        ),
    ]
