"""The AWS footprint: one component owning the provider, the key and the four parts.

``build(config)`` is what :mod:`infra.clouds` calls. The footprint owns an
explicit ``aws.Provider`` (region and ``default_tags`` from the stack config)
that every child inherits through the component tree, so no AWS resource or
data source ever falls back to the ambient default provider. It creates the
customer-managed KMS key the other parts encrypt with, then composes
:class:`Network`, :class:`Cluster`, :class:`Redis` and :class:`Postgres` and
hands the program the :class:`~infra.contracts.footprint.CloudFootprint` contract.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.aws.autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from infra.aws.cluster import Cluster, ClusterArgs
from infra.aws.load_balancer_controller import (
    LOAD_BALANCER_ANNOTATIONS,
    LoadBalancerController,
    LoadBalancerControllerArgs,
)
from infra.aws.network import Network, NetworkArgs
from infra.aws.postgres import Postgres, PostgresArgs
from infra.aws.redis import Redis, RedisArgs
from infra.config import Cloud, StackConfig
from infra.contracts.footprint import AwsOutputs, CloudFootprint
from infra.decisions import aws as decisions
from infra.tags import required_tags

REDIS_PORT = 6379
"""ElastiCache's port; TLS (transit encryption) is on, so the gateway connects with rediss://."""


def key_policy(account_id: str, region: str, partition: str = "aws") -> dict:
    """The footprint key's policy: the account administers it, CloudWatch Logs may use it.

    The account statement is AWS's default key policy (IAM policies then decide
    who uses the key: EKS, RDS and ElastiCache act through their callers' IAM
    permissions and grants). CloudWatch Logs is a service principal and needs
    its own statement, scoped by encryption context to this account's log groups.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsEncryption",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                        )
                    }
                },
            },
        ],
    }


class Footprint(pulumi.ComponentResource):
    """Everything the gateway needs on AWS, behind one explicit provider.

    Attributes: ``provider`` (the aws.Provider), ``kms_key``, ``network``,
    ``cluster``, ``redis``, ``postgres``, ``kube_provider`` and
    ``load_balancer_controller`` (what provisions the gateway's NLB).
    """

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:aws:Footprint", name, None, opts)
        settings = config.aws
        prefix = config.name_prefix
        tags = required_tags(config)
        cluster_name = decisions.aws_name(prefix, "eks", "eks-cluster")

        self.provider = aws.Provider(
            f"{name}-provider",
            region=settings.region,
            # The provider tags what the stack transform cannot see: resources
            # AWS creates on the program's behalf that inherit default tags.
            default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Children inherit the provider from their parent component; custom
        # resources declared here get it explicitly.
        components = pulumi.ResourceOptions(parent=self, providers={"aws": self.provider})
        invoke = pulumi.InvokeOutputOptions(parent=self, provider=self.provider)

        identity = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke)
        self.kms_key = aws.kms.Key(
            f"{name}-key",
            description=f"{prefix}: EKS secrets, logs, ElastiCache and RDS encryption",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(identity.account_id, partition.partition).apply(
                lambda a: json.dumps(key_policy(a[0], settings.region, a[1]))
            ),
            opts=pulumi.ResourceOptions(
                parent=self, provider=self.provider, protect=settings.deletion_protection
            ),
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{prefix}",
            target_key_id=self.kms_key.key_id,
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
        )

        self.network = Network(
            f"{name}-network",
            NetworkArgs.from_config(
                config,
                cluster_name=cluster_name,
                kms_key_arn=self.kms_key.arn,
            ),
            opts=components,
        )
        self.cluster = Cluster(
            f"{name}-cluster",
            ClusterArgs.from_config(
                config,
                cluster_name=cluster_name,
                private_subnet_ids=self.network.private_subnet_ids,
                kms_key_arn=self.kms_key.arn,
                instance_tags=tags,
            ),
            opts=components,
        )
        self.redis = Redis(
            f"{name}-redis",
            RedisArgs.from_config(
                config,
                vpc_id=self.network.vpc_id,
                subnet_ids=self.network.database_subnet_ids,
                client_security_group_id=self.cluster.cluster_security_group_id,
                kms_key_arn=self.kms_key.arn,
            ),
            opts=components,
        )
        self.postgres = Postgres(
            f"{name}-postgres",
            PostgresArgs.from_config(
                config,
                vpc_id=self.network.vpc_id,
                subnet_ids=self.network.database_subnet_ids,
                client_security_group_id=self.cluster.cluster_security_group_id,
                kms_key_arn=self.kms_key.arn,
            ),
            opts=components,
        )

        # The first `up` deploys into the cluster only once the deployer is
        # admitted (access entries), nodes exist (Helm `atomic` releases and the
        # migration Job need them) and the managed add-ons run.
        self.kube_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.cluster.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.cluster.ready),
        )
        self.autoscaler = ClusterAutoscaler(
            f"{name}-autoscaler",
            ClusterAutoscalerArgs(
                name_prefix=prefix,
                cluster_name=self.cluster.cluster_name,
                cluster_name_text=cluster_name,
                region=settings.region,
                kubernetes_version=settings.kubernetes_version,
                kube_provider=self.kube_provider,
            ),
            opts=components,
        )

        # The gateway's NLB comes from the AWS Load Balancer Controller (IRSA role of its own).
        self.load_balancer_controller = LoadBalancerController(
            f"{name}-lb-controller",
            LoadBalancerControllerArgs(
                name_prefix=prefix,
                cluster_name=self.cluster.cluster_name,
                region=settings.region,
                vpc_id=self.network.vpc_id,
                oidc_provider_arn=self.cluster.oidc_provider_arn,
                oidc_issuer_url=self.cluster.oidc_issuer_url,
                high_availability=settings.high_availability,
            ),
            opts=pulumi.ResourceOptions(
                parent=self, providers={"aws": self.provider, "kubernetes": self.kube_provider}
            ),
        )

        self.outputs = AwsOutputs(
            oidc_provider_arn=self.cluster.oidc_provider_arn,
            oidc_issuer_url=self.cluster.oidc_issuer,
            node_role_arn=self.cluster.node_role_arn,
            node_role_name=self.cluster.node_role_name,
            kms_key_arn=self.kms_key.arn,
            vpc_id=self.network.vpc_id,
            private_subnet_ids=self.network.private_subnet_ids,
            cluster_security_group_id=self.cluster.cluster_security_group_id,
        )
        self.register_outputs(
            {
                "clusterName": self.cluster.cluster_name,
                "kubeconfig": self.cluster.kubeconfig,
                "redisUrl": self.redis.url,
                "postgresDsn": self.postgres.dsn,
                "postgresOwnerSecretArn": self.postgres.owner_secret_arn,
                **self.outputs.by_key(),
            }
        )


def build(config: StackConfig) -> CloudFootprint[AwsOutputs]:
    """Create the AWS footprint for the stack and return the per-cloud contract."""
    footprint = Footprint(f"{config.name_prefix}-aws", config)
    return CloudFootprint(
        cloud=Cloud.AWS,
        component=footprint,
        provider=footprint.provider,
        oidc_issuer_url=footprint.cluster.oidc_issuer_url,
        region=config.aws.region,
        cluster_name=footprint.cluster.cluster_name,
        kubeconfig=footprint.cluster.kubeconfig,
        kube_provider=footprint.kube_provider,
        redis_url=footprint.redis.url,
        postgres_dsn=footprint.postgres.dsn,
        owner_secret=footprint.postgres.owner_secret_arn,
        # ElastiCache and RDS certificates chain to public Amazon roots, which
        # the gateway image's CA bundle already trusts for sslmode=require.
        redis_ca_cert=None,
        egress_ips=list(footprint.network.egress_ips),
        data_store_cidrs=[config.aws.vpc_cidr],
        redis_port=REDIS_PORT,
        load_balancer_annotations=dict(LOAD_BALANCER_ANNOTATIONS),
        edge_prerequisites=[footprint.load_balancer_controller.release],
        outputs=footprint.outputs,
    )
