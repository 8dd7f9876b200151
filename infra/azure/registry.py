"""``ai-gateway:azure:GatewayRegistry``: the Azure Container Registry AKS pulls the gateway from.

Created only when ``ai-gateway:gateway.buildImage`` is on. The admin user is
disabled and anonymous pull off, so the only ways in are Entra identities:
the kubelet identity gets ``AcrPull`` on this registry alone (pull, nothing
else) and the deployer pushes after ``az acr login``.

Network access by environment (:func:`registry_network`): dev and staging use
the Standard SKU with the public endpoint open to authenticated callers (IP
rules need Premium); prod uses Premium with a deny-by-default firewall that
admits only the deployer CIDRs and the cluster's NAT egress address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_random as random
from pulumi_azure_native import authorization, containerregistry

from infra.config import Cloud, Environment, StackConfig
from infra.contracts.footprint import AzureOutputs, CloudFootprint
from infra.decisions.azure import azure_name, with_suffix
from infra.image import GatewayImage, GatewayImageArgs, image_tag

ACR_PULL_ROLE = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
"""Built-in role ``AcrPull``: pull images, nothing else."""

_SUFFIX_BYTES = 3


@dataclass(frozen=True)
class RegistryNetwork:
    """The registry's SKU and who may reach its endpoint."""

    sku: containerregistry.SkuName
    default_action: containerregistry.DefaultAction | None
    """``DENY`` with IP rules (Premium only); ``None``: no firewall, Entra auth only."""


def registry_network(environment: Environment) -> RegistryNetwork:
    """Premium with a deny-by-default firewall in prod; Standard, public + Entra auth elsewhere."""
    if environment == Environment.PROD:
        return RegistryNetwork(
            containerregistry.SkuName.PREMIUM, containerregistry.DefaultAction.DENY
        )
    return RegistryNetwork(containerregistry.SkuName.STANDARD, None)


def ip_rules(cidrs: Sequence[str]) -> list[containerregistry.IPRuleArgs]:
    """Allow rules for the deployer CIDRs and the nodes' egress address (ACR takes /32 as an IP)."""
    return [
        containerregistry.IPRuleArgs(
            i_p_address_or_range=cidr.removesuffix("/32"), action=containerregistry.Action.ALLOW
        )
        for cidr in cidrs
    ]


@dataclass
class GatewayRegistryArgs:
    """Inputs of :class:`GatewayRegistry`.

    ``kubelet_object_id`` is the AKS kubelet identity (the only principal
    allowed to pull); ``allowed_cidrs`` and ``egress_ip`` feed prod's firewall.
    """

    name_prefix: str
    environment: Environment
    resource_group_name: pulumi.Input[str]
    location: str
    kubelet_object_id: pulumi.Input[str]
    allowed_cidrs: Sequence[str] = field(default_factory=list)
    egress_ip: pulumi.Input[str] | None = None


class GatewayRegistry(pulumi.ComponentResource):
    """ACR with the admin user disabled and ``AcrPull`` for the kubelet identity only.

    Outputs: ``login_server`` (``<name>.azurecr.io``) and ``registry_id``.
    """

    login_server: pulumi.Output[str]
    registry_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: GatewayRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:azure:GatewayRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        network = registry_network(args.environment)
        # Registry names are global (<name>.azurecr.io): a random suffix keeps them unique.
        base = azure_name("container_registry", "acr", args.name_prefix, reserve=_SUFFIX_BYTES * 2)
        suffix = random.RandomId(f"{name}-suffix", byte_length=_SUFFIX_BYTES, opts=child)
        rule_set = None
        if network.default_action is not None:
            rules = pulumi.Output.from_input(args.egress_ip or "").apply(
                lambda ip: ip_rules([*args.allowed_cidrs, *([ip] if ip else [])])
            )
            rule_set = containerregistry.NetworkRuleSetArgs(
                default_action=network.default_action, ip_rules=rules
            )
        self.registry = containerregistry.Registry(
            f"{name}-registry",
            registry_name=suffix.hex.apply(lambda h: with_suffix("container_registry", base, h)),
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=containerregistry.SkuArgs(name=network.sku),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            public_network_access=containerregistry.PublicNetworkAccess.ENABLED,
            network_rule_set=rule_set,
            opts=child,
        )
        client = authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        )
        authorization.RoleAssignment(
            f"{name}-kubelet-pull",
            principal_id=args.kubelet_object_id,
            principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=client.subscription_id.apply(
                lambda sub: (
                    f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                    f"{ACR_PULL_ROLE}"
                )
            ),
            scope=self.registry.id,
            opts=child,
        )
        self.login_server = self.registry.login_server
        self.registry_id = self.registry.id
        self.register_outputs({"loginServer": self.login_server, "registryId": self.registry_id})


def build(
    config: StackConfig, footprint: CloudFootprint[AzureOutputs]
) -> pulumi.Output[str] | None:
    """The gateway image for AKS: ``None`` (the published image) unless ``buildImage`` is on."""
    gateway = config.gateway
    if not gateway.build_image:
        return None
    registry = GatewayRegistry(
        f"{config.name_prefix}-azure-registry",
        GatewayRegistryArgs(
            name_prefix=config.name_prefix,
            environment=config.environment,
            resource_group_name=footprint.outputs.resource_group_name,
            location=config.azure.location,
            kubelet_object_id=footprint.outputs.kubelet_identity_object_id,
            allowed_cidrs=config.azure.deployer_cidrs,
            egress_ip=footprint.outputs.egress_ip,
        ),
        opts=pulumi.ResourceOptions(parent=footprint.component, provider=footprint.provider),
    )
    # No registry credentials here: the admin user is off, so the deploy job
    # pushes with its own Entra login (`az acr login --name <registry>`).
    image = GatewayImage(
        f"{config.name_prefix}-azure-image",
        Cloud.AZURE,
        GatewayImageArgs(
            repository=pulumi.Output.concat(registry.login_server, "/ai-gateway"),
            tag=image_tag(gateway.image),
        ),
        opts=pulumi.ResourceOptions(parent=footprint.component),
    )
    return image.ref
