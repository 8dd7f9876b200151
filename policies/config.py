"""Enforcement levels and parameters of the pack, and how a policy reads its config.

Every policy belongs to one category; a category sets the default enforcement
level (all mandatory: a stack that breaks encryption, tagging or exposure rules
must not deploy). Users change a level or a parameter per policy through the
pack's config, the JSON file given to ``pulumi preview --policy-pack-config``
(and to ``aigw plan --policy-pack-config``)::

    {
      "all": "mandatory",
      "aws-ec2-securitygroup-no-public-ingress": {"allowedPublicPorts": [443, 80]},
      "kubernetes-core-service-loadbalancer-ingress-only": "advisory"
    }

Parameters have their defaults here and in each policy's config schema, so a
policy behaves the same whether or not the runner fills in schema defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from pulumi_policy import EnforcementLevel


class Category(Enum):
    """What a policy protects; selects its default enforcement level."""

    ENCRYPTION = "encryption"
    TAGGING = "tagging"
    EXPOSURE = "exposure"
    WORKLOAD = "workload"
    RESILIENCE = "resilience"
    IDENTITY = "identity"
    LOGGING = "logging"
    HYGIENE = "hygiene"


DEFAULT_LEVELS: dict[Category, EnforcementLevel] = {
    Category.ENCRYPTION: EnforcementLevel.MANDATORY,
    Category.TAGGING: EnforcementLevel.MANDATORY,
    Category.EXPOSURE: EnforcementLevel.MANDATORY,
    # Kubernetes workload hardening is exposure too: a root or privileged
    # container is one kernel bug away from the node.
    Category.WORKLOAD: EnforcementLevel.MANDATORY,
    Category.RESILIENCE: EnforcementLevel.MANDATORY,
    # Who may do what: an administrator grant or a public trust policy is exposure.
    Category.IDENTITY: EnforcementLevel.MANDATORY,
    # Without the record, an incident cannot be investigated.
    Category.LOGGING: EnforcementLevel.MANDATORY,
    # Descriptions, labels and orphaned resources: reported, never blocking by default.
    Category.HYGIENE: EnforcementLevel.ADVISORY,
}

REQUIRED_TAG_KEYS: tuple[str, ...] = (
    "environment",
    "owner",
    "cost-center",
    "managed-by",
    "project",
)
"""Default tag keys (GCP: label keys) every taggable resource must carry."""


def with_defaults(
    defaults: Mapping[str, Any], configured: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A policy's effective parameters: its defaults, overridden by the pack config."""
    merged = dict(defaults)
    for key, value in (configured or {}).items():
        if key != "enforcementLevel":
            merged[key] = value
    return merged


def schema_of(defaults: Mapping[str, Any], descriptions: Mapping[str, str]) -> dict[str, dict]:
    """JSON-schema properties for a policy's parameters, typed from their defaults."""
    properties: dict[str, dict] = {}
    for key, default in defaults.items():
        if isinstance(default, bool):
            kind: dict[str, Any] = {"type": "boolean"}
        elif isinstance(default, int):
            kind = {"type": "integer"}
        elif isinstance(default, (list, tuple)):
            item = "integer" if default and isinstance(default[0], int) else "string"
            kind = {"type": "array", "items": {"type": item}}
            default = list(default)
        else:
            kind = {"type": "string"}
        properties[key] = {**kind, "default": default, "description": descriptions.get(key, key)}
    return properties
