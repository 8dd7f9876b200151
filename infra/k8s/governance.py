"""``ai-gateway:k8s:GovernanceChannel``: how the other clouds reach this cloud's gateways.

The global governance plane (docs/decisions/0001-global-governance-plane.md)
needs every cloud to reach every other over authenticated HTTPS: the followers
read the home's change feed, forward admin calls, renew budget leases and ship
audit. On each cluster the channel is, in dependency order:

1. a ClusterIP ``Service`` for the gateway pods' internal listener
   (``governance.global.port``, where only ``/internal/v1/...`` is served);
2. an ``EnvoyProxy`` for a proxy fleet of its own, whose ``LoadBalancer``
   Service admits only ``loadBalancerSourceRanges``: the **other clouds' NAT
   egress addresses** (footprint outputs, never typed by hand) and any
   ``governance.extraSourceCidrs``. A separate fleet because source ranges are
   per load balancer: on the public one they would shut out the clients;
3. a cert-manager ``Certificate`` for ``<hostname>-<cloud>.<domain>`` from the
   cluster's ACME issuer (the edge's, DNS-01 in the global zone);
4. a ``Gateway`` with one HTTPS listener (TLS 1.2+ at Envoy with that
   certificate) and an ``HTTPRoute`` sending ``/internal/v1/`` to the Service
   above and nothing else; the public Gateway's routes never name that port;
5. a ``NetworkPolicy`` admitting the internal port only from this fleet's
   Envoy pods.

Who may call is decided by the gateway, not the network: every call carries the
caller's projected ServiceAccount token (audience ``aigw-governance``), checked
against the calling cluster's OIDC issuer (``governance.global.peers``). No
secret is shared between clouds. :func:`plane_section` builds that section from
the clouds' outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.config import Cloud, Environment, StackConfig
from infra.decisions import k8s as decisions
from infra.k8s.edge import (
    EDGE_NAMESPACE,
    GATEWAY_CLASS,
    PROXY_POD_LABELS,
    ObservedCustomResource,
    certificate_spec,
    envoy_proxy_spec,
    gateway_address,
)

TOKEN_AUDIENCE = "aigw-governance"
"""The ``aud`` of the tokens on the channel (the gateway's ``governance.global.audience``)."""
TOKEN_DIR = "/var/run/secrets/aigw-governance"
TOKEN_PATH = f"{TOKEN_DIR}/token"
"""Where the kubelet writes the pod's projected token (``governance.global.token_file``)."""
TOKEN_LIFETIME_S = 3600
"""The projected token's lifetime; the kubelet rotates it at 80% (the gateway re-reads it)."""
CHANNEL_PORT = 443
"""The port the channel's load balancer listens on (HTTPS)."""
INTERNAL_PATH = "/internal/v1/"
OWNING_GATEWAY_LABEL = "gateway.envoyproxy.io/owning-gateway-name"
"""Envoy Gateway labels a Gateway's proxy pods with its name: the NetworkPolicy admits these."""


def channel_hostname(config: StackConfig, cloud: Cloud) -> str:
    """``<governance.hostname>-<cloud>.<dns.domain>``: the cloud's channel in the global zone."""
    hostname, _ = decisions.gateway_hostnames(
        config.dns.domain, f"{config.governance.hostname}-{cloud.value}", cloud.value
    )
    return hostname


def source_ranges(
    cloud: Cloud,
    egress_ips: Mapping[Cloud, Sequence[pulumi.Input[str]]],
    extra: Sequence[str] = (),
) -> list[pulumi.Output[str]]:
    """Who may reach ``cloud``'s channel: every other cloud's NAT egress address (a /32), then
    ``extra``. Raises naming the fix when another cloud has no static egress address."""
    ranges: list[pulumi.Output[str]] = []
    for other, ips in egress_ips.items():
        if other == cloud:
            continue
        if not ips:
            raise ValueError(
                f"the {other.value} footprint has no static egress address, so the "
                f"{cloud.value} governance channel could not admit it; give its network a NAT "
                "with a reserved public address"
            )
        ranges += [pulumi.Output.from_input(ip).apply(lambda ip: f"{ip}/32") for ip in ips]
    return ranges + [pulumi.Output.from_input(cidr) for cidr in extra]


def plane_section(
    config: StackConfig,
    cloud: Cloud,
    issuers: Mapping[Cloud, pulumi.Input[str]],
    subject: str,
) -> pulumi.Output[dict[str, Any]]:
    """The gateway's ``governance.global`` on ``cloud``: every peer's https URL (its channel
    name) and its cluster's OIDC issuer (outputs), this cloud's name, the home, the listener,
    the token, and the operator's ``settings``."""
    names = list(issuers)

    def section(values: list[str]) -> dict[str, Any]:
        return {
            **config.governance.settings,
            "cloud": cloud.value,
            "home": config.governance.home_cloud(config.enabled_clouds).value,
            "port": config.governance.port,
            "audience": TOKEN_AUDIENCE,
            "token_file": TOKEN_PATH,
            "peers": {
                name.value: {
                    "url": f"https://{channel_hostname(config, name)}",
                    "issuer": issuer,
                    "subject": subject,
                }
                for name, issuer in zip(names, values, strict=True)
            },
        }

    return pulumi.Output.all(*(issuers[name] for name in names)).apply(section)


def with_plane(config_file: str, plane: Mapping[str, Any]) -> str:
    """The gateway's config file with ``governance.global`` set to ``plane``."""
    document = yaml.safe_load(config_file) or {}
    governance = document.setdefault("governance", {}) or {}
    governance["global"] = dict(plane)
    document["governance"] = governance
    return yaml.safe_dump(document, sort_keys=False)


def token_volume() -> tuple[k8s.core.v1.VolumeArgs, k8s.core.v1.VolumeMountArgs]:
    """The projected ServiceAccount token (audience ``aigw-governance``) and its mount."""
    volume = k8s.core.v1.VolumeArgs(
        name="governance-token",
        projected=k8s.core.v1.ProjectedVolumeSourceArgs(
            sources=[
                k8s.core.v1.VolumeProjectionArgs(
                    service_account_token=k8s.core.v1.ServiceAccountTokenProjectionArgs(
                        audience=TOKEN_AUDIENCE,
                        expiration_seconds=TOKEN_LIFETIME_S,
                        path="token",
                    )
                )
            ]
        ),
    )
    mount = k8s.core.v1.VolumeMountArgs(
        name="governance-token", mount_path=TOKEN_DIR, read_only=True
    )
    return volume, mount


@dataclass
class GovernanceChannelArgs:
    """One cloud's side of the governance plane: its channel and its ``governance.global``."""

    hostname: str
    """``<hostname>-<cloud>.<domain>``: the name peers call (:func:`channel_hostname`)."""
    port: int
    """The gateway pods' internal listener (``governance.global.port``)."""
    source_ranges: Sequence[pulumi.Input[str]]
    """Who may reach the load balancer: the other clouds' NAT egress /32s (:func:`source_ranges`)."""
    plane: pulumi.Input[Mapping[str, Any]]
    """The gateway's ``governance.global`` section (:func:`plane_section`)."""
    load_balancer_annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        cloud: Cloud,
        *,
        egress_ips: Mapping[Cloud, Sequence[pulumi.Input[str]]],
        issuers: Mapping[Cloud, pulumi.Input[str]],
        subject: str,
        load_balancer_annotations: Mapping[str, pulumi.Input[str]] | None = None,
    ) -> GovernanceChannelArgs:
        """``cloud``'s channel from the stack config and every enabled cloud's outputs."""
        return cls(
            hostname=channel_hostname(config, cloud),
            port=config.governance.port,
            source_ranges=source_ranges(cloud, egress_ips, config.governance.extra_source_cidrs),
            plane=plane_section(config, cloud, issuers, subject),
            load_balancer_annotations=dict(load_balancer_annotations or {}),
        )


@dataclass
class ChannelParent:
    """What the channel takes from its GatewayDeployment."""

    namespace: pulumi.Input[str]
    app: str
    environment: Environment
    pod_selector: Mapping[str, str]
    labels: Mapping[str, str]
    issuer_name: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource]


class GovernanceChannel(pulumi.ComponentResource):
    """The cloud's governance channel (see the module docstring). Output: ``endpoint``."""

    endpoint: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: GovernanceChannelArgs,
        parent: ChannelParent,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ai-gateway:k8s:GovernanceChannel", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base = decisions.dns_label(parent.app, "governance")

        def metadata(
            name: str, annotations: dict[str, str] | None = None
        ) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=name,
                namespace=parent.namespace,
                labels=dict(parent.labels),
                annotations=annotations,
            )

        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata(base),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=dict(parent.pod_selector),
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="internal", port=args.port, target_port="internal", protocol="TCP"
                    )
                ],
            ),
            opts=child,
        )
        proxy_spec = envoy_proxy_spec(parent.environment)
        service = proxy_spec["provider"]["kubernetes"]["envoyService"]
        service["loadBalancerSourceRanges"] = list(args.source_ranges)
        if args.load_balancer_annotations:
            service["annotations"] = dict(args.load_balancer_annotations)
        proxy = k8s.apiextensions.CustomResource(
            f"{name}-envoy-proxy",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="EnvoyProxy",
            metadata=metadata(base),
            spec=proxy_spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(parent.depends_on)),
        )
        tls_secret = decisions.dns_label(base, "tls")
        certificate = k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=tls_secret, namespace=parent.namespace),
            spec=certificate_spec(tls_secret, [args.hostname], parent.issuer_name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(parent.depends_on)),
        )
        self.gateway = ObservedCustomResource(
            f"{name}-gateway",
            api_version="gateway.networking.k8s.io/v1",
            kind="Gateway",
            metadata=metadata(
                base, {"pulumi.com/waitFor": "jsonpath={.status.addresses[0].value}"}
            ),
            spec={
                "gatewayClassName": GATEWAY_CLASS,
                # Its own proxy fleet and load balancer, with the source ranges above.
                "infrastructure": {
                    "parametersRef": {
                        "group": "gateway.envoyproxy.io",
                        "kind": "EnvoyProxy",
                        "name": base,
                    }
                },
                "listeners": [
                    {
                        "name": "internal",
                        "protocol": "HTTPS",
                        "port": CHANNEL_PORT,
                        "hostname": args.hostname,
                        "tls": {
                            "mode": "Terminate",
                            "certificateRefs": [
                                {"group": "", "kind": "Secret", "name": tls_secret}
                            ],
                        },
                        "allowedRoutes": {"namespaces": {"from": "Same"}},
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[proxy, certificate]),
        )
        gateway_ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": base}
        self.route = k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=metadata(base),
            spec={
                "parentRefs": [{**gateway_ref, "sectionName": "internal"}],
                "hostnames": [args.hostname],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": INTERNAL_PATH}}],
                        "backendRefs": [{"name": base, "port": args.port}],
                        # The change feed is one long response (heartbeats every second).
                        "timeouts": {"request": "0s"},
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.gateway, self.service]),
        )
        self.client_policy = k8s.apiextensions.CustomResource(
            f"{name}-client-policy",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="ClientTrafficPolicy",
            metadata=metadata(base),
            spec={"targetRefs": [gateway_ref], "tls": {"minVersion": "1.2"}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.gateway]),
        )
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=base, namespace=parent.namespace),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(parent.pod_selector)),
                policy_types=["Ingress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"kubernetes.io/metadata.name": EDGE_NAMESPACE}
                                ),
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={**PROXY_POD_LABELS, OWNING_GATEWAY_LABEL: base}
                                ),
                            )
                        ],
                        ports=[
                            k8s.networking.v1.NetworkPolicyPortArgs(port=args.port, protocol="TCP")
                        ],
                    )
                ],
            ),
            opts=child,
        )
        self.endpoint = self.gateway.status.apply(gateway_address)
        self.hostname = args.hostname
        self.register_outputs({"endpoint": self.endpoint, "hostname": args.hostname})
