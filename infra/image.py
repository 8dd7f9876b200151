"""The gateway image, built from ``gateway_app/Dockerfile`` and pushed to one cloud's registry.

Used by each cloud's ``registry.py`` when ``ai-gateway:gateway.buildImage`` is
on; otherwise the clusters pull the published ``gateway.image``. One build per
cloud registry: each cloud stays independent (disabling one never rebuilds
another) and BuildKit's layer cache makes the second and third build cheap.

The Deployment runs the pushed image by digest (``ref``), so a re-pushed tag
could never change what runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker_build as docker_build

from infra.config import Cloud

BUILD_CONTEXT = "."
"""The repository root (the Pulumi project directory, where the program runs)."""
DOCKERFILE = "gateway_app/Dockerfile"
"""The gateway's Dockerfile, relative to the repository root."""
PLATFORM = docker_build.Platform.LINUX_AMD64
"""Every footprint's default node types are x86-64."""

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def image_tag(reference: str) -> str:
    """The tag of a published image reference: what the built image is tagged with.

    ``ghcr.io/acme/ai-gateway:0.1.0`` -> ``0.1.0``. Registries with immutable
    tags refuse a second push of one tag, so each release needs a new tag;
    reusing ``gateway.image``'s tag keeps one version number for both ways.
    """
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag:
        raise ValueError(
            f"ai-gateway:gateway.image: {reference!r} has no tag to build under; give it a "
            "version tag (for example ghcr.io/acme/ai-gateway:0.2.0) when buildImage is on"
        )
    if not _TAG.fullmatch(tag) or tag == "latest":
        raise ValueError(
            f"ai-gateway:gateway.image: tag {tag!r} cannot be pushed to immutable registries; "
            "use a version tag such as 0.2.0 (not latest)"
        )
    return tag


@dataclass
class GatewayImageArgs:
    """Inputs of :class:`GatewayImage`.

    ``repository`` is the registry repository URL without tag
    (``<account>.dkr.ecr.<region>.amazonaws.com/<name>``); ``registries`` the
    credentials to push with (empty: the deploy job's own ``docker login``).
    """

    repository: pulumi.Input[str]
    tag: str
    registries: Sequence[docker_build.RegistryArgs] = field(default_factory=list)
    context: str = BUILD_CONTEXT
    dockerfile: str = DOCKERFILE


class GatewayImage(pulumi.ComponentResource):
    """``ai-gateway:<cloud>:GatewayImage``: one build of the gateway, pushed to one registry.

    Output: ``ref``, the pushed image by tag and digest
    (``<repository>:<tag>@sha256:...``).
    """

    ref: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        cloud: Cloud,
        args: GatewayImageArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"ai-gateway:{cloud.value}:GatewayImage", name, None, opts)
        image = docker_build.Image(
            f"{name}-build",
            context=docker_build.BuildContextArgs(location=args.context),
            dockerfile=docker_build.DockerfileArgs(location=args.dockerfile),
            platforms=[PLATFORM],
            tags=[pulumi.Output.concat(args.repository, ":", args.tag)],
            registries=list(args.registries),
            push=True,
            # A preview must not need a Docker engine; `up` builds.
            build_on_preview=False,
            labels={"org.opencontainers.image.title": "ai-gateway"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ref = image.ref
        self.register_outputs({"ref": self.ref})
