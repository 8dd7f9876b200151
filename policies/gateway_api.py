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

In production, a gateway that serves the web console (its config file, a
ConfigMap, has an ``identity`` section with ``oidc`` or ``admin_key_login``)
must restrict ``/console`` and ``/auth`` to the organisation's networks at the
edge: an Envoy Gateway ``SecurityPolicy`` in its namespace, attached to the
HTTPRoute that serves those paths (or to the Gateway), denying by default and
allowing by ``principal.clientCIDRs`` only, that together do not admit the whole
internet (``ai-gateway:gateway.consoleAllowedCidrs`` builds exactly that).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml
from pulumi_policy import PolicyResource, Severity, StackValidationPolicy

from policies.config import Category
from policies.framework import PROD_ONLY, WORLD, WORLD_DOC, get, is_world, items, stack_policy

GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECURITY_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy"
CONSOLE_PATHS = ("/console", "/auth")
"""The web console and people's sign-in."""
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


def _serves_console(config_map: Mapping[str, Any]) -> bool:
    """Whether a ConfigMap holds a gateway config file whose ``identity`` serves the console."""
    for text in (get(config_map, "data", {}) or {}).values():
        try:
            loaded = yaml.safe_load(text) if isinstance(text, str) else None
        except yaml.YAMLError:
            continue
        identity = loaded.get("identity") if isinstance(loaded, Mapping) else None
        if isinstance(identity, Mapping) and (
            identity.get("oidc") or identity.get("admin_key_login") is True
        ):
            return True
    return False


def _console_routes(routes: Sequence[PolicyResource], namespace: str) -> set[str]:
    """Names of the namespace's HTTPRoutes with rules matching every console path prefix."""
    found = set()
    for route in routes:
        if _namespace(route.props) != namespace:
            continue
        prefixes = {
            get(match, "path.value")
            for rule in items(route.props, "spec.rules")
            for match in items(rule, "matches")
            if get(match, "path.type", "PathPrefix") == "PathPrefix"
        }
        if all(path in prefixes for path in CONSOLE_PATHS):
            found.add(get(route.props, "metadata.name") or route.name)
    return found


def _allow_list_problem(policy: Mapping[str, Any], config: Mapping[str, Any]) -> str | None:
    """What keeps a SecurityPolicy from restricting clients to a list of networks (None: nothing)."""
    authorization = get(policy, "spec.authorization")
    if not isinstance(authorization, Mapping):
        return "has no authorization"
    # Envoy Gateway's default action is Deny when none is given.
    if get(authorization, "defaultAction", "Deny") != "Deny":
        return f"has defaultAction {get(authorization, 'defaultAction')} (must be Deny)"
    allowed: list[Any] = []
    for rule in items(authorization, "rules"):
        if get(rule, "action") != "Allow":
            continue
        cidrs = items(rule, "principal.clientCIDRs")
        if not cidrs:
            return f"allows by something other than client networks (rule {get(rule, 'name')})"
        allowed += cidrs
    if not allowed:
        return "allows no network"
    if is_world(allowed, config):
        return f"allows {sorted(map(str, allowed))}, the whole internet"
    return None


def _console_allow_list(
    resources: Sequence[PolicyResource], config: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    routes = [r for r in resources if r.resource_type == HTTP_ROUTE]
    policies_ = [r for r in resources if r.resource_type == SECURITY_POLICY]
    gateways = [r for r in resources if r.resource_type == GATEWAY]
    fix = (
        "set ai-gateway:gateway.consoleAllowedCidrs to the organisation's networks (an Envoy "
        "Gateway SecurityPolicy on the console's HTTPRoute: authorization.defaultAction Deny, "
        "Allow rules on principal.clientCIDRs)"
    )
    for config_map in (r for r in resources if r.resource_type == CONFIG_MAP):
        if not _serves_console(config_map.props):
            continue
        namespace = _namespace(config_map.props)
        targets = {("HTTPRoute", name) for name in _console_routes(routes, namespace)} | {
            ("Gateway", get(g.props, "metadata.name") or g.name)
            for g in gateways
            if _namespace(g.props) == namespace
        }
        guarding = [
            p
            for p in policies_
            if _namespace(p.props) == namespace
            and any(
                (get(ref, "kind"), get(ref, "name")) in targets
                for ref in items(p.props, "spec.targetRefs")
            )
        ]
        name = get(config_map.props, "metadata.name") or config_map.name
        if not guarding:
            yield (
                f"ConfigMap {name} configures a gateway that serves the console (/console, "
                f"/auth) in namespace {namespace}, and no SecurityPolicy restricts those paths "
                f"to an allow-list at the edge: {fix}",
                config_map.urn,
            )
        for policy in guarding:
            problem = _allow_list_problem(policy.props, config)
            if problem:
                policy_name = get(policy.props, "metadata.name") or policy.name
                yield (
                    f"SecurityPolicy {policy_name} guards the console of namespace {namespace} "
                    f"but {problem}: {fix}",
                    policy.urn,
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
        stack_policy(
            "kubernetes-gateway-console-allowed-cidrs",
            "In production, a gateway that serves the web console (an identity section with oidc "
            "or admin_key_login in its config file) restricts /console and /auth to the "
            "organisation's networks at the edge: an Envoy Gateway SecurityPolicy on the route "
            "serving them (or the Gateway) that denies by default and allows only "
            "principal.clientCIDRs, which together do not admit the whole internet. Fix: set "
            "ai-gateway:gateway.consoleAllowedCidrs.",
            types=[CONFIG_MAP, HTTP_ROUTE, SECURITY_POLICY],
            check=_console_allow_list,
            category=Category.EXPOSURE,
            params=WORLD,
            param_docs=WORLD_DOC,
            severity=Severity.HIGH,
            non_production=PROD_ONLY,
        ),
    ]
