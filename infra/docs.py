"""The stack config reference, generated from the pydantic models.

docs/reference/configuration.md embeds the output of :func:`config_reference`
(``python -m docgen --write``); a test fails when they drift apart.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from infra.config import (
    NAMESPACE,
    SECRET_SETTING_DOCS,
    SECRET_SETTINGS,
    AwsConfig,
    AzureConfig,
    DnsConfig,
    Environment,
    GatewayConfig,
    GcpConfig,
    GovernanceConfig,
    StackConfig,
    TagsConfig,
)

_SECTIONS: list[tuple[str, type[BaseModel], bool]] = [
    ("tags", TagsConfig, False),
    ("dns", DnsConfig, False),
    ("aws", AwsConfig, True),
    ("azure", AzureConfig, True),
    ("gcp", GcpConfig, True),
    ("gateway", GatewayConfig, True),
    ("governance", GovernanceConfig, False),
]


def _show(value: Any) -> str:
    if value is PydanticUndefined:
        return "*required*"
    if hasattr(value, "value"):
        value = value.value
    if value is None:
        return "—"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value, default=str)}`"


def _defaults_by_environment(model: type[BaseModel]) -> dict[Environment, BaseModel]:
    return {env: model.model_validate({}, context={"environment": env}) for env in Environment}


def _plain_rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    """One row per key; a nested section (``healthCheck``, ``alerts``) as its dotted keys."""
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.append(f"| `{key}` | | {field.description or ''} |")
            rows += _plain_rows(annotation, f"{key}.")
            continue
        default = field.get_default(call_default_factory=True)
        rows.append(f"| `{key}` | {_show(default)} | {field.description or ''} |")
    return rows


def config_reference() -> str:
    """Markdown tables: every key of every section, its defaults per environment, why."""
    env_field = StackConfig.model_fields["environment"]
    lines = [
        f"All keys live in the `{NAMESPACE}:` namespace of `Pulumi.<stack>.yaml`. Unknown keys "
        "are rejected; a bad value stops the program before any resource is created, "
        "with the key, the value and the fix.",
        "",
        f"- `{NAMESPACE}:environment` (*required*): {env_field.description}",
        "",
    ]
    for section, model, per_env in _SECTIONS:
        lines.append(f"### `{NAMESPACE}:{section}`")
        lines.append("")
        lines.append((model.__doc__ or "").strip().splitlines()[0])
        lines.append("")
        if per_env:
            defaults = _defaults_by_environment(model)
            lines.append("| key | dev | staging | prod | description |")
            lines.append("|---|---|---|---|---|")
            for name, field in model.model_fields.items():
                cells = [_show(getattr(defaults[env], name)) for env in Environment]
                lines.append(
                    f"| `{field.alias or name}` | {' | '.join(cells)} | {field.description or ''} |"
                )
        else:
            lines.append("| key | default | description |")
            lines.append("|---|---|---|")
            lines += _plain_rows(model)
        lines.append("")
    lines += [
        "### Secret settings",
        "",
        "Top-level keys set with `pulumi config set --secret KEY VALUE` (a plain-text value is "
        "rejected). They reach the gateway only through a Kubernetes Secret.",
        "",
        "| key | description |",
        "|---|---|",
        *(f"| `{NAMESPACE}:{key}` | {SECRET_SETTING_DOCS[key]} |" for key in SECRET_SETTINGS),
        "",
    ]
    return "\n".join(lines)
