"""``ai-gateway:aws:GatewayIdentity``: the IAM role the gateway's pods assume (IRSA).

The EKS pod identity webhook projects a token for the gateway's
ServiceAccount; STS exchanges it for this role only when the token's subject
is exactly ``system:serviceaccount:ai-gateway:ai-gateway`` and its audience
``sts.amazonaws.com``. The role may invoke Bedrock models of the footprint's
region and nothing else: no static AWS key lives in the cluster.

``ai-gateway:aws:MigrationIdentity`` is the migration Job's role, trusted by its
own ServiceAccount (``ai-gateway-migrate``) only: it may read the RDS-managed
master user secret and decrypt it with the footprint's key, nothing else. The
gateway's role cannot read that secret.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.config import StackConfig
from infra.contracts.footprint import AwsOutputs, CloudFootprint
from infra.contracts.workload import MigrationAccess, WorkloadIdentity
from infra.decisions import aws as decisions
from infra.k8s.gateway import MIGRATION_SERVICE_ACCOUNT, service_account_subject

STS_AUDIENCE = "sts.amazonaws.com"

BEDROCK_INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
"""What the gateway calls: InvokeModel and its stream; Converse and ConverseStream are
authorised by the same two actions."""


def issuer_host(issuer_url: str) -> str:
    """The OIDC issuer without its scheme: the prefix of IAM's ``:sub`` and ``:aud`` keys.

    Kept verbatim otherwise: IAM names the provider after the issuer exactly as
    tokens carry it in ``iss``, and AKS issuers end in ``/``.
    """
    url = issuer_url.strip()
    host = url.removeprefix("https://")
    if not url.startswith("https://") or not host.strip("/") or "://" in host:
        raise ValueError(
            f"OIDC issuer {issuer_url!r} is not an https URL; pass the cluster's issuer "
            "(for example https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE)"
        )
    return host


def web_identity_trust_policy(
    oidc_provider_arn: str, issuer_url: str, subject: str, audience: str = STS_AUDIENCE
) -> dict:
    """Trust for one Kubernetes ServiceAccount of one cluster: exact ``sub`` and ``aud``.

    ``StringEquals`` on both keys, so neither another ServiceAccount of the
    cluster nor a token minted for another audience can assume the role.
    """
    host = issuer_host(issuer_url)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ServiceAccountWebIdentity",
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{host}:sub": subject, f"{host}:aud": audience},
                },
            }
        ],
    }


INFERENCE_PROFILE_GEOGRAPHIES = {
    "us": ("us-",),
    "eu": ("eu-",),
    "apac": ("ap-",),
}
"""Geographic inference-profile prefix -> the region name prefixes it serves and routes to.

"Supported Regions and models for inference profiles" (Amazon Bedrock user
guide): a ``us.`` profile called from a US region routes to US regions, ``eu.``
to EU regions, ``apac.`` to Asia Pacific regions; the destination lists grow
as AWS adds regions, so the policy names each geography's regions by pattern
(``us-*``) rather than a list that silently goes stale."""

GLOBAL_PROFILE = "global"
"""``global.`` profiles route to any commercial region ("Global cross-Region inference")."""


def inference_profile_prefixes(region: str) -> tuple[str, ...]:
    """The inference-profile prefixes a caller in ``region`` can use: its geography and global."""
    geographies = tuple(
        geo
        for geo, prefixes in INFERENCE_PROFILE_GEOGRAPHIES.items()
        if region.startswith(prefixes)
    )
    return (*geographies, GLOBAL_PROFILE)


def bedrock_invoke_policy(
    partition: str, region: str, account_id: str, model_ids: Sequence[str] = ("*",)
) -> dict:
    """Invoke (and stream) the allowed models of ``region``, directly or through inference profiles.

    ``model_ids`` narrows the foundation models (``anthropic.claude-*``). Three
    statements, as "Prerequisites for inference profiles" (Amazon Bedrock user
    guide) requires for a cross-Region profile:

    * the foundation models in the home region (on-demand calls);
    * the system inference profiles of the region's geography and the global
      ones (``us.anthropic.claude-*``, ``global.anthropic.claude-*``);
    * the foundation models in every destination region of those profiles
      (``arn:...:us-*::foundation-model/...``; for global profiles every
      region and the region-less ARN), usable only through those profiles
      (condition ``bedrock:InferenceProfileArn``), never called directly.
    """
    if not model_ids:
        raise ValueError(
            "ai-gateway:aws.bedrockModelIds: [] allows no model; list model ids or "
            "patterns (for example anthropic.claude-*), or leave it unset for all"
        )
    arn = f"arn:{partition}:bedrock"
    prefixes = inference_profile_prefixes(region)
    profiles = [
        f"{arn}:{region}:{account_id}:inference-profile/{prefix}.{m}"
        for prefix in prefixes
        for m in model_ids
    ]
    destinations: list[str] = []
    for prefix in prefixes:
        if prefix == GLOBAL_PROFILE:
            patterns: tuple[str, ...] = ("*", "")
        else:
            patterns = tuple(f"{p}*" for p in INFERENCE_PROFILE_GEOGRAPHIES[prefix])
        destinations += [f"{arn}:{p}::foundation-model/{m}" for p in patterns for m in model_ids]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeModelsInRegion",
                "Effect": "Allow",
                "Action": list(BEDROCK_INVOKE_ACTIONS),
                "Resource": [f"{arn}:{region}::foundation-model/{m}" for m in model_ids],
            },
            {
                "Sid": "InvokeInferenceProfiles",
                "Effect": "Allow",
                "Action": list(BEDROCK_INVOKE_ACTIONS),
                "Resource": profiles,
            },
            {
                "Sid": "InvokeModelsThroughProfiles",
                "Effect": "Allow",
                "Action": list(BEDROCK_INVOKE_ACTIONS),
                "Resource": list(dict.fromkeys(destinations)),
                "Condition": {"StringLike": {"bedrock:InferenceProfileArn": profiles}},
            },
        ],
    }


def owner_secret_read_policy(secret_arn: str, kms_key_arn: str, region: str) -> dict:
    """Read one Secrets Manager secret and decrypt it with its key, through Secrets Manager only.

    "Authentication and access control for AWS Secrets Manager": GetSecretValue
    on the secret, and ``kms:Decrypt`` on the customer-managed key it is
    encrypted with; ``kms:ViaService`` keeps the key usable only through
    Secrets Manager in the region.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadDatabaseOwnerSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": [secret_arn],
            },
            {
                "Sid": "DecryptItThroughSecretsManager",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": [kms_key_arn],
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
                },
            },
        ],
    }


def irsa_role(
    resource_name: str,
    *,
    physical_name: str,
    description: str,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer_url: pulumi.Input[str],
    subject: str,
    opts: pulumi.ResourceOptions,
) -> aws.iam.Role:
    """An IAM role only ``subject``'s projected token can assume (one-hour sessions)."""
    return aws.iam.Role(
        resource_name,
        name=physical_name,
        description=description,
        assume_role_policy=pulumi.Output.all(oidc_provider_arn, oidc_issuer_url).apply(
            lambda v: json.dumps(web_identity_trust_policy(v[0], v[1], subject))
        ),
        max_session_duration=3600,
        opts=opts,
    )


@dataclass
class GatewayIdentityArgs:
    """Inputs of :class:`GatewayIdentity`.

    ``oidc_provider_arn`` and ``oidc_issuer_url`` are the EKS cluster's IAM
    OIDC provider and issuer; ``subject`` the gateway ServiceAccount's
    (:func:`infra.k8s.gateway.service_account_subject`).
    """

    name_prefix: str
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    subject: str
    model_ids: Sequence[str] = field(default_factory=lambda: ["*"])


class GatewayIdentity(pulumi.ComponentResource):
    """The gateway's IAM role: trusted by one ServiceAccount, allowed to invoke Bedrock.

    Output: ``role_arn`` (the ServiceAccount's ``eks.amazonaws.com/role-arn``).
    """

    role_arn: pulumi.Output[str]
    migration: MigrationAccess | None = None
    """The migration Job's identity and secret (set by :func:`build`)."""

    def __init__(
        self, name: str, args: GatewayIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:aws:GatewayIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition

        self.role = irsa_role(
            f"{name}-role",
            physical_name=decisions.aws_name(args.name_prefix, "gateway", "iam-role"),
            description="Assumed by the AI gateway's pods (IRSA) to invoke Bedrock models.",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer_url=args.oidc_issuer_url,
            subject=args.subject,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-bedrock",
            name="invoke-bedrock-models",
            role=self.role.id,
            policy=pulumi.Output.all(partition, account_id).apply(
                lambda v: json.dumps(bedrock_invoke_policy(v[0], args.region, v[1], args.model_ids))
            ),
            opts=child,
        )
        self.role_arn = self.role.arn
        self.workload_identity = WorkloadIdentity.aws(self.role_arn)
        self.register_outputs({"roleArn": self.role_arn})


@dataclass
class MigrationIdentityArgs:
    """Inputs of :class:`MigrationIdentity`: the cluster's OIDC provider, the secret and its key."""

    name_prefix: str
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    owner_secret_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    subject: str = field(
        default_factory=lambda: service_account_subject(app_name=MIGRATION_SERVICE_ACCOUNT)
    )


class MigrationIdentity(pulumi.ComponentResource):
    """The migration Job's IAM role: its ServiceAccount only, the owner secret only.

    Output: ``role_arn`` (the Job ServiceAccount's ``eks.amazonaws.com/role-arn``).
    """

    def __init__(
        self, name: str, args: MigrationIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:aws:MigrationIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = irsa_role(
            f"{name}-role",
            physical_name=decisions.aws_name(args.name_prefix, "migrate", "iam-role"),
            description="Assumed by the AI gateway's migration Job (IRSA) to read the "
            "database owner's secret.",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer_url=args.oidc_issuer_url,
            subject=args.subject,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-owner-secret",
            name="read-database-owner-secret",
            role=self.role.id,
            policy=pulumi.Output.all(args.owner_secret_arn, args.kms_key_arn).apply(
                lambda v: json.dumps(owner_secret_read_policy(v[0], v[1], args.region))
            ),
            opts=child,
        )
        self.role_arn = self.role.arn
        self.register_outputs({"roleArn": self.role_arn})


def build(config: StackConfig, footprint: CloudFootprint[AwsOutputs]) -> GatewayIdentity:
    """The gateway's identity on the AWS footprint (IRSA through the EKS OIDC provider),
    and the migration Job's beside it (:attr:`GatewayIdentity.migration`)."""
    identity = GatewayIdentity(
        f"{config.name_prefix}-aws-gateway-identity",
        GatewayIdentityArgs(
            name_prefix=config.name_prefix,
            region=config.aws.region,
            oidc_provider_arn=footprint.outputs.oidc_provider_arn,
            oidc_issuer_url=footprint.oidc_issuer_url,
            subject=service_account_subject(),
            model_ids=config.aws.bedrock_model_ids,
        ),
        opts=pulumi.ResourceOptions(parent=footprint.component, provider=footprint.provider),
    )
    if footprint.owner_secret is not None:
        migration = MigrationIdentity(
            f"{config.name_prefix}-aws-migration-identity",
            MigrationIdentityArgs(
                name_prefix=config.name_prefix,
                region=config.aws.region,
                oidc_provider_arn=footprint.outputs.oidc_provider_arn,
                oidc_issuer_url=footprint.oidc_issuer_url,
                owner_secret_arn=footprint.owner_secret,
                kms_key_arn=footprint.outputs.kms_key_arn,
            ),
            opts=pulumi.ResourceOptions(parent=footprint.component, provider=footprint.provider),
        )
        identity.migration = MigrationAccess(
            owner_secret=footprint.owner_secret,
            workload_identity=WorkloadIdentity.aws(migration.role_arn),
        )
    return identity
