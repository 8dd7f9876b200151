"""The whole program on every stack file: identity, gateway, global layer and outputs wired.

Runs on the session's recorded plans of the real program (``plans``), so it
checks what ``__main__`` connects: each cloud's gateway on that cloud's kube
provider with that cloud's identity, a certificate solver per cluster, the
global layer in front of every cloud's endpoint, and what the stack exports.
"""

from __future__ import annotations

import json

import pytest

from infra.aws.identity import BEDROCK_INVOKE_ACTIONS
from infra.azure.identity import (
    COGNITIVE_SERVICES_OPENAI_USER_ROLE,
    KEY_VAULT_SECRETS_USER_ROLE,
)
from infra.k8s.edge import ROUTE53_SOLVER_SUBJECT
from infra.k8s.gateway import service_account_subject
from infra.offline import Plan, RecordedResource, Secret
from infra.offline.engine import reveal
from tests.infra.conftest import STACKS
from tests.infra.integration.leaks import assert_no_secret_leaks

SUBJECT = service_account_subject()
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"


def enabled(plan: Plan) -> list[str]:
    return list(plan.outputs["enabledClouds"])


def lineage_types(plan: Plan, resource: RecordedResource) -> list[str]:
    return [a.type for a in plan.ancestors(resource)]


def under(plan: Plan, resource: RecordedResource, type_token: str, name: str) -> bool:
    return any(a.type == type_token and a.name == name for a in plan.ancestors(resource))


def in_component(plan: Plan, type_token: str, component: str) -> list[RecordedResource]:
    """Resources of ``type_token`` below the component of type ``component`` (any name)."""
    return [r for r in plan.of_type(type_token) if component in lineage_types(plan, r)]


def provider_of(plan: Plan, resource: RecordedResource) -> RecordedResource:
    assert resource.provider, f"{resource.name} has no explicit provider"
    return plan.by_urn(resource.provider.rsplit("::", 1)[0])


def gateway_objects(plan: Plan, cloud: str) -> list[RecordedResource]:
    return [
        r
        for r in plan.resources
        if r.custom
        and r.package == "kubernetes"
        and under(plan, r, "ai-gateway:k8s:GatewayDeployment", f"gateway-{cloud}")
    ]


def gateway_service_account(plan: Plan, cloud: str) -> RecordedResource:
    (account,) = [
        r
        for r in gateway_objects(plan, cloud)
        if r.type == SERVICE_ACCOUNT and r.get("metadata.name") == "ai-gateway"
    ]
    return account


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest, plans: dict[str, Plan]) -> Plan:
    return plans[request.param]


# ------------------------------------------------------------ workload identity


def test_stack_files_cover_every_cloud(plans: dict[str, Plan]) -> None:
    """Every per-cloud check below runs on at least one stack file."""
    assert {c for p in plans.values() for c in enabled(p)} == {"aws", "azure", "gcp"}


def test_aws_gateway_role_trusts_only_the_gateway_service_account(plan: Plan) -> None:
    if "aws" not in enabled(plan):
        return  # test_stack_files_cover_every_cloud keeps this from passing vacuously
    (role,) = in_component(plan, ROLE, "ai-gateway:aws:GatewayIdentity")
    eks_provider = next(
        r for r in plan.of_type(OIDC_PROVIDER) if "ai-gateway:aws:Cluster" in lineage_types(plan, r)
    )
    trust = json.loads(role.get("assumeRolePolicy"))
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Federated": eks_provider.outputs["arn"]}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    issuer = eks_provider.get("url").removeprefix("https://")
    assert statement["Condition"] == {
        "StringEquals": {f"{issuer}:sub": SUBJECT, f"{issuer}:aud": "sts.amazonaws.com"}
    }
    # The footprint's provider: the role lives in the account and region of the cluster.
    assert "ai-gateway:aws:Footprint" in lineage_types(plan, provider_of(plan, role))


def aws_region(plan: Plan) -> str:
    (role,) = in_component(plan, ROLE, "ai-gateway:aws:GatewayIdentity")
    return provider_of(plan, role).get("region")


def test_aws_gateway_role_may_only_invoke_bedrock_models(plan: Plan) -> None:
    """Only Bedrock invocations: models of its region, profiles called from its region, and
    other regions' models only through those profiles (test_provider_rules checks the
    destinations)."""
    if "aws" not in enabled(plan):
        return  # test_stack_files_cover_every_cloud keeps this from passing vacuously
    (policy,) = in_component(plan, ROLE_POLICY, "ai-gateway:aws:GatewayIdentity")
    statements = {s["Sid"]: s for s in json.loads(policy.get("policy"))["Statement"]}
    region = aws_region(plan)
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        assert sorted(statement["Action"]) == sorted(BEDROCK_INVOKE_ACTIONS)
        assert statement["Resource"], "no resource at all would be a wildcard in disguise"
    for sid in ("InvokeModelsInRegion", "InvokeInferenceProfiles"):
        for arn in statements[sid]["Resource"]:
            assert arn.startswith(f"arn:aws:bedrock:{region}:")
            assert ":foundation-model/" in arn or ":inference-profile/" in arn
    through = statements["InvokeModelsThroughProfiles"]
    assert all(":foundation-model/" in arn for arn in through["Resource"])
    assert (
        through["Condition"]["StringLike"]["bedrock:InferenceProfileArn"]
        == (statements["InvokeInferenceProfiles"]["Resource"])
    )
    (role,) = in_component(plan, ROLE, "ai-gateway:aws:GatewayIdentity")
    assert policy.get("role") == role.id
    # No managed policy is attached on top.
    assert not in_component(
        plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "ai-gateway:aws:GatewayIdentity"
    )


def test_azure_identity_is_federated_to_the_gateway_service_account(plan: Plan) -> None:
    if "azure" not in enabled(plan):
        return  # test_stack_files_cover_every_cloud keeps this from passing vacuously
    (identity,) = in_component(
        plan,
        "azure-native:managedidentity:UserAssignedIdentity",
        "ai-gateway:azure:GatewayIdentity",
    )
    (credential,) = in_component(
        plan,
        "azure-native:managedidentity:FederatedIdentityCredential",
        "ai-gateway:azure:GatewayIdentity",
    )
    cluster = plan.one("azure-native:containerservice:ManagedCluster")
    assert credential.get("issuer") == cluster.outputs["oidcIssuerProfile"]["issuerURL"]
    assert credential.get("subject") == SUBJECT
    assert credential.get("audiences") == ["api://AzureADTokenExchange"]
    assert credential.get("resourceName") == identity.outputs["name"]

    assignments = in_component(
        plan, "azure-native:authorization:RoleAssignment", "ai-gateway:azure:GatewayIdentity"
    )
    (assignment,) = assignments  # the stack files name one account: that account only
    assert assignment.get("roleDefinitionId").endswith(
        f"/roleDefinitions/{COGNITIVE_SERVICES_OPENAI_USER_ROLE}"
    )
    assert assignment.get("principalId") == identity.outputs["principalId"]
    assert assignment.get("principalType") == "ServicePrincipal"
    # The stack files name the Azure OpenAI account their catalogue calls: that account only.
    account = assignment.get("scope")
    assert account.startswith("/subscriptions/") and account.endswith(
        "/providers/Microsoft.CognitiveServices/accounts/" + account.rsplit("/", 1)[-1]
    )
    (config_map,) = [
        r for r in gateway_objects(plan, "azure") if r.type == "kubernetes:core/v1:ConfigMap"
    ]
    endpoint = f"https://{account.rsplit('/', 1)[-1]}.openai.azure.com"
    assert endpoint in config_map.get("data")["config.yaml"]

    account = gateway_service_account(plan, "azure")
    assert account.get("metadata.annotations") == {
        "azure.workload.identity/client-id": identity.outputs["clientId"]
    }


def test_azure_redis_takes_only_the_gateway_identity_s_entra_token(plan: Plan) -> None:
    """Issue 19: no access key next to Entra on Azure Managed Redis.

    "Use Microsoft Entra for cache authentication" (Microsoft Learn,
    https://learn.microsoft.com/azure/redis/entra-for-authentication): with access keys
    disabled only Entra identities given an access policy assignment get in, as the user
    named by their object id. The AccessPolicyAssignment API supports only the
    ``default`` policy; ``accessKeysAuthentication`` is the database's switch (REST
    2025-07-01, ``Microsoft.Cache/redisEnterprise/databases``).
    """
    if "azure" not in enabled(plan):
        return  # test_stack_files_cover_every_cloud keeps this from passing vacuously
    database = plan.one("azure-native:redisenterprise:Database")
    assert database.get("accessKeysAuthentication") == "Disabled"
    (identity,) = in_component(
        plan,
        "azure-native:managedidentity:UserAssignedIdentity",
        "ai-gateway:azure:GatewayIdentity",
    )
    (assignment,) = plan.of_type("azure-native:redisenterprise:AccessPolicyAssignment")
    assert assignment.get("accessPolicyName") == "default"
    assert assignment.get("user.objectId") == identity.outputs["principalId"]
    assert assignment.get("clusterName") == database.get("clusterName")
    assert assignment.get("databaseName") == database.outputs["name"]

    objects = gateway_objects(plan, "azure")
    (deployment,) = [r for r in objects if r.type == DEPLOYMENT]
    (container,) = deployment.get("spec.template.spec.containers")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AIGW_REDIS_AUTH"] == "entra"
    (secret,) = [r for r in objects if r.type == "kubernetes:core/v1:Secret"]
    url = reveal(secret.inputs["stringData"])["redis-url"]
    assert url.startswith("rediss://") and "@" not in url, "a Redis key reached the cluster"


def test_gcp_service_account_calls_vertex_and_is_bound_to_the_gateway_only(plan: Plan) -> None:
    if "gcp" not in enabled(plan):
        return  # test_stack_files_cover_every_cloud keeps this from passing vacuously
    (account,) = in_component(
        plan, "gcp:serviceaccount/account:Account", "ai-gateway:gcp:GatewayIdentity"
    )
    project = account.outputs["project"]
    (vertex,) = in_component(
        plan, "gcp:projects/iAMMember:IAMMember", "ai-gateway:gcp:GatewayIdentity"
    )
    assert vertex.get("role") == "roles/aiplatform.user"
    assert vertex.get("member") == account.outputs["member"]
    assert vertex.get("project") == project
    (binding,) = in_component(
        plan, "gcp:serviceaccount/iAMMember:IAMMember", "ai-gateway:gcp:GatewayIdentity"
    )
    assert binding.get("role") == "roles/iam.workloadIdentityUser"
    assert binding.get("serviceAccountId") == account.outputs["name"]
    assert binding.get("member") == f"serviceAccount:{project}.svc.id.goog[ai-gateway/ai-gateway]"

    ksa = gateway_service_account(plan, "gcp")
    assert ksa.get("metadata.annotations") == {
        "iam.gke.io/gcp-service-account": account.outputs["email"]
    }


def test_aws_service_account_names_the_gateway_role(plan: Plan) -> None:
    if "aws" not in enabled(plan):
        return  # test_stack_files_cover_every_cloud keeps this from passing vacuously
    (role,) = in_component(plan, ROLE, "ai-gateway:aws:GatewayIdentity")
    assert gateway_service_account(plan, "aws").get("metadata.annotations") == {
        "eks.amazonaws.com/role-arn": role.outputs["arn"]
    }


# ------------------------------------------------------------------ gateways


def _secret_refs(spec: dict) -> set[str]:
    """Names of the Secrets a pod spec reads (env and volumes)."""
    names = set()
    for container in spec["containers"]:
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
    for volume in spec.get("volumes") or []:
        if volume.get("secret"):
            names.add(volume["secret"]["secretName"])
    return names


def _owner_secret_and_readers(plan: Plan, cloud: str) -> tuple[str, dict[str, str]]:
    """The owner secret's reference the cloud created, and who may read it.

    Returns ``(reference, {reader: how it reads})`` where a reader is the identity
    named on a ServiceAccount (IAM role ARN, managed identity client id, GCP
    service account email), taken from the grants in the plan.
    """
    if cloud == "aws":
        (db,) = plan.of_type("aws:rds/instance:Instance")
        assert db.get("manageMasterUserPassword") is True and not db.get("password")
        (owner,) = db.outputs["masterUserSecrets"]
        assert owner["kmsKeyId"] == db.get(
            "masterUserSecretKmsKeyId"
        )  # our key, not aws/secretsmanager
        arn = owner["secretArn"]
        readers = {}
        for policy in plan.of_type(ROLE_POLICY):
            for statement in json.loads(policy.get("policy"))["Statement"]:
                if (
                    arn in statement["Resource"]
                    and "secretsmanager:GetSecretValue" in (statement["Action"])
                ):
                    (role,) = [r for r in plan.of_type(ROLE) if r.id == policy.get("role")]
                    readers[role.outputs["arn"]] = policy.name
        return arn, readers
    if cloud == "azure":
        (secret,) = plan.of_type("azure-native:keyvault:Secret")
        identities = plan.of_type("azure-native:managedidentity:UserAssignedIdentity")
        readers = {}
        for grant in plan.of_type("azure-native:authorization:RoleAssignment"):
            reads_secrets = grant.get("roleDefinitionId").endswith(KEY_VAULT_SECRETS_USER_ROLE)
            assert reads_secrets == (grant.get("scope") == secret.id), grant.name
            if reads_secrets:
                (identity,) = [
                    r for r in identities if r.outputs["principalId"] == grant.get("principalId")
                ]
                readers[identity.outputs["clientId"]] = grant.name
        return reveal(secret.outputs["properties"])["secretUri"], readers
    (secret,) = plan.of_type("gcp:secretmanager/secret:Secret")
    (version,) = plan.of_type("gcp:secretmanager/secretVersion:SecretVersion")
    readers = {}
    for grant in plan.resources:
        member = grant.get("member") if grant.custom else None
        if not isinstance(member, str) or not member.startswith("serviceAccount:"):
            continue
        on_secret = grant.type.startswith("gcp:secretmanager/") and grant.get("secretId") == (
            secret.id
        )
        on_project = grant.type == "gcp:projects/iAMMember:IAMMember" and "secretmanager" in (
            grant.get("role")
        )
        if on_secret or on_project:
            readers[member.removeprefix("serviceAccount:")] = grant.get("role")
    url = f"https://secretmanager.googleapis.com/v1/{version.outputs['name']}:access"
    return url, readers


IDENTITY_ANNOTATION = {
    "aws": "eks.amazonaws.com/role-arn",
    "azure": "azure.workload.identity/client-id",
    "gcp": "iam.gke.io/gcp-service-account",
}


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_the_database_owner_stays_out_of_the_cluster(plan: Plan, cloud: str) -> None:
    """Issue 19 item 12: the serving pods connect as gateway_app (row access only); the
    owner's password is in the cloud's secret store, encrypted with the stack's key, and
    only the migration Job's own identity may read it. No Kubernetes object holds it."""
    objects = gateway_objects(plan, cloud)
    secrets = {r.get("metadata.name"): r for r in objects if r.type == "kubernetes:core/v1:Secret"}
    assert set(secrets) == {"ai-gateway-secrets"}, "the cluster holds a second Secret"
    app = reveal(secrets["ai-gateway-secrets"].inputs["stringData"])["database-url"]
    assert app.startswith("postgresql://gateway_app:")

    reference, readers = _owner_secret_and_readers(plan, cloud)
    accounts = {r.get("metadata.name"): r for r in objects if r.type == SERVICE_ACCOUNT}
    identity = {
        name: (account.get("metadata.annotations") or {}).get(IDENTITY_ANNOTATION[cloud])
        for name, account in accounts.items()
    }
    # Exactly one reader, and it is the Job's ServiceAccount's identity, not the gateway's.
    assert list(readers) == [identity["ai-gateway-migrate"]], readers
    assert identity["ai-gateway"] not in readers

    (job,) = [r for r in objects if r.type == "kubernetes:batch/v1:Job"]
    job_spec = job.get("spec.template.spec")
    assert job_spec["serviceAccountName"] == "ai-gateway-migrate"
    assert _secret_refs(job_spec) == {"ai-gateway-secrets"}
    (container,) = job_spec["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["AIGW_MIGRATION_SECRET"] == {"name": "AIGW_MIGRATION_SECRET", "value": reference}
    assert "AIGW_MIGRATION_DATABASE_URL" not in env
    # The daily audit maintenance (partitions, retention) runs as the owner too, and only it.
    (cron,) = [r for r in objects if r.type == "kubernetes:batch/v1:CronJob"]
    cron_spec = cron.get("spec.jobTemplate.spec.template.spec")
    assert cron_spec["serviceAccountName"] == "ai-gateway-migrate"
    (cron_container,) = cron_spec["containers"]
    assert {e["name"]: e for e in cron_container["env"]}["AIGW_MIGRATION_SECRET"] == (
        env["AIGW_MIGRATION_SECRET"]
    )
    for deployment in (r for r in objects if r.type == DEPLOYMENT):
        spec = deployment.get("spec.template.spec")
        assert spec["serviceAccountName"] == "ai-gateway"
        assert not {"AIGW_MIGRATION_SECRET", "AIGW_MIGRATION_DATABASE_URL"} & {
            e["name"] for c in spec["containers"] for e in c.get("env") or []
        }

    # The owner's password (Azure, GCP: generated; AWS: RDS's own, never in the plan) is in
    # no Kubernetes object and no plain output.
    owner_passwords = [
        reveal(r.outputs["result"])
        for r in plan.of_type("random:index/randomPassword:RandomPassword")
        if any(a.type == f"ai-gateway:{cloud}:Postgres" for a in plan.ancestors(r))
        and "app" not in r.name
    ]
    assert len(owner_passwords) == (0 if cloud == "aws" else 1)
    for obj in plan.resources:
        if obj.custom and obj.package == "kubernetes":
            text = json.dumps(reveal(obj.inputs))
            assert not [p for p in owner_passwords if p in text], f"{obj.name} holds the owner"
    assert not [p for p in owner_passwords if p in json.dumps(reveal(plan.outputs))]


def test_every_enabled_cloud_runs_the_gateway_on_its_own_cluster(plan: Plan) -> None:
    clouds = enabled(plan)
    assert clouds
    deployments = {r.name for r in plan.of_type(DEPLOYMENT)}
    for cloud in clouds:
        assert f"gateway-{cloud}-deployment" in deployments
        objects = gateway_objects(plan, cloud)
        providers = {r.provider for r in objects}
        assert len(providers) == 1, providers
        kube = provider_of(plan, objects[0])
        assert kube.type == "pulumi:providers:kubernetes"
        assert f"ai-gateway:{cloud}:Footprint" in lineage_types(plan, kube)
        # The cluster's edge (Envoy Gateway, cert-manager, issuer) goes to the same cluster.
        ingress = [
            r
            for r in plan.resources
            if r.custom and under(plan, r, "ai-gateway:k8s:ClusterEdge", f"gateway-{cloud}-edge")
        ]
        assert ingress and {r.provider for r in ingress} == providers


def test_gateway_image_is_the_published_reference(plan: Plan) -> None:
    for cloud in enabled(plan):
        (deployment,) = [r for r in gateway_objects(plan, cloud) if r.type == DEPLOYMENT]
        (container,) = deployment.get("spec.template.spec.containers")
        assert container["image"] == "ghcr.io/acme/ai-gateway:0.1.0"


def test_each_cluster_gets_a_dns01_role_for_cert_manager_only(plan: Plan) -> None:
    zone_id = plan.outputs["dnsZoneId"]
    for cloud in enabled(plan):
        role = plan.one(ROLE, f"global-dns-{cloud}-dns01-role")
        (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
        conditions = statement["Condition"]["StringEquals"]
        assert sorted(conditions.values()) == sorted([ROUTE53_SOLVER_SUBJECT, "sts.amazonaws.com"])
        oidc = plan.by_urn(
            next(
                r.urn
                for r in plan.of_type(OIDC_PROVIDER)
                if r.outputs["arn"] == statement["Principal"]["Federated"]
            )
        )
        # The role trusts this cloud's cluster: EKS's own provider, or one for its issuer.
        if cloud == "aws":
            assert "ai-gateway:aws:Cluster" in lineage_types(plan, oidc)
        else:
            assert oidc.name == f"global-dns-{cloud}-dns01-oidc"
            assert oidc.get("clientIdLists") == ["sts.amazonaws.com"]
        issuer = oidc.get("url").removeprefix("https://")
        assert set(conditions) == {f"{issuer}:sub", f"{issuer}:aud"}

        policy = plan.one(ROLE_POLICY, f"global-dns-{cloud}-dns01-policy")
        statements = {s["Sid"]: s for s in json.loads(policy.get("policy"))["Statement"]}
        change = statements["AcmeChallengeRecordsOnly"]
        assert change["Action"] == "route53:ChangeResourceRecordSets"
        assert change["Resource"] == f"arn:aws:route53:::hostedzone/{zone_id}"
        assert change["Condition"]["ForAllValues:StringEquals"] == {
            "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
        }
        assert statements["WaitForChanges"]["Action"] == "route53:GetChange"

        (issuer_resource,) = [
            r
            for r in plan.of_type("kubernetes:cert-manager.io/v1:ClusterIssuer")
            if under(plan, r, "ai-gateway:k8s:ClusterEdge", f"gateway-{cloud}-edge")
        ]
        (solver,) = issuer_resource.get("spec.acme.solvers")
        route53 = solver["dns01"]["route53"]
        assert route53["role"] == role.outputs["arn"]
        assert route53["hostedZoneID"] == zone_id


def test_certificates_cover_the_global_and_the_cloud_name(plan: Plan) -> None:
    hostname = plan.outputs["globalHostname"]
    for cloud in enabled(plan):
        (certificate,) = [
            r
            for r in gateway_objects(plan, cloud)
            if r.type == "kubernetes:cert-manager.io/v1:Certificate"
            and "-governance-" not in r.name
        ]
        cloud_name = plan.outputs["cloudUrls"][cloud].removeprefix("https://")
        assert set(certificate.get("spec.dnsNames")) == {hostname, cloud_name}


# -------------------------------------------------------------- global layer


def test_one_health_check_per_cloud_on_its_gateway_endpoint(plan: Plan) -> None:
    clouds = enabled(plan)
    checks = {r.name: r for r in plan.of_type(HEALTH_CHECK)}
    assert set(checks) == {f"global-{c}" for c in clouds}
    for cloud in clouds:
        check = checks[f"global-{cloud}"]
        assert check.get("type") == "HTTPS_STR_MATCH"
        assert check.get("resourcePath") == "/health/ready"
        assert check.get("searchString") == "ready"
        assert plan.outputs["healthCheckIds"][cloud] == check.id
        direct = plan.one(RECORD, f"global-{cloud}-direct")
        assert direct.get("records") == [plan.outputs[f"{cloud}Endpoint"]]


def test_global_records_carry_their_cloud_health_check(plan: Plan) -> None:
    routed = [r for r in plan.of_type(RECORD) if r.name.endswith("-routed")]
    assert {r.get("setIdentifier") for r in routed} == set(enabled(plan))
    zone_id = plan.outputs["dnsZoneId"]
    for record in routed:
        check = plan.one(HEALTH_CHECK, f"global-{record.get('setIdentifier')}")
        assert record.get("healthCheckId") == check.id
        assert record.get("zoneId") == zone_id
        assert record.get("name") == plan.outputs["globalHostname"]


def test_issuers_wait_for_the_zone_and_records_for_the_load_balancers(plan: Plan) -> None:
    """The order that breaks the zone/cluster cycle: zone -> issuers, load balancers -> records."""
    zone = plan.one("aws:route53/zone:Zone")
    for cloud in enabled(plan):
        (issuer,) = [
            r
            for r in plan.of_type("kubernetes:cert-manager.io/v1:ClusterIssuer")
            if under(plan, r, "ai-gateway:k8s:ClusterEdge", f"gateway-{cloud}-edge")
        ]
        role = plan.one(ROLE, f"global-dns-{cloud}-dns01-role")
        assert {zone.urn, role.urn} <= set(issuer.property_dependencies["spec"])
        # Envoy Gateway publishes its load balancer's address in the Gateway's status.
        balancer, channel = sorted(
            (
                r
                for r in gateway_objects(plan, cloud)
                if r.type == "kubernetes:gateway.networking.k8s.io/v1:Gateway"
            ),
            key=lambda r: "-governance-" in r.name,
        )
        direct = plan.one(RECORD, f"global-{cloud}-direct")
        assert balancer.urn in direct.property_dependencies["records"]
        # The governance channel's own name follows its own load balancer.
        governance = plan.one(RECORD, f"governance-{cloud}")
        assert channel.urn in governance.property_dependencies["records"]


# ------------------------------------------------------------------- outputs


def test_outputs_name_every_cloud_and_keep_kubeconfigs_secret(plan: Plan) -> None:
    clouds = enabled(plan)
    outputs = plan.outputs
    assert outputs["globalUrl"] == f"https://{outputs['globalHostname']}"
    for key in ("cloudEndpoints", "cloudUrls", "healthCheckIds", "clusterNames"):
        assert set(outputs[key]) == set(clouds), key
    for cloud in clouds:
        assert outputs[f"{cloud}Endpoint"] == outputs["cloudEndpoints"][cloud]
    assert isinstance(outputs["kubeconfigs"], Secret)
    kubeconfigs = reveal(outputs["kubeconfigs"])
    assert set(kubeconfigs) == set(clouds)
    assert all("apiVersion" in k for k in kubeconfigs.values())


def test_no_secret_value_in_a_config_map_or_a_plain_export(plan: Plan) -> None:
    assert_no_secret_leaks(plan)


# -------------------------------------------------------- the gateway's config


def test_every_cluster_config_map_is_a_config_the_gateway_loads(plan: Plan) -> None:
    """The ConfigMap parses with the gateway's own loader and serves the same models everywhere."""
    import yaml

    from gateway_app.config import parse as load_gateway_config

    models = {}
    for cloud in enabled(plan):
        objects = gateway_objects(plan, cloud)
        (config_map,) = [r for r in objects if r.type == "kubernetes:core/v1:ConfigMap"]
        (secret,) = [
            r
            for r in objects
            if r.type == "kubernetes:core/v1:Secret"
            and r.get("metadata.name") == "ai-gateway-secrets"
        ]
        (deployment,) = [
            r for r in objects if r.type == DEPLOYMENT and r.get("metadata.name") == "ai-gateway"
        ]
        (container,) = deployment.get("spec.template.spec.containers")
        # The pod's environment: each provider key from its Secret entry.
        keys = {
            e["name"]: reveal(secret.inputs["stringData"])[e["valueFrom"]["secretKeyRef"]["key"]]
            for e in container["env"]
            if e["name"].endswith("_API_KEY")
        }
        assert set(keys) == {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
        config = load_gateway_config(
            yaml.safe_load(config_map.get("data")["config.yaml"]), f"{cloud} ConfigMap", keys
        )
        assert config.models, f"the {cloud} cluster serves no model"
        assert all(p.api_key for p in config.providers.values() if p.api_key_env)
        models[cloud] = sorted(config.models)
    assert len({tuple(m) for m in models.values()}) == 1, models
