"""The EKS cluster: control plane, access entries, IRSA and a managed node group.

Hardened the way AWS's EKS best-practices guide and terraform-aws-modules/eks
set it up: Kubernetes secrets envelope-encrypted with a customer-managed KMS
key, control-plane logs (api, audit, authenticator) kept in a KMS-encrypted
log group, the API endpoint private plus a public endpoint limited to the
deployer CIDRs (or none), authentication through EKS access entries only (no
``aws-auth`` ConfigMap, no implicit creator admin), an OIDC provider for IAM
roles for service accounts, and nodes in private subnets that require IMDSv2
with a hop limit of 1 (pods cannot borrow the node role) on encrypted volumes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.config import StackConfig
from infra.decisions import aws as decisions

_EKS_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

# What the control plane logs: API calls, the audit trail and authentication
# decisions. controllerManager and scheduler are noisy and rarely needed.
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator")

# Nodes need exactly these: join the cluster, pull images, and run the VPC CNI
# (terraform-aws-modules/eks attaches the CNI policy to the node role by default).
NODE_POLICIES = (
    aws.iam.ManagedPolicy.AMAZON_EKS_WORKER_NODE_POLICY,
    aws.iam.ManagedPolicy.AMAZON_EC2_CONTAINER_REGISTRY_READ_ONLY,
    aws.iam.ManagedPolicy.AMAZON_EK_S_CN_I_POLICY,
)
CLUSTER_POLICIES = (aws.iam.ManagedPolicy.AMAZON_EKS_CLUSTER_POLICY,)

NETWORK_ADDONS = {
    # The VPC CNI enforces NetworkPolicy only with its network policy agent on
    # ("Limit Pod traffic with Kubernetes network policies", EKS user guide:
    # configuration value enableNetworkPolicy). The gateway's default-deny
    # policies are otherwise silently ignored.
    "vpc-cni": {"enableNetworkPolicy": "true"},
    "kube-proxy": None,
    # Hands EKS Pod Identity credentials to pods (the cluster autoscaler's role).
    "eks-pod-identity-agent": None,
}
"""EKS add-ons installed before the nodes join: networking and identity on every node."""

WORKLOAD_ADDONS = {
    "coredns": None,
    # Resource metrics for the gateway's HorizontalPodAutoscaler: "it isn't deployed
    # by default in Amazon EKS clusters" ("View resource usage with the Kubernetes
    # Metrics Server"; an EKS community add-on named metrics-server). Without it
    # the HPA never scales.
    "metrics-server": None,
}
"""EKS add-ons that run as Deployments, so they wait for the nodes."""


def node_ami_type(instance_type: str) -> str:
    """The EKS AMI type (Amazon Linux 2023) matching the instance's CPU architecture.

    Graviton families carry a ``g`` after the generation digit (``m7g``,
    ``c7gn``, ``t4g``); everything else here is x86_64.
    """
    match = re.fullmatch(r"([a-z]+)(\d+)([a-z-]*)\.[a-z0-9]+", instance_type)
    if match is None:
        raise ValueError(
            f"ai-gateway:aws.nodeInstanceType: {instance_type!r} is not an EC2 instance "
            "type; use a name like m7i.large"
        )
    suffix = match.group(3).split("-")[0]
    return "AL2023_ARM_64_STANDARD" if "g" in suffix else "AL2023_x86_64_STANDARD"


def _assume_role_policy(service: str, *actions: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": list(actions) or "sts:AssumeRole",
                }
            ],
        }
    )


@dataclass
class ClusterArgs:
    """Inputs of :class:`Cluster`."""

    name_prefix: str
    """Prefix of every physical name."""
    cluster_name: str
    """The EKS cluster name (also the kubeconfig context)."""
    region: str
    """Region, for the kubeconfig's ``aws eks get-token`` call."""
    kubernetes_version: str
    """Kubernetes minor version, for example 1.33."""
    private_subnet_ids: pulumi.Input[list[str]]
    """Where the control plane's ENIs and the nodes live."""
    kms_key_arn: pulumi.Input[str]
    """Customer-managed key for secrets, logs and node volumes."""
    deployer_cidrs: list[str]
    """CIDRs admitted by the public API endpoint."""
    private_endpoint_only: bool
    """Turn the public endpoint off."""
    node_instance_type: str
    """EC2 instance type of the node group."""
    node_count: int
    """Desired nodes at creation (the autoscaler owns it afterwards)."""
    node_min_count: int
    """Autoscaler lower bound."""
    node_max_count: int
    """Autoscaler upper bound."""
    node_disk_gb: int
    """Root volume size of each node."""
    log_retention_days: int
    """Days the control-plane logs are kept."""
    deletion_protection: bool
    """Refuse to delete the cluster (EKS deletion protection)."""
    instance_tags: dict[str, str] = field(default_factory=dict)
    """Tags for the EC2 instances and volumes the node group launches (not Pulumi resources)."""
    admin_principal_arns: list[str] = field(default_factory=list)
    """Extra IAM principals granted cluster admin."""

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        cluster_name: str,
        private_subnet_ids: pulumi.Input[list[str]],
        kms_key_arn: pulumi.Input[str],
        instance_tags: dict[str, str],
    ) -> ClusterArgs:
        """The args from the stack's ``aws`` section; the keywords wire in other components."""
        s = config.aws
        return cls(
            name_prefix=config.name_prefix,
            region=s.region,
            kubernetes_version=s.kubernetes_version,
            deployer_cidrs=s.deployer_cidrs,
            private_endpoint_only=s.private_endpoint_only,
            node_instance_type=s.node_instance_type,
            node_count=s.node_count,
            node_min_count=s.node_min_count,
            node_max_count=s.node_max_count,
            node_disk_gb=s.node_disk_gb,
            log_retention_days=s.log_retention_days,
            deletion_protection=s.deletion_protection,
            admin_principal_arns=s.admin_principal_arns,
            cluster_name=cluster_name,
            private_subnet_ids=private_subnet_ids,
            kms_key_arn=kms_key_arn,
            instance_tags=instance_tags,
        )


class Cluster(pulumi.ComponentResource):
    """An EKS cluster with its IAM roles, access entries, OIDC provider and node group.

    Outputs: ``cluster_name``, ``endpoint``, ``certificate_authority``,
    ``kubeconfig`` (secret), ``oidc_provider_arn``, ``oidc_issuer``,
    ``node_role_arn``, ``node_role_name``, ``cluster_security_group_id`` (the
    security group EKS puts on the control plane ENIs and the managed nodes),
    and ``ready``, the resources to depend on before deploying into the
    cluster: the deployer's access, the nodes and the managed add-ons.
    """

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:aws:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        public_access, public_cidrs = decisions.endpoint_access(
            args.deployer_cidrs, args.private_endpoint_only
        )
        if not public_access and not args.private_endpoint_only:
            pulumi.log.warn(
                "aws: deployerCidrs is empty, so the EKS public endpoint is off; run `pulumi "
                "up` from inside the VPC or list your egress CIDRs in ai-gateway:aws.deployerCidrs",
                resource=self,
            )

        cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            name=decisions.aws_name(args.name_prefix, "eks-cluster", "iam-role"),
            assume_role_policy=_assume_role_policy(
                "eks.amazonaws.com", "sts:AssumeRole", "sts:TagSession"
            ),
            opts=child,
        )
        cluster_attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-cluster-{policy.value.rsplit('/', 1)[1]}",
                role=cluster_role.name,
                policy_arn=policy,
                opts=child,
            )
            for policy in CLUSTER_POLICIES
        ]

        # Envelope encryption of Secrets: EKS uses the key as the cluster role
        # (the permissions terraform-aws-modules/eks grants, on this key only).
        encryption_policy = aws.iam.RolePolicy(
            f"{name}-cluster-encryption",
            role=cluster_role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "kms:Encrypt",
                                "kms:Decrypt",
                                "kms:ListGrants",
                                "kms:DescribeKey",
                            ],
                            "Resource": args.kms_key_arn,
                        }
                    ],
                }
            ),
            opts=child,
        )

        # EKS writes to this fixed name; creating it first sets retention and
        # encryption before EKS would create an unencrypted, never-expiring one.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )

        self.cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.private_subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=public_access,
                public_access_cidrs=public_cidrs if public_access else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"],
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=args.kms_key_arn),
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # The deployer gets an explicit, visible access entry below
                # instead of an implicit admin binding nobody can see or revoke.
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            deletion_protection=args.deletion_protection,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[log_group, encryption_policy, *cluster_attachments]
            ),
        )

        self.access_ready = self._access_entries(name, args)

        # EKS sets the cluster's identity (its OIDC issuer) when it creates the cluster.
        self.oidc_issuer_url: pulumi.Output[str] = self.cluster.identities.apply(
            lambda ids: ids[0].oidcs[0].issuer  # type: ignore[index,arg-type,return-value]
        )
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=self.oidc_issuer_url,
            client_id_lists=["sts.amazonaws.com"],
            opts=child,
        )

        network_addons = self._addons(name, NETWORK_ADDONS, [])
        self._node_group(name, args, network_addons)
        workload_addons = self._addons(name, WORKLOAD_ADDONS, [self.node_group])
        self.addons = [*network_addons, *workload_addons]
        self.ready: list[pulumi.Resource] = [*self.access_ready, self.node_group, *self.addons]

        self.cluster_name = self.cluster.name
        self.endpoint = self.cluster.endpoint
        self.certificate_authority = self.cluster.certificate_authority.apply(lambda ca: ca.data)
        # EKS creates the cluster security group with the cluster: the id is always set.
        self.cluster_security_group_id: pulumi.Output[str] = self.cluster.vpc_config.apply(
            lambda vpc: vpc.cluster_security_group_id  # type: ignore[arg-type,return-value]
        )
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.name, self.endpoint, self.certificate_authority).apply(
                lambda a: decisions.kubeconfig(a[0], a[1], a[2], args.region)
            )
        )
        self.oidc_provider_arn = self.oidc_provider.arn
        self.oidc_issuer = self.oidc_issuer_url.apply(decisions.oidc_issuer_host)
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "endpoint": self.endpoint,
                "kubeconfig": self.kubeconfig,
                "oidcProviderArn": self.oidc_provider_arn,
                "oidcIssuer": self.oidc_issuer,
                "nodeRoleArn": self.node_role_arn,
                "nodeRoleName": self.node_role_name,
                "clusterSecurityGroupId": self.cluster_security_group_id,
            }
        )

    def _access_entries(self, name: str, args: ClusterArgs) -> list[pulumi.Resource]:
        """Cluster admin for the deployer (and any listed admins) through access entries."""
        caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        # An assumed-role session ARN cannot be an access entry principal; the
        # session context gives the role it came from.
        deployer = aws.iam.get_session_context_output(
            arn=caller.arn, opts=pulumi.InvokeOutputOptions(parent=self)
        ).issuer_arn
        principals: list[tuple[str, pulumi.Input[str]]] = [("deployer", deployer)]
        principals += [(f"admin-{i}", arn) for i, arn in enumerate(args.admin_principal_arns)]
        ready: list[pulumi.Resource] = []
        for label, principal in principals:
            entry = aws.eks.AccessEntry(
                f"{name}-{label}-access",
                cluster_name=self.cluster.name,
                principal_arn=principal,
                type="STANDARD",
                opts=pulumi.ResourceOptions(parent=self),
            )
            ready.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-{label}-admin",
                    cluster_name=self.cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=_EKS_ADMIN_POLICY,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        return ready

    def _addons(
        self,
        name: str,
        addons: Mapping[str, Mapping[str, str] | None],
        after: list[pulumi.Resource],
    ) -> list[aws.eks.Addon]:
        """EKS-managed add-ons at the version EKS defaults to for the cluster's minor.

        EKS installs self-managed vpc-cni, kube-proxy and CoreDNS with every
        cluster; OVERWRITE adopts them, and keeps them as configured here.
        """
        return [
            aws.eks.Addon(
                f"{name}-addon-{addon}",
                cluster_name=self.cluster.name,
                addon_name=addon,
                configuration_values=json.dumps(values) if values else None,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
            for addon, values in addons.items()
        ]

    def _node_group(self, name: str, args: ClusterArgs, addons: list[aws.eks.Addon]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        node_role = aws.iam.Role(
            f"{name}-node-role",
            name=decisions.aws_name(args.name_prefix, "eks-node", "iam-role"),
            assume_role_policy=_assume_role_policy("ec2.amazonaws.com"),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy.value.rsplit('/', 1)[1]}",
                role=node_role.name,
                policy_arn=policy,
                opts=child,
            )
            for policy in NODE_POLICIES
        ]
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-nodes-lt",
            name=decisions.aws_name(args.name_prefix, "eks-nodes", "launch-template"),
            description="EKS managed nodes: IMDSv2 only, encrypted gp3 root volume",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                # 1 hop: the node itself reaches IMDS, containers do not, so pods
                # get AWS credentials only through their own IRSA role.
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    # Encrypted with the account's aws/ebs key: a customer key would
                    # need a key-policy grant to the Auto Scaling service-linked
                    # role, which does not exist yet in a fresh account.
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        encrypted="true",
                        volume_size=args.node_disk_gb,
                        volume_type="gp3",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind,
                    tags={**args.instance_tags, "Name": f"{args.cluster_name}-node"},
                )
                for kind in ("instance", "volume", "network-interface")
            ],
            opts=child,
        )
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.cluster.name,
            # A prefix (as terraform-aws-modules/eks does): changing the instance
            # type replaces the group, and the new one must be created first.
            node_group_name_prefix=decisions.aws_name(
                args.name_prefix, "nodes", "eks-node-group-prefix"
            )
            + "-",
            node_role_arn=node_role.arn,
            subnet_ids=args.private_subnet_ids,
            instance_types=[args.node_instance_type],
            ami_type=node_ami_type(args.node_instance_type),
            capacity_type="ON_DEMAND",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=args.node_count,
                min_size=args.node_min_count,
                max_size=args.node_max_count,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable_percentage=33),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id,
                version=launch_template.latest_version.apply(str),
            ),
            labels={"workload": "ai-gateway"},
            opts=pulumi.ResourceOptions(
                parent=self,
                # Nodes join with the CNI (network policy agent), kube-proxy
                # and the pod identity agent already managed.
                depends_on=[*attachments, *addons],
                # The cluster autoscaler moves the desired size; a later `up`
                # must not reset it (as terraform-aws-modules/eks ignores it).
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
        self.node_role_arn = node_role.arn
        self.node_role_name = node_role.name
