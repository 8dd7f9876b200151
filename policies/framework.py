"""Small helpers every policy module shares: reading engine properties, declaring policies.

A policy here is declared by a *check*: a function from a resource's properties
(engine camelCase names, as ``pulumi preview`` sends them) and its effective
parameters to the violation messages it finds. :func:`resource_policy` wraps
the check into a standard :class:`pulumi_policy.ResourceValidationPolicy`, so
the pack stays a plain CrossGuard pack; :func:`stack_policy` does the same for
checks over the whole stack.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.config import DEFAULT_LEVELS, WORLD_CIDRS, Category, schema_of, with_defaults

Check = Callable[[Mapping[str, Any], Mapping[str, Any]], Iterable[str]]
"""(properties, parameters) -> violation messages."""
StackCheck = Callable[[Sequence[PolicyResource], Mapping[str, Any]], Iterable[tuple[str, str]]]
"""(resources, parameters) -> (message, urn of the resource in violation)."""


def get(props: Any, path: str, default: Any = None) -> Any:
    """A property by dotted path (``"vpcConfig.publicAccessCidrs"``); ``default`` when absent."""
    node = props
    for part in path.split("."):
        if isinstance(node, Mapping):
            if part not in node:
                return default
            node = node[part]
        elif isinstance(node, Sequence) and not isinstance(node, str) and part.isdigit():
            index = int(part)
            if index >= len(node):
                return default
            node = node[index]
        else:
            return default
    return default if node is None else node


def items(props: Any, path: str) -> list[Any]:
    """A list property by path, ``[]`` when absent (never a string split into characters)."""
    value = get(props, path, [])
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return []


def is_true(value: Any) -> bool:
    """True for ``True`` and the provider's string booleans (``"true"``)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def is_world(cidr: Any) -> bool:
    """Whether a source range means "anyone on the internet"."""
    if not isinstance(cidr, str):
        return False
    text = cidr.strip().lower()
    if text in WORLD_CIDRS:
        return True
    try:
        return ipaddress.ip_network(text, strict=False).prefixlen == 0
    except ValueError:
        return False


def ports_outside(from_port: Any, to_port: Any, allowed: Iterable[int]) -> bool:
    """Whether a port range opens any port not in ``allowed`` (-1 / 0-0 on "all" protocols: all ports)."""
    try:
        low, high = int(from_port), int(to_port)
    except (TypeError, ValueError):
        return True
    if low < 0 or high < 0 or (low == 0 and high in (0, 65535)):
        low, high = 0, 65535
    allowed_set = set(allowed)
    return any(port not in allowed_set for port in range(low, high + 1))


def port_spec_outside(spec: Any, allowed: Iterable[int]) -> bool:
    """Whether an Azure/GCP port spec (``"443"``, ``"8000-8080"``, ``"*"``) opens a port not allowed."""
    text = str(spec).strip()
    if text in {"*", "", "all"}:
        return True
    low, _, high = text.partition("-")
    return ports_outside(low, high or low, allowed)


PUBLIC_PORTS = {"allowedPublicPorts": [443]}
PUBLIC_PORTS_DOC = {
    "allowedPublicPorts": "Ports that may be open to 0.0.0.0/0 or ::/0 (HTTPS only by default)."
}
API_CIDRS: dict[str, list[str]] = {"allowedCidrs": []}
API_CIDRS_DOC = {
    "allowedCidrs": "If set, every CIDR allowed to reach a public cluster API endpoint must be "
    "inside one of these (for example the deployers' egress ranges)."
}


def cidr_violations(cidrs: list[Any], config: Mapping[str, Any], prop: str) -> Iterable[str]:
    """Messages for API-endpoint CIDRs that are the world or outside the configured list."""
    allowed = [ipaddress.ip_network(c, strict=False) for c in config.get("allowedCidrs", [])]
    for cidr in cidrs:
        if is_world(cidr):
            yield f"{prop} contains {cidr}: list only the deployers' CIDRs, never the whole internet"
            continue
        if allowed:
            try:
                network = ipaddress.ip_network(str(cidr), strict=False)
            except ValueError:
                yield f"{prop} contains {cidr!r}, which is not a CIDR: use CIDR notation"
                continue
            if not any(
                network.version == a.version and network.subnet_of(a)  # type: ignore[arg-type]
                for a in allowed
            ):
                yield f"{prop} contains {cidr}, outside the allowed CIDRs {config['allowedCidrs']}"


def resource_policy(
    name: str,
    description: str,
    *,
    types: Sequence[str],
    check: Check | Mapping[str, Check],
    category: Category,
    params: Mapping[str, Any] | None = None,
    param_docs: Mapping[str, str] | None = None,
    severity: Severity = Severity.HIGH,
    remediation: str | None = None,
) -> ResourceValidationPolicy:
    """A CrossGuard resource policy that runs ``check`` on resources of ``types``.

    ``check`` is one function for every type, or a mapping from type to function
    where the types spell the same rule differently.

    ``params`` are the policy's configurable parameters with their defaults;
    the pack config overrides them per policy. Each message the check yields is
    reported as one violation of this resource.
    """
    defaults = dict(params or {})
    checks: dict[str, Check] = (
        dict(check) if isinstance(check, Mapping) else dict.fromkeys(types, check)
    )

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        run = checks.get(args.resource_type)
        if run is None:
            return
        config = with_defaults(defaults, args.get_config())
        for message in run(args.props, config):
            report(message, None)

    policy = ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=DEFAULT_LEVELS[category],
        config_schema=PolicyConfigSchema(properties=schema_of(defaults, param_docs or {}))
        if defaults
        else None,
        severity=severity,
        tags=[category.value],
        remediation_steps=remediation,
    )
    policy.resource_types = tuple(types)  # type: ignore[attr-defined]
    policy.category = category  # type: ignore[attr-defined]
    return policy


def stack_policy(
    name: str,
    description: str,
    *,
    types: Sequence[str],
    check: StackCheck,
    category: Category,
    params: Mapping[str, Any] | None = None,
    param_docs: Mapping[str, str] | None = None,
    severity: Severity = Severity.HIGH,
    remediation: str | None = None,
) -> StackValidationPolicy:
    """A CrossGuard stack policy; ``types`` are the resource types it judges (for the docs and tests)."""
    defaults = dict(params or {})

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        config = with_defaults(defaults, args.get_config())
        for message, urn in check(args.resources, config):
            report(message, urn)

    policy = StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=DEFAULT_LEVELS[category],
        config_schema=PolicyConfigSchema(properties=schema_of(defaults, param_docs or {}))
        if defaults
        else None,
        severity=severity,
        tags=[category.value],
        remediation_steps=remediation,
    )
    policy.resource_types = tuple(types)  # type: ignore[attr-defined]
    policy.category = category  # type: ignore[attr-defined]
    return policy
