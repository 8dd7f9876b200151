"""Fakes for pulumi-azure-native: ARM ids, computed endpoints and the list functions.

Every output the Azure footprint reads is answered with a value shaped like
the real one (ARM ids with the right provider namespace and parent path, AKS
FQDNs and OIDC issuer URLs, identity GUIDs, Redis and PostgreSQL host names,
a base64 kubeconfig from the credential API), so each ``apply`` downstream
runs on real-looking data.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import yaml

from infra.offline.fakes import FakeContext, fake_hex, function, generic, resource

# Type token -> (ARM provider/collection, input holding the physical name,
# parent path segments as (input key, collection)).
_ARM: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {
    "azure-native:keyvault:Vault": ("Microsoft.KeyVault/vaults", "vaultName", ()),
    "azure-native:keyvault:Key": (
        "Microsoft.KeyVault/vaults",
        "keyName",
        (("vaultName", "keys"),),
    ),
    "azure-native:keyvault:Secret": (
        "Microsoft.KeyVault/vaults",
        "secretName",
        (("vaultName", "secrets"),),
    ),
    "azure-native:containerregistry:Registry": (
        "Microsoft.ContainerRegistry/registries",
        "registryName",
        (),
    ),
    "azure-native:network:VirtualNetwork": (
        "Microsoft.Network/virtualNetworks",
        "virtualNetworkName",
        (),
    ),
    "azure-native:network:Subnet": (
        "Microsoft.Network/virtualNetworks",
        "subnetName",
        (("virtualNetworkName", "subnets"),),
    ),
    "azure-native:network:NetworkSecurityGroup": (
        "Microsoft.Network/networkSecurityGroups",
        "networkSecurityGroupName",
        (),
    ),
    "azure-native:network:PublicIPAddress": (
        "Microsoft.Network/publicIPAddresses",
        "publicIpAddressName",
        (),
    ),
    "azure-native:network:NatGateway": ("Microsoft.Network/natGateways", "natGatewayName", ()),
    "azure-native:network:PrivateEndpoint": (
        "Microsoft.Network/privateEndpoints",
        "privateEndpointName",
        (),
    ),
    "azure-native:network:PrivateDnsZoneGroup": (
        "Microsoft.Network/privateEndpoints",
        "privateDnsZoneGroupName",
        (("privateEndpointName", "privateDnsZoneGroups"),),
    ),
    "azure-native:privatedns:PrivateZone": (
        "Microsoft.Network/privateDnsZones",
        "privateZoneName",
        (),
    ),
    "azure-native:privatedns:VirtualNetworkLink": (
        "Microsoft.Network/privateDnsZones",
        "virtualNetworkLinkName",
        (("privateZoneName", "virtualNetworkLinks"),),
    ),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "resourceName",
        (),
    ),
    "azure-native:operationalinsights:Workspace": (
        "Microsoft.OperationalInsights/workspaces",
        "workspaceName",
        (),
    ),
    "azure-native:containerservice:ManagedCluster": (
        "Microsoft.ContainerService/managedClusters",
        "resourceName",
        (),
    ),
    "azure-native:containerservice:AgentPool": (
        "Microsoft.ContainerService/managedClusters",
        "agentPoolName",
        (("resourceName", "agentPools"),),
    ),
    "azure-native:redisenterprise:RedisEnterprise": (
        "Microsoft.Cache/redisEnterprise",
        "clusterName",
        (),
    ),
    "azure-native:redisenterprise:Database": (
        "Microsoft.Cache/redisEnterprise",
        "databaseName",
        (("clusterName", "databases"),),
    ),
    "azure-native:dbforpostgresql:Server": (
        "Microsoft.DBforPostgreSQL/flexibleServers",
        "serverName",
        (),
    ),
    "azure-native:dbforpostgresql:Database": (
        "Microsoft.DBforPostgreSQL/flexibleServers",
        "databaseName",
        (("serverName", "databases"),),
    ),
    "azure-native:dbforpostgresql:Configuration": (
        "Microsoft.DBforPostgreSQL/flexibleServers",
        "configurationName",
        (("serverName", "configurations"),),
    ),
}


def fake_guid(*parts: str) -> str:
    """A stable GUID derived from ``parts`` (object ids, principal ids, client ids)."""
    return str(uuid.UUID(fake_hex(*parts, length=32), version=4))


def _group_id(ctx: FakeContext, group: str) -> str:
    return f"/subscriptions/{ctx.azure_subscription_id}/resourceGroups/{group}"


def arm_id(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> str:
    """An ARM resource id shaped like the real one for ``token``."""
    group = inputs.get("resourceGroupName") or "rg"
    if token == "azure-native:resources:ResourceGroup":
        return _group_id(ctx, inputs.get("resourceGroupName") or name)
    known = _ARM.get(token)
    if known is not None:
        collection, _, parents = known
        path = "".join(f"/{inputs.get(key, 'parent')}/{child}" for key, child in parents)
        return f"{_group_id(ctx, group)}/providers/{collection}{path}/{name}"
    _, module, kind = token.split(":")
    return (
        f"{_group_id(ctx, group)}/providers/"
        f"Microsoft.{module.capitalize()}/{kind[0].lower()}{kind[1:]}s/{name}"
    )


def _physical_name(token: str, name: str, inputs: dict[str, Any]) -> str:
    known = _ARM.get(token)
    if known is not None and isinstance(inputs.get(known[1]), str):
        return inputs[known[1]]
    if token == "azure-native:resources:ResourceGroup" and inputs.get("resourceGroupName"):
        return inputs["resourceGroupName"]
    # Otherwise the first explicit *Name input, else Pulumi's auto-name.
    return next(
        (
            v
            for k, v in inputs.items()
            if k.endswith("Name") and k != "resourceGroupName" and isinstance(v, str)
        ),
        f"{name}{fake_hex(name, length=6)}",
    )


@generic("azure-native")
def _azure_generic(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    physical = _physical_name(token, name, inputs)
    return {
        "id": arm_id(ctx, token, physical, inputs),
        "name": physical,
        "azureApiVersion": "2024-01-01",
        "provisioningState": "Succeeded",
    }


@function("azure-native:authorization:getClientConfig")
def _client_config(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "clientId": "00000000-0000-4000-8000-0000000000c1",
        "objectId": "00000000-0000-4000-8000-0000000000d1",
        "subscriptionId": ctx.azure_subscription_id,
        "tenantId": ctx.azure_tenant_id,
    }


# ------------------------------------------------------------------------ network


@resource("azure-native:network:PublicIPAddress")
def _public_ip(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    digest = bytes.fromhex(fake_hex("pip", ctx.stack, name, length=6))
    # 20.0.0.0/8 is one of Azure's public ranges.
    return {"ipAddress": f"20.{digest[0]}.{digest[1]}.{max(digest[2], 1)}"}


@resource("azure-native:network:PrivateEndpoint")
def _private_endpoint(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    group = inputs.get("resourceGroupName") or "rg"
    nic = f"{inputs.get('privateEndpointName', name)}.nic.{fake_guid('nic', name)}"
    return {
        "networkInterfaces": [
            {"id": f"{_group_id(ctx, group)}/providers/Microsoft.Network/networkInterfaces/{nic}"}
        ],
    }


# ------------------------------------------------------------------- identity, AKS


@resource("azure-native:managedidentity:UserAssignedIdentity")
def _identity(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return _identity_ids(ctx, str(inputs.get("resourceName") or name))


def _identity_ids(ctx: FakeContext, physical_name: str) -> dict[str, Any]:
    # Keyed by the physical name, so an AKS cluster's view of its identity
    # (read back from the identity's ARM id) matches the identity itself.
    return {
        "principalId": fake_guid("principal", ctx.stack, physical_name),
        "clientId": fake_guid("client", ctx.stack, physical_name),
        "tenantId": ctx.azure_tenant_id,
    }


@resource("azure-native:authorization:RoleAssignment")
def _role_assignment(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    guid = inputs.get("roleAssignmentName") or fake_guid("role-assignment", ctx.stack, name)
    return {
        "id": f"{inputs.get('scope', '')}/providers/Microsoft.Authorization/roleAssignments/{guid}",
        "name": guid,
    }


@resource("azure-native:monitor:DiagnosticSetting")
def _diagnostic_setting(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    setting = inputs.get("name") or name
    return {
        "id": f"{inputs.get('resourceUri', '')}/providers/Microsoft.Insights/diagnosticSettings/{setting}",
        "name": setting,
    }


@resource("azure-native:authorization:ManagementLockAtResourceGroupLevel")
def _lock(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    lock = inputs.get("lockName") or name
    group = inputs.get("resourceGroupName") or "rg"
    return {
        "id": f"{_group_id(ctx, group)}/providers/Microsoft.Authorization/locks/{lock}",
        "name": lock,
    }


@resource("azure-native:keyvault:Vault")
def _key_vault(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "properties": {
            **inputs.get("properties", {}),
            "vaultUri": f"https://{inputs['vaultName']}.vault.azure.net/",
        }
    }


@resource("azure-native:keyvault:Key")
def _key_vault_key(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    uri = f"https://{inputs['vaultName']}.vault.azure.net/keys/{inputs['keyName']}"
    return {"keyUri": uri, "keyUriWithVersion": f"{uri}/{fake_hex(name, length=32)}"}


@resource("azure-native:keyvault:Secret")
def _key_vault_secret(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    # ARM never returns a secret's value: only its URIs and attributes.
    uri = f"https://{inputs['vaultName']}.vault.azure.net/secrets/{inputs['secretName']}"
    properties = {k: v for k, v in (inputs.get("properties") or {}).items() if k != "value"}
    return {
        "properties": {
            **properties,
            "secretUri": uri,
            "secretUriWithVersion": f"{uri}/{fake_hex(name, length=32)}",
        }
    }


@resource("azure-native:operationalinsights:Workspace")
def _workspace(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"customerId": fake_guid("workspace", ctx.stack, name)}


def _location(inputs: dict[str, Any]) -> str:
    return str(inputs.get("location") or "eastus2")


@resource("azure-native:containerservice:ManagedCluster")
def _managed_cluster(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    location = _location(inputs)
    prefix = inputs.get("dnsPrefix") or name
    host = f"{prefix}-{fake_hex('aks', ctx.stack, name, length=8)}"
    group = inputs.get("resourceGroupName") or "rg"
    node_group = (
        inputs.get("nodeResourceGroup") or f"MC_{group}_{inputs.get('resourceName')}_{location}"
    )
    kubelet = f"{inputs.get('resourceName', name)}-agentpool"
    access = inputs.get("apiServerAccessProfile") or {}
    private = bool(access.get("enablePrivateCluster"))
    identity = dict(inputs.get("identity") or {})
    assigned = identity.get("userAssignedIdentities") or []
    if isinstance(assigned, list):
        # ARM answers with a map of identity id -> its principal and client ids.
        identity["userAssignedIdentities"] = {
            rid: {
                k: v
                for k, v in _identity_ids(ctx, rid.rsplit("/", 1)[-1]).items()
                if k != "tenantId"
            }
            for rid in assigned
        }
    outputs: dict[str, Any] = {
        "identity": identity,
        "fqdn": f"{host}.hcp.{location}.azmk8s.io",
        "azurePortalFQDN": f"{host}.portal.hcp.{location}.azmk8s.io",
        "currentKubernetesVersion": f"{inputs.get('kubernetesVersion', '1.33')}.2",
        "nodeResourceGroup": node_group,
        "maxAgentPools": 100,
        "powerState": {"code": "Running"},
        "oidcIssuerProfile": {
            **(inputs.get("oidcIssuerProfile") or {}),
            "issuerURL": (
                f"https://{location}.oic.prod-aks.azure.com/{ctx.azure_tenant_id}/"
                f"{fake_guid('oidc', ctx.stack, name)}/"
            ),
        },
        "identityProfile": {
            "kubeletidentity": {
                "clientId": fake_guid("kubelet-client", ctx.stack, name),
                "objectId": fake_guid("kubelet-object", ctx.stack, name),
                "resourceId": (
                    f"{_group_id(ctx, node_group)}/providers/Microsoft.ManagedIdentity/"
                    f"userAssignedIdentities/{kubelet}"
                ),
            }
        },
    }
    if private:
        outputs["privateFQDN"] = (
            f"{host}.{fake_guid('pdns', name)}.privatelink.{location}.azmk8s.io"
        )
    _API_SERVERS[(ctx.stack, str(inputs.get("resourceName") or name))] = str(
        outputs.get("privateFQDN") or outputs["fqdn"]
    )
    return outputs


# The API server of each cluster the fake cloud created, by (stack, cluster
# name): the credential functions answer with the same endpoint, as AKS does.
_API_SERVERS: dict[tuple[str, str], str] = {}


def _kubeconfig(ctx: FakeContext, args: dict[str, Any], user: str) -> dict[str, Any]:
    cluster = str(args.get("resourceName") or "aks")
    host = _API_SERVERS.get((ctx.stack, cluster))
    if host is None:
        raise ValueError(
            f"listManagedClusterUserCredentials: no managed cluster {cluster!r} in stack "
            f"{ctx.stack}; read credentials from the cluster's own name output"
        )
    server = f"https://{host}:443"
    ca = base64.b64encode(
        b"-----BEGIN CERTIFICATE-----\nMIIE6DCCAtCgAwIBAgIQOFFLINE\n-----END CERTIFICATE-----\n"
    ).decode()
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster, "cluster": {"server": server, "certificate-authority-data": ca}}
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "users": [
            {
                "name": user,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "kubelogin",
                        "args": ["get-token", "--login", "devicecode"],
                    }
                },
            }
        ],
    }
    encoded = base64.b64encode(yaml.safe_dump(document).encode()).decode()
    return {"kubeconfigs": [{"name": user, "value": encoded}]}


@function("azure-native:containerservice:listManagedClusterUserCredentials")
def _user_credentials(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    return _kubeconfig(
        ctx, args, f"clusterUser_{args.get('resourceGroupName')}_{args.get('resourceName')}"
    )


@function("azure-native:containerservice:listManagedClusterAdminCredentials")
def _admin_credentials(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    return _kubeconfig(
        ctx, args, f"clusterAdmin_{args.get('resourceGroupName')}_{args.get('resourceName')}"
    )


# ------------------------------------------------------------------ Redis, Postgres


@resource("azure-native:redisenterprise:RedisEnterprise")
def _redis_enterprise(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    cluster = inputs.get("clusterName") or name
    return {
        "hostName": f"{cluster}.{_location(inputs)}.redis.azure.net",
        "redisVersion": "7.4",
        "resourceState": "Running",
        "kind": "v2",
    }


@resource("azure-native:redisenterprise:Database")
def _redis_database(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    return {"resourceState": "Running", "redisVersion": "7.4"}


@function("azure-native:redisenterprise:listDatabaseKeys")
def _redis_keys(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    cluster = str(args.get("clusterName"))
    # Real keys are 44-character base64 strings ('+', '/' and '=' included).
    key = base64.b64encode(bytes.fromhex(fake_hex("redis-key", cluster, length=64))).decode()
    second = base64.b64encode(bytes.fromhex(fake_hex("redis-key-2", cluster, length=64))).decode()
    return {"primaryKey": key, "secondaryKey": second}


@resource("azure-native:dbforpostgresql:Server")
def _postgres_server(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    server = inputs.get("serverName") or name
    return {
        "fullyQualifiedDomainName": f"{server}.postgres.database.azure.com",
        "state": "Ready",
        "minorVersion": "8",
    }


# ------------------------------------------------------------------- container registry


@resource("azure-native:containerregistry:Registry")
def _container_registry(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    """ACR's login server is ``<registry name>.azurecr.io``."""
    physical = str(inputs.get("registryName") or name)
    return {"loginServer": f"{physical}.azurecr.io", "creationDate": "2026-01-01T00:00:00Z"}


# ---------------------------------------------------------------------------
# Global layer (infra/global_lb/azure.py): Azure DNS, Traffic Manager, alerts.
# Kept as one block at the end of the file so it merges cleanly.
# ---------------------------------------------------------------------------


@resource("azure-native:dns:Zone")
def _dns_zone(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """A public zone on one of Azure DNS's name-server sets (ns1-01 ... ns4-99)."""
    shard = int(fake_hex("dns", ctx.stack, name, length=4), 16) % 99 + 1
    return {
        "name": inputs.get("zoneName") or name,
        "nameServers": [
            f"ns{i}-{shard:02d}.azure-dns.{tld}."
            for i, tld in enumerate(("com", "net", "org", "info"), start=1)
        ],
        "maxNumberOfRecordSets": 10000,
    }


@resource("azure-native:dns:DnssecConfig")
def _dnssec_config(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    """Signing on: a key-signing key (flags 257) with SHA-256 and SHA-384 DS records."""
    key_tag = int(fake_hex("ksk", ctx.stack, name, length=4), 16) % 65536
    sha256 = fake_hex("ksk-256", ctx.stack, name, length=64).upper()
    sha384 = fake_hex("ksk-384", ctx.stack, name, length=96).upper()
    return {
        "name": "default",
        "signingKeys": [
            {
                "flags": 257,
                "keyTag": key_tag,
                "protocol": 3,
                "securityAlgorithmType": 13,
                "delegationSignerInfo": [
                    {
                        "digestAlgorithmType": 4,
                        "digestValue": sha384,
                        "record": f"{key_tag} 13 4 {sha384}",
                    },
                    {
                        "digestAlgorithmType": 2,
                        "digestValue": sha256,
                        "record": f"{key_tag} 13 2 {sha256}",
                    },
                ],
            },
            {"flags": 256, "keyTag": key_tag + 1, "protocol": 3, "securityAlgorithmType": 13},
        ],
    }


@resource("azure-native:trafficmanager:Profile")
def _traffic_manager_profile(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    dns = dict(inputs.get("dnsConfig") or {})
    dns["fqdn"] = f"{dns.get('relativeName', name)}.trafficmanager.net"
    return {"name": inputs.get("profileName") or name, "dnsConfig": dns}


@resource("azure-native:trafficmanager:Endpoint")
def _traffic_manager_endpoint(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    group = inputs.get("resourceGroupName") or "rg"
    endpoint = inputs.get("endpointName") or name
    return {
        "id": (
            f"{_group_id(ctx, group)}/providers/Microsoft.Network/trafficManagerProfiles/"
            f"{inputs.get('profileName')}/{inputs.get('endpointType')}/{endpoint}"
        ),
        "name": endpoint,
        "endpointMonitorStatus": "Online",
    }
