"""The tag and label set every resource carries, and the stack transform that applies it.

One required set (``environment``, ``owner``, ``cost-center``, ``managed-by``,
``project``, plus any ``tags.extra``) is derived from the stack config. A stack
transform (:func:`register`) adds it to every resource that accepts tags:

* AWS resources with a ``tags`` map and Azure (azure-native) resources with a
  ``tags`` map get the set as is;
* GCP resources with a ``labels`` map (``resourceLabels`` on GKE clusters) get
  it sanitised to GCP's label rules: lowercase keys and values of at most 63
  characters from ``[a-z0-9_-]``, keys starting with a letter.

Whether a resource type accepts tags is read from the provider SDK itself (the
resource class's constructor parameters), so a new resource type needs no list
to be kept up to date. The required keys always win over a resource's own value
for the same key: a component cannot untag a resource by accident.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from infra.config import StackConfig

MANAGED_BY = "pulumi"

REQUIRED_KEYS = ("environment", "owner", "cost-center", "managed-by", "project")
"""Tag keys every taggable resource must carry (checked by tests and the policy pack)."""

_GCP_LABEL_MAX = 63


def required_tags(config: StackConfig) -> dict[str, str]:
    """The tag set for AWS and Azure: the extra tags, then the required keys over them."""
    return {
        **config.tags.extra,
        "environment": config.environment.value,
        "owner": config.tags.owner,
        "cost-center": config.tags.cost_center,
        "managed-by": MANAGED_BY,
        "project": config.tags.project,
    }


def gcp_label_key(key: str) -> str:
    """A tag key made into a valid GCP label key (lowercase, starts with a letter, <= 63)."""
    label = _gcp_chars(key)
    if not label or not label[0].isalpha():
        label = "k" + label
    return label[:_GCP_LABEL_MAX]


def gcp_label_value(value: str) -> str:
    """A tag value made into a valid GCP label value (lowercase, <= 63, may be empty)."""
    return _gcp_chars(value)[:_GCP_LABEL_MAX]


def _gcp_chars(text: str) -> str:
    # GCP allows lowercase letters, digits, '_' and '-' (and international
    # letters, which we fold away to stay portable). Everything else becomes '-'.
    return re.sub(r"[^a-z0-9_-]", "-", text.strip().lower())


def gcp_labels(tags: Mapping[str, str]) -> dict[str, str]:
    """Sanitise a tag set into GCP labels; never fails, later keys win on a clash."""
    return {gcp_label_key(k): gcp_label_value(v) for k, v in tags.items()}


# ------------------------------------------------------------------ taggability


_SDK_MODULES = {"aws": "pulumi_aws", "azure-native": "pulumi_azure_native", "gcp": "pulumi_gcp"}

# GCP resources whose resource labels are not a top-level `labels` map. On GKE,
# `labels` names Kubernetes node labels; the billing labels are these.
_GCP_LABEL_PATHS: dict[str, tuple[str, ...]] = {
    "gcp:container/cluster:Cluster": ("resourceLabels",),
    "gcp:container/nodePool:NodePool": ("nodeConfig", "resourceLabels"),
    "gcp:sql/databaseInstance:DatabaseInstance": ("settings", "userLabels"),
    # Cloud Monitoring: `labels` is a channel's configuration (its e-mail address).
    "gcp:monitoring/notificationChannel:NotificationChannel": ("userLabels",),
    "gcp:monitoring/alertPolicy:AlertPolicy": ("userLabels",),
    "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig": ("userLabels",),
}


def _resource_class(type_token: str) -> type | None:
    """The SDK class of a type token such as ``aws:ec2/vpc:Vpc``, or None."""
    try:
        package, module_path, class_name = type_token.split(":")
    except ValueError:
        return None
    sdk = _SDK_MODULES.get(package)
    if sdk is None:
        return None
    # aws:ec2/vpc:Vpc -> pulumi_aws.ec2 ; aws:index/x:X -> pulumi_aws
    # azure-native:network:VirtualNetwork -> pulumi_azure_native.network
    module_name = module_path.split("/")[0]
    python_module = sdk if module_name == "index" else f"{sdk}.{module_name.replace('-', '_')}"
    try:
        module = importlib.import_module(python_module)
    except ImportError:
        return None
    return getattr(module, class_name, None)


def _accepts_string_map(type_token: str, python_name: str) -> bool:
    cls = _resource_class(type_token)
    if cls is None:
        return False
    # The class's own constructor (not an instance's): its annotations name the input types.
    init = getattr(cls, "_internal_init", None) or cls.__init__  # type: ignore[misc]
    annotation = getattr(init, "__annotations__", {}).get(python_name)
    # The SDKs annotate a tag map as `Mapping[str, Input[str]]`; an Auto Scaling
    # group's `tags`, a list of objects, is not one.
    return annotation is not None and "Mapping[" in str(annotation)


@functools.cache
def tag_path(type_token: str) -> tuple[str, ...] | None:
    """Where a resource type carries its tags or labels (engine property names), or None.

    ``("tags",)`` for AWS and Azure, ``("labels",)`` for most of GCP, a nested
    path for the few GCP types whose resource labels live in a sub-object.
    Decided from the SDK class, so untaggable types (and AWS list-shaped
    ``tags``) return None.
    """
    package = type_token.split(":", 1)[0]
    if package == "gcp":
        path = _GCP_LABEL_PATHS.get(type_token)
        if path is not None:
            return path
        return ("labels",) if _accepts_string_map(type_token, "labels") else None
    if package in {"aws", "azure-native"}:
        return ("tags",) if _accepts_string_map(type_token, "tags") else None
    return None


def carried_tags(type_token: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The tags or labels a resource's inputs carry, or None where it has none."""
    path = tag_path(type_token)
    node: Any = props
    for key in path or ():
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if path and isinstance(node, Mapping) else None


# --------------------------------------------------------------------- transform


def apply_tags(
    type_token: str, props: Mapping[str, Any], tags: Mapping[str, str]
) -> dict[str, Any] | None:
    """Props with the tag set merged in, or None when the type takes no tags.

    Pure: the stack transform and the tests share it. Required keys win over a
    resource's own value for the same key; on GCP the whole merged set
    (the resource's own labels too) is sanitised to the label rules.
    """
    path = tag_path(type_token)
    if path is None:
        return None
    is_gcp = type_token.startswith("gcp:")

    def merge(existing: Mapping[str, Any]) -> dict[str, Any]:
        merged = {**existing, **tags}
        return gcp_labels(merged) if is_gcp else merged

    return _merge_at(props, path, merge)


def _merge_at(
    node: Mapping[str, Any],
    path: tuple[str, ...],
    merge: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> dict[str, Any] | None:
    head, rest = path[0], path[1:]
    current = node.get(head)
    if rest:
        if not isinstance(current, Mapping):
            return None  # the parent object is absent or unknown: nothing to label
        merged = _merge_at(current, rest, merge)
        return None if merged is None else {**node, head: merged}
    existing = current or {}
    if not isinstance(existing, Mapping):
        return None  # unknown or secret: leave it to the engine rather than guess
    return {**node, head: merge(existing)}


def transform(tags: Mapping[str, str]) -> Callable[[Any], Any]:
    """A Pulumi stack transform that adds ``tags`` to every taggable resource."""
    import pulumi

    frozen = dict(tags)

    def _tag(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.custom:
            return None
        props = apply_tags(args.type_, args.props, frozen)
        if props is None:
            return None
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return _tag


def register(config: StackConfig) -> dict[str, str]:
    """Register the tag transform for the rest of the program; returns the tag set."""
    import pulumi

    tags = required_tags(config)
    pulumi.runtime.register_resource_transform(transform(tags))
    return tags
