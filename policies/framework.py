"""Small helpers every policy module shares: reading engine properties, declaring policies.

A policy here is declared by a *check*: a function from a resource's properties
(engine camelCase names, as ``pulumi preview`` sends them) and its effective
parameters to the violation messages it finds. :func:`resource_policy` wraps
the check into a standard :class:`pulumi_policy.ResourceValidationPolicy`, so
the pack stays a plain CrossGuard pack; :func:`stack_policy` does the same for
checks over the whole stack.
"""

from __future__ import annotations

import fnmatch
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

from policies import cidrs as cidr_sets
from policies.config import DEFAULT_LEVELS, Category, schema_of, with_defaults

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


WORLD = {
    "worldPrefixV4": cidr_sets.DEFAULT_WORLD_PREFIX_V4,
    "worldPrefixV6": cidr_sets.DEFAULT_WORLD_PREFIX_V6,
}
WORLD_DOC = {
    "worldPrefixV4": "Source ranges that together admit more public IPv4 addresses than a "
    "network of this prefix length count as the whole internet.",
    "worldPrefixV6": "The same for IPv6.",
}


def exposure(sources: Iterable[Any], config: Mapping[str, Any]) -> cidr_sets.Exposure:
    """How much of the internet ``sources`` admit together, with the policy's world size."""
    return cidr_sets.exposure(
        sources,
        world_prefix_v4=int(config.get("worldPrefixV4", cidr_sets.DEFAULT_WORLD_PREFIX_V4)),
        world_prefix_v6=int(config.get("worldPrefixV6", cidr_sets.DEFAULT_WORLD_PREFIX_V6)),
    )


def is_world(sources: Iterable[Any], config: Mapping[str, Any]) -> bool:
    """Whether ``sources``, taken together, admit the whole internet (see :mod:`policies.cidrs`)."""
    return exposure(sources, config).is_world


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


def requires(prop: str, value: str) -> Check:
    """A check that ``prop`` is set (a customer-managed key, typically): ``value`` says to what."""

    def check(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
        if not get(props, prop):
            yield f"{prop} is not set: set {prop} to {value}"

    return check


PUBLIC_PORTS = {"allowedPublicPorts": [443], **WORLD}
PUBLIC_PORTS_DOC = {
    "allowedPublicPorts": "Ports that may be open to the whole internet (HTTPS only by default).",
    **WORLD_DOC,
}
API_CIDRS: dict[str, Any] = {"allowedCidrs": [], **WORLD}
API_CIDRS_DOC = {
    "allowedCidrs": "If set, every CIDR allowed to reach a public cluster API endpoint must be "
    "inside one of these (for example the deployers' egress ranges).",
    **WORLD_DOC,
}


def cidr_violations(cidrs: list[Any], config: Mapping[str, Any], prop: str) -> Iterable[str]:
    """Messages for API-endpoint CIDRs that admit the world together, or lie outside the allowed list."""
    found = exposure(cidrs, config)
    if found.is_world:
        yield (
            f"{prop} {sorted(map(str, cidrs))} opens the endpoint to the whole internet "
            f"({found.describe()}): list only the deployers' CIDRs"
        )
    allowed = [ipaddress.ip_network(c, strict=False) for c in config.get("allowedCidrs", [])]
    for cidr in cidrs:
        try:
            network = cidr_sets.parse(str(cidr))
        except cidr_sets.CidrError:
            if str(cidr).strip().lower() not in cidr_sets.WORLD_KEYWORDS:
                yield f"{prop} contains {cidr!r}, which is not a CIDR: use CIDR notation"
            continue
        if allowed and not any(
            network.version == a.version and network.subnet_of(a)  # type: ignore[arg-type]
            for a in allowed
        ):
            yield f"{prop} contains {cidr}, outside the allowed CIDRs {config['allowedCidrs']}"


# ------------------------------------------------------------- stack and exemptions

PROD_ONLY: tuple[str, ...] = ("dev", "dev-*", "*-dev", "staging", "staging-*", "*-staging")
"""Default ``nonProductionStacks`` of a production-only rule: the dev and staging stacks."""

DEV_EXEMPT: tuple[str, ...] = ("dev", "dev-*", "*-dev")
"""Default ``nonProductionStacks`` of a rule that staging shares with production: dev stacks."""

EXEMPT_KEY = "exempt"
NON_PRODUCTION_KEY = "nonProductionStacks"
STACK_KEY = "_stack"
"""Set in a check's parameters: the stack the resource belongs to (from its URN)."""


def stack_of(urn: str) -> str:
    """The stack name in a URN (``urn:pulumi:<stack>::<project>::<type>::<name>``)."""
    if not urn.startswith("urn:pulumi:"):
        return ""
    return urn[len("urn:pulumi:") :].split("::", 1)[0]


def type_of(urn: str) -> str:
    """The resource type in a URN (the last type of its parent chain)."""
    parts = urn.split("::")
    return parts[-2].rsplit("$", 1)[-1] if len(parts) >= 4 else ""


def is_production(config: Mapping[str, Any]) -> bool:
    """Whether the stack in ``config[STACK_KEY]`` counts as production for this policy.

    Every stack is production unless the pack config lists its name (glob
    patterns allowed) in the policy's ``nonProductionStacks``: the stack's own
    resources (their tags or names) never decide it.
    """
    stack = str(config.get(STACK_KEY, ""))
    patterns = [str(p) for p in config.get(NON_PRODUCTION_KEY, [])]
    return not any(fnmatch.fnmatchcase(stack, p) for p in patterns)


def exempted(config: Mapping[str, Any], urn: str, resource_type: str) -> bool:
    """Whether the pack config exempts this resource (by exact URN or by type) from the policy."""
    for entry in config.get(EXEMPT_KEY, []) or []:
        if not isinstance(entry, Mapping) or not str(entry.get("reason", "")).strip():
            continue  # the config schema requires a reason; an entry without one exempts nothing
        if entry.get("urn") == urn or entry.get("type") == resource_type:
            return True
    return False


EXEMPT_SCHEMA: dict[str, Any] = {
    "type": "array",
    "default": [],
    "description": "Resources this policy does not judge, each by its exact URN or by type, "
    "with the reviewed reason: "
    '[{"urn": "urn:pulumi:prod::ai-gateway::...", "reason": "..."}, '
    '{"type": "kubernetes:core/v1:Pod", "reason": "..."}].',
    "items": {
        "type": "object",
        "properties": {
            "urn": {"type": "string", "pattern": "^urn:pulumi:"},
            "type": {"type": "string", "minLength": 1},
            "reason": {"type": "string", "minLength": 1},
        },
        "required": ["reason"],
        "additionalProperties": False,
        "oneOf": [{"required": ["urn"]}, {"required": ["type"]}],
    },
}


def config_schema(
    defaults: Mapping[str, Any], docs: Mapping[str, str], non_production: Sequence[str] | None
) -> PolicyConfigSchema:
    """A policy's config schema: its parameters, ``exempt`` and (production rules) ``nonProductionStacks``."""
    properties = schema_of(defaults, docs)
    properties[EXEMPT_KEY] = EXEMPT_SCHEMA
    if non_production is not None:
        properties.update(
            schema_of(
                {NON_PRODUCTION_KEY: list(non_production)},
                {
                    NON_PRODUCTION_KEY: "Stack names (glob patterns) where this production "
                    "rule does not apply; every other stack counts as production."
                },
            )
        )
    return PolicyConfigSchema(properties=properties)


def effective_config(
    defaults: Mapping[str, Any], non_production: Sequence[str] | None, configured: Any, urn: str
) -> dict[str, Any]:
    """A policy's parameters for one resource: defaults, the pack config, and the stack from ``urn``."""
    base = {**defaults, EXEMPT_KEY: []}
    if non_production is not None:
        base[NON_PRODUCTION_KEY] = list(non_production)
    config = with_defaults(base, configured)
    config[STACK_KEY] = stack_of(urn)
    return config


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
    non_production: Sequence[str] | None = None,
) -> ResourceValidationPolicy:
    """A CrossGuard resource policy that runs ``check`` on resources of ``types``.

    ``check`` is one function for every type, or a mapping from type to function
    where the types spell the same rule differently.

    ``params`` are the policy's configurable parameters with their defaults;
    the pack config overrides them per policy. Every policy also takes
    ``exempt`` (resources it skips, by exact URN or type, each with a reason).
    A production-only rule passes ``non_production``: the default stack names
    where it does not apply (parameter ``nonProductionStacks``). Each message
    the check yields is reported as one violation of this resource.
    """
    defaults = dict(params or {})
    checks: dict[str, Check] = (
        dict(check) if isinstance(check, Mapping) else dict.fromkeys(types, check)
    )

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        run = checks.get(args.resource_type)
        if run is None:
            return
        config = effective_config(defaults, non_production, args.get_config(), args.urn)
        if exempted(config, args.urn, args.resource_type):
            return
        if non_production is not None and not is_production(config):
            return
        for message in run(args.props, config):
            report(message, None)

    policy = ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=DEFAULT_LEVELS[category],
        config_schema=config_schema(defaults, param_docs or {}, non_production),
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
    non_production: Sequence[str] | None = None,
) -> StackValidationPolicy:
    """A CrossGuard stack policy; ``types`` are the resource types it judges (for the docs and tests).

    Exemptions and production-only stacks work as in :func:`resource_policy`.
    """
    defaults = dict(params or {})

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        urn = next((r.urn for r in args.resources), "")
        config = effective_config(defaults, non_production, args.get_config(), urn)
        if non_production is not None and not is_production(config):
            return
        for message, found in check(args.resources, config):
            if not exempted(config, found, type_of(found)):
                report(message, found)

    policy = StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=DEFAULT_LEVELS[category],
        config_schema=config_schema(defaults, param_docs or {}, non_production),
        severity=severity,
        tags=[category.value],
        remediation_steps=remediation,
    )
    policy.resource_types = tuple(types)  # type: ignore[attr-defined]
    policy.category = category  # type: ignore[attr-defined]
    return policy
