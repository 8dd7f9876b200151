"""The stack outputs: what a user reads with ``pulumi stack output`` after ``up``.

One call from ``__main__`` after everything is built. Kubeconfigs embed
credentials, so they are exported as secrets; everything else is plain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from infra.config import Cloud
from infra.contracts.footprint import CloudFootprint
from infra.global_lb import GlobalDnsBackend, export_global_endpoint


def export_stack_outputs(
    footprints: Mapping[Cloud, CloudFootprint],
    global_endpoint: GlobalDnsBackend | None,
    export: Callable[[str, Any], None] = pulumi.export,
) -> None:
    """Export the clusters of every built cloud and the global layer.

    * ``clusterNames``: ``{cloud: cluster name}``;
    * ``kubeconfigs``: ``{cloud: kubeconfig}``, secret;
    * the global layer's outputs (:func:`infra.global_lb.export_global_endpoint`):
      ``globalUrl``, ``globalHostname``, ``cloudEndpoints``, ``cloudUrls``,
      ``healthCheckIds``, ``dnsZoneId``, ``dnsNameServers``.
    """
    export("clusterNames", {c.value: f.cluster_name for c, f in footprints.items()})
    export(
        "kubeconfigs",
        pulumi.Output.secret({c.value: f.kubeconfig for c, f in footprints.items()}),
    )
    if global_endpoint is not None:
        export_global_endpoint(global_endpoint, export)
