"""AKS against its baseline (issue 19 items 11 and 13 and the smaller ones), on every stack.

Sources: "Add Key Management Service etcd encryption to an AKS cluster" (KMS
key, Key Vault Crypto User for the cluster identity); "Enable monitoring for
Kubernetes clusters" (managed-identity Container Insights needs a data
collection rule with the ContainerInsights extension and a
``ContainerInsightsExtension`` association); "Azure Policy built-in
definitions for AKS" (the Pod Security baseline initiative, whose definition
in Azure/azure-policy, ``Kubernetes_PSPBaselineStandard.json``, takes
``effect`` Audit/Deny and excludes kube-system by default); "Enable Microsoft
Defender for Containers"; "Ephemeral OS disks" and "Use Planned Maintenance"
(AKS documentation).
"""

from __future__ import annotations

import pytest

from infra.azure.cluster import (
    CONTAINER_INSIGHTS_STREAMS,
    KEY_VAULT_CRYPTO_USER_ROLE,
    POD_SECURITY_BASELINE_INITIATIVE,
)
from infra.offline import Plan
from tests.infra.conftest import STACKS

AZ = "azure-native"
CLUSTER = f"{AZ}:containerservice:ManagedCluster"
PROTECTED = {"dev": False, "staging": True, "prod": True}


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def plan(plans: dict[str, Plan], stack: str) -> Plan:
    return plans[stack]


def _cluster_identity(plan: Plan):
    return plan.one(f"{AZ}:managedidentity:UserAssignedIdentity", "azure-cluster-identity")


def test_etcd_secrets_are_encrypted_with_a_key_vault_key(plan: Plan) -> None:
    cluster = plan.one(CLUSTER)
    vault = plan.one(f"{AZ}:keyvault:Vault")
    key = plan.one(f"{AZ}:keyvault:Key")
    kms = cluster.get("securityProfile.azureKeyVaultKms")
    assert kms["enabled"] is True
    assert kms["keyId"] == key.outputs["keyUriWithVersion"]
    assert key.get("vaultName") == vault.outputs["name"]
    properties = vault.get("properties")
    assert properties["enableRbacAuthorization"] is True
    assert properties["enablePurgeProtection"] is True
    assert key.get("properties.kty") == "RSA" and key.get("properties.keySize") >= 2048
    (rotate,) = key.get("properties.rotationPolicy.lifetimeActions")
    assert rotate["action"]["type"] == "rotate"
    (grant,) = [
        g for g in plan.of_type(f"{AZ}:authorization:RoleAssignment") if g.get("scope") == vault.id
    ]
    assert grant.get("roleDefinitionId").endswith(KEY_VAULT_CRYPTO_USER_ROLE)
    assert grant.get("principalId") == _cluster_identity(plan).outputs["principalId"]
    assert grant.urn in cluster.dependencies


def test_container_insights_has_its_data_collection_rule(plan: Plan) -> None:
    cluster = plan.one(CLUSTER)
    workspace = plan.one(f"{AZ}:operationalinsights:Workspace")
    assert cluster.get("addonProfiles.omsagent.config.useAADAuth") == "true"
    rule = plan.one(f"{AZ}:monitor:DataCollectionRule")
    (extension,) = rule.get("dataSources.extensions")
    assert extension["extensionName"] == "ContainerInsights"
    assert extension["streams"] == list(CONTAINER_INSIGHTS_STREAMS)
    (destination,) = rule.get("destinations.logAnalytics")
    assert destination["workspaceResourceId"] == workspace.id
    (flow,) = rule.get("dataFlows")
    assert flow["destinations"] == [destination["name"]]
    association = plan.one(f"{AZ}:monitor:DataCollectionRuleAssociation")
    assert association.get("associationName") == "ContainerInsightsExtension"
    assert association.get("resourceUri") == cluster.id
    assert association.get("dataCollectionRuleId") == rule.id


def test_the_policy_addon_enforces_the_pod_security_baseline(plan: Plan, stack: str) -> None:
    cluster = plan.one(CLUSTER)
    assert cluster.get("addonProfiles.azurepolicy.enabled") is True
    assignment = plan.one(f"{AZ}:authorization:PolicyAssignment")
    assert assignment.get("scope") == cluster.id
    assert assignment.get("policyDefinitionId") == (
        f"/providers/Microsoft.Authorization/policySetDefinitions/{POD_SECURITY_BASELINE_INITIATIVE}"
    )
    expected = "Deny" if PROTECTED[stack] else "Audit"
    assert assignment.get("parameters.effect.value") == expected


def test_defender_for_containers_outside_dev(plan: Plan, stack: str) -> None:
    cluster = plan.one(CLUSTER)
    defender = cluster.get("securityProfile.defender")
    pricing = plan.of_type(f"{AZ}:security:Pricing")
    if not PROTECTED[stack]:
        assert defender is None and pricing == []
        return
    workspace = plan.one(f"{AZ}:operationalinsights:Workspace")
    assert defender["logAnalyticsWorkspaceResourceId"] == workspace.id
    assert defender["securityMonitoring"]["enabled"] is True
    (plan_on,) = pricing
    assert (plan_on.get("pricingName"), plan_on.get("pricingTier")) == ("Containers", "Standard")


def test_node_pools_boot_from_ephemeral_os_disks(plan: Plan) -> None:
    cluster = plan.one(CLUSTER)
    (system,) = cluster.get("agentPoolProfiles")
    user = plan.one(f"{AZ}:containerservice:AgentPool")
    for pool in (system, user.inputs):
        assert pool["osDiskType"] == "Ephemeral"
        assert pool["vmSize"].endswith("ds_v5")
        # Ddsv5: 37.5 GiB of temp disk per vCPU; the OS disk must fit it.
        vcpus = int(pool["vmSize"].split("_")[1][1:].removesuffix("ds"))
        assert pool["osDiskSizeGB"] <= vcpus * 37.5


def test_upgrades_happen_in_the_weekly_window(plan: Plan) -> None:
    cluster = plan.one(CLUSTER)
    configs = {
        c.get("configName"): c
        for c in plan.of_type(f"{AZ}:containerservice:MaintenanceConfiguration")
    }
    assert set(configs) == {"aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule"}
    for config in configs.values():
        assert config.get("resourceName") == cluster.outputs["name"]
        window = config.get("maintenanceWindow")
        assert window["schedule"]["weekly"] == {"dayOfWeek": "Sunday", "intervalWeeks": 1}
        assert (window["startTime"], window["durationHours"]) == ("02:00", 4)


def test_staging_and_prod_name_an_admin_group(plan: Plan, stack: str) -> None:
    groups = plan.one(CLUSTER).get("aadProfile.adminGroupObjectIDs")
    assert bool(groups) is PROTECTED[stack]
