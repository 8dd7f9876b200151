"""The governance plane's channel between clouds: private where possible, TLS, tokens.

A gateway whose config file (a ConfigMap) has ``governance.global`` serves the
plane's internal endpoint on its own port (``governance.global.port``, default
8443) and calls its peers at ``peers.<cloud>.url``. What keeps that channel safe
(docs/explanation/global-governance.md):

* **the internal port behind an allow-list**: a ``LoadBalancer`` Service exposing
  it, and the Envoy proxy fleet (``EnvoyProxy``) of a Gateway whose routes send to
  it, admit listed networks only (``loadBalancerSourceRanges``), which together do
  not admit the whole internet;
* **the internal port on its own Gateway**: a Gateway routing to it routes to
  nothing else (the public listener and its routes never reach it);
* **TLS**: every peer URL is ``https://``;
* **a workload identity token**: the Deployment mounting that config file projects
  a ServiceAccount token with the plane's audience (``governance.global.audience``,
  default ``aigw-governance``); without it the peers cannot authenticate this cloud,
  and a shared static secret is what would be put there instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pulumi_policy import PolicyResource, Severity, StackValidationPolicy

from policies.config import Category
from policies.framework import WORLD, WORLD_DOC, get, is_world, items, stack_policy

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SERVICE = "kubernetes:core/v1:Service"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
ENVOY_PROXY = "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
DEFAULT_PORT = 8443
DEFAULT_AUDIENCE = "aigw-governance"


@dataclass(frozen=True)
class _Plane:
    """A ConfigMap's ``governance.global``: what the checks need of it."""

    config_map: PolicyResource
    name: str
    where: tuple[str, str]
    port: int
    audience: str
    peers: Mapping[str, Any]


def _int(value: Any) -> Any:
    """A port as written (the policy protocol turns numbers into floats)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _namespace(props: Mapping[str, Any]) -> str:
    return get(props, "metadata.namespace") or "default"


def _where(resource: PolicyResource) -> tuple[str, str]:
    """(cluster, namespace): one stack deploys the same names into every cloud's cluster,
    told apart by the kube provider each object is deployed with."""
    provider = getattr(resource, "provider", None)
    return (getattr(provider, "urn", "") or "", _namespace(resource.props))


def _name(resource: PolicyResource) -> str:
    return get(resource.props, "metadata.name") or resource.name


def _planes(resources: Sequence[PolicyResource]) -> list[_Plane]:
    found = []
    for config_map in (r for r in resources if r.resource_type == CONFIG_MAP):
        for text in (get(config_map.props, "data", {}) or {}).values():
            try:
                loaded = yaml.safe_load(text) if isinstance(text, str) else None
            except yaml.YAMLError:
                continue
            plane = get(loaded, "governance.global") if isinstance(loaded, Mapping) else None
            if isinstance(plane, Mapping):
                found.append(
                    _Plane(
                        config_map,
                        _name(config_map),
                        _where(config_map),
                        _int(plane.get("port", DEFAULT_PORT)),
                        str(plane.get("audience", DEFAULT_AUDIENCE)),
                        plane.get("peers") or {},
                    )
                )
    return found


def _routes_to(route: Mapping[str, Any]) -> set[Any]:
    return {
        _int(get(ref, "port"))
        for rule in items(route, "spec.rules")
        for ref in items(rule, "backendRefs")
    }


def _gateways_of(route: PolicyResource) -> set[tuple[str, str, str]]:
    cluster, namespace = _where(route)
    return {
        (cluster, get(ref, "namespace") or namespace, get(ref, "name"))
        for ref in items(route.props, "spec.parentRefs")
        if get(ref, "kind", "Gateway") == "Gateway"
    }


def _ranges_problem(ranges: list[Any], config: Mapping[str, Any]) -> str | None:
    if not ranges:
        return "has no loadBalancerSourceRanges, so the whole internet reaches it"
    if is_world(ranges, config):
        return f"admits {sorted(map(str, ranges))}, the whole internet"
    return None


_RANGES_FIX = (
    "set loadBalancerSourceRanges to the other clouds' NAT egress addresses (the program "
    "takes them from the footprints' outputs; ai-gateway:governance.extraSourceCidrs adds more)"
)


def _channel_source_ranges(
    resources: Sequence[PolicyResource], config: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    planes = _planes(resources)
    ports = {(*plane.where, plane.port) for plane in planes}
    if not ports:
        return
    for service in (r for r in resources if r.resource_type == SERVICE):
        if get(service.props, "spec.type") != "LoadBalancer":
            continue
        exposed = {
            _int(get(port, key))
            for port in items(service.props, "spec.ports")
            for key in ("port", "targetPort")
        }
        if not any((*_where(service), port) in ports for port in exposed):
            continue
        problem = _ranges_problem(items(service.props, "spec.loadBalancerSourceRanges"), config)
        if problem:
            yield (
                f"Service {_name(service)} exposes the governance plane's internal port and "
                f"{problem}: {_RANGES_FIX}",
                service.urn,
            )
    channel_gateways = {
        gateway
        for route in resources
        if route.resource_type == HTTP_ROUTE
        for gateway in _gateways_of(route)
        if any((*_where(route), p) in ports for p in _routes_to(route.props))
    }
    proxies = {(*_where(r), _name(r)): r for r in resources if r.resource_type == ENVOY_PROXY}
    for gateway in (r for r in resources if r.resource_type == GATEWAY):
        key = (*_where(gateway), _name(gateway))
        if key not in channel_gateways:
            continue
        ref = get(gateway.props, "spec.infrastructure.parametersRef")
        proxy = (
            proxies.get((key[0], key[1], get(ref, "name"))) if isinstance(ref, Mapping) else None
        )
        ranges = (
            items(proxy.props, "spec.provider.kubernetes.envoyService.loadBalancerSourceRanges")
            if proxy is not None
            else []
        )
        problem = _ranges_problem(ranges, config)
        if problem:
            where = f"its EnvoyProxy {_name(proxy)}" if proxy is not None else "its load balancer"
            yield (
                f"Gateway {key[2]} routes to the governance plane's internal port and {where} "
                f"{problem}: give it an EnvoyProxy (spec.infrastructure.parametersRef) whose "
                f"envoyService {_RANGES_FIX}",
                gateway.urn,
            )


def _channel_own_gateway(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    ports = {(*plane.where, plane.port) for plane in _planes(resources)}
    if not ports:
        return
    routes = [r for r in resources if r.resource_type == HTTP_ROUTE]
    internal: dict[tuple[str, str, str], list[PolicyResource]] = {}
    public: dict[tuple[str, str, str], list[PolicyResource]] = {}
    for route in routes:
        targets = _routes_to(route.props)
        to_internal = {p for p in targets if (*_where(route), p) in ports}
        for gateway in _gateways_of(route):
            if to_internal:
                internal.setdefault(gateway, []).append(route)
            if targets - to_internal:
                public.setdefault(gateway, []).append(route)
    for gateway, carrying in internal.items():
        if gateway not in public:
            continue
        for route in carrying:
            yield (
                f"HTTPRoute {_name(route)} sends the governance plane's internal port through "
                f"Gateway {gateway[2]}, which also serves public routes "
                f"({', '.join(sorted(_name(r) for r in public[gateway]))}): give the internal "
                "port a Gateway of its own whose load balancer admits only the peer clouds",
                route.urn,
            )


def _plane_tls(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    for plane in _planes(resources):
        for peer, settings in sorted(plane.peers.items()):
            url = str(get(settings, "url") or "")
            if not url.startswith("https://"):
                yield (
                    f"ConfigMap {plane.name} calls governance peer {peer} at {url or '(no url)'} "
                    "without TLS: keys, budgets and audit would cross the internet in clear "
                    "text; use the peer's https:// channel name",
                    plane.config_map.urn,
                )


def _plane_token(
    resources: Sequence[PolicyResource], _: Mapping[str, Any]
) -> Iterable[tuple[str, str]]:
    planes = {(*plane.where, plane.name): plane for plane in _planes(resources)}
    for deployment in (r for r in resources if r.resource_type == DEPLOYMENT):
        pod = get(deployment.props, "spec.template.spec", {}) or {}
        volumes = items(pod, "volumes")
        where = _where(deployment)
        mounted = [
            planes[(*where, get(v, "configMap.name"))]
            for v in volumes
            if (*where, get(v, "configMap.name")) in planes
        ]
        for plane in mounted:
            audiences = {
                get(source, "serviceAccountToken.audience")
                for volume in volumes
                for source in items(volume, "projected.sources")
                if get(source, "serviceAccountToken")
            }
            if plane.audience not in audiences:
                yield (
                    f"Deployment {_name(deployment)} runs the governance plane of ConfigMap "
                    f"{plane.name} without a projected ServiceAccount token for the audience "
                    f"{plane.audience} (found {sorted(map(str, audiences - {None})) or 'none'}): "
                    "its peers cannot authenticate it; add a projected volume with "
                    f"serviceAccountToken.audience {plane.audience} mounted at "
                    "governance.global.token_file",
                    deployment.urn,
                )


def policies() -> list[StackValidationPolicy]:
    """The governance channel's policies of the pack."""
    return [
        stack_policy(
            "kubernetes-governance-channel-source-ranges",
            "The governance plane's internal port is reached only from listed networks: a "
            "LoadBalancer Service exposing it, and the EnvoyProxy of a Gateway routing to it, "
            "set loadBalancerSourceRanges that together do not admit the whole internet. Fix: "
            "list the other clouds' NAT egress addresses (the program does, from their outputs).",
            types=[CONFIG_MAP, SERVICE, GATEWAY, HTTP_ROUTE, ENVOY_PROXY],
            check=_channel_source_ranges,
            category=Category.EXPOSURE,
            params=WORLD,
            param_docs=WORLD_DOC,
            severity=Severity.HIGH,
        ),
        stack_policy(
            "kubernetes-governance-channel-own-gateway",
            "The governance plane's internal port is never on the public listener: a Gateway "
            "with a route to it has no route to anything else. Fix: a Gateway of its own for the "
            "internal port (ai-gateway:governance builds one per cloud).",
            types=[CONFIG_MAP, HTTP_ROUTE],
            check=_channel_own_gateway,
            category=Category.EXPOSURE,
            severity=Severity.HIGH,
        ),
        stack_policy(
            "kubernetes-governance-plane-tls",
            "Every peer of a governance plane (governance.global.peers in a gateway's "
            "ConfigMap) is called over TLS. Fix: use https:// peer URLs.",
            types=[CONFIG_MAP],
            check=_plane_tls,
            category=Category.EXPOSURE,
            severity=Severity.HIGH,
        ),
        stack_policy(
            "kubernetes-governance-plane-token-audience",
            "A gateway in a governance plane proves itself with a projected ServiceAccount "
            "token for the plane's audience (never a shared secret). Fix: project "
            "serviceAccountToken with audience aigw-governance into the Deployment and mount it "
            "at governance.global.token_file.",
            types=[CONFIG_MAP, DEPLOYMENT],
            check=_plane_token,
            category=Category.IDENTITY,
            severity=Severity.HIGH,
        ),
    ]
