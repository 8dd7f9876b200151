"""The Azure footprint as recorded on each stack file: defaults, property by property."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pytest
import yaml

from infra.offline import Plan, RecordedResource, Secret
from infra.offline.engine import ProgramError, reveal
from infra.tags import REQUIRED_KEYS, tag_path
from tests.infra.conftest import ROOT, STACKS

AZ = "azure-native"
FOOTPRINT = "ai-gateway:azure:Footprint"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"

# The defaults each stack file gets (the stack files set only location and vnetCidr).
EXPECTED: dict[str, dict[str, Any]] = {
    "dev": {
        "location": "eastus2",
        "vnet": "10.20.0.0/16",
        "aks_tier": "Free",
        "local_accounts_disabled": False,
        "system_pool": ("Standard_D2ds_v5", 1, 1, 2),
        "user_pool": ("Standard_D4ds_v5", 2, 1, 3),
        "redis_sku": "Balanced_B0",
        "redis_ha": "Disabled",
        "redis_aof": False,
        "pg_sku": ("Standard_B2ms", "Burstable"),
        "pg_ha": "Disabled",
        "pg_geo": "Disabled",
        "pg_retention": 7,
        "protected": False,
    },
    "staging": {
        "location": "eastus2",
        "vnet": "10.120.0.0/16",
        "aks_tier": "Standard",
        "local_accounts_disabled": True,
        "system_pool": ("Standard_D4ds_v5", 3, 3, 6),
        "user_pool": ("Standard_D4ds_v5", 3, 3, 6),
        "redis_sku": "Balanced_B1",
        "redis_ha": "Enabled",
        "redis_aof": False,
        "pg_sku": ("Standard_D2ds_v5", "GeneralPurpose"),
        "pg_ha": "ZoneRedundant",
        "pg_geo": "Disabled",
        "pg_retention": 7,
        "protected": False,
    },
    "prod": {
        "location": "westeurope",
        "vnet": "10.220.0.0/16",
        "aks_tier": "Standard",
        "local_accounts_disabled": True,
        "system_pool": ("Standard_D4ds_v5", 3, 3, 6),
        "user_pool": ("Standard_D8ds_v5", 3, 3, 12),
        "redis_sku": "Balanced_B3",
        "redis_ha": "Enabled",
        "redis_aof": True,
        "pg_sku": ("Standard_D4ds_v5", "GeneralPurpose"),
        "pg_ha": "ZoneRedundant",
        "pg_geo": "Enabled",
        "pg_retention": 30,
        "protected": True,
    },
}


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def plan(plans: dict[str, Plan], stack: str) -> Plan:
    return plans[stack]


@pytest.fixture
def want(stack: str) -> dict[str, Any]:
    return EXPECTED[stack]


def _subnet(plan: Plan, suffix: str) -> RecordedResource:
    return next(r for r in plan.of_type(f"{AZ}:network:Subnet") if r.name.endswith(suffix))


def _nsg(plan: Plan, suffix: str) -> RecordedResource:
    return next(
        r for r in plan.of_type(f"{AZ}:network:NetworkSecurityGroup") if r.name.endswith(suffix)
    )


def _in(plan: Plan, component: str, type_token: str) -> list[RecordedResource]:
    parent = plan.one(f"ai-gateway:azure:{component}")
    return [r for r in plan.children(parent) if r.type == type_token]


# ----------------------------------------------------------------- structure


def test_azure_cache_for_redis_appears_nowhere(plans: dict[str, Plan]) -> None:
    for plan in plans.values():
        types = {r.type for r in plan.resources}
        assert f"{AZ}:redis:Redis" not in types
        assert not [t for t in types if t.startswith(f"{AZ}:redis:")]
        assert len(plan.of_type(f"{AZ}:redisenterprise:RedisEnterprise")) == 1


def test_components_compose_under_the_footprint(plan: Plan) -> None:
    footprint = plan.one(FOOTPRINT)
    assert footprint.parent == plan.stack_urn
    for name in ("Network", "Cluster", "Redis", "Postgres"):
        assert plan.one(f"ai-gateway:azure:{name}").parent == footprint.urn


def test_every_azure_resource_descends_from_the_footprint_and_uses_its_provider(
    plan: Plan, want: dict[str, Any]
) -> None:
    footprint = plan.one(FOOTPRINT)
    provider = plan.one(f"pulumi:providers:{AZ}")
    assert provider.parent == footprint.urn
    assert provider.inputs["location"] == want["location"]
    azure = [r for r in plan.resources if r.package == AZ]
    assert len(azure) > 25
    for resource in azure:
        assert footprint in list(plan.ancestors(resource)), resource.name
        assert resource.provider is not None
        assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_one_resource_group_per_stack(plan: Plan, stack: str, want: dict[str, Any]) -> None:
    group = plan.one(f"{AZ}:resources:ResourceGroup")
    assert group.inputs["resourceGroupName"] == f"rg-ai-gateway-{stack}"
    assert group.inputs["location"] == want["location"]
    for resource in plan.resources:
        if (
            resource.package == AZ
            and "resourceGroupName" in resource.inputs
            and resource is not group
        ):
            assert resource.inputs["resourceGroupName"] == group.inputs["resourceGroupName"]


def test_every_taggable_azure_resource_is_tagged(plan: Plan, stack: str) -> None:
    taggable = [r for r in plan.resources if r.package == AZ and tag_path(r.type)]
    assert len(taggable) > 10
    for resource in taggable:
        tags = resource.get("tags")
        assert set(REQUIRED_KEYS) <= set(tags), resource.name
        assert tags["environment"] == stack


def test_deletion_protection(plan: Plan, want: dict[str, Any]) -> None:
    protected = {r.type for r in plan.resources if r.protect}
    locks = plan.of_type(f"{AZ}:authorization:ManagementLockAtResourceGroupLevel")
    if want["protected"]:
        assert {
            f"{AZ}:containerservice:ManagedCluster",
            f"{AZ}:redisenterprise:RedisEnterprise",
            f"{AZ}:redisenterprise:Database",
            f"{AZ}:dbforpostgresql:Server",
            f"{AZ}:dbforpostgresql:Database",
        } <= protected
        assert [lock.inputs["level"] for lock in locks] == ["CanNotDelete"]
    else:
        assert not protected and not locks


# ------------------------------------------------------------------- network


def test_vnet_and_subnets(plan: Plan, want: dict[str, Any]) -> None:
    vnet = plan.one(f"{AZ}:network:VirtualNetwork")
    assert vnet.get("addressSpace.addressPrefixes") == [want["vnet"]]
    network = ipaddress.ip_network(want["vnet"])
    subnets = plan.of_type(f"{AZ}:network:Subnet")
    assert len(subnets) == 3
    for subnet in subnets:
        assert subnet.inputs["virtualNetworkName"] == vnet.outputs["name"]
        assert ipaddress.ip_network(subnet.inputs["addressPrefix"]).subnet_of(network)
        # Azure's implicit outbound access is off; egress goes through the NAT gateway.
        assert subnet.inputs["defaultOutboundAccess"] is False
        assert subnet.get("networkSecurityGroup.id", "").startswith("/subscriptions/")
    nodes, postgres, endpoints = (_subnet(plan, s) for s in ("nodes", "postgres", "endpoints"))
    assert ipaddress.ip_network(nodes.inputs["addressPrefix"]).prefixlen == 20
    nat = plan.one(f"{AZ}:network:NatGateway")
    assert nodes.get("natGateway.id") == nat.id
    assert postgres.get("delegations") == [
        {"name": "postgres-flexible", "serviceName": "Microsoft.DBforPostgreSQL/flexibleServers"}
    ]
    assert endpoints.inputs["privateEndpointNetworkPolicies"] == "Enabled"
    # Subnet writes on one VNet are serialised.
    assert nodes.urn in postgres.dependencies and postgres.urn in endpoints.dependencies


def test_nat_gateway_has_a_static_standard_ip(plan: Plan) -> None:
    ip = plan.one(f"{AZ}:network:PublicIPAddress", "azure-network-egress")
    assert ip.get("sku") == {"name": "Standard", "tier": "Regional"}
    assert ip.inputs["publicIPAllocationMethod"] == "Static"
    nat = plan.one(f"{AZ}:network:NatGateway")
    assert nat.get("sku.name") == "Standard"
    assert nat.get("publicIpAddresses") == [{"id": ip.id}]


def test_the_gateway_load_balancer_uses_the_ip_the_nsg_admits(plan: Plan) -> None:
    """AKS load-balancing rules use floating IP: packets reach the nodes still addressed to
    the load balancer's public IP, so a rule naming the node subnet never matches ("Use a
    public standard load balancer in AKS"; NSG rules there must name the frontend IP). The
    Service is pinned to the stack's own IP ("Use a static public IP address ... with the
    AKS load balancer": annotations azure-pip-name and
    azure-load-balancer-resource-group) and that IP is the NSG rule's destination."""
    ip = plan.one(f"{AZ}:network:PublicIPAddress", "azure-network-ingress")
    assert ip.get("sku") == {"name": "Standard", "tier": "Regional"}
    assert ip.inputs["publicIPAllocationMethod"] == "Static"
    # With the governance plane (three clouds), its channel's own IP is the second rule's
    # destination (tests/infra/k8s/test_governance_channel.py: the pip its Service names).
    rule, channel = _nsg(plan, "nodes").get("securityRules")
    assert rule["destinationAddressPrefix"] == ip.outputs["ipAddress"]
    assert (rule["sourceAddressPrefix"], rule["destinationPortRange"]) == ("Internet", "443")
    channel_ip = plan.one(f"{AZ}:network:PublicIPAddress", "azure-network-governance")
    assert channel["destinationAddressPrefix"] == channel_ip.outputs["ipAddress"]
    assert channel["destinationPortRange"] == "443"
    # The LoadBalancer Service is Envoy Gateway's, made from the Gateway: it copies the
    # Gateway's spec.infrastructure.annotations onto it ("Gateway API: GatewayInfrastructure").
    (gateway,) = [r for r in plan.of_type(GATEWAY) if r.name == "gateway-azure-gateway"]
    annotations = gateway.get("spec.infrastructure.annotations")
    assert annotations["service.beta.kubernetes.io/azure-pip-name"] == ip.outputs["name"]
    group = plan.one(f"{AZ}:resources:ResourceGroup")
    assert (
        annotations["service.beta.kubernetes.io/azure-load-balancer-resource-group"]
        == (group.outputs["name"])
    )
    # HTTPS is served on the one port the NSG admits; the HTTP listener only redirects and
    # is not reachable on Azure (the README says so), so a key never crosses in clear text.
    listeners = {(x["protocol"], x["port"]) for x in gateway.get("spec.listeners")}
    assert listeners == {("HTTPS", int(rule["destinationPortRange"])), ("HTTP", 80)}
    # The cluster identity may attach exactly that IP to its load balancer.
    identity = plan.one(f"{AZ}:managedidentity:UserAssignedIdentity", "azure-cluster-identity")
    grants = [
        g
        for g in plan.of_type(f"{AZ}:authorization:RoleAssignment")
        if g.get("scope") == ip.id and g.get("principalId") == identity.outputs["principalId"]
    ]
    assert len(grants) == 1
    assert grants[0].get("roleDefinitionId").endswith("4d97b98b-1d4f-4787-a291-c67834d212e7")


def test_nsgs_admit_only_what_each_subnet_serves(plan: Plan) -> None:
    nodes_cidr = _subnet(plan, "nodes").inputs["addressPrefix"]

    def rules(suffix: str) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in _nsg(plan, suffix).get("securityRules")}

    node_rules = rules("nodes")
    # The second: the governance channel's own IP (three clouds, so the plane is on).
    assert list(node_rules) == ["allow-https-to-gateway-ip", "allow-https-to-governance-ip"]
    assert node_rules["allow-https-to-gateway-ip"]["destinationPortRange"] == "443"
    pg = rules("postgres")
    assert pg["allow-postgres-from-nodes"]["sourceAddressPrefix"] == nodes_cidr
    assert pg["allow-postgres-from-nodes"]["destinationPortRange"] == "5432"
    endpoints = rules("endpoints")
    assert endpoints["allow-redis-tls-from-nodes"]["sourceAddressPrefix"] == nodes_cidr
    assert endpoints["allow-redis-tls-from-nodes"]["destinationPortRange"] == "10000"
    for deny in (pg["deny-other-vnet-inbound"], endpoints["deny-other-vnet-inbound"]):
        assert (deny["access"], deny["sourceAddressPrefix"]) == ("Deny", "VirtualNetwork")
        assert deny["priority"] > max(
            r["priority"] for r in (*pg.values(), *endpoints.values()) if r["access"] == "Allow"
        )
    for nsg in plan.of_type(f"{AZ}:network:NetworkSecurityGroup"):
        for rule in nsg.get("securityRules"):
            if (
                rule["sourceAddressPrefix"] in {"*", "Internet", "0.0.0.0/0"}
                and rule["access"] == "Allow"
            ):
                assert rule["destinationPortRange"] == "443", rule


# ----------------------------------------------------------------------- AKS


def test_cluster_identity_and_entra_access(plan: Plan, want: dict[str, Any]) -> None:
    aks = plan.one(f"{AZ}:containerservice:ManagedCluster")
    identity = plan.one(f"{AZ}:managedidentity:UserAssignedIdentity", "azure-cluster-identity")
    assert aks.get("identity") == {"type": "UserAssigned", "userAssignedIdentities": [identity.id]}
    assert aks.get("aadProfile.managed") is True
    assert aks.get("aadProfile.enableAzureRBAC") is True
    assert aks.get("aadProfile.tenantID") == "00000000-0000-4000-8000-0000000000aa"
    assert aks.inputs["enableRBAC"] is True
    assert aks.inputs["disableLocalAccounts"] is want["local_accounts_disabled"]
    assert aks.get("oidcIssuerProfile.enabled") is True
    assert aks.get("securityProfile.workloadIdentity.enabled") is True
    assert aks.get("sku") == {"name": "Base", "tier": want["aks_tier"]}
    assert aks.inputs["kubernetesVersion"] == "1.33"
    assert aks.get("autoUpgradeProfile") == {
        "upgradeChannel": "patch",
        "nodeOSUpgradeChannel": "NodeImage",
    }


def test_cluster_identity_may_join_the_vnet(plan: Plan) -> None:
    identity = plan.one(f"{AZ}:managedidentity:UserAssignedIdentity", "azure-cluster-identity")
    vnet = plan.one(f"{AZ}:network:VirtualNetwork")
    aks = plan.one(f"{AZ}:containerservice:ManagedCluster")
    grants = {r.get("scope"): r for r in plan.of_type(f"{AZ}:authorization:RoleAssignment")}
    network = grants[vnet.id]
    assert network.inputs["principalId"] == identity.outputs["principalId"]
    assert network.inputs["roleDefinitionId"].endswith(
        "/roleDefinitions/4d97b98b-1d4f-4787-a291-c67834d212e7"
    )
    assert network.urn in aks.dependencies
    deployer = grants[aks.id]
    assert deployer.inputs["roleDefinitionId"].endswith(
        "/roleDefinitions/b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
    )
    assert deployer.inputs["principalId"] == "00000000-0000-4000-8000-0000000000d1"


def test_cluster_network_is_cni_overlay_with_policy_and_nat_egress(plan: Plan) -> None:
    aks = plan.one(f"{AZ}:containerservice:ManagedCluster")
    assert aks.get("networkProfile") == {
        "networkPlugin": "azure",
        "networkPluginMode": "overlay",
        "networkDataplane": "cilium",
        "networkPolicy": "cilium",
        "podCidr": "10.244.0.0/16",
        "serviceCidr": "10.0.0.0/16",
        "dnsServiceIP": "10.0.0.10",
        "outboundType": "userAssignedNATGateway",
        "loadBalancerSku": "standard",
    }


def test_api_server_is_limited_to_deployers_and_the_egress_ip(plan: Plan) -> None:
    aks = plan.one(f"{AZ}:containerservice:ManagedCluster")
    egress = plan.one(f"{AZ}:network:PublicIPAddress", "azure-network-egress").outputs["ipAddress"]
    access = aks.get("apiServerAccessProfile")
    assert access["enablePrivateCluster"] is False
    assert access["authorizedIPRanges"] == ["203.0.113.0/24", f"{egress}/32"]
    assert access["disableRunCommand"] is True
    for cidr in access["authorizedIPRanges"]:
        assert ipaddress.ip_network(cidr).prefixlen > 0


def test_system_pool_runs_critical_addons_only_across_zones(
    plan: Plan, want: dict[str, Any]
) -> None:
    aks = plan.one(f"{AZ}:containerservice:ManagedCluster")
    (pool,) = aks.get("agentPoolProfiles")
    vm, count, low, high = want["system_pool"]
    assert pool["name"] == "system" and pool["mode"] == "System"
    assert pool["nodeTaints"] == ["CriticalAddonsOnly=true:NoSchedule"]
    assert (pool["vmSize"], pool["count"], pool["minCount"], pool["maxCount"]) == (
        vm,
        count,
        low,
        high,
    )
    assert pool["enableAutoScaling"] is True
    assert pool["availabilityZones"] == ["1", "2", "3"]
    assert pool["enableEncryptionAtHost"] is True
    assert pool["enableNodePublicIP"] is False
    assert pool["vnetSubnetID"] == _subnet(plan, "nodes").id


def test_user_pool_autoscales_across_zones(plan: Plan, want: dict[str, Any]) -> None:
    aks = plan.one(f"{AZ}:containerservice:ManagedCluster")
    pool = plan.one(f"{AZ}:containerservice:AgentPool")
    vm, count, low, high = want["user_pool"]
    assert pool.inputs["agentPoolName"] == "gateway"
    assert pool.inputs["resourceName"] == aks.outputs["name"]
    assert pool.inputs["mode"] == "User"
    assert (
        pool.inputs["vmSize"],
        pool.inputs["count"],
        pool.inputs["minCount"],
        pool.inputs["maxCount"],
    ) == (
        vm,
        count,
        low,
        high,
    )
    assert pool.inputs["enableAutoScaling"] is True
    assert pool.inputs["availabilityZones"] == ["1", "2", "3"]
    assert pool.inputs["enableEncryptionAtHost"] is True
    assert pool.inputs["enableNodePublicIP"] is False
    assert pool.inputs["vnetSubnetID"] == _subnet(plan, "nodes").id


def test_cluster_diagnostics_go_to_log_analytics(plan: Plan) -> None:
    aks = plan.one(f"{AZ}:containerservice:ManagedCluster")
    workspace = plan.one(f"{AZ}:operationalinsights:Workspace")
    assert workspace.get("sku.name") == "PerGB2018"
    assert workspace.inputs["retentionInDays"] == 30
    setting = plan.one(f"{AZ}:monitor:DiagnosticSetting")
    assert setting.inputs["resourceUri"] == aks.id
    assert setting.inputs["workspaceId"] == workspace.id
    categories = {log["category"] for log in setting.get("logs") if log["enabled"]}
    assert {"kube-apiserver", "kube-audit-admin", "cluster-autoscaler", "guard"} <= categories
    assert aks.get("addonProfiles.omsagent.config.logAnalyticsWorkspaceResourceID") == workspace.id
    assert aks.get("addonProfiles.azurepolicy.enabled") is True


def test_kube_provider_uses_an_exec_kubeconfig(plan: Plan) -> None:
    aks = plan.one(f"{AZ}:containerservice:ManagedCluster")
    provider = plan.one("pulumi:providers:kubernetes", "azure-cluster-kubernetes")
    assert provider.parent == plan.one("ai-gateway:azure:Cluster").urn
    assert isinstance(provider.inputs["kubeconfig"], Secret)
    kubeconfig = yaml.safe_load(provider.get("kubeconfig"))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://{aks.outputs['fqdn']}:443"
    exec_ = kubeconfig["users"][0]["user"]["exec"]
    assert exec_["command"] == "kubelogin"
    assert exec_["args"][:3] == ["get-token", "--login", "azurecli"]


# --------------------------------------------------------------------- Redis


def test_redis_is_azure_managed_redis_private_and_tls_only(
    plan: Plan, want: dict[str, Any]
) -> None:
    cluster = plan.one(f"{AZ}:redisenterprise:RedisEnterprise")
    assert cluster.get("sku.name") == want["redis_sku"]
    assert cluster.inputs["minimumTlsVersion"] == "1.2"
    assert cluster.inputs["publicNetworkAccess"] == "Disabled"
    assert cluster.inputs["highAvailability"] == want["redis_ha"]
    assert re.fullmatch(r"redis-ai-gateway-[a-z]+-[0-9a-f]{6}", cluster.inputs["clusterName"])
    database = plan.one(f"{AZ}:redisenterprise:Database")
    assert database.inputs["clusterName"] == cluster.inputs["clusterName"]
    assert database.inputs["databaseName"] == "default"
    assert database.inputs["clientProtocol"] == "Encrypted"
    assert database.inputs["port"] == 10000
    assert database.inputs["clusteringPolicy"] == "EnterpriseCluster"
    assert database.get("persistence.aofEnabled") is want["redis_aof"]


def test_redis_is_reached_through_a_private_endpoint_and_dns_zone(plan: Plan) -> None:
    cluster = plan.one(f"{AZ}:redisenterprise:RedisEnterprise")
    (zone,) = _in(plan, "Redis", f"{AZ}:privatedns:PrivateZone")
    assert zone.inputs["privateZoneName"] == "privatelink.redis.azure.net"
    (link,) = _in(plan, "Redis", f"{AZ}:privatedns:VirtualNetworkLink")
    assert link.get("virtualNetwork.id") == plan.one(f"{AZ}:network:VirtualNetwork").id
    assert link.inputs["privateZoneName"] == "privatelink.redis.azure.net"
    assert link.inputs["registrationEnabled"] is False
    endpoint = plan.one(f"{AZ}:network:PrivateEndpoint")
    assert endpoint.get("subnet.id") == _subnet(plan, "endpoints").id
    (connection,) = endpoint.get("privateLinkServiceConnections")
    assert connection["privateLinkServiceId"] == cluster.id
    assert connection["groupIds"] == ["redisEnterprise"]
    group = plan.one(f"{AZ}:network:PrivateDnsZoneGroup")
    assert group.inputs["privateEndpointName"] == endpoint.outputs["name"]
    assert [c["privateDnsZoneId"] for c in group.get("privateDnsZoneConfigs")] == [zone.id]


# ---------------------------------------------------------------- PostgreSQL


def test_postgres_server_defaults(plan: Plan, want: dict[str, Any]) -> None:
    server = plan.one(f"{AZ}:dbforpostgresql:Server")
    sku, tier = want["pg_sku"]
    assert server.get("sku") == {"name": sku, "tier": tier}
    assert server.inputs["version"] == "16"
    assert server.get("storage") == {"storageSizeGB": 64, "autoGrow": "Enabled"}
    assert server.get("backup") == {
        "backupRetentionDays": want["pg_retention"],
        "geoRedundantBackup": want["pg_geo"],
    }
    assert server.get("highAvailability.mode") == want["pg_ha"]
    if want["pg_ha"] == "ZoneRedundant":
        assert server.inputs["availabilityZone"] != server.get(
            "highAvailability.standbyAvailabilityZone"
        )
    assert re.fullmatch(r"psql-ai-gateway-[a-z]+-[0-9a-f]{6}", server.inputs["serverName"])


def test_postgres_is_private_through_the_delegated_subnet(plan: Plan) -> None:
    server = plan.one(f"{AZ}:dbforpostgresql:Server")
    (zone,) = _in(plan, "Postgres", f"{AZ}:privatedns:PrivateZone")
    (link,) = _in(plan, "Postgres", f"{AZ}:privatedns:VirtualNetworkLink")
    assert zone.inputs["privateZoneName"].endswith(".postgres.database.azure.com")
    assert link.get("virtualNetwork.id") == plan.one(f"{AZ}:network:VirtualNetwork").id
    assert server.get("network") == {
        "delegatedSubnetResourceId": _subnet(plan, "postgres").id,
        "privateDnsZoneArmResourceId": zone.id,
        "publicNetworkAccess": "Disabled",
    }
    assert link.urn in server.dependencies


def test_postgres_admin_password_is_random_and_secret(plan: Plan) -> None:
    server = plan.one(f"{AZ}:dbforpostgresql:Server")
    password = plan.one(
        "random:index/randomPassword:RandomPassword", "azure-postgres-admin-password"
    )
    assert isinstance(server.inputs["administratorLoginPassword"], Secret)
    assert server.get("administratorLoginPassword") == reveal(password.outputs["result"])
    assert password.inputs["length"] >= 32


def test_postgres_requires_tls_and_allows_vector(plan: Plan) -> None:
    server = plan.one(f"{AZ}:dbforpostgresql:Server")
    settings = {
        c.inputs["configurationName"]: c
        for c in plan.of_type(f"{AZ}:dbforpostgresql:Configuration")
    }
    assert settings["require_secure_transport"].inputs["value"] == "on"
    assert settings["ssl_min_protocol_version"].inputs["value"] == "TLSv1.2"
    assert "vector" in settings["azure.extensions"].inputs["value"].lower().split(",")
    for setting in settings.values():
        assert setting.inputs["serverName"] == server.inputs["serverName"]
    database = plan.one(f"{AZ}:dbforpostgresql:Database")
    assert database.inputs["databaseName"] == "gateway"


# ----------------------------------------------------------------- contract


def test_footprint_hands_over_secret_connection_strings_and_the_extras(
    plan: Plan, want: dict[str, Any]
) -> None:
    outputs = plan.one(FOOTPRINT).outputs
    for key in ("kubeconfig", "redisUrl", "postgresDsn"):
        assert isinstance(outputs[key], Secret), key
    redis = plan.one(f"{AZ}:redisenterprise:RedisEnterprise")
    url = reveal(outputs["redisUrl"])
    # No access key in it: the gateway authenticates with Entra tokens (AIGW_REDIS_AUTH=entra).
    assert url == f"rediss://{redis.outputs['hostName']}:10000"
    server = plan.one(f"{AZ}:dbforpostgresql:Server")
    dsn = reveal(outputs["postgresDsn"])
    # The gateway's own role; the administrator's password only in the migration DSN.
    admin_password = reveal(server.inputs["administratorLoginPassword"])
    assert dsn.startswith("postgresql://gateway_app:") and admin_password not in dsn
    # The administrator lives in a Key Vault secret of the stack's vault, which only the
    # migration Job's identity reads (tests/infra/integration/test_stacks.py).
    secret = plan.one(f"{AZ}:keyvault:Secret")
    vault = plan.one(f"{AZ}:keyvault:Vault")
    assert secret.get("vaultName") == vault.outputs["name"]
    assert json.loads(reveal(secret.inputs["properties"])["value"]) == {
        "username": "aigwadmin",
        "password": admin_password,
    }
    assert outputs["postgresOwnerSecretUri"] == reveal(secret.outputs["properties"])["secretUri"]
    assert dsn.endswith(
        f"@{server.outputs['fullyQualifiedDomainName']}:5432/gateway?sslmode=require"
    )
    aks = plan.one(f"{AZ}:containerservice:ManagedCluster")
    identity = plan.one(f"{AZ}:managedidentity:UserAssignedIdentity", "azure-cluster-identity")
    assert {
        k: outputs[k]
        for k in (
            "oidcIssuerUrl",
            "resourceGroupName",
            "location",
            "kubeletIdentityObjectId",
            "clusterIdentityPrincipalId",
            "vnetId",
            "nodeSubnetId",
            "egressIp",
        )
    } == {
        "oidcIssuerUrl": aks.outputs["oidcIssuerProfile"]["issuerURL"],
        "resourceGroupName": plan.one(f"{AZ}:resources:ResourceGroup").outputs["name"],
        "location": want["location"],
        "kubeletIdentityObjectId": aks.outputs["identityProfile"]["kubeletidentity"]["objectId"],
        "clusterIdentityPrincipalId": identity.outputs["principalId"],
        "vnetId": plan.one(f"{AZ}:network:VirtualNetwork").id,
        "nodeSubnetId": _subnet(plan, "nodes").id,
        "egressIp": plan.one(f"{AZ}:network:PublicIPAddress", "azure-network-egress").outputs[
            "ipAddress"
        ],
    }
    assert outputs["clusterName"] == aks.outputs["name"]
    assert outputs["oidcIssuerUrl"].startswith("https://")


# -------------------------------------------------------- other configurations


DEV_OPENAI_ACCOUNT = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"][
    "ai-gateway:azure"
]["openaiAccountId"]


@pytest.fixture(scope="module")
def private_plan() -> Plan:
    from infra.offline import record

    return record(
        "dev",
        project_dir=ROOT,
        config={
            "ai-gateway:azure": {
                "enabled": True,
                "privateEndpointOnly": True,
                "availabilityZones": ["1"],
                # The dev catalogue routes to Azure OpenAI: the account it calls.
                "openaiAccountId": DEV_OPENAI_ACCOUNT,
            }
        },
    )


def test_private_cluster_has_no_public_endpoint(private_plan: Plan) -> None:
    aks = private_plan.one(f"{AZ}:containerservice:ManagedCluster")
    access = aks.get("apiServerAccessProfile")
    assert access["enablePrivateCluster"] is True
    assert access["privateDNSZone"] == "system"
    assert "authorizedIPRanges" not in access
    kubeconfig = yaml.safe_load(
        private_plan.one("pulumi:providers:kubernetes", "azure-cluster-kubernetes").get(
            "kubeconfig"
        )
    )
    assert (
        kubeconfig["clusters"][0]["cluster"]["server"]
        == f"https://{aks.outputs['privateFQDN']}:443"
    )
    assert private_plan.one(f"{AZ}:containerservice:AgentPool").inputs["availabilityZones"] == ["1"]


@pytest.mark.parametrize(
    ("azure", "message"),
    [
        (
            {"enabled": True},
            "ai-gateway:azure.deployerCidrs: is empty, which would open the AKS API server",
        ),
        (
            {"enabled": True, "deployerCidrs": ["203.0.113.0/24"], "redisSku": "Enterprise_E10"},
            "ai-gateway:azure.redisSku: 'Enterprise_E10' is not an Azure Managed Redis SKU",
        ),
        (
            {"enabled": True, "deployerCidrs": ["203.0.113.0/24"], "podCidr": "10.20.128.0/17"},
            "ai-gateway:azure.podCidr: 10.20.128.0/17 overlaps vnetCidr 10.20.0.0/16",
        ),
    ],
)
def test_bad_azure_config_stops_before_any_resource(azure: dict[str, Any], message: str) -> None:
    from infra.offline import record

    with pytest.raises(ProgramError, match=re.escape(message)):
        record(
            "dev",
            project_dir=ROOT,
            config={"ai-gateway:azure": {"openaiAccountId": DEV_OPENAI_ACCOUNT, **azure}},
        )


def test_no_credential_reaches_the_plan_output_in_plain_text(plan: Plan) -> None:
    import json
    from urllib.parse import unquote

    outputs = plan.one(FOOTPRINT).outputs
    password = reveal(
        plan.one(
            "random:index/randomPassword:RandomPassword", "azure-postgres-admin-password"
        ).outputs["result"]
    )
    redis_key = reveal(outputs["redisUrl"]).split("@")[0].removeprefix("rediss://:")
    printed = json.dumps(plan.to_json()) + json.dumps(plan.outputs, default=str)
    assert password not in printed
    assert redis_key not in printed
    assert unquote(redis_key) not in printed
    assert "kubelogin" not in printed  # the kubeconfig is masked as a whole
