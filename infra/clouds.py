"""The contract every cloud footprint hands to the program, and the loop over clouds.

Each cloud package (``infra/aws``, ``infra/azure``, ``infra/gcp``) exposes
``build(config) -> CloudFootprint`` in its ``footprint`` module. The
program never looks inside a footprint beyond this contract, so it reads as one
loop over clouds, and the gateway workload (``infra/k8s``) is deployed the same
way on each.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import pulumi

from infra.config import Cloud, StackConfig


@dataclass
class CloudFootprint:
    """What a cloud's component gives the rest of the program.

    ``redis_url`` and ``postgres_dsn`` are secret Outputs (they embed
    credentials); ``kubeconfig`` is secret too. ``kube_provider`` deploys into
    the cluster in the same ``pulumi up``.
    """

    cloud: Cloud
    component: pulumi.ComponentResource
    region: str
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    kube_provider: pulumi.ProviderResource
    redis_url: pulumi.Output[str]
    postgres_dsn: pulumi.Output[str]
    redis_ca_cert: pulumi.Output[str] | None = None
    extras: dict[str, pulumi.Output] = field(default_factory=dict)


def build(cloud: Cloud, config: StackConfig) -> CloudFootprint | None:
    """Build one enabled cloud's footprint through its package's ``footprint.build``."""
    try:
        module = importlib.import_module(f"infra.{cloud.value}.footprint")
    except ModuleNotFoundError as exc:
        if exc.name != f"infra.{cloud.value}" and exc.name != f"infra.{cloud.value}.footprint":
            raise
        pulumi.log.warn(f"{cloud.value}: no footprint component in this version; skipped")
        return None
    return module.build(config)
