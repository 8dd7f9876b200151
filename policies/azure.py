"""Azure (azure-native 3.x) policies: TLS everywhere, encrypted node disks, nothing public."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy, Severity

from policies.config import Category
from policies.framework import (
    API_CIDRS,
    API_CIDRS_DOC,
    DEV_EXEMPT,
    PROD_ONLY,
    PUBLIC_PORTS,
    PUBLIC_PORTS_DOC,
    STACK_KEY,
    Check,
    cidr_violations,
    get,
    is_true,
    is_world,
    items,
    port_spec_outside,
    resource_policy,
)

REDIS_ENTERPRISE = "azure-native:redisenterprise:RedisEnterprise"
REDIS_ENTERPRISE_DATABASE = "azure-native:redisenterprise:Database"
CACHE_REDIS = "azure-native:redis:Redis"
POSTGRES_SERVER = "azure-native:dbforpostgresql:Server"
POSTGRES_CONFIGURATION = "azure-native:dbforpostgresql:Configuration"
MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
NETWORK_SECURITY_GROUP = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
SUBNET = "azure-native:network:Subnet"
KEY_VAULT = "azure-native:keyvault:Vault"
KEY_VAULT_SECRET = "azure-native:keyvault:Secret"
DEFENDER_PRICING = "azure-native:security:Pricing"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"

_TLS_OK = {"1.2", "1.3"}


def _redis_enterprise_tls(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    version = get(props, "minimumTlsVersion")
    # Azure Managed Redis defaults to 1.2 when unset.
    if version is not None and str(version) not in _TLS_OK:
        yield f"minimumTlsVersion is {version}: set minimumTlsVersion='1.2'"


def _redis_enterprise_private(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "publicNetworkAccess") != "Disabled":
        yield (
            f"publicNetworkAccess is {get(props, 'publicNetworkAccess', 'unset')}: set "
            "publicNetworkAccess='Disabled' and reach the cache through a private endpoint"
        )


def _redis_database_protocol(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if str(get(props, "clientProtocol", "Encrypted")) != "Encrypted":
        yield "clientProtocol is Plaintext: set clientProtocol='Encrypted' (TLS on port 10000)"


def _cache_redis_tls(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if is_true(get(props, "enableNonSslPort")):
        yield "enableNonSslPort is true: set enableNonSslPort=False"
    if str(get(props, "minimumTlsVersion", "")) not in _TLS_OK:
        yield "minimumTlsVersion is not 1.2: set minimumTlsVersion='1.2'"


def _cache_redis_private(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "publicNetworkAccess") != "Disabled":
        yield "publicNetworkAccess is not Disabled: set publicNetworkAccess='Disabled'"


def _postgres_private(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    access = get(props, "network.publicNetworkAccess")
    delegated = get(props, "network.delegatedSubnetResourceId")
    if access == "Disabled" or (access is None and delegated):
        return
    yield (
        f"network.publicNetworkAccess is {access or 'unset (Enabled)'}: set "
        "network.publicNetworkAccess='Disabled' with a delegated subnet or a private endpoint"
    )


def _postgres_secure_transport(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    name = get(props, "configurationName")
    value = str(get(props, "value", "")).strip()
    if name == "require_secure_transport" and value.lower() != "on":
        yield f"require_secure_transport is {value!r}: set value='on' so clients must use TLS"
    if name == "ssl_min_protocol_version" and value not in {"TLSv1.2", "TLSv1.3"}:
        yield f"ssl_min_protocol_version is {value!r}: set value='TLSv1.2'"


def _pool_host_encryption(where: str, pool: Any) -> Iterable[str]:
    if not is_true(get(pool, "enableEncryptionAtHost")):
        yield (
            f"{where}enableEncryptionAtHost is not true: set enableEncryptionAtHost=True so "
            "temp and cache disks are encrypted too"
        )


def _cluster_host_encryption(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "diskEncryptionSetID"):
        return  # OS and data disks encrypted with a customer-managed key set
    yield from per_pool(_pool_host_encryption)[MANAGED_CLUSTER](props, config)


def _cluster_api_restricted(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    profile = get(props, "apiServerAccessProfile", {})
    if is_true(get(profile, "enablePrivateCluster")):
        return
    cidrs = items(profile, "authorizedIPRanges")
    if not cidrs:
        yield (
            "apiServerAccessProfile.authorizedIPRanges is unset, so the API server is open to the "
            "internet: set it to the deployers' CIDRs or apiServerAccessProfile.enablePrivateCluster=True"
        )
    yield from cidr_violations(cidrs, config, "apiServerAccessProfile.authorizedIPRanges")


def _cluster_rbac(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "enableRBAC") is False:
        yield "enableRBAC is false: set enableRBAC=True"


def _cluster_local_accounts(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if not is_true(get(props, "disableLocalAccounts")):
        yield (
            f"disableLocalAccounts is not true in stack {config[STACK_KEY]}: set "
            "disableLocalAccounts=True (with aadProfile) so every kubectl user signs in through "
            "Microsoft Entra ID"
        )


def _pool_public_ip(where: str, pool: Any) -> Iterable[str]:
    if is_true(get(pool, "enableNodePublicIP")):
        yield f"{where}enableNodePublicIP is true: set enableNodePublicIP=False"


def per_pool(check: Callable[[str, Any], Iterable[str]]) -> dict[str, Check]:
    """A node-pool check for both places a pool is declared: inline on the cluster
    (``agentPoolProfiles``) and as its own ``AgentPool``."""

    def cluster(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
        for index, pool in enumerate(items(props, "agentPoolProfiles")):
            yield from check(f"agentPoolProfiles[{index}].", pool)

    def agent_pool(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
        yield from check("", props)

    return {MANAGED_CLUSTER: cluster, AGENT_POOL: agent_pool}


def _storage_https(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "enableHttpsTrafficOnly") is False:
        yield "enableHttpsTrafficOnly is false: set enableHttpsTrafficOnly=True"
    if get(props, "minimumTlsVersion") not in {"TLS1_2", "TLS1_3"}:
        yield (
            f"minimumTlsVersion is {get(props, 'minimumTlsVersion', 'unset')}: "
            "set minimumTlsVersion='TLS1_2'"
        )


def _storage_private(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "allowBlobPublicAccess") is not False:
        yield "allowBlobPublicAccess is not false: set allowBlobPublicAccess=False"


def _rule_violations(
    where: str, rule: Any, allowed: list[int], config: Mapping[str, Any]
) -> Iterable[str]:
    if str(get(rule, "direction", "")).lower() != "inbound":
        return
    if str(get(rule, "access", "")).lower() != "allow":
        return
    sources = [get(rule, "sourceAddressPrefix"), *items(rule, "sourceAddressPrefixes")]
    if not is_world(sources, config):
        return
    ports = [get(rule, "destinationPortRange"), *items(rule, "destinationPortRanges")]
    protocol = str(get(rule, "protocol", "*")).lower()
    # The allowed public ports are TCP (HTTPS): UDP (or any protocol) from the internet is not.
    tcp_only = allowed if protocol == "tcp" else []
    opened = [p for p in ports if p is not None and port_spec_outside(p, tcp_only)]
    if opened:
        yield (
            f"{where}opens port(s) {opened} to the internet: set sourceAddressPrefix(es) to the "
            f"VNet or known networks (only {allowed} may be public)"
        )


def _nsg_ingress(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    allowed = [int(p) for p in config["allowedPublicPorts"]]
    for index, rule in enumerate(items(props, "securityRules")):
        name = get(rule, "name", index)
        yield from _rule_violations(f"securityRules[{name}] ", rule, allowed, config)


def _security_rule_ingress(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    yield from _rule_violations("", props, [int(p) for p in config["allowedPublicPorts"]], config)


# Built-in role definition IDs (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
PRIVILEGED_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
}
_SUBSCRIPTION_SCOPE = re.compile(
    r"^(/|/subscriptions/[^/]+/?|/providers/Microsoft\.Management/managementGroups/[^/]+/?)$",
    re.IGNORECASE,
)


def _role_assignment(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    role = str(get(props, "roleDefinitionId", "")).rstrip("/").rsplit("/", 1)[-1].lower()
    scope = str(get(props, "scope", ""))
    name = PRIVILEGED_ROLES.get(role)
    if name and _SUBSCRIPTION_SCOPE.match(scope):
        yield (
            f"grants {name} at scope {scope!r}: assign a narrower built-in role, or scope it to "
            "the resource group or resource that needs it"
        )


def _cluster_network_policy(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    plugin = str(get(props, "networkProfile.networkPlugin", "kubenet")).lower()
    if plugin != "azure":
        yield (
            f"networkProfile.networkPlugin is {plugin}: set it to 'azure' (Azure CNI; kubenet "
            "is retiring)"
        )
    policy = str(get(props, "networkProfile.networkPolicy", "none")).lower()
    if policy not in {"azure", "calico", "cilium"}:
        yield (
            f"networkProfile.networkPolicy is {policy}: set it to 'cilium' (or 'azure', "
            "'calico') so NetworkPolicy objects are enforced"
        )


def _cluster_defender(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    defender = get(props, "securityProfile.defender", {})
    if not is_true(get(defender, "securityMonitoring.enabled")) or not get(
        defender, "logAnalyticsWorkspaceResourceId"
    ):
        yield (
            "securityProfile.defender is not enabled: set securityProfile.defender."
            "securityMonitoring.enabled=True with logAnalyticsWorkspaceResourceId"
        )


def _cluster_kms(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    kms = get(props, "securityProfile.azureKeyVaultKms", {})
    if not is_true(get(kms, "enabled")) or not get(kms, "keyId"):
        yield (
            "securityProfile.azureKeyVaultKms is not enabled: set enabled=True and keyId to a "
            "Key Vault key so Kubernetes secrets are encrypted with your key"
        )


def _postgres_ha(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "highAvailability.mode") != "ZoneRedundant":
        yield (
            f"highAvailability.mode is {get(props, 'highAvailability.mode', 'unset (Disabled)')} "
            "in production: set highAvailability.mode='ZoneRedundant'"
        )
    if get(props, "backup.geoRedundantBackup") != "Enabled":
        yield "backup.geoRedundantBackup is not Enabled in production: set it to 'Enabled'"


def _postgres_cmk(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "dataEncryption.type") != "AzureKeyVault":
        yield (
            "dataEncryption.type is not AzureKeyVault: set dataEncryption with "
            "primaryKeyURI and primaryUserAssignedIdentityId (customer-managed key)"
        )


def _redis_enterprise_ha(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "highAvailability") == "Disabled":
        yield "highAvailability is Disabled in production: set highAvailability='Enabled'"


def _redis_enterprise_cmk(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not get(props, "encryption.customerManagedKeyEncryption.keyEncryptionKeyUrl"):
        yield (
            "encryption.customerManagedKeyEncryption is not set: set keyEncryptionKeyUrl and "
            "keyEncryptionKeyIdentity (customer-managed key)"
        )


def _cluster_addons(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    addons = get(props, "addonProfiles", {})
    enabled = {str(k).lower(): is_true(get(v, "enabled")) for k, v in dict(addons).items()}
    if not enabled.get("omsagent"):
        yield (
            "addonProfiles.omsagent is not enabled: enable Container Insights with a Log "
            "Analytics workspace"
        )
    if not enabled.get("azurepolicy"):
        yield "addonProfiles.azurepolicy is not enabled: enable the Azure Policy add-on"
    for addon in ("httpapplicationrouting", "kubedashboard"):
        if enabled.get(addon):
            yield f"addonProfiles.{addon} is enabled: disable it (unauthenticated entry points)"


def _cluster_upgrades(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    channel = str(get(props, "autoUpgradeProfile.upgradeChannel", "none"))
    if channel.lower() == "none":
        yield (
            f"autoUpgradeProfile.upgradeChannel is {channel}: set it to 'patch' (or 'stable') "
            "so the cluster takes security patches"
        )


def _pools(where: str, pool: Any) -> Iterable[str]:
    kind = get(pool, "type", "VirtualMachineScaleSets")
    if kind != "VirtualMachineScaleSets":
        yield f"{where}type is {kind}: use 'VirtualMachineScaleSets' (autoscaling, zones, upgrades)"
    pods = get(pool, "maxPods")
    if pods is not None and int(pods) < 50:
        yield f"{where}maxPods is {int(pods)}: allow at least 50 pods per node"
    if get(pool, "mode") == "System" and not any(
        str(t).startswith("CriticalAddonsOnly") for t in items(pool, "nodeTaints")
    ):
        yield (
            f"{where}is a System pool without the CriticalAddonsOnly taint: add "
            "nodeTaints=['CriticalAddonsOnly=true:NoSchedule'] so application pods run elsewhere"
        )


def _cluster_sla(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    tier = get(props, "sku.tier", "Free")
    if tier == "Free":
        yield "sku.tier is Free in production (no API server SLA): set sku.tier='Standard'"


_SPECIAL_SUBNETS = {
    "GatewaySubnet",
    "AzureFirewallSubnet",
    "AzureBastionSubnet",
    "RouteServerSubnet",
}


def _subnet_nsg(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "subnetName") in _SPECIAL_SUBNETS:
        return  # Azure forbids or manages NSGs on these
    if not get(props, "networkSecurityGroup.id"):
        yield "networkSecurityGroup is not set: attach a network security group to the subnet"


def _storage_network(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "publicNetworkAccess") == "Disabled":
        return
    if get(props, "networkRuleSet.defaultAction", "Allow") != "Deny":
        yield (
            "networkRuleSet.defaultAction is not Deny (and publicNetworkAccess is not Disabled): "
            "set networkRuleSet.defaultAction='Deny' or publicNetworkAccess='Disabled'"
        )


def _vault_recoverable(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    # Soft delete is on by default (and can no longer be turned off on new vaults);
    # purge protection is off unless set, and cannot be turned off once on.
    if get(props, "properties.enableSoftDelete") is False:
        yield "properties.enableSoftDelete is false: set properties.enableSoftDelete=True"
    if not is_true(get(props, "properties.enablePurgeProtection")):
        yield (
            "properties.enablePurgeProtection is not true: set "
            "properties.enablePurgeProtection=True (a deleted vault or key stays recoverable)"
        )


def _secret_content_type(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not get(props, "properties.contentType"):
        yield (
            "properties.contentType is not set: set properties.contentType to what the value "
            "is (for example 'application/json'), so readers and rotation know how to parse it"
        )


def _defender_pricing(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    tier = get(props, "pricingTier")
    if str(tier) != "Standard":
        yield (
            f"pricingTier is {tier or 'unset'} for the {get(props, 'pricingName', '?')} plan: "
            "set pricingTier='Standard' (Free turns Defender off for the whole subscription)"
        )


def _role_definition(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    for i, permission in enumerate(items(props, "permissions")):
        if "*" in [str(a).strip() for a in items(permission, "actions")]:
            yield (
                f"permissions[{i}].actions contains '*': a custom role with every action is an "
                "Owner of its scopes; list the actions the role needs"
            )


def policies() -> list[ResourceValidationPolicy]:
    """Every Azure resource policy of the pack."""
    enc, exp = Category.ENCRYPTION, Category.EXPOSURE
    return [
        resource_policy(
            "azure-redisenterprise-redisenterprise-minimum-tls",
            "Azure Managed Redis must refuse TLS below 1.2. Fix: set minimumTlsVersion='1.2'.",
            types=[REDIS_ENTERPRISE],
            check=_redis_enterprise_tls,
            category=enc,
        ),
        resource_policy(
            "azure-redisenterprise-redisenterprise-no-public-access",
            "Azure Managed Redis must not be reachable from the internet. Fix: set "
            "publicNetworkAccess='Disabled' and connect through a private endpoint.",
            types=[REDIS_ENTERPRISE],
            check=_redis_enterprise_private,
            category=exp,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "azure-redisenterprise-database-encrypted-protocol",
            "Azure Managed Redis databases must speak TLS only. Fix: set clientProtocol='Encrypted'.",
            types=[REDIS_ENTERPRISE_DATABASE],
            check=_redis_database_protocol,
            category=enc,
        ),
        resource_policy(
            "azure-cache-redis-tls",
            "Azure Cache for Redis must disable the plaintext port and refuse TLS below 1.2. "
            "Fix: set enableNonSslPort=False and minimumTlsVersion='1.2' (or move to Azure "
            "Managed Redis: Azure Cache for Redis retires).",
            types=[CACHE_REDIS],
            check=_cache_redis_tls,
            category=enc,
        ),
        resource_policy(
            "azure-cache-redis-no-public-access",
            "Azure Cache for Redis must not be reachable from the internet. Fix: set "
            "publicNetworkAccess='Disabled'.",
            types=[CACHE_REDIS],
            check=_cache_redis_private,
            category=exp,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "azure-dbforpostgresql-server-no-public-access",
            "PostgreSQL Flexible Servers must not be reachable from the internet. Fix: set "
            "network.publicNetworkAccess='Disabled' (delegated subnet or private endpoint).",
            types=[POSTGRES_SERVER],
            check=_postgres_private,
            category=exp,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "azure-dbforpostgresql-configuration-secure-transport",
            "PostgreSQL Flexible Servers must require TLS 1.2+. Fix: keep the server "
            "configuration require_secure_transport='on' and ssl_min_protocol_version='TLSv1.2'.",
            types=[POSTGRES_CONFIGURATION],
            check=_postgres_secure_transport,
            category=enc,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-host-encryption",
            "AKS node disks (OS, temp, cache) must be encrypted at the host, or the cluster's "
            "disks with a customer-managed key. Fix: set enableEncryptionAtHost=True on every "
            "agentPoolProfiles entry (or diskEncryptionSetID).",
            types=[MANAGED_CLUSTER],
            check=_cluster_host_encryption,
            category=enc,
        ),
        resource_policy(
            "azure-containerservice-agentpool-host-encryption",
            "AKS node disks must be encrypted at the host. Fix: set enableEncryptionAtHost=True.",
            types=[AGENT_POOL],
            check=per_pool(_pool_host_encryption)[AGENT_POOL],
            category=enc,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-api-restricted",
            "The AKS API server must be private or limited to known CIDRs (never 0.0.0.0/0). "
            "Fix: set apiServerAccessProfile.authorizedIPRanges to the deployers' CIDRs, or "
            "apiServerAccessProfile.enablePrivateCluster=True.",
            types=[MANAGED_CLUSTER],
            check=_cluster_api_restricted,
            category=exp,
            params=API_CIDRS,
            param_docs=API_CIDRS_DOC,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-rbac",
            "AKS must authorise requests with Kubernetes RBAC. Fix: set enableRBAC=True.",
            types=[MANAGED_CLUSTER],
            check=_cluster_rbac,
            category=exp,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-local-accounts-disabled",
            "AKS local accounts (a static admin kubeconfig) bypass Entra ID and cannot be "
            "attributed to a person; they are allowed only outside the listed environments "
            "(break-glass in dev). Fix: set disableLocalAccounts=True with aadProfile.managed=True.",
            types=[MANAGED_CLUSTER],
            check=_cluster_local_accounts,
            category=exp,
            non_production=DEV_EXEMPT,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-no-node-public-ip",
            "AKS nodes must not get public IPs. Fix: set enableNodePublicIP=False.",
            types=[MANAGED_CLUSTER],
            check=per_pool(_pool_public_ip)[MANAGED_CLUSTER],
            category=exp,
        ),
        resource_policy(
            "azure-containerservice-agentpool-no-node-public-ip",
            "AKS nodes must not get public IPs. Fix: set enableNodePublicIP=False.",
            types=[AGENT_POOL],
            check=per_pool(_pool_public_ip)[AGENT_POOL],
            category=exp,
        ),
        resource_policy(
            "azure-storage-storageaccount-secure-transfer",
            "Storage accounts must accept HTTPS with TLS 1.2+ only. Fix: set "
            "enableHttpsTrafficOnly=True and minimumTlsVersion='TLS1_2'.",
            types=[STORAGE_ACCOUNT],
            check=_storage_https,
            category=enc,
        ),
        resource_policy(
            "azure-storage-storageaccount-no-public-blob",
            "Storage accounts must not allow anonymous blob access. Fix: set "
            "allowBlobPublicAccess=False.",
            types=[STORAGE_ACCOUNT],
            check=_storage_private,
            category=exp,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "azure-network-networksecuritygroup-no-public-ingress",
            "Network security groups must not allow any port but HTTPS from the internet "
            "('*', 'Internet', 0.0.0.0/0). Fix: set the rule's sourceAddressPrefix(es) to the "
            "VNet or known networks.",
            types=[NETWORK_SECURITY_GROUP, SECURITY_RULE],
            check={NETWORK_SECURITY_GROUP: _nsg_ingress, SECURITY_RULE: _security_rule_ingress},
            category=exp,
            params=PUBLIC_PORTS,
            param_docs=PUBLIC_PORTS_DOC,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "azure-authorization-roleassignment-no-privileged-broad-scope",
            "Owner, Contributor, User Access Administrator and RBAC Administrator must not be "
            "granted at subscription or management-group scope. Fix: assign a narrower role, "
            "scoped to the resource group or resource that needs it.",
            types=[ROLE_ASSIGNMENT],
            check=_role_assignment,
            category=Category.IDENTITY,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "azure-authorization-roledefinition-no-wildcard-actions",
            "Custom roles must not grant every action ('*'): such a role is an Owner of every "
            "scope it can be assigned at. Fix: list the actions the role needs.",
            types=[ROLE_DEFINITION],
            check=_role_definition,
            category=Category.IDENTITY,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "azure-keyvault-vault-recoverable",
            "Key Vaults must keep deleted vaults and keys recoverable (soft delete with purge "
            "protection), so a deletion cannot take the data they encrypt with it. Fix: set "
            "properties.enableSoftDelete=True and properties.enablePurgeProtection=True.",
            types=[KEY_VAULT],
            check=_vault_recoverable,
            category=Category.RESILIENCE,
        ),
        resource_policy(
            "azure-keyvault-secret-content-type",
            "Key Vault secrets must say what their value is (a content type), so the readers "
            "and whoever rotates it parse it the same way. Fix: set "
            "properties.contentType (for example 'application/json').",
            types=[KEY_VAULT_SECRET],
            check=_secret_content_type,
            category=Category.IDENTITY,
            severity=Severity.LOW,
        ),
        resource_policy(
            "azure-security-pricing-standard",
            "A Microsoft Defender for Cloud plan the stack sets must be on (Standard): a Free "
            "plan switches Defender off for every resource of the subscription. Fix: set "
            "pricingTier='Standard'.",
            types=[DEFENDER_PRICING],
            check=_defender_pricing,
            category=Category.LOGGING,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-network-policy",
            "AKS must run Azure CNI and enforce Kubernetes NetworkPolicy. Fix: set "
            "networkProfile.networkPlugin='azure' and networkPolicy='cilium' (or 'azure', "
            "'calico').",
            types=[MANAGED_CLUSTER],
            check=_cluster_network_policy,
            category=exp,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-defender",
            "AKS must run Microsoft Defender for Containers (runtime threat detection) outside the "
            "listed environments (dev: Defender is billed per vCore, and the program's "
            "azure.defenderForContainers is off there by default). Fix: set "
            "securityProfile.defender.securityMonitoring.enabled=True and "
            "logAnalyticsWorkspaceResourceId.",
            types=[MANAGED_CLUSTER],
            check=_cluster_defender,
            category=Category.LOGGING,
            non_production=DEV_EXEMPT,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-addons",
            "AKS must run Container Insights and the Azure Policy add-on, and neither HTTP "
            "application routing nor the Kubernetes dashboard. Fix: enable addonProfiles.omsagent "
            "and azurepolicy; disable httpApplicationRouting and kubeDashboard.",
            types=[MANAGED_CLUSTER],
            check=_cluster_addons,
            category=Category.LOGGING,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-auto-upgrade",
            "AKS must follow an upgrade channel, so Kubernetes security patches apply. Fix: set "
            "autoUpgradeProfile.upgradeChannel='patch'.",
            types=[MANAGED_CLUSTER],
            check=_cluster_upgrades,
            category=exp,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-node-pools",
            "AKS node pools run on scale sets with room for at least 50 pods per node, and the "
            "system pool runs only critical add-ons. Fix: type='VirtualMachineScaleSets', "
            "maxPods>=50, and nodeTaints=['CriticalAddonsOnly=true:NoSchedule'] on System pools.",
            types=[MANAGED_CLUSTER, AGENT_POOL],
            check=per_pool(_pools),
            category=Category.RESILIENCE,
            severity=Severity.LOW,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-uptime-sla",
            "In production the AKS API server has an uptime SLA. Fix: set sku.tier='Standard'.",
            types=[MANAGED_CLUSTER],
            check=_cluster_sla,
            category=Category.RESILIENCE,
            non_production=PROD_ONLY,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "azure-network-subnet-nsg",
            "Every subnet has a network security group. Fix: set networkSecurityGroup.id.",
            types=[SUBNET],
            check=_subnet_nsg,
            category=exp,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "azure-containerservice-managedcluster-kms",
            "AKS must encrypt Kubernetes secrets in etcd with a Key Vault key. Fix: set "
            "securityProfile.azureKeyVaultKms.enabled=True and keyId.",
            types=[MANAGED_CLUSTER],
            check=_cluster_kms,
            category=enc,
        ),
        resource_policy(
            "azure-dbforpostgresql-server-high-availability",
            "In production PostgreSQL Flexible Servers are zone-redundant with geo-redundant "
            "backups. Fix: set highAvailability.mode='ZoneRedundant' and "
            "backup.geoRedundantBackup='Enabled'.",
            types=[POSTGRES_SERVER],
            check=_postgres_ha,
            category=Category.RESILIENCE,
            non_production=PROD_ONLY,
        ),
        resource_policy(
            "azure-dbforpostgresql-server-customer-managed-key",
            "PostgreSQL Flexible Servers must encrypt with a customer-managed key. Fix: set "
            "dataEncryption.type='AzureKeyVault' with primaryKeyURI and an identity.",
            types=[POSTGRES_SERVER],
            check=_postgres_cmk,
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "azure-redisenterprise-redisenterprise-high-availability",
            "In production Azure Managed Redis keeps replication on. Fix: set "
            "highAvailability='Enabled'.",
            types=[REDIS_ENTERPRISE],
            check=_redis_enterprise_ha,
            category=Category.RESILIENCE,
            non_production=PROD_ONLY,
        ),
        resource_policy(
            "azure-redisenterprise-redisenterprise-customer-managed-key",
            "Azure Managed Redis must encrypt with a customer-managed key. Fix: set "
            "encryption.customerManagedKeyEncryption.keyEncryptionKeyUrl and its identity.",
            types=[REDIS_ENTERPRISE],
            check=_redis_enterprise_cmk,
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "azure-storage-storageaccount-network-deny",
            "Storage accounts must deny network access by default (the default rule allows "
            "every network). Fix: set networkRuleSet.defaultAction='Deny' or "
            "publicNetworkAccess='Disabled'.",
            types=[STORAGE_ACCOUNT],
            check=_storage_network,
            category=exp,
        ),
    ]
