"""The EKS cluster on each stack's recorded plan: encryption, endpoint, access, nodes."""

from __future__ import annotations

import json

from infra.offline import Plan, record
from tests.infra.aws.conftest import footprint_key
from tests.infra.conftest import ROOT

NODE_SCALING = {
    "dev": {"desiredSize": 2, "minSize": 1, "maxSize": 3},
    "staging": {"desiredSize": 3, "minSize": 3, "maxSize": 6},
    "prod": {"desiredSize": 3, "minSize": 3, "maxSize": 12},
}
INSTANCE_TYPES = {"dev": "t3.large", "staging": "m7i.large", "prod": "m7i.xlarge"}


def _managed_policies(plan: Plan, role_name: str) -> set[str]:
    role = plan.one("aws:iam/role:Role", role_name)
    return {
        a.inputs["policyArn"]
        for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.outputs["name"]
    }


def test_secrets_are_envelope_encrypted_with_the_footprint_key(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    cluster = plan.one("aws:eks/cluster:Cluster")
    key = footprint_key(plan)
    assert key.inputs["enableKeyRotation"] is True
    assert cluster.get("encryptionConfig.resources") == ["secrets"]
    assert cluster.get("encryptionConfig.provider.keyArn") == key.outputs["arn"]


def test_control_plane_logs_are_on_and_retained(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    cluster = plan.one("aws:eks/cluster:Cluster")
    assert set(cluster.inputs["enabledClusterLogTypes"]) >= {"api", "audit", "authenticator"}
    group = next(
        g
        for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"] == f"/aws/eks/{cluster.inputs['name']}/cluster"
    )
    assert group.inputs["retentionInDays"] >= 30
    assert group.inputs["kmsKeyId"] == footprint_key(plan).outputs["arn"]
    # Created before the cluster, or EKS creates it unencrypted and unretained.
    assert group.urn in cluster.dependencies


def test_endpoint_private_and_public_only_for_deployers(plans: dict[str, Plan], stack: str) -> None:
    vpc_config = plans[stack].one("aws:eks/cluster:Cluster").get("vpcConfig")
    assert vpc_config["endpointPrivateAccess"] is True
    assert vpc_config["endpointPublicAccess"] is True
    assert vpc_config["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert "0.0.0.0/0" not in vpc_config["publicAccessCidrs"]


def test_private_endpoint_only_turns_the_public_endpoint_off() -> None:
    plan = record(
        "staging",
        project_dir=ROOT,
        config={"ai-gateway:aws": {"enabled": True, "privateEndpointOnly": True}},
    )
    vpc_config = plan.one("aws:eks/cluster:Cluster").get("vpcConfig")
    assert vpc_config["endpointPrivateAccess"] is True
    assert vpc_config["endpointPublicAccess"] is False
    assert not vpc_config.get("publicAccessCidrs")


def test_cluster_runs_in_the_private_subnets(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    private = {
        s.id for s in plan.of_type("aws:ec2/subnet:Subnet") if s.get("tags.tier") == "private"
    }
    assert set(plan.one("aws:eks/cluster:Cluster").get("vpcConfig.subnetIds")) == private
    assert set(plan.one("aws:eks/nodeGroup:NodeGroup").inputs["subnetIds"]) == private


def test_access_entries_admit_the_deployer_role(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    cluster = plan.one("aws:eks/cluster:Cluster")
    assert cluster.get("accessConfig") == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    entry = plan.one("aws:eks/accessEntry:AccessEntry")
    # The session's assumed-role ARN becomes the IAM role ARN an entry accepts.
    assert entry.inputs["principalArn"] == "arn:aws:iam::123456789012:role/deployer"
    assert entry.inputs["clusterName"] == cluster.inputs["name"]
    association = plan.one("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert association.inputs["principalArn"] == entry.inputs["principalArn"]
    assert association.inputs["policyArn"].endswith(
        ":cluster-access-policy/AmazonEKSClusterAdminPolicy"
    )
    assert association.get("accessScope") == {"type": "cluster"}


def test_deletion_protection_only_in_prod(plans: dict[str, Plan], stack: str) -> None:
    cluster = plans[stack].one("aws:eks/cluster:Cluster")
    assert cluster.inputs["deletionProtection"] is (stack == "prod")


def test_oidc_provider_trusts_the_cluster_issuer_for_sts(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    issuer = plan.one("aws:eks/cluster:Cluster").outputs["identities"][0]["oidcs"][0]["issuer"]
    provider = plan.one(
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        f"ai-gateway-{stack}-aws-cluster-oidc",
    )
    assert provider.inputs["url"] == issuer
    assert issuer.startswith("https://oidc.eks.us-east-1.amazonaws.com/id/")
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_roles_have_only_the_managed_policies_they_need(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    prefix = f"ai-gateway-{stack}-aws-cluster"
    assert _managed_policies(plan, f"{prefix}-cluster-role") == {
        "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    }
    assert _managed_policies(plan, f"{prefix}-node-role") == {
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    }
    trust = json.loads(
        plan.one("aws:iam/role:Role", f"{prefix}-node-role").inputs["assumeRolePolicy"]
    )
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    # The cluster role may use the footprint key (and only it) for secrets.
    encryption = plan.one("aws:iam/rolePolicy:RolePolicy", f"{prefix}-cluster-encryption")
    [statement] = json.loads(encryption.inputs["policy"])["Statement"]
    assert statement["Resource"] == footprint_key(plan).outputs["arn"]


def test_node_group_scaling_and_instance_type_per_environment(
    plans: dict[str, Plan], stack: str
) -> None:
    group = plans[stack].one("aws:eks/nodeGroup:NodeGroup")
    assert group.get("scalingConfig") == NODE_SCALING[stack]
    assert group.inputs["instanceTypes"] == [INSTANCE_TYPES[stack]]
    assert group.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert group.inputs["capacityType"] == "ON_DEMAND"


def test_nodes_require_imdsv2_and_encrypted_volumes(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    template = plan.one("aws:ec2/launchTemplate:LaunchTemplate")
    group = plan.one("aws:eks/nodeGroup:NodeGroup")
    assert group.get("launchTemplate.id") == template.id
    assert group.get("launchTemplate.version") == str(template.outputs["latestVersion"])
    assert template.get("metadataOptions") == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
        "instanceMetadataTags": "disabled",
    }
    [disk] = template.get("blockDeviceMappings")
    assert disk["ebs"]["encrypted"] == "true"
    assert disk["ebs"]["volumeType"] == "gp3"
    tagged = {spec["resourceType"]: spec["tags"] for spec in template.get("tagSpecifications")}
    assert set(tagged) == {"instance", "volume", "network-interface"}
    assert all(tags["environment"] == stack for tags in tagged.values())


def test_cluster_autoscaler_may_resize_only_this_clusters_groups(
    plans: dict[str, Plan], stack: str
) -> None:
    """Cluster Autoscaler's AWS guide (cloudprovider/aws/README.md, recommended policy) with
    the write actions limited by the tag EKS puts on a managed node group's ASG; the role is
    assumed through EKS Pod Identity ("EKS Pod Identity" user guide: pods.eks.amazonaws.com)."""
    import json

    from infra.decisions.aws import IMAGE_TAGS

    plan = plans[stack]
    cluster = plan.one("aws:eks/cluster:Cluster")
    name = cluster.get("name")
    association = plan.one("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    (role,) = [
        r
        for r in plan.of_type("aws:iam/role:Role")
        if r.outputs["arn"] == association.get("roleArn")
    ]
    (trust,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    (policy,) = [
        p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.get("role") == role.id
    ]
    statements = {s["Sid"]: s for s in json.loads(policy.get("policy"))["Statement"]}
    scale = statements["ScaleThisClusterOnly"]
    assert sorted(scale["Action"]) == [
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    assert scale["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{name}": "owned"}
    }
    assert not any(
        a.startswith(("autoscaling:Set", "autoscaling:Terminate"))
        for a in statements["Discover"]["Action"]
    )
    assert association.get("clusterName") == cluster.outputs["name"]
    (release,) = [
        r
        for r in plan.of_type("kubernetes:helm.sh/v3:Release")
        if r.get("chart") == "cluster-autoscaler"
    ]
    values = release.get("values")
    assert (association.get("namespace"), association.get("serviceAccount")) == (
        release.get("namespace"),
        values["rbac"]["serviceAccount"]["name"],
    )
    assert values["autoDiscovery"]["clusterName"] == name
    assert values["image"]["tag"] == IMAGE_TAGS[cluster.get("version")]
    assert association.urn in release.dependencies
    # The node group's bounds are what it moves between; it never resets desiredSize.
    group = plan.one("aws:eks/nodeGroup:NodeGroup")
    assert group.get("scalingConfig.minSize") < group.get("scalingConfig.maxSize")


def test_nodes_join_with_the_network_addons_in_place(plans: dict[str, Plan], stack: str) -> None:
    """terraform-aws-modules/eks `before_compute`: the VPC CNI (with its network policy
    agent) must be managed before nodes join, or they start with the self-managed one."""
    plan = plans[stack]
    group = plan.one("aws:eks/nodeGroup:NodeGroup")
    addons = {a.get("addonName"): a for a in plan.of_type("aws:eks/addon:Addon")}
    for early in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert addons[early].urn in group.dependencies
    for late in ("coredns", "metrics-server"):
        assert group.urn in addons[late].dependencies
