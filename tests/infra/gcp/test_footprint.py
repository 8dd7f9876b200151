"""The GCP footprint on the recorded plan of every stack file: defaults, property by property."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from infra import tags
from infra.decisions.gcp import LIMITS
from infra.gcp.cluster import NODE_ROLES
from infra.gcp.footprint import REQUIRED_APIS
from infra.gcp.redis import ca_bundle
from infra.offline import Plan, RecordedResource, Secret
from infra.offline.engine import reveal
from infra.offline.stackfile import read_stack_file
from tests.infra.conftest import ROOT, STACKS

FOOTPRINT = "ai-gateway:gcp:Footprint"
CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
REDIS = "gcp:redis/instance:Instance"
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
CONNECTION = "gcp:servicenetworking/connection:Connection"

# What each environment must get by default (from GcpConfig's per-environment table).
EXPECTED = {
    "dev": {
        "redis_tier": "BASIC",
        "redis_persistence": "DISABLED",
        "redis_memory": 1,
        "sql_availability": "ZONAL",
        "deletion_protection": False,
        "retained_backups": 7,
        "sql_tier": "db-custom-1-3840",
        "sql_disk": 20,
        "machine_type": "e2-standard-4",
        "autoscaling": (1, 3),
    },
    "staging": {
        "redis_tier": "STANDARD_HA",
        "redis_persistence": "DISABLED",
        "redis_memory": 5,
        "sql_availability": "REGIONAL",
        "deletion_protection": False,
        "retained_backups": 7,
        "sql_tier": "db-custom-2-7680",
        "sql_disk": 50,
        "machine_type": "n2-standard-4",
        "autoscaling": (1, 3),
    },
    "prod": {
        "redis_tier": "STANDARD_HA",
        "redis_persistence": "RDB",
        "redis_memory": 5,
        "sql_availability": "REGIONAL",
        "deletion_protection": True,
        "retained_backups": 30,
        "sql_tier": "db-custom-4-15360",
        "sql_disk": 100,
        "machine_type": "n2-standard-8",
        "autoscaling": (1, 4),
    },
}


def stack_gcp(stack: str) -> dict:
    """The ``ai-gateway:gcp`` section of a stack file, decoded."""
    raw = read_stack_file(ROOT / f"Pulumi.{stack}.yaml", stack).values["ai-gateway:gcp"]
    return json.loads(raw) if isinstance(raw, str) else raw


def gcp_resources(plan: Plan) -> list[RecordedResource]:
    return [r for r in plan.resources if r.package == "gcp"]


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def plan(plans: dict[str, Plan], stack: str) -> Plan:
    return plans[stack]


# ------------------------------------------------------------------ ownership


def test_every_gcp_resource_is_owned_by_the_footprint_and_uses_its_provider(plan: Plan) -> None:
    footprint = plan.one(FOOTPRINT)
    provider = plan.one("pulumi:providers:gcp")
    assert provider.parent == footprint.urn
    resources = gcp_resources(plan)
    assert len(resources) >= 30
    for resource in resources:
        assert footprint in plan.ancestors(resource), resource.urn
        assert resource.provider is not None, resource.urn
        assert resource.provider.rsplit("::", 1)[0] == provider.urn, resource.urn


def test_components_have_the_documented_types(plan: Plan) -> None:
    footprint = plan.one(FOOTPRINT)
    children = {r.type for r in plan.children(footprint) if not r.custom}
    assert children == {
        "ai-gateway:gcp:Network",
        "ai-gateway:gcp:Cluster",
        "ai-gateway:gcp:Redis",
        "ai-gateway:gcp:Postgres",
        # Added by the program beside the four: the gateway's identity and workload.
        "ai-gateway:gcp:GatewayIdentity",
        "ai-gateway:gcp:MigrationIdentity",
        "ai-gateway:k8s:GatewayDeployment",
    }
    owners = {
        "ai-gateway:gcp:Network": {"gcp:compute/network:Network", CONNECTION},
        "ai-gateway:gcp:Cluster": {CLUSTER, NODE_POOL, "pulumi:providers:kubernetes"},
        "ai-gateway:gcp:Redis": {REDIS},
        "ai-gateway:gcp:Postgres": {SQL, "gcp:sql/user:User", "gcp:sql/database:Database"},
    }
    for component_type, types in owners.items():
        component = plan.one(component_type)
        assert types <= {r.type for r in plan.children(component)}, component_type


def test_provider_takes_project_region_and_the_required_labels(plan: Plan, stack: str) -> None:
    provider = plan.one("pulumi:providers:gcp")
    section = stack_gcp(stack)
    assert provider.inputs["project"] == section["project"]
    assert provider.inputs["region"] == section["region"]
    labels = provider.inputs["defaultLabels"]
    labels = json.loads(labels) if isinstance(labels, str) else labels
    assert labels["environment"] == stack
    assert set(tags.REQUIRED_KEYS) <= set(labels)
    assert labels == tags.gcp_labels(labels)  # already valid GCP labels


def test_every_labelable_resource_carries_the_required_labels(plan: Plan, stack: str) -> None:
    labelled = 0
    for resource in gcp_resources(plan):
        if tags.tag_path(resource.type) is None:
            continue
        carried = reveal(tags.carried_tags(resource.type, resource.inputs))
        assert carried is not None, resource.urn
        assert set(tags.REQUIRED_KEYS) <= set(carried), resource.urn
        assert carried["environment"] == stack
        assert all(k == k.lower() and len(v) <= 63 for k, v in carried.items())
        labelled += 1
    # The cluster's resourceLabels, the pool's nodeConfig.resourceLabels and
    # Cloud SQL's settings.userLabels are the easy ones to miss.
    for token in (CLUSTER, NODE_POOL, SQL, REDIS, "gcp:kms/cryptoKey:CryptoKey"):
        for resource in plan.of_type(token):
            assert tags.carried_tags(token, resource.inputs), token
    assert labelled >= 5


def test_names_fit_gcp_limits(plan: Plan) -> None:
    kinds = {
        "gcp:compute/network:Network": "network",
        "gcp:compute/subnetwork:Subnetwork": "subnetwork",
        "gcp:compute/router:Router": "router",
        "gcp:compute/routerNat:RouterNat": "router_nat",
        "gcp:compute/firewall:Firewall": "firewall",
        "gcp:compute/globalAddress:GlobalAddress": "global_address",
        CLUSTER: "cluster",
        NODE_POOL: "node_pool",
        REDIS: "redis_instance",
        SQL: "sql_instance",
        "gcp:kms/keyRing:KeyRing": "key_ring",
        "gcp:kms/cryptoKey:CryptoKey": "crypto_key",
    }
    for token, kind in kinds.items():
        for resource in plan.of_type(token):
            name = resource.get("name")
            low, high = LIMITS[kind]
            assert low <= len(name) <= high, (token, name)
            assert name[0].isalpha() and name == name.lower(), name
    accounts = [a.get("accountId") for a in plan.of_type("gcp:serviceaccount/account:Account")]
    assert len(accounts) == 3  # the nodes', the gateway's and the migration Job's
    for account in accounts:
        assert 6 <= len(account) <= 30, account


def test_service_apis_are_enabled_and_never_disabled_on_destroy(plan: Plan) -> None:
    services = plan.of_type("gcp:projects/service:Service")
    assert {s.get("service") for s in services} == set(REQUIRED_APIS)
    assert {"servicenetworking.googleapis.com", "sqladmin.googleapis.com"} <= set(REQUIRED_APIS)
    assert all(s.get("disableOnDestroy") is False for s in services)
    # Resources calling an API wait for it.
    service_urns = {s.urn for s in services}
    for token in ("gcp:compute/network:Network", CLUSTER, REDIS, SQL):
        assert service_urns <= set(plan.one(token).dependencies), token


# -------------------------------------------------------------------- network


def test_vpc_is_custom_mode_with_a_flow_logged_vpc_native_subnet(plan: Plan, stack: str) -> None:
    section = stack_gcp(stack)
    vpc = plan.one("gcp:compute/network:Network")
    assert vpc.get("autoCreateSubnetworks") is False
    subnet = plan.one("gcp:compute/subnetwork:Subnetwork")
    assert subnet.get("network") == vpc.id
    assert subnet.get("ipCidrRange") == section.get("subnetCidr", "10.30.0.0/20")
    ranges = {r["rangeName"]: r["ipCidrRange"] for r in subnet.get("secondaryIpRanges")}
    assert ranges == {
        "pods": section.get("podsCidr", "10.32.0.0/14"),
        "services": section.get("servicesCidr", "10.36.0.0/20"),
    }
    assert subnet.get("privateIpGoogleAccess") is True
    assert subnet.get("logConfig.metadata") == "INCLUDE_ALL_METADATA"
    assert 0 < subnet.get("logConfig.flowSampling") <= 1


def test_cloud_nat_serves_only_the_node_subnet(plan: Plan) -> None:
    router = plan.one("gcp:compute/router:Router")
    nat = plan.one("gcp:compute/routerNat:RouterNat")
    subnet = plan.one("gcp:compute/subnetwork:Subnetwork")
    assert router.get("network") == plan.one("gcp:compute/network:Network").id
    assert nat.get("router") == router.outputs["name"]
    assert nat.get("sourceSubnetworkIpRangesToNat") == "LIST_OF_SUBNETWORKS"
    assert [s["name"] for s in nat.get("subnetworks")] == [subnet.id]
    assert nat.get("logConfig.enable") is True


def test_firewall_opens_nothing_wider_than_health_checks(plan: Plan, stack: str) -> None:
    rules = {r.name: r for r in plan.of_type("gcp:compute/firewall:Firewall")}
    assert set(rules) == {
        "deny-all-ingress",
        "allow-health-checks",
        "allow-control-plane-webhooks",
    }
    deny = rules["deny-all-ingress"]
    assert deny.get("denies") == [{"protocol": "all"}]
    assert deny.get("direction") == "INGRESS"
    allow = rules["allow-health-checks"]
    assert set(allow.get("sourceRanges")) == {"35.191.0.0/16", "130.211.0.0/22"}
    # The ingress Service's health check node port (NodePort range) and kube-proxy's.
    assert allow.get("allows") == [{"protocol": "tcp", "ports": ["10256", "30000-32767"]}]
    node_tags = plan.one(NODE_POOL).get("nodeConfig.tags")
    assert allow.get("targetTags") == node_tags
    assert allow.get("priority") < deny.get("priority")
    # The private control plane reaches Envoy Gateway's topology injector webhook
    # (9443); GKE's own rule covers only 443 and 10250 (cert-manager's webhook port).
    webhooks = rules["allow-control-plane-webhooks"]
    assert webhooks.get("sourceRanges") == [stack_gcp(stack).get("masterCidr", "172.16.0.0/28")]
    assert webhooks.get("allows") == [{"protocol": "tcp", "ports": ["9443"]}]
    assert webhooks.get("targetTags") == node_tags
    for rule in rules.values():
        assert rule.get("logConfig.metadata") == "INCLUDE_ALL_METADATA"
        if rule.get("allows"):
            assert "0.0.0.0/0" not in rule.get("sourceRanges")


def test_private_service_access(plan: Plan, stack: str) -> None:
    section = stack_gcp(stack)
    address = plan.one("gcp:compute/globalAddress:GlobalAddress")
    assert address.get("purpose") == "VPC_PEERING"
    assert address.get("addressType") == "INTERNAL"
    cidr = section.get("privateServiceCidr", "10.40.0.0/16")
    assert f"{address.get('address')}/{int(address.get('prefixLength'))}" == cidr
    assert address.get("network") == plan.one("gcp:compute/network:Network").id
    connection = plan.one(CONNECTION)
    assert connection.get("service") == "servicenetworking.googleapis.com"
    assert connection.get("reservedPeeringRanges") == [address.outputs["name"]]
    assert address.urn in connection.dependencies


@pytest.mark.parametrize("token", [REDIS, SQL])
def test_data_stores_wait_for_the_service_networking_connection(plan: Plan, token: str) -> None:
    connection = plan.one(CONNECTION)
    assert connection.urn in plan.one(token).dependencies


# -------------------------------------------------------------------- GKE


def test_cluster_is_private_and_vpc_native(plan: Plan, stack: str) -> None:
    section = stack_gcp(stack)
    cluster = plan.one(CLUSTER)
    assert cluster.get("networkingMode") == "VPC_NATIVE"
    assert cluster.get("ipAllocationPolicy") == {
        "clusterSecondaryRangeName": "pods",
        "servicesSecondaryRangeName": "services",
    }
    assert cluster.get("network") == plan.one("gcp:compute/network:Network").id
    assert cluster.get("subnetwork") == plan.one("gcp:compute/subnetwork:Subnetwork").id
    assert cluster.get("location") == section["region"]  # regional control plane
    assert cluster.get("privateClusterConfig.enablePrivateNodes") is True
    assert cluster.get("privateClusterConfig.enablePrivateEndpoint") is bool(
        section.get("privateEndpointOnly", False)
    )
    assert cluster.get("privateClusterConfig.masterIpv4CidrBlock") == section.get(
        "masterCidr", "172.16.0.0/28"
    )


def test_control_plane_is_limited_to_the_deployer_cidrs(plan: Plan, stack: str) -> None:
    section = stack_gcp(stack)
    config = plan.one(CLUSTER).get("masterAuthorizedNetworksConfig")
    cidrs = [block["cidrBlock"] for block in config["cidrBlocks"]]
    assert cidrs == section["deployerCidrs"]
    assert "0.0.0.0/0" not in cidrs
    assert config["gcpPublicCidrsAccessEnabled"] is False
    assert (
        plan.one(CLUSTER).get("masterAuth.clientCertificateConfig.issueClientCertificate") is False
    )


def test_cluster_security_features(plan: Plan, stack: str) -> None:
    cluster = plan.one(CLUSTER)
    project = stack_gcp(stack)["project"]
    assert cluster.get("workloadIdentityConfig.workloadPool") == f"{project}.svc.id.goog"
    assert cluster.get("datapathProvider") == "ADVANCED_DATAPATH"
    assert cluster.get("addonsConfig.networkPolicyConfig.disabled") is True  # DPv2 enforces
    assert cluster.get("enableShieldedNodes") is True
    assert cluster.get("enableLegacyAbac") is False
    assert cluster.get("releaseChannel.channel") == "REGULAR"
    assert cluster.get("minMasterVersion") == "1.33"
    assert cluster.get("removeDefaultNodePool") is True
    assert cluster.get("deletionProtection") is EXPECTED[stack]["deletion_protection"]
    key = plan.one("gcp:kms/cryptoKey:CryptoKey", "secrets")
    assert cluster.get("databaseEncryption") == {"state": "ENCRYPTED", "keyName": key.id}
    assert key.get("rotationPeriod") == "7776000s"
    assert key.get("purpose") == "ENCRYPT_DECRYPT"
    assert key.protect is EXPECTED[stack]["deletion_protection"]


def test_gke_service_agent_may_use_the_secrets_key_before_the_cluster_exists(plan: Plan) -> None:
    grant = plan.one("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "secrets-gke-agent")
    key = plan.one("gcp:kms/cryptoKey:CryptoKey", "secrets")
    assert grant.get("cryptoKeyId") == key.id
    assert grant.get("role") == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert grant.get("member") == (
        "serviceAccount:service-123456789012@container-engine-robot.iam.gserviceaccount.com"
    )
    assert grant.urn in plan.one(CLUSTER).dependencies


def test_nodes_run_as_a_dedicated_least_privilege_account(plan: Plan) -> None:
    account = plan.one("gcp:serviceaccount/account:Account", "nodes")
    email = account.outputs["email"]
    assert "-compute@developer.gserviceaccount.com" not in email
    cluster_component = plan.one("ai-gateway:gcp:Cluster")
    members = [
        m
        for m in plan.of_type("gcp:projects/iAMMember:IAMMember")
        if m.parent == cluster_component.urn
    ]
    assert sorted(m.get("role") for m in members) == sorted(NODE_ROLES)
    assert all(m.get("member") == f"serviceAccount:{email}" for m in members)
    assert not any(m.get("role") in {"roles/editor", "roles/owner"} for m in members)
    for resource in (plan.one(CLUSTER), plan.one(NODE_POOL)):
        node_config = resource.get("nodeConfig")
        assert node_config["serviceAccount"] == email
        scopes = node_config["oauthScopes"]
        assert "https://www.googleapis.com/auth/cloud-platform" not in scopes
        assert all(s.startswith("https://www.googleapis.com/auth/") for s in scopes)
        assert node_config["shieldedInstanceConfig"]["enableSecureBoot"] is True
        assert node_config["workloadMetadataConfig"]["mode"] == "GKE_METADATA"


def test_node_pool_autoscales_per_environment(plan: Plan, stack: str) -> None:
    pool = plan.one(NODE_POOL)
    cluster = plan.one(CLUSTER)
    assert pool.get("cluster") == cluster.id
    low, high = EXPECTED[stack]["autoscaling"]
    assert pool.get("autoscaling.minNodeCount") == low
    assert pool.get("autoscaling.maxNodeCount") == high
    assert pool.get("management") == {"autoRepair": True, "autoUpgrade": True}
    assert pool.get("nodeConfig.machineType") == EXPECTED[stack]["machine_type"]
    assert pool.get("nodeConfig.shieldedInstanceConfig.enableIntegrityMonitoring") is True
    assert pool.get("nodeConfig.metadata") == {"disable-legacy-endpoints": "true"}
    assert pool.get("upgradeSettings.maxUnavailable") == 0


def test_kube_provider_uses_the_plugin_kubeconfig(plan: Plan) -> None:
    provider = plan.one("pulumi:providers:kubernetes", "gke")
    assert isinstance(provider.inputs["kubeconfig"], Secret)
    config = yaml.safe_load(reveal(provider.inputs["kubeconfig"]))
    cluster = plan.one(CLUSTER)
    assert config["clusters"][0]["cluster"]["server"] == f"https://{cluster.outputs['endpoint']}"
    ca = config["clusters"][0]["cluster"]["certificate-authority-data"]
    assert ca == cluster.outputs["masterAuth"]["clusterCaCertificate"]
    assert base64.b64decode(ca).startswith(b"-----BEGIN CERTIFICATE-----")
    assert config["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert plan.one(NODE_POOL).urn in provider.dependencies


# ------------------------------------------------------------------ Memorystore


def test_memorystore_is_private_tls_and_authenticated(plan: Plan, stack: str) -> None:
    redis = plan.one(REDIS)
    expected = EXPECTED[stack]
    assert redis.get("connectMode") == "PRIVATE_SERVICE_ACCESS"
    assert redis.get("authorizedNetwork") == plan.one("gcp:compute/network:Network").id
    assert (
        redis.get("reservedIpRange")
        == (plan.one("gcp:compute/globalAddress:GlobalAddress").outputs["name"])
    )
    assert redis.get("transitEncryptionMode") == "SERVER_AUTHENTICATION"
    assert redis.get("authEnabled") is True
    assert redis.get("tier") == expected["redis_tier"]
    assert redis.get("memorySizeGb") == expected["redis_memory"]
    assert redis.get("redisVersion") == "REDIS_7_2"
    assert redis.get("persistenceConfig.persistenceMode") == expected["redis_persistence"]
    window = redis.get("maintenancePolicy.weeklyMaintenanceWindows.0")
    assert window["day"] == "SUNDAY" and window["startTime"]["hours"] == 3


def test_redis_url_and_ca_come_from_the_instance(plan: Plan) -> None:
    redis = plan.one(REDIS)
    outputs = plan.one("ai-gateway:gcp:Redis").outputs
    assert isinstance(outputs["url"], Secret)
    auth = reveal(redis.outputs["authString"])
    assert reveal(outputs["url"]) == f"rediss://:{auth}@{redis.outputs['host']}:6378"
    ca = outputs["caCertificate"]
    assert ca == "".join(c["cert"].strip() + "\n" for c in redis.outputs["serverCaCerts"])
    assert ca.startswith("-----BEGIN CERTIFICATE-----")


def test_redis_ca_bundle_keeps_every_server_ca() -> None:
    """During a CA rotation Memorystore lists two server CAs and clients must trust both
    ("Certificate authority rotation", Memorystore for Redis in-transit encryption docs)."""
    old, new = (
        "-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----",
        "-----BEGIN CERTIFICATE-----\nNEW\n-----END CERTIFICATE-----",
    )
    bundle = ca_bundle([{"cert": old}, {"cert": new + "\n"}, {"cert": old}])
    assert bundle == f"{old}\n{new}\n"
    assert ca_bundle([]) == "" and ca_bundle(None) == ""


# ------------------------------------------------------------------ Cloud SQL


def test_cloud_sql_is_private_tls_only_and_backed_up(plan: Plan, stack: str) -> None:
    sql = plan.one(SQL)
    expected = EXPECTED[stack]
    assert sql.get("databaseVersion") == "POSTGRES_16"
    assert sql.get("settings.ipConfiguration.ipv4Enabled") is False
    assert sql.get("settings.ipConfiguration.privateNetwork") == (
        plan.one("gcp:compute/network:Network").id
    )
    assert (
        sql.get("settings.ipConfiguration.allocatedIpRange")
        == (plan.one("gcp:compute/globalAddress:GlobalAddress").outputs["name"])
    )
    assert sql.get("settings.ipConfiguration.sslMode") == "ENCRYPTED_ONLY"
    assert sql.get("settings.ipConfiguration.authorizedNetworks") is None
    assert sql.get("settings.backupConfiguration.enabled") is True
    assert sql.get("settings.backupConfiguration.pointInTimeRecoveryEnabled") is True
    assert (
        sql.get("settings.backupConfiguration.backupRetentionSettings.retainedBackups")
        == expected["retained_backups"]
    )
    assert sql.get("settings.availabilityType") == expected["sql_availability"]
    assert sql.get("settings.tier") == expected["sql_tier"]
    assert sql.get("settings.edition") == "ENTERPRISE"
    assert sql.get("settings.diskSize") == expected["sql_disk"]
    assert sql.get("settings.diskAutoresize") is True
    assert sql.get("deletionProtection") is expected["deletion_protection"]
    assert sql.get("settings.deletionProtectionEnabled") is expected["deletion_protection"]
    assert sql.get("settings.insightsConfig.queryInsightsEnabled") is True
    assert sql.get("settings.maintenanceWindow") == {"day": 7, "hour": 3, "updateTrack": "stable"}
    flags = {f["name"]: f["value"] for f in sql.get("settings.databaseFlags")}
    assert flags["log_connections"] == "on" and flags["log_disconnections"] == "on"


def test_data_stores_encrypt_with_the_footprint_data_key(plan: Plan, stack: str) -> None:
    """CMEK for Cloud SQL and Memorystore ("Customer-managed encryption keys" in each
    product's docs): a key in the instance's region, its service agent granted
    cryptoKeyEncrypterDecrypter before the instance is created."""
    key = plan.one("gcp:kms/cryptoKey:CryptoKey", "data")
    ring = plan.one("gcp:kms/keyRing:KeyRing")
    assert key.get("keyRing") == ring.id
    assert key.get("rotationPeriod") == "7776000s"
    assert key.protect is EXPECTED[stack]["deletion_protection"]
    sql, redis = plan.one(SQL), plan.one(REDIS)
    assert sql.get("encryptionKeyName") == key.id
    assert redis.get("customerManagedKey") == key.id
    assert ring.get("location") == sql.get("region") == redis.get("region")
    agents = {
        a.get("service"): a for a in plan.of_type("gcp:projects/serviceIdentity:ServiceIdentity")
    }
    for instance, service, domain in (
        (sql, "sqladmin.googleapis.com", "gcp-sa-cloud-sql"),
        (redis, "redis.googleapis.com", "cloud-redis"),
    ):
        agent = agents[service]
        assert agent.outputs["email"].endswith(f"@{domain}.iam.gserviceaccount.com")
        (grant,) = [
            g
            for g in plan.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
            if g.get("member") == agent.outputs["member"]
        ]
        assert grant.get("cryptoKeyId") == key.id
        assert grant.get("role") == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
        assert grant.urn in instance.dependencies


def test_gateway_database_user_and_secret_dsn(plan: Plan) -> None:
    sql = plan.one(SQL)
    database = plan.one("gcp:sql/database:Database")
    user = plan.one("gcp:sql/user:User")
    password = plan.one("random:index/randomPassword:RandomPassword", "gateway")
    assert database.get("instance") == user.get("instance") == sql.outputs["name"]
    assert isinstance(user.inputs["password"], Secret)
    assert reveal(user.inputs["password"]) == reveal(password.outputs["result"])
    assert password.get("length") >= 32
    outputs = plan.one("ai-gateway:gcp:Postgres").outputs
    where = f"{sql.outputs['privateIpAddress']}:5432/{database.get('name')}?sslmode=require"
    # The built-in user (a cloudsqlsuperuser) is the migration Job's only: its credential
    # is a Secret Manager version (CMEK, this region only), never a DSN the cluster gets.
    secret = plan.one("gcp:secretmanager/secret:Secret")
    version = plan.one("gcp:secretmanager/secretVersion:SecretVersion")
    (replica,) = secret.get("replication")["userManaged"]["replicas"]
    assert replica["location"] == sql.get("region")
    assert replica["customerManagedEncryption"]["kmsKeyName"] == sql.get("encryptionKeyName")
    assert isinstance(version.inputs["secretData"], Secret)
    assert json.loads(reveal(version.inputs["secretData"])) == {
        "username": "gateway_admin",
        "password": reveal(password.outputs["result"]),
    }
    assert outputs["ownerSecretUrl"] == (
        f"https://secretmanager.googleapis.com/v1/{version.outputs['name']}:access"
    )
    # The gateway connects as its own role, which the Job creates with row access only.
    app = plan.one("random:index/randomPassword:RandomPassword", "gateway-app")
    assert isinstance(outputs["dsn"], Secret)
    assert reveal(outputs["dsn"]) == (
        f"postgresql://gateway_app:{reveal(app.outputs['result'])}@{where}"
    )


# ------------------------------------------------------------------ the contract


def test_footprint_outputs_keep_secrets_secret(plan: Plan) -> None:
    outputs = plan.one(FOOTPRINT).outputs
    for key in ("kubeconfig", "redisUrl", "postgresDsn"):
        assert isinstance(outputs[key], Secret), key
    assert not isinstance(outputs["redisCaCert"], Secret)  # a CA is public


def test_contract_fills_every_field(contract_plan: Plan) -> None:
    outputs = contract_plan.outputs
    footprint = contract_plan.one(FOOTPRINT)
    cluster = contract_plan.one(CLUSTER)
    assert outputs["cloud"] == "gcp"
    assert outputs["region"] == "us-central1"
    assert outputs["componentUrn"] == footprint.urn
    assert outputs["kubeProviderUrn"] == contract_plan.one("pulumi:providers:kubernetes").urn
    assert outputs["clusterName"] == cluster.outputs["name"]
    for key in ("kubeconfig", "redisUrl", "postgresDsn"):
        assert isinstance(outputs[key], Secret), key
    assert reveal(outputs["redisUrl"]).startswith("rediss://:")
    assert reveal(outputs["postgresDsn"]).endswith("?sslmode=require")
    assert outputs["redisCaCert"].startswith("-----BEGIN CERTIFICATE-----")
    assert outputs["extrasKeys"] == sorted(
        [
            "workloadPool",
            "ownerSecretId",
            "project",
            "region",
            "nodeServiceAccountEmail",
            "networkId",
            "subnetworkId",
            "oidcIssuerUrl",
        ]
    )
    issuer = (
        "https://container.googleapis.com/v1/projects/acme-ai-gateway-dev/locations/"
        f"us-central1/clusters/{cluster.outputs['name']}"
    )
    assert outputs["extras"]["oidcIssuerUrl"] == issuer
    assert outputs["oidcIssuerUrl"] == issuer
    # Memorystore and Cloud SQL live in the peered private-service range.
    peered = contract_plan.one("gcp:compute/globalAddress:GlobalAddress")
    assert outputs["dataStoreCidrs"] == [
        f"{peered.get('address')}/{int(peered.get('prefixLength'))}"
    ]
    assert outputs["redisPort"] == 6378
    assert outputs["providerUrn"] == contract_plan.one("pulumi:providers:gcp").urn
    extras = outputs["extras"]
    assert extras["workloadPool"] == "acme-ai-gateway-dev.svc.id.goog"
    assert extras["project"] == "acme-ai-gateway-dev"
    assert extras["region"] == "us-central1"
    assert (
        extras["nodeServiceAccountEmail"]
        == (contract_plan.one("gcp:serviceaccount/account:Account").outputs["email"])
    )
    assert extras["networkId"] == contract_plan.one("gcp:compute/network:Network").id
    assert extras["subnetworkId"] == (contract_plan.one("gcp:compute/subnetwork:Subnetwork").id)


def test_aigw_plan_lists_the_gcp_resources(plans: dict[str, Plan]) -> None:
    from infra.cli import render_plan

    text = render_plan(plans["dev"])
    gcp_section = text.split("\ngcp (", 1)[1]
    for token in (
        "ai-gateway:gcp:Footprint",
        "ai-gateway:gcp:Cluster",
        CLUSTER,
        REDIS,
        SQL,
        CONNECTION,
    ):
        assert token in gcp_section, token
