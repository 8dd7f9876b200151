"""``ai-gateway:aws:GatewayRegistry``: the ECR repository the EKS nodes pull the gateway from.

Created only when ``ai-gateway:gateway.buildImage`` is on. Scan on push,
immutable tags, encrypted with the footprint's KMS key, and a lifecycle policy
keeping the newest ``registryKeepImages`` images. The nodes' role reads it
through ``AmazonEC2ContainerRegistryReadOnly`` (attached by the cluster: pull
only, no push); the deployer pushes with a short-lived ECR token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from infra.config import Cloud, StackConfig
from infra.contracts.footprint import AwsOutputs, CloudFootprint
from infra.image import GatewayImage, GatewayImageArgs, image_tag


def lifecycle_policy(keep_images: int) -> dict:
    """ECR lifecycle rules: untagged layers go after a day, only the newest ``keep_images`` stay."""
    if keep_images < 1:
        raise ValueError(
            f"ai-gateway:gateway.registryKeepImages: {keep_images} would delete the running "
            "image; keep at least 1 (the default 30 leaves room to roll back)"
        )
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Untagged images (superseded build layers) after one day",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep the newest {keep_images} images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": keep_images,
                },
                "action": {"type": "expire"},
            },
        ]
    }


@dataclass
class GatewayRegistryArgs:
    """Inputs of :class:`GatewayRegistry`: names, the footprint's KMS key and retention."""

    name_prefix: str
    kms_key_arn: pulumi.Input[str]
    keep_images: int
    force_delete: bool


class GatewayRegistry(pulumi.ComponentResource):
    """The ECR repository (scan on push, immutable tags, KMS) and its lifecycle policy.

    Outputs: ``repository_url`` and ``registry_id``.
    """

    repository_url: pulumi.Output[str]
    registry_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: GatewayRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:aws:GatewayRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = aws.ecr.Repository(
            f"{name}-repository",
            name=f"{args.name_prefix}/gateway",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=args.kms_key_arn
                )
            ],
            force_delete=args.force_delete,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=self.repository.name,
            policy=json.dumps(lifecycle_policy(args.keep_images)),
            opts=child,
        )
        self.repository_url = self.repository.repository_url
        self.registry_id = self.repository.registry_id
        self.register_outputs(
            {"repositoryUrl": self.repository_url, "registryId": self.registry_id}
        )


def build(config: StackConfig, footprint: CloudFootprint[AwsOutputs]) -> pulumi.Output[str] | None:
    """The gateway image for EKS: ``None`` (the published image) unless ``buildImage`` is on."""
    gateway = config.gateway
    if not gateway.build_image:
        return None
    on_aws = pulumi.ResourceOptions(parent=footprint.component, provider=footprint.provider)
    registry = GatewayRegistry(
        f"{config.name_prefix}-aws-registry",
        GatewayRegistryArgs(
            name_prefix=config.name_prefix,
            kms_key_arn=footprint.outputs.kms_key_arn,
            keep_images=gateway.registry_keep_images,
            force_delete=not config.aws.deletion_protection,
        ),
        opts=on_aws,
    )
    token = aws.ecr.get_authorization_token_output(
        registry_id=registry.registry_id,
        opts=pulumi.InvokeOutputOptions(parent=registry, provider=footprint.provider),
    )
    image = GatewayImage(
        f"{config.name_prefix}-aws-image",
        Cloud.AWS,
        GatewayImageArgs(
            repository=registry.repository_url,
            tag=image_tag(gateway.image),
            registries=[
                docker_build.RegistryArgs(
                    address=registry.repository_url.apply(lambda url: url.split("/", 1)[0]),
                    username=token.user_name,
                    password=pulumi.Output.secret(token.password),
                )
            ],
        ),
        opts=pulumi.ResourceOptions(parent=footprint.component),
    )
    return image.ref
