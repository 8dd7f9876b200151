"""The loop over clouds: which package builds each cloud, from an explicit table.

Each cloud package (``infra/aws``, ``infra/azure``, ``infra/gcp``) has the same
three entry points: ``footprint.build(config)`` returns the per-cloud contract
(:class:`~infra.contracts.footprint.CloudFootprint`), ``identity.build`` the
gateway's workload identity, ``registry.build`` the image it runs. The program
never looks inside a footprint beyond that contract, so it reads as one loop
over clouds, and the gateway workload (``infra/k8s``) is deployed the same way
on each. A cloud's package (and its Pulumi SDK) is imported only when the stack
enables it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi

from infra.config import StackConfig
from infra.contracts import Cloud
from infra.contracts.footprint import CloudFootprint
from infra.contracts.workload import MigrationAccess, WorkloadIdentity


class CloudIdentity(Protocol):
    """What every cloud's ``ai-gateway:<cloud>:GatewayIdentity`` gives the gateway."""

    workload_identity: WorkloadIdentity
    """The ServiceAccount annotations (and pod labels, egress) binding pods to the identity."""
    migration: MigrationAccess | None
    """The migration Job's own identity and the owner secret only it may read (None: the Job
    migrates as the gateway's role)."""


@dataclass(frozen=True)
class CloudPackage:
    """A cloud package's three entry points."""

    build: Callable[[StackConfig], CloudFootprint[Any]]
    """``footprint.build``: network, cluster, Redis, PostgreSQL, kube provider."""
    identity: Callable[[StackConfig, Any], CloudIdentity]
    """``identity.build``: the gateway's cloud identity (see :class:`CloudIdentity`)."""
    image: Callable[[StackConfig, Any], pulumi.Input[str] | None]
    """``registry.build``: ``None`` for the published image, else the pushed image's digest."""


def _aws() -> CloudPackage:
    from infra.aws import footprint, identity, registry

    return CloudPackage(footprint.build, identity.build, registry.build)


def _azure() -> CloudPackage:
    from infra.azure import footprint, identity, registry

    return CloudPackage(footprint.build, identity.build, registry.build)


def _gcp() -> CloudPackage:
    from infra.gcp import footprint, identity, registry

    return CloudPackage(footprint.build, identity.build, registry.build)


PACKAGES: dict[Cloud, Callable[[], CloudPackage]] = {
    Cloud.AWS: _aws,
    Cloud.AZURE: _azure,
    Cloud.GCP: _gcp,
}
"""Each cloud's package, imported when first asked for (its SDK is large)."""


def build(cloud: Cloud, config: StackConfig) -> CloudFootprint[Any]:
    """Build one enabled cloud's footprint through its package's ``footprint.build``."""
    return PACKAGES[cloud]().build(config)


def gateway_identity(
    cloud: Cloud, config: StackConfig, footprint: CloudFootprint[Any]
) -> CloudIdentity:
    """The gateway's cloud identity on ``cloud`` (``infra.<cloud>.identity.build``).

    The returned component's ``workload_identity`` is what the gateway's
    ServiceAccount carries (:class:`infra.contracts.workload.WorkloadIdentity`).
    """
    return PACKAGES[cloud]().identity(config, footprint)


def gateway_image(
    cloud: Cloud, config: StackConfig, footprint: CloudFootprint[Any]
) -> pulumi.Input[str] | None:
    """The image the gateway runs on ``cloud`` (``infra.<cloud>.registry.build``).

    ``None`` means the published ``ai-gateway:gateway.image``; with
    ``gateway.buildImage`` on, the reference (by digest) of the image built and
    pushed to the cloud's registry.
    """
    return PACKAGES[cloud]().image(config, footprint)
