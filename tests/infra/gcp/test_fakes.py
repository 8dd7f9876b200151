"""The GCP fakes answer like the provider: shapes the program and the gateway rely on."""

from __future__ import annotations

import base64

from infra.offline import fakes
from infra.offline.fakes import FakeContext

CTX = FakeContext(
    project="ai-gateway", stack="dev", gcp_project="acme-p", gcp_region="europe-west4"
)


def fake(token: str, name: str, inputs: dict) -> dict:
    fakes.load_all()
    return {
        **fakes.GENERIC["gcp"](CTX, token, name, inputs),
        **fakes.RESOURCES[token](CTX, token, name, inputs),
    }


def test_memorystore_port_auth_and_ca_follow_the_inputs() -> None:
    tls = fake(
        "gcp:redis/instance:Instance",
        "redis",
        {
            "name": "r",
            "tier": "STANDARD_HA",
            "authEnabled": True,
            "transitEncryptionMode": "SERVER_AUTHENTICATION",
        },
    )
    assert tls["port"] == 6378
    assert tls["host"].startswith("10.")
    assert len(tls["authString"]) == 36
    assert tls["serverCaCerts"][0]["cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert tls["readEndpoint"]
    plain = fake("gcp:redis/instance:Instance", "redis", {"name": "r", "tier": "BASIC"})
    assert plain["port"] == 6379
    assert "authString" not in plain and "serverCaCerts" not in plain


def test_cloud_sql_has_a_public_ip_only_when_asked() -> None:
    private = fake(
        "gcp:sql/databaseInstance:DatabaseInstance",
        "pg",
        {"name": "pg-1", "settings": {"ipConfiguration": {"ipv4Enabled": False}}},
    )
    assert private["publicIpAddress"] == ""
    assert [a["type"] for a in private["ipAddresses"]] == ["PRIVATE"]
    assert private["connectionName"] == "acme-p:europe-west4:pg-1"
    public = fake(
        "gcp:sql/databaseInstance:DatabaseInstance", "pg", {"name": "pg-1", "settings": {}}
    )
    assert public["publicIpAddress"]


def test_gke_cluster_endpoint_and_ca() -> None:
    inputs = {
        "name": "c",
        "location": "europe-west4",
        "privateClusterConfig": {
            "masterIpv4CidrBlock": "172.16.2.0/28",
            "enablePrivateEndpoint": True,
        },
    }
    cluster = fake("gcp:container/cluster:Cluster", "gke", inputs)
    assert cluster["endpoint"] == "172.16.2.2"
    ca = base64.b64decode(cluster["masterAuth"]["clusterCaCertificate"])
    assert ca.startswith(b"-----BEGIN CERTIFICATE-----")
    inputs["privateClusterConfig"]["enablePrivateEndpoint"] = False
    assert fake("gcp:container/cluster:Cluster", "gke", inputs)["endpoint"].startswith("34.")


def test_service_account_email_and_regional_ids() -> None:
    account = fake("gcp:serviceaccount/account:Account", "sa", {"accountId": "gw-nodes"})
    assert account["email"] == "gw-nodes@acme-p.iam.gserviceaccount.com"
    assert account["member"] == f"serviceAccount:{account['email']}"
    subnet = fake(
        "gcp:compute/subnetwork:Subnetwork", "s", {"name": "s", "ipCidrRange": "10.30.0.0/20"}
    )
    assert subnet["id"] == "projects/acme-p/regions/europe-west4/subnetworks/s"
    assert subnet["gatewayAddress"] == "10.30.0.1"
    key = fake(
        "gcp:kms/cryptoKey:CryptoKey",
        "k",
        {"name": "k", "keyRing": "projects/p/locations/l/keyRings/r"},
    )
    assert key["id"] == "projects/p/locations/l/keyRings/r/cryptoKeys/k"
