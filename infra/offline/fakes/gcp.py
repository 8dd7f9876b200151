"""Fakes for pulumi-gcp: ids, self links and the computed outputs the program reads.

Shapes follow the provider: regional resources live under ``regions/<region>``,
GKE answers with an endpoint and a base64 cluster CA, Memorystore with a host
in the private service range, port 6378 under TLS, an AUTH string and its
server CA, Cloud SQL with a private IP, a connection name and its server CA. The certificates
are real self-signed PEMs (generated for these fakes), so code that parses them
works offline as it would against the cloud.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from infra.offline.fakes import FakeContext, fake_hex, function, generic, resource

GKE_CLUSTER_CA_PEM = """-----BEGIN CERTIFICATE-----
MIIBxjCCAWugAwIBAgIUfNvRg7NA2AksVlOOC1+nythgOQQwCgYIKoZIzj0EAwIw
ODEfMB0GA1UEAwwWb2ZmbGluZS1na2UtY2x1c3Rlci1jYTEVMBMGA1UECgwMT2Zm
bGluZSBGYWtlMB4XDTI2MTEyNzExMjYwOVoXDTM2MTEyNDExMjYwOVowODEfMB0G
A1UEAwwWb2ZmbGluZS1na2UtY2x1c3Rlci1jYTEVMBMGA1UECgwMT2ZmbGluZSBG
YWtlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKXHhL5dx0GMZYwJmO9cknDfm
+I3KlOYNS4HxePtiO1z8D+9szamUMNSFlew1nntZVO3YL6XHKA2jriD9Zs26dKNT
MFEwHQYDVR0OBBYEFJxRZpbswG2wN1NnV5h38ioS9uhqMB8GA1UdIwQYMBaAFJxR
ZpbswG2wN1NnV5h38ioS9uhqMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SQAwRgIhAM9y3PgKI0aP5LWW+X49E2IySGHLqBdcEI9pg+7DPYGSAiEAmeKRUDCB
MTap84HURAPuGrLbMj9kB3USIav1GpsKeEY=
-----END CERTIFICATE-----
"""
"""The fake GKE cluster CA (``masterAuth.clusterCaCertificate`` is its base64)."""

MEMORYSTORE_SERVER_CA_PEM = """-----BEGIN CERTIFICATE-----
MIIB1DCCAXmgAwIBAgIUOBA2WqARZ8R25YgkKCCQTSojTcAwCgYIKoZIzj0EAwIw
PzEmMCQGA1UEAwwdb2ZmbGluZS1tZW1vcnlzdG9yZS1zZXJ2ZXItY2ExFTATBgNV
BAoMDE9mZmxpbmUgRmFrZTAeFw0yNjExMjcxMTI2MDlaFw0zNjExMjQxMTI2MDla
MD8xJjAkBgNVBAMMHW9mZmxpbmUtbWVtb3J5c3RvcmUtc2VydmVyLWNhMRUwEwYD
VQQKDAxPZmZsaW5lIEZha2UwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQqsDOK
HetRMHtf6W7kZ9VB2xni3rk59vRsvG96zxCfnqjos7kCVMz2Rtz/iyuOjcd4mknP
8xGge0sGViNsQixso1MwUTAdBgNVHQ4EFgQUVCULzg1kwIpfTnRXRXEbBjzaVrIw
HwYDVR0jBBgwFoAUVCULzg1kwIpfTnRXRXEbBjzaVrIwDwYDVR0TAQH/BAUwAwEB
/zAKBggqhkjOPQQDAgNJADBGAiEAjyFWTxezxYep4xvcccm/WuqhL+uqNEAGKYA4
6TmqTToCIQC2p6Qe/BBPDl0ce/nx2tTHFgzngkz9TZT8ry1LBm3xKg==
-----END CERTIFICATE-----
"""
"""The fake Memorystore server CA (``serverCaCerts[0].cert``)."""

CLOUD_SQL_SERVER_CA_PEM = """-----BEGIN CERTIFICATE-----
MIIBzjCCAXOgAwIBAgIUC2LeVMl9aYrhMOyZWJQGQhRg7DcwCgYIKoZIzj0EAwIw
PDEjMCEGA1UEAwwaR29vZ2xlIENsb3VkIFNRTCBTZXJ2ZXIgQ0ExFTATBgNVBAoM
DE9mZmxpbmUgRmFrZTAeFw0yNjExMjcxMTM2MzFaFw0zNjExMjQxMTM2MzFaMDwx
IzAhBgNVBAMMGkdvb2dsZSBDbG91ZCBTUUwgU2VydmVyIENBMRUwEwYDVQQKDAxP
ZmZsaW5lIEZha2UwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASHlBESV7Q42Hyx
0YsaFuWqmBu+CM4EGfb4n+gcUXDbBKHr/Af41K+0tyzKNPE5JYt5lzVoAMjCzCwB
RNe1Ixalo1MwUTAdBgNVHQ4EFgQUMOlG5p/6tDegiFMGLehi0Xyv/+IwHwYDVR0j
BBgwFoAUMOlG5p/6tDegiFMGLehi0Xyv/+IwDwYDVR0TAQH/BAUwAwEB/zAKBggq
hkjOPQQDAgNJADBGAiEAibgXadoG4UtHKc04ENPBdZNUMPtjh9C6DQQ5CJ1x4PYC
IQDWRV+qOEW3Ve+vmf3Yu2hSIIS6aS248QcEEByaNartGw==
-----END CERTIFICATE-----
"""
"""The fake Cloud SQL server CA (``serverCaCerts[0].cert``)."""

_FAKE_PROJECT_NUMBER = "123456789012"


def _project(ctx: FakeContext, inputs: dict[str, Any]) -> str:
    return inputs.get("project") or ctx.gcp_project


def _region(ctx: FakeContext, inputs: dict[str, Any]) -> str:
    return inputs.get("region") or inputs.get("location") or ctx.gcp_region


def _physical(name: str, inputs: dict[str, Any]) -> str:
    return inputs.get("name") or f"{name}-{fake_hex(name, length=7)}"


def _ip(*parts: str, base: str = "10.40") -> str:
    digest = int(fake_hex(*parts, length=4), 16)
    return f"{base}.{digest % 250}.{2 + digest // 250 % 250}"


def _labels(inputs: dict[str, Any]) -> dict[str, Any]:
    labels = inputs.get("labels") or {}
    return {"effectiveLabels": labels, "terraformLabels": labels}


@generic("gcp")
def _gcp_generic(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    service, kind = token.split(":")[1].split("/")
    project = _project(ctx, inputs)
    physical = _physical(name, inputs)
    path = f"projects/{project}/{kind}s/{physical}"
    return {
        "id": path,
        "name": physical,
        "project": project,
        "selfLink": f"https://www.googleapis.com/{service}/v1/{path}",
        **_labels(inputs),
    }


# ------------------------------------------------------------------ project, IAM, KMS


@resource("gcp:projects/service:Service")
def _service(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{_project(ctx, inputs)}/{inputs['service']}"}


@resource("gcp:secretmanager/secret:Secret")
def _secret(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Secret Manager answers with the project number in ``name``, the id in ``id``."""
    project, secret_id = _project(ctx, inputs), inputs["secretId"]
    return {
        "id": f"projects/{project}/secrets/{secret_id}",
        "name": f"projects/{_FAKE_PROJECT_NUMBER}/secrets/{secret_id}",
        "project": project,
    }


@resource("gcp:secretmanager/secretVersion:SecretVersion")
def _secret_version(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    secret_id = str(inputs["secret"]).rsplit("/", 1)[-1]
    version = f"projects/{_FAKE_PROJECT_NUMBER}/secrets/{secret_id}/versions/1"
    return {"id": version, "name": version, "version": "1", "enabled": True}


_SERVICE_AGENT_DOMAINS = {
    "sqladmin.googleapis.com": "gcp-sa-cloud-sql",
    "redis.googleapis.com": "cloud-redis",
}


@resource("gcp:projects/serviceIdentity:ServiceIdentity")
def _service_identity(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    """A product's service agent, as ``gcloud beta services identity create`` names it."""
    number = str(int(fake_hex("project", _project(ctx, inputs), length=10), 16))[:12]
    service = inputs["service"]
    domain = _SERVICE_AGENT_DOMAINS.get(service, f"gcp-sa-{service.split('.')[0]}")
    email = f"service-{number}@{domain}.iam.gserviceaccount.com"
    return {
        "id": f"projects/{_project(ctx, inputs)}/services/{service}",
        "email": email,
        "member": f"serviceAccount:{email}",
    }


@resource("gcp:serviceaccount/account:Account")
def _service_account(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    project = _project(ctx, inputs)
    email = f"{inputs['accountId']}@{project}.iam.gserviceaccount.com"
    return {
        "id": f"projects/{project}/serviceAccounts/{email}",
        "name": f"projects/{project}/serviceAccounts/{email}",
        "email": email,
        "member": f"serviceAccount:{email}",
        "uniqueId": str(int(fake_hex("sa", email, length=15), 16)),
        "project": project,
    }


@resource(
    "gcp:projects/iAMMember:IAMMember",
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
)
def _iam_member(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    scope = inputs.get("project") or inputs.get("cryptoKeyId") or ctx.gcp_project
    return {
        "id": f"{scope}/{inputs['role']}/{inputs['member']}",
        "etag": f"BwY{fake_hex(name, length=9)}=",
    }


@resource("gcp:kms/keyRing:KeyRing")
def _key_ring(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    project = _project(ctx, inputs)
    physical = _physical(name, inputs)
    return {
        "id": f"projects/{project}/locations/{inputs['location']}/keyRings/{physical}",
        "name": physical,
        "project": project,
    }


@resource("gcp:kms/cryptoKey:CryptoKey")
def _crypto_key(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    physical = _physical(name, inputs)
    return {
        "id": f"{inputs['keyRing']}/cryptoKeys/{physical}",
        "name": physical,
        "primaries": [
            {
                "name": f"{inputs['keyRing']}/cryptoKeys/{physical}/cryptoKeyVersions/1",
                "state": "ENABLED",
            }
        ],
        **_labels(inputs),
    }


# ------------------------------------------------------------------------- network


@resource("gcp:compute/network:Network")
def _network(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    project = _project(ctx, inputs)
    physical = _physical(name, inputs)
    path = f"projects/{project}/global/networks/{physical}"
    return {
        "id": path,
        "name": physical,
        "project": project,
        "selfLink": f"https://www.googleapis.com/compute/v1/{path}",
        "gatewayIpv4": "",
        "networkId": str(int(fake_hex("net", physical, length=15), 16)),
        "numericId": str(int(fake_hex("net", physical, length=15), 16)),
    }


@resource("gcp:compute/subnetwork:Subnetwork")
def _subnetwork(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    import ipaddress

    project = _project(ctx, inputs)
    region = _region(ctx, inputs)
    physical = _physical(name, inputs)
    path = f"projects/{project}/regions/{region}/subnetworks/{physical}"
    gateway = str(next(ipaddress.ip_network(inputs["ipCidrRange"]).hosts()))
    return {
        "id": path,
        "name": physical,
        "project": project,
        "region": region,
        "selfLink": f"https://www.googleapis.com/compute/v1/{path}",
        "gatewayAddress": gateway,
        "subnetworkId": int(fake_hex("subnet", physical, length=12), 16),
        "fingerprint": fake_hex("fp", physical, length=12),
    }


@resource("gcp:compute/router:Router")
def _router(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    project = _project(ctx, inputs)
    region = _region(ctx, inputs)
    physical = _physical(name, inputs)
    path = f"projects/{project}/regions/{region}/routers/{physical}"
    return {
        "id": path,
        "name": physical,
        "region": region,
        "selfLink": f"https://www.googleapis.com/compute/v1/{path}",
    }


@resource("gcp:compute/routerNat:RouterNat")
def _router_nat(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    project = _project(ctx, inputs)
    region = _region(ctx, inputs)
    physical = _physical(name, inputs)
    return {"id": f"{project}/{region}/{inputs['router']}/{physical}", "name": physical}


@resource("gcp:compute/firewall:Firewall")
def _firewall(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    project = _project(ctx, inputs)
    physical = _physical(name, inputs)
    path = f"projects/{project}/global/firewalls/{physical}"
    return {
        "id": path,
        "name": physical,
        "selfLink": f"https://www.googleapis.com/compute/v1/{path}",
        "creationTimestamp": "2026-01-01T00:00:00.000-08:00",
    }


@resource("gcp:compute/globalAddress:GlobalAddress")
def _global_address(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    project = _project(ctx, inputs)
    physical = _physical(name, inputs)
    path = f"projects/{project}/global/addresses/{physical}"
    return {
        "id": path,
        "name": physical,
        "address": inputs.get("address") or "10.40.0.0",
        "selfLink": f"https://www.googleapis.com/compute/v1/{path}",
        **_labels(inputs),
    }


@resource("gcp:compute/address:Address")
def _address(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    project = _project(ctx, inputs)
    region = _region(ctx, inputs)
    physical = _physical(name, inputs)
    path = f"projects/{project}/regions/{region}/addresses/{physical}"
    # 34.0.0.0/8 is one of Google Cloud's external ranges.
    external = _ip("address", project, physical, base="34.90")
    return {
        "id": path,
        "name": physical,
        "address": inputs.get("address") or external,
        "selfLink": f"https://www.googleapis.com/compute/v1/{path}",
        **_labels(inputs),
    }


@resource("gcp:servicenetworking/connection:Connection")
def _service_connection(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    network = inputs["network"]
    return {
        "id": f"{network}:{inputs['service']}",
        "peering": "servicenetworking-googleapis-com",
    }


# ------------------------------------------------------------------------------ GKE


@resource("gcp:container/cluster:Cluster")
def _cluster(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    project = _project(ctx, inputs)
    location = inputs.get("location") or ctx.gcp_region
    physical = _physical(name, inputs)
    private = inputs.get("privateClusterConfig") or {}
    master = private.get("masterIpv4CidrBlock") or "172.16.0.0/28"
    private_endpoint = (
        master.rsplit(".", 1)[0] + "." + str(int(master.split(".")[3].split("/")[0]) + 2)
    )
    public_endpoint = _ip("gke", project, physical, base="34.118")
    endpoint = private_endpoint if private.get("enablePrivateEndpoint") else public_endpoint
    path = f"projects/{project}/locations/{location}/clusters/{physical}"
    return {
        "id": path,
        "name": physical,
        "project": project,
        "location": location,
        "selfLink": f"https://container.googleapis.com/v1/{path}",
        "endpoint": endpoint,
        "masterVersion": f"{inputs.get('minMasterVersion') or '1.33'}.5-gke.1162000",
        "masterAuth": {
            "clusterCaCertificate": base64.b64encode(GKE_CLUSTER_CA_PEM.encode()).decode(),
            "clientCertificateConfig": (inputs.get("masterAuth") or {}).get(
                "clientCertificateConfig", {"issueClientCertificate": False}
            ),
            "clientCertificate": "",
            "clientKey": "",
        },
        "privateClusterConfig": {
            **private,
            "privateEndpoint": private_endpoint,
            "publicEndpoint": public_endpoint,
            "peeringName": f"gke-n{fake_hex('peer', physical, length=16)}-peer",
        },
        "labelFingerprint": fake_hex("labels", physical, length=8),
        "servicesIpv4Cidr": (inputs.get("ipAllocationPolicy") or {}).get(
            "servicesIpv4CidrBlock", ""
        ),
        "operation": None,
        "effectiveLabels": inputs.get("resourceLabels") or {},
        "terraformLabels": inputs.get("resourceLabels") or {},
    }


@resource("gcp:container/nodePool:NodePool")
def _node_pool(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    project = _project(ctx, inputs)
    location = inputs.get("location") or ctx.gcp_region
    physical = _physical(name, inputs)
    cluster = str(inputs.get("cluster", "cluster")).rsplit("/", 1)[-1]
    groups = [
        f"https://www.googleapis.com/compute/v1/projects/{project}/zones/{location}-{zone}/"
        f"instanceGroupManagers/gke-{cluster[:14]}-{physical[:14]}-{fake_hex(physical, zone, length=8)}-grp"
        for zone in "abc"
    ]
    return {
        "id": f"projects/{project}/locations/{location}/clusters/{cluster}/nodePools/{physical}",
        "name": physical,
        "instanceGroupUrls": groups,
        "managedInstanceGroupUrls": groups,
        "version": "1.33.5-gke.1162000",
        "operation": None,
    }


# --------------------------------------------------------------- Memorystore, Cloud SQL


@resource("gcp:redis/instance:Instance")
def _redis(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    project = _project(ctx, inputs)
    region = _region(ctx, inputs)
    physical = _physical(name, inputs)
    tls = inputs.get("transitEncryptionMode") == "SERVER_AUTHENTICATION"
    outputs: dict[str, Any] = {
        "id": f"projects/{project}/locations/{region}/instances/{physical}",
        "name": physical,
        "region": region,
        "host": _ip("redis", project, physical),
        "port": 6378 if tls else 6379,
        "currentLocationId": f"{region}-a",
        "persistenceIamIdentity": f"serviceAccount:service-{_FAKE_PROJECT_NUMBER}@cloud-redis.iam.gserviceaccount.com",
        "nodes": [{"id": "node-0", "zone": f"{region}-a"}],
        "createTime": "2026-01-01T00:00:00Z",
        **_labels(inputs),
    }
    if inputs.get("tier") == "STANDARD_HA":
        outputs["readEndpoint"] = _ip("redis-read", project, physical)
        outputs["readEndpointPort"] = outputs["port"]
        outputs["nodes"].append({"id": "node-1", "zone": f"{region}-b"})
    if inputs.get("authEnabled"):
        outputs["authString"] = str(uuid.UUID(fake_hex("auth", project, physical, length=32)))
    if tls:
        outputs["serverCaCerts"] = [
            {
                "serialNumber": "0",
                "cert": MEMORYSTORE_SERVER_CA_PEM,
                "createTime": "2026-01-01T00:00:00Z",
                "expireTime": "2036-01-01T00:00:00Z",
                "sha1Fingerprint": fake_hex("ca", physical, length=40),
            }
        ]
    return outputs


@resource("gcp:sql/databaseInstance:DatabaseInstance")
def _sql_instance(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    project = _project(ctx, inputs)
    region = _region(ctx, inputs)
    physical = _physical(name, inputs)
    settings = inputs.get("settings") or {}
    ip_config = settings.get("ipConfiguration") or {}
    private_ip = _ip("sql", project, physical)
    addresses = [{"ipAddress": private_ip, "type": "PRIVATE", "timeToRetire": ""}]
    public_ip = ""
    if ip_config.get("ipv4Enabled", True):
        public_ip = _ip("sql-public", project, physical, base="35.202")
        addresses.append({"ipAddress": public_ip, "type": "PRIMARY", "timeToRetire": ""})
    return {
        "id": physical,
        "name": physical,
        "project": project,
        "region": region,
        "connectionName": f"{project}:{region}:{physical}",
        "privateIpAddress": private_ip,
        "publicIpAddress": public_ip,
        "firstIpAddress": addresses[0]["ipAddress"],
        "ipAddresses": addresses,
        "dnsName": f"{fake_hex('dns', physical, length=12)}.{region}.sql.goog.",
        "selfLink": f"https://sqladmin.googleapis.com/sql/v1beta4/projects/{project}/instances/{physical}",
        "serviceAccountEmailAddress": f"p{_FAKE_PROJECT_NUMBER}-{fake_hex('sqlsa', physical, length=6)}@gcp-sa-cloud-sql.iam.gserviceaccount.com",
        "serverCaCerts": [
            {
                "cert": CLOUD_SQL_SERVER_CA_PEM,
                "commonName": f"C=US,O=Google\\, Inc,CN=Google Cloud SQL Server CA,dnQualifier={fake_hex('q', physical, length=8)}",
                "createTime": "2026-01-01T00:00:00Z",
                "expirationTime": "2036-01-01T00:00:00Z",
                "sha1Fingerprint": fake_hex("sqlca", physical, length=40),
            }
        ],
        "settings": {**settings, "version": 1},
    }


@resource("gcp:sql/database:Database")
def _sql_database(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    project = _project(ctx, inputs)
    physical = _physical(name, inputs)
    path = f"projects/{project}/instances/{inputs['instance']}/databases/{physical}"
    return {
        "id": path,
        "name": physical,
        "selfLink": f"https://sqladmin.googleapis.com/sql/v1beta4/{path}",
    }


@resource("gcp:sql/user:User")
def _sql_user(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    physical = _physical(name, inputs)
    return {"id": f"{physical}//{inputs['instance']}", "name": physical, "sqlServerUserDetails": []}


# ----------------------------------------------------------------------- data sources


@function("gcp:organizations/getClientConfig:getClientConfig")
def _client_config(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "offline",
        "accessToken": "offline-access-token",
        "project": ctx.gcp_project,
        "region": ctx.gcp_region,
        "zone": f"{ctx.gcp_region}-a",
    }


@function("gcp:organizations/getProject:getProject")
def _project_data(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    project = args.get("projectId") or ctx.gcp_project
    return {
        "id": f"projects/{project}",
        "projectId": project,
        "number": _FAKE_PROJECT_NUMBER,
        "name": project,
    }


# ------------------------------------------------------------------- artifact registry


@resource("gcp:artifactregistry/repository:Repository")
def _artifact_repository(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    project = _project(ctx, inputs)
    location = inputs.get("location") or ctx.gcp_region
    path = f"projects/{project}/locations/{location}/repositories/{inputs['repositoryId']}"
    return {
        "id": path,
        "name": inputs["repositoryId"],
        "project": project,
        "registryUri": f"{location}-docker.pkg.dev/{project}/{inputs['repositoryId']}",
        "createTime": "2026-01-01T00:00:00Z",
        **_labels(inputs),
    }


# ---------------------------------------------------------------------------
# Global layer (infra/global_lb/gcp.py): Cloud DNS, health checks, monitoring.
# Kept as one block at the end of the file so it merges cleanly.
# ---------------------------------------------------------------------------


@resource("gcp:dns/managedZone:ManagedZone")
def _managed_zone(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    """A public zone on one of Cloud DNS's name-server sets (ns-cloud-a1 ... e4)."""
    project = _project(ctx, inputs)
    zone = inputs.get("name") or name
    digits = int(fake_hex("zone", project, zone, length=4), 16)
    shard = f"{'abcde'[digits % 5]}"
    return {
        "id": f"projects/{project}/managedZones/{zone}",
        "managedZoneId": int(fake_hex("zone-id", project, zone, length=12), 16),
        "nameServers": [f"ns-cloud-{shard}{i}.googledomains.com." for i in range(1, 5)],
        "creationTime": "2026-01-01T00:00:00.000Z",
    }


@function("gcp:dns/getKeys:getKeys")
def _dns_keys(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    """The signed zone's keys: one ECDSA P-256 key-signing key (algorithm 13) with its DS record."""
    zone = str(args.get("managedZone", ""))
    key_tag = int(fake_hex("ksk", zone, length=4), 16) % 65536
    digest = fake_hex("ksk-digest", zone, length=64).upper()
    return {
        "id": zone,
        "managedZone": zone,
        "project": args.get("project") or ctx.gcp_project,
        "keySigningKeys": [
            {
                "algorithm": "ecdsap256sha256",
                "keyLength": 256,
                "keyTag": key_tag,
                "isActive": True,
                "dsRecord": f"{key_tag} 13 2 {digest}",
                "digests": [{"type": "sha256", "digest": digest}],
            }
        ],
        "zoneSigningKeys": [],
    }


@resource("gcp:compute/healthCheck:HealthCheck")
def _health_check(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    project = _project(ctx, inputs)
    check = inputs.get("name") or name
    path = f"projects/{project}/global/healthChecks/{check}"
    return {
        "id": path,
        "selfLink": f"https://www.googleapis.com/compute/v1/{path}",
        "type": "HTTPS",
    }


@resource("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig")
def _uptime_check(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    project = _project(ctx, inputs)
    check_id = f"{name}-{fake_hex('uptime', name, length=10)}"
    return {
        "id": f"projects/{project}/uptimeCheckConfigs/{check_id}",
        "name": f"projects/{project}/uptimeCheckConfigs/{check_id}",
        "uptimeCheckId": check_id,
    }


@resource("gcp:monitoring/notificationChannel:NotificationChannel")
def _notification_channel(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    project = _project(ctx, inputs)
    channel = (
        f"projects/{project}/notificationChannels/{int(fake_hex('channel', name, length=15), 16)}"
    )
    return {"id": channel, "name": channel, "verificationStatus": "VERIFIED"}


@resource("gcp:monitoring/alertPolicy:AlertPolicy")
def _alert_policy(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    project = _project(ctx, inputs)
    policy = f"projects/{project}/alertPolicies/{int(fake_hex('policy', name, length=15), 16)}"
    return {"id": policy, "name": policy}
