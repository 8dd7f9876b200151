"""``ai-gateway:gcp:GatewayRegistry``: the Artifact Registry repository GKE pulls the gateway from.

Created only when ``ai-gateway:gateway.buildImage`` is on. A regional Docker
repository with immutable tags and a cleanup policy (untagged images after a
day, older images after 30 days, but always the newest ``registryKeepImages``).
The nodes' service account is the only reader (``roles/artifactregistry.reader``
on this repository, not the project); the deployer pushes with its own
short-lived access token.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker_build as docker_build
import pulumi_gcp as gcp

from infra.config import Cloud, StackConfig
from infra.contracts.footprint import CloudFootprint, GcpOutputs
from infra.decisions.gcp import resource_name
from infra.image import GatewayImage, GatewayImageArgs, image_tag

READER_ROLE = "roles/artifactregistry.reader"
API = "artifactregistry.googleapis.com"


def cleanup_policies(keep_images: int) -> list[gcp.artifactregistry.RepositoryCleanupPolicyArgs]:
    """Delete untagged images after a day and others after 30 days; KEEP the newest always wins."""
    if keep_images < 1:
        raise ValueError(
            f"ai-gateway:gateway.registryKeepImages: {keep_images} would delete the running "
            "image; keep at least 1 (the default 30 leaves room to roll back)"
        )
    return [
        gcp.artifactregistry.RepositoryCleanupPolicyArgs(
            id="delete-untagged",
            action="DELETE",
            condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                tag_state="UNTAGGED", older_than="86400s"
            ),
        ),
        gcp.artifactregistry.RepositoryCleanupPolicyArgs(
            id="delete-old",
            action="DELETE",
            condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                tag_state="ANY", older_than="2592000s"
            ),
        ),
        gcp.artifactregistry.RepositoryCleanupPolicyArgs(
            id="keep-newest",
            action="KEEP",
            most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                keep_count=keep_images
            ),
        ),
    ]


def repository_url(region: str, project: str, repository_id: str) -> str:
    """The Docker address of an Artifact Registry repository."""
    return f"{region}-docker.pkg.dev/{project}/{repository_id}"


@dataclass
class GatewayRegistryArgs:
    """Inputs of :class:`GatewayRegistry`: where, who reads (the nodes) and retention."""

    name_prefix: str
    project: str
    region: str
    node_service_account_email: pulumi.Input[str]
    keep_images: int


class GatewayRegistry(pulumi.ComponentResource):
    """The Docker repository (immutable tags, cleanup policy) and the nodes' read grant.

    Output: ``repository_url`` (``<region>-docker.pkg.dev/<project>/<repository>``).
    """

    repository_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: GatewayRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:gcp:GatewayRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        api = gcp.projects.Service(
            f"{name}-api",
            project=args.project,
            service=API,
            disable_on_destroy=False,
            opts=child,
        )
        repository_id = resource_name(args.name_prefix, "gateway", "artifact_repository")
        self.repository = gcp.artifactregistry.Repository(
            f"{name}-repository",
            project=args.project,
            location=args.region,
            repository_id=repository_id,
            format="DOCKER",
            description="AI gateway images built from gateway_app/Dockerfile",
            docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
            cleanup_policies=cleanup_policies(args.keep_images),
            cleanup_policy_dry_run=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[api]),
        )
        gcp.artifactregistry.RepositoryIamMember(
            f"{name}-node-reader",
            project=args.project,
            location=args.region,
            repository=self.repository.name,
            role=READER_ROLE,
            member=pulumi.Output.concat("serviceAccount:", args.node_service_account_email),
            opts=child,
        )
        self.repository_url = pulumi.Output.from_input(
            repository_url(args.region, args.project, repository_id)
        )
        self.register_outputs({"repositoryUrl": self.repository_url})


def build(config: StackConfig, footprint: CloudFootprint[GcpOutputs]) -> pulumi.Output[str] | None:
    """The gateway image for GKE: ``None`` (the published image) unless ``buildImage`` is on."""
    gateway = config.gateway
    if not gateway.build_image:
        return None
    settings = config.gcp
    registry = GatewayRegistry(
        f"{config.name_prefix}-gcp-registry",
        GatewayRegistryArgs(
            name_prefix=config.name_prefix,
            project=settings.project,
            region=settings.region,
            node_service_account_email=footprint.outputs.node_service_account_email,
            keep_images=gateway.registry_keep_images,
        ),
        opts=pulumi.ResourceOptions(parent=footprint.component, provider=footprint.provider),
    )
    token = gcp.organizations.get_client_config_output(
        opts=pulumi.InvokeOutputOptions(parent=registry, provider=footprint.provider)
    ).access_token
    image = GatewayImage(
        f"{config.name_prefix}-gcp-image",
        Cloud.GCP,
        GatewayImageArgs(
            repository=pulumi.Output.concat(registry.repository_url, "/ai-gateway"),
            tag=image_tag(gateway.image),
            registries=[
                docker_build.RegistryArgs(
                    address=f"{settings.region}-docker.pkg.dev",
                    username="oauth2accesstoken",
                    password=pulumi.Output.secret(token),
                )
            ],
        ),
        opts=pulumi.ResourceOptions(parent=footprint.component, depends_on=[registry]),
    )
    return image.ref
