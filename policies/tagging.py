"""Tagging policies: every taggable AWS/Azure resource carries the required tags, every
labelable GCP resource the required labels.

Whether a type takes tags is read from its provider SDK class when the SDK is
installed (the same rule the program's tag transform uses), so a new resource
type needs no list kept up to date; without the SDK, a resource is judged
when it has a tag map at all.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.config import DEFAULT_LEVELS, REQUIRED_TAG_KEYS, Category
from policies.framework import config_schema, effective_config, exempted

_SDK_MODULES = {"aws": "pulumi_aws", "azure-native": "pulumi_azure_native", "gcp": "pulumi_gcp"}
_GCP_LABEL_PATHS: dict[str, tuple[str, ...]] = {
    # On GKE `labels` are Kubernetes node labels; the billing labels are these.
    "gcp:container/cluster:Cluster": ("resourceLabels",),
    "gcp:container/nodePool:NodePool": ("nodeConfig", "resourceLabels"),
    "gcp:sql/databaseInstance:DatabaseInstance": ("settings", "userLabels"),
    # Cloud Monitoring: `labels` is a channel's configuration (its e-mail address).
    "gcp:monitoring/notificationChannel:NotificationChannel": ("userLabels",),
    "gcp:monitoring/alertPolicy:AlertPolicy": ("userLabels",),
    "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig": ("userLabels",),
}


def _snake(name: str) -> str:
    """``SecurityGroupRule`` -> ``security_group_rule``, ``BucketV2`` -> ``bucket_v2``."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name).lower()


def _init_annotation(type_token: str, field: str) -> str | bool | None:
    """The annotation of ``field`` in the SDK class's constructor, read from its source file.

    Reading the file instead of importing the module keeps the pack's start-up
    fast (an SDK module imports hundreds of classes). None: no such class or
    parameter; False: the provider SDK is not installed.
    """
    try:
        package, module_path, class_name = type_token.split(":")
    except ValueError:
        return None
    sdk = _SDK_MODULES.get(package)
    if sdk is None:
        return None
    spec = importlib.util.find_spec(sdk)
    if spec is None or not spec.submodule_search_locations:
        return False
    root = Path(next(iter(spec.submodule_search_locations)))
    module = module_path.split("/")[0]
    folder = root if module == "index" else root / module.replace("-", "_")
    source = folder / f"{_snake(class_name)}.py"
    if not source.exists():
        return _imported_annotation(folder, module, sdk, class_name, field)
    text = source.read_text()
    start = text.find("def _internal_init(")
    end = text.find("):", start)
    if start < 0 or end < 0:
        return None
    match = re.search(rf"\n\s+{field}: ([^\n]*)", text[start:end])
    return match.group(1) if match else None


def _imported_annotation(
    folder: Path, module: str, sdk: str, class_name: str, field: str
) -> str | None:
    """Fallback for a class whose file name is not the usual snake case: import it."""
    name = sdk if module == "index" else f"{sdk}.{folder.name}"
    try:
        cls = getattr(importlib.import_module(name), class_name, None)
    except ImportError:
        return None
    init = getattr(cls, "_internal_init", None) if cls is not None else None
    annotation = getattr(init, "__annotations__", {}).get(field)
    return None if annotation is None else str(annotation)


@functools.cache
def tag_path(type_token: str) -> tuple[str, ...] | Literal[False] | None:
    """Where a type carries its tags or labels (engine names); None if untaggable;
    False if the provider SDK is not installed (then judge by the props)."""
    package = type_token.split(":", 1)[0]
    if type_token in _GCP_LABEL_PATHS:
        return _GCP_LABEL_PATHS[type_token]
    field = "labels" if package == "gcp" else "tags"
    annotation = _init_annotation(type_token, field)
    if annotation is False:
        return False
    # A tag map is annotated `Mapping[str, Input[str]]`; list-shaped tags are not one.
    return (field,) if isinstance(annotation, str) and "Mapping[" in annotation else None


def gcp_label_key(key: str) -> str:
    """A tag key as the GCP label key the program's transform writes."""
    label = re.sub(r"[^a-z0-9_-]", "-", key.strip().lower())
    if not label or not label[0].isalpha():
        label = "k" + label
    return label[:63]


def _carried(type_token: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The tag map (or {} when missing); None for untaggable types."""
    path = tag_path(type_token)
    if path is False:
        field = "labels" if type_token.startswith("gcp:") else "tags"
        value = props.get(field) if isinstance(props, Mapping) else None
        return value if isinstance(value, Mapping) else None
    if path is None:
        return None
    node: Any = props
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def missing_keys(type_token: str, props: Mapping[str, Any], keys: list[str]) -> list[str] | None:
    """Required keys a resource lacks (or carries empty); None when its type takes no tags."""
    tags = _carried(type_token, props)
    if tags is None:
        return None
    if type_token.startswith("gcp:"):
        keys = [gcp_label_key(k) for k in keys]
    return [k for k in keys if not str(tags.get(k) or "").strip()]


def _policy(cloud: str, noun: str, packages: tuple[str, ...]) -> ResourceValidationPolicy:
    defaults = {"requiredKeys": list(REQUIRED_TAG_KEYS)}
    where = {
        "tags": "tags",
        "labels": "labels (resourceLabels on GKE, settings.userLabels on Cloud SQL)",
    }[noun]

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type.split(":", 1)[0] not in packages:
            return
        config = effective_config(defaults, None, args.get_config(), args.urn)
        if exempted(config, args.urn, args.resource_type):
            return
        missing = missing_keys(args.resource_type, args.props, list(config["requiredKeys"]))
        if missing:
            report(
                f"missing required {noun} {missing}: set them in {where} (the program's tag "
                "transform adds them to every resource registered after tags.register)",
                None,
            )

    policy = ResourceValidationPolicy(
        name=f"{cloud}-{noun}-resource-required-keys",
        description=f"Every {cloud} resource that takes {noun} must carry the required keys "
        f"(cost allocation, ownership, environment). Fix: set the missing keys in {where}.",
        validate=validate,
        enforcement_level=DEFAULT_LEVELS[Category.TAGGING],
        config_schema=config_schema(
            defaults, {"requiredKeys": f"{noun.capitalize()} keys required."}, None
        ),
        tags=[Category.TAGGING.value],
    )
    policy.resource_types = ()  # type: ignore[attr-defined]  # every taggable type
    policy.packages = packages  # type: ignore[attr-defined]
    policy.category = Category.TAGGING  # type: ignore[attr-defined]
    return policy


def policies() -> list[ResourceValidationPolicy]:
    """The three tagging policies, one per cloud."""
    return [
        _policy("aws", "tags", ("aws",)),
        _policy("azure", "tags", ("azure-native",)),
        _policy("gcp", "labels", ("gcp",)),
    ]
